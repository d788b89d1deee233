//! The operations of a plan on a decoded image: one `match` over `Op`, the
//! geometry kept on the logical (oriented, full-size) image, and the
//! settings steps (`gravity`, `bg`) carried to later ones.

use super::error::{JobError, op_error};
use super::estimate::check_cost;
use super::job::{Job, Probe, load, to_srgb};
use super::profiles;
use super::wand::Wand;
use crate::config::Limits;
use crate::pipeline::ops::{AlphaMode, Color, Dpi, Filter, Gravity, MAX_OUTPUT_SIDE, Mirror, Op, Size};
use crate::render::check_result_area;
use magick_rust::bindings as im;

/// Settings steps leave for later ones.
pub(super) struct State {
    /// `gravity(g)`: how `extend` and `compose` anchor.
    gravity: Gravity,
    /// `bg(color)`: what `extend`, `canvas`, `alpha(remove)` and flattening fill with.
    pub(super) background: Color,
    /// A `profile()` step converted the pixels: its ICC profile stays in the output.
    pub(super) profiled: bool,
}

impl Default for State {
    fn default() -> Self {
        State {
            gravity: Gravity::NorthWest,
            background: Color::WHITE,
            profiled: false,
        }
    }
}

/// Applies `ops` in order with the deadline checked between them. Geometry is
/// computed on the logical (oriented, full-size) image: a reduced decode must
/// not change what `0.5w` or a crop offset means. Physical units are
/// converted at the resolution the image has when the step runs.
pub(super) fn apply_ops(
    wand: &mut Wand,
    ops: &[Op],
    mut logical: Size,
    state: &mut State,
    job: &Job,
    headers: &[Probe],
) -> Result<Size, JobError> {
    for op in ops {
        if wand.past_deadline() {
            return Err(JobError::Deadline);
        }
        let op = op.in_pixels(wand.resolution());
        check_cost(
            &op,
            wand.size(),
            job.deadline.saturating_duration_since(std::time::Instant::now()),
        )?;
        if !op.measured_size() {
            check_result_area(op.output_size(logical), &op, &job.limits)?;
        }
        apply_op(wand, &op, logical, state, job, headers)?;
        logical = if op.measured_size() {
            wand.size()
        } else {
            op.output_size(logical)
        };
    }
    Ok(logical)
}

fn filter_for(filter: Filter) -> im::FilterType {
    match filter {
        // Lanczos (3 lobes) both ways, as libvips (sharp) and Pillow
        // (thumbor) resize. Measured on the 2560x1600 photo set, fit in
        // 512x512 after a 1x decode-size hint, PSNR against a full-decode
        // Lanczos reference: Triangle 32.99 dB at 0.029 CPU-s, Catrom 33.89 dB
        // at 0.033 CPU-s, Lanczos 34.17 dB at 0.037 CPU-s through
        // ImageMagick. Catrom was the default while ImageMagick did most
        // resizes; the fast path's SIMD resize takes 0.6 of about 30 CPU-ms
        // a miss, so the better filter now costs nothing that shows, and
        // with 4:2:0 JPEG Catrom left us 0.26 dB below both peers
        // (docs/benchmarks.md).
        Filter::Auto => im::FilterType::Lanczos,
        Filter::Point => im::FilterType::Point,
        Filter::Box => im::FilterType::Box,
        Filter::Triangle => im::FilterType::Triangle,
        Filter::Catrom => im::FilterType::Catrom,
        Filter::Mitchell => im::FilterType::Mitchell,
        Filter::Lanczos => im::FilterType::Lanczos,
    }
}

fn too_large(what: &str, size: (f64, f64)) -> JobError {
    JobError::TooLarge(format!(
        "{what} would make the image {:.0}x{:.0}, more than {MAX_OUTPUT_SIDE} pixels a side",
        size.0, size.1
    ))
}

