//! Operations: one file each. Every operation parses its arguments into
//! validated parameters, prints a canonical form (cache-key material) and
//! computes its output geometry. Applying it to pixels is `magick::apply`'s job.

mod alpha;
mod background;
mod blur;
mod canvas;
mod color;
mod color_names;
mod colorspace;
mod compose;
mod compression;
mod cover;
mod crop;
pub mod dpr;
mod extend;
mod fit_in;
mod gravity;
mod grayscale;
mod mirror;
mod options;
pub mod original;
mod pattern;
mod profile;
mod repeat;
mod resample;
mod resize;
mod resolution;
mod rotate;
mod sepia;
mod trim;

pub use alpha::Alpha;
pub use background::Background;
pub use blur::Blur;
pub use canvas::Canvas;
pub use color::Color;
pub use colorspace::Colorspace;
pub use compose::Compose;
pub use compression::Compression;
pub use cover::Cover;
pub use crop::Crop;
pub use extend::Extend;
pub use fit_in::FitIn;
pub use gravity::SetGravity;
pub use grayscale::Grayscale;
pub use mirror::Mirror;
pub use options::{AlphaMode, ColorspaceName, ComposeOperator, CompressionName};
pub use pattern::Pattern;
pub use profile::{IccProfile, Profile};
pub use repeat::Repeat;
pub use resample::Resample;
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

/// A resolution in dots per inch, horizontal and vertical.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Dpi {
    pub x: f64,
    pub y: f64,
}

