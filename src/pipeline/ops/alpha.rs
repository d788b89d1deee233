//! `alpha(mode)`: ImageMagick's alpha-channel operations, as `magick -alpha
//! mode`: `on`/`set`/`activate`, `off`/`deactivate`, `opaque`, `transparent`,
//! `extract`, `copy`, `shape`, `remove` (onto the `bg()` colour), `background`,
//! `associate`, `disassociate`, `discrete`.

use super::{AlphaMode, Args, OpError, option};
use std::fmt;

#[derive(Clone, Debug, PartialEq)]
pub struct Alpha(pub AlphaMode);

impl Alpha {
    pub(crate) fn parse(args: &Args) -> Result<Alpha, OpError> {
        args.count(1, 1)?;
        option(args, 0, "alpha mode", AlphaMode::parse).map(Alpha)
    }
}

impl fmt::Display for Alpha {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "alpha({})", self.0.name())
    }
}
