//! The fast path: the commonest plans done without ImageMagick, with the
//! same result. PNG in, PNG or WebP out: `png`. A JPEG in (sRGB or untagged, gray or colour), at most one
//! `resize`, `fit-in` or `cover`, a lossy JPEG, WebP or AVIF out with
//! metadata stripped: decoded by libjpeg-turbo at the reduced scale
//! ImageMagick's `jpeg:size` hint would pick, resized by a SIMD convolution
//! with the same filter, oriented, and encoded by libjpeg-turbo, libwebp or
//! libheif with ImageMagick's writer settings. It runs
//! on the same worker threads, inside the same pixel budget, and allocates
//! through jemalloc (Rust buffers, and libjpeg's malloc).
//!
//! Anything else declines before decoding (or, for files libjpeg only
//! decodes with warnings, after) and the job runs on ImageMagick.
//! `tests/it/fast_path.rs` runs both paths on the fixtures and real photos and
//! holds them to a stated PSNR and the same size, format and header.

mod codec;
mod orient;
mod png;

use crate::pipeline::colour::{self, ColourFacts, Conversion};
use crate::pipeline::exif;
use crate::pipeline::format::ImageFormat;
use crate::pipeline::layers;
use crate::pipeline::ops::{Dpi, Filter, Op, Size};
use crate::render::budget;
use crate::render::{Job, JobError, Rendered};
use fast_image_resize as fr;

/// Why the fast path did not take a job (for logs and tests).
pub type Declined = &'static str;

