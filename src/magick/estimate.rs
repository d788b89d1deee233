//! What a job will cost before it runs: the pixel cache it holds at once
//! (reserved from the budget before decoding, `budget`), and the work an
//! operation with a large kernel does (refused when it could not finish).

use super::error::JobError;
use super::job::{Job, Probe, Source};
use crate::pipeline::decode_scale;
use crate::pipeline::format::ImageFormat;
use crate::pipeline::ops::original::Original;
use crate::pipeline::ops::{Dpi, MAX_OUTPUT_SIDE, Op, Size};
use crate::render::{BYTES_PER_PIXEL, area, decoder_bytes_per_pixel};

/// The linear scale a JPEG source is decoded at when `ops` shrink it a lot.
pub(super) fn jpeg_scale(source: &Source, header: &Probe, ops: &[Op], auto_orient: bool, headroom: f64) -> Option<f64> {
    let oriented = if auto_orient { header.oriented } else { header.stored };
    (source.format == ImageFormat::Jpeg)
        .then(|| decode_scale(ops, oriented, headroom, header.dpi))
        .flatten()
}

/// ImageMagick's dither cache: 2^24 entries of 8 bytes, allocated (and
/// counted against its memory limit) whenever it quantizes with dithering,
/// which writing a GIF does.
pub(super) fn quantize_bytes(format: ImageFormat) -> u64 {
    if format == ImageFormat::Gif { 128 << 20 } else { 0 }
}

/// An upper estimate of the pixel cache a job holds at once: the decoded
/// source (a reduced JPEG decode counts at up to 4x its hinted area), then
/// the largest step's input, output and working copies, plus every image
/// `compose` lays over it, each at 10 bytes a pixel.
pub(super) fn pixel_cache_need(job: &Job, headers: &[Probe]) -> u64 {
    fn decoded(source: &Source, header: &Probe, ops: &[Op], auto_orient: bool, headroom: f64, native: bool) -> u64 {
        let full = header.largest;
        let scale = if native {
            jpeg_scale(source, header, ops, auto_orient, headroom)
        } else {
            None
        };
        let cache = match scale {
            Some(scale) => ((full as f64 * scale * scale * 4.0) as u64).min(full),
            None => full,
        };
        // The decoder's own buffers, in pixel-cache units.
        cache + full * decoder_bytes_per_pixel(source.format) / BYTES_PER_PIXEL
    }
    // Follows size and resolution through the steps, including the ones
    // whose size is only measured when they run (resample, canvas).
    fn steps(ops: &[Op], mut size: Size, mut dpi: Dpi) -> u64 {
        let mut peak = 0;
        for op in ops {
            let op = op.in_pixels(dpi);
            let input = area(size);
            let (out, copies) = match &op {
                Op::Resample(r) => {
                    let side = |v: f64| v.clamp(1.0, MAX_OUTPUT_SIDE) as u32;
                    let to = Size::new(
                        side(f64::from(size.width) * r.x / dpi.x),
                        side(f64::from(size.height) * r.y / dpi.y),
                    );
                    dpi = Dpi { x: r.x, y: r.y };
                    (to, 0)
                }
                Op::Canvas(c) => {
                    let (bx, by) = c.border(dpi);
                    let to = Size::new(
                        size.width.saturating_add(2 * bx.min(size.width)),
                        size.height.saturating_add(2 * by.min(size.height)),
                    );
                    // Three mirrored copies besides the result.
                    (to, 3 * input)
                }
                Op::Resolution(r) => {
                    dpi = r.dpi(size);
                    (size, 0)
                }
                Op::Original(o) => original_step(o, size, &mut dpi, input),
                // A copy of the image (the tile, or the repeated original).
                Op::Pattern(_) | Op::Repeat(_) => (size, input),
                other => (other.output_size(size), 0),
            };
            peak = peak.max(input + area(out) + copies);
            size = out;
        }
        peak
    }
    let plan = &job.plan;
    let (main, header) = (&job.sources[0], &headers[0]);
    let start = if plan.output.auto_orient {
        header.oriented
    } else {
        header.stored
    };
    let native = plan.dialect == crate::pipeline::Dialect::Native;
    let mut pixels = decoded(
        main,
        header,
        &plan.ops,
        plan.output.auto_orient,
        job.decode_headroom,
        native,
    )
    .max(steps(&plan.ops, start, header.dpi));
    let mut overlays = Vec::new();
    collect_overlays(&plan.ops, &mut overlays);
    for (input, ops) in overlays {
        if let (Some(source), Some(h)) = (job.sources.get(input), headers.get(input)) {
            let start = if native { h.oriented } else { h.stored };
            pixels += decoded(source, h, ops, native, job.decode_headroom, native).max(steps(ops, start, h.dpi));
        }
    }
    pixels
        .saturating_mul(BYTES_PER_PIXEL)
        .saturating_add(quantize_bytes(plan.output.format_for(main.format)))
}

