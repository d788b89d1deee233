//! One report that reconciles what Kubernetes plots with what the process
//! really holds: jemalloc heap, process RSS split, cgroup (v2, or v1) with the
//! working set computed as cAdvisor does, and ImageMagick's own accounting.

use super::JemallocStats;
use serde::Serialize;
use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// This process only, from `/proc/self/status` and `/proc/self/smaps_rollup`,
/// in bytes.
#[derive(Clone, Debug, Default, Serialize)]
pub struct ProcessMemory {
    pub rss: Option<u64>,
    /// Anonymous resident memory: what the OOM killer counts for this process.
    pub rss_anon: Option<u64>,
    pub rss_file: Option<u64>,
    pub rss_shmem: Option<u64>,
    pub pss: Option<u64>,
    pub anonymous: Option<u64>,
    /// Pages released with `MADV_FREE` that the kernel has not taken back yet
    /// (still in `rss_anon`).
    pub lazy_free: Option<u64>,
    /// Threads of the process (each has a stack).
    pub threads: Option<u64>,
}

/// The memory cgroup the process is in (the whole container: every process in
/// it, not only this one), in bytes; every field is null outside one.
#[derive(Clone, Debug, Default, Serialize)]
pub struct CgroupMemory {
    /// 2 or 1; null when no memory cgroup was found.
    pub version: Option<u8>,
    pub memory_current: Option<u64>,
    /// Null when unlimited.
    pub memory_max: Option<u64>,
    pub anon: Option<u64>,
    pub file: Option<u64>,
    pub active_file: Option<u64>,
    pub inactive_file: Option<u64>,
    pub shmem: Option<u64>,
    pub kernel: Option<u64>,
    /// `memory_current - inactive_file`, floored at 0: what cAdvisor reports as
    /// `container_memory_working_set_bytes`. It includes active page cache.
    pub working_set: Option<u64>,
}

/// ImageMagick's resource accounting (bytes, except `area` in pixels).
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct ImageMagickMemory {
    pub memory: u64,
    pub map: u64,
    pub disk: u64,
    /// ImageMagick's area resource: the pixel area of the last pixel cache
    /// it opened (not a total of what is in use).
    pub area: u64,
    /// Pixel-cache bytes running jobs reserved before decoding (their
    /// estimated need; `magick::budget`). Compare with `memory`.
    pub reserved: u64,
}

#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct ResultCacheMemory {
    pub memory_bytes: u64,
    pub disk_bytes: u64,
    /// Downloaded source images the source cache keeps (bounded by
    /// `cache.sources_memory`).
    pub sources_bytes: u64,
}

