//! `colorspace(cs)`: converts the pixels to another colour space, as
//! `magick -colorspace cs`. Output coders convert again where a format cannot
//! hold the space (PNG and WebP are written as sRGB or grey; JPEG and TIFF keep
//! CMYK).

use super::{Args, ColorspaceName, OpError, option};
use std::fmt;

#[derive(Clone, Debug, PartialEq)]
pub struct Colorspace(pub ColorspaceName);

impl Colorspace {
    pub(crate) fn parse(args: &Args) -> Result<Colorspace, OpError> {
        args.count(1, 1)?;
        option(args, 0, "colour space", ColorspaceName::parse).map(Colorspace)
    }
}

impl fmt::Display for Colorspace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "colorspace({})", self.0.name())
    }
}
