//! What an image is, for `GET /images/{id}/info` and `POST /info`: the
//! header's facts (no pixels decoded for those), the embedded ICC profile's
//! description, a safe subset of EXIF, and a ThumbHash placeholder computed
//! from a tiny decode (JPEG decoded at 1/8 scale or less, then fitted in
//! 100 x 100, in sRGB).

use super::error::{JobError, decode_error, op_error};
use super::job::{Source, probe, to_srgb};
use super::wand::Wand;
use crate::config::Limits;
use crate::pipeline::exif;
use crate::pipeline::format::ImageFormat;
use crate::pipeline::ops::Size;
use crate::render::BYTES_PER_PIXEL;
use base64::Engine;
use magick_rust::bindings as im;
use serde::{Deserialize, Serialize};
use std::time::Instant;

/// The answer of the info endpoints (GPS is removed unless configured).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ImageInfo {
    pub format: ImageFormat,
    /// As displayed: after the EXIF orientation.
    pub width: u32,
    pub height: u32,
    /// As stored in the file.
    pub stored_width: u32,
    pub stored_height: u32,
    /// EXIF orientation, 1 (as stored) to 8.
    pub orientation: u32,
    pub frames: usize,
    /// More than one frame in a format that animates (GIF, WebP).
    pub animated: bool,
    pub has_alpha: bool,
    /// ImageMagick's colour space name: `sRGB`, `Gray`, `CMYK`, `YCbCr`, ...
    pub colorspace: String,
    /// Bits per channel.
    pub bit_depth: usize,
    /// The embedded ICC profile's description, if there is one.
    pub icc: Option<String>,
    /// Camera, lens, capture time; `gps` (latitude, longitude) only with
    /// `info.include_gps`.
    pub exif: Option<ExifInfo>,
    /// ThumbHash (base64): a ~25-byte placeholder that decodes to a blurred
    /// preview with the right aspect ratio and average colour.
    pub thumbhash: String,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Default)]
pub struct ExifInfo {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub make: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lens: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub taken_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gps: Option<Gps>,
}

#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq)]
pub struct Gps {
    pub latitude: f64,
    pub longitude: f64,
}

impl ImageInfo {
    /// The answer without GPS coordinates.
    pub fn without_gps(mut self) -> ImageInfo {
        if let Some(e) = self.exif.as_mut() {
            e.gps = None;
        }
        self
    }
}

/// ThumbHash wants at most 100 x 100 pixels.
const THUMB_SIDE: u32 = 100;

fn colorspace_name(space: im::ColorspaceType) -> String {
    let name = format!("{space:?}");
    let name = name.strip_suffix("Colorspace").unwrap_or(&name);
    match name {
        "GRAY" => "Gray".to_string(),
        "LinearGRAY" => "LinearGray".to_string(),
        other => other.to_string(),
    }
}

/// Reads `source`'s facts; runs on a worker thread.
pub fn info(source: &Source, limits: &Limits, deadline: Instant) -> Result<ImageInfo, JobError> {
    let header = probe(&source.bytes, source.format, limits, deadline)?;
    // The facts from the header alone.
    let mut pinged = Wand::new(deadline);
    pinged
        .ping(&source.bytes, source.format.coder())
        .map_err(decode_error)?;
    let icc = pinged.icc_profile().map(|p| match crate::pipeline::icc::parse(&p) {
        Some(info) => info.to_string(),
        None => format!("unreadable ICC profile ({} bytes)", p.len()),
    });
    let exif = pinged
        .profile("exif")
        .and_then(|b| exif::parse(&b))
        .map(|e| ExifInfo {
            make: e.make,
            model: e.model,
            lens: e.lens,
            taken_at: e.taken_at,
            gps: e.gps.map(|(latitude, longitude)| Gps { latitude, longitude }),
        })
        .filter(|e| *e != ExifInfo::default());
    let orientation = match pinged.orientation() {
        o @ 1..=8 => o,
        _ => 1,
    };
    let frames = header.frames;
    let mut info = ImageInfo {
        format: source.format,
        width: header.oriented.width,
        height: header.oriented.height,
        stored_width: header.stored.width,
        stored_height: header.stored.height,
        orientation,
        frames,
        animated: frames > 1 && matches!(source.format, ImageFormat::Gif | ImageFormat::Webp),
        has_alpha: pinged.has_alpha(),
        colorspace: colorspace_name(pinged.colorspace()),
        bit_depth: pinged.depth(),
        icc,
        exif,
        thumbhash: String::new(),
    };
    drop(pinged);

    // The placeholder: a tiny decode, within a share of the pixel budget.
    let _grant = crate::render::budget::reserve_for_job(header.largest.saturating_mul(BYTES_PER_PIXEL), deadline)?;
    let mut wand = Wand::new(deadline);
    if source.format == ImageFormat::Jpeg {
        // libjpeg decodes at the smallest scale that still covers this.
        wand.set_option("jpeg:size", &format!("{}x{}", THUMB_SIDE * 2, THUMB_SIDE * 2))
            .map_err(op_error)?;
    }
    wand.read_first_frame(&source.bytes, source.format.coder())
        .map_err(decode_error)?;
    wand.keep_first_frame().map_err(op_error)?;
    wand.auto_orient().map_err(op_error)?;
    to_srgb(&mut wand, source)?;
    let now = wand.size();
    let scale = (f64::from(THUMB_SIDE) / f64::from(now.width.max(now.height))).min(1.0);
    let tiny = Size::new(
        ((f64::from(now.width) * scale).round() as u32).max(1),
        ((f64::from(now.height) * scale).round() as u32).max(1),
    );
    if tiny != now {
        wand.resize(tiny, im::FilterType::Triangle).map_err(op_error)?;
    }
    let rgba = wand.export_rgba8().map_err(op_error)?;
    let hash = thumbhash::rgba_to_thumb_hash(tiny.width as usize, tiny.height as usize, &rgba);
    info.thumbhash = base64::engine::general_purpose::STANDARD.encode(hash);
    Ok(info)
}
