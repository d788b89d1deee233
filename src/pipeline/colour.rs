//! The colour policy: web clients assume sRGB, and stripping metadata
//! removes whatever said otherwise. So before anything is stripped, an image
//! whose pixels are not sRGB is converted to sRGB:
//!
//! - an embedded ICC profile that is not sRGB (Adobe RGB, ProPhoto, Display
//!   P3, a CMYK or gray profile) is converted from;
//! - CMYK without a profile is read with the bundled CMYK profile (FOGRA39);
//! - a PNG without `iCCP` or `sRGB` whose `cHRM`/`gAMA` chunks describe
//!   another space is converted from a profile built from those chunks;
//! - a JPEG whose EXIF says "uncalibrated" with the Adobe RGB interoperability
//!   index (R03), as cameras set to Adobe RGB write, is read as Adobe RGB.
//!
//! An alias or chain that asks to keep the profile (`keep_icc`, `icc(keep)`)
//! or that manages colour itself (`profile(src,dst)`) is left alone. This
//! module only decides; `magick` converts.

use super::icc::{self, Curve, D65, Primaries, Xy};

/// What a decoded image says about its colour.
#[derive(Clone, Debug, Default)]
pub struct ColourFacts<'a> {
    /// The embedded ICC profile.
    pub icc: Option<&'a [u8]>,
    /// The decoder's colour space.
    pub cmyk: bool,
    pub gray: bool,
    /// A PNG's colour chunks (from the file's bytes).
    pub png: Option<PngColour>,
    /// EXIF ColorSpace = 0xFFFF (uncalibrated) and InteroperabilityIndex = R03.
    pub exif_adobe_rgb: bool,
}

/// Where the pixels' colour space is described, when it is not sRGB.
#[derive(Clone, Debug, PartialEq)]
pub enum Conversion {
    /// Already sRGB, or nothing says otherwise: nothing to convert.
    None,
    /// Convert from the embedded profile to sRGB.
    FromEmbedded,
    /// Read the pixels with the bundled CMYK profile, then convert to sRGB.
    FromBundledCmyk,
    /// Read the pixels with this (built) profile, then convert to sRGB.
    FromProfile { description: String, icc: Vec<u8> },
}

impl Conversion {
    /// What the pixels are converted from, in words (for logs and `/info`).
    pub fn describe(&self) -> &str {
        match self {
            Conversion::None => "sRGB (nothing to convert)",
            Conversion::FromEmbedded => "the embedded ICC profile",
            Conversion::FromBundledCmyk => "CMYK without a profile, read as FOGRA39",
            Conversion::FromProfile { description, .. } => description,
        }
    }
}

/// A PNG's colour chunks before its image data.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PngColour {
    /// An `sRGB` chunk: the pixels are sRGB.
    pub srgb: bool,
    /// An `iCCP` chunk (the decoder reads it as the embedded profile).
    pub iccp: bool,
    /// `gAMA`: the encoding exponent (0.45455 for a 2.2 display gamma).
    pub gamma: Option<f64>,
    /// `cHRM`: white point, then red, green and blue.
    pub chromaticities: Option<(Xy, Primaries)>,
}

/// Reads the colour chunks of a PNG file (`None` for anything else).
pub fn png_colour(bytes: &[u8]) -> Option<PngColour> {
    let mut rest = bytes.strip_prefix(b"\x89PNG\r\n\x1a\n")?;
    let mut out = PngColour::default();
    let be32 = |b: &[u8]| u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
    while rest.len() >= 12 {
        let len = be32(rest) as usize;
        let kind = &rest[4..8];
        let Some(data) = rest.get(8..8usize.checked_add(len)?) else {
            break;
        };
        match kind {
            b"IDAT" | b"IEND" => break,
            b"sRGB" => out.srgb = true,
            b"iCCP" => out.iccp = true,
            b"gAMA" if len == 4 => {
                let g = f64::from(be32(data)) / 100_000.0;
                out.gamma = (g > 0.0).then_some(g);
            }
            b"cHRM" if len == 32 => {
                let v = |i: usize| f64::from(be32(&data[4 * i..])) / 100_000.0;
                let xy = |i: usize| Xy { x: v(i), y: v(i + 1) };
                out.chromaticities = Some((
                    xy(0),
                    Primaries {
                        red: xy(2),
                        green: xy(4),
                        blue: xy(6),
                    },
                ));
            }
            _ => {}
        }
        rest = rest.get(12 + len..)?;
    }
    Some(out)
}

