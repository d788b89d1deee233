//! The metadata a file carries (EXIF, XMP, ICC profiles, text), measured in
//! pure Rust before any decoder sees the file, against a fixed budget.
//!
//! Metadata costs work out of all proportion to its size: ImageMagick reads
//! `exif:Orientation` and the resolution tags of every image it reads or
//! pings, walking every IFD and formatting every matching entry, so an EXIF
//! block of 3.5 MB whose 512-entry IFDs all point at one large string costs
//! a minute of CPU in a 25 KB file (zlib-compressed in a PNG text chunk).
//! Real photos carry a few kilobytes to a few tens of kilobytes of EXIF
//! (JPEG's APP1 segment cannot exceed 64 KiB), so the budget below refuses
//! only files built to cost: 422 `metadata_too_large`, before ImageMagick
//! or our own readers parse a byte of it.
//!
//! Where metadata is found: JPEG APP1 (EXIF, XMP, extended XMP), APP2 (ICC),
//! APP13 (Photoshop resources, which may embed EXIF and XMP); PNG `eXIf`,
//! `iCCP`, and text chunks (`tEXt`, `zTXt`, `iTXt`, including ImageMagick's
//! "Raw profile type exif/xmp/icc" encodings, inflated within bounds); WebP
//! `EXIF`, `XMP `, `ICCP`; GIF application and comment extensions; TIFF's
//! XMP, Photoshop and ICC tags; HEIF/AVIF `Exif` and `mime` items and `colr`
//! profiles.

use super::format::ImageFormat;

pub mod craft;

/// Largest EXIF block (each one; JPEG's own segment limit is 64 KiB).
pub const MAX_EXIF_BYTES: usize = 256 << 10;
/// Most IFD entries over all the IFDs of one EXIF block, as ImageMagick
/// walks them (the IFD chain and the EXIF, GPS and interoperability IFDs).
pub const MAX_EXIF_ENTRIES: usize = 2048;
/// Most bytes the entries of one EXIF block refer to, counted per entry (an
/// entry that points at data another entry points at counts again: that is
/// the work a reader does; one whose data lies outside the block is skipped
/// by readers and not counted).
pub const MAX_EXIF_VALUE_BYTES: u64 = 1 << 20;
/// Largest XMP packet, and largest ICC profile (each, all parts together).
pub const MAX_XMP_BYTES: usize = 4 << 20;
pub const MAX_ICC_BYTES: usize = 4 << 20;
/// All text chunks and comments of a file together, inflated.
pub const MAX_TEXT_BYTES: usize = 4 << 20;
/// Characters kept of any text that comes from a file (an ICC profile's
/// description, EXIF strings) in what the service answers: at most this
/// many bytes of it are read, and the text is cut to this many characters.
pub const FILE_TEXT_MAX: usize = 128;

/// A text field from inside a file, bounded: at most `FILE_TEXT_MAX` bytes
/// are read (whatever length the file claims), decoded as UTF-8 with
/// invalid bytes replaced, NULs and surrounding whitespace trimmed. `None`
/// when nothing is left.
pub fn file_text(raw: &[u8]) -> Option<String> {
    let raw = &raw[..raw.len().min(FILE_TEXT_MAX)];
    let text = String::from_utf8_lossy(raw);
    let text = text.trim_matches(|c: char| c == '\0' || c.is_whitespace());
    (!text.is_empty()).then(|| text.chars().take(FILE_TEXT_MAX).collect())
}

/// As `file_text`, for UTF-16 (big-endian) text.
pub fn file_text_utf16(raw: &[u8]) -> Option<String> {
    let raw = &raw[..raw.len().min(2 * FILE_TEXT_MAX)];
    let units: Vec<u16> = raw.chunks_exact(2).map(|c| u16::from_be_bytes([c[0], c[1]])).collect();
    let text = String::from_utf16_lossy(&units);
    let text = text.trim_matches(|c: char| c == '\0' || c.is_whitespace());
    (!text.is_empty()).then(|| text.chars().take(FILE_TEXT_MAX).collect())
}

/// Metadata blocks read at most per file (each is measured).
const MAX_BLOCKS: usize = 256;

