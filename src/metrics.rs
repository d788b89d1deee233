//! Every metric the service exports, registered in one place. Names are a
//! contract with dashboards and alerts (`deploy/`); labels use the matched
//! route, never the raw path.

use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
    TextEncoder,
};

pub const HTTP_REQUESTS_TOTAL: &str = "imaginator_http_requests_total";
pub const HTTP_REQUEST_DURATION_SECONDS: &str = "imaginator_http_request_duration_seconds";
pub const JOBS_TOTAL: &str = "imaginator_jobs_total";
pub const RENDERS_TOTAL: &str = "imaginator_renders_total";
pub const SOURCE_CACHE_TOTAL: &str = "imaginator_source_cache_total";
pub const QUEUE_DEPTH: &str = "imaginator_queue_depth";
pub const QUEUE_CAPACITY: &str = "imaginator_queue_capacity";
pub const WORKERS_ALIVE: &str = "imaginator_workers_alive";
pub const JOB_QUEUE_SECONDS: &str = "imaginator_job_queue_seconds";
pub const JOB_RUN_SECONDS: &str = "imaginator_job_run_seconds";
pub const ALIAS_REQUESTS_TOTAL: &str = "imaginator_alias_requests_total";
pub const CACHE_HITS_TOTAL: &str = "imaginator_cache_hits_total";
pub const CACHE_MISSES_TOTAL: &str = "imaginator_cache_misses_total";
pub const CACHE_EVICTIONS_TOTAL: &str = "imaginator_cache_evictions_total";
pub const CACHE_CORRUPT_TOTAL: &str = "imaginator_cache_corrupt_entries_total";
pub const CACHE_ENTRIES: &str = "imaginator_cache_entries";
pub const CACHE_BYTES: &str = "imaginator_cache_bytes";
pub const INFLIGHT_BYTES: &str = "imaginator_inflight_bytes";
pub const INFLIGHT_BYTES_LIMIT: &str = "imaginator_inflight_bytes_limit";
pub const CONNECTIONS_OPEN: &str = "imaginator_http_connections";
pub const CONNECTIONS_SHED_TOTAL: &str = "imaginator_http_connections_shed_total";
pub const CRASHES_FOUND_TOTAL: &str = "imaginator_crashes_found_total";
pub const QUARANTINED_INPUTS: &str = "imaginator_quarantined_inputs";

/// Buckets for request and job latencies, in seconds: 1 ms to 30 s.
const LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// Every metric, shared: cloning is one reference-count increment (the state
/// handed to each request holds one; a struct of collectors was measurably
/// slow to clone on the cache-hit path).
#[derive(Clone)]
pub struct Metrics(std::sync::Arc<MetricsInner>);

impl std::ops::Deref for Metrics {
    type Target = MetricsInner;
    fn deref(&self) -> &MetricsInner {
        &self.0
    }
}

pub struct MetricsInner {
    registry: Registry,
    /// By `method`, matched `route` and `status`.
    pub http_requests: IntCounterVec,
    /// By `method` and matched `route`.
    pub http_duration: HistogramVec,
    /// By `outcome`: ok, bad_input, too_large, deadline, rejected, cancelled, panic, error.
    pub jobs: IntCounterVec,
    /// Images rendered, by `engine`: `fast` (libjpeg-turbo and a SIMD
    /// resizer, `fast`) or `imagemagick`.
    pub renders: IntCounterVec,
    /// `download()` sources, by `result`: `fresh` (no origin request),
    /// `revalidated` (a 304), `downloaded`.
    pub source_cache: IntCounterVec,
    pub queue_depth: IntGauge,
    pub queue_capacity: IntGauge,
    pub workers_alive: IntGauge,
    /// Time a job waited for a worker.
    pub job_queue_seconds: Histogram,
    /// Time a job ran on a worker.
    pub job_run_seconds: Histogram,
    /// Requests that named an alias, by `alias` and `status` (aliases are
    /// configuration, so the label set is bounded; unknown names count as `unknown`).
    pub alias_requests: IntCounterVec,
    /// Result cache, by `tier` (memory, disk).
    pub cache_hits: IntCounterVec,
    pub cache_misses: IntCounterVec,
    pub cache_evictions: IntCounterVec,
    pub cache_entries: IntGaugeVec,
    pub cache_bytes: IntGaugeVec,
    /// Disk entries found damaged (checksum, length) and discarded.
    pub cache_corrupt: IntCounter,
    /// Bytes of request bodies and downloads held now (`inflight`), and the budget.
    pub inflight_bytes: IntGauge,
    pub inflight_bytes_limit: IntGauge,
    /// Open HTTP connections, lingering closes included.
    pub connections: IntGauge,
    /// Connections the server closed on its own, by `reason`: `idle` and
    /// `stuck` (shed at the connection cap to admit a new one: waiting for a
    /// request, or a client that reads no answer), `send_timeout` (an answer
    /// that made no progress for `http.send_timeout`).
    pub connections_shed: IntCounterVec,
    /// Previous runs found at start-up to have ended badly, by `kind`:
    /// `signal` (a fatal signal: a crash) or `unclean` (jobs in flight and no
    /// signal: SIGKILL, an OOM kill).
    pub crashes_found: IntCounterVec,
    /// Inputs refused because they were being decoded at repeated crashes.
    pub quarantined: IntGauge,
}

