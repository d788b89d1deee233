//! Runs one job on a worker thread: the header checks, a share of the
//! pixel-cache budget, the decode (reduced for JPEG when the plan allows it,
//! only the first frame), the conversion to sRGB, the operations and the
//! encode.

use super::apply::{State, apply_ops};
use super::error::{JobError, budget_error, decode_error, op_error};
use super::estimate::{jpeg_scale, pixel_cache_need};
use super::profiles;
use super::wand::Wand;
use crate::config::Limits;
use crate::pipeline::Dialect;
use crate::pipeline::colour::{self, ColourFacts, Conversion};
use crate::pipeline::exif;
use crate::pipeline::format::ImageFormat;
use crate::pipeline::layers;
use crate::pipeline::ops::{Dpi, IccProfile, Op, Size};
use crate::render::{BYTES_PER_PIXEL, area, check_decode_fits, check_limits};
pub use crate::render::{Job, Rendered, Source};
use magick_rust::bindings as im;
use std::time::Instant;

/// What the header says, without decoding pixels.
#[derive(Debug, Clone, Copy)]
pub struct Probe {
    /// Size as stored (before EXIF orientation).
    pub stored: Size,
    /// Size as displayed (after EXIF orientation).
    pub oriented: Size,
    pub frames: usize,
    /// The recorded resolution (or the one `download(url,dpi)` imposes).
    pub dpi: Dpi,
    /// The largest area any layer of the file claims (`pipeline::layers`):
    /// at least the first frame's, more when a container understates its
    /// coded stream or a later page is larger. The memory estimate uses it.
    pub largest: u64,
}

/// Reads the header(s) only (ImageMagick's ping, told the coder) and checks
/// dimensions, area and frames against the limits. A decompression bomb is
/// refused here, before a single pixel is allocated.
pub fn probe(input: &[u8], format: ImageFormat, limits: &Limits, deadline: Instant) -> Result<Probe, JobError> {
    probe_source(input, format, None, limits, deadline)
}

pub(super) fn probe_source(
    input: &[u8],
    format: ImageFormat,
    density: Option<f64>,
    limits: &Limits,
    deadline: Instant,
) -> Result<Probe, JobError> {
    // Every layer's claims first, in pure Rust (also done at the edge; here
    // for every caller of the pool).
    let claims = layers::precheck(
        input,
        format,
        limits.max_width,
        limits.max_height,
        limits.max_pixels,
        limits.max_frames,
    )
    .map_err(JobError::from)?;
    if let Some(c) = &claims {
        // Before even the header parser of a decoder runs.
        if let Some(budget) = crate::render::budget::get() {
            check_decode_fits(format, c.max_area, budget.total())?;
        }
    }
    let mut wand = Wand::new(deadline);
    wand.ping(input, format.coder()).map_err(decode_error)?;
    let stored = wand.size();
    let frames = wand.frames();
    let oriented = if wand.orientation_swaps_sides() {
        Size::new(stored.height, stored.width)
    } else {
        stored
    };
    check_limits(stored, frames, limits)?;
    Ok(Probe {
        stored,
        oriented,
        frames,
        dpi: density.map_or_else(|| wand.resolution(), |d| Dpi { x: d, y: d }),
        largest: claims.map_or(0, |c| c.max_area).max(area(stored)),
    })
}

/// Checks an upload all the way: the header checks of `probe`, then a full
/// decode of the first frame within a share of the pixel-cache budget, so a
/// file that can never render is refused before it is stored. Returns the
/// header facts (the decoded size is the header's).
pub fn validate(input: &[u8], format: ImageFormat, limits: &Limits, deadline: Instant) -> Result<Probe, JobError> {
    let header = probe_source(input, format, None, limits, deadline)?;
    let _grant = crate::render::budget::reserve_for_job(header.largest.saturating_mul(BYTES_PER_PIXEL), deadline)?;
    let mut wand = Wand::new(deadline);
    wand.read_first_frame(input, format.coder()).map_err(decode_error)?;
    if wand.size() != header.stored {
        return Err(JobError::Decode(format!(
            "the decoded image is {}x{}, not the {}x{} its header states",
            wand.size().width,
            wand.size().height,
            header.stored.width,
            header.stored.height
        )));
    }
    Ok(header)
}

