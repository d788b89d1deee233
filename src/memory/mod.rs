//! Memory you can explain. jemalloc is the allocator of the whole process:
//! Rust through `#[global_allocator]`, and C (ImageMagick, libjpeg, libpng,
//! ...) because the `unprefixed_malloc_on_supported_platforms` feature makes
//! jemalloc export `malloc`/`free` themselves. One allocator means one set of
//! statistics and heap profiles that include ImageMagick.
//!
//! - `jemalloc`: statistics and the start-up check that C `malloc` is counted.
//! - `report`: process, cgroup and allocator figures reconciled in one report.
//! - `profile`: heap profiles (jemalloc, pprof, flame graph) and their growth.
//! - `work`: the heap work in flight holds, so the trend sees the heap at rest.

mod pprof;
pub mod profile;
pub mod report;
pub mod symbols;
pub mod work;

use serde::Serialize;
use tikv_jemalloc_ctl::{epoch, stats};

#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc's compiled-in options, read at its first allocation; `MALLOC_CONF`
/// (not `_RJEM_MALLOC_CONF`, since the build is unprefixed) overrides them.
///
/// - `prof:true,prof_active:false`: heap profiling compiled in and armed but
///   inactive, so it costs nothing until an operator turns it on.
/// - `lg_prof_sample:19`: when active, sample one allocation per 512 KiB on
///   average.
/// - `background_thread:true` with `dirty_decay_ms:1000,muzzy_decay_ms:1000`:
///   freed pages go back to the OS about a second after a burst, by a
///   background thread, so RSS follows the heap down without waiting for the
///   next allocation.
#[allow(non_upper_case_globals)]
#[unsafe(export_name = "malloc_conf")]
pub static malloc_conf: Option<&'static std::ffi::c_char> = Some(
    // SAFETY: a pointer to the first byte of a static NUL-terminated string.
    unsafe {
        &*c"prof:true,prof_active:false,lg_prof_sample:19,background_thread:true,dirty_decay_ms:1000,muzzy_decay_ms:1000"
            .as_ptr()
    },
);

/// jemalloc's own accounting, in bytes.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct JemallocStats {
    /// Bytes in live allocations.
    pub allocated: u64,
    /// Bytes in active pages (allocated plus fragmentation within pages).
    pub active: u64,
    /// Bytes in physically resident pages jemalloc maps (includes dirty pages not yet returned).
    pub resident: u64,
    /// Bytes in mapped extents.
    pub mapped: u64,
    /// Bytes retained as virtual memory, unmapped from RAM (not RSS).
    pub retained: u64,
    /// Bytes of jemalloc's own metadata.
    pub metadata: u64,
}

impl JemallocStats {
    pub fn read() -> JemallocStats {
        // Statistics are cached; advancing the epoch refreshes them.
        let _ = epoch::advance();
        let get = |r: tikv_jemalloc_ctl::Result<usize>| r.map_or(0, |v| v as u64);
        JemallocStats {
            allocated: get(stats::allocated::read()),
            active: get(stats::active::read()),
            resident: get(stats::resident::read()),
            mapped: get(stats::mapped::read()),
            retained: get(stats::retained::read()),
            metadata: get(stats::metadata::read()),
        }
    }
}

/// Size of the probe allocation: large enough to stand out of any noise from
/// other threads, and served directly from extents (not thread caches).
const PROBE_BYTES: usize = 64 << 20;

/// Whether memory obtained with `alloc` and released with `free` is counted by
/// jemalloc (`stats.allocated` grows by at least the probe size meanwhile).
/// `stats.allocated` is process-wide: other threads freeing a lot between the
/// two readings can hide the probe, so one attempt in three must see it (an
/// untracked allocator never shows the growth, however often it is tried).
///
/// The block is written through and its pointer passed through `black_box`:
/// an optimiser may delete a `malloc`/`free` pair whose memory is never used
/// (release builds did, and the probe then reported C allocations as
/// untracked); `tests/it/release.rs` checks the release binary.
pub fn allocation_is_tracked(alloc: impl Fn(usize) -> *mut u8, free: impl Fn(*mut u8)) -> bool {
    (0..3).any(|_| {
        let before = JemallocStats::read().allocated;
        let ptr = std::hint::black_box(alloc(PROBE_BYTES));
        if ptr.is_null() {
            return false;
        }
        // SAFETY: `ptr` is a live block of PROBE_BYTES bytes from `alloc`.
        unsafe { std::ptr::write_volatile(ptr, 1) };
        let during = JemallocStats::read().allocated;
        free(std::hint::black_box(ptr));
        during.saturating_sub(before) >= PROBE_BYTES as u64
    })
}

