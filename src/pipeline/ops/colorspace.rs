//! `colorspace(cs)`: converts the pixels to another colour space, as
//! `magick -colorspace cs`. Output coders convert again where a format cannot
//! hold the space (PNG and WebP are written as sRGB or grey; JPEG and TIFF keep
//! CMYK).

use super::{Args, OpError, keyword};
use std::fmt;

const SPACES: &[&str] = &[
    "srgb",
    "rgb",
    "scrgb",
    "gray",
    "lineargray",
    "cmyk",
    "cmy",
    "lab",
    "lch",
    "lchab",
    "lchuv",
    "luv",
    "hcl",
    "hclp",
    "hsb",
    "hsi",
    "hsl",
    "hsv",
    "hwb",
    "xyz",
    "xyy",
    "lms",
    "log",
    "ohta",
    "ycbcr",
    "ycc",
    "ydbdr",
    "yiq",
    "ypbpr",
    "yuv",
    "rec601ycbcr",
    "rec709ycbcr",
    "oklab",
    "oklch",
    "displayp3",
    "adobe98",
    "prophoto",
];

#[derive(Clone, Debug, PartialEq)]
pub struct Colorspace(pub String);

impl Colorspace {
    pub(crate) fn parse(args: &Args) -> Result<Colorspace, OpError> {
        args.count(1, 1)?;
        keyword(args, 0, "colour space", SPACES).map(Colorspace)
    }
}

impl fmt::Display for Colorspace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "colorspace({})", self.0)
    }
}