/// Runs `job` on the fast path, or says why it does not qualify.
pub fn try_render(job: &Job) -> Result<Result<Rendered, JobError>, Declined> {
    let plan = &job.plan;
    let [source] = job.sources.as_slice() else {
        return Err("more than one image");
    };
    // What each input format's path writes.
    let writes: &[ImageFormat] = match source.format {
        ImageFormat::Jpeg => &[ImageFormat::Jpeg, ImageFormat::Webp, ImageFormat::Avif],
        ImageFormat::Png => &[ImageFormat::Png, ImageFormat::Webp],
        _ => return Err("not a JPEG or PNG"),
    };
    if source.density.is_some() {
        return Err("resolution imposed by download(url,dpi)");
    }
    let output = &plan.output;
    let out_format = output.format_for(source.format);
    if !writes.contains(&out_format) || !output.strip || output.keep_icc || plan.manages_colour() {
        return Err("output other than a stripped JPEG, WebP or AVIF from a JPEG, or PNG or WebP from a PNG");
    }
    if out_format != ImageFormat::Jpeg && output.quality >= 100 {
        return Err("lossless WebP or AVIF (quality 100)");
    }
    if output.input_quality && out_format == ImageFormat::Jpeg {
        return Err("the source's own quality (ImageMagick estimates it)");
    }
    let geometry = match plan.ops.as_slice() {
        [] => None,
        [Op::Cover(c)] if c.gravity == crate::pipeline::ops::Gravity::Smart => {
            return Err("a smart crop (it reads the pixels to place the window)");
        }
        [op @ (Op::FitIn(_) | Op::Cover(_))] => Some(op),
        [op @ Op::Resize(r)] if filter(r.filter).is_some() => Some(op),
        _ => return Err("operations other than one resize, fit-in or cover"),
    };

    // The checks every job gets before a decoder runs.
    let limits = &job.limits;
    let claims = layers::claims(&source.bytes, source.format);
    if let Some(c) = &claims
        && let Err(e) = c.check(
            limits.max_width,
            limits.max_height,
            limits.max_pixels,
            limits.max_frames,
        )
    {
        return Ok(Err(e.into()));
    }
    if let (Some(c), Some(b)) = (&claims, budget::get())
        && let Err(e) = crate::render::check_decode_fits(source.format, c.max_area, b.total())
    {
        return Ok(Err(e));
    }
    if source.format == ImageFormat::Png {
        return png::render(job, &source.bytes, geometry, out_format);
    }
    let mut decoder = match codec::Decoder::new(&source.bytes) {
        Ok(d) => d,
        Err(_) => return Err("no decoder"),
    };
    // The full-size header first: the scale depends on it.
    let full = match decoder.header() {
        Ok(h) => h,
        // ImageMagick words the errors of broken files: let it.
        Err(_) => return Err("header unreadable by libjpeg"),
    };
    let components = full.components;
    let colour_space = full.jpeg_color_space;
    if !(components == 3 && matches!(colour_space, codec::JCS_YCBCR | codec::JCS_RGB)
        || components == 1 && colour_space == codec::JCS_GRAYSCALE)
    {
        return Err("colour space other than YCbCr, RGB or gray");
    }
    // ImageMagick takes the resolution (and its unit) from a Photoshop
    // resource block, before JFIF's and EXIF's.
    let photoshop = match (full.photoshop_markers, full.photoshop) {
        (0, _) => None,
        (1, Some(block)) => photoshop_resolution(block)?,
        _ => return Err("more than one Photoshop resource block"),
    };
    let exif_block = full.exif.map(<[u8]>::to_vec);
    let exif = exif_block.as_deref().and_then(exif::parse);
    let facts = ColourFacts {
        icc: full.icc,
        cmyk: false,
        gray: components == 1,
        png: None,
        exif_adobe_rgb: exif.as_ref().is_some_and(|e| e.says_adobe_rgb()),
    };
    if !matches!(colour::decide(&facts), Conversion::None) {
        return Err("colour needs converting to sRGB");
    }
    let stored = Size::new(full.width, full.height);
    if let Err(e) = crate::render::check_limits(stored, 1, limits) {
        return Ok(Err(e));
    }
    // ImageMagick reads XMP's tiff:Orientation and tiff:X/YResolution, but
    // only where EXIF has none (constitute.c, SyncOrientationFromProperties
    // and SyncResolutionFromProperties): with both in EXIF, XMP changes
    // nothing here.
    if full.xmp_tiff
        && !exif
            .as_ref()
            .is_some_and(|e| e.orientation.is_some() && e.resolution.is_some())
    {
        return Err("XMP tiff: properties where EXIF has no orientation or resolution");
    }
    if exif
        .as_ref()
        .is_some_and(|e| e.resolution_tags && e.resolution.is_none())
    {
        return Err("unreadable EXIF resolution");
    }
    if output.keep_copyright && exif.as_ref().is_some_and(|e| e.has_attribution()) {
        return Err("EXIF artist or copyright to keep");
    }
    let resolution = Resolution::of(photoshop, full.jfif_density, exif.as_ref());
    let dpi = resolution.dpi();
    let orientation = if output.auto_orient {
        exif.as_ref().and_then(|e| e.orientation).unwrap_or(1)
    } else {
        1
    };
    let swaps = (5..=8).contains(&orientation);
    let logical = if swaps {
        Size::new(stored.height, stored.width)
    } else {
        stored
    };

    // The scale ImageMagick's jpeg:size hint would make libjpeg pick.
    let op = geometry.map(|op| op.in_pixels(dpi));
    let denom = match crate::pipeline::decode_scale(&plan.ops, logical, job.decode_headroom, dpi) {
        Some(scale) => {
            let hint = |side: u32| (f64::from(side) * scale).ceil().max(1.0);
            let ratio =
                (f64::from(stored.width) / hint(stored.width)).min(f64::from(stored.height) / hint(stored.height));
            ratio.max(1.0) as u32
        }
        None => 1,
    };
    let decoded = match decoder.scale(denom) {
        Ok((w, h)) => Size::new(w, h),
        Err(_) => return Err("header unreadable by libjpeg"),
    };

    // Where the pixels go: the same budget ImageMagick's jobs reserve from.
    let (target, crop) = placement(op.as_ref(), logical);
    if let Some(op) = &op
        && let Err(e) = crate::render::check_result_area(op.output_size(logical), op, limits)
    {
        return Ok(Err(e));
    }
    if target.width > logical.width || target.height > logical.height {
        // Enlarging: the two resizers treat the edges differently, which
        // shows on small images; ImageMagick's is the reference.
        return Err("enlarging");
    }
    let bytes_per_pixel = u64::from(components);
    let need = (area(decoded) + 2 * area(target)) * bytes_per_pixel;
    let _grant = match budget::reserve_for_job(need, job.deadline) {
        Ok(grant) => grant,
        Err(e) => return Ok(Err(e)),
    };

    let mut pixels = vec![0u8; (area(decoded) * bytes_per_pixel) as usize];
    if let Err(message) = decoder.pixels(&mut pixels) {
        return Ok(Err(JobError::Decode(message)));
    }
    if decoder.warnings() > 0 {
        // Corrupt data libjpeg recovered from: ImageMagick decides what that
        // means (its warning limit), as for every other job.
        return Err("libjpeg warned while decoding");
    }
    drop(decoder);
    if std::time::Instant::now() >= job.deadline {
        return Ok(Err(JobError::Deadline));
    }

    // Resize in stored orientation to the target's stored-orientation size
    // (the same as orienting first: the filter is separable), then orient.
    let stored_target = if swaps {
        Size::new(target.height, target.width)
    } else {
        target
    };
    let (mut pixels, mut size) = if stored_target != decoded {
        match resize(pixels, decoded, stored_target, components, resize_filter(op.as_ref())) {
            Ok(p) => (p, stored_target),
            Err(e) => return Ok(Err(JobError::Failed(e))),
        }
    } else {
        (pixels, decoded)
    };
    if orientation != 1 {
        (pixels, size) = orient::apply(&pixels, size, components, orientation);
    }
    if let Some(((x, y), to)) = crop
        && to != size
    {
        pixels = orient::crop(&pixels, size, components, x, y, to);
        size = to;
    }

    let encoded = match out_format {
        // ImageMagick hands a gray JPEG's pixels to libheif as RGB too (its
        // image has three channels by then): a colour AVIF, as here.
        ImageFormat::Avif => {
            codec::encode_avif(&to_rgb(pixels, components), size.width, size.height, 3, output.quality)
        }
        // WebP has no gray: ImageMagick's writer repeats the gray value in
        // R, G and B, and libwebp converts to YUV from there.
        ImageFormat::Webp => codec::encode_webp(&to_rgb(pixels, components), size.width, size.height, output.quality),
        _ => {
            // ImageMagick writes a colour image whose pixels are all gray as a
            // one-component JPEG.
            let (pixels, out_components) = if components == 3 && all_gray(&pixels) {
                (pixels.chunks_exact(3).map(|p| p[0]).collect(), 1)
            } else {
                (pixels, components)
            };
            // The plan's chroma, as the ImageMagick path writes it: 4:2:0 below
            // quality 90 (libjpeg's default, `None`), else 4:4:4.
            let settings = codec::EncodeSettings {
                quality: output.quality,
                progressive: output.interlace,
                density: resolution.jfif(),
                sampling: (output.chroma.sampling_factor(output.quality) == "1x1,1x1,1x1").then_some([1; 6]),
            };
            codec::encode(&pixels, size.width, size.height, out_components, settings)
        }
    };
    Ok(rendered(encoded, out_format, size))
}

