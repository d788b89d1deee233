//! Animated GIF and WebP: every frame through the plan.
//!
//! The frames are coalesced first (each becomes the full canvas as shown,
//! after the previous frames' disposal), so geometry applies to the whole
//! picture and a crop cuts every frame at the same place. Each frame keeps
//! its delay, the animation its loop count; GIF output is then
//! layer-optimised (only the changed rectangle of each frame is stored).
//!
//! Memory: all coalesced frames and all output frames are held at once, so
//! the pixel-cache need is frames x (canvas + output) plus one frame's
//! working copies; an animation whose need exceeds the whole pixel budget is
//! refused (413) before any decode, and its share is reserved like a still
//! image's.

use super::apply::{State, apply_ops};
use super::error::{JobError, decode_error, op_error};
use super::job::{Job, Probe, Rendered, to_srgb};
use super::wand::Wand;
use crate::pipeline::format::ImageFormat;
use crate::pipeline::ops::{Gravity, Op, Size};
use crate::render::{BYTES_PER_PIXEL, area};

/// Whether `job` keeps its animation: an animated GIF or WebP source, an
/// output that animates, and steps that mean the same on every frame.
pub(super) fn wanted(job: &Job, header: &Probe) -> bool {
    let main = &job.sources[0];
    header.frames > 1
        && job.sources.len() == 1
        && matches!(main.format, ImageFormat::Gif | ImageFormat::Webp)
        && matches!(
            job.plan.output.format_for(main.format),
            ImageFormat::Gif | ImageFormat::Webp
        )
        && job.plan.ops.iter().all(per_frame)
}

/// Steps whose result on each frame makes a coherent animation. Steps
/// whose size depends on each frame's pixels (trim) or that bring other
/// images (compose, pattern) leave the output a still of the first frame.
fn per_frame(op: &Op) -> bool {
    matches!(
        op,
        Op::Resize(_)
            | Op::FitIn(_)
            | Op::Cover(_)
            | Op::Crop(_)
            | Op::Mirror(_)
            | Op::Rotate(_)
            | Op::Grayscale(_)
            | Op::Blur(_)
            | Op::Sepia(_)
            | Op::Extend(_)
            | Op::Gravity(_)
            | Op::Background(_)
            | Op::Alpha(_)
            | Op::Colorspace(_)
            | Op::Compression(_)
            | Op::Resolution(_)
            | Op::Dpr(_)
    )
}

/// The pixel-cache bytes an animation of `frames` frames of `canvas` holds
/// at once when its steps make `output`-sized frames (plus ImageMagick's
/// dither cache when it is written as GIF: `Wand::quantize_all`).
pub(super) fn need(frames: usize, canvas: Size, output: Size, format: ImageFormat) -> u64 {
    let (c, o) = (area(canvas), area(output));
    (frames as u64 * (c + o) + 2 * c.max(o)) * BYTES_PER_PIXEL + super::estimate::quantize_bytes(format)
}

/// The most reference seconds of work one animation may cost (about 20
/// frames of 1000x1000 to GIF, or 60 to WebP): beyond, it is refused before
/// any frame is decoded, so a small file cannot hold a worker for long.
pub const MAX_ANIMATION_SECONDS: f64 = 10.0;

/// Reference seconds of work to decode, transform and write `frames`
/// frames of `canvas` as `output`-sized `format` frames, measured with this
/// project's release build on one core of the reference machine (2 cores,
/// 2026-12-06): to GIF, 99 frames of 16x16 in 0.15-0.18 s, 99 of 500x500 in
/// 8.4-12.6 s, 20 of 1000x1000 in 9.7-9.9 s; to WebP, 99 of 500x500 in
/// 4.3 s and 20 of 1000x1000 in 3.2 s. A fixed part per frame, and a part
/// per megapixel of canvas and of output.
pub fn seconds(frames: usize, canvas: Size, output: Size, format: ImageFormat) -> f64 {
    let (per_frame, per_megapixel) = match format {
        ImageFormat::Gif => (0.0015, 0.25),
        _ => (0.0003, 0.08),
    };
    let megapixels = (area(canvas) + area(output)) as f64 / 1e6;
    frames as f64 * (per_frame + per_megapixel * megapixels)
}

