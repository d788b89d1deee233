//! `dpi(x,y)` and `cm(x,y)`: set the resolution recorded in the file (pixels
//! per inch or per centimetre); the pixels are untouched.

use super::{Args, OpError};
use std::fmt;

#[derive(Clone, Debug, PartialEq)]
pub struct Resolution {
    pub x: f64,
    pub y: f64,
    /// false: per inch (`dpi`); true: per centimetre (`cm`).
    pub per_cm: bool,
}

impl Resolution {
    pub(crate) fn parse(args: &Args, per_cm: bool) -> Result<Resolution, OpError> {
        args.count(1, 2)?;
        let x = args.length(0, "x")?.0.value;
        let y = if args.step.args.len() > 1 {
            args.length(1, "y")?.0.value
        } else {
            x
        };
        if x <= 0.0 || y <= 0.0 || x > 10_000.0 || y > 10_000.0 {
            return Err(args.error("resolution must be between 0 and 10000"));
        }
        Ok(Resolution { x, y, per_cm })
    }
}

impl fmt::Display for Resolution {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}({},{})", if self.per_cm { "cm" } else { "dpi" }, self.x, self.y)
    }
}
