//! `compression(type)`: the compression the encoder uses where the output
//! format offers a choice, as `magick -compress type`: TIFF takes `none`,
//! `lzw`, `zip`, `jpeg`, `rle` (PackBits) and `lzma`; `zip`/`none` also steer
//! PNG; other formats ignore it. Accepts the original's `no` for `none`.

use super::{Args, OpError, keyword};
use std::fmt;

const TYPES: &[&str] = &["none", "lzw", "zip", "jpeg", "rle", "lzma"];

#[derive(Clone, Debug, PartialEq)]
pub struct Compression(pub String);

impl Compression {
    pub(crate) fn parse(args: &Args) -> Result<Compression, OpError> {
        args.count(1, 1)?;
        if let Some(Ok(w)) = args.word(0)
            && w.eq_ignore_ascii_case("no")
        {
            return Ok(Compression("none".into()));
        }
        keyword(args, 0, "compression", TYPES).map(Compression)
    }
}

impl fmt::Display for Compression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "compression({})", self.0)
    }
}