/// Resolves the plan's `dpr(n)` steps: they multiply the sizes that follow,
/// capped by the source's size, read here from its header (ImageMagick's
/// ping). Every executor then sees plain sizes.
pub fn resolve_dpr(job: &mut Job) -> Result<(), JobError> {
    if !job.plan.ops.iter().any(|op| matches!(op, Op::Dpr(_))) {
        return Ok(());
    }
    let main = job
        .sources
        .first()
        .ok_or_else(|| JobError::Failed("a job without an image".into()))?;
    let header = probe_source(&main.bytes, main.format, main.density, &job.limits, job.deadline)?;
    let source = if job.plan.output.auto_orient {
        header.oriented
    } else {
        header.stored
    };
    job.plan.ops = crate::pipeline::ops::dpr::resolve_dpr(&job.plan.ops, source);
    Ok(())
}

/// Renders `job` with ImageMagick (its `dpr` steps resolved: `resolve_dpr`).
pub fn run(job: Job) -> Result<Rendered, JobError> {
    let plan = &job.plan;
    let main = job
        .sources
        .first()
        .ok_or_else(|| JobError::Failed("a job without an image".into()))?;
    // Every header against the limits before a single pixel is decoded.
    let headers = job
        .sources
        .iter()
        .map(|s| probe_source(&s.bytes, s.format, s.density, &job.limits, job.deadline))
        .collect::<Result<Vec<Probe>, JobError>>()?;
    // An animated source whose output can animate keeps every frame.
    if super::animation::wanted(&job, &headers[0]) {
        return super::animation::run(&job, &headers[0]);
    }
    // Then a share of ImageMagick's pixel-cache budget, waited for while
    // other jobs hold it; a source that cannot fit even alone is refused.
    if let Some(budget) = crate::render::budget::get() {
        for (source, header) in job.sources.iter().zip(&headers) {
            check_decode_fits(source.format, header.largest, budget.total())?;
        }
    }
    let _grant = crate::render::budget::reserve_for_job(pixel_cache_need(&job, &headers), job.deadline)?;
    let (mut wand, logical) = load(main, &headers[0], &plan.ops, plan.output.auto_orient, &job)?;
    if !plan.manages_colour() {
        to_srgb(&mut wand, main)?;
    }
    let mut state = State::default();
    apply_ops(&mut wand, &plan.ops, logical, &mut state, &job, &headers)?;
    if wand.past_deadline() {
        return Err(JobError::Deadline);
    }

    // Encode.
    let mut format = plan.output.format_for(main.format);
    if let Dialect::Original { format_set } = plan.dialect {
        return encode_original(wand, format, format_set);
    }
    if plan.output.png_for_alpha && format == ImageFormat::Jpeg && wand.has_alpha() {
        // A negotiated format fell back: keep the transparency.
        format = ImageFormat::Png;
    }
    if !format.has_alpha() && wand.has_alpha() {
        wand.flatten_onto(state.background).map_err(op_error)?;
    }
    if plan.output.strip {
        // A profile the chain converted to, or one the plan asked to keep,
        // describes the pixels: keep it.
        let keep_icc = (state.profiled || plan.output.keep_icc)
            .then(|| wand.icc_profile())
            .flatten();
        // Who made the picture and who owns it stay with it.
        let attribution = plan
            .output
            .keep_copyright
            .then(|| wand.profile("exif"))
            .flatten()
            .and_then(|block| exif::parse(&block))
            .and_then(|e| e.attribution_block());
        wand.strip().map_err(op_error)?;
        if let Some(icc) = keep_icc {
            wand.set_icc_profile(&icc).map_err(op_error)?;
        }
        if let Some(block) = attribution {
            wand.set_profile("exif", &block).map_err(op_error)?;
        }
        if plan
            .ops
            .iter()
            .any(|op| matches!(op, Op::Resolution(_) | Op::Resample(_)))
        {
            // Stripping also drops PNG's pHYs chunk; keep it when the chain set
            // a resolution on purpose (ImageMagick's strip list minus pHYs).
            wand.set_artifact(
                "png:exclude-chunk",
                "bKGD,caNv,cHRM,eXIf,gAMA,iCCP,iTXt,sRGB,tEXt,zCCP,zTXt,date",
            )
            .map_err(op_error)?;
        }
    }
    if plan.output.interlace {
        wand.set_interlace().map_err(op_error)?;
    }
    // Left unset, ImageMagick writes a JPEG at the quality it estimated
    // when it decoded one, and with the source's sampling factors.
    // A PNG's "quality" is ImageMagick's zlib level and filter in two
    // digits (80: level 8, no filters; 88: run-length only; below 50: no
    // filters), so the plan's number, meant for lossy formats, is not passed
    // on; nor is a decoded JPEG's estimated quality. A PNG is written at
    // ImageMagick's default, 75, and `encoder_settings` sets its level.
    let keeps_quality = plan.output.input_quality && main.format == ImageFormat::Jpeg && format == ImageFormat::Jpeg;
    if format == ImageFormat::Png {
        wand.set_quality(75).map_err(op_error)?;
    } else if !keeps_quality {
        wand.set_quality(plan.output.quality).map_err(op_error)?;
        if format == ImageFormat::Jpeg {
            // A gray image has no chroma: its one component is 1x1 (what
            // libjpeg writes, and what ImageMagick writes for a colour image
            // it finds gray; for a gray one it would apply the first factor).
            let gray = matches!(
                wand.colorspace(),
                im::ColorspaceType::GRAY | im::ColorspaceType::LinearGRAY
            );
            let factor = match gray {
                true => "1x1,1x1,1x1",
                false => plan.output.chroma.sampling_factor(plan.output.quality),
            };
            wand.set_option("jpeg:sampling-factor", factor).map_err(op_error)?;
        }
    }
    for (key, value) in encoder_settings(format) {
        wand.set_option(key, &value).map_err(op_error)?;
    }
    wand.set_depth(plan.output.depth_for(format)).map_err(op_error)?;
    wand.set_format(format.coder()).map_err(op_error)?;
    let size = wand.size();
    let bytes = wand.encode().map_err(op_error)?;
    Ok(Rendered {
        bytes,
        format,
        size,
        engine: "imagemagick",
        frames: 1,
        pixel_estimate: 0,
        pixel_peak: 0,
    })
}