impl ResultCacheMemory {
    /// Heap the caches hold by design, up to their budgets.
    pub fn in_memory(&self) -> u64 {
        self.memory_bytes + self.sources_bytes
    }
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct AllocatorInfo {
    /// A C `malloc` in this process is counted by jemalloc (checked at start-up).
    pub c_malloc_tracked: bool,
    /// An allocation made inside ImageMagick is counted by jemalloc.
    pub imagemagick_malloc_tracked: bool,
    pub profiling_enabled: bool,
    pub profiling_active: bool,
    /// Average bytes between samples when profiling is active.
    pub profiling_sample_bytes: u64,
}

/// The heap at rest over time: live allocations minus the caches' memory
/// tiers (which fill up to `cache.memory` and `cache.sources_memory` by
/// design) and minus what the work in flight holds (running jobs, request
/// bodies and downloads, the service's own profiles: `memory::work`). Its
/// floor (the minimum over a window) grows when something leaks; neither a
/// burst nor a steady load moves it, since what they hold is in flight.
#[derive(Clone, Debug, Default, Serialize)]
pub struct HeapTrend {
    /// Live allocations when the service started.
    pub at_start: u64,
    /// The heap at rest now.
    pub now: u64,
    /// What the work in flight holds now (left out of `now`).
    pub in_flight: u64,
    /// Minimum and maximum of the heap at rest over the last window.
    pub floor_recent: Option<u64>,
    pub peak_recent: Option<u64>,
    /// Minimum over the window before it.
    pub floor_previous: Option<u64>,
    pub window_seconds: u64,
    /// Samples the verdict read (one every `sample_seconds`).
    pub samples: usize,
    pub sample_seconds: u64,
    /// `stable`, `growing` or `unknown` (not enough history yet).
    pub verdict: &'static str,
}

/// One sample of the memory sampler: the heap at rest (the verdict's
/// figure) and what the memory page draws, so that someone who opens the
/// page mid-incident sees the minutes before (`/debug/memory/history`).
#[derive(Clone, Debug, Default, Serialize)]
pub struct Sample {
    /// Milliseconds since the epoch.
    pub t: u64,
    pub at_rest: u64,
    pub in_flight: u64,
    pub allocated: u64,
    pub caches: u64,
    pub imagemagick: u64,
    pub rss_anon: Option<u64>,
    pub cgroup_anon: Option<u64>,
    /// Kernel memory and shared memory charged to the cgroup.
    pub cgroup_kernel: Option<u64>,
    pub active_file: Option<u64>,
    pub inactive_file: Option<u64>,
    pub working_set: Option<u64>,
    pub memory_max: Option<u64>,
}

#[derive(Clone, Debug, Serialize)]
pub struct MemoryReport {
    pub jemalloc: JemallocStats,
    pub process: ProcessMemory,
    pub cgroup: CgroupMemory,
    pub imagemagick: ImageMagickMemory,
    pub result_cache: ResultCacheMemory,
    pub allocator: AllocatorInfo,
    pub heap: HeapTrend,
    pub explanation: Vec<String>,
}

/// Parses `Key:   123 kB` lines into bytes.
pub fn parse_kb_fields(text: &str) -> HashMap<String, u64> {
    text.lines()
        .filter_map(|line| {
            let (key, rest) = line.split_once(':')?;
            let mut parts = rest.split_whitespace();
            let value: u64 = parts.next()?.parse().ok()?;
            let scale = if parts.next() == Some("kB") { 1024 } else { 1 };
            Some((key.trim().to_string(), value * scale))
        })
        .collect()
}

/// Parses `key value` lines (cgroup `memory.stat`).
pub fn parse_flat_keyed(text: &str) -> HashMap<String, u64> {
    text.lines()
        .filter_map(|line| {
            let (key, value) = line.split_once(' ')?;
            Some((key.to_string(), value.trim().parse().ok()?))
        })
        .collect()
}

impl ProcessMemory {
    pub fn read() -> ProcessMemory {
        let status = std::fs::read_to_string("/proc/self/status")
            .map(|t| parse_kb_fields(&t))
            .unwrap_or_default();
        let rollup = std::fs::read_to_string("/proc/self/smaps_rollup")
            .map(|t| parse_kb_fields(&t))
            .unwrap_or_default();
        ProcessMemory {
            rss: status.get("VmRSS").copied(),
            rss_anon: status.get("RssAnon").copied(),
            rss_file: status.get("RssFile").copied(),
            rss_shmem: status.get("RssShmem").copied(),
            pss: rollup.get("Pss").copied(),
            anonymous: rollup.get("Anonymous").copied(),
            lazy_free: rollup.get("LazyFree").copied(),
            threads: status.get("Threads").copied(),
        }
    }
}

/// Values at or above this are "no limit" in cgroup v1 (`9223372036854771712`).
const V1_UNLIMITED: u64 = 1 << 62;

impl CgroupMemory {
    /// Finds the process's memory cgroup under `root` (normally `/sys/fs/cgroup`)
    /// using `proc_cgroup` (the text of `/proc/self/cgroup`).
    pub fn read_from(root: &Path, proc_cgroup: &str) -> CgroupMemory {
        let read = |p: PathBuf| std::fs::read_to_string(p).ok();
        let num = |p: PathBuf| read(p).and_then(|t| t.trim().parse::<u64>().ok());

        // cgroup v2: one hierarchy, line `0::/path`.
        if let Some(path) = proc_cgroup.lines().find_map(|l| l.strip_prefix("0::")) {
            let candidates = [root.join(path.trim_start_matches('/')), root.to_path_buf()];
            if let Some(dir) = candidates.into_iter().find(|d| d.join("memory.current").is_file()) {
                let stat = read(dir.join("memory.stat"))
                    .map(|t| parse_flat_keyed(&t))
                    .unwrap_or_default();
                let max = read(dir.join("memory.max")).and_then(|t| t.trim().parse::<u64>().ok());
                return CgroupMemory::from_parts(
                    2,
                    num(dir.join("memory.current")),
                    max,
                    &stat,
                    ["anon", "file", "active_file", "inactive_file", "shmem", "kernel"],
                    None,
                );
            }
        }
        // cgroup v1: the `memory` controller's line, `N:memory:/path`.
        if let Some(path) = proc_cgroup.lines().find_map(|l| {
            let mut parts = l.splitn(3, ':');
            let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
            controllers.split(',').any(|c| c == "memory").then_some(path)
        }) {
            let base = root.join("memory");
            let candidates = [base.join(path.trim_start_matches('/')), base];
            if let Some(dir) = candidates
                .into_iter()
                .find(|d| d.join("memory.usage_in_bytes").is_file())
            {
                let stat = read(dir.join("memory.stat"))
                    .map(|t| parse_flat_keyed(&t))
                    .unwrap_or_default();
                let max = num(dir.join("memory.limit_in_bytes")).filter(|&m| m < V1_UNLIMITED);
                let kernel = num(dir.join("memory.kmem.usage_in_bytes"));
                return CgroupMemory::from_parts(
                    1,
                    num(dir.join("memory.usage_in_bytes")),
                    max,
                    &stat,
                    [
                        "total_rss",
                        "total_cache",
                        "total_active_file",
                        "total_inactive_file",
                        "total_shmem",
                        "",
                    ],
                    kernel,
                );
            }
        }
        CgroupMemory::default()
    }

