//! ICC profiles, read and written in pure Rust: enough of the format to tell
//! what an embedded profile describes (its colour space, description,
//! primaries and tone curve, so an sRGB profile can be recognised and left
//! alone), and to build the matrix/TRC profiles that files describe without
//! embedding one: PNG `cHRM`/`gAMA` chunks, EXIF's Adobe RGB marker, a gray
//! gamma. LittleCMS (through ImageMagick) does the conversions.

use std::fmt;

/// A tristimulus value (PCS XYZ, D50-relative in a profile).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Xyz {
    pub x: f64,
    pub y: f64,
    pub z: f64,
}

/// A chromaticity (CIE xy).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Xy {
    pub x: f64,
    pub y: f64,
}

/// A tone reproduction curve: encoded value (0..1) to linear light.
#[derive(Clone, Debug, PartialEq)]
pub enum Curve {
    /// `v^gamma`.
    Gamma(f64),
    /// ICC parametric curve type 3 (sRGB's shape): `(a v + b)^g` above `d`, `c v` below.
    Parametric { g: f64, a: f64, b: f64, c: f64, d: f64 },
    /// Sampled table, evenly spaced over 0..1.
    Table(Vec<f64>),
}

impl Curve {
    /// The sRGB transfer function (IEC 61966-2-1).
    pub const SRGB: Curve = Curve::Parametric {
        g: 2.4,
        a: 1.0 / 1.055,
        b: 0.055 / 1.055,
        c: 1.0 / 12.92,
        d: 0.04045,
    };

    pub fn eval(&self, v: f64) -> f64 {
        let v = v.clamp(0.0, 1.0);
        match self {
            Curve::Gamma(g) => v.powf(*g),
            Curve::Parametric { g, a, b, c, d } => {
                if v >= *d {
                    (a * v + b).max(0.0).powf(*g)
                } else {
                    c * v
                }
            }
            Curve::Table(t) if t.is_empty() => v,
            Curve::Table(t) if t.len() == 1 => v,
            Curve::Table(t) => {
                let pos = v * (t.len() - 1) as f64;
                let i = (pos.floor() as usize).min(t.len() - 2);
                let f = pos - i as f64;
                t[i] * (1.0 - f) + t[i + 1] * f
            }
        }
    }

    /// Whether two curves agree within `tolerance` (in linear light) over 0..1.
    pub fn close_to(&self, other: &Curve, tolerance: f64) -> bool {
        (0..=64).all(|i| {
            let v = f64::from(i) / 64.0;
            (self.eval(v) - other.eval(v)).abs() <= tolerance
        })
    }
}

/// What an embedded profile says about itself.
#[derive(Clone, Debug, PartialEq)]
pub struct ProfileInfo {
    /// The data colour space signature: `RGB`, `CMYK`, `GRAY`, `Lab`, ...
    pub colour_space: String,
    /// The device class: `mntr`, `scnr`, `prtr`, `spac`, ...
    pub class: String,
    /// Major version (2 or 4).
    pub version: u8,
    /// The `desc` tag's text, when readable.
    pub description: Option<String>,
    /// Red, green and blue colorants of a matrix/TRC RGB profile.
    pub colorants: Option<[Xyz; 3]>,
    /// The red TRC (or the gray TRC of a gray profile).
    pub trc: Option<Curve>,
}

/// The colorants of sRGB, Bradford-adapted to D50 (as sRGB profiles carry them).
const SRGB_COLORANTS: [Xyz; 3] = [
    Xyz {
        x: 0.4361,
        y: 0.2225,
        z: 0.0139,
    },
    Xyz {
        x: 0.3851,
        y: 0.7169,
        z: 0.0971,
    },
    Xyz {
        x: 0.1431,
        y: 0.0606,
        z: 0.7141,
    },
];

impl ProfileInfo {
    /// Whether the profile describes sRGB: an RGB matrix/TRC profile with
    /// sRGB's primaries and tone curve. Pixels in such a profile are already
    /// what the web assumes, so they need no conversion. A profile that
    /// cannot be read that far (LUT-based, damaged) is not sRGB: converting
    /// it is always correct, only slower.
    pub fn is_srgb(&self) -> bool {
        let primaries = self.colorants.is_some_and(|c| {
            c.iter()
                .zip(SRGB_COLORANTS.iter())
                .all(|(a, b)| (a.x - b.x).abs() < 0.003 && (a.y - b.y).abs() < 0.003 && (a.z - b.z).abs() < 0.003)
        });
        let curve = self.trc.as_ref().is_some_and(|t| t.close_to(&Curve::SRGB, 0.004));
        self.colour_space == "RGB" && primaries && curve
    }
}

