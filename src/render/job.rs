//! A job for an executor: the images, the plan and the limits; and what an
//! executor gives back.

use crate::config::Limits;
use crate::pipeline::Plan;
use crate::pipeline::format::ImageFormat;
use crate::pipeline::ops::Size;
use std::time::Instant;

pub struct Job {
    /// The images: the first is the one the plan transforms; the others are
    /// laid over it by `compose` steps (`Compose::input` indexes this list).
    pub sources: Vec<Source>,
    pub plan: Plan,
    pub limits: Limits,
    pub deadline: Instant,
    /// Resolution kept above the target when a JPEG is decoded reduced.
    pub decode_headroom: f64,
    /// Try the fast path (`crate::fast`) first.
    pub fast_path: bool,
}

/// One input image.
pub struct Source {
    /// The content id (SHA-256) of `bytes`: what the crash journal records.
    pub id: crate::storage::ImageId,
    pub bytes: bytes::Bytes,
    /// Sniffed from magic bytes by the caller.
    pub format: ImageFormat,
    /// `download(url,dpi)`: the resolution to assume instead of the file's.
    pub density: Option<f64>,
    /// A downloaded source's share of the in-flight byte budget, returned
    /// when the job is done with the bytes.
    pub hold: Option<crate::inflight::Held>,
}

#[derive(Debug)]
pub struct Rendered {
    pub bytes: Vec<u8>,
    pub format: ImageFormat,
    pub size: Size,
    /// `fast` or `imagemagick`.
    pub engine: &'static str,
    /// Frames in the output (1 unless an animation was kept).
    pub frames: usize,
    /// For animations: the pixel cache reserved, and the most ImageMagick
    /// held while the job ran (sampled between frames; process-wide).
    pub pixel_estimate: u64,
    pub pixel_peak: u64,
}
