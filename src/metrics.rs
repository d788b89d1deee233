//! Every metric the service exports, registered in one place. Names are a
//! contract with dashboards and alerts (`deploy/`); labels use the matched
//! route, never the raw path.

use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, Opts, Registry, TextEncoder,
};

pub const HTTP_REQUESTS_TOTAL: &str = "imaginator_http_requests_total";
pub const HTTP_REQUEST_DURATION_SECONDS: &str = "imaginator_http_request_duration_seconds";
pub const JOBS_TOTAL: &str = "imaginator_jobs_total";
pub const QUEUE_DEPTH: &str = "imaginator_queue_depth";
pub const QUEUE_CAPACITY: &str = "imaginator_queue_capacity";
pub const WORKERS_ALIVE: &str = "imaginator_workers_alive";
pub const JOB_QUEUE_SECONDS: &str = "imaginator_job_queue_seconds";
pub const JOB_RUN_SECONDS: &str = "imaginator_job_run_seconds";

/// Buckets for request and job latencies, in seconds: 1 ms to 30 s.
const LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    /// By `method`, matched `route` and `status`.
    pub http_requests: IntCounterVec,
    /// By `method` and matched `route`.
    pub http_duration: HistogramVec,
    /// By `outcome`: ok, bad_input, too_large, deadline, rejected, cancelled, panic, error.
    pub jobs: IntCounterVec,
    pub queue_depth: IntGauge,
    pub queue_capacity: IntGauge,
    pub workers_alive: IntGauge,
    /// Time a job waited for a worker.
    pub job_queue_seconds: Histogram,
    /// Time a job ran on a worker.
    pub job_run_seconds: Histogram,
}

impl Metrics {
    pub fn new() -> Metrics {
        let registry = Registry::new();
        let histogram = |name: &str, help: &str, labels: &[&str]| {
            HistogramVec::new(HistogramOpts::new(name, help).buckets(LATENCY_BUCKETS.to_vec()), labels)
                .expect("valid histogram")
        };
        let m = Metrics {
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
            registry,
        };
        let collectors: Vec<Box<dyn prometheus::core::Collector>> = vec![
            Box::new(m.http_requests.clone()),
            Box::new(m.http_duration.clone()),
            Box::new(m.jobs.clone()),
            Box::new(m.queue_depth.clone()),
            Box::new(m.queue_capacity.clone()),
            Box::new(m.workers_alive.clone()),
            Box::new(m.job_queue_seconds.clone()),
            Box::new(m.job_run_seconds.clone()),
        ];
        for c in collectors {
            m.registry.register(c).expect("metric names are unique");
        }
        m
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
