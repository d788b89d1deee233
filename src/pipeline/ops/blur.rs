//! `blur(sigma)` (Gaussian) and `sharpen(sigma)` (its unsharp counterpart),
//! sigma in pixels, 0.1 to 50.

use super::{Args, OpError};
use std::fmt;

#[derive(Clone, Debug, PartialEq)]
pub struct Blur {
    pub sigma: f64,
    /// false: blur; true: sharpen.
    pub sharpen: bool,
}

impl Blur {
    pub(crate) fn parse(args: &Args, sharpen: bool) -> Result<Blur, OpError> {
        args.count(1, 1)?;
        let sigma = args.number(0, "sigma", 0.1, 50.0)?;
        Ok(Blur { sigma, sharpen })
    }
}

impl fmt::Display for Blur {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}({})", if self.sharpen { "sharpen" } else { "blur" }, self.sigma)
    }
}
