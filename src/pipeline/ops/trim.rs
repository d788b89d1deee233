//! `trim()`: remove borders of the corner colour. The size depends on the
//! pixels, so later steps measure the trimmed image.

use super::{Args, OpError};
use std::fmt;

#[derive(Clone, Debug, PartialEq)]
pub struct Trim;

impl Trim {
    pub(crate) fn parse(args: &Args) -> Result<Trim, OpError> {
        args.count(0, 0)?;
        Ok(Trim)
    }
}

impl fmt::Display for Trim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("trim()")
    }
}