/// Refuses an animation whose work would cost more than
/// `MAX_ANIMATION_SECONDS`, or more than `left` before the deadline.
pub fn check_cost(
    frames: usize,
    canvas: Size,
    output: Size,
    format: ImageFormat,
    left: std::time::Duration,
) -> Result<(), JobError> {
    let seconds = seconds(frames, canvas, output, format);
    let limit = MAX_ANIMATION_SECONDS.min(left.as_secs_f64());
    if seconds > limit {
        return Err(JobError::TooExpensive(format!(
            "an animation of {frames} frames of {}x{} written as {}x{} {format} would take about {seconds:.0} s of work, \
             more than the {limit:.0} s an animation may take; ask for a smaller size, or a still format (JPEG, PNG) \
             which keeps the first frame",
            canvas.width, canvas.height, output.width, output.height
        )));
    }
    Ok(())
}

pub(super) fn run(job: &Job, header: &Probe) -> Result<Rendered, JobError> {
    let plan = &job.plan;
    let main = &job.sources[0];
    // The same window on every frame: a smart crop would choose per frame
    // and make the picture jump, so an animation is cropped at the centre.
    let ops: Vec<Op> = plan
        .ops
        .iter()
        .map(|op| match op {
            Op::Cover(c) if c.gravity == Gravity::Smart => {
                let mut c = c.clone();
                c.gravity = Gravity::Center;
                Op::Cover(c)
            }
            other => other.clone(),
        })
        .collect();
    // GIF frames may be smaller than the logical screen; the largest layer
    // bounds the canvas the coalesced frames take.
    let canvas = {
        let side = (header.largest as f64).sqrt().ceil() as u32;
        if area(header.stored) >= header.largest {
            header.stored
        } else {
            Size::new(side, side)
        }
    };
    let output = ops.iter().fold(canvas, |s, op| op.output_size(s));
    let format = plan.output.format_for(main.format);
    check_cost(
        header.frames,
        canvas,
        output,
        format,
        job.deadline.saturating_duration_since(std::time::Instant::now()),
    )?;
    let estimate = need(header.frames, canvas, output, format);
    if let Some(budget) = crate::render::budget::get() {
        if estimate > budget.total() {
            return Err(JobError::TooLarge(format!(
                "an animation of {} frames of {}x{} needs {} MiB of pixel cache, more than the {} MiB budget",
                header.frames,
                canvas.width,
                canvas.height,
                estimate >> 20,
                budget.total() >> 20
            )));
        }
    }
    let _grant = crate::render::budget::reserve_for_job(estimate, job.deadline)?;

    let mut frames = Wand::new(job.deadline);
    frames
        .read_all(&main.bytes, main.format.coder())
        .map_err(decode_error)?;
    frames.coalesce().map_err(decode_error)?;
    let count = frames.frames();
    let iterations = frames.iterations();
    let mut peak = super::resources().memory;
    let mut out = Wand::new(job.deadline);
    let mut size = output;
    for index in 0..count {
        if frames.past_deadline() {
            return Err(JobError::Deadline);
        }
        let mut frame = frames.frame(index).map_err(op_error)?;
        let delay = frame.delay();
        to_srgb(&mut frame, main)?;
        let logical = frame.size();
        apply_ops(
            &mut frame,
            &ops,
            logical,
            &mut State::default(),
            job,
            std::slice::from_ref(header),
        )?;
        frame.repage().map_err(op_error)?;
        if index == 0 {
            size = frame.size();
        }
        frame.set_delay(delay).map_err(op_error)?;
        out.append(&frame).map_err(op_error)?;
        peak = peak.max(super::resources().memory);
    }
    drop(frames);
    out.set_iterations(iterations).map_err(op_error)?;
    if format == ImageFormat::Gif {
        // One palette for the whole animation, dithered once (see
        // `Wand::quantize_all`), before the frames are compared for layer
        // optimisation.
        out.quantize_all(256).map_err(op_error)?;
        out.optimize_layers().map_err(op_error)?;
        out.undithered().map_err(op_error)?;
    }
    if plan.output.strip {
        out.each_frame(|f| f.strip()).map_err(op_error)?;
    }
    let quality = plan.output.quality;
    out.each_frame(|f| {
        f.set_quality(quality)?;
        f.set_format(format.coder())
    })
    .map_err(op_error)?;
    out.set_format(format.coder()).map_err(op_error)?;
    let bytes = out.encode().map_err(op_error)?;
    peak = peak.max(super::resources().memory);
    Ok(Rendered {
        bytes,
        format,
        size,
        engine: "imagemagick",
        frames: count,
        pixel_estimate: estimate,
        pixel_peak: peak,
    })
}