/// What a file's metadata weighs: the largest of each kind.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Metadata {
    pub exif_bytes: usize,
    pub exif_entries: usize,
    pub exif_value_bytes: u64,
    pub xmp_bytes: usize,
    pub icc_bytes: usize,
    pub text_bytes: usize,
    /// More metadata blocks than are measured.
    pub too_many_blocks: bool,
}

impl Metadata {
    /// The first budget the metadata exceeds, in words for the client.
    pub fn check(&self) -> Result<(), String> {
        let over = |what: &str, n: u64, max: u64| Err(format!("{what}: {n}, more than the {max} this service reads"));
        if self.exif_bytes > MAX_EXIF_BYTES {
            return over("EXIF block bytes", self.exif_bytes as u64, MAX_EXIF_BYTES as u64);
        }
        if self.exif_entries > MAX_EXIF_ENTRIES {
            return over("EXIF entries", self.exif_entries as u64, MAX_EXIF_ENTRIES as u64);
        }
        if self.exif_value_bytes > MAX_EXIF_VALUE_BYTES {
            return over(
                "bytes EXIF entries refer to",
                self.exif_value_bytes,
                MAX_EXIF_VALUE_BYTES,
            );
        }
        if self.xmp_bytes > MAX_XMP_BYTES {
            return over("XMP bytes", self.xmp_bytes as u64, MAX_XMP_BYTES as u64);
        }
        if self.icc_bytes > MAX_ICC_BYTES {
            return over("ICC profile bytes", self.icc_bytes as u64, MAX_ICC_BYTES as u64);
        }
        if self.text_bytes > MAX_TEXT_BYTES {
            return over("text chunk bytes", self.text_bytes as u64, MAX_TEXT_BYTES as u64);
        }
        if self.too_many_blocks {
            return Err(format!("more than {MAX_BLOCKS} metadata blocks"));
        }
        Ok(())
    }

    fn exif(&mut self, block: &[u8]) {
        self.exif_bytes = self.exif_bytes.max(block.len());
        if block.len() > MAX_EXIF_BYTES {
            return;
        }
        let (entries, values) = exif_work(block);
        self.exif_entries = self.exif_entries.max(entries);
        self.exif_value_bytes = self.exif_value_bytes.max(values);
    }

    fn xmp(&mut self, n: usize) {
        self.xmp_bytes = self.xmp_bytes.max(n);
    }

    fn icc(&mut self, n: usize) {
        self.icc_bytes = self.icc_bytes.max(n);
    }

    fn text(&mut self, n: usize) {
        self.text_bytes = self.text_bytes.saturating_add(n);
    }
}

/// Measures `bytes`'s metadata. A structure that cannot be read is measured
/// as far as it can be (the decoder refuses such a file anyway).
pub fn measure(bytes: &[u8], format: ImageFormat) -> Metadata {
    let mut m = Metadata::default();
    let _ = match format {
        ImageFormat::Jpeg => jpeg(bytes, &mut m),
        ImageFormat::Png => png(bytes, &mut m),
        ImageFormat::Webp => webp(bytes, &mut m),
        ImageFormat::Gif => gif(bytes, &mut m),
        ImageFormat::Tiff => tiff(bytes, &mut m),
        ImageFormat::Avif | ImageFormat::Heic => heif(bytes, &mut m),
    };
    m
}

