//! `extend(x,y,w,h)`: the original's canvas extension. The new canvas spans
//! from (`x`,`y`) to (`w`,`h`) in the image's own coordinates, so a negative
//! `x` adds a border on the left and a `w` beyond the width adds one on the
//! right. New area takes the background colour (`bg()`, default white).
//! After `gravity(g)` other than north-west, the image is placed on the canvas
//! by that gravity and then moved by (-`x`,-`y`), as `magick -gravity g -extent`.

use super::{Args, Gravity, Length, OpError, Size, side};
use std::fmt;

#[derive(Clone, Debug, PartialEq)]
pub struct Extend {
    pub x: Length,
    pub y: Length,
    pub right: Length,
    pub bottom: Length,
}

impl Extend {
    pub(crate) fn parse(args: &Args) -> Result<Extend, OpError> {
        args.count(4, 4)?;
        let op = Extend {
            x: args.offset(0, "x")?,
            y: args.offset(1, "y")?,
            right: args.offset(2, "w")?,
            bottom: args.offset(3, "h")?,
        };
        let absolute = |l: Length| l.0.unit == crate::pipeline::parse::Unit::Px;
        if absolute(op.x) && absolute(op.right) && op.right.0.value <= op.x.0.value
            || absolute(op.y) && absolute(op.bottom) && op.bottom.0.value <= op.y.0.value
        {
            return Err(args.error("the canvas is empty: w must exceed x and h must exceed y"));
        }
        Ok(op)
    }

    pub fn output_size(&self, input: Size) -> Size {
        Size::new(
            side(self.right.resolve(input) - self.x.resolve(input)),
            side(self.bottom.resolve(input) - self.y.resolve(input)),
        )
    }

    /// Where the canvas's top-left corner lies in the image's coordinates
    /// (ImageMagick's extent offset), given the current gravity.
    pub fn canvas_origin(&self, input: Size, gravity: Gravity) -> (i64, i64) {
        let canvas = self.output_size(input);
        let (ax, ay) = gravity.signed_offset(canvas, input);
        (
            self.x.resolve(input).round() as i64 - ax,
            self.y.resolve(input).round() as i64 - ay,
        )
    }
}

impl fmt::Display for Extend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "extend({},{},{},{})", self.x, self.y, self.right, self.bottom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::ops::Op;
    use crate::pipeline::parse::{ParseLimits, parse_chain};

    fn extend(text: &str) -> Result<Op, OpError> {
        Op::from_step(&parse_chain(text, ParseLimits::default()).unwrap().0[0])
    }

    #[test]
    fn a_box_in_image_coordinates() {
        let Ok(Op::Extend(e)) = extend("extend(-10,-20,110,80)") else {
            panic!()
        };
        let input = Size::new(100, 50);
        assert_eq!(e.output_size(input), Size::new(120, 100));
        assert_eq!(e.canvas_origin(input, Gravity::NorthWest), (-10, -20));
        // Centred on a 120x100 canvas: the image sits at (10, 25), shifted by (10, 20).
        assert_eq!(e.canvas_origin(input, Gravity::Center), (-20, -45));
        assert!(extend("extend(10,0,10,50)").is_err());
        assert!(extend("extend(0,0,1w)").is_err());
    }
}
