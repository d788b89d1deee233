//! `crop(x,y,w,h)`: keep the `w` x `h` window at (`x`,`y`), clipped to the image.

use super::{Args, Length, OpError, Size, side};
use std::fmt;

#[derive(Clone, Debug, PartialEq)]
pub struct Crop {
    pub x: Length,
    pub y: Length,
    pub width: Length,
    pub height: Length,
}

impl Crop {
    pub(crate) fn parse(args: &Args) -> Result<Crop, OpError> {
        args.count(4, 4)?;
        let op = Crop {
            x: args.offset(0, "x")?,
            y: args.offset(1, "y")?,
            width: args.length(2, "width")?,
            height: args.length(3, "height")?,
        };
        if op.width.is_zero() || op.height.is_zero() {
            return Err(args.error("width and height must be greater than 0"));
        }
        Ok(op)
    }

    /// The window clipped to the image: (x, y, size).
    pub fn window(&self, input: Size) -> (u32, u32, Size) {
        let x = self
            .x
            .resolve(input)
            .round()
            .clamp(0.0, f64::from(input.width.saturating_sub(1))) as u32;
        let y = self
            .y
            .resolve(input)
            .round()
            .clamp(0.0, f64::from(input.height.saturating_sub(1))) as u32;
        let w = side(self.width.resolve(input)).min(input.width - x);
        let h = side(self.height.resolve(input)).min(input.height - y);
        (x, y, Size::new(w.max(1), h.max(1)))
    }

    pub fn output_size(&self, input: Size) -> Size {
        self.window(input).2
    }
}

impl fmt::Display for Crop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "crop({},{},{},{})", self.x, self.y, self.width, self.height)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::ops::Op;
    use crate::pipeline::parse::{ParseLimits, parse_chain};

    fn crop(text: &str) -> Crop {
        let chain = parse_chain(text, ParseLimits::default()).unwrap();
        match Op::from_step(&chain.0[0]).unwrap() {
            Op::Crop(c) => c,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_window_is_clipped_to_the_image() {
        assert_eq!(
            crop("crop(10,20,30,40)").window(Size::new(100, 100)),
            (10, 20, Size::new(30, 40))
        );
        assert_eq!(
            crop("crop(90,90,30,40)").window(Size::new(100, 100)),
            (90, 90, Size::new(10, 10))
        );
        assert_eq!(
            crop("crop(0.5w,0,0.5w,1h)").window(Size::new(100, 50)),
            (50, 0, Size::new(50, 50))
        );
    }
}