fn be16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn le32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// Entries and referred bytes of an EXIF (TIFF-structured) block, walked as
/// ImageMagick walks it: the IFD chain, and the EXIF, GPS and
/// interoperability IFDs, each offset once. Stops counting past the budget.
pub fn exif_work(block: &[u8]) -> (usize, u64) {
    let data = block.strip_prefix(b"Exif\0\0").unwrap_or(block);
    let little = match data.get(..4) {
        Some(b"II*\0") => true,
        Some(b"MM\0*") => false,
        _ => return (0, 0),
    };
    let u16_at = |at: usize| -> Option<u16> {
        let b: [u8; 2] = data.get(at..at + 2)?.try_into().ok()?;
        Some(if little {
            u16::from_le_bytes(b)
        } else {
            u16::from_be_bytes(b)
        })
    };
    let u32_at = |at: usize| -> Option<u32> {
        let b: [u8; 4] = data.get(at..at + 4)?.try_into().ok()?;
        Some(if little {
            u32::from_le_bytes(b)
        } else {
            u32::from_be_bytes(b)
        })
    };
    let (mut entries, mut values) = (0usize, 0u64);
    let mut stack: Vec<usize> = u32_at(4).map(|o| o as usize).into_iter().collect();
    let mut seen = std::collections::HashSet::new();
    while let Some(offset) = stack.pop() {
        if entries > MAX_EXIF_ENTRIES || values > MAX_EXIF_VALUE_BYTES || !seen.insert(offset) {
            continue;
        }
        let Some(n) = u16_at(offset) else { continue };
        let n = usize::from(n);
        for i in 0..n {
            let at = offset + 2 + 12 * i;
            let (Some(tag), Some(kind), Some(count)) = (u16_at(at), u16_at(at + 2), u32_at(at + 4)) else {
                break;
            };
            entries += 1;
            let unit: u64 = match kind {
                1 | 2 | 6 | 7 => 1,
                3 | 8 => 2,
                4 | 9 | 11 | 13 => 4,
                5 | 10 | 12 => 8,
                _ => 0,
            };
            // What a reader formats: the entry's value, when it lies within
            // the block (a reader skips one that does not).
            let size = unit.saturating_mul(u64::from(count));
            let inside =
                size <= 4 || u32_at(at + 8).is_some_and(|o| u64::from(o).saturating_add(size) <= data.len() as u64);
            if inside {
                values = values.saturating_add(size);
            }
            if matches!(tag, 0x8769 | 0x8825 | 0xA005)
                && let Some(sub) = u32_at(at + 8)
            {
                stack.push(sub as usize);
            }
            if entries > MAX_EXIF_ENTRIES || values > MAX_EXIF_VALUE_BYTES {
                break;
            }
        }
        if let Some(next) = u32_at(offset + 2 + 12 * n).filter(|&o| o != 0) {
            stack.push(next as usize);
        }
    }
    (entries, values)
}

/// Photoshop image resources (`8BIM`): EXIF (0x0422, 0x0423) and XMP (0x0424).
fn photoshop(b: &[u8], m: &mut Metadata) {
    let mut at = 0;
    let mut blocks = 0;
    while at + 12 <= b.len() && blocks < MAX_BLOCKS {
        if b.get(at..at + 4) != Some(b"8BIM") {
            return;
        }
        blocks += 1;
        let Some(id) = be16(b, at + 4) else { return };
        let name_len = usize::from(b[at + 6]);
        let name_total = (1 + name_len + 1) & !1;
        let size_at = at + 6 + name_total;
        let Some(size) = be32(b, size_at).map(|s| s as usize) else {
            return;
        };
        let start = size_at + 4;
        let Some(data) = start.checked_add(size).and_then(|end| b.get(start..end.min(b.len()))) else {
            return;
        };
        match id {
            0x0422 | 0x0423 => m.exif(data),
            0x0424 => m.xmp(size),
            0x040F => m.icc(size),
            _ => {}
        }
        at = start.saturating_add(size).saturating_add(size & 1);
    }
}

fn jpeg(b: &[u8], m: &mut Metadata) -> Option<()> {
    const EXIF: &[u8] = b"Exif\0\0";
    const XMP: &[u8] = b"http://ns.adobe.com/xap/1.0/\0";
    const XMP_EXTENDED: &[u8] = b"http://ns.adobe.com/xmp/extension/\0";
    const ICC: &[u8] = b"ICC_PROFILE\0";
    let (mut xmp, mut icc, mut blocks) = (0usize, 0usize, 0usize);
    let mut at = 2;
    loop {
        while *b.get(at)? == 0xFF && *b.get(at + 1)? == 0xFF {
            at += 1;
        }
        if *b.get(at)? != 0xFF {
            break;
        }
        let marker = *b.get(at + 1)?;
        if matches!(marker, 0xD8 | 0xD0..=0xD7 | 0x01) {
            at += 2;
            continue;
        }
        // Metadata comes before the first scan.
        if matches!(marker, 0xDA | 0xD9) {
            break;
        }
        let len = usize::from(be16(b, at + 2)?);
        let data = b.get(at + 4..(at + 2 + len).min(b.len()))?;
        blocks += 1;
        if blocks > MAX_BLOCKS {
            m.too_many_blocks = true;
            break;
        }
        match marker {
            0xE1 if data.starts_with(EXIF) => m.exif(data),
            0xE1 if data.starts_with(XMP) || data.starts_with(XMP_EXTENDED) => xmp += data.len(),
            0xE2 if data.starts_with(ICC) => icc += data.len(),
            0xED => photoshop(data.get(14..).unwrap_or_default(), m),
            0xFE => m.text(data.len()),
            _ => {}
        }
        at += 2 + len;
    }
    m.xmp(xmp);
    m.icc(icc);
    Some(())
}