impl fmt::Display for ProfileInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.description {
            Some(d) => write!(f, "{d} ({} v{})", self.colour_space, self.version),
            None => write!(f, "{} profile v{}", self.colour_space, self.version),
        }
    }
}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn be16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn s15f16(b: &[u8], at: usize) -> Option<f64> {
    Some(f64::from(be32(b, at)? as i32) / 65536.0)
}

fn sig(b: &[u8], at: usize) -> Option<String> {
    let raw = b.get(at..at + 4)?;
    Some(String::from_utf8_lossy(raw).trim_end().to_string())
}

/// Reads the facts `ProfileInfo` holds from an ICC profile's bytes; `None`
/// when the header is not an ICC profile's.
pub fn parse(icc: &[u8]) -> Option<ProfileInfo> {
    if icc.len() < 132 || icc.get(36..40)? != b"acsp" {
        return None;
    }
    let count = be32(icc, 128)? as usize;
    let mut tags = Vec::new();
    for i in 0..count.min(256) {
        let at = 132 + 12 * i;
        let (name, offset, size) = (sig(icc, at)?, be32(icc, at + 4)? as usize, be32(icc, at + 8)? as usize);
        let end = offset.checked_add(size)?;
        if end <= icc.len() {
            tags.push((name, &icc[offset..end]));
        }
    }
    let tag = |name: &str| tags.iter().find(|(n, _)| n == name).map(|(_, d)| *d);
    let xyz = |name: &str| {
        let d = tag(name)?;
        (d.get(..4)? == b"XYZ ").then_some(())?;
        Some(Xyz {
            x: s15f16(d, 8)?,
            y: s15f16(d, 12)?,
            z: s15f16(d, 16)?,
        })
    };
    let colorants = match (xyz("rXYZ"), xyz("gXYZ"), xyz("bXYZ")) {
        (Some(r), Some(g), Some(b)) => Some([r, g, b]),
        _ => None,
    };
    Some(ProfileInfo {
        colour_space: sig(icc, 16)?,
        class: sig(icc, 12)?,
        version: icc[8],
        description: tag("desc").and_then(text),
        colorants,
        trc: tag("rTRC").or_else(|| tag("kTRC")).and_then(curve),
    })
}

/// The text of a `desc` (v2 textDescriptionType), `mluc` (v4, first
/// record) or `text` tag, bounded (`metadata::file_text`): a profile's
/// description is shown to clients, and a 7 MB one must not become 22 MB
/// of JSON.
fn text(d: &[u8]) -> Option<String> {
    use super::metadata::{file_text, file_text_utf16};
    match d.get(..4)? {
        b"desc" => {
            let n = be32(d, 8)? as usize;
            file_text(d.get(12..12 + n.min(d.len().saturating_sub(12)))?)
        }
        b"mluc" => {
            let records = be32(d, 8)?;
            if records == 0 {
                return None;
            }
            let (len, offset) = (be32(d, 20)? as usize, be32(d, 24)? as usize);
            file_text_utf16(d.get(offset..offset.checked_add(len)?)?)
        }
        b"text" => file_text(d.get(8..)?),
        _ => None,
    }
}

fn curve(d: &[u8]) -> Option<Curve> {
    match d.get(..4)? {
        b"curv" => {
            let n = be32(d, 8)? as usize;
            match n {
                0 => Some(Curve::Gamma(1.0)),
                1 => Some(Curve::Gamma(f64::from(be16(d, 12)?) / 256.0)),
                _ => {
                    let table = (0..n.min(65_536))
                        .map(|i| be16(d, 12 + 2 * i).map(|v| f64::from(v) / 65535.0))
                        .collect::<Option<Vec<f64>>>()?;
                    Some(Curve::Table(table))
                }
            }
        }
        b"para" => {
            let kind = be16(d, 8)?;
            let p = |i: usize| s15f16(d, 12 + 4 * i);
            match kind {
                0 => Some(Curve::Gamma(p(0)?)),
                3 => Some(Curve::Parametric {
                    g: p(0)?,
                    a: p(1)?,
                    b: p(2)?,
                    c: p(3)?,
                    d: p(4)?,
                }),
                _ => None,
            }
        }
        _ => None,
    }
}

