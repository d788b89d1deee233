//! `resample(xdpi,ydpi[,filter])`: changes the resolution and scales the
//! pixels so the printed size stays the same, as `magick -resample`: a
//! 300 dpi image resampled to 150 dpi has half the width and height. The new
//! size depends on the resolution in the file (or `download(url,dpi)`), so it
//! is checked against the size limit when the job runs.

use super::{Args, Filter, OpError};
use std::fmt;

#[derive(Clone, Debug, PartialEq)]
pub struct Resample {
    pub x: f64,
    pub y: f64,
    pub filter: Filter,
}

impl Resample {
    pub(crate) fn parse(args: &Args) -> Result<Resample, OpError> {
        args.count(2, 3)?;
        let x = args.number(0, "x dpi", 1.0, 10_000.0)?;
        let y = args.number(1, "y dpi", 1.0, 10_000.0)?;
        let filter = match args.word(2) {
            None => Filter::Auto,
            Some(w) => {
                let w = w?;
                Filter::parse(w).ok_or_else(|| args.error(format!("unknown filter `{w}`")))?
            }
        };
        Ok(Resample { x, y, filter })
    }
}

impl fmt::Display for Resample {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "resample({},{},{})", self.x, self.y, self.filter.name())
    }
}