/// Inflates a zlib stream, stopping past `limit` bytes (returned then as
/// `limit + 1` bytes, enough to say it is too large).
fn inflate(data: &[u8], limit: usize) -> Vec<u8> {
    match miniz_oxide::inflate::decompress_to_vec_zlib_with_limit(data, limit + 1) {
        Ok(v) => v,
        Err(e) => e.output,
    }
}

/// The profile name of ImageMagick's "Raw profile type NAME" keyword.
fn raw_profile_name(keyword: &[u8]) -> Option<String> {
    let name = std::str::from_utf8(keyword.strip_prefix(b"Raw profile type ")?).ok()?;
    Some(name.to_ascii_lowercase())
}

/// The length a raw profile's text declares: a line with the name, then a
/// line with the length (read before any hex digit is decoded).
fn raw_profile_length(text: &[u8]) -> Option<usize> {
    let mut lines = text.split(|&c| c == b'\n').filter(|l| !l.is_empty());
    let _name = lines.next()?;
    std::str::from_utf8(lines.next()?).ok()?.trim().parse().ok()
}

/// A raw profile's bytes (the hex digits after its two header lines),
/// decoding at most `limit` bytes.
fn raw_profile_bytes(text: &[u8], limit: usize) -> Vec<u8> {
    fn nibble(c: u8) -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            b'A'..=b'F' => Some(c - b'A' + 10),
            _ => None,
        }
    }
    let mut newlines = 0;
    let start = text
        .iter()
        .position(|&c| {
            newlines += usize::from(c == b'\n');
            newlines == 3
        })
        .map_or(text.len(), |p| p + 1);
    let mut out = Vec::new();
    let mut high = None;
    for n in text[start..].iter().filter_map(|&c| nibble(c)) {
        match high.take() {
            None => high = Some(n),
            Some(h) => {
                out.push(h << 4 | n);
                if out.len() >= limit {
                    break;
                }
            }
        }
    }
    out
}