/// D50, the profile connection space's white (ICC's rounded values).
const D50: Xyz = Xyz {
    x: 0.9642,
    y: 1.0,
    z: 0.8249,
};

/// D65 as a chromaticity: the white of sRGB and Adobe RGB.
pub const D65: Xy = Xy { x: 0.3127, y: 0.3290 };

type Matrix = [[f64; 3]; 3];

fn mul(a: &Matrix, b: &Matrix) -> Matrix {
    let mut out = [[0.0; 3]; 3];
    for (i, row) in out.iter_mut().enumerate() {
        for (j, cell) in row.iter_mut().enumerate() {
            *cell = (0..3).map(|k| a[i][k] * b[k][j]).sum();
        }
    }
    out
}

fn apply(m: &Matrix, v: [f64; 3]) -> [f64; 3] {
    [0, 1, 2].map(|i| m[i][0] * v[0] + m[i][1] * v[1] + m[i][2] * v[2])
}

fn invert(m: &Matrix) -> Option<Matrix> {
    let det = m[0][0] * (m[1][1] * m[2][2] - m[1][2] * m[2][1]) - m[0][1] * (m[1][0] * m[2][2] - m[1][2] * m[2][0])
        + m[0][2] * (m[1][0] * m[2][1] - m[1][1] * m[2][0]);
    if det.abs() < 1e-12 || !det.is_finite() {
        return None;
    }
    let c = |r0: usize, c0: usize, r1: usize, c1: usize| m[r0][c0] * m[r1][c1] - m[r0][c1] * m[r1][c0];
    Some([
        [c(1, 1, 2, 2) / det, -c(0, 1, 2, 2) / det, c(0, 1, 1, 2) / det],
        [-c(1, 0, 2, 2) / det, c(0, 0, 2, 2) / det, -c(0, 0, 1, 2) / det],
        [c(1, 0, 2, 1) / det, -c(0, 0, 2, 1) / det, c(0, 0, 1, 1) / det],
    ])
}

fn xy_to_xyz(c: Xy) -> [f64; 3] {
    [c.x / c.y, 1.0, (1.0 - c.x - c.y) / c.y]
}

/// The Bradford adaptation from `white` to D50 (a profile's `chad` tag).
fn bradford_to_d50(white: [f64; 3]) -> Option<Matrix> {
    const B: Matrix = [
        [0.8951, 0.2664, -0.1614],
        [-0.7502, 1.7135, 0.0367],
        [0.0389, -0.0685, 1.0296],
    ];
    let (src, dst) = (apply(&B, white), apply(&B, [D50.x, D50.y, D50.z]));
    let scale = [
        [dst[0] / src[0], 0.0, 0.0],
        [0.0, dst[1] / src[1], 0.0],
        [0.0, 0.0, dst[2] / src[2]],
    ];
    Some(mul(&invert(&B)?, &mul(&scale, &B)))
}

/// The three primaries of an RGB colour space.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Primaries {
    pub red: Xy,
    pub green: Xy,
    pub blue: Xy,
}

impl Primaries {
    /// sRGB / Rec. 709.
    pub const SRGB: Primaries = Primaries {
        red: Xy { x: 0.64, y: 0.33 },
        green: Xy { x: 0.30, y: 0.60 },
        blue: Xy { x: 0.15, y: 0.06 },
    };
    /// Adobe RGB (1998).
    pub const ADOBE_RGB: Primaries = Primaries {
        red: Xy { x: 0.64, y: 0.33 },
        green: Xy { x: 0.21, y: 0.71 },
        blue: Xy { x: 0.15, y: 0.06 },
    };

    fn valid(&self, white: Xy) -> bool {
        [self.red, self.green, self.blue, white]
            .iter()
            .all(|c| c.x.is_finite() && c.y.is_finite() && c.x > 0.0 && c.y > 0.0 && c.x + c.y < 1.0 + 1e-9)
    }
}

/// Adobe RGB (1998)'s tone curve: a pure gamma of 563/256.
pub const ADOBE_RGB_GAMMA: f64 = 563.0 / 256.0;

/// Writes ICC profiles (v4.3, display class, PCS XYZ).
struct Writer {
    tags: Vec<([u8; 4], Vec<u8>)>,
}