/// The encoder settings the native profile states (docs/benchmarks.md has
/// their measured cost and bytes), beyond quality and JPEG chroma:
/// - WebP: `pipeline::WEBP_METHOD` (4), as the fast path writes it.
/// - AVIF: `pipeline::AVIF_SPEED` and `AVIF_CHROMA`, as the fast path
///   writes it.
/// - PNG: `pipeline::PNG_LEVEL` with adaptive filters (libpng's heuristic
///   per row), as the fast path writes it.
fn encoder_settings(format: ImageFormat) -> Vec<(&'static str, String)> {
    use crate::pipeline::{AVIF_CHROMA, AVIF_SPEED, PNG_LEVEL, WEBP_METHOD};
    match format {
        ImageFormat::Webp => vec![("webp:method", WEBP_METHOD.to_string())],
        ImageFormat::Avif => vec![("heic:speed", AVIF_SPEED.into()), ("heic:chroma", AVIF_CHROMA.into())],
        ImageFormat::Png => vec![
            ("png:compression-level", PNG_LEVEL.to_string()),
            ("png:compression-filter", "5".into()),
        ],
        _ => Vec::new(),
    }
}

/// Writes an image the original's way: metadata and ImageMagick's quality
/// (for a JPEG, the input's) kept, the input's format unless a `format()`
/// step chose one (TIFF then with 2 rows a strip, as the original wrote it).
fn encode_original(mut wand: Wand, format: ImageFormat, format_set: bool) -> Result<Rendered, JobError> {
    if format_set {
        wand.set_format(format.coder()).map_err(op_error)?;
        if format == ImageFormat::Tiff {
            wand.set_option("tiff:rows-per-strip", "2").map_err(op_error)?;
        }
    }
    let size = wand.size();
    let bytes = wand.encode().map_err(op_error)?;
    Ok(Rendered {
        bytes,
        format,
        size,
        engine: "imagemagick",
        frames: 1,
        pixel_estimate: 0,
        pixel_peak: 0,
    })
}