/// A `cover`'s window: its offset and size in the scaled image.
type Crop = Option<((u32, u32), Size)>;

/// The output size of the plan's one geometry step (`None`: no step) on an
/// image of `logical` size, and for a `cover` the window cropped from it.
fn placement(op: Option<&Op>, logical: Size) -> (Size, Crop) {
    match op {
        None => (logical, None),
        Some(Op::Resize(r)) => (r.output_size(logical), None),
        Some(Op::FitIn(f)) => (f.output_size(logical), None),
        Some(Op::Cover(c)) => (
            c.scaled_size(logical),
            Some((c.crop_offset(logical), c.output_size(logical))),
        ),
        Some(_) => unreachable!("try_render takes only these steps"),
    }
}

/// The resize filter of the plan's geometry step: a `resize` names one,
/// the others use ImageMagick's default, Lanczos.
fn resize_filter(op: Option<&Op>) -> fr::FilterType {
    match op {
        Some(Op::Resize(r)) => filter(r.filter).expect("checked by try_render"),
        _ => fr::FilterType::Lanczos3,
    }
}

/// Gray pixels repeated into R, G and B; RGB ones as they are.
fn to_rgb(pixels: Vec<u8>, components: u32) -> Vec<u8> {
    match components {
        1 => pixels.iter().flat_map(|&g| [g, g, g]).collect(),
        _ => pixels,
    }
}

