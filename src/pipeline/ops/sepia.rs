//! `sepia(threshold)`: sepia toning, threshold in percent (0-100, default 80).

use super::{Args, OpError};
use std::fmt;

#[derive(Clone, Debug, PartialEq)]
pub struct Sepia {
    pub percent: f64,
}

impl Sepia {
    pub(crate) fn parse(args: &Args) -> Result<Sepia, OpError> {
        args.count(0, 1)?;
        let percent = if args.step.args.is_empty() {
            80.0
        } else {
            args.length(0, "threshold")?.0.value
        };
        if !(0.0..=100.0).contains(&percent) {
            return Err(args.error(format!("threshold must be between 0 and 100, got {percent}")));
        }
        Ok(Sepia { percent })
    }
}

impl fmt::Display for Sepia {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sepia({})", self.percent)
    }
}
