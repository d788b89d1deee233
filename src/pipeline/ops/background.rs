//! `bg(color)`: the background colour that later steps fill with: the new
//! area of `extend()` and `canvas()`, `alpha(remove)`, and the flattening of
//! transparent images into formats without alpha (default white).

use super::{Args, Color, OpError};
use std::fmt;

#[derive(Clone, Debug, PartialEq)]
pub struct Background(pub Color);

impl Background {
    pub(crate) fn parse(args: &Args) -> Result<Background, OpError> {
        args.count(1, 1)?;
        args.color(0, "colour").map(Background)
    }
}

impl fmt::Display for Background {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "bg({})", self.0)
    }
}