fn s15f16_bytes(v: f64) -> [u8; 4] {
    ((v * 65536.0).round() as i32).to_be_bytes()
}

fn xyz_tag(v: [f64; 3]) -> Vec<u8> {
    let mut d = b"XYZ \0\0\0\0".to_vec();
    for c in v {
        d.extend_from_slice(&s15f16_bytes(c));
    }
    d
}

fn mluc_tag(text: &str) -> Vec<u8> {
    let utf16: Vec<u8> = text.encode_utf16().flat_map(u16::to_be_bytes).collect();
    let mut d = b"mluc\0\0\0\0".to_vec();
    d.extend_from_slice(&1u32.to_be_bytes());
    d.extend_from_slice(&12u32.to_be_bytes());
    d.extend_from_slice(b"enUS");
    d.extend_from_slice(&(utf16.len() as u32).to_be_bytes());
    d.extend_from_slice(&28u32.to_be_bytes());
    d.extend_from_slice(&utf16);
    d
}

fn curve_tag(curve: &Curve) -> Vec<u8> {
    match curve {
        Curve::Gamma(g) => {
            let mut d = b"para\0\0\0\0\0\0\0\0".to_vec();
            d.extend_from_slice(&s15f16_bytes(*g));
            d
        }
        Curve::Parametric { g, a, b, c, d: knee } => {
            let mut d = b"para\0\0\0\0\0\x03\0\0".to_vec();
            for v in [*g, *a, *b, *c, *knee] {
                d.extend_from_slice(&s15f16_bytes(v));
            }
            d
        }
        Curve::Table(t) => {
            let mut d = b"curv\0\0\0\0".to_vec();
            d.extend_from_slice(&(t.len() as u32).to_be_bytes());
            for v in t {
                d.extend_from_slice(&((v.clamp(0.0, 1.0) * 65535.0).round() as u16).to_be_bytes());
            }
            d
        }
    }
}

impl Writer {
    fn tag(&mut self, name: &[u8; 4], data: Vec<u8>) {
        self.tags.push((*name, data));
    }

    fn finish(self, colour_space: &[u8; 4]) -> Vec<u8> {
        let table_len = 4 + 12 * self.tags.len();
        let mut offset = 128 + table_len;
        let mut table = (self.tags.len() as u32).to_be_bytes().to_vec();
        let mut data = Vec::new();
        for (name, tag) in &self.tags {
            // Tags start on 4-byte boundaries.
            while (offset + data.len()) % 4 != 0 {
                data.push(0);
            }
            table.extend_from_slice(name);
            table.extend_from_slice(&((offset + data.len()) as u32).to_be_bytes());
            table.extend_from_slice(&(tag.len() as u32).to_be_bytes());
            data.extend_from_slice(tag);
        }
        while data.len() % 4 != 0 {
            data.push(0);
        }
        offset += data.len();
        let mut header = vec![0u8; 128];
        header[0..4].copy_from_slice(&(offset as u32).to_be_bytes());
        header[8..12].copy_from_slice(&[4, 0x30, 0, 0]);
        header[12..16].copy_from_slice(b"mntr");
        header[16..20].copy_from_slice(colour_space);
        header[20..24].copy_from_slice(b"XYZ ");
        header[36..40].copy_from_slice(b"acsp");
        header[68..72].copy_from_slice(&s15f16_bytes(D50.x));
        header[72..76].copy_from_slice(&s15f16_bytes(D50.y));
        header[76..80].copy_from_slice(&s15f16_bytes(D50.z));
        let mut out = header;
        out.extend_from_slice(&table);
        out.extend_from_slice(&data);
        out
    }
}

