//! `pattern(w,h)`: the original's wallpaper filter. The image is scaled to fit
//! in `w` x `h` (keeping its aspect ratio) and that tile is repeated across a
//! canvas of the image's original size, from the top-left corner.

use super::{Args, Length, OpError, Size, side};
use std::fmt;

#[derive(Clone, Debug, PartialEq)]
pub struct Pattern {
    pub width: Length,
    pub height: Length,
}

/// Fewest pixels a tile side may have: smaller tiles would make the repeat
/// cost grow without bound while showing nothing.
const MIN_TILE: f64 = 8.0;

impl Pattern {
    pub(crate) fn parse(args: &Args) -> Result<Pattern, OpError> {
        args.count(2, 2)?;
        let op = Pattern {
            width: args.length(0, "width")?,
            height: args.length(1, "height")?,
        };
        if op.width.is_zero() || op.height.is_zero() {
            return Err(args.error("width and height must be greater than 0"));
        }
        Ok(op)
    }

    /// The tile: the image scaled to fit in the box, never below 8 pixels a side.
    pub fn tile_size(&self, input: Size) -> Size {
        let (bw, bh) = (self.width.resolve(input), self.height.resolve(input));
        let (w, h) = (f64::from(input.width), f64::from(input.height));
        let scale = (bw / w).min(bh / h);
        Size::new(
            side((w * scale).max(MIN_TILE.min(w))),
            side((h * scale).max(MIN_TILE.min(h))),
        )
    }
}

impl fmt::Display for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "pattern({},{})", self.width, self.height)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::ops::Op;
    use crate::pipeline::parse::{ParseLimits, parse_chain};

    #[test]
    fn the_tile_fits_in_the_box() {
        let step = &parse_chain("pattern(100,100)", ParseLimits::default()).unwrap().0[0];
        let Ok(Op::Pattern(p)) = Op::from_step(step) else {
            panic!()
        };
        assert_eq!(p.tile_size(Size::new(800, 500)), Size::new(100, 63));
        assert_eq!(Op::Pattern(p).output_size(Size::new(800, 500)), Size::new(800, 500));
    }
}
