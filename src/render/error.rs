//! How a job fails, whatever executes it: the error type executors return,
//! and its label in `imaginator_jobs_total`.

use super::pool::Outcome;

#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// The header or pixels cannot be decoded.
    #[error("{0}")]
    Decode(String),
    /// The image is larger than the configured limits.
    #[error("{0}")]
    TooLarge(String),
    #[error("the job did not finish before its deadline")]
    Deadline,
    /// ImageMagick failed on a valid image: a server-side problem.
    #[error("{0}")]
    Failed(String),
    /// The request cannot be done to this image (a `profile()` whose source
    /// does not match the image's colour space, a bleed wider than the image).
    #[error("{0}")]
    Invalid(String),
    /// An operation would cost far more work than a request may
    /// (`estimate::check_cost`).
    #[error("{0}")]
    TooExpensive(String),
    /// The file's metadata (EXIF, XMP, ICC, text) exceeds the budget
    /// (`pipeline::metadata`).
    #[error("{0}")]
    Metadata(String),
    /// ImageMagick's process-wide pixel-cache budget (`limits.magick_memory`,
    /// plus `magick_disk` when a disk cache is allowed) is held by other
    /// jobs: transient, worth a retry.
    #[error("{0}")]
    Busy(String),
}

/// The pure pre-decode check's refusals: limits are 413, an unreadable
/// structure is an undecodable file (422).
impl From<crate::pipeline::layers::Refusal> for JobError {
    fn from(r: crate::pipeline::layers::Refusal) -> JobError {
        match r {
            crate::pipeline::layers::Refusal::TooLarge(m) => JobError::TooLarge(m),
            crate::pipeline::layers::Refusal::Malformed(m) => JobError::Decode(m),
            crate::pipeline::layers::Refusal::Metadata(m) => JobError::Metadata(m),
        }
    }
}

/// Any job's result is labelled the same way in `imaginator_jobs_total`.
impl<T> Outcome for Result<T, JobError> {
    fn outcome(&self) -> &'static str {
        match self {
            Ok(_) => "ok",
            Err(JobError::Decode(_)) => "bad_input",
            Err(JobError::TooLarge(_)) => "too_large",
            Err(JobError::Deadline) => "deadline",
            Err(JobError::Failed(_)) => "error",
            Err(JobError::Invalid(_)) => "bad_input",
            Err(JobError::Metadata(_)) => "bad_input",
            Err(JobError::TooExpensive(_)) => "too_expensive",
            Err(JobError::Busy(_)) => "busy",
        }
    }
}
