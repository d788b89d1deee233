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
    let h = HeapHistory::new(TREND_WINDOW);
    h.record(Sample {
        at_rest: 100 << 20,
        ..Sample::default()
    });
    assert_eq!(h.trend(100 << 20, 0, TREND_WINDOW).verdict, "unknown");
    let t = h.trend(100 << 20, 0, Duration::ZERO);
    // A zero-length window is trivially past two windows of age but holds no samples.
    assert_eq!(t.verdict, "unknown");
}

/// A xorshift generator: enough randomness for a property test, no crate.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// A whole number of MiB up to `max`, in bytes.
    fn mb(&mut self, max: u64) -> u64 {
        (self.next() % (max + 1)) << 20
    }
}

/// A report with random figures (some missing), for the property below.
fn random_report(rng: &mut Rng) -> MemoryReport {
    let maybe = |v: u64, seed: u64| (seed % 5 != 0).then_some(v);
    let (allocated, active_extra, metadata, dirty) = (rng.mb(400), rng.mb(20), rng.mb(10), rng.mb(50));
    let active = allocated + active_extra;
    let rss_anon = rng.mb(600);
    let current = rng.mb(4000);
    let s1 = rng.next();
    let cgroup = if s1 % 3 == 0 {
        CgroupMemory::default()
    } else {
        let inactive = rng.mb(4000).min(current);
        CgroupMemory {
            version: Some(2),
            memory_current: Some(current),
            memory_max: maybe(current + rng.mb(1000), s1 >> 5),
            anon: maybe(rng.mb(2000), s1 >> 7),
            active_file: Some(rng.mb(3000)),
            inactive_file: Some(inactive),
            kernel: Some(rng.mb(200)),
            working_set: Some(current - inactive),
            ..Default::default()
        }
    };
    MemoryReport {
        jemalloc: JemallocStats {
            allocated,
            active,
            resident: active + metadata + dirty,
            mapped: active + metadata + dirty + rng.mb(100),
            retained: rng.mb(100),
            metadata,
        },
        process: ProcessMemory {
            rss: maybe(rss_anon + rng.mb(40), s1),
            rss_anon: maybe(rss_anon, s1),
            lazy_free: maybe(rng.mb(30), s1 >> 3),
            threads: Some(rng.next() % 40),
            ..Default::default()
        },
        cgroup,
        imagemagick: ImageMagickMemory::default(),
        result_cache: ResultCacheMemory::default(),
        allocator: AllocatorInfo {
            c_malloc_tracked: s1 % 7 != 0,
            ..Default::default()
        },
        heap: HeapTrend::default(),
        explanation: Vec::new(),
    }
}

fn figures(line: &str) -> Vec<f64> {
    line.split(" MiB")
        .filter_map(|part| part.rsplit(' ').next()?.trim_start_matches('(').parse::<f64>().ok())
        .collect()
}

#[test]
fn the_explanation_never_prints_a_negative_or_unnamed_remainder() {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    for _ in 0..5000 {
        let mut r = random_report(&mut rng);
        r.explain();
        let text = r.explanation.join("\n");
        let negative = text
            .as_bytes()
            .windows(2)
            .any(|w| w[0] == b'-' && w[1].is_ascii_digit());
        assert!(!negative, "a negative figure:\n{text}");
        for figure in text.lines().flat_map(figures) {
            assert!(figure >= 0.0, "{figure} in:\n{text}");
        }
        assert!(
            !text.contains("(heap)"),
            "container memory is not this process's heap:\n{text}"
        );
        let process = r.explanation.iter().find(|l| l.starts_with("This process")).unwrap();
        if let Some(anon) = r.process.rss_anon {
            let in_use = r.jemalloc.active + r.jemalloc.metadata;
            let (remainder, word) = if anon >= in_use {
                (anon - in_use, "The other ")
            } else {
                (in_use - anon, "exceed what is resident by ")
            };
            let at = process.find(word).unwrap_or_else(|| panic!("`{word}` in {process}"));
            let stated = figures(&process[at..])[0];
            assert!(
                (stated - remainder as f64 / 1048576.0).abs() < 0.051,
                "{stated} vs {remainder} in {process}"
            );
        }
        if r.cgroup.version.is_some() {
            assert!(text.contains("every process in it"), "{text}");
        }
        if r.cgroup.anon.is_some() {
            assert!(
                text.contains("anonymous memory of all processes in the container"),
                "{text}"
            );
        }
    }
}
