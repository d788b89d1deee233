//! `compression(type)`: the compression the encoder uses where the output
//! format offers a choice, as `magick -compress type`: TIFF takes `none`,
//! `lzw`, `zip`, `jpeg`, `rle` (PackBits) and `lzma`; `zip`/`none` also steer
//! PNG; other formats ignore it. Accepts the original's `no` for `none`.

use super::{Args, CompressionName, OpError, option};
use std::fmt;

#[derive(Clone, Debug, PartialEq)]
pub struct Compression(pub CompressionName);

impl Compression {
    pub(crate) fn parse(args: &Args) -> Result<Compression, OpError> {
        args.count(1, 1)?;
        option(args, 0, "compression", CompressionName::parse).map(Compression)
    }
}

impl fmt::Display for Compression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "compression({})", self.0.name())
    }
}
