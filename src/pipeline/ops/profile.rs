//! `profile(src,dst)`: ICC colour conversion with the bundled profiles, as
//! `magick -profile src.icc -profile dst.icc`. `srgb` (sRGB IEC61966-2.1) and
//! `fogra39` (FOGRA39L coated CMYK) are bundled; the image must be in the
//! source profile's colour space (a CMYK image for `fogra39`). An embedded
//! profile is honoured: the first step converts from it to `src`.

use super::{Args, OpError};
use std::fmt;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IccProfile {
    Srgb,
    Fogra39,
}

impl IccProfile {
    pub fn parse(name: &str) -> Option<IccProfile> {
        match name.to_ascii_lowercase().as_str() {
            "srgb" => Some(IccProfile::Srgb),
            "fogra39" | "fogra39l" | "cmyk" => Some(IccProfile::Fogra39),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            IccProfile::Srgb => "srgb",
            IccProfile::Fogra39 => "fogra39",
        }
    }

    /// Whether the profile describes CMYK (otherwise RGB) pixels.
    pub fn is_cmyk(self) -> bool {
        self == IccProfile::Fogra39
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Profile {
    pub source: IccProfile,
    pub target: IccProfile,
}

impl Profile {
    pub(crate) fn parse(args: &Args) -> Result<Profile, OpError> {
        args.count(2, 2)?;
        let get = |i: usize| -> Result<IccProfile, OpError> {
            let name = args.word(i).unwrap_or(Ok(""))?;
            IccProfile::parse(name)
                .ok_or_else(|| args.error(format!("unknown profile `{name}` (bundled: srgb, fogra39)")))
        };
        Ok(Profile {
            source: get(0)?,
            target: get(1)?,
        })
    }
}

impl fmt::Display for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "profile({},{})", self.source.name(), self.target.name())
    }
}
