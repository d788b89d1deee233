//! `rotate(degrees[,background])`: rotate clockwise; the corners a
//! non-right angle uncovers are filled with `background` (default white).

use super::{Args, Color, OpError, Size, side};
use std::fmt;

#[derive(Clone, Debug, PartialEq)]
pub struct Rotate {
    /// Normalised to [0, 360).
    pub degrees: f64,
    pub background: Color,
}

impl Rotate {
    pub(crate) fn parse(args: &Args) -> Result<Rotate, OpError> {
        args.count(1, 2)?;
        let degrees = args.number(0, "degrees", -3600.0, 3600.0)?.rem_euclid(360.0);
        let background = if args.step.args.len() > 1 {
            args.color(1, "background")?
        } else {
            Color::WHITE
        };
        Ok(Rotate { degrees, background })
    }

    /// The bounding box of the rotated image.
    pub fn output_size(&self, input: Size) -> Size {
        let r = self.degrees.to_radians();
        let (w, h) = (f64::from(input.width), f64::from(input.height));
        let (c, s) = (r.cos().abs(), r.sin().abs());
        if self.degrees % 90.0 == 0.0 {
            return if (self.degrees / 90.0) as i64 % 2 == 1 {
                Size::new(input.height, input.width)
            } else {
                input
            };
        }
        Size::new(side((w * c + h * s).ceil()), side((w * s + h * c).ceil()))
    }
}

impl fmt::Display for Rotate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "rotate({},{})", self.degrees, self.background)
    }
}
