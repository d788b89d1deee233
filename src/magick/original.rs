//! Applies the original imaginator's operations (`pipeline::ops::original`)
//! as its filters did, inside the one job every plan runs in: the arguments
//! read against the image as it is when the step runs (its size and its
//! recorded resolution, in `f32`, truncated), ImageMagick called the way the
//! original called it. Every size a step makes is checked against the
//! limits before it is made; the job reserved its pixel-cache share up front
//! like any other (`estimate::pixel_cache_need`).

use super::apply::{State, apply_ops};
use super::error::{JobError, op_error};
use super::job::{Job, Probe, load};
use super::profiles;
use super::wand::Wand;
use crate::pipeline::ops::original::{self, Amount, MAX_REPEAT_COMPOSITES, Original};
use crate::pipeline::ops::{ComposeOperator, Dpi, MAX_OUTPUT_SIDE, Size};
use magick_rust::bindings as im;

/// A step's refusal: the original answered 500 for a filter's own errors;
/// the compat front end does too (`JobError::Invalid`).
fn invalid(message: impl Into<String>) -> JobError {
    JobError::Invalid(message.into())
}

/// Checks a size a step is about to make: positive, within a side's limit
/// and the pixel limit.
fn admit(width: i64, height: i64, what: &str, max_pixels: u64) -> Result<Size, JobError> {
    if width < 1 || height < 1 {
        return Err(invalid(format!("{what}: {width}x{height} is not a size")));
    }
    let limit = MAX_OUTPUT_SIDE as i64;
    let pixels = (width as u64).saturating_mul(height as u64);
    if width > limit || height > limit || pixels > max_pixels {
        return Err(JobError::TooLarge(format!(
            "{what}: {width}x{height} is larger than the limits ({limit} px a side, {max_pixels} pixels)"
        )));
    }
    Ok(Size::new(width as u32, height as u32))
}

