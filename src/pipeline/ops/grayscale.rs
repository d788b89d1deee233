//! `grayscale()`: to a single grey channel (Rec. 709 luma).

use super::{Args, OpError};
use std::fmt;

#[derive(Clone, Debug, PartialEq)]
pub struct Grayscale;

impl Grayscale {
    pub(crate) fn parse(args: &Args) -> Result<Grayscale, OpError> {
        args.count(0, 0)?;
        Ok(Grayscale)
    }
}

impl fmt::Display for Grayscale {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("grayscale()")
    }
}