/// Every image `compose` steps lay over (its index and its steps), nested ones included.
fn collect_overlays<'a>(ops: &'a [Op], out: &mut Vec<(usize, &'a [Op])>) {
    for op in ops {
        let (input, inner) = match op {
            Op::Compose(c) => (c.input, &c.ops),
            Op::Original(Original::Compose { input, ops, .. }) => (*input, ops),
            _ => continue,
        };
        out.push((input, inner.as_slice()));
        collect_overlays(inner, out);
    }
}

/// The output size and extra copies of one of the original's steps, and
/// the resolution it leaves (`steps`).
fn original_step(o: &Original, size: Size, dpi: &mut Dpi, input: u64) -> (Size, u64) {
    let raw = (dpi.x, dpi.y);
    let side = |v: f64| v.clamp(1.0, MAX_OUTPUT_SIDE) as u32;
    match o {
        Original::Resample { x, y, .. } => {
            let (x, y) = (f64::from(x.float(size, raw)), f64::from(y.float(size, raw)));
            let to = Size::new(
                side(f64::from(size.width) * x / dpi.x),
                side(f64::from(size.height) * y / dpi.y),
            );
            *dpi = Dpi { x, y };
            (to, 0)
        }
        Original::Canvas { x, y } => {
            let (bx, by) = (
                (dpi.x * f64::from(x.float(size, raw)) * 0.393_700_8).max(0.0),
                (dpi.y * f64::from(y.float(size, raw)) * 0.393_700_8).max(0.0),
            );
            let to = Size::new(
                side(f64::from(size.width) + 2.0 * bx.min(f64::from(size.width))),
                side(f64::from(size.height) + 2.0 * by.min(f64::from(size.height))),
            );
            (to, 3 * input)
        }
        Original::Resolution { x, y, per_cm } => {
            let (x, y) = (f64::from(x.float(size, raw)), f64::from(y.float(size, raw)));
            *dpi = if *per_cm {
                Dpi {
                    x: f64::from(size.width) / (x * 0.393_700_8),
                    y: f64::from(size.height) / (y * 0.393_700_8),
                }
            } else {
                Dpi { x, y }
            };
            (size, 0)
        }
        // A copy of the image (the tile, or the copies laid over it).
        Original::Pattern { .. } | Original::Repeat { .. } => (size, input),
        other => (other.output_size(size, raw), 0),
    }
}

/// Reference seconds per megapixel, measured with this project's ImageMagick
/// build on one core of the reference machine (2 cores, 2026-12-01, an
/// 800x500 photo, `magick -sharpen 0xS` / `-blur 0xS`):
/// - `sharpen` convolves a 2-D kernel: 0.36 s at sigma 2, 2.1 s at 5, 5.7 s
///   at 10, 16.6 s at 20 for 0.4 MP, about 0.46 s x sigma^1.5 per MP;
/// - `blur` is separable: 0.06 s at sigma 2 to 0.59 s at 20, about
///   0.075 s x sigma per MP.
fn reference_seconds(op: &Op, size: Size) -> f64 {
    let megapixels = area(size) as f64 / 1e6;
    match op {
        Op::Blur(b) if b.sharpen => megapixels * 0.46 * b.sigma.powf(1.5),
        Op::Blur(b) => megapixels * 0.075 * b.sigma,
        _ => 0.0,
    }
}

