//! `rotate(degrees[,background])`: rotate clockwise; the corners a
//! non-right angle uncovers are filled with `background` (default white).

use super::{Args, OpError, Size, side};
use std::fmt;

#[derive(Clone, Debug, PartialEq)]
pub struct Rotate {
    /// Normalised to [0, 360).
    pub degrees: f64,
    pub background: String,
}

/// A colour name, `#rgb`/`#rrggbb[aa]` or `rgb(...)`/`rgba(...)`: nothing else reaches ImageMagick.
pub(crate) fn valid_color(c: &str) -> bool {
    !c.is_empty() && c.len() <= 40 && c.chars().all(|ch| ch.is_ascii_alphanumeric() || "#(),.% ".contains(ch))
}

impl Rotate {
    pub(crate) fn parse(args: &Args) -> Result<Rotate, OpError> {
        args.count(1, 2)?;
        let degrees = args.offset(0, "degrees")?.0.value.rem_euclid(360.0);
        let background = match args.word(1) {
            None => "white".to_string(),
            Some(w) => {
                let w = w?;
                if !valid_color(w) {
                    return Err(args.error(format!("`{w}` is not a colour")));
                }
                w.to_string()
            }
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
        write!(f, "rotate({},'{}')", self.degrees, self.background)
    }
}