fn apply_op(
    wand: &mut Wand,
    op: &Op,
    logical: Size,
    state: &mut State,
    job: &Job,
    headers: &[Probe],
) -> Result<(), JobError> {
    let actual = wand.size();
    let e = op_error;
    match op {
        Op::Resize(r) => {
            let to = r.output_size(logical);
            if to != actual {
                wand.resize(to, filter_for(r.filter)).map_err(e)?;
            }
        }
        Op::FitIn(f) => {
            let to = f.output_size(logical);
            if to != actual {
                wand.resize(to, filter_for(Filter::Auto)).map_err(e)?;
            }
        }
        Op::Cover(c) => {
            let scaled = c.scaled_size(logical);
            if scaled != actual {
                wand.resize(scaled, filter_for(Filter::Auto)).map_err(e)?;
            }
            let to = c.output_size(logical);
            let (x, y) = if c.gravity == Gravity::Smart && to != scaled {
                super::smart::window(wand, to).map_err(e)?
            } else {
                c.crop_offset(logical)
            };
            if to != scaled {
                wand.crop(x, y, to).map_err(e)?;
            }
        }
        Op::Crop(c) => {
            // Crops never follow a reduced decode (no size hint for them), so
            // the logical and actual sizes agree here.
            let (x, y, to) = c.window(logical);
            wand.crop(x, y, to).map_err(e)?;
        }
        Op::Mirror(Mirror::Flip) => wand.flip().map_err(e)?,
        Op::Mirror(Mirror::Flop) => wand.flop().map_err(e)?,
        Op::Rotate(r) => wand.rotate(r.degrees, r.background).map_err(e)?,
        Op::Grayscale(_) => wand.grayscale().map_err(e)?,
        Op::Blur(b) if b.sharpen => wand.sharpen(b.sigma).map_err(e)?,
        Op::Blur(b) => wand.blur(b.sigma).map_err(e)?,
        Op::Sepia(sp) => wand.sepia(sp.percent).map_err(e)?,
        Op::Trim(_) => wand.trim().map_err(e)?,
        Op::Resolution(r) => wand.set_resolution(r.dpi(logical)).map_err(e)?,
        Op::Gravity(g) => state.gravity = g.0,
        // Applied to the sizes that follow before the job starts (`run`).
        Op::Dpr(_) => {}
        Op::Background(b) => {
            state.background = b.0;
            wand.set_background(b.0).map_err(e)?;
        }
        Op::Extend(x) => {
            let (left, top) = x.canvas_origin(logical, state.gravity);
            wand.extent(x.output_size(logical), left, top, state.background)
                .map_err(e)?;
        }
        Op::Alpha(a) => {
            if matches!(a.0, AlphaMode::Remove | AlphaMode::Background) {
                wand.set_background(state.background).map_err(e)?;
            }
            wand.set_alpha(a.0.into()).map_err(e)?;
        }
        Op::Colorspace(c) => wand.transform_colorspace(c.0.into()).map_err(e)?,
        Op::Compression(c) => wand.set_compression(c.0.into()).map_err(e)?,
        Op::Profile(p) => {
            let cmyk = wand.colorspace() == im::ColorspaceType::CMYK;
            if cmyk != p.source.is_cmyk() {
                return Err(JobError::Invalid(format!(
                    "profile: the image is {}, but `{}` describes {} images",
                    if cmyk { "CMYK" } else { "not CMYK" },
                    p.source.name(),
                    if p.source.is_cmyk() { "CMYK" } else { "RGB" }
                )));
            }
            wand.apply_profile(profiles::icc(p.source)).map_err(e)?;
            wand.apply_profile(profiles::icc(p.target)).map_err(e)?;
            state.profiled = true;
        }
        Op::Resample(r) => {
            let now = wand.resolution();
            let to = (
                f64::from(actual.width) * r.x / now.x,
                f64::from(actual.height) * r.y / now.y,
            );
            if to.0 > MAX_OUTPUT_SIDE || to.1 > MAX_OUTPUT_SIDE {
                return Err(too_large("resample", to));
            }
            check_result_area(Size::new(to.0.ceil() as u32, to.1.ceil() as u32), op, &job.limits)?;
            wand.resample(Dpi { x: r.x, y: r.y }, filter_for(r.filter)).map_err(e)?;
        }
        Op::Pattern(p) => {
            let mut tile = wand.duplicate();
            tile.resize(p.tile_size(logical), filter_for(Filter::Auto)).map_err(e)?;
            wand.texture(&tile).map_err(e)?;
        }
        Op::Repeat(r) => {
            let copy = wand.duplicate();
            for (x, y) in r.positions(logical) {
                if wand.past_deadline() {
                    return Err(JobError::Deadline);
                }
                wand.composite(&copy, im::CompositeOperator::Over, x, y).map_err(e)?;
            }
        }
        Op::Canvas(c) => canvas(wand, c, state, &job.limits)?,
        Op::Original(o) => super::original::apply(wand, o, state, job, headers)?,
        Op::Compose(c) => {
            let source = job
                .sources
                .get(c.input)
                .ok_or_else(|| JobError::Failed(format!("compose: no image #{}", c.input)))?;
            let header = headers
                .get(c.input)
                .ok_or_else(|| JobError::Failed(format!("compose: no header for image #{}", c.input)))?;
            let (mut overlay, size) = load(source, header, &c.ops, true, job)?;
            if !job.plan.manages_colour() {
                to_srgb(&mut overlay, source)?;
            }
            let mut overlay_state = State::default();
            let size = apply_ops(&mut overlay, &c.ops, size, &mut overlay_state, job, headers)?;
            let (ax, ay) = state.gravity.signed_offset(actual, size);
            let (dx, dy) = (c.x.resolve(logical).round() as i64, c.y.resolve(logical).round() as i64);
            // As `magick -gravity`: offsets point inwards from the anchored side.
            let x = match state.gravity {
                Gravity::East | Gravity::NorthEast | Gravity::SouthEast => ax - dx,
                _ => ax + dx,
            };
            let y = match state.gravity {
                Gravity::South | Gravity::SouthEast | Gravity::SouthWest => ay - dy,
                _ => ay + dy,
            };
            wand.composite(&overlay, c.operator.into(), x, y).map_err(e)?;
        }
    }
    Ok(())
}