/// Applies one of the original's steps to `wand`.
pub(super) fn apply(
    wand: &mut Wand,
    op: &Original,
    state: &mut State,
    job: &Job,
    headers: &[Probe],
) -> Result<(), JobError> {
    let e = op_error;
    let size = wand.size();
    let dpi = wand.raw_resolution();
    let int = |a: &Amount| a.int(size, dpi);
    let float = |a: &Amount| f64::from(a.float(size, dpi));
    let max_pixels = job.limits.max_pixels;
    match op {
        Original::Resize {
            width,
            height,
            filter,
            max,
        } => {
            let (w, h) = original::target(size, int(width), int(height), *max);
            // ImageMagick refuses a side below 1; the original ignored that
            // refusal and answered the image unchanged.
            if w >= 1 && h >= 1 {
                let to = admit(w, h, "resize", max_pixels)?;
                wand.resize(to, filter_type(filter)).map_err(e)?;
            }
        }
        Original::FitIn { width, height, max } => {
            let (w, h) = original::fit(size, int(width), int(height), *max);
            if w >= 1 && h >= 1 {
                let to = admit(w, h, "fit-in", max_pixels)?;
                wand.resize(to, im::FilterType::Lanczos).map_err(e)?;
            }
        }
        Original::Compose {
            input,
            ops,
            operator,
            x,
            y,
        } => {
            let source = job
                .sources
                .get(*input)
                .ok_or_else(|| JobError::Failed(format!("compose: no image #{input}")))?;
            let header = headers
                .get(*input)
                .ok_or_else(|| JobError::Failed(format!("compose: no header for image #{input}")))?;
            let (mut overlay, logical) = load(source, header, ops, false, job)?;
            apply_ops(&mut overlay, ops, logical, &mut State::default(), job, headers)?;
            wand.composite(&overlay, composite(operator), int(x), int(y))
                .map_err(e)?;
        }
        Original::Trim => wand.trim_fuzz(15.0).map_err(e)?,
        Original::Crop { x, y, width, height } => {
            let (w, h) = (int(width), int(height));
            if w < 0 || h < 0 {
                return Err(invalid(format!("crop: {w}x{h} is not a size")));
            }
            wand.crop_raw(w as usize, h as usize, int(x), int(y)).map_err(e)?;
        }
        Original::Extend { x, y, right, bottom } => {
            let (x, y) = (int(x), int(y));
            let to = admit(int(right) - x, int(bottom) - y, "extend", max_pixels)?;
            wand.extent_raw(to.width as usize, to.height as usize, x, y)
                .map_err(e)?;
        }
        Original::Pattern { width, height, max } => {
            let (w, h) = (int(width), int(height));
            if w < 1 || h < 1 {
                return Err(invalid("Pattern width/height is less than 1px!"));
            }
            let (iw, ih) = (i64::from(size.width), i64::from(size.height));
            let (qx, qy) = (
                (iw as f64 / w as f64).ceil() as i64,
                (ih as f64 / h as f64).ceil() as i64,
            );
            // resize(w,h):extend(0,0,iw,ih):repeat(qx,qy,w,h), as the original chained them.
            let (tw, th) = original::target(size, w, h, *max);
            let tile = admit(tw, th, "pattern", max_pixels)?;
            wand.resize(tile, im::FilterType::Lanczos).map_err(e)?;
            let canvas = admit(iw, ih, "pattern", max_pixels)?;
            wand.extent_raw(canvas.width as usize, canvas.height as usize, 0, 0)
                .map_err(e)?;
            repeat(wand, qx, qy, w, h)?;
        }
        Original::Repeat {
            count_x,
            count_y,
            offset_x,
            offset_y,
        } => {
            let (cx, cy) = (int(count_x), int(count_y));
            if cx.saturating_add(cy).saturating_sub(2) > MAX_REPEAT_COMPOSITES {
                return Err(invalid(format!("repeat: at most {MAX_REPEAT_COMPOSITES} copies")));
            }
            repeat(wand, cx, cy, int(offset_x), int(offset_y))?;
        }
        Original::Resample { x, y, filter, max } => {
            let (x, y) = (float(x), float(y));
            let (ox, oy) = dpi;
            let w = f64::from(size.width) * x / ox;
            let h = f64::from(size.height) * y / oy;
            if let Some(m) = max.width
                && w as i64 > m
            {
                return Err(invalid(format!(
                    "Cannot resample image to horizontal resolution {x}, because it would exceed the maximum width of {m} pixels."
                )));
            }
            if let Some(m) = max.height
                && h as i64 > m
            {
                return Err(invalid(format!(
                    "Cannot resample image to vertical resolution {y}, because it would exceed the maximum height of {m} pixels."
                )));
            }
            if !(w.is_finite() && h.is_finite()) {
                return Err(invalid("resample: the image records no resolution"));
            }
            admit(w.ceil() as i64, h.ceil() as i64, "resample", max_pixels)?;
            wand.resample(Dpi { x, y }, filter_type(filter)).map_err(e)?;
        }
        Original::Canvas { x, y } => canvas(wand, float(x), float(y), max_pixels)?,
        Original::Resolution { x, y, per_cm } => {
            let (x, y) = if *per_cm {
                // The print size in cm: the resolution that spreads the
                // pixels over it (in the original's f32).
                let (xc, yc) = (x.float(size, dpi) * 0.393_700_8, y.float(size, dpi) * 0.393_700_8);
                (f64::from(size.width as f32 / xc), f64::from(size.height as f32 / yc))
            } else {
                (float(x), float(y))
            };
            if !(x.is_finite() && y.is_finite()) || x <= 0.0 || y <= 0.0 {
                return Err(invalid(format!("{x}x{y} is not a resolution")));
            }
            // As the original: Photoshop's resolution block would contradict it.
            wand.remove_profile("8bim");
            wand.set_resolution(Dpi { x, y }).map_err(e)?;
        }
        Original::Sepia(threshold) => wand.sepia_threshold(float(threshold)).map_err(e)?,
        Original::Alpha(mode) => wand.set_alpha((*mode).into()).map_err(e)?,
        Original::Gravity(name) => wand.set_gravity(gravity(name)).map_err(e)?,
        Original::Background(color) => wand.set_background_text(color).map_err(|err| invalid(err.message))?,
        Original::Profile { source, target } => {
            let space = if source.is_cmyk() {
                im::ColorspaceType::CMYK
            } else {
                im::ColorspaceType::sRGB
            };
            if wand.colorspace() != space {
                return Err(invalid(format!(
                    "profile: The image cannot be converted, because the image is in {:?} colorspace instead of {space:?}.",
                    wand.colorspace()
                )));
            }
            wand.apply_profile(profiles::icc(*source)).map_err(e)?;
            wand.apply_profile(profiles::icc(*target)).map_err(e)?;
            state.profiled = true;
        }
    }
    Ok(())
}

/// The original's `repeat`: the image laid over itself `cx` times to the
/// right and `cy` times down (ImageMagick composes from a copy).
fn repeat(wand: &mut Wand, cx: i64, cy: i64, ox: i64, oy: i64) -> Result<(), JobError> {
    let over = im::CompositeOperator::Over;
    for x in 1..cx {
        if wand.past_deadline() {
            return Err(JobError::Deadline);
        }
        let copy = wand.duplicate();
        wand.composite(&copy, over, x * ox, 0).map_err(op_error)?;
    }
    for y in 1..cy {
        if wand.past_deadline() {
            return Err(JobError::Deadline);
        }
        let copy = wand.duplicate();
        wand.composite(&copy, over, 0, y * oy).map_err(op_error)?;
    }
    Ok(())
}