    pub fn read() -> CgroupMemory {
        let proc_cgroup = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
        CgroupMemory::read_from(Path::new("/sys/fs/cgroup"), &proc_cgroup)
    }

    /// `keys`: the stat names of anon, file, active_file, inactive_file, shmem, kernel.
    fn from_parts(
        version: u8,
        current: Option<u64>,
        max: Option<u64>,
        stat: &HashMap<String, u64>,
        keys: [&str; 6],
        kernel: Option<u64>,
    ) -> CgroupMemory {
        let get = |k: &str| stat.get(k).copied();
        let inactive_file = get(keys[3]);
        CgroupMemory {
            version: Some(version),
            memory_current: current,
            memory_max: max,
            anon: get(keys[0]),
            file: get(keys[1]),
            active_file: get(keys[2]),
            inactive_file,
            shmem: get(keys[4]),
            kernel: kernel.or_else(|| get(keys[5])),
            working_set: current.map(|c| c.saturating_sub(inactive_file.unwrap_or(0))),
        }
    }
}

/// Samples of `jemalloc.allocated`, kept for two comparison windows.
pub struct HeapHistory {
    started: Instant,
    at_start: u64,
    /// Length of each comparison window (`memory.trend_window`).
    window: Duration,
    samples: Mutex<VecDeque<(Instant, Sample)>>,
}

/// The default length of each comparison window.
pub const TREND_WINDOW: Duration = Duration::from_secs(600);

impl HeapHistory {
    pub fn new(window: Duration) -> HeapHistory {
        HeapHistory {
            started: Instant::now(),
            at_start: JemallocStats::read().allocated,
            window,
            samples: Mutex::new(VecDeque::new()),
        }
    }

    pub fn window(&self) -> Duration {
        self.window
    }

    /// How often the sampler samples: ten samples a window, at most every
    /// 10 s and at least every second.
    pub fn sample_every(&self) -> Duration {
        (self.window / 10).clamp(Duration::from_secs(1), Duration::from_secs(10))
    }

    /// Keeps `sample` for two windows and a minute.
    pub fn record(&self, sample: Sample) {
        let now = Instant::now();
        let mut samples = self.samples.lock().unwrap_or_else(|e| e.into_inner());
        samples.push_back((now, sample));
        let history = 2 * self.window + Duration::from_secs(60);
        while samples.front().is_some_and(|(t, _)| now.duration_since(*t) > history) {
            samples.pop_front();
        }
    }

    /// Every sample kept, oldest first.
    pub fn samples(&self) -> Vec<Sample> {
        let samples = self.samples.lock().unwrap_or_else(|e| e.into_inner());
        samples.iter().map(|(_, s)| s.clone()).collect()
    }

