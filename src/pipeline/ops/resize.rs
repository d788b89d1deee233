//! `resize(w,h[,filter])`: scale to exactly `w` x `h`; a side of 0 follows
//! the aspect ratio. May enlarge (bounded by the output side limit).

use super::{Args, Filter, Length, OpError, Size, side};
use std::fmt;

#[derive(Clone, Debug, PartialEq)]
pub struct Resize {
    pub width: Length,
    pub height: Length,
    pub filter: Filter,
}

impl Resize {
    pub(crate) fn parse(args: &Args) -> Result<Resize, OpError> {
        args.count(2, 3)?;
        let filter = match args.word(2) {
            None => Filter::Auto,
            Some(word) => {
                let word = word?;
                Filter::parse(word).ok_or_else(|| args.error(format!("unknown filter `{word}`")))?
            }
        };
        let op = Resize {
            width: args.length(0, "width")?,
            height: args.length(1, "height")?,
            filter,
        };
        if op.width.is_zero() && op.height.is_zero() {
            return Err(args.error("width and height cannot both be 0"));
        }
        Ok(op)
    }

    pub fn output_size(&self, input: Size) -> Size {
        let (w, h) = (f64::from(input.width), f64::from(input.height));
        let tw = self.width.resolve(input);
        let th = self.height.resolve(input);
        match (tw > 0.0, th > 0.0) {
            (true, true) => Size::new(side(tw), side(th)),
            (true, false) => Size::new(side(tw), side(h * tw / w)),
            _ => Size::new(side(w * th / h), side(th)),
        }
    }
}

impl fmt::Display for Resize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "resize({},{},{})", self.width, self.height, self.filter.name())
    }
}

#[cfg(test)]
mod tests {
    use crate::pipeline::ops::{Op, Size};
    use crate::pipeline::parse::{ParseLimits, parse_chain};

    fn resize(text: &str, w: u32, h: u32) -> Result<Size, String> {
        let chain = parse_chain(text, ParseLimits::default()).unwrap();
        Op::from_step(&chain.0[0])
            .map(|op| op.output_size(Size::new(w, h)))
            .map_err(|e| e.to_string())
    }

    #[test]
    fn zero_keeps_the_aspect_ratio() {
        assert_eq!(resize("resize(400,0)", 2000, 1000), Ok(Size::new(400, 200)));
        assert_eq!(resize("resize(0,100)", 2000, 1000), Ok(Size::new(200, 100)));
        assert_eq!(resize("resize(0.5w,0.5h)", 2000, 1000), Ok(Size::new(1000, 500)));
    }

    #[test]
    fn rejects_bad_arguments() {
        assert!(resize("resize(0,0)", 10, 10).unwrap_err().contains("both be 0"));
        assert!(resize("resize(-1,10)", 10, 10).is_err());
        assert!(resize("resize(99999,10)", 10, 10).is_err());
        assert!(
            resize("resize(10,10,wobbly)", 10, 10)
                .unwrap_err()
                .contains("unknown filter")
        );
        assert!(
            resize("resize(10)", 10, 10)
                .unwrap_err()
                .contains("takes 2 to 3 arguments")
        );
    }
}
