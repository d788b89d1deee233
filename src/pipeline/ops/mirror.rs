//! `flip()` (top to bottom) and `flop()` (left to right).

use super::{Args, OpError};
use std::fmt;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mirror {
    /// `flip()`: mirror vertically.
    Flip,
    /// `flop()`: mirror horizontally.
    Flop,
}

impl Mirror {
    pub(crate) fn parse(args: &Args, which: Mirror) -> Result<Mirror, OpError> {
        args.count(0, 0)?;
        Ok(which)
    }
}

impl fmt::Display for Mirror {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Mirror::Flip => "flip()",
            Mirror::Flop => "flop()",
        })
    }
}