fn png(b: &[u8], m: &mut Metadata) -> Option<()> {
    let mut at = 8;
    let mut blocks = 0;
    while at + 12 <= b.len() {
        let len = be32(b, at)? as usize;
        let kind = b.get(at + 4..at + 8)?;
        let data = b.get(at + 8..(at + 8).checked_add(len)?.min(b.len()))?;
        if matches!(kind, b"eXIf" | b"iCCP" | b"tEXt" | b"zTXt" | b"iTXt") {
            blocks += 1;
            if blocks > MAX_BLOCKS {
                m.too_many_blocks = true;
                break;
            }
        }
        match kind {
            b"eXIf" => m.exif(data),
            b"iCCP" => {
                let name_end = data.iter().position(|&c| c == 0)?;
                m.icc(inflate(data.get(name_end + 2..)?, MAX_ICC_BYTES).len());
            }
            b"tEXt" | b"zTXt" | b"iTXt" => {
                let key_end = data.iter().position(|&c| c == 0).unwrap_or(data.len());
                let keyword = &data[..key_end];
                // A raw profile declares its length first: one over budget
                // is refused from that, before a byte of it is inflated.
                if let Some(name) = raw_profile_name(keyword)
                    && kind == b"zTXt"
                {
                    let head = inflate(data.get(key_end + 2..).unwrap_or_default(), 64);
                    let declared = raw_profile_length(&head).unwrap_or(0);
                    let over = match name.as_str() {
                        "exif" | "app1" => (declared > MAX_EXIF_BYTES).then(|| m.exif_bytes = declared),
                        "xmp" => (declared > MAX_XMP_BYTES).then(|| m.xmp(declared)),
                        "icc" | "icm" => (declared > MAX_ICC_BYTES).then(|| m.icc(declared)),
                        _ => None,
                    };
                    if over.is_some() {
                        break;
                    }
                }
                let text = match kind {
                    b"tEXt" => data.get(key_end + 1..).unwrap_or_default().to_vec(),
                    b"zTXt" => inflate(data.get(key_end + 2..).unwrap_or_default(), MAX_TEXT_BYTES),
                    _ => {
                        // Compression flag and method, then language and
                        // translated keyword, each NUL-terminated.
                        let rest = data.get(key_end + 1..).unwrap_or_default();
                        let compressed = rest.first() == Some(&1);
                        let mut body = rest.get(2..).unwrap_or_default();
                        for _ in 0..2 {
                            let end = body.iter().position(|&c| c == 0).unwrap_or(body.len());
                            body = body.get(end + 1..).unwrap_or_default();
                        }
                        if compressed {
                            inflate(body, MAX_TEXT_BYTES)
                        } else {
                            body.to_vec()
                        }
                    }
                };
                m.text(text.len());
                if keyword == b"XML:com.adobe.xmp" {
                    m.xmp(text.len());
                } else if let Some(name) = raw_profile_name(keyword) {
                    let limit = match name.as_str() {
                        "xmp" => MAX_XMP_BYTES,
                        "icc" | "icm" => MAX_ICC_BYTES,
                        _ => MAX_EXIF_BYTES,
                    };
                    let profile = raw_profile_bytes(&text, limit + 1);
                    match name.as_str() {
                        "exif" => m.exif(&profile),
                        "app1" if profile.starts_with(b"Exif\0\0") => m.exif(&profile),
                        "xmp" | "app1" => m.xmp(profile.len()),
                        "icc" | "icm" => m.icc(profile.len()),
                        "8bim" => photoshop(&profile, m),
                        _ => {}
                    }
                }
            }
            b"IEND" => break,
            _ => {}
        }
        if m.check().is_err() {
            break;
        }
        at += 12 + len;
    }
    Some(())
}

fn webp(b: &[u8], m: &mut Metadata) -> Option<()> {
    let mut at = 12;
    let mut blocks = 0;
    while at + 8 <= b.len() && blocks < MAX_BLOCKS * 4 {
        blocks += 1;
        let kind = b.get(at..at + 4)?;
        let len = le32(b, at + 4)? as usize;
        let data = b.get(at + 8..(at + 8).checked_add(len)?.min(b.len()))?;
        match kind {
            b"EXIF" => m.exif(data),
            b"XMP " => m.xmp(len),
            b"ICCP" => m.icc(len),
            _ => {}
        }
        at = at.checked_add(8 + len + (len & 1))?;
    }
    Some(())
}

/// GIF: application extensions (XMP, ICC) and comments, by their data
/// sub-blocks' total size.
fn gif(b: &[u8], m: &mut Metadata) -> Option<()> {
    let flags = *b.get(10)?;
    let mut at = 13;
    if flags & 0x80 != 0 {
        at += 3 << ((flags & 7) + 1);
    }
    let blocks_size = |mut at: usize| -> Option<(usize, usize)> {
        let mut total = 0;
        loop {
            let n = usize::from(*b.get(at)?);
            at += 1 + n;
            if n == 0 {
                return Some((at, total));
            }
            total += n;
        }
    };
    let mut extensions = 0;
    loop {
        match *b.get(at)? {
            0x21 => {
                extensions += 1;
                if extensions > MAX_BLOCKS * 16 {
                    m.too_many_blocks = true;
                    return Some(());
                }
                let label = *b.get(at + 1)?;
                let (end, total) = match label {
                    0xFF => {
                        let n = usize::from(*b.get(at + 2)?);
                        let id = b.get(at + 3..at + 3 + n)?;
                        let (end, total) = blocks_size(at + 3 + n)?;
                        if id.starts_with(b"XMP Data") {
                            m.xmp(total);
                        } else if id.starts_with(b"ICCRGBG1") {
                            m.icc(total);
                        }
                        (end, 0)
                    }
                    0xFE => blocks_size(at + 2)?,
                    _ => {
                        let (end, _) = blocks_size(at + 2)?;
                        (end, 0)
                    }
                };
                m.text(total);
                at = end;
            }
            0x2C => {
                let packed = *b.get(at + 9)?;
                at += 10;
                if packed & 0x80 != 0 {
                    at += 3 << ((packed & 7) + 1);
                }
                at = blocks_size(at + 1)?.0;
            }
            _ => return Some(()),
        }
    }
}

