//! `canvas(bx,by)`: the original's print bleed. A 1-pixel edge is shaved off
//! (it often holds resampling artefacts), then a border of `bx` x `by`
//! centimetres (at the image's resolution) is added on every side and filled
//! with mirrored copies of the image, so a trim that cuts slightly outside the
//! picture still shows a natural continuation.

use super::{Args, OpError};
use std::fmt;

#[derive(Clone, Debug, PartialEq)]
pub struct Canvas {
    pub x_cm: f64,
    pub y_cm: f64,
}

impl Canvas {
    pub(crate) fn parse(args: &Args) -> Result<Canvas, OpError> {
        args.count(2, 2)?;
        let x_cm = args.number(0, "bx (cm)", 0.0, 100.0)?;
        let y_cm = args.number(1, "by (cm)", 0.0, 100.0)?;
        Ok(Canvas { x_cm, y_cm })
    }

    /// The border in pixels at a resolution in dots per inch (whole pixels,
    /// rounded down as the original did).
    pub fn border(&self, dpi: super::Dpi) -> (u32, u32) {
        (
            (dpi.x * self.x_cm / 2.54).floor().max(0.0) as u32,
            (dpi.y * self.y_cm / 2.54).floor().max(0.0) as u32,
        )
    }
}

impl fmt::Display for Canvas {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "canvas({},{})", self.x_cm, self.y_cm)
    }
}