/// The original's `canvas(bx, by)`: a mirrored bleed of `bx` x `by` cm.
fn canvas(wand: &mut Wand, bx: f64, by: f64, max_pixels: u64) -> Result<(), JobError> {
    let e = op_error;
    let s = wand.size();
    if s.width < 3 || s.height < 3 {
        return Err(invalid("canvas: the image is too small"));
    }
    // Drop a 1 px border that may hold artefacts of earlier steps.
    wand.extent_raw(s.width as usize - 2, s.height as usize - 2, 1, 1)
        .map_err(e)?;
    let mirrors = wand.mirrors().map_err(e)?;
    let (xd, yd) = wand.raw_resolution();
    let s = wand.size();
    let (w, h) = (i64::from(s.width), i64::from(s.height));
    let xb = (xd * bx * 0.393_700_8) as i64;
    let yb = (yd * by * 0.393_700_8) as i64;
    if xb < 0 || yb < 0 || xb > w || yb > h {
        return Err(invalid("canvas: the bleed must be between 0 and the image's size"));
    }
    let outer = admit(w + 2 * xb, h + 2 * yb, "canvas", max_pixels)?;
    wand.extent_raw(outer.width as usize, outer.height as usize, -xb, -yb)
        .map_err(e)?;
    wand.lay_mirrors(&mirrors, s, (xb, yb), im::CompositeOperator::Over)
        .map_err(e)?;
    Ok(())
}

/// The 32 resize filters by the original's names (it lowercased them).
const FILTERS: [(&str, im::FilterType); 32] = [
    ("undefined", im::FilterType::Undefined),
    ("point", im::FilterType::Point),
    ("box", im::FilterType::Box),
    ("triangle", im::FilterType::Triangle),
    ("hermite", im::FilterType::Hermite),
    ("hann", im::FilterType::Hann),
    ("hamming", im::FilterType::Hamming),
    ("blackman", im::FilterType::Blackman),
    ("gaussian", im::FilterType::Gaussian),
    ("quadratic", im::FilterType::Quadratic),
    ("cubic", im::FilterType::Cubic),
    ("catrom", im::FilterType::Catrom),
    ("mitchell", im::FilterType::Mitchell),
    ("jinc", im::FilterType::Jinc),
    ("sinc", im::FilterType::Sinc),
    ("sinc_fast", im::FilterType::SincFast),
    ("kaiser", im::FilterType::Kaiser),
    ("welch", im::FilterType::Welch),
    ("parzen", im::FilterType::Parzen),
    ("bohman", im::FilterType::Bohman),
    ("bartlett", im::FilterType::Bartlett),
    ("lagrange", im::FilterType::Lagrange),
    ("lanczos", im::FilterType::Lanczos),
    ("lanczos_sharp", im::FilterType::LanczosSharp),
    ("lanczos2", im::FilterType::Lanczos2),
    ("lanczos2_sharp", im::FilterType::Lanczos2Sharp),
    ("robidoux", im::FilterType::Robidoux),
    ("robidoux_sharp", im::FilterType::RobidouxSharp),
    ("cosine", im::FilterType::Cosine),
    ("spline", im::FilterType::Spline),
    ("lanczos_radius", im::FilterType::LanczosRadius),
    ("cubic_spline", im::FilterType::CubicSpline),
];

/// The filter of a name the lowering checked against the original's list.
fn filter_type(name: &str) -> im::FilterType {
    FILTERS
        .iter()
        .find(|(n, _)| *n == name)
        .map_or(im::FilterType::Lanczos, |(_, f)| *f)
}

/// The composite operator of a name the lowering checked: ImageMagick's in
/// snake_case, two of which differ.
fn composite(name: &str) -> im::CompositeOperator {
    match name {
        "no" => ComposeOperator::NoOp.into(),
        // ImageMagick 7 names it, but its option table does not offer it.
        "alpha" => im::CompositeOperator::Alpha,
        other => ComposeOperator::parse(other).map_or(im::CompositeOperator::Over, Into::into),
    }
}

/// Whether a composite operator name of the original's is one this
/// service can give ImageMagick.
pub fn knows_composite(name: &str) -> bool {
    matches!(name, "no" | "alpha") || ComposeOperator::parse(name).is_some()
}

fn gravity(name: &str) -> im::GravityType {
    use im::GravityType as G;
    match name {
        "north_west" => G::NorthWest,
        "north" => G::North,
        "north_east" => G::NorthEast,
        "west" => G::West,
        "center" => G::Center,
        "east" => G::East,
        "south_west" => G::SouthWest,
        "south" => G::South,
        "south_east" => G::SouthEast,
        _ => G::Undefined,
    }
}