/// TIFF: the first IFD's XMP (700), Photoshop (34377) and ICC (34675) tags.
fn tiff(b: &[u8], m: &mut Metadata) -> Option<()> {
    let little = match b.get(..4)? {
        b"II*\0" => true,
        b"MM\0*" => false,
        _ => return None,
    };
    let u16_at = |at: usize| -> Option<u16> {
        let v: [u8; 2] = b.get(at..at + 2)?.try_into().ok()?;
        Some(if little {
            u16::from_le_bytes(v)
        } else {
            u16::from_be_bytes(v)
        })
    };
    let u32_at = |at: usize| -> Option<u32> {
        let v: [u8; 4] = b.get(at..at + 4)?.try_into().ok()?;
        Some(if little {
            u32::from_le_bytes(v)
        } else {
            u32::from_be_bytes(v)
        })
    };
    let ifd = u32_at(4)? as usize;
    let n = usize::from(u16_at(ifd)?);
    for i in 0..n.min(4096) {
        let at = ifd + 2 + 12 * i;
        let (tag, count) = (u16_at(at)?, u32_at(at + 4)? as usize);
        match tag {
            700 => m.xmp(count),
            34675 => m.icc(count),
            34377 => {
                let offset = u32_at(at + 8)? as usize;
                let data = b.get(offset..offset.checked_add(count)?.min(b.len()))?;
                photoshop(data, m);
            }
            _ => {}
        }
    }
    Some(())
}

/// An ISOBMFF box's children: (type, payload).
fn boxes(b: &[u8]) -> impl Iterator<Item = (&[u8], &[u8])> {
    let mut at = 0usize;
    std::iter::from_fn(move || {
        let size = be32(b, at)? as usize;
        let kind = b.get(at + 4..at + 8)?;
        let (header, size) = match size {
            0 => (8, b.len() - at),
            1 => (
                16,
                usize::try_from(u64::from_be_bytes(b.get(at + 8..at + 16)?.try_into().ok()?)).ok()?,
            ),
            n => (8, n),
        };
        if size < header {
            return None;
        }
        let payload = b.get(at + header..at.checked_add(size)?.min(b.len()))?;
        at += size;
        Some((kind, payload))
    })
}