    /// The verdict over the last two windows of `window` (`now`: the heap
    /// at rest now, `in_flight`: what the work in flight holds).
    pub fn trend(&self, now_at_rest: u64, in_flight: u64, window: Duration) -> HeapTrend {
        let now = Instant::now();
        let samples = self.samples.lock().unwrap_or_else(|e| e.into_inner());
        let in_window = |from: Duration, to: Duration| {
            samples
                .iter()
                .filter(move |(t, _)| {
                    let age = now.duration_since(*t);
                    age >= from && age < to
                })
                .map(|(_, s)| s.at_rest)
        };
        let floor_recent = in_window(Duration::ZERO, window).min();
        let peak_recent = in_window(Duration::ZERO, window).max();
        let floor_previous = if now.duration_since(self.started) >= 2 * window {
            in_window(window, 2 * window).min()
        } else {
            None
        };
        let verdict = match (floor_recent, floor_previous) {
            (Some(recent), Some(previous)) => {
                // Growth of the floor by more than 10% and 16 MiB between windows.
                let grew = recent.saturating_sub(previous);
                if grew > previous / 10 && grew > 16 << 20 {
                    "growing"
                } else {
                    "stable"
                }
            }
            _ => "unknown",
        };
        HeapTrend {
            at_start: self.at_start,
            now: now_at_rest,
            in_flight,
            floor_recent,
            peak_recent,
            floor_previous,
            window_seconds: window.as_secs(),
            samples: in_window(Duration::ZERO, 2 * window).count(),
            sample_seconds: self.sample_every().as_secs(),
            verdict,
        }
    }
}

impl Default for HeapHistory {
    fn default() -> Self {
        HeapHistory::new(TREND_WINDOW)
    }
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1 << 20) as f64)
}

impl MemoryReport {
    /// Writes the plain-language reading of the figures. Every figure is
    /// named for what it counts (this process, or the whole container), and
    /// a remainder is printed only when it is one: when two figures do not
    /// add up the way a reader expects, the text says why.
    pub fn explain(&mut self) {
        let mut lines = Vec::new();
        let c = &self.cgroup;
        match (c.memory_current, c.working_set) {
            (Some(current), Some(ws)) => {
                let inactive = c.inactive_file.unwrap_or(0);
                lines.push(format!(
                    "Container (its cgroup: every process in it): working set {} = memory in use {} - inactive page cache {}. \
                     This is container_memory_working_set_bytes, the figure the kubelet evicts on and dashboards plot; \
                     the OOM killer acts when memory in use reaches the limit ({}) and the kernel cannot reclaim page cache first.",
                    mib(ws),
                    mib(current),
                    mib(inactive),
                    c.memory_max.map_or("none".to_string(), mib)
                ));
                let mut parts = vec![format!(
                    "{} active page cache (file data such as the disk cache: reclaimable, not a leak)",
                    mib(c.active_file.unwrap_or(0).min(ws))
                )];
                if let Some(anon) = c.anon {
                    parts.push(format!(
                        "{} anonymous memory of all processes in the container",
                        mib(anon)
                    ));
                }
                if let Some(kernel) = c.kernel.filter(|k| *k > 16 << 20 || *k > ws / 20) {
                    parts.push(format!("{} kernel memory (sockets, inodes, page tables)", mib(kernel)));
                }
                lines.push(format!("The container's working set holds {}.", parts.join(", ")));
            }
            _ => lines.push(
                "No memory cgroup found: container figures are unavailable (not running in a container?).".into(),
            ),
        }
        lines.push(self.explain_process());
        if self.allocator.c_malloc_tracked {
            lines.push(format!(
                "ImageMagick allocates through jemalloc, so its {} of pixel cache is inside this process's live allocations and inside heap profiles.",
                mib(self.imagemagick.memory)
            ));
        } else {
            lines.push("WARNING: C malloc is not served by jemalloc; ImageMagick's memory is invisible to the heap figures and profiles.".into());
        }
        let h = &self.heap;
        lines.push(format!(
            "Live heap {} = caches' memory tiers {} + work in flight {} (running jobs, request bodies, the service's own profiles) + heap at rest {}.",
            mib(self.jemalloc.allocated),
            mib(self.result_cache.in_memory()),
            mib(h.in_flight),
            mib(h.now)
        ));
        lines.push(match h.verdict {
            "stable" => format!(
                "Heap at rest stable: its floor is {} over the last {} s vs {} in the {} s before ({} samples in both). A leak raises this floor; caches, bursts and steady load do not.",
                mib(h.floor_recent.unwrap_or(0)),
                h.window_seconds,
                mib(h.floor_previous.unwrap_or(0)),
                h.window_seconds,
                h.samples
            ),
            "growing" => format!(
                "Heap at rest GROWING: its floor is {} over the last {} s vs {} before; compare heap profiles with /debug/heap_growth to see which stacks grow.",
                mib(h.floor_recent.unwrap_or(0)),
                h.window_seconds,
                mib(h.floor_previous.unwrap_or(0))
            ),
            _ => format!(
                "Heap at rest {} now; a verdict on growth needs {} s of history (a sample every {} s).",
                mib(h.now),
                2 * h.window_seconds,
                h.sample_seconds
            ),
        });
        self.explanation = lines;
    }