/// The fast path's answer: the encoded file, or the encoder's failure.
fn rendered(encoded: Result<Vec<u8>, String>, format: ImageFormat, size: Size) -> Result<Rendered, JobError> {
    encoded
        .map(|bytes| Rendered {
            bytes,
            format,
            size,
            engine: "fast",
            frames: 1,
            pixel_estimate: 0,
            pixel_peak: 0,
        })
        .map_err(JobError::Failed)
}

/// An image's resolution as ImageMagick holds it after reading a JPEG: the
/// JFIF density unless it is the 1:1 placeholder, then EXIF's XResolution
/// and YResolution over it (with ResolutionUnit 1, 2, 3 read as undefined,
/// per inch, per centimetre), as its ReadImage syncs them.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Resolution {
    x: f64,
    y: f64,
    /// 0 undefined, 1 per inch, 2 per centimetre (JFIF's numbering).
    unit: u8,
}

impl Resolution {
    /// The resolution ImageMagick 7.1.1 ends up with, in its order: a
    /// Photoshop ResolutionInfo, then JFIF's density and unit unless a
    /// density is 1 (coders/jpeg.c), then EXIF's X/YResolution and unit
    /// (constitute.c).
    fn of(photoshop: Option<Resolution>, jfif: Option<(u8, u16, u16)>, exif: Option<&exif::Exif>) -> Resolution {
        let mut r = photoshop.unwrap_or(Resolution {
            x: 0.0,
            y: 0.0,
            unit: 0,
        });
        if let Some((unit, x, y)) = jfif.filter(|&(_, x, y)| x != 1 && y != 1) {
            r.x = f64::from(x);
            r.y = f64::from(y);
            // A unit of 0 leaves the one before (Photoshop's) in place.
            if unit == 1 || unit == 2 {
                r.unit = unit;
            }
        }
        if let Some(e) = exif
            && let Some((x, y)) = e.resolution
        {
            (r.x, r.y) = (x, y);
            match e.resolution_unit {
                Some(1) => r.unit = 0,
                Some(2) => r.unit = 1,
                Some(3) => r.unit = 2,
                _ => {}
            }
        }
        r
    }

    /// What geometry in physical units is computed with (72 when unknown).
    fn dpi(&self) -> Dpi {
        if !(self.x > 0.0 && self.y > 0.0 && self.x.is_finite() && self.y.is_finite()) {
            return Dpi::DEFAULT;
        }
        let scale = if self.unit == 2 { 2.54 } else { 1.0 };
        Dpi {
            x: self.x * scale,
            y: self.y * scale,
        }
    }

    /// The JFIF header ImageMagick writes: the resolution truncated to
    /// integers when both are in (0, 32767), else libjpeg's 1:1 default.
    fn jfif(&self) -> Option<(u8, u16, u16)> {
        let fits = |v: f64| v > 0.0 && v < 32767.0;
        if !(fits(self.x) && fits(self.y)) {
            return None;
        }
        let (x, y) = (self.x as u16, self.y as u16);
        (x > 0 && y > 0).then_some((self.unit, x, y))
    }
}