/// HEIF/AVIF: `Exif` and `mime` (XMP) items, measured by the extents
/// `iloc` gives them, and ICC profiles in `colr` properties.
fn heif(b: &[u8], m: &mut Metadata) -> Option<()> {
    let meta = boxes(b).find(|(k, _)| *k == b"meta")?.1.get(4..)?;
    if let Some(ipco) = boxes(meta)
        .find(|(k, _)| *k == b"iprp")
        .and_then(|(_, iprp)| boxes(iprp).find(|(k, _)| *k == b"ipco"))
    {
        for (kind, p) in boxes(ipco.1).take(MAX_BLOCKS * 16) {
            if kind == b"colr" && matches!(p.get(..4), Some(b"prof" | b"rICC")) {
                m.icc(p.len() - 4);
            }
        }
    }
    // Item types by id.
    let mut kinds = std::collections::HashMap::new();
    if let Some((_, iinf)) = boxes(meta).find(|(k, _)| *k == b"iinf") {
        let version = *iinf.first()?;
        let skip = if version == 0 { 6 } else { 8 };
        for (kind, infe) in boxes(iinf.get(skip..)?).take(MAX_BLOCKS * 16) {
            if kind != b"infe" || *infe.first()? < 2 {
                continue;
            }
            let (id, item_type) = if *infe.first()? == 2 {
                (u32::from(be16(infe, 4)?), infe.get(8..12)?)
            } else {
                (be32(infe, 4)?, infe.get(10..14)?)
            };
            if item_type == b"Exif" || item_type == b"mime" {
                kinds.insert(id, item_type == b"Exif");
            }
        }
    }
    if kinds.is_empty() {
        return Some(());
    }
    let iloc = boxes(meta).find(|(k, _)| *k == b"iloc")?.1;
    for (id, data) in super::layers::item_extents(iloc, b) {
        match kinds.get(&id) {
            // An Exif item starts with the 4-byte offset of its TIFF header.
            Some(true) => m.exif(data.get(4..).unwrap_or_default()),
            Some(false) => m.xmp(data.len()),
            None => {}
        }
    }
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_from_a_file_is_read_and_kept_within_bounds() {
        let huge = vec![0xFF; 7 << 20];
        let text = file_text(&huge).unwrap();
        assert_eq!(text.chars().count(), FILE_TEXT_MAX);
        assert!(text.len() <= 3 * FILE_TEXT_MAX);
        assert_eq!(file_text(b"Canon\0\0\0").as_deref(), Some("Canon"));
        assert_eq!(file_text(b"\0\0 "), None);
        let utf16: Vec<u8> = "Display P3".encode_utf16().flat_map(u16::to_be_bytes).collect();
        assert_eq!(file_text_utf16(&utf16).as_deref(), Some("Display P3"));
        assert_eq!(
            file_text_utf16(&vec![0xD8; 1 << 20]).unwrap().chars().count(),
            FILE_TEXT_MAX
        );
    }

    #[test]
    fn a_real_sized_exif_block_is_within_budget() {
        let block = crate::pipeline::exif::adobe_rgb_marker_block();
        let (entries, values) = exif_work(&block);
        assert_eq!(entries, 4, "IFD0 1, EXIF IFD 2, interoperability IFD 1");
        assert!(values < 64);
        let mut m = Metadata::default();
        m.exif(&block);
        assert!(m.check().is_ok());
    }

    #[test]
    fn an_ifd_bomb_is_over_budget_in_every_container() {
        let bomb = craft::exif_bomb(512, 50 << 10);
        let png = craft::tiny_png();
        let jpeg = include_bytes!("../../tests/fixtures/photo.jpg");
        let webp = include_bytes!("../../tests/fixtures/photo.webp");
        for (name, file, format) in [
            (
                "PNG zTXt",
                craft::png_with_raw_exif(&png, &bomb, true),
                ImageFormat::Png,
            ),
            (
                "PNG tEXt",
                craft::png_with_raw_exif(&png, &bomb, false),
                ImageFormat::Png,
            ),
            (
                "PNG eXIf",
                craft::png_with_chunk(&png, b"eXIf", &bomb),
                ImageFormat::Png,
            ),
            ("JPEG APP1", craft::jpeg_with_exif(jpeg, &bomb), ImageFormat::Jpeg),
            (
                "WebP EXIF",
                craft::webp_with_exif(webp, 320, 200, &bomb),
                ImageFormat::Webp,
            ),
        ] {
            let m = measure(&file, format);
            let refusal = m.check().expect_err(name);
            assert!(refusal.contains("EXIF"), "{name}: {refusal}");
        }
    }

    #[test]
    fn a_raw_profile_is_read_as_imagemagick_writes_it() {
        let exif = crate::pipeline::exif::adobe_rgb_marker_block();
        let png = craft::png_with_raw_exif(&craft::tiny_png(), &exif[6..], false);
        let m = measure(&png, ImageFormat::Png);
        assert_eq!((m.exif_bytes, m.exif_entries), (exif.len() - 6, 4));
        assert!(m.check().is_ok());
    }

    #[test]
    fn a_huge_profile_behind_a_small_file_is_over_budget() {
        let mut icc = vec![0u8; 5 << 20];
        icc[36..40].copy_from_slice(b"acsp");
        let png = craft::png_with_iccp(&craft::tiny_png(), &icc);
        assert!(png.len() < 64 << 10, "compressed: {} bytes", png.len());
        let refusal = measure(&png, ImageFormat::Png).check().unwrap_err();
        assert!(refusal.contains("ICC"), "{refusal}");
    }
}
