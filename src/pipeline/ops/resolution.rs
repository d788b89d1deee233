//! `dpi(x,y)` and `cm(x,y)`: set the resolution recorded in the file; the
//! pixels are untouched. `dpi` gives dots per inch. `cm`, as in the original,
//! gives the printed size: `cm(20,12.5)` makes the image 20 cm wide and
//! 12.5 cm high (an 800 px wide image gets 101.6 dpi). Both record pixels per
//! inch.

use super::{Args, Dpi, OpError, Size};
use std::fmt;

#[derive(Clone, Debug, PartialEq)]
pub struct Resolution {
    pub x: f64,
    pub y: f64,
    /// false: `x`/`y` are dots per inch (`dpi`); true: the printed size in centimetres (`cm`).
    pub print_size_cm: bool,
}

impl Resolution {
    pub(crate) fn parse(args: &Args, print_size_cm: bool) -> Result<Resolution, OpError> {
        args.count(1, 2)?;
        let x = args.number(0, "x", f64::MIN_POSITIVE, 10_000.0)?;
        let y = if args.step.args.len() > 1 {
            args.number(1, "y", f64::MIN_POSITIVE, 10_000.0)?
        } else {
            x
        };
        Ok(Resolution { x, y, print_size_cm })
    }

    /// The resolution to record for an image of `size` pixels.
    pub fn dpi(&self, size: Size) -> Dpi {
        if self.print_size_cm {
            Dpi {
                x: f64::from(size.width) / (self.x / 2.54),
                y: f64::from(size.height) / (self.y / 2.54),
            }
        } else {
            Dpi { x: self.x, y: self.y }
        }
    }
}

impl fmt::Display for Resolution {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}({},{})",
            if self.print_size_cm { "cm" } else { "dpi" },
            self.x,
            self.y
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cm_is_the_printed_size() {
        let cm = Resolution {
            x: 20.0,
            y: 12.5,
            print_size_cm: true,
        };
        let dpi = cm.dpi(Size::new(800, 500));
        assert!((dpi.x - 101.6).abs() < 1e-9 && (dpi.y - 101.6).abs() < 1e-9);
    }
}
