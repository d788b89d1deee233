use super::*;

#[test]
fn proc_status_fields_are_read_in_bytes() {
    let text = "Name:\timaginator\nVmRSS:\t  2048 kB\nRssAnon:\t  1024 kB\nRssFile:\t 1000 kB\nRssShmem:\t 24 kB\nThreads: 9\n";
    let f = parse_kb_fields(text);
    assert_eq!(f["VmRSS"], 2048 * 1024);
    assert_eq!(f["RssAnon"], 1024 * 1024);
    assert_eq!(f["Threads"], 9);
}

fn write(dir: &Path, rel: &str, text: &str) {
    let path = dir.join(rel);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

#[test]
fn cgroup_v2_working_set_is_current_minus_inactive_file() {
    let root = tempfile::tempdir().unwrap();
    write(root.path(), "kubepods/pod1/memory.current", "1000000\n");
    write(root.path(), "kubepods/pod1/memory.max", "max\n");
    write(
        root.path(),
        "kubepods/pod1/memory.stat",
        "anon 300000\nfile 650000\nkernel 40000\nshmem 1000\nactive_file 250000\ninactive_file 400000\n",
    );
    let c = CgroupMemory::read_from(root.path(), "0::/kubepods/pod1\n");
    assert_eq!(c.version, Some(2));
    assert_eq!(c.memory_current, Some(1_000_000));
    assert_eq!(c.memory_max, None, "max means unlimited");
    assert_eq!(c.working_set, Some(600_000));
    assert_eq!(c.inactive_file, Some(400_000));
    assert_eq!(c.kernel, Some(40_000));
}

#[test]
fn cgroup_v1_uses_hierarchical_totals_and_floors_working_set_at_zero() {
    let root = tempfile::tempdir().unwrap();
    write(root.path(), "memory/memory.usage_in_bytes", "100\n");
    write(root.path(), "memory/memory.limit_in_bytes", "9223372036854771712\n");
    write(root.path(), "memory/memory.kmem.usage_in_bytes", "7\n");
    write(
        root.path(),
        "memory/memory.stat",
        "rss 1\ncache 2\ntotal_rss 50\ntotal_cache 60\ntotal_active_file 10\ntotal_inactive_file 150\ntotal_shmem 3\n",
    );
    // The path named in /proc/self/cgroup is not visible inside the container: fall back to the root.
    let c = CgroupMemory::read_from(root.path(), "4:memory:/docker/abc\n0::/\n");
    assert_eq!(c.version, Some(1));
    assert_eq!(c.memory_max, None);
    assert_eq!(c.anon, Some(50));
    assert_eq!(c.file, Some(60));
    assert_eq!(c.kernel, Some(7));
    assert_eq!(c.working_set, Some(0), "usage 100 - inactive 150, floored at 0");
}

#[test]
fn no_cgroup_means_nulls() {
    let root = tempfile::tempdir().unwrap();
    let c = CgroupMemory::read_from(root.path(), "");
    assert_eq!(c.version, None);
    assert_eq!(c.working_set, None);
}

#[test]
fn the_heap_floor_verdict_needs_two_windows() {
    let h = HeapHistory::new();
    h.record(100 << 20);
    assert_eq!(h.trend(100 << 20, TREND_WINDOW).verdict, "unknown");
    let t = h.trend(100 << 20, Duration::ZERO);
    // A zero-length window is trivially past two windows of age but holds no samples.
    assert_eq!(t.verdict, "unknown");
}
