//! Limits every executor checks: the source's size and frames, what a
//! decode alone needs against the pixel budget, and the area a step makes.

use super::JobError;
use crate::config::Limits;
use crate::pipeline::format::{ImageFormat, check_dimensions};
use crate::pipeline::ops::{Op, Size};

/// ImageMagick Q16 holds up to five 16-bit channels (CMYK and alpha) a pixel.
pub const BYTES_PER_PIXEL: u64 = 10;

pub fn area(size: Size) -> u64 {
    u64::from(size.width) * u64::from(size.height)
}

/// What decoding a source alone takes, at the least: ImageMagick's pixel
/// cache for the decoded frame (6 bytes a pixel: three 16-bit channels), plus,
/// for HEIF/AVIF, the decoder's own frame and the image libheif hands over
/// (about 6 bytes a pixel more, outside ImageMagick's accounting). A source
/// whose decode alone is over the whole budget is refused before decoding:
/// it could only fail, or hold more memory than the budget allows.
pub fn check_decode_fits(format: ImageFormat, largest: u64, budget_total: u64) -> Result<(), JobError> {
    let need = largest.saturating_mul(6 + decoder_bytes_per_pixel(format));
    if need > budget_total {
        return Err(JobError::TooLarge(format!(
            "decoding this image takes about {} MiB, more than the {} MiB pixel budget (limits.magick_memory)",
            need >> 20,
            budget_total >> 20
        )));
    }
    Ok(())
}

/// Bytes a pixel a format's decoder holds besides ImageMagick's pixel cache.
pub fn decoder_bytes_per_pixel(format: ImageFormat) -> u64 {
    match format {
        ImageFormat::Avif | ImageFormat::Heic => 6,
        _ => 0,
    }
}

/// A source's size and frame count against the limits.
pub fn check_limits(size: Size, frames: usize, limits: &Limits) -> Result<(), JobError> {
    if size.width == 0 || size.height == 0 {
        return Err(JobError::Decode("the image header declares no pixels".into()));
    }
    check_dimensions(
        size.width,
        size.height,
        limits.max_width,
        limits.max_height,
        limits.max_pixels,
    )
    .map_err(JobError::TooLarge)?;
    if frames > limits.max_frames as usize {
        return Err(JobError::TooLarge(format!(
            "image has {frames} frames, more than the {} limit",
            limits.max_frames
        )));
    }
    Ok(())
}

/// The area limit that applies to inputs applies to what a step makes too:
/// `resize(16000,16000)` is refused before ImageMagick allocates 2 GiB.
pub fn check_result_area(size: Size, op: &Op, limits: &Limits) -> Result<(), JobError> {
    let area = u64::from(size.width) * u64::from(size.height);
    if area > limits.max_pixels {
        return Err(JobError::TooLarge(format!(
            "{op} would make a {}x{} image, more than the {} pixel limit",
            size.width, size.height, limits.max_pixels
        )));
    }
    Ok(())
}
