//! `Server-Timing` for image responses: how long the request took, how long
//! its job waited for a worker and ran, and which cache tier answered.
//! Browsers show it in their developer tools; `/ui` reads it per tile.
//!
//! The job's figures travel in a task-local set by `observe` around each
//! request: the cache computes a miss inline, in the requesting task, so the
//! request that rendered sees its own job. Requests that waited for another
//! request's render (single-flight) report no job, only their total.

use std::cell::Cell;
use std::time::Duration;

#[derive(Debug, Default, Clone, Copy)]
pub struct JobTiming {
    /// Waiting for a worker.
    pub queue: Duration,
    /// On the worker: decode, operations, encode.
    pub run: Duration,
}

tokio::task_local! {
    static JOB: Cell<Option<JobTiming>>;
}

/// Runs `request` with a place for its job's timing; returns both.
pub async fn scope<F: std::future::Future>(request: F) -> (F::Output, Option<JobTiming>) {
    JOB.scope(Cell::new(None), async move {
        let output = request.await;
        (output, JOB.with(Cell::get))
    })
    .await
}

/// Records the job of the current request (a no-op outside `scope`).
pub fn record(timing: JobTiming) {
    let _ = JOB.try_with(|cell| {
        // Several jobs (a chain's compose sources are one job; a retried
        // chain may run twice): add them up.
        let sum = cell.get().map_or(timing, |t| JobTiming {
            queue: t.queue + timing.queue,
            run: t.run + timing.run,
        });
        cell.set(Some(sum));
    });
}

/// The header value: `cache;desc="hit-memory", queue;dur=0.3, render;dur=41.2, total;dur=43.0`.
pub fn header(total: Duration, cache: Option<&str>, job: Option<JobTiming>) -> String {
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let mut parts = Vec::with_capacity(4);
    if let Some(tier) = cache.filter(|t| t.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')) {
        parts.push(format!("cache;desc=\"{tier}\""));
    }
    if let Some(job) = job {
        parts.push(format!("queue;dur={:.1}", ms(job.queue)));
        parts.push(format!("render;dur={:.1}", ms(job.run)));
    }
    parts.push(format!("total;dur={:.1}", ms(total)));
    parts.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_recorded_job_is_seen_by_its_request_only() {
        let (_, seen) = scope(async {
            record(JobTiming {
                queue: Duration::from_millis(2),
                run: Duration::from_millis(40),
            });
        })
        .await;
        assert_eq!(seen.unwrap().run, Duration::from_millis(40));
        let (_, other) = scope(async {}).await;
        assert!(other.is_none());
        // Outside a request: nothing to record into, and no panic.
        record(JobTiming::default());
        assert_eq!(
            header(Duration::from_micros(43_040), Some("miss"), seen),
            "cache;desc=\"miss\", queue;dur=2.0, render;dur=40.0, total;dur=43.0"
        );
    }
}