/// An RGB matrix/TRC profile for a colour space given by its white point,
/// primaries and tone curve (what PNG's `cHRM` and `gAMA` describe).
/// `None` when the chromaticities do not make a colour space.
pub fn rgb_profile(description: &str, white: Xy, primaries: Primaries, trc: &Curve) -> Option<Vec<u8>> {
    if !primaries.valid(white) {
        return None;
    }
    let w = xy_to_xyz(white);
    let [r, g, b] = [primaries.red, primaries.green, primaries.blue].map(xy_to_xyz);
    let m: Matrix = [[r[0], g[0], b[0]], [r[1], g[1], b[1]], [r[2], g[2], b[2]]];
    let s = apply(&invert(&m)?, w);
    let chad = bradford_to_d50(w)?;
    let colorant = |i: usize| apply(&chad, [m[0][i] * s[i], m[1][i] * s[i], m[2][i] * s[i]]);
    let mut out = Writer { tags: Vec::new() };
    out.tag(b"desc", mluc_tag(description));
    out.tag(b"cprt", mluc_tag("No copyright, use freely"));
    out.tag(b"wtpt", xyz_tag([D50.x, D50.y, D50.z]));
    let mut chad_tag = b"sf32\0\0\0\0".to_vec();
    for row in chad {
        for v in row {
            chad_tag.extend_from_slice(&s15f16_bytes(v));
        }
    }
    out.tag(b"chad", chad_tag);
    out.tag(b"rXYZ", xyz_tag(colorant(0)));
    out.tag(b"gXYZ", xyz_tag(colorant(1)));
    out.tag(b"bXYZ", xyz_tag(colorant(2)));
    for name in [b"rTRC", b"gTRC", b"bTRC"] {
        out.tag(name, curve_tag(trc));
    }
    Some(out.finish(b"RGB "))
}

/// A gray profile with a D50 white and the given tone curve.
pub fn gray_profile(description: &str, trc: &Curve) -> Vec<u8> {
    let mut out = Writer { tags: Vec::new() };
    out.tag(b"desc", mluc_tag(description));
    out.tag(b"cprt", mluc_tag("No copyright, use freely"));
    out.tag(b"wtpt", xyz_tag([D50.x, D50.y, D50.z]));
    out.tag(b"kTRC", curve_tag(trc));
    out.finish(b"GRAY")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_built_srgb_profile_reads_back_as_srgb_and_adobe_rgb_does_not() {
        let srgb = rgb_profile("built sRGB", D65, Primaries::SRGB, &Curve::SRGB).unwrap();
        let info = parse(&srgb).unwrap();
        assert_eq!(info.colour_space, "RGB");
        assert_eq!(info.version, 4);
        assert_eq!(info.description.as_deref(), Some("built sRGB"));
        assert!(info.is_srgb(), "{info:?}");
        let adobe = rgb_profile(
            "Adobe RGB (1998) compatible",
            D65,
            Primaries::ADOBE_RGB,
            &Curve::Gamma(ADOBE_RGB_GAMMA),
        )
        .unwrap();
        let info = parse(&adobe).unwrap();
        assert!(!info.is_srgb());
        // Adobe RGB's green colorant, D50-adapted, as published profiles carry it.
        let g = info.colorants.unwrap()[1];
        assert!((g.x - 0.2052).abs() < 0.002 && (g.y - 0.6257).abs() < 0.002, "{g:?}");
        // sRGB primaries with a plain 2.2 gamma are not sRGB's curve.
        let gamma = rgb_profile("g22", D65, Primaries::SRGB, &Curve::Gamma(2.2)).unwrap();
        assert!(!parse(&gamma).unwrap().is_srgb());
    }

    #[test]
    fn the_bundled_srgb_profile_is_recognised() {
        let bundled = include_bytes!("../magick/profiles/sRGB.icc");
        let info = parse(bundled).unwrap();
        assert!(info.is_srgb(), "{info:?}");
        let fogra = parse(include_bytes!("../magick/profiles/FOGRA39L.icc")).unwrap();
        assert_eq!(fogra.colour_space, "CMYK");
        assert!(!fogra.is_srgb());
    }

    #[test]
    fn garbage_and_impossible_primaries_are_refused() {
        assert!(parse(b"not a profile").is_none());
        assert!(parse(&[0u8; 200]).is_none());
        let flat = Primaries {
            red: Xy { x: 0.3, y: 0.3 },
            green: Xy { x: 0.3, y: 0.3 },
            blue: Xy { x: 0.3, y: 0.3 },
        };
        assert!(rgb_profile("x", D65, flat, &Curve::Gamma(2.2)).is_none());
        assert!(rgb_profile("x", Xy { x: 0.0, y: 0.0 }, Primaries::SRGB, &Curve::Gamma(2.2)).is_none());
        let gray = gray_profile("gray 1.75", &Curve::Gamma(1.75));
        let info = parse(&gray).unwrap();
        assert_eq!(
            (info.colour_space.as_str(), info.trc),
            ("GRAY", Some(Curve::Gamma(1.75)))
        );
    }
}