/// A PNG gamma this close to 1/2.2 is what sRGB files write beside (or
/// instead of) their `sRGB` chunk: treated as sRGB.
fn srgb_like_gamma(g: f64) -> bool {
    (g - 1.0 / 2.2).abs() < 0.005
}

fn srgb_like_primaries(white: Xy, p: &Primaries) -> bool {
    let near = |a: Xy, b: Xy| (a.x - b.x).abs() < 0.003 && (a.y - b.y).abs() < 0.003;
    near(white, D65)
        && near(p.red, Primaries::SRGB.red)
        && near(p.green, Primaries::SRGB.green)
        && near(p.blue, Primaries::SRGB.blue)
}

/// What to do to make the pixels sRGB (see the module comment).
pub fn decide(facts: &ColourFacts) -> Conversion {
    if let Some(profile) = facts.icc {
        // A profile for another kind of image than the decoded one (an RGB
        // profile on a CMYK JPEG) cannot be converted from: ignored.
        let fits = |space: &str| match space {
            "CMYK" => facts.cmyk,
            "GRAY" => facts.gray,
            "RGB" => !facts.cmyk && !facts.gray,
            _ => true,
        };
        return match icc::parse(profile) {
            Some(info) if info.is_srgb() && !facts.cmyk => Conversion::None,
            Some(info) if !fits(&info.colour_space) => fallback(facts),
            _ => Conversion::FromEmbedded,
        };
    }
    fallback(facts)
}

