//! The original imaginator's (2018) operations, where they behave
//! differently from the native ones: the compat profile lowers its URLs to
//! plans (`compat::lower`) whose steps are native operations where the
//! original's filters behave alike (flip, flop, colorspace, compression)
//! and these where they do not. The differences: every argument is read
//! when the filter runs, against the image as it is then, in `f32` and
//! truncated (`Amount`); `resize` makes exactly the size asked (a zero side
//! from the aspect ratio, both clamped to `image.max_*`); `fit-in` enlarges;
//! `crop` and `extend` are ImageMagick's own (a negative offset clips);
//! `pattern` resizes its tile exactly; `repeat` lays the image over itself
//! as the original did; `sepia` takes a threshold in quantum units;
//! resolutions are set as given; colours, gravities and composite operators
//! go to ImageMagick by the original's names.
//!
//! Like every operation here: parameters, a canonical text form, and the
//! geometry estimates use; applying them is `magick::original`'s job, in the
//! same job, with the same limits, budget and deadline as every plan.

use super::{AlphaMode, IccProfile, Op, Size};
use crate::pipeline::parse::Unit;
use std::fmt;

/// A number as the original read it: with a unit, converted to pixels in
/// `f32` against the image when the filter runs, then truncated.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Amount {
    pub value: f64,
    pub unit: Unit,
}

impl Amount {
    /// In the original's `f32` (its `parse_size`): `w` and `h` of the image's
    /// size, centimetres and inches at its recorded resolution.
    pub fn float(self, size: Size, dpi: (f64, f64)) -> f32 {
        let v = self.value as f32;
        let (rx, ry) = (dpi.0 as f32, dpi.1 as f32);
        match self.unit {
            Unit::Px => v,
            Unit::W => v * size.width as f32,
            Unit::H => v * size.height as f32,
            Unit::Hcm => v * 0.393_700_8 * rx,
            Unit::Vcm => v * 0.393_700_8 * ry,
            Unit::Hin => v * rx,
            Unit::Vin => v * ry,
        }
    }

    /// Whole pixels: a plain number as it is (the lowering refused
    /// fractions of a pixel), anything else converted and truncated.
    pub fn int(self, size: Size, dpi: (f64, f64)) -> i64 {
        match self.unit {
            Unit::Px => self.value as i64,
            _ => self.float(size, dpi) as i64,
        }
    }
}

impl fmt::Display for Amount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let suffix = Unit::SUFFIXES
            .iter()
            .find(|(_, u)| *u == self.unit)
            .map_or("", |(s, _)| *s);
        if self.unit == Unit::Px {
            write!(f, "{}", self.value)
        } else {
            write!(f, "{}{suffix}", self.value)
        }
    }
}