impl Dpi {
    /// What an image that records no resolution counts as (ImageMagick's default).
    pub const DEFAULT: Dpi = Dpi { x: 72.0, y: 72.0 };
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
    Extend(Extend),
    Gravity(SetGravity),
    Background(Background),
    Alpha(Alpha),
    Colorspace(Colorspace),
    Compression(Compression),
    Profile(Profile),
    Resample(Resample),
    Pattern(Pattern),
    Repeat(Repeat),
    Canvas(Canvas),
    Compose(Compose),
    Dpr(dpr::Dpr),
    /// The original imaginator's behaviour (the compat profile's plans).
    Original(original::Original),
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{op}: {message}")]
pub struct OpError {
    pub op: String,
    pub message: String,
}

/// Every operation name `Op::from_step` knows (for suggestions).
pub const NAMES: &[&str] = &[
    "resize",
    "fit-in",
    "fit",
    "cover",
    "fill",
    "crop",
    "flip",
    "flop",
    "rotate",
    "grayscale",
    "greyscale",
    "blur",
    "sharpen",
    "sepia",
    "trim",
    "dpi",
    "cm",
    "extend",
    "gravity",
    "bg",
    "background",
    "alpha",
    "colorspace",
    "compression",
    "profile",
    "resample",
    "pattern",
    "repeat",
    "canvas",
    "dpr",
    "compose",
];

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
            "extend" => Extend::parse(&args).map(Op::Extend),
            "gravity" => SetGravity::parse(&args).map(Op::Gravity),
            "bg" | "background" => Background::parse(&args).map(Op::Background),
            "alpha" => Alpha::parse(&args).map(Op::Alpha),
            "colorspace" => Colorspace::parse(&args).map(Op::Colorspace),
            "compression" => Compression::parse(&args).map(Op::Compression),
            "profile" => Profile::parse(&args).map(Op::Profile),
            "resample" => Resample::parse(&args).map(Op::Resample),
            "pattern" => Pattern::parse(&args).map(Op::Pattern),
            "repeat" => Repeat::parse(&args).map(Op::Repeat),
            "canvas" => Canvas::parse(&args).map(Op::Canvas),
            "dpr" => dpr::Dpr::parse(&args).map(Op::Dpr),
            "compose" => {
                Err(args
                    .error("takes a second image: compose(dst, src, op, x, y) with src = download(...), in URL chains"))
            }
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
            Op::Extend(op) => op.output_size(input),
            // Sizes that depend on the pixels or the recorded resolution are
            // measured on the image instead (`measured_size`).
            Op::Trim(_) | Op::Resample(_) | Op::Canvas(_) => input,
            Op::Mirror(_)
            | Op::Grayscale(_)
            | Op::Blur(_)
            | Op::Sepia(_)
            | Op::Resolution(_)
            | Op::Gravity(_)
            | Op::Background(_)
            | Op::Alpha(_)
            | Op::Colorspace(_)
            | Op::Compression(_)
            | Op::Profile(_)
            | Op::Pattern(_)
            | Op::Repeat(_)
            | Op::Compose(_)
            | Op::Dpr(_) => input,
            Op::Original(op) => op.output_size(input, (Dpi::DEFAULT.x, Dpi::DEFAULT.y)),
        }
    }

    /// Whether the size after this operation must be read from the image:
    /// it depends on the pixels (trim) or on the recorded resolution.
    pub fn measured_size(&self) -> bool {
        match self {
            Op::Original(op) => op.measured_size(),
            other => matches!(other, Op::Trim(_) | Op::Resample(_) | Op::Canvas(_)),
        }
    }

    /// Renumbers the images `compose` steps lay over (when an alias's
    /// overlays are spliced into a chain that already has images).
    pub fn shift_sources(&mut self, by: usize) {
        let (input, ops) = match self {
            Op::Compose(c) => (&mut c.input, &mut c.ops),
            Op::Original(original::Original::Compose { input, ops, .. }) => (input, ops),
            _ => return,
        };
        *input += by;
        for op in ops {
            op.shift_sources(by);
        }
    }

    /// Every length argument, for converting physical units.
    fn lengths_mut(&mut self) -> Vec<&mut Length> {
        match self {
            Op::Resize(op) => vec![&mut op.width, &mut op.height],
            Op::FitIn(op) => vec![&mut op.width, &mut op.height],
            Op::Cover(op) => vec![&mut op.width, &mut op.height],
            Op::Crop(op) => vec![&mut op.x, &mut op.y, &mut op.width, &mut op.height],
            Op::Extend(op) => vec![&mut op.x, &mut op.y, &mut op.right, &mut op.bottom],
            Op::Pattern(op) => vec![&mut op.width, &mut op.height],
            Op::Repeat(op) => vec![&mut op.offset_x, &mut op.offset_y],
            Op::Compose(op) => vec![&mut op.x, &mut op.y],
            _ => Vec::new(),
        }
    }

    /// This operation with `hcm`/`vcm`/`hin`/`vin` lengths turned into pixels
    /// at the image's current resolution.
    pub fn in_pixels(&self, dpi: Dpi) -> Op {
        let mut op = self.clone();
        for length in op.lengths_mut() {
            *length = length.in_pixels(dpi);
        }
        op
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
            Op::Extend(op) => op.fmt(f),
            Op::Gravity(op) => op.fmt(f),
            Op::Background(op) => op.fmt(f),
            Op::Alpha(op) => op.fmt(f),
            Op::Colorspace(op) => op.fmt(f),
            Op::Compression(op) => op.fmt(f),
            Op::Profile(op) => op.fmt(f),
            Op::Resample(op) => op.fmt(f),
            Op::Pattern(op) => op.fmt(f),
            Op::Repeat(op) => op.fmt(f),
            Op::Canvas(op) => op.fmt(f),
            Op::Compose(op) => op.fmt(f),
            Op::Dpr(op) => op.fmt(f),
            Op::Original(op) => op.fmt(f),
        }
    }
}

/// A length argument: absolute pixels, a fraction of the current width/height,
/// or centimetres/inches at the image's resolution.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Length(pub Number);

impl Length {
    /// In pixels. Physical units should have been converted by `in_pixels`
    /// with the image's resolution; unconverted, they count at 72 dpi.
    pub fn resolve(self, size: Size) -> f64 {
        match self.0.unit {
            Unit::Px => self.0.value,
            Unit::W => self.0.value * f64::from(size.width),
            Unit::H => self.0.value * f64::from(size.height),
            _ => self.in_pixels(Dpi::DEFAULT).0.value,
        }
    }

