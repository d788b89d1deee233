//! `repeat(cx,cy,ox,oy)`: the original's repeat filter. Copies of the image
//! are laid over it at every multiple of (`ox`,`oy`), `cx` across and `cy`
//! down, later copies on top; the canvas keeps its size (use `extend()`
//! first to make room). `pattern()` is `fit-in`, `extend` and `repeat`.

use super::{Args, Length, OpError, Size};
use std::fmt;

#[derive(Clone, Debug, PartialEq)]
pub struct Repeat {
    pub count_x: u32,
    pub count_y: u32,
    pub offset_x: Length,
    pub offset_y: Length,
}

/// At most this many copies per request (each is a full composite).
pub const MAX_COPIES: u32 = 256;

impl Repeat {
    pub(crate) fn parse(args: &Args) -> Result<Repeat, OpError> {
        args.count(4, 4)?;
        let count = |i: usize, what: &str| -> Result<u32, OpError> {
            let n = args.length(i, what)?.0;
            if n.value.fract() != 0.0 || n.value < 1.0 || n.value > f64::from(MAX_COPIES) {
                return Err(args.error(format!("{what} must be a whole number from 1 to {MAX_COPIES}")));
            }
            Ok(n.value as u32)
        };
        let op = Repeat {
            count_x: count(0, "cx")?,
            count_y: count(1, "cy")?,
            offset_x: args.length(2, "ox")?,
            offset_y: args.length(3, "oy")?,
        };
        if op.count_x * op.count_y > MAX_COPIES {
            return Err(args.error(format!("at most {MAX_COPIES} copies")));
        }
        Ok(op)
    }

    /// Top-left corners of the copies after the first, in drawing order.
    pub fn positions(&self, input: Size) -> Vec<(i64, i64)> {
        let (ox, oy) = (
            self.offset_x.resolve(input).round() as i64,
            self.offset_y.resolve(input).round() as i64,
        );
        let mut out = Vec::new();
        for j in 0..i64::from(self.count_y) {
            for i in 0..i64::from(self.count_x) {
                let (x, y) = (i * ox, j * oy);
                if (i, j) != (0, 0) && x < i64::from(input.width) && y < i64::from(input.height) {
                    out.push((x, y));
                }
            }
        }
        out
    }
}

impl fmt::Display for Repeat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "repeat({},{},{},{})",
            self.count_x, self.count_y, self.offset_x, self.offset_y
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::ops::Op;
    use crate::pipeline::parse::{ParseLimits, parse_chain};

    fn repeat(text: &str) -> Result<Op, OpError> {
        Op::from_step(&parse_chain(text, ParseLimits::default()).unwrap().0[0])
    }

    #[test]
    fn copies_are_placed_row_by_row_and_clipped() {
        let Ok(Op::Repeat(r)) = repeat("repeat(3,2,300,200)") else {
            panic!()
        };
        assert_eq!(
            r.positions(Size::new(800, 500)),
            [(300, 0), (600, 0), (0, 200), (300, 200), (600, 200)]
        );
        assert_eq!(r.positions(Size::new(500, 100)), [(300, 0)]);
        assert!(repeat("repeat(0,1,10,10)").is_err());
        assert!(repeat("repeat(1.5,1,10,10)").is_err());
        assert!(repeat("repeat(100,100,10,10)").is_err());
    }
}
