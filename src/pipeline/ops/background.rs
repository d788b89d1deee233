//! `bg(color)`: the background colour that later steps fill with: the new
//! area of `extend()` and `canvas()`, `alpha(remove)`, and the flattening of
//! transparent images into formats without alpha (default white).

use super::{Args, OpError, valid_color};
use std::fmt;

#[derive(Clone, Debug, PartialEq)]
pub struct Background(pub String);

impl Background {
    pub(crate) fn parse(args: &Args) -> Result<Background, OpError> {
        args.count(1, 1)?;
        let color = args.word(0).unwrap_or(Ok(""))?;
        if !valid_color(color) {
            return Err(args.error(format!("`{color}` is not a colour")));
        }
        Ok(Background(color.to_string()))
    }
}

impl fmt::Display for Background {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "bg('{}')", self.0)
    }
}
