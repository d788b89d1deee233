//! How a job fails: the error type, and the reading of ImageMagick's
//! exceptions into it (a spent budget, a resource limit, an undecodable
//! file, a failure on a valid one). ImageMagick's own wording is for the log;
//! what reaches a client is cleaned of its source locations (`public`).

use super::pool::Outcome;
use super::wand::WandError;

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

/// ImageMagick refused a pixel cache because the budget is spent. When
/// other jobs hold part of it, that is contention: 503, worth a retry. When
/// this job alone spent it, the image needs more than the whole budget: 413,
/// a retry would fail the same way. `None` for any other failure (other
/// cache errors included: a damaged file is not an overload).
pub(super) fn budget_error(e: &WandError) -> Option<JobError> {
    if !e.message.contains("cache resources exhausted") {
        return None;
    }
    Some(match super::budget::get() {
        Some(budget) if budget.others_hold() => JobError::Busy(e.message.clone()),
        _ => JobError::TooLarge("the image needs more pixel-cache memory than limits.magick_memory allows".into()),
    })
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

/// ImageMagick's `ResourceLimitError` severity.
const RESOURCE_LIMIT_ERROR: u32 = 400;

/// ImageMagick's list-length limit is `limits.max_frames` + 1, so this
/// means more frames than the limit (in words of ours).
fn too_many_frames(e: &WandError) -> Option<JobError> {
    e.message
        .contains("list length exceeds limit")
        .then(|| JobError::TooLarge("the image has more frames than the limits.max_frames limit".to_string()))
}

pub(super) fn decode_error(e: WandError) -> JobError {
    if e.deadline {
        JobError::Deadline
    } else if let Some(spent) = budget_error(&e) {
        spent
    } else if let Some(frames) = too_many_frames(&e) {
        frames
    } else if e.severity == RESOURCE_LIMIT_ERROR || e.message.contains("exceeds limit") {
        // ImageMagick's own width/height/area limits refuse the header (a
        // second line of defence behind `check_limits`).
        JobError::TooLarge(format!("image exceeds a resource limit: {}", public(&e.message)))
    } else {
        JobError::Decode(e.message)
    }
}

pub(super) fn op_error(e: WandError) -> JobError {
    if e.deadline {
        JobError::Deadline
    } else if let Some(spent) = budget_error(&e) {
        spent
    } else if let Some(frames) = too_many_frames(&e) {
        frames
    } else if e.severity == RESOURCE_LIMIT_ERROR {
        // Another of ImageMagick's limits (width, height, list length).
        JobError::TooLarge(format!(
            "the result exceeds ImageMagick's resource limits: {}",
            public(&e.message)
        ))
    } else {
        JobError::Failed(e.message)
    }
}

/// ImageMagick's exception text without what only its developers need: the
/// source location (`@ error/cache.c/OpenPixelCache/3909`) and the quoted
/// file name it was given (here always empty or a coder prefix).
pub(super) fn public(message: &str) -> String {
    let text = message.split(" @ ").next().unwrap_or(message);
    let text = match (text.find('`'), text.rfind('\'')) {
        (Some(open), Some(close)) if close > open => format!("{}{}", &text[..open], &text[close + 1..]),
        _ => text.to_string(),
    };
    text.trim().trim_end_matches(':').trim().to_string()
}

#[cfg(test)]
mod tests {
    use super::public;

    #[test]
    fn imagemagick_locations_do_not_reach_clients() {
        assert_eq!(
            public("width or height exceeds limit `JPEG:' @ error/cache.c/OpenPixelCache/3909"),
            "width or height exceeds limit"
        );
        assert_eq!(public("plain words"), "plain words");
    }
}
