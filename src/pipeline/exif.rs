//! A bounded reader for the few EXIF fields the service uses: the colour
//! space marker (cameras set to Adobe RGB write "uncalibrated" plus the
//! interoperability index R03), and a safe descriptive subset (camera, lens,
//! capture time, orientation, and GPS only when asked for). Every offset is
//! checked; a damaged block yields what could be read.

use serde::Serialize;

/// The fields read from an EXIF block.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Exif {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub make: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lens: Option<String>,
    /// DateTimeOriginal as written (`YYYY:MM:DD HH:MM:SS`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub taken_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub orientation: Option<u16>,
    /// Artist (IFD0), as written.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub artist: Option<String>,
    /// Copyright (IFD0), as written.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub copyright: Option<String>,
    /// ColorSpace: 1 sRGB, 0xFFFF uncalibrated.
    #[serde(skip)]
    pub colour_space: Option<u16>,
    /// InteroperabilityIndex: `R98` (sRGB), `R03` (Adobe RGB).
    #[serde(skip)]
    pub interop_index: Option<String>,
    /// Latitude and longitude in degrees (north and east positive).
    #[serde(skip)]
    pub gps: Option<(f64, f64)>,
    /// XResolution and YResolution of IFD0, when both are there and
    /// readable as numbers (rationals with a zero denominator are not).
    #[serde(skip)]
    pub resolution: Option<(f64, f64)>,
    /// ResolutionUnit: 1 none, 2 inch, 3 centimetre.
    #[serde(skip)]
    pub resolution_unit: Option<u16>,
    /// Both resolution tags are present, readable or not.
    #[serde(skip)]
    pub resolution_tags: bool,
}

impl Exif {
    /// Whether a camera marked the pixels as Adobe RGB without embedding a profile.
    pub fn says_adobe_rgb(&self) -> bool {
        self.colour_space == Some(0xFFFF) && self.interop_index.as_deref() == Some("R03")
    }
}

struct Tiff<'a> {
    data: &'a [u8],
    little: bool,
}

impl Tiff<'_> {
    fn u16(&self, at: usize) -> Option<u16> {
        let b: [u8; 2] = self.data.get(at..at + 2)?.try_into().ok()?;
        Some(if self.little {
            u16::from_le_bytes(b)
        } else {
            u16::from_be_bytes(b)
        })
    }

    fn u32(&self, at: usize) -> Option<u32> {
        let b: [u8; 4] = self.data.get(at..at + 4)?.try_into().ok()?;
        Some(if self.little {
            u32::from_le_bytes(b)
        } else {
            u32::from_be_bytes(b)
        })
    }

    /// The entries of the IFD at `offset`: (tag, type, count, value offset
    /// or inline value position).
    fn entries(&self, offset: usize) -> Vec<(u16, u16, u32, usize)> {
        let Some(n) = self.u16(offset) else {
            return Vec::new();
        };
        (0..usize::from(n).min(512))
            .filter_map(|i| {
                let at = offset + 2 + 12 * i;
                let (tag, kind, count) = (self.u16(at)?, self.u16(at + 2)?, self.u32(at + 4)?);
                let size = match kind {
                    1 | 2 | 6 | 7 => 1,
                    3 | 8 => 2,
                    4 | 9 | 11 => 4,
                    5 | 10 | 12 => 8,
                    _ => return None,
                } * count as usize;
                let value = if size <= 4 { at + 8 } else { self.u32(at + 8)? as usize };
                Some((tag, kind, count, value))
            })
            .collect()
    }

    /// An ASCII field: at most `metadata::FILE_TEXT_MAX` bytes of it are
    /// read, whatever its count says (an IFD of 512 entries pointing at one
    /// 3 MB string must not decode 1.5 GB).
    fn ascii(&self, at: usize, count: u32) -> Option<String> {
        let n = (count as usize).min(super::metadata::FILE_TEXT_MAX);
        super::metadata::file_text(self.data.get(at..at.checked_add(n)?)?)
    }

    fn rational(&self, at: usize) -> Option<f64> {
        let (n, d) = (self.u32(at)?, self.u32(at + 4)?);
        (d != 0).then(|| f64::from(n) / f64::from(d))
    }
}

