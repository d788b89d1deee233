//! Operations: one file each. Every operation parses its arguments into
//! validated parameters, prints a canonical form (cache-key material) and
//! computes its output geometry. Applying it to pixels is `magick::apply`'s job.

mod blur;
mod cover;
mod crop;
mod fit_in;
mod grayscale;
mod mirror;
mod resize;
mod resolution;
mod rotate;
mod sepia;
mod trim;

pub use blur::Blur;
pub use cover::Cover;
pub use crop::Crop;
pub use fit_in::FitIn;
pub use grayscale::Grayscale;
pub use mirror::Mirror;
pub use resize::Resize;
pub use resolution::Resolution;
pub use rotate::Rotate;
pub use sepia::Sepia;
pub use trim::Trim;

use super::parse::{Arg, Number, Step, Unit};
use std::fmt;

/// Largest width or height an operation may produce, in pixels.
pub const MAX_OUTPUT_SIDE: f64 = 16_384.0;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Size {
    pub width: u32,
    pub height: u32,
}

impl Size {
    pub fn new(width: u32, height: u32) -> Size {
        Size { width, height }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum Op {
    Resize(Resize),
    FitIn(FitIn),
    Cover(Cover),
    Crop(Crop),
    Mirror(Mirror),
    Rotate(Rotate),
    Grayscale(Grayscale),
    Blur(Blur),
    Sepia(Sepia),
    Trim(Trim),
    Resolution(Resolution),
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{op}: {message}")]
pub struct OpError {
    pub op: String,
    pub message: String,
}

impl Op {
    pub fn from_step(step: &Step) -> Result<Op, OpError> {
        let args = Args { step };
        match step.name.as_str() {
            "resize" => Resize::parse(&args).map(Op::Resize),
            "fit-in" | "fit" => FitIn::parse(&args).map(Op::FitIn),
            "cover" | "fill" => Cover::parse(&args).map(Op::Cover),
            "crop" => Crop::parse(&args).map(Op::Crop),
            "flip" => Mirror::parse(&args, Mirror::Flip).map(Op::Mirror),
            "flop" => Mirror::parse(&args, Mirror::Flop).map(Op::Mirror),
            "rotate" => Rotate::parse(&args).map(Op::Rotate),
            "grayscale" | "greyscale" => Grayscale::parse(&args).map(Op::Grayscale),
            "blur" => Blur::parse(&args, false).map(Op::Blur),
            "sharpen" => Blur::parse(&args, true).map(Op::Blur),
            "sepia" => Sepia::parse(&args).map(Op::Sepia),
            "trim" => Trim::parse(&args).map(Op::Trim),
            "dpi" => Resolution::parse(&args, false).map(Op::Resolution),
            "cm" => Resolution::parse(&args, true).map(Op::Resolution),
            other => Err(OpError {
                op: other.to_string(),
                message: "unknown filter".to_string(),
            }),
        }
    }

    /// The size this operation produces from an input of `input`.
    pub fn output_size(&self, input: Size) -> Size {
        match self {
            Op::Resize(op) => op.output_size(input),
            Op::FitIn(op) => op.output_size(input),
            Op::Cover(op) => op.output_size(input),
            Op::Crop(op) => op.output_size(input),
            Op::Rotate(op) => op.output_size(input),
            // trim's result depends on pixels; geometry after it is measured
            // on the image (see magick::apply).
            Op::Mirror(_) | Op::Grayscale(_) | Op::Blur(_) | Op::Sepia(_) | Op::Trim(_) | Op::Resolution(_) => input,
        }
    }

    /// For operations that scale the whole image: the size the image is scaled
    /// to (before any crop). Used to decode large JPEGs at a reduced size.
    pub fn scaled_size(&self, input: Size) -> Option<Size> {
        match self {
            Op::Resize(op) => Some(op.output_size(input)),
            Op::FitIn(op) => Some(op.output_size(input)),
            Op::Cover(op) => Some(op.scaled_size(input)),
            _ => None,
        }
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Op::Resize(op) => op.fmt(f),
            Op::FitIn(op) => op.fmt(f),
            Op::Cover(op) => op.fmt(f),
            Op::Crop(op) => op.fmt(f),
            Op::Mirror(op) => op.fmt(f),
            Op::Rotate(op) => op.fmt(f),
            Op::Grayscale(op) => op.fmt(f),
            Op::Blur(op) => op.fmt(f),
            Op::Sepia(op) => op.fmt(f),
            Op::Trim(op) => op.fmt(f),
            Op::Resolution(op) => op.fmt(f),
        }
    }
}

/// A length argument: absolute pixels or a fraction of the current width/height.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Length(pub Number);

impl Length {
    pub fn resolve(self, size: Size) -> f64 {
        match self.0.unit {
            Unit::Px => self.0.value,
            Unit::W => self.0.value * f64::from(size.width),
            Unit::H => self.0.value * f64::from(size.height),
        }
    }

    fn is_zero(self) -> bool {
        self.0.value == 0.0
    }
}

impl fmt::Display for Length {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Positional argument access with errors that name the operation and argument.
pub(crate) struct Args<'a> {
    pub(crate) step: &'a Step,
}

impl Args<'_> {
    pub fn error(&self, message: impl Into<String>) -> OpError {
        OpError {
            op: self.step.name.clone(),
            message: message.into(),
        }
    }

    pub fn count(&self, min: usize, max: usize) -> Result<(), OpError> {
        let n = self.step.args.len();
        if n < min || n > max {
            let expected = if min == max {
                format!("{min}")
            } else {
                format!("{min} to {max}")
            };
            return Err(self.error(format!("takes {expected} arguments, got {n}")));
        }
        Ok(())
    }

    /// A non-negative length no larger than `MAX_OUTPUT_SIDE` (in pixels, or a
    /// fraction of at most 16 times the image when relative).
    pub fn length(&self, i: usize, what: &str) -> Result<Length, OpError> {
        match self.step.args.get(i) {
            Some(Arg::Number(n)) => {
                let max = if n.unit == Unit::Px { MAX_OUTPUT_SIDE } else { 16.0 };
                if n.value < 0.0 || n.value > max {
                    return Err(self.error(format!("{what} must be between 0 and {max}, got {n}")));
                }
                Ok(Length(*n))
            }
            Some(other) => Err(self.error(format!("{what} must be a number, got `{other}`"))),
            None => Err(self.error(format!("missing {what}"))),
        }
    }

    /// An offset: may be negative, bounded by `MAX_OUTPUT_SIDE`.
    pub fn offset(&self, i: usize, what: &str) -> Result<Length, OpError> {
        match self.step.args.get(i) {
            Some(Arg::Number(n)) if n.value.abs() <= MAX_OUTPUT_SIDE => Ok(Length(*n)),
            Some(Arg::Number(n)) => Err(self.error(format!("{what} is out of range: {n}"))),
            Some(other) => Err(self.error(format!("{what} must be a number, got `{other}`"))),
            None => Err(self.error(format!("missing {what}"))),
        }
    }

    pub fn word(&self, i: usize) -> Option<Result<&str, OpError>> {
        self.step.args.get(i).map(|arg| match arg {
            Arg::Word(w) => Ok(w.as_str()),
            other => Err(self.error(format!("expected a word, got `{other}`"))),
        })
    }
}

/// Rounds a computed side to whole pixels, never below 1 nor above the maximum.
pub(crate) fn side(value: f64) -> u32 {
    value.round().clamp(1.0, MAX_OUTPUT_SIDE) as u32
}

/// Resampling filters offered to alias authors. `auto` is Catmull-Rom, chosen
/// by measuring speed and quality together (`magick::apply::filter_for`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Filter {
    Auto,
    Point,
    Box,
    Triangle,
    Catrom,
    Mitchell,
    Lanczos,
}