/// Whether a plain C `malloc` in this process is served by jemalloc.
pub fn c_malloc_tracked() -> bool {
    allocation_is_tracked(
        // SAFETY: malloc/free of a block we own for the duration of the probe.
        |n| unsafe { libc::malloc(n) as *mut u8 },
        |p| unsafe { libc::free(p as *mut libc::c_void) },
    )
}

use report::{
    AllocatorInfo, CgroupMemory, HeapHistory, ImageMagickMemory, MemoryReport, ProcessMemory, ResultCacheMemory, Sample,
};
use std::sync::Mutex;

/// What the service keeps about its memory: start-up checks, the heap's
/// history, and the profiling state operators drive.
pub struct MemoryState {
    pub history: HeapHistory,
    pub c_malloc_tracked: bool,
    pub imagemagick_malloc_tracked: bool,
    /// Held while a profile is dumped or a growth window runs: one at a time.
    pub profiling: tokio::sync::Mutex<()>,
    /// A stored heap profile to compare against (`heap_v2` text), and its
    /// bytes declared as held by the diagnostics (`work::hold`).
    pub baseline: Mutex<Option<(Vec<u8>, work::Held)>>,
}

impl MemoryState {
    /// `trend_window`: the length of each window the heap-floor verdict compares.
    pub fn new(
        c_malloc_tracked: bool,
        imagemagick_malloc_tracked: bool,
        trend_window: std::time::Duration,
    ) -> MemoryState {
        MemoryState {
            history: HeapHistory::new(trend_window),
            c_malloc_tracked,
            imagemagick_malloc_tracked,
            profiling: tokio::sync::Mutex::new(()),
            baseline: Mutex::new(None),
        }
    }

    /// Gathers every figure now. `imagemagick` and `cache` come from their
    /// owners; `bodies`: bytes of request bodies and downloads held now.
    pub fn report(&self, imagemagick: ImageMagickMemory, result_cache: ResultCacheMemory, bodies: u64) -> MemoryReport {
        let jemalloc = JemallocStats::read();
        let in_flight = work::in_flight() + bodies;
        let at_rest = jemalloc.allocated.saturating_sub(result_cache.in_memory() + in_flight);
        let mut report = MemoryReport {
            jemalloc,
            process: ProcessMemory::read(),
            cgroup: CgroupMemory::read(),
            imagemagick,
            result_cache,
            allocator: AllocatorInfo {
                c_malloc_tracked: self.c_malloc_tracked,
                imagemagick_malloc_tracked: self.imagemagick_malloc_tracked,
                profiling_enabled: profile::enabled(),
                profiling_active: profile::active(),
                profiling_sample_bytes: profile::sample_bytes(),
            },
            heap: self.history.trend(at_rest, in_flight, self.history.window()),
            explanation: Vec::new(),
        };
        report.explain();
        report
    }

    /// One sample for the history (`HeapHistory::record`): the heap at rest
    /// and the figures the memory page draws.
    pub fn sample(&self, imagemagick: ImageMagickMemory, result_cache: ResultCacheMemory, bodies: u64) -> Sample {
        let allocated = JemallocStats::read().allocated;
        let in_flight = work::in_flight() + bodies;
        let caches = result_cache.in_memory();
        let process = ProcessMemory::read();
        let cgroup = CgroupMemory::read();
        Sample {
            t: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64),
            at_rest: allocated.saturating_sub(caches + in_flight),
            in_flight,
            allocated,
            caches,
            imagemagick: imagemagick.memory,
            rss_anon: process.rss_anon,
            cgroup_anon: cgroup.anon,
            cgroup_kernel: cgroup.kernel.map(|k| k + cgroup.shmem.unwrap_or(0)),
            active_file: cgroup.active_file,
            inactive_file: cgroup.inactive_file,
            working_set: cgroup.working_set,
            memory_max: cgroup.memory_max,
        }
    }
}
