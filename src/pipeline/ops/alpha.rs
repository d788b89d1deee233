//! `alpha(mode)`: ImageMagick's alpha-channel operations, as `magick -alpha
//! mode`: `on`/`set`/`activate`, `off`/`deactivate`, `opaque`, `transparent`,
//! `extract`, `copy`, `shape`, `remove` (onto the `bg()` colour), `background`,
//! `associate`, `disassociate`, `discrete`.

use super::{Args, OpError, keyword};
use std::fmt;

const MODES: &[&str] = &[
    "on",
    "off",
    "set",
    "activate",
    "deactivate",
    "opaque",
    "transparent",
    "extract",
    "copy",
    "shape",
    "remove",
    "background",
    "associate",
    "disassociate",
    "discrete",
];

#[derive(Clone, Debug, PartialEq)]
pub struct Alpha(pub String);

impl Alpha {
    pub(crate) fn parse(args: &Args) -> Result<Alpha, OpError> {
        args.count(1, 1)?;
        keyword(args, 0, "alpha mode", MODES).map(Alpha)
    }
}

impl fmt::Display for Alpha {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "alpha({})", self.0)
    }
}