/// `canvas(bx,by)`: shave a 1-pixel edge, then surround the image with a
/// border of mirrored copies: flopped left and right, flipped above and
/// below, both in the corners.
fn canvas(wand: &mut Wand, c: &crate::pipeline::ops::Canvas, state: &State, limits: &Limits) -> Result<(), JobError> {
    let e = op_error;
    let (bx, by) = c.border(wand.resolution());
    let before = wand.size();
    if before.width < 3 || before.height < 3 {
        return Err(JobError::Invalid("canvas: the image is too small to shave".into()));
    }
    wand.shave(1, 1).map_err(e)?;
    let inner = wand.size();
    if bx > inner.width || by > inner.height {
        return Err(JobError::Invalid(format!(
            "canvas: a {bx}x{by} pixel bleed is wider than the {}x{} image it mirrors",
            inner.width, inner.height
        )));
    }
    let outer = (f64::from(inner.width + 2 * bx), f64::from(inner.height + 2 * by));
    if outer.0 > MAX_OUTPUT_SIDE || outer.1 > MAX_OUTPUT_SIDE {
        return Err(too_large("canvas", outer));
    }
    let size = Size::new(outer.0 as u32, outer.1 as u32);
    check_result_area(size, &Op::Canvas(c.clone()), limits)?;
    let mirrors = wand.mirrors().map_err(e)?;
    wand.extent(size, -i64::from(bx), -i64::from(by), state.background)
        .map_err(e)?;
    wand.lay_mirrors(
        &mirrors,
        inner,
        (i64::from(bx), i64::from(by)),
        im::CompositeOperator::Copy,
    )
    .map_err(e)?;
    Ok(())
}