impl Metrics {
    pub fn new() -> Metrics {
        let registry = Registry::new();
        let histogram = |name: &str, help: &str, labels: &[&str]| {
            HistogramVec::new(HistogramOpts::new(name, help).buckets(LATENCY_BUCKETS.to_vec()), labels)
                .expect("valid histogram")
        };
        let m = MetricsInner {
            http_requests: IntCounterVec::new(
                Opts::new(HTTP_REQUESTS_TOTAL, "HTTP requests by method, matched route and status"),
                &["method", "route", "status"],
            )
            .expect("valid counter"),
            http_duration: histogram(
                HTTP_REQUEST_DURATION_SECONDS,
                "HTTP request duration by method and matched route",
                &["method", "route"],
            ),
            jobs: IntCounterVec::new(Opts::new(JOBS_TOTAL, "ImageMagick jobs by outcome"), &["outcome"])
                .expect("valid counter"),
            renders: IntCounterVec::new(Opts::new(RENDERS_TOTAL, "Images rendered, by engine"), &["engine"])
                .expect("valid counter"),
            source_cache: IntCounterVec::new(
                Opts::new(SOURCE_CACHE_TOTAL, "download() sources by how they were obtained"),
                &["result"],
            )
            .expect("valid counter"),
            queue_depth: IntGauge::new(QUEUE_DEPTH, "Jobs waiting for a worker").expect("valid gauge"),
            queue_capacity: IntGauge::new(QUEUE_CAPACITY, "Jobs that may wait for a worker").expect("valid gauge"),
            workers_alive: IntGauge::new(WORKERS_ALIVE, "ImageMagick worker threads alive").expect("valid gauge"),
            job_queue_seconds: Histogram::with_opts(
                HistogramOpts::new(JOB_QUEUE_SECONDS, "Time jobs waited for a worker")
                    .buckets(LATENCY_BUCKETS.to_vec()),
            )
            .expect("valid histogram"),
            job_run_seconds: Histogram::with_opts(
                HistogramOpts::new(JOB_RUN_SECONDS, "Time jobs ran on a worker").buckets(LATENCY_BUCKETS.to_vec()),
            )
            .expect("valid histogram"),
            alias_requests: IntCounterVec::new(
                Opts::new(ALIAS_REQUESTS_TOTAL, "Requests naming an alias, by alias and status"),
                &["alias", "status"],
            )
            .expect("valid counter"),
            cache_hits: IntCounterVec::new(Opts::new(CACHE_HITS_TOTAL, "Result cache hits by tier"), &["tier"])
                .expect("valid counter"),
            cache_misses: IntCounterVec::new(Opts::new(CACHE_MISSES_TOTAL, "Result cache misses by tier"), &["tier"])
                .expect("valid counter"),
            cache_evictions: IntCounterVec::new(
                Opts::new(CACHE_EVICTIONS_TOTAL, "Result cache evictions by tier"),
                &["tier"],
            )
            .expect("valid counter"),
            cache_entries: IntGaugeVec::new(Opts::new(CACHE_ENTRIES, "Result cache entries by tier"), &["tier"])
                .expect("valid gauge"),
            cache_bytes: IntGaugeVec::new(Opts::new(CACHE_BYTES, "Result cache bytes by tier"), &["tier"])
                .expect("valid gauge"),
            cache_corrupt: IntCounter::new(CACHE_CORRUPT_TOTAL, "Damaged disk cache entries discarded")
                .expect("valid counter"),
            inflight_bytes: IntGauge::new(INFLIGHT_BYTES, "Bytes of request bodies and downloads held now")
                .expect("valid gauge"),
            inflight_bytes_limit: IntGauge::new(
                INFLIGHT_BYTES_LIMIT,
                "Budget for bytes of request bodies and downloads held at once",
            )
            .expect("valid gauge"),
            connections: IntGauge::new(CONNECTIONS_OPEN, "Open HTTP connections, lingering closes included")
                .expect("valid gauge"),
            connections_shed: IntCounterVec::new(
                Opts::new(
                    CONNECTIONS_SHED_TOTAL,
                    "Connections closed by the server: idle or stuck ones shed at the connection cap, answers past http.send_timeout",
                ),
                &["reason"],
            )
            .expect("valid counter"),
            crashes_found: IntCounterVec::new(
                Opts::new(
                    CRASHES_FOUND_TOTAL,
                    "Previous runs that ended with a fatal signal (signal) or uncleanly with jobs in flight (unclean)",
                ),
                &["kind"],
            )
            .expect("valid counter"),
            quarantined: IntGauge::new(QUARANTINED_INPUTS, "Inputs refused after repeated crashes")
                .expect("valid gauge"),
            registry,
        };
        let collectors: Vec<Box<dyn prometheus::core::Collector>> = vec![
            Box::new(m.http_requests.clone()),
            Box::new(m.http_duration.clone()),
            Box::new(m.jobs.clone()),
            Box::new(m.renders.clone()),
            Box::new(m.source_cache.clone()),
            Box::new(m.queue_depth.clone()),
            Box::new(m.queue_capacity.clone()),
            Box::new(m.workers_alive.clone()),
            Box::new(m.job_queue_seconds.clone()),
            Box::new(m.job_run_seconds.clone()),
            Box::new(m.alias_requests.clone()),
            Box::new(m.cache_hits.clone()),
            Box::new(m.cache_misses.clone()),
            Box::new(m.cache_evictions.clone()),
            Box::new(m.cache_entries.clone()),
            Box::new(m.cache_bytes.clone()),
            Box::new(m.cache_corrupt.clone()),
            Box::new(m.inflight_bytes.clone()),
            Box::new(m.inflight_bytes_limit.clone()),
            Box::new(m.connections.clone()),
            Box::new(m.connections_shed.clone()),
            Box::new(m.crashes_found.clone()),
            Box::new(m.quarantined.clone()),
        ];
        for c in collectors {
            m.registry.register(c).expect("metric names are unique");
        }
        Metrics(std::sync::Arc::new(m))
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut buf);
        String::from_utf8(buf).unwrap_or_default()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

/// Memory gauges, read fresh from a `MemoryReport` at every scrape. A figure
/// that does not exist here (no cgroup, for example) is left out of the
/// scrape rather than reported as 0.
pub const MEMORY_GAUGES: [(&str, &str); 30] = [
    (
        "imaginator_jemalloc_allocated_bytes",
        "Bytes in live allocations (Rust and ImageMagick)",
    ),
    (
        "imaginator_heap_outside_cache_bytes",
        "Live allocations minus the caches' memory tiers (bounded by cache.memory and cache.sources_memory)",
    ),
    (
        "imaginator_heap_at_rest_bytes",
        "Live allocations minus the caches' memory tiers and the work in flight (running jobs, request bodies, profiles): the figure whose floor grows on a leak, and only on a leak",
    ),
    ("imaginator_jemalloc_active_bytes", "Bytes in active jemalloc pages"),
    (
        "imaginator_jemalloc_resident_bytes",
        "Bytes of resident pages jemalloc maps",
    ),
    ("imaginator_jemalloc_mapped_bytes", "Bytes in jemalloc's mapped extents"),
    (
        "imaginator_jemalloc_retained_bytes",
        "Bytes jemalloc retains as virtual memory (not resident)",
    ),
    ("imaginator_jemalloc_metadata_bytes", "Bytes of jemalloc metadata"),
    ("imaginator_process_rss_bytes", "Process resident set size"),
    (
        "imaginator_process_rss_anon_bytes",
        "Process anonymous resident memory (heap, stacks)",
    ),
    (
        "imaginator_process_rss_file_bytes",
        "Process file-backed resident memory (binary, libraries)",
    ),
    (
        "imaginator_process_rss_shmem_bytes",
        "Process shared-memory resident memory",
    ),
    ("imaginator_process_pss_bytes", "Process proportional set size"),
    (
        "imaginator_process_anonymous_bytes",
        "Process anonymous memory from smaps_rollup",
    ),
    (
        "imaginator_cgroup_memory_current_bytes",
        "Memory charged to the container's cgroup, page cache included",
    ),
    ("imaginator_cgroup_memory_max_bytes", "The cgroup's memory limit"),
    ("imaginator_cgroup_anon_bytes", "Anonymous memory charged to the cgroup"),
    ("imaginator_cgroup_file_bytes", "Page cache charged to the cgroup"),
    (
        "imaginator_cgroup_active_file_bytes",
        "Active page cache charged to the cgroup (counted in the working set)",
    ),
    (
        "imaginator_cgroup_inactive_file_bytes",
        "Inactive page cache charged to the cgroup",
    ),
    ("imaginator_cgroup_shmem_bytes", "Shared memory charged to the cgroup"),
    ("imaginator_cgroup_kernel_bytes", "Kernel memory charged to the cgroup"),
    (
        "imaginator_cgroup_working_set_bytes",
        "memory_current - inactive_file, as cAdvisor's working set",
    ),
    (
        "imaginator_imagemagick_memory_bytes",
        "ImageMagick pixel-cache memory in use",
    ),
    (
        "imaginator_imagemagick_map_bytes",
        "ImageMagick memory-mapped pixel cache in use",
    ),
    (
        "imaginator_imagemagick_disk_bytes",
        "ImageMagick disk pixel cache in use",
    ),
    (
        "imaginator_imagemagick_area_pixels",
        "ImageMagick's area resource: the pixel area of the last pixel cache it opened (not a total in use)",
    ),
    (
        "imaginator_imagemagick_reserved_bytes",
        "Pixel-cache bytes running jobs reserved before decoding (admission estimate)",
    ),
    (
        "imaginator_allocator_c_malloc_tracked",
        "1 when C malloc (ImageMagick) is served and counted by jemalloc",
    ),
    (
        "imaginator_heap_profiling_active",
        "1 while jemalloc heap profiling samples allocations",
    ),
];

fn memory_values(r: &crate::memory::report::MemoryReport) -> [Option<u64>; 30] {
    let (j, p, c, im) = (&r.jemalloc, &r.process, &r.cgroup, &r.imagemagick);
    [
        Some(j.allocated),
        Some(j.allocated.saturating_sub(r.result_cache.in_memory())),
        Some(r.heap.now),
        Some(j.active),
        Some(j.resident),
        Some(j.mapped),
        Some(j.retained),
        Some(j.metadata),
        p.rss,
        p.rss_anon,
        p.rss_file,
        p.rss_shmem,
        p.pss,
        p.anonymous,
        c.memory_current,
        c.memory_max,
        c.anon,
        c.file,
        c.active_file,
        c.inactive_file,
        c.shmem,
        c.kernel,
        c.working_set,
        Some(im.memory),
        Some(im.map),
        Some(im.disk),
        Some(im.area),
        Some(im.reserved),
        Some(u64::from(r.allocator.c_malloc_tracked)),
        Some(u64::from(r.allocator.profiling_active)),
    ]
}

type ReportSource = Box<dyn Fn() -> crate::memory::report::MemoryReport + Send + Sync>;

struct MemoryCollector {
    source: ReportSource,
    descs: Vec<prometheus::core::Desc>,
}

impl prometheus::core::Collector for MemoryCollector {
    fn desc(&self) -> Vec<&prometheus::core::Desc> {
        self.descs.iter().collect()
    }

    fn collect(&self) -> Vec<prometheus::proto::MetricFamily> {
        let report = (self.source)();
        MEMORY_GAUGES
            .iter()
            .zip(memory_values(&report))
            .filter_map(|((name, help), value)| {
                let gauge = prometheus::Gauge::new(*name, *help).ok()?;
                gauge.set(value? as f64);
                Some(prometheus::core::Collector::collect(&gauge))
            })
            .flatten()
            .collect()
    }
}

impl Metrics {
    /// Exports the memory gauges, computed by `source` at each scrape.
    pub fn register_memory(&self, source: ReportSource) {
        let descs = MEMORY_GAUGES
            .iter()
            .filter_map(|(name, help)| {
                let gauge = prometheus::Gauge::new(*name, *help).ok()?;
                prometheus::core::Collector::desc(&gauge).into_iter().next().cloned()
            })
            .collect();
        let _ = self.registry.register(Box::new(MemoryCollector { source, descs }));
    }
}