/// Reads an EXIF block: the TIFF structure, with or without the `Exif\0\0`
/// prefix of a JPEG's APP1 segment.
pub fn parse(block: &[u8]) -> Option<Exif> {
    let data = block.strip_prefix(b"Exif\0\0").unwrap_or(block);
    let little = match data.get(..4)? {
        b"II*\0" => true,
        b"MM\0*" => false,
        _ => return None,
    };
    let t = Tiff { data, little };
    let mut exif = Exif::default();
    let (mut sub, mut gps) = (None, None);
    let (mut x_res, mut y_res) = (None, None);
    let (mut x_tag, mut y_tag) = (false, false);
    let number = |kind: u16, at: usize| match kind {
        3 => t.u16(at).map(f64::from),
        4 => t.u32(at).map(f64::from),
        5 => t.rational(at),
        _ => None,
    };
    for (tag, kind, count, at) in t.entries(t.u32(4)? as usize) {
        match tag {
            0x011A => (x_tag, x_res) = (true, number(kind, at)),
            0x011B => (y_tag, y_res) = (true, number(kind, at)),
            0x0128 => exif.resolution_unit = t.u16(at),
            0x010F => exif.make = t.ascii(at, count),
            0x0110 => exif.model = t.ascii(at, count),
            0x0112 => exif.orientation = t.u16(at).filter(|o| (1..=8).contains(o)),
            0x013B => exif.artist = t.ascii(at, count).filter(|a| !a.is_empty()),
            0x8298 => exif.copyright = t.ascii(at, count).filter(|c| !c.is_empty()),
            0x8769 => sub = t.u32(at),
            0x8825 => gps = t.u32(at),
            _ => {}
        }
    }
    exif.resolution = x_res.zip(y_res);
    exif.resolution_tags = x_tag && y_tag;
    let mut interop = None;
    if let Some(offset) = sub {
        for (tag, _, count, at) in t.entries(offset as usize) {
            match tag {
                0x9003 => exif.taken_at = t.ascii(at, count),
                0xA001 => exif.colour_space = t.u16(at),
                0xA005 => interop = t.u32(at),
                0xA434 => exif.lens = t.ascii(at, count),
                _ => {}
            }
        }
    }
    if let Some(offset) = interop {
        for (tag, _, count, at) in t.entries(offset as usize) {
            if tag == 0x0001 {
                exif.interop_index = t.ascii(at, count);
            }
        }
    }
    if let Some(offset) = gps {
        let (mut lat, mut lon, mut north, mut east) = (None, None, true, true);
        let degrees = |at: usize| Some(t.rational(at)? + t.rational(at + 8)? / 60.0 + t.rational(at + 16)? / 3600.0);
        for (tag, _, count, at) in t.entries(offset as usize) {
            match tag {
                0x0001 => north = t.ascii(at, count).as_deref() != Some("S"),
                0x0002 if count == 3 => lat = degrees(at),
                0x0003 => east = t.ascii(at, count).as_deref() != Some("W"),
                0x0004 if count == 3 => lon = degrees(at),
                _ => {}
            }
        }
        if let (Some(lat), Some(lon)) = (lat, lon) {
            exif.gps = Some((if north { lat } else { -lat }, if east { lon } else { -lon }));
        }
    }
    Some(exif)
}

impl Exif {
    /// Whether the block names an author or a copyright holder.
    pub fn has_attribution(&self) -> bool {
        self.artist.is_some() || self.copyright.is_some()
    }