    /// Physical lengths as pixels at `dpi`; other lengths unchanged.
    pub fn in_pixels(self, dpi: Dpi) -> Length {
        let inches = match self.0.unit {
            Unit::Hcm => self.0.value / 2.54 * dpi.x,
            Unit::Vcm => self.0.value / 2.54 * dpi.y,
            Unit::Hin => self.0.value * dpi.x,
            Unit::Vin => self.0.value * dpi.y,
            _ => return self,
        };
        Length(Number {
            value: inches,
            unit: Unit::Px,
        })
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
                let max = match n.unit {
                    Unit::Px => MAX_OUTPUT_SIDE,
                    Unit::W | Unit::H => 16.0,
                    // 10 m: the pixel limit applies after conversion.
                    _ => 1000.0,
                };
                if n.value < 0.0 || n.value > max {
                    return Err(self.error(format!("{what} must be between 0 and {max}, got {n}")));
                }
                Ok(Length(*n))
            }
            Some(other) => Err(self.error(format!("{what} must be a number, got `{other}`"))),
            None => Err(self.error(format!("missing {what}"))),
        }
    }

    /// A plain number (no unit: `dpi(2w)` means nothing) within `min..=max`.
    pub fn number(&self, i: usize, what: &str, min: f64, max: f64) -> Result<f64, OpError> {
        match self.step.args.get(i) {
            Some(Arg::Number(n)) if n.unit != Unit::Px => {
                Err(self.error(format!("{what} is a plain number, not a length: got `{n}`")))
            }
            Some(Arg::Number(n)) if (min..=max).contains(&n.value) => Ok(n.value),
            Some(Arg::Number(n)) => Err(self.error(format!("{what} must be between {min} and {max}, got {n}"))),
            Some(other) => Err(self.error(format!("{what} must be a number, got `{other}`"))),
            None => Err(self.error(format!("missing {what}"))),
        }
    }

    /// A colour (`Color::parse`), or an error naming the argument.
    pub fn color(&self, i: usize, what: &str) -> Result<Color, OpError> {
        match self.step.args.get(i) {
            Some(Arg::Word(w)) => Color::parse(w).ok_or_else(|| self.error(format!("{what}: `{w}` is not a colour"))),
            Some(other) => Err(self.error(format!("{what}: `{other}` is not a colour"))),
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

/// An ImageMagick option name (`parse` is one of `options`' parsers), or an
/// error naming the argument.
pub(crate) fn option<T>(args: &Args, i: usize, what: &str, parse: impl Fn(&str) -> Option<T>) -> Result<T, OpError> {
    let word = match args.word(i) {
        Some(w) => w?,
        None => return Err(args.error(format!("missing {what}"))),
    };
    parse(word).ok_or_else(|| args.error(format!("unknown {what} `{word}`")))
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
    /// Crops only: the window with the most detail, skin tones and colour
    /// (`magick::smart`), deterministic for the same pixels. Placed by
    /// geometry alone (no pixels at hand), it is the centre.
    Smart,
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
            "smart" => Gravity::Smart,
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
            Gravity::Smart => "smart",
        }
    }

    /// Offset of `inner` placed inside `outer` by this gravity, negative when
    /// `inner` is the larger (as ImageMagick's gravity geometry).
    pub fn signed_offset(self, outer: Size, inner: Size) -> (i64, i64) {
        let dx = i64::from(outer.width) - i64::from(inner.width);
        let dy = i64::from(outer.height) - i64::from(inner.height);
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

    /// Offset of a `inner` window placed inside `outer` by this gravity
    /// (0 on a side where `inner` is the larger).
    pub fn offset(self, outer: Size, inner: Size) -> (u32, u32) {
        let (x, y) = self.signed_offset(outer, inner);
        (x.max(0) as u32, y.max(0) as u32)
    }
}
