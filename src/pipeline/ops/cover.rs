//! `cover(w,h[,gravity])` (alias `fill`): scale so the image covers a `w` x `h`
//! box, then crop to exactly that box at `gravity` (default center).

use super::{Args, Gravity, Length, OpError, Size, side};
use std::fmt;

#[derive(Clone, Debug, PartialEq)]
pub struct Cover {
    pub width: Length,
    pub height: Length,
    pub gravity: Gravity,
}

impl Cover {
    pub(crate) fn parse(args: &Args) -> Result<Cover, OpError> {
        args.count(2, 3)?;
        let gravity = match args.word(2) {
            None => Gravity::Center,
            Some(word) => {
                let word = word?;
                Gravity::parse(word).ok_or_else(|| args.error(format!("unknown gravity `{word}`")))?
            }
        };
        let op = Cover {
            width: args.length(0, "width")?,
            height: args.length(1, "height")?,
            gravity,
        };
        if op.width.is_zero() || op.height.is_zero() {
            return Err(args.error("width and height must be greater than 0"));
        }
        Ok(op)
    }

    pub fn output_size(&self, input: Size) -> Size {
        Size::new(side(self.width.resolve(input)), side(self.height.resolve(input)))
    }

    /// The size the whole image is scaled to before the crop.
    pub fn scaled_size(&self, input: Size) -> Size {
        let target = self.output_size(input);
        let (w, h) = (f64::from(input.width), f64::from(input.height));
        let scale = (f64::from(target.width) / w).max(f64::from(target.height) / h);
        Size::new(
            side((w * scale).max(f64::from(target.width))),
            side((h * scale).max(f64::from(target.height))),
        )
    }

    /// Offset of the crop window inside the scaled image.
    pub fn crop_offset(&self, input: Size) -> (u32, u32) {
        self.gravity.offset(self.scaled_size(input), self.output_size(input))
    }
}

impl fmt::Display for Cover {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cover({},{},{})", self.width, self.height, self.gravity.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::ops::Op;
    use crate::pipeline::parse::{ParseLimits, parse_chain};

    fn cover(text: &str) -> Cover {
        let chain = parse_chain(text, ParseLimits::default()).unwrap();
        match Op::from_step(&chain.0[0]).unwrap() {
            Op::Cover(c) => c,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn scales_to_cover_then_crops_to_the_exact_box() {
        let c = cover("cover(256,256)");
        let input = Size::new(2560, 1600);
        assert_eq!(c.scaled_size(input), Size::new(410, 256));
        assert_eq!(c.output_size(input), Size::new(256, 256));
        assert_eq!(c.crop_offset(input), (77, 0));
    }

    #[test]
    fn enlarges_small_images_to_fill_the_box() {
        let c = cover("fill(256,256,north)");
        let input = Size::new(32, 20);
        assert_eq!(c.scaled_size(input), Size::new(410, 256));
        assert_eq!(c.crop_offset(input), (77, 0));
    }

    #[test]
    fn gravity_moves_the_window() {
        let input = Size::new(1000, 500);
        assert_eq!(cover("cover(100,100,west)").crop_offset(input), (0, 0));
        assert_eq!(cover("cover(100,100,east)").crop_offset(input), (100, 0));
    }
}