fn fallback(facts: &ColourFacts) -> Conversion {
    if facts.cmyk {
        return Conversion::FromBundledCmyk;
    }
    if let Some(png) = &facts.png
        && !png.srgb
        && !png.iccp
    {
        let gamma = png.gamma.filter(|g| !srgb_like_gamma(*g));
        let chrm = png.chromaticities.filter(|(w, p)| !srgb_like_primaries(*w, p));
        if gamma.is_some() || chrm.is_some() {
            // gAMA is the encoding exponent; the profile's curve decodes.
            let curve = png.gamma.map_or(Curve::SRGB, |g| Curve::Gamma(1.0 / g));
            let description = match (png.gamma, chrm) {
                (Some(g), Some(_)) => format!("PNG cHRM and gAMA {g:.5}"),
                (Some(g), None) => format!("PNG gAMA {g:.5}"),
                (None, _) => "PNG cHRM".to_string(),
            };
            let icc = if facts.gray {
                Some(icc::gray_profile(&description, &curve))
            } else {
                let (white, primaries) = png.chromaticities.unwrap_or((D65, Primaries::SRGB));
                icc::rgb_profile(&description, white, primaries, &curve)
            };
            // Chromaticities that make no colour space are ignored.
            if let Some(icc) = icc {
                return Conversion::FromProfile { description, icc };
            }
        }
    }
    if facts.exif_adobe_rgb && !facts.gray {
        let description = "Adobe RGB (1998) compatible, from EXIF".to_string();
        if let Some(icc) = icc::rgb_profile(
            &description,
            D65,
            Primaries::ADOBE_RGB,
            &Curve::Gamma(icc::ADOBE_RGB_GAMMA),
        ) {
            return Conversion::FromProfile { description, icc };
        }
    }
    Conversion::None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png_with(chunks: &[(&[u8; 4], Vec<u8>)]) -> Vec<u8> {
        let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
        for (kind, data) in chunks {
            png.extend_from_slice(&(data.len() as u32).to_be_bytes());
            png.extend_from_slice(*kind);
            png.extend_from_slice(data);
            png.extend_from_slice(&[0, 0, 0, 0]);
        }
        png
    }

    #[test]
    fn png_colour_chunks_are_read_up_to_the_image_data() {
        let mut chrm = Vec::new();
        for v in [31270u32, 32900, 64000, 33000, 21000, 71000, 15000, 6000] {
            chrm.extend_from_slice(&v.to_be_bytes());
        }
        let png = png_with(&[
            (b"IHDR", vec![0; 13]),
            (b"gAMA", 100_000u32.to_be_bytes().to_vec()),
            (b"cHRM", chrm),
            (b"IDAT", vec![1, 2, 3]),
            (b"sRGB", vec![0]),
        ]);
        let c = png_colour(&png).unwrap();
        assert_eq!(c.gamma, Some(1.0));
        assert!(!c.srgb, "chunks after IDAT do not count");
        let (white, p) = c.chromaticities.unwrap();
        assert_eq!((white, p.green), (D65, Primaries::ADOBE_RGB.green));
        assert!(png_colour(b"\xff\xd8\xff").is_none());
        assert_eq!(
            png_colour(b"\x89PNG\r\n\x1a\n\0\0\0\x50IHDR"),
            Some(PngColour::default())
        );
    }

    #[test]
    fn only_what_is_not_srgb_is_converted() {
        let srgb = icc::rgb_profile("s", D65, Primaries::SRGB, &Curve::SRGB).unwrap();
        let adobe = icc::rgb_profile("a", D65, Primaries::ADOBE_RGB, &Curve::Gamma(2.2)).unwrap();
        fn facts(icc: Option<&[u8]>) -> ColourFacts<'_> {
            ColourFacts {
                icc,
                ..Default::default()
            }
        }
        assert_eq!(decide(&facts(None)), Conversion::None);
        assert_eq!(decide(&facts(Some(&srgb))), Conversion::None);
        assert_eq!(decide(&facts(Some(&adobe))), Conversion::FromEmbedded);
        assert_eq!(decide(&facts(Some(b"junk"))), Conversion::FromEmbedded);
        let cmyk = ColourFacts {
            cmyk: true,
            ..Default::default()
        };
        assert_eq!(decide(&cmyk), Conversion::FromBundledCmyk);
        let cmyk_with_rgb_profile = ColourFacts {
            icc: Some(&adobe),
            cmyk: true,
            ..Default::default()
        };
        assert_eq!(decide(&cmyk_with_rgb_profile), Conversion::FromBundledCmyk);
    }

    #[test]
    fn png_gamma_and_exif_adobe_rgb_become_profiles() {
        let png = |gamma: Option<f64>, srgb: bool| ColourFacts {
            png: Some(PngColour {
                gamma,
                srgb,
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(
            decide(&png(Some(0.45455), false)),
            Conversion::None,
            "a 2.2 gamma is sRGB"
        );
        assert_eq!(decide(&png(Some(1.0), true)), Conversion::None, "the sRGB chunk wins");
        let Conversion::FromProfile { icc, .. } = decide(&png(Some(1.0), false)) else {
            panic!("linear PNG")
        };
        let info = icc::parse(&icc).unwrap();
        assert_eq!((info.colour_space.as_str(), info.trc), ("RGB", Some(Curve::Gamma(1.0))));
        let gray = ColourFacts {
            gray: true,
            ..png(Some(0.8), false)
        };
        let Conversion::FromProfile { icc, .. } = decide(&gray) else {
            panic!("gray gamma")
        };
        assert_eq!(icc::parse(&icc).unwrap().colour_space, "GRAY");
        let exif = ColourFacts {
            exif_adobe_rgb: true,
            ..Default::default()
        };
        assert!(matches!(decide(&exif), Conversion::FromProfile { description, .. } if description.contains("Adobe")));
    }
}
