//! `blur(sigma)` (Gaussian, separable: sigma 0.1 to 50) and `sharpen(sigma)`
//! (ImageMagick's sharpen, a 2-D kernel whose cost grows much faster with
//! sigma: 0.1 to 10), sigma in pixels. Their cost on the actual image is
//! checked again before they run (`magick::estimate`).

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
        let max = if sharpen { 10.0 } else { 50.0 };
        let sigma = args.number(0, "sigma", 0.1, max)?;
        Ok(Blur { sigma, sharpen })
    }
}

impl fmt::Display for Blur {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}({})", if self.sharpen { "sharpen" } else { "blur" }, self.sigma)
    }
}
