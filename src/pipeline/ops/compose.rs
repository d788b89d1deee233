//! `compose(dst,src,op,x,y)`: lays the image `src` (any image expression,
//! usually `download(...)` followed by its own filters) over the current
//! image `dst` at (`x`,`y`) with a composition operator, as
//! `magick dst src -geometry +x+y -compose op -composite`. After `gravity(g)`
//! the offset is measured from that side, as `magick -gravity g`.
//! The second image is fetched and checked like the first; its content hash
//! is part of the cache key.

use super::{Args, ComposeOperator, Length, Op, OpError, option};
use std::fmt;

#[derive(Clone, Debug, PartialEq)]
pub struct Compose {
    /// Index of the second image among the chain's sources (0 is the first `download`).
    pub input: usize,
    /// Operations applied to the second image before it is laid over.
    pub ops: Vec<Op>,
    pub operator: ComposeOperator,
    pub x: Length,
    pub y: Length,
}

impl Compose {
    /// Parses `op,x,y`: the arguments after the two images.
    pub(crate) fn parse(args: &Args, input: usize, ops: Vec<Op>) -> Result<Compose, OpError> {
        args.count(3, 3)?;
        Ok(Compose {
            input,
            ops,
            operator: option(args, 0, "composition operator", ComposeOperator::parse)?,
            x: args.offset(1, "x")?,
            y: args.offset(2, "y")?,
        })
    }
}

impl fmt::Display for Compose {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "compose(#{}", self.input)?;
        for op in &self.ops {
            write!(f, ":{op}")?;
        }
        write!(f, ",{},{},{})", self.operator.name(), self.x, self.y)
    }
}