impl Filter {
    pub fn parse(name: &str) -> Option<Filter> {
        Some(match name.to_ascii_lowercase().as_str() {
            "auto" => Filter::Auto,
            "point" => Filter::Point,
            "box" => Filter::Box,
            "triangle" | "bilinear" => Filter::Triangle,
            "catrom" | "bicubic" => Filter::Catrom,
            "mitchell" => Filter::Mitchell,
            "lanczos" => Filter::Lanczos,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Filter::Auto => "auto",
            Filter::Point => "point",
            Filter::Box => "box",
            Filter::Triangle => "triangle",
            Filter::Catrom => "catrom",
            Filter::Mitchell => "mitchell",
            Filter::Lanczos => "lanczos",
        }
    }
}

/// Where a crop keeps the image when it cannot keep all of it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Gravity {
    Center,
    North,
    South,
    East,
    West,
    NorthEast,
    NorthWest,
    SouthEast,
    SouthWest,
}

impl Gravity {
    pub fn parse(name: &str) -> Option<Gravity> {
        Some(match name.to_ascii_lowercase().replace('_', "-").as_str() {
            "center" | "centre" => Gravity::Center,
            "north" | "top" => Gravity::North,
            "south" | "bottom" => Gravity::South,
            "east" | "right" => Gravity::East,
            "west" | "left" => Gravity::West,
            "north-east" | "northeast" => Gravity::NorthEast,
            "north-west" | "northwest" => Gravity::NorthWest,
            "south-east" | "southeast" => Gravity::SouthEast,
            "south-west" | "southwest" => Gravity::SouthWest,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Gravity::Center => "center",
            Gravity::North => "north",
            Gravity::South => "south",
            Gravity::East => "east",
            Gravity::West => "west",
            Gravity::NorthEast => "north-east",
            Gravity::NorthWest => "north-west",
            Gravity::SouthEast => "south-east",
            Gravity::SouthWest => "south-west",
        }
    }

    /// Offset of a `inner` window placed inside `outer` by this gravity.
    pub fn offset(self, outer: Size, inner: Size) -> (u32, u32) {
        let dx = outer.width.saturating_sub(inner.width);
        let dy = outer.height.saturating_sub(inner.height);
        let x = match self {
            Gravity::West | Gravity::NorthWest | Gravity::SouthWest => 0,
            Gravity::East | Gravity::NorthEast | Gravity::SouthEast => dx,
            _ => dx / 2,
        };
        let y = match self {
            Gravity::North | Gravity::NorthEast | Gravity::NorthWest => 0,
            Gravity::South | Gravity::SouthEast | Gravity::SouthWest => dy,
            _ => dy / 2,
        };
        (x, y)
    }
}