    /// This process's anonymous memory against jemalloc's accounting, sampled
    /// together. jemalloc's pages in use (`active`) plus its metadata are
    /// what it has handed out; the kernel's `rss_anon` is what is resident.
    fn explain_process(&self) -> String {
        let j = &self.jemalloc;
        let Some(anon) = self.process.rss_anon else {
            return format!(
                "This process: live allocations {} (jemalloc); its resident memory is unavailable here.",
                mib(j.allocated)
            );
        };
        let in_use = j.active + j.metadata;
        let head = format!(
            "This process: anonymous resident memory {} (the kernel's count, what the OOM killer weighs). \
             jemalloc: live allocations {} in pages of {} (the difference is room inside pages), metadata {}, \
             free pages not yet returned to the kernel {}.",
            mib(anon),
            mib(j.allocated),
            mib(j.active),
            mib(j.metadata),
            mib(j.resident.saturating_sub(in_use)),
        );
        if anon >= in_use {
            let threads = self
                .process
                .threads
                .map_or(String::new(), |t| format!(" ({t} threads)"));
            format!(
                "{head} The other {} of resident memory is not jemalloc's pages in use: freed pages still resident, thread stacks{threads} and libraries' own data.",
                mib(anon - in_use)
            )
        } else {
            let lazy = self
                .process
                .lazy_free
                .filter(|l| *l >= 100 << 10)
                .map_or(String::new(), |l| format!(" ({} lazily freed)", mib(l)));
            format!(
                "{head} jemalloc's pages in use and metadata ({}) exceed what is resident by {}: pages handed out but not yet touched, or released with MADV_FREE{lazy}, count for jemalloc, not for the kernel.",
                mib(in_use),
                mib(in_use - anon)
            )
        }
    }

    /// A human-readable rendering (`?format=text`).
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        let opt = |v: Option<u64>| v.map_or("n/a".to_string(), mib);
        let j = &self.jemalloc;
        let p = &self.process;
        let c = &self.cgroup;
        let im = &self.imagemagick;
        out.push_str(&format!(
            "jemalloc     allocated {}  active {}  resident {}  mapped {}  retained {}  metadata {}\n",
            mib(j.allocated),
            mib(j.active),
            mib(j.resident),
            mib(j.mapped),
            mib(j.retained),
            mib(j.metadata)
        ));
        out.push_str(&format!(
            "process      rss {}  anon {}  file {}  shmem {}  pss {}  anonymous {}  lazy_free {}  threads {}\n",
            opt(p.rss),
            opt(p.rss_anon),
            opt(p.rss_file),
            opt(p.rss_shmem),
            opt(p.pss),
            opt(p.anonymous),
            opt(p.lazy_free),
            p.threads.map_or("n/a".into(), |t| t.to_string())
        ));
        out.push_str(&format!(
            "container    cgroup v{}  current {}  max {}  anon {}  file {}  active_file {}  inactive_file {}  shmem {}  kernel {}  working_set {}\n",
            c.version.map_or("?".into(), |v| v.to_string()),
            opt(c.memory_current), opt(c.memory_max), opt(c.anon), opt(c.file), opt(c.active_file),
            opt(c.inactive_file), opt(c.shmem), opt(c.kernel), opt(c.working_set)
        ));
        out.push_str(&format!(
            "imagemagick  memory {}  map {}  disk {}  reserved by jobs {}  (last pixel cache {} px)\n",
            mib(im.memory),
            mib(im.map),
            mib(im.disk),
            mib(im.reserved),
            im.area
        ));
        out.push_str(&format!(
            "cache        memory {}  disk {}  sources {}\n",
            mib(self.result_cache.memory_bytes),
            mib(self.result_cache.disk_bytes),
            mib(self.result_cache.sources_bytes)
        ));
        out.push_str(&format!(
            "allocator    c_malloc_tracked {}  imagemagick_malloc_tracked {}  profiling enabled {} active {}\n\n",
            self.allocator.c_malloc_tracked,
            self.allocator.imagemagick_malloc_tracked,
            self.allocator.profiling_enabled,
            self.allocator.profiling_active
        ));
        for line in &self.explanation {
            out.push_str(line);
            out.push('\n');
        }
        out
    }
}

#[cfg(test)]
mod tests;
