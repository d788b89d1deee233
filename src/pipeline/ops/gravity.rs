//! `gravity(g)`: where later `extend()` and `compose()` anchor the image
//! (north-west, the original's default, until set).

use super::{Args, Gravity, OpError};
use std::fmt;

#[derive(Clone, Debug, PartialEq)]
pub struct SetGravity(pub Gravity);

impl SetGravity {
    pub(crate) fn parse(args: &Args) -> Result<SetGravity, OpError> {
        args.count(1, 1)?;
        let name = args.word(0).unwrap_or(Ok(""))?;
        match Gravity::parse(name) {
            Some(Gravity::Smart) => Err(args.error(
                "`smart` chooses a crop window: use it in cover(w,h,smart); gravity() anchors extend and compose",
            )),
            Some(g) => Ok(SetGravity(g)),
            None => Err(args.error(format!("unknown gravity `{name}`"))),
        }
    }
}

impl fmt::Display for SetGravity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "gravity({})", self.0.name())
    }
}
