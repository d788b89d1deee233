//! How a job fails in ImageMagick: the reading of its exceptions into
//! `render::JobError` (a spent budget, a resource limit, an undecodable
//! file, a failure on a valid one). ImageMagick's own wording is for the log;
//! what reaches a client is cleaned of its source locations (`public`).

use super::wand::WandError;
pub use crate::render::JobError;

/// ImageMagick refused a pixel cache because the budget is spent. When
/// other jobs hold part of it, that is contention: 503, worth a retry. When
/// this job alone spent it, the image needs more than the whole budget: 413,
/// a retry would fail the same way. `None` for any other failure (other
/// cache errors included: a damaged file is not an overload).
pub(super) fn budget_error(e: &WandError) -> Option<JobError> {
    if !e.message.contains("cache resources exhausted") {
        return None;
    }
    Some(match crate::render::budget::get() {
        Some(budget) if budget.others_hold() => JobError::Busy(e.message.clone()),
        _ => JobError::TooLarge("the image needs more pixel-cache memory than limits.magick_memory allows".into()),
    })
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