fn area(size: Size) -> u64 {
    u64::from(size.width) * u64::from(size.height)
}

/// The resize filters this path reproduces (ImageMagick's of the same name).
fn filter(f: Filter) -> Option<fr::FilterType> {
    match f {
        Filter::Catrom => Some(fr::FilterType::CatmullRom),
        Filter::Mitchell => Some(fr::FilterType::Mitchell),
        Filter::Auto | Filter::Lanczos => Some(fr::FilterType::Lanczos3),
        Filter::Triangle => Some(fr::FilterType::Bilinear),
        Filter::Point | Filter::Box => None,
    }
}

fn resize(pixels: Vec<u8>, from: Size, to: Size, components: u32, filter: fr::FilterType) -> Result<Vec<u8>, String> {
    let kind = if components == 1 {
        fr::PixelType::U8
    } else {
        fr::PixelType::U8x3
    };
    let src = fr::images::Image::from_vec_u8(from.width, from.height, pixels, kind).map_err(|e| e.to_string())?;
    let mut dst = fr::images::Image::new(to.width, to.height, kind);
    let options = fr::ResizeOptions::new().resize_alg(fr::ResizeAlg::Convolution(filter));
    fr::Resizer::new()
        .resize(&src, &mut dst, &options)
        .map_err(|e| e.to_string())?;
    Ok(dst.into_vec())
}

fn all_gray(rgb: &[u8]) -> bool {
    rgb.chunks_exact(3).all(|p| p[0] == p[1] && p[1] == p[2])
}

/// The resolution in a Photoshop resource block (its 8BIM resources after
/// the "Photoshop 3.0" header), walked as ImageMagick walks it
/// (`GetProfilesFromResourceBlock`, MagickCore/profile.c), including where
/// it stops. Declines blocks that carry an ICC profile, EXIF or XMP, which
/// ImageMagick would apply.
fn photoshop_resolution(block: &[u8]) -> Result<Option<Resolution>, Declined> {
    let len = block.len();
    let be16 = |p: usize| u16::from_be_bytes([block[p], block[p + 1]]);
    let be32 = |p: usize| u32::from_be_bytes([block[p], block[p + 1], block[p + 2], block[p + 3]]);
    let mut found = None;
    let mut p = 0;
    while p + 16 < len {
        if !block[p..p + 4].eq_ignore_ascii_case(b"8BIM") {
            break;
        }
        p += 4;
        let id = be16(p);
        p += 2;
        let name_len = usize::from(block[p]);
        p += 1 + name_len;
        if (name_len + 1) & 1 != 0 {
            p += 1;
        }
        if p + 4 > len {
            break;
        }
        let count = be32(p) as usize;
        p += 4;
        if count == 0 || count > len || p + count > len {
            break;
        }
        match id {
            0x03ed => {
                // ImageMagick reads 16 bytes once the count says 10.
                if count >= 10 && p + 16 > len {
                    return Err("a truncated Photoshop ResolutionInfo");
                }
                if count >= 10 {
                    let x = f64::from(be32(p)) / 65536.0;
                    let units = be16(p + 4);
                    let y = f64::from(be32(p + 8)) / 65536.0;
                    p += 16;
                    // Stored as pixels per inch; a centimetre unit converts.
                    found = Some(if units == 2 {
                        Resolution {
                            x: x / 2.54,
                            y: y / 2.54,
                            unit: 2,
                        }
                    } else {
                        Resolution { x, y, unit: 1 }
                    });
                }
            }
            0x040f => return Err("an ICC profile in the Photoshop resource block"),
            0x0422 | 0x0424 => return Err("EXIF or XMP in the Photoshop resource block"),
            _ => p += count,
        }
        if count & 1 != 0 {
            p += 1;
        }
    }
    Ok(found)
}
