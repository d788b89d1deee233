//! `sepia(threshold)`: sepia toning, threshold in percent (0-100, default 80),
//! as `magick -sepia-tone 80%`. The original passed its argument to
//! ImageMagick in quantum units (0-65535), so a value above 100 is read that
//! way: `sepia(52428)` is `sepia(80)`.

use super::{Args, OpError};
use crate::pipeline::parse::{Arg, Unit};
use std::fmt;

#[derive(Clone, Debug, PartialEq)]
pub struct Sepia {
    pub percent: f64,
}

/// ImageMagick's Q16 quantum range, the original's unit for the threshold.
const QUANTUM_RANGE: f64 = 65_535.0;

impl Sepia {
    pub(crate) fn parse(args: &Args) -> Result<Sepia, OpError> {
        args.count(0, 1)?;
        let value = match args.step.args.first() {
            None => 80.0,
            Some(Arg::Number(n)) if n.unit == Unit::Px => n.value,
            Some(other) => return Err(args.error(format!("threshold must be a number, got `{other}`"))),
        };
        let percent = match value {
            v if (0.0..=100.0).contains(&v) => v,
            v if v <= QUANTUM_RANGE => v / QUANTUM_RANGE * 100.0,
            v => {
                return Err(args.error(format!(
                    "threshold must be a percentage (0-100) or the original's 0-65535, got {v}"
                )));
            }
        };
        Ok(Sepia { percent })
    }
}

impl fmt::Display for Sepia {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sepia({})", self.percent)
    }
}

#[cfg(test)]
mod tests {
    use crate::pipeline::ops::Op;
    use crate::pipeline::parse::{ParseLimits, parse_chain};

    fn sepia(text: &str) -> Option<f64> {
        match Op::from_step(&parse_chain(text, ParseLimits::default()).unwrap().0[0]) {
            Ok(Op::Sepia(s)) => Some(s.percent),
            _ => None,
        }
    }

    #[test]
    fn percent_or_the_originals_quantum_units() {
        assert_eq!(sepia("sepia()"), Some(80.0));
        assert_eq!(sepia("sepia(35)"), Some(35.0));
        assert!((sepia("sepia(52428)").unwrap() - 80.0).abs() < 0.01);
        assert_eq!(sepia("sepia(70000)"), None);
    }
}