    /// A minimal EXIF block (`Exif\0\0`, little-endian TIFF, IFD0) with only
    /// the Artist and Copyright fields: what `keep_copyright` puts back on a
    /// stripped image. `None` when there is neither.
    pub fn attribution_block(&self) -> Option<Vec<u8>> {
        let fields: Vec<(u16, &str)> = [(0x013B, &self.artist), (0x8298, &self.copyright)]
            .into_iter()
            .filter_map(|(tag, v)| v.as_deref().map(|v| (tag, v)))
            .collect();
        if fields.is_empty() {
            return None;
        }
        let mut tiff = b"II*\0".to_vec();
        tiff.extend_from_slice(&8u32.to_le_bytes());
        tiff.extend_from_slice(&(fields.len() as u16).to_le_bytes());
        // Values after the IFD: its entries, then the next-IFD offset (0).
        let mut data_at = 8 + 2 + 12 * fields.len() + 4;
        let mut data = Vec::new();
        for (tag, value) in &fields {
            let mut bytes = value.as_bytes().to_vec();
            bytes.push(0);
            tiff.extend_from_slice(&tag.to_le_bytes());
            tiff.extend_from_slice(&2u16.to_le_bytes());
            tiff.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
            if bytes.len() <= 4 {
                bytes.resize(4, 0);
                tiff.extend_from_slice(&bytes);
            } else {
                tiff.extend_from_slice(&(data_at as u32).to_le_bytes());
                data_at += bytes.len();
                data.extend_from_slice(&bytes);
            }
        }
        tiff.extend_from_slice(&0u32.to_le_bytes());
        tiff.extend_from_slice(&data);
        let mut block = b"Exif\0\0".to_vec();
        block.extend_from_slice(&tiff);
        Some(block)
    }
}

/// Writes a small little-endian EXIF block (with the `Exif\0\0` prefix) with
/// the colour-space fields; for tests that need a camera's Adobe RGB marker.
pub fn adobe_rgb_marker_block() -> Vec<u8> {
    fn ifd(entries: &[(u16, u16, u32, [u8; 4])], out: &mut Vec<u8>) {
        out.extend_from_slice(&(entries.len() as u16).to_le_bytes());
        for (tag, kind, count, value) in entries {
            out.extend_from_slice(&tag.to_le_bytes());
            out.extend_from_slice(&kind.to_le_bytes());
            out.extend_from_slice(&count.to_le_bytes());
            out.extend_from_slice(value);
        }
        out.extend_from_slice(&0u32.to_le_bytes());
    }
    // Header (8), IFD0 at 8 (18 bytes), Exif IFD at 26 (30 bytes), Interop IFD at 56.
    let mut tiff = b"II*\0\x08\0\0\0".to_vec();
    ifd(&[(0x8769, 4, 1, 26u32.to_le_bytes())], &mut tiff);
    ifd(
        &[(0xA001, 3, 1, [0xFF, 0xFF, 0, 0]), (0xA005, 4, 1, 56u32.to_le_bytes())],
        &mut tiff,
    );
    ifd(&[(0x0001, 2, 4, *b"R03\0")], &mut tiff);
    let mut block = b"Exif\0\0".to_vec();
    block.extend_from_slice(&tiff);
    block
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_attribution_block_reads_back_with_only_artist_and_copyright() {
        let source = Exif {
            artist: Some("Ann Example".into()),
            copyright: Some("(c) 2026 Ann Example".into()),
            model: Some("not copied".into()),
            ..Exif::default()
        };
        let block = source.attribution_block().unwrap();
        let read = parse(&block).unwrap();
        assert_eq!(read.artist.as_deref(), Some("Ann Example"));
        assert_eq!(read.copyright.as_deref(), Some("(c) 2026 Ann Example"));
        assert_eq!(read.model, None);
        let short = Exif {
            artist: Some("Al".into()),
            ..Exif::default()
        };
        assert_eq!(
            parse(&short.attribution_block().unwrap()).unwrap().artist.as_deref(),
            Some("Al")
        );
        assert_eq!(Exif::default().attribution_block(), None);
    }

    #[test]
    fn the_adobe_rgb_marker_is_read_from_the_interoperability_ifd() {
        let exif = parse(&adobe_rgb_marker_block()).unwrap();
        assert_eq!(exif.colour_space, Some(0xFFFF));
        assert_eq!(exif.interop_index.as_deref(), Some("R03"));
        assert!(exif.says_adobe_rgb());
    }

    #[test]
    fn damaged_blocks_give_what_could_be_read_and_never_panic() {
        let block = adobe_rgb_marker_block();
        for cut in 0..block.len() {
            let _ = parse(&block[..cut]);
        }
        let mut bad = block.clone();
        bad[6 + 8] = 0xFF; // IFD0's entry count
        let _ = parse(&bad);
        assert!(parse(b"nothing").is_none());
    }
}