/// Decodes a source whose header was checked (reduced for a JPEG that `ops`
/// shrinks a lot) and applies its EXIF orientation. Returns the wand and the
/// image's logical (oriented, full-resolution) size.
pub(super) fn load(
    source: &Source,
    header: &Probe,
    ops: &[Op],
    auto_orient: bool,
    job: &Job,
) -> Result<(Wand, Size), JobError> {
    let coder = source.format.coder();
    let stored = header.stored;
    let oriented = if auto_orient { header.oriented } else { stored };

    let mut wand = Wand::new(job.deadline);
    // The original's plans decode whole, as it did.
    let scale = match job.plan.dialect {
        Dialect::Native => jpeg_scale(source, header, ops, auto_orient, job.decode_headroom),
        Dialect::Original { .. } => None,
    };
    if let Some(scale) = scale {
        let hint = format!(
            "{}x{}",
            (f64::from(stored.width) * scale).ceil() as u32,
            (f64::from(stored.height) * scale).ceil() as u32
        );
        wand.set_option("jpeg:size", &hint).map_err(op_error)?;
    }
    // Only the first frame or page is decoded: the output is one picture.
    wand.read_first_frame(&source.bytes, coder).map_err(decode_error)?;
    wand.keep_first_frame().map_err(op_error)?;
    if let Some(dpi) = source.density {
        // What `magick -density` does to a raster image: replace the recorded
        // resolution. Natively in pixels per inch; the original kept the
        // file's own units (undefined for most JPEGs).
        let dpi = Dpi { x: dpi, y: dpi };
        match job.plan.dialect {
            Dialect::Native => wand.set_resolution(dpi),
            Dialect::Original { .. } => wand.set_resolution_keeping_units(dpi),
        }
        .map_err(op_error)?;
    }
    if auto_orient {
        wand.auto_orient().map_err(op_error)?;
    }
    Ok((wand, oriented))
}

/// Converts the pixels to sRGB when the image says they are something else
/// (`pipeline::colour` decides), before any operation, every frame. A
/// profile LittleCMS cannot use is dropped, and the pixels are kept as
/// decoded (logged): a damaged profile must not fail the picture.
pub(super) fn to_srgb(wand: &mut Wand, source: &Source) -> Result<(), JobError> {
    let icc = wand.icc_profile();
    let space = wand.colorspace();
    let facts = ColourFacts {
        icc: icc.as_deref(),
        cmyk: space == im::ColorspaceType::CMYK,
        gray: matches!(space, im::ColorspaceType::GRAY | im::ColorspaceType::LinearGRAY),
        png: (source.format == ImageFormat::Png)
            .then(|| colour::png_colour(&source.bytes))
            .flatten(),
        exif_adobe_rgb: wand
            .profile("exif")
            .and_then(|block| exif::parse(&block))
            .is_some_and(|e| e.says_adobe_rgb()),
    };
    let srgb = profiles::icc(IccProfile::Srgb);
    let conversion = colour::decide(&facts);
    let converted = wand.each_frame(|frame| match &conversion {
        Conversion::None => Ok(()),
        Conversion::FromEmbedded => frame.apply_profile(srgb),
        Conversion::FromBundledCmyk => {
            frame.remove_profile("icc");
            frame.apply_profile(profiles::icc(IccProfile::Fogra39))?;
            frame.apply_profile(srgb)
        }
        Conversion::FromProfile { icc, .. } => {
            frame.remove_profile("icc");
            frame.apply_profile(icc)?;
            frame.apply_profile(srgb)
        }
    });
    match converted {
        Ok(()) => Ok(()),
        Err(e) if e.deadline => Err(JobError::Deadline),
        Err(e) if budget_error(&e).is_some() => Err(op_error(e)),
        Err(e) => {
            tracing::info!(error = %e.message, from = conversion.describe(), "colour conversion to sRGB failed; pixels kept as decoded");
            wand.each_frame(|frame| {
                frame.remove_profile("icc");
                Ok(())
            })
            .map_err(op_error)
        }
    }
}