/// The most reference seconds one operation may cost: a request that costs
/// little to send must not hold a worker for its whole deadline.
pub(super) const MAX_OPERATION_SECONDS: f64 = 2.0;

/// `check_cost` for each step of `ops` on an input of `input` pixels (as
/// its header claims them), before the job queues: the worker checks again
/// on the image it decoded. Stops at the first step whose size only the
/// pixels tell (`trim`): the worker's check covers the rest.
pub fn check_plan_cost(ops: &[Op], input: Size, left: std::time::Duration) -> Result<(), JobError> {
    let mut size = input;
    for op in ops {
        let op = op.in_pixels(Dpi::DEFAULT);
        check_cost(&op, size, left)?;
        if op.measured_size() {
            break;
        }
        size = op.output_size(size);
    }
    Ok(())
}

/// Refuses an operation whose estimated work (on an image of `size`) is over
/// `MAX_OPERATION_SECONDS`, or more than the job has left before its
/// deadline: it would only hold a worker to fail.
pub(super) fn check_cost(op: &Op, size: Size, left: std::time::Duration) -> Result<(), JobError> {
    let seconds = reference_seconds(op, size);
    let limit = MAX_OPERATION_SECONDS.min(left.as_secs_f64());
    if seconds > limit {
        return Err(JobError::TooExpensive(format!(
            "{op} on a {}x{} image would take about {seconds:.0} s of work, more than the {limit:.0} s an operation may take; use a smaller sigma or resize first",
            size.width, size.height
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::parse::{ParseLimits, parse_chain};
    use crate::pipeline::{Dialect, OutputSpec, Plan};

    fn job(chain: &str) -> (Job, Probe) {
        let ops = parse_chain(chain, ParseLimits::default())
            .unwrap()
            .0
            .iter()
            .map(|s| Op::from_step(s).unwrap())
            .collect();
        let bytes = bytes::Bytes::from_static(include_bytes!("../../tests/fixtures/photo.jpg"));
        let job = Job {
            sources: vec![Source {
                id: crate::storage::ImageId::of(&bytes),
                bytes,
                format: ImageFormat::Jpeg,
                density: None,
                hold: None,
            }],
            plan: Plan {
                ops,
                output: OutputSpec::default(),
                overlays: Vec::new(),
                dialect: Dialect::Native,
            },
            limits: Default::default(),
            deadline: std::time::Instant::now(),
            decode_headroom: 2.0,
            fast_path: false,
        };
        let size = Size::new(800, 500);
        let probe = Probe {
            stored: size,
            oriented: size,
            frames: 1,
            dpi: Dpi::DEFAULT,
            largest: area(size),
        };
        (job, probe)
    }

    /// Seven 2900x2900 steps: 84 MB of pixel cache each, 589 MB in all,
    /// more than the default 512 MiB budget; only two images exist at once
    /// (a step's input and its output), so the job reserves about 168 MB.
    #[test]
    fn a_chain_reserves_its_peak_step_not_the_sum_of_its_steps() {
        let steps: Vec<String> = (0..7).map(|i| format!("resize({},2900)", 2900 - i)).collect();
        let (job, probe) = job(&format!("{}:resize(100,100)", steps.join(":")));
        let need = pixel_cache_need(&job, &[probe]);
        let one = 2900 * 2900 * BYTES_PER_PIXEL;
        assert!(7 * one > 512 << 20, "the sum would not fit the budget");
        assert!(need <= 2 * one + (800 * 500 + 100 * 100) * BYTES_PER_PIXEL, "{need}");
        assert!(
            need >= 2 * one - 7 * 2900 * BYTES_PER_PIXEL,
            "the peak is counted: {need}"
        );
    }
}
