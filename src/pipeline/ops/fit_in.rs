//! `fit-in(w,h)`: scale to fit inside a `w` x `h` box keeping the aspect ratio,
//! never enlarging; `fit-in(w,h,enlarge)` enlarges a smaller image to the
//! box too (imaginator 2018's `fit-in`). A side of 0 leaves that side
//! unconstrained.

use super::{Args, Length, OpError, Size, side};
use std::fmt;

#[derive(Clone, Debug, PartialEq)]
pub struct FitIn {
    pub width: Length,
    pub height: Length,
    /// Scale a smaller image up to the box too.
    pub enlarge: bool,
}

impl FitIn {
    pub(crate) fn parse(args: &Args) -> Result<FitIn, OpError> {
        args.count(2, 3)?;
        let enlarge = match args.word(2) {
            None => false,
            Some(word) => match word? {
                "enlarge" => true,
                other => return Err(args.error(format!("the third argument is `enlarge` or nothing, got `{other}`"))),
            },
        };
        let op = FitIn {
            width: args.length(0, "width")?,
            height: args.length(1, "height")?,
            enlarge,
        };
        if op.width.is_zero() && op.height.is_zero() {
            return Err(args.error("width and height cannot both be 0"));
        }
        Ok(op)
    }

    pub fn output_size(&self, input: Size) -> Size {
        let (w, h) = (f64::from(input.width), f64::from(input.height));
        let bw = self.width.resolve(input);
        let bh = self.height.resolve(input);
        let sx = if bw > 0.0 { bw / w } else { f64::INFINITY };
        let sy = if bh > 0.0 { bh / h } else { f64::INFINITY };
        let scale = sx.min(sy);
        if scale == 1.0 || (scale > 1.0 && !self.enlarge) {
            return input;
        }
        Size::new(side(w * scale), side(h * scale))
    }
}

impl fmt::Display for FitIn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.enlarge {
            false => write!(f, "fit-in({},{})", self.width, self.height),
            true => write!(f, "fit-in({},{},enlarge)", self.width, self.height),
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::pipeline::ops::Op;
    use crate::pipeline::ops::Size;
    use crate::pipeline::parse::{ParseLimits, parse_chain};

    fn fit(text: &str, w: u32, h: u32) -> Size {
        let chain = parse_chain(text, ParseLimits::default()).unwrap();
        Op::from_step(&chain.0[0]).unwrap().output_size(Size::new(w, h))
    }

    #[test]
    fn fits_inside_the_box_keeping_aspect() {
        assert_eq!(fit("fit-in(400,400)", 2560, 1600), Size::new(400, 250));
        assert_eq!(fit("fit-in(400,400)", 1600, 2560), Size::new(250, 400));
        assert_eq!(fit("fit-in(512,512)", 2560, 1600), Size::new(512, 320));
    }

    #[test]
    fn enlarges_only_when_asked() {
        assert_eq!(fit("fit-in(400,400,enlarge)", 200, 100), Size::new(400, 200));
        assert_eq!(fit("fit-in(400,400,enlarge)", 2560, 1600), Size::new(400, 250));
        assert_eq!(fit("fit-in(400,0,enlarge)", 200, 100), Size::new(400, 200));
        let chain = parse_chain("fit-in(1,1,bigger)", ParseLimits::default()).unwrap();
        assert!(Op::from_step(&chain.0[0]).is_err());
    }

    #[test]
    fn never_enlarges() {
        assert_eq!(fit("fit-in(400,400)", 32, 20), Size::new(32, 20));
    }

    #[test]
    fn zero_leaves_a_side_free_and_units_are_relative() {
        assert_eq!(fit("fit-in(100,0)", 1000, 3000), Size::new(100, 300));
        assert_eq!(fit("fit-in(0.5w,0.5h)", 1000, 600), Size::new(500, 300));
    }
}
