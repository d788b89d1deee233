//! Shared state of the handlers, and the one path from a plan to pixels.

use crate::config::Settings;
use crate::error::ApiError;
use crate::magick::{self, Job, JobResult, Pool, Rendered};
use crate::memory::MemoryState;
use crate::memory::report::{MemoryReport, ResultCacheMemory};
use crate::metrics::Metrics;
use crate::pipeline::Plan;
use crate::pipeline::alias::AliasSet;
use crate::pipeline::format::ImageFormat;
use bytes::Bytes;
use std::sync::Arc;
use std::time::Instant;

#[derive(Clone)]
pub struct AppState {
    pub settings: Arc<Settings>,
    pub aliases: Arc<AliasSet>,
    pub pool: Arc<Pool>,
    pub metrics: Metrics,
    pub memory: Arc<MemoryState>,
}

impl AppState {
    /// Every memory figure, now.
    pub fn memory_report(&self) -> MemoryReport {
        self.memory.report(magick::resources(), ResultCacheMemory::default())
    }

    /// Runs `plan` on `input` in the worker pool, within the job deadline.
    pub async fn render(&self, input: Bytes, format: ImageFormat, plan: Plan) -> Result<Rendered, ApiError> {
        let deadline = Instant::now() + self.settings.job_deadline.0;
        let job = Job {
            input,
            format,
            plan,
            limits: self.settings.limits.clone(),
            deadline,
        };
        let result = self
            .pool
            .submit(deadline, move || magick::run(job))
            .map_err(|e| ApiError::from_submit(e, self.settings.retry_after_secs))?;
        // The worker stops at the deadline through ImageMagick's progress
        // monitor; this timeout also covers a step that never reports progress.
        let outcome = tokio::time::timeout_at(deadline.into(), result).await;
        match outcome {
            Err(_elapsed) => Err(magick::JobError::Deadline.into()),
            Ok(Err(_dropped)) => Err(ApiError::internal()),
            Ok(Ok(JobResult::Done(rendered))) => Ok(rendered?),
            Ok(Ok(JobResult::Expired)) => Err(magick::JobError::Deadline.into()),
            Ok(Ok(JobResult::Panicked)) => Err(ApiError::internal()),
        }
    }
}