/// `image.max_width` / `image.max_height`: resize targets are clamped to them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MaxSize {
    pub width: Option<i64>,
    pub height: Option<i64>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Original {
    /// Exactly `width` x `height` (a zero side from the aspect ratio), with
    /// ImageMagick's filter of the original's name (Lanczos by default).
    Resize {
        width: Amount,
        height: Amount,
        filter: &'static str,
        max: MaxSize,
    },
    /// Inside `width` x `height`, enlarging too (magick_rust's arithmetic:
    /// the smaller ratio wins, the other side truncated), Lanczos.
    FitIn {
        width: Amount,
        height: Amount,
        max: MaxSize,
    },
    /// `compose(dst, src, operator, x, y)`: image `input` after `ops`, laid
    /// at (x, y) with the operator of the original's name.
    Compose {
        input: usize,
        ops: Vec<Op>,
        operator: &'static str,
        x: Amount,
        y: Amount,
    },
    /// ImageMagick's trim with fuzz 15 (quantum units).
    Trim,
    /// ImageMagick's crop: a negative offset clips.
    Crop {
        x: Amount,
        y: Amount,
        width: Amount,
        height: Amount,
    },
    /// ImageMagick's extent to (right - x) x (bottom - y) at (x, y), in the
    /// image's background colour.
    Extend {
        x: Amount,
        y: Amount,
        right: Amount,
        bottom: Amount,
    },
    /// The image resized to exactly `width` x `height` as a tile, repeated
    /// over the image's size.
    Pattern {
        width: Amount,
        height: Amount,
        max: MaxSize,
    },
    /// The image laid over itself `count_x` times to the right and
    /// `count_y` times down, each time from a copy of what is there.
    Repeat {
        count_x: Amount,
        count_y: Amount,
        offset_x: Amount,
        offset_y: Amount,
    },
    Resample {
        x: Amount,
        y: Amount,
        filter: &'static str,
        max: MaxSize,
    },
    /// A mirrored bleed of `x` x `y` cm around the image less its 1 px edge.
    Canvas {
        x: Amount,
        y: Amount,
    },
    /// `dpi(x, y)`, or `cm(x, y)`: the print size in cm, as a resolution.
    Resolution {
        x: Amount,
        y: Amount,
        per_cm: bool,
    },
    /// ImageMagick's sepia tone with a threshold in quantum units.
    Sepia(Amount),
    Alpha(AlphaMode),
    /// ImageMagick's gravity of the original's name (`undefined` included).
    Gravity(&'static str),
    /// The background colour as ImageMagick reads the original's text.
    Background(String),
    /// The pixels converted from one bundled profile to another; the image
    /// must be in the source profile's colour space.
    Profile {
        source: IccProfile,
        target: IccProfile,
    },
}

/// The most composites one `repeat` may make (in both dialects: the
/// native one lays `count_x * count_y` copies, the original's `count_x +
/// count_y - 2`).
pub const MAX_REPEAT_COMPOSITES: i64 = 256;

impl Original {
    /// The size this step makes from `input` at resolution `dpi`, for
    /// estimates: exact for the steps whose size follows from their
    /// arguments, the input's for the others (`resample` and `canvas`
    /// depend on the recorded resolution, `trim` on the pixels: measured).
    pub fn output_size(&self, input: Size, dpi: (f64, f64)) -> Size {
        let clamp = |w: i64, h: i64| {
            Size::new(
                w.clamp(1, i64::from(u32::MAX)) as u32,
                h.clamp(1, i64::from(u32::MAX)) as u32,
            )
        };
        match self {
            Original::Resize { width, height, max, .. } => {
                match target(input, width.int(input, dpi), height.int(input, dpi), *max) {
                    (w, h) if w < 1 || h < 1 => input,
                    (w, h) => clamp(w, h),
                }
            }
            Original::FitIn { width, height, max } => {
                match fit(input, width.int(input, dpi), height.int(input, dpi), *max) {
                    (w, h) if w < 1 || h < 1 => input,
                    (w, h) => clamp(w, h),
                }
            }
            Original::Crop { x, y, width, height } => {
                // ImageMagick's crop clips the window to the image.
                let (x, y) = (x.int(input, dpi), y.int(input, dpi));
                let (w, h) = (width.int(input, dpi), height.int(input, dpi));
                let right = (x + w).min(i64::from(input.width));
                let bottom = (y + h).min(i64::from(input.height));
                clamp(right - x.max(0), bottom - y.max(0))
            }
            Original::Extend { x, y, right, bottom } => clamp(
                right.int(input, dpi) - x.int(input, dpi),
                bottom.int(input, dpi) - y.int(input, dpi),
            ),
            _ => input,
        }
    }

    /// Whether the size after this step is read from the image (every step
    /// of the original's is measured when it runs: its arguments are read
    /// against the image as it is then).
    pub fn measured_size(&self) -> bool {
        true
    }
}

/// The original's resize target: clamped to `image.max_*`, a zero side
/// from the aspect ratio, truncated.
///
/// A side below 1 (`resize(0,0)`, or a ratio that truncates to 0) leaves
/// the image as it is: ImageMagick refused that resize and the original
/// ignored the refusal.
pub fn target(input: Size, mut w: i64, mut h: i64, max: MaxSize) -> (i64, i64) {
    if let Some(m) = max.width {
        w = w.min(m);
    }
    if let Some(m) = max.height {
        h = h.min(m);
    }
    let ratio = f64::from(input.width) / f64::from(input.height);
    if w == 0 {
        w = (h as f64 * ratio) as i64;
    }
    if h == 0 {
        h = (w as f64 / ratio) as i64;
    }
    (w, h)
}

/// The original's fit-in: the target as `target`, then magick_rust's `fit`
/// arithmetic (the smaller ratio wins, the other side truncated); enlarges.
pub fn fit(input: Size, w: i64, h: i64, max: MaxSize) -> (i64, i64) {
    let (w, h) = target(input, w, h, max);
    let (iw, ih) = (f64::from(input.width), f64::from(input.height));
    let (rw, rh) = (w as f64 / iw, h as f64 / ih);
    if rw < rh {
        (w, (ih * rw) as i64)
    } else {
        ((iw * rh) as i64, h)
    }
}

impl fmt::Display for Original {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let max = |m: &MaxSize| format!("{},{}", m.width.unwrap_or(-1), m.height.unwrap_or(-1));
        match self {
            Original::Resize {
                width,
                height,
                filter,
                max: m,
            } => write!(f, "o.resize({width},{height},{filter},{})", max(m)),
            Original::FitIn { width, height, max: m } => write!(f, "o.fit-in({width},{height},{})", max(m)),
            Original::Compose {
                input,
                ops,
                operator,
                x,
                y,
            } => {
                let ops: Vec<String> = ops.iter().map(ToString::to_string).collect();
                write!(f, "o.compose(#{input}[{}],{operator},{x},{y})", ops.join(":"))
            }
            Original::Trim => write!(f, "o.trim()"),
            Original::Crop { x, y, width, height } => write!(f, "o.crop({x},{y},{width},{height})"),
            Original::Extend { x, y, right, bottom } => write!(f, "o.extend({x},{y},{right},{bottom})"),
            Original::Pattern { width, height, max: m } => write!(f, "o.pattern({width},{height},{})", max(m)),
            Original::Repeat {
                count_x,
                count_y,
                offset_x,
                offset_y,
            } => write!(f, "o.repeat({count_x},{count_y},{offset_x},{offset_y})"),
            Original::Resample { x, y, filter, max: m } => write!(f, "o.resample({x},{y},{filter},{})", max(m)),
            Original::Canvas { x, y } => write!(f, "o.canvas({x},{y})"),
            Original::Resolution { x, y, per_cm } => {
                write!(f, "o.{}({x},{y})", if *per_cm { "cm" } else { "dpi" })
            }
            Original::Sepia(t) => write!(f, "o.sepia({t})"),
            Original::Alpha(a) => write!(f, "o.alpha({a:?})"),
            Original::Gravity(g) => write!(f, "o.gravity({g})"),
            Original::Background(c) => write!(f, "o.bg({c:?})"),
            Original::Profile { source, target } => {
                write!(f, "o.profile({},{})", source.name(), target.name())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn px(v: f64) -> Amount {
        Amount {
            value: v,
            unit: Unit::Px,
        }
    }

    #[test]
    fn sizes_are_the_originals_f32_truncated() {
        let photo = Size::new(800, 500);
        let third = Amount {
            value: 0.333,
            unit: Unit::W,
        };
        assert_eq!(third.int(photo, (72.0, 72.0)), 266);
        let two_cm = Amount {
            value: 2.0,
            unit: Unit::Hcm,
        };
        assert_eq!(two_cm.int(photo, (300.0, 300.0)), 236);
        assert_eq!(target(photo, 200, 0, MaxSize::default()), (200, 125));
        assert_eq!(
            target(
                photo,
                2000,
                0,
                MaxSize {
                    width: Some(400),
                    height: None
                }
            ),
            (400, 250)
        );
        assert_eq!(
            fit(photo, 1600, 1600, MaxSize::default()),
            (1600, 1000),
            "fit-in enlarges"
        );
        let crop = Original::Crop {
            x: px(-10.0),
            y: px(-10.0),
            width: px(100.0),
            height: px(100.0),
        };
        assert_eq!(crop.output_size(photo, (72.0, 72.0)), Size::new(90, 90));
    }
}
