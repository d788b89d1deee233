//! Every size a file claims, read in pure Rust before any decoder sees it: a
//! file may state one size in its container and another in the coded
//! stream (an AVIF whose `ispe` box says 100x100 around an AV1 sequence
//! header of 16000x16000), or hide a huge page between small ones (TIFF
//! pages, GIF frames, animated WebP frames). Admission uses the largest size
//! any layer claims, and every page or frame is checked, not only the first.
//!
//! Each reader is bounded: it stops after `MAX_LAYERS` layers and never
//! follows an offset outside the file.

use super::format::ImageFormat;

/// The sizes a file claims, over all its layers (container boxes, coded
/// streams, pages, frames).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Claims {
    /// The widest and tallest any layer claims.
    pub max_width: u32,
    pub max_height: u32,
    /// The largest area of a single layer, and that layer's size.
    pub max_area: u64,
    pub largest: (u32, u32),
    /// Pages or frames (1 for a still image).
    pub frames: u32,
    /// Where the image's data ends (after PNG's IEND, GIF's trailer, JPEG's
    /// end-of-image marker, WebP's RIFF length), for formats that say so;
    /// bytes after it are not part of the image.
    pub end: Option<usize>,
    /// Set when the structure is one no real file has and reading it fully
    /// would cost far more than the file's size (HEIF items whose data
    /// overlap again and again): refused rather than half-read.
    pub malformed: Option<&'static str>,
}

/// Why `Claims::check` or `precheck` refuses a file.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// A layer, or the frame count, exceeds the limits.
    #[error("{0}")]
    TooLarge(String),
    /// The structure cannot be read within bounds.
    #[error("{0}")]
    Malformed(String),
    /// Its metadata exceeds the budget (`metadata`).
    #[error("{0}")]
    Metadata(String),
}

/// Every check of a file before a decoder sees it: its metadata against the
/// budget (`metadata`), then every layer's claims against the limits.
/// Returns the claims, when the structure could be read.
pub fn precheck(
    bytes: &[u8],
    format: ImageFormat,
    max_width: u32,
    max_height: u32,
    max_pixels: u64,
    max_frames: u32,
) -> Result<Option<Claims>, Refusal> {
    super::metadata::measure(bytes, format)
        .check()
        .map_err(|m| Refusal::Metadata(format!("the image's metadata is too large: {m}")))?;
    let claims = claims(bytes, format);
    if let Some(c) = &claims {
        c.check(max_width, max_height, max_pixels, max_frames)?;
    }
    Ok(claims)
}

impl Claims {
    /// Checks every claim against the limits; the message names the layer
    /// that is too large.
    pub fn check(&self, max_width: u32, max_height: u32, max_pixels: u64, max_frames: u32) -> Result<(), Refusal> {
        if let Some(why) = self.malformed {
            return Err(Refusal::Malformed(why.to_string()));
        }
        if self.max_width > max_width || self.max_height > max_height {
            return Err(Refusal::TooLarge(format!(
                "a layer of the image is {}x{} (largest width and height any layer claims), larger than the {max_width}x{max_height} limit",
                self.max_width, self.max_height
            )));
        }
        if self.max_area > max_pixels {
            return Err(Refusal::TooLarge(format!(
                "a layer of the image is {}x{} ({} pixels), more than the {max_pixels} pixel limit",
                self.largest.0, self.largest.1, self.max_area
            )));
        }
        if self.frames > max_frames {
            return Err(Refusal::TooLarge(format!(
                "image has {} frames, more than the {max_frames} limit",
                self.frames
            )));
        }
        Ok(())
    }

    fn add(&mut self, width: u32, height: u32) {
        self.max_width = self.max_width.max(width);
        self.max_height = self.max_height.max(height);
        let area = u64::from(width) * u64::from(height);
        if area > self.max_area {
            self.max_area = area;
            self.largest = (width, height);
        }
    }
}

/// Layers read at most (the frame limit is checked against the count).
const MAX_LAYERS: u32 = 10_000;

/// What `bytes` claims, by format; `None` when the structure cannot be read
/// (the decoder will refuse such a file anyway).
pub fn claims(bytes: &[u8], format: ImageFormat) -> Option<Claims> {
    let mut c = Claims::default();
    match format {
        ImageFormat::Avif | ImageFormat::Heic => heif(bytes, &mut c)?,
        ImageFormat::Tiff => tiff(bytes, &mut c)?,
        ImageFormat::Gif => gif(bytes, &mut c)?,
        ImageFormat::Webp => webp(bytes, &mut c)?,
        ImageFormat::Png => png(bytes, &mut c)?,
        ImageFormat::Jpeg => {
            let size = imagesize::blob_size(bytes).ok()?;
            c.add(u32::try_from(size.width).ok()?, u32::try_from(size.height).ok()?);
            c.frames = 1;
            c.end = jpeg_end(bytes);
        }
    }
    Some(c)
}

fn be16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn le16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn le32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// PNG: the IHDR canvas and every APNG frame (`fcTL`).
fn png(b: &[u8], c: &mut Claims) -> Option<()> {
    let mut at = 8;
    c.frames = 1;
    let mut animated_frames = 0;
    while at + 12 <= b.len() && animated_frames < MAX_LAYERS {
        let len = be32(b, at)? as usize;
        let kind = b.get(at + 4..at + 8)?;
        let data = b.get(at + 8..(at + 8).checked_add(len)?)?;
        match kind {
            b"IHDR" => c.add(be32(data, 0)?, be32(data, 4)?),
            b"fcTL" => {
                c.add(be32(data, 4)?, be32(data, 8)?);
                animated_frames += 1;
            }
            b"IEND" => {
                c.end = Some(at + 12);
                break;
            }
            _ => {}
        }
        at += 12 + len;
    }
    c.frames = c.frames.max(animated_frames);
    (c.max_width > 0).then_some(())
}

/// GIF: the logical screen and every image descriptor.
fn gif(b: &[u8], c: &mut Claims) -> Option<()> {
    c.add(u32::from(le16(b, 6)?), u32::from(le16(b, 8)?));
    let flags = *b.get(10)?;
    let mut at = 13;
    if flags & 0x80 != 0 {
        at += 3 << ((flags & 7) + 1);
    }
    let skip_blocks = |mut at: usize| -> Option<usize> {
        loop {
            let n = *b.get(at)? as usize;
            at += 1 + n;
            if n == 0 {
                return Some(at);
            }
        }
    };
    while c.frames < MAX_LAYERS {
        match b.get(at) {
            Some(0x2C) => {
                c.add(u32::from(le16(b, at + 5)?), u32::from(le16(b, at + 7)?));
                c.frames += 1;
                let local = *b.get(at + 9)?;
                at += 10;
                if local & 0x80 != 0 {
                    at += 3 << ((local & 7) + 1);
                }
                // LZW minimum code size, then the data sub-blocks.
                at = skip_blocks(at + 1)?;
            }
            Some(0x21) => at = skip_blocks(at + 2)?,
            Some(0x3B) => {
                c.end = Some(at + 1);
                break;
            }
            // A file cut short: what was read counts.
            _ => break,
        }
    }
    Some(())
}

/// TIFF: every image file directory's width and length.
fn tiff(b: &[u8], c: &mut Claims) -> Option<()> {
    let little = match b.get(..4)? {
        b"II*\0" => true,
        b"MM\0*" => false,
        _ => return None,
    };
    let u16_at = |at: usize| if little { le16(b, at) } else { be16(b, at) };
    let u32_at = |at: usize| if little { le32(b, at) } else { be32(b, at) };
    let mut offset = u32_at(4)? as usize;
    let mut seen = std::collections::HashSet::new();
    while offset != 0 && c.frames < MAX_LAYERS && seen.insert(offset) {
        let n = usize::from(u16_at(offset)?);
        let (mut width, mut height) = (0, 0);
        for i in 0..n.min(4096) {
            let at = offset + 2 + 12 * i;
            let (tag, kind) = (u16_at(at)?, u16_at(at + 2)?);
            let value = match kind {
                3 => u32::from(u16_at(at + 8)?),
                4 => u32_at(at + 8)?,
                _ => continue,
            };
            match tag {
                256 => width = value,
                257 => height = value,
                _ => {}
            }
        }
        c.add(width, height);
        c.frames += 1;
        offset = u32_at(offset + 2 + 12 * n)? as usize;
    }
    (c.frames > 0).then_some(())
}

/// WebP: the VP8/VP8L frame, or the VP8X canvas and every ANMF frame.
fn webp(b: &[u8], c: &mut Claims) -> Option<()> {
    c.end = le32(b, 4).and_then(|n| (n as usize).checked_add(8));
    let mut at = 12;
    while at + 8 <= b.len() && c.frames < MAX_LAYERS {
        let kind = b.get(at..at + 4)?;
        let len = le32(b, at + 4)? as usize;
        let data = b.get(at + 8..(at + 8).checked_add(len)?.min(b.len()))?;
        let u24 = |d: &[u8], i: usize| -> Option<u32> {
            Some(u32::from(*d.get(i)?) | u32::from(*d.get(i + 1)?) << 8 | u32::from(*d.get(i + 2)?) << 16)
        };
        match kind {
            b"VP8X" => c.add(u24(data, 4)? + 1, u24(data, 7)? + 1),
            b"ANMF" => {
                c.add(u24(data, 6)? + 1, u24(data, 9)? + 1);
                c.frames += 1;
                // The frame's own bitstream chunk follows its 16-byte header.
                let mut inner = Claims::default();
                if webp_frame(data.get(16..)?, &mut inner).is_some() {
                    c.add(inner.max_width, inner.max_height);
                }
            }
            b"VP8 " | b"VP8L" => {
                webp_frame(b.get(at..)?, c)?;
                c.frames = c.frames.max(1);
            }
            _ => {}
        }
        at += 8 + len + (len & 1);
    }
    (c.max_width > 0).then_some(())
}

/// The size a VP8 or VP8L bitstream chunk (with its chunk header) codes.
fn webp_frame(chunk: &[u8], c: &mut Claims) -> Option<()> {
    let data = chunk.get(8..)?;
    match chunk.get(..4)? {
        b"VP8 " => {
            // Frame tag (3), start code 9d 01 2a, then 14-bit width and height.
            (data.get(3..6)? == [0x9d, 0x01, 0x2a]).then_some(())?;
            c.add(u32::from(le16(data, 6)? & 0x3fff), u32::from(le16(data, 8)? & 0x3fff));
        }
        b"VP8L" => {
            (*data.first()? == 0x2f).then_some(())?;
            let bits = le32(data, 1)?;
            c.add((bits & 0x3fff) + 1, ((bits >> 14) & 0x3fff) + 1);
        }
        _ => return None,
    }
    Some(())
}

/// Where a JPEG's end-of-image marker ends: markers are walked segment by
/// segment (an EXIF thumbnail's own EOI inside APP1 does not count), and the
/// entropy-coded data after each start-of-scan is scanned for the next
/// marker.
fn jpeg_end(b: &[u8]) -> Option<usize> {
    let mut at = 2;
    loop {
        // Fill bytes (FF FF ...) may precede a marker.
        while *b.get(at)? == 0xFF && *b.get(at + 1)? == 0xFF {
            at += 1;
        }
        if *b.get(at)? != 0xFF {
            return None;
        }
        let marker = *b.get(at + 1)?;
        match marker {
            0xD9 => return Some(at + 2),
            0xD0..=0xD7 | 0x01 => at += 2,
            _ => {
                let len = usize::from(be16(b, at + 2)?);
                at += 2 + len;
                if marker == 0xDA {
                    // Entropy-coded data: FF 00 is a stuffed byte, FF D0-D7 a
                    // restart marker; any other FF xx is the next marker.
                    loop {
                        let ff = at + b.get(at..)?.iter().position(|&x| x == 0xFF)?;
                        match *b.get(ff + 1)? {
                            0x00 | 0xD0..=0xD7 | 0xFF => at = ff + 1,
                            _ => {
                                at = ff;
                                break;
                            }
                        }
                    }
                }
            }
        }
    }
}

/// An ISOBMFF box: its type and its payload (after the header).
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
        let payload = b.get(at + header..at.checked_add(size)?)?;
        at += size;
        Some((kind, payload))
    })
}

fn child<'a>(b: &'a [u8], kind: &[u8]) -> Option<&'a [u8]> {
    boxes(b).find(|(k, _)| *k == kind).map(|(_, p)| p)
}

/// HEIF/AVIF: every `ispe` property, the AV1 sequence headers and HEVC
/// sequence parameter sets in the codec configurations (`av1C`, `hvcC`)
/// and in every item's coded data (located through `iloc`).
fn heif(b: &[u8], c: &mut Claims) -> Option<()> {
    let meta = child(b, b"meta")?;
    let meta = meta.get(4..)?; // FullBox version and flags
    c.frames = 1;
    let mut length_size = 4;
    if let Some(ipco) = child(meta, b"iprp").and_then(|iprp| child(iprp, b"ipco")) {
        for (kind, p) in boxes(ipco).take(MAX_LAYERS as usize) {
            match kind {
                b"ispe" => c.add(be32(p, 4)?, be32(p, 8)?),
                b"av1C" => av1_obus(p.get(4..).unwrap_or_default(), c),
                b"hvcC" => {
                    length_size = usize::from(p.get(21).map_or(3, |v| v & 3)) + 1;
                    hvcc_arrays(p, c);
                }
                _ => {}
            }
        }
    }
    if let Some(iloc) = child(meta, b"iloc") {
        let idat = child(meta, b"idat");
        // Items' extents do not overlap in a real file (tiles, thumbnails,
        // alpha and the primary image each have their own), so reading them
        // all reads at most the file once. Repeats of one extent are read
        // once; a layout that would make the reader go over the file more
        // than twice is refused instead of half-read.
        let mut seen = std::collections::HashSet::new();
        let mut scanned = 0usize;
        for data in item_data(iloc, b, idat) {
            if !seen.insert((data.as_ptr() as usize, data.len())) {
                continue;
            }
            scanned = scanned.saturating_add(data.len());
            if scanned > b.len().saturating_mul(2) {
                c.malformed = Some(
                    "the file's items point at overlapping data far larger than the file; refused before decoding",
                );
                break;
            }
            av1_obus(data, c);
            hevc_nals(data, length_size, c);
        }
    }
    (c.max_width > 0).then_some(())
}

/// Extents read from an `iloc` box at most (counting empty ones).
const MAX_EXTENTS: usize = 4096;

/// The data extents of every item in an `iloc` box (at most `MAX_EXTENTS`).
fn item_data<'a>(iloc: &'a [u8], file: &'a [u8], idat: Option<&'a [u8]>) -> impl Iterator<Item = &'a [u8]> {
    item_extents_in(iloc, file, idat).map(|(_, data)| data)
}

/// The data extents of every item stored in the file itself, with the
/// item's id (at most `MAX_EXTENTS`).
pub(crate) fn item_extents<'a>(iloc: &'a [u8], file: &'a [u8]) -> impl Iterator<Item = (u32, &'a [u8])> {
    item_extents_in(iloc, file, None)
}

fn item_extents_in<'a>(
    iloc: &'a [u8],
    file: &'a [u8],
    idat: Option<&'a [u8]>,
) -> impl Iterator<Item = (u32, &'a [u8])> {
    let mut out = Vec::new();
    let mut extents_read = 0usize;
    let mut parse = || -> Option<()> {
        let version = *iloc.first()?;
        let sizes = be16(iloc, 4)?;
        let (offset_size, length_size, base_size) = (
            usize::from(sizes >> 12),
            usize::from((sizes >> 8) & 15),
            usize::from((sizes >> 4) & 15),
        );
        let index_size = if version >= 1 { usize::from(sizes & 15) } else { 0 };
        let mut at = 6;
        let count = if version < 2 {
            let n = be16(iloc, at)? as usize;
            at += 2;
            n
        } else {
            let n = be32(iloc, at)? as usize;
            at += 4;
            n
        };
        let read = |at: &mut usize, size: usize| -> Option<u64> {
            let v = iloc
                .get(*at..*at + size)?
                .iter()
                .fold(0u64, |v, byte| v << 8 | u64::from(*byte));
            *at += size;
            Some(v)
        };
        for _ in 0..count.min(MAX_LAYERS as usize) {
            let id = if version < 2 {
                u32::from(be16(iloc, at)?)
            } else {
                be32(iloc, at)?
            };
            at += if version < 2 { 2 } else { 4 };
            let method = if version >= 1 {
                let m = be16(iloc, at)? & 15;
                at += 2;
                m
            } else {
                0
            };
            at += 2; // data reference index
            let base = read(&mut at, base_size)?;
            let extents = be16(iloc, at)?;
            at += 2;
            for _ in 0..extents {
                extents_read += 1;
                if extents_read > MAX_EXTENTS {
                    return Some(());
                }
                read(&mut at, index_size)?;
                let offset = usize::try_from(base.checked_add(read(&mut at, offset_size)?)?).ok()?;
                let length = usize::try_from(read(&mut at, length_size)?).ok()?;
                let source = match method {
                    0 => Some(file),
                    1 => idat,
                    _ => None,
                };
                let data = source.and_then(|s| s.get(offset..offset.checked_add(length)?.min(s.len())));
                if let Some(data) = data {
                    out.push((id, data));
                }
            }
        }
        Some(())
    };
    let _ = parse();
    out.into_iter()
}

/// Reads bits most significant first.
struct Bits<'a> {
    data: &'a [u8],
    pos: usize,
}

impl Bits<'_> {
    fn bit(&mut self) -> Option<u32> {
        let byte = *self.data.get(self.pos / 8)?;
        let bit = (byte >> (7 - self.pos % 8)) & 1;
        self.pos += 1;
        Some(u32::from(bit))
    }

    fn bits(&mut self, n: u32) -> Option<u32> {
        (0..n).try_fold(0u32, |v, _| Some(v << 1 | self.bit()?))
    }

    fn skip(&mut self, n: usize) {
        self.pos += n;
    }

    /// AV1's uvlc().
    fn uvlc(&mut self) -> Option<u32> {
        let mut zeros = 0;
        while self.bit()? == 0 {
            zeros += 1;
            if zeros >= 32 {
                return Some(u32::MAX);
            }
        }
        Some(self.bits(zeros)? + ((1u32 << zeros) - 1))
    }

    /// H.265's ue(v).
    fn ue(&mut self) -> Option<u32> {
        let mut zeros = 0;
        while self.bit()? == 0 {
            zeros += 1;
            if zeros > 31 {
                return None;
            }
        }
        Some(((1u64 << zeros) - 1 + u64::from(self.bits(zeros)?)).min(u64::from(u32::MAX)) as u32)
    }
}

/// Every AV1 sequence header among the OBUs of `data` (low-overhead format,
/// as AVIF stores them).
fn av1_obus(data: &[u8], c: &mut Claims) {
    let mut at = 0;
    while let Some(&header) = data.get(at) {
        let kind = (header >> 3) & 15;
        let extension = header & 4 != 0;
        let has_size = header & 2 != 0;
        at += 1 + usize::from(extension);
        let size = if has_size {
            let mut v = 0usize;
            let mut i = 0;
            loop {
                let Some(&byte) = data.get(at) else { return };
                at += 1;
                v |= usize::from(byte & 0x7f) << (7 * i);
                i += 1;
                if byte & 0x80 == 0 || i == 8 {
                    break;
                }
            }
            v
        } else {
            data.len().saturating_sub(at)
        };
        let Some(payload) = data.get(at..at.saturating_add(size).min(data.len())) else {
            return;
        };
        if kind == 1
            && let Some((w, h)) = av1_sequence_header(payload)
        {
            c.add(w, h);
        }
        if size == 0 && !has_size {
            return;
        }
        at = at.saturating_add(size);
    }
}

/// max_frame_width and max_frame_height of an AV1 sequence header.
fn av1_sequence_header(p: &[u8]) -> Option<(u32, u32)> {
    let mut r = Bits { data: p, pos: 0 };
    r.skip(3 + 1); // seq_profile, still_picture
    let reduced = r.bit()? == 1;
    if reduced {
        r.skip(5);
    } else {
        let timing = r.bit()? == 1;
        let mut decoder_model = false;
        let mut buffer_delay_length = 0;
        if timing {
            r.skip(64);
            if r.bit()? == 1 {
                r.uvlc()?;
            }
            decoder_model = r.bit()? == 1;
            if decoder_model {
                buffer_delay_length = r.bits(5)? + 1;
                r.skip(32 + 5 + 5);
            }
        }
        let initial_display_delay = r.bit()? == 1;
        let points = r.bits(5)? + 1;
        for _ in 0..points {
            r.skip(12);
            if r.bits(5)? > 7 {
                r.skip(1);
            }
            if decoder_model && r.bit()? == 1 {
                r.skip(2 * buffer_delay_length as usize + 1);
            }
            if initial_display_delay && r.bit()? == 1 {
                r.skip(4);
            }
        }
    }
    let width_bits = r.bits(4)? + 1;
    let height_bits = r.bits(4)? + 1;
    Some((r.bits(width_bits)? + 1, r.bits(height_bits)? + 1))
}

/// The NAL units of an `hvcC` record's parameter-set arrays.
fn hvcc_arrays(p: &[u8], c: &mut Claims) {
    let Some(&arrays) = p.get(22) else { return };
    let mut at = 23;
    for _ in 0..arrays {
        let (Some(&kind), Some(count)) = (p.get(at), be16(p, at + 1)) else {
            return;
        };
        at += 3;
        for _ in 0..count {
            let Some(len) = be16(p, at) else { return };
            let Some(nal) = p.get(at + 2..at + 2 + usize::from(len)) else {
                return;
            };
            if kind & 0x3f == 33
                && let Some((w, h)) = hevc_sps(nal)
            {
                c.add(w, h);
            }
            at += 2 + usize::from(len);
        }
    }
}

/// The SPS among length-prefixed NAL units (HEIC item data).
fn hevc_nals(data: &[u8], length_size: usize, c: &mut Claims) {
    let mut at = 0;
    while at + length_size <= data.len() {
        let len = data[at..at + length_size]
            .iter()
            .fold(0usize, |v, b| v << 8 | usize::from(*b));
        let Some(nal) = data.get(at + length_size..(at + length_size).saturating_add(len)) else {
            return;
        };
        if nal.first().is_some_and(|h| (h >> 1) & 0x3f == 33)
            && let Some((w, h)) = hevc_sps(nal)
        {
            c.add(w, h);
        }
        if len == 0 {
            return;
        }
        at += length_size + len;
    }
}

/// pic_width_in_luma_samples and pic_height_in_luma_samples of an H.265
/// sequence parameter set NAL unit (with its 2-byte header).
fn hevc_sps(nal: &[u8]) -> Option<(u32, u32)> {
    // Remove emulation prevention bytes (00 00 03).
    let mut rbsp = Vec::with_capacity(nal.len().min(256));
    let mut zeros = 0;
    for &b in nal.get(2..)?.iter().take(256) {
        if zeros >= 2 && b == 3 {
            zeros = 0;
            continue;
        }
        zeros = if b == 0 { zeros + 1 } else { 0 };
        rbsp.push(b);
    }
    let mut r = Bits { data: &rbsp, pos: 0 };
    r.skip(4);
    let sub_layers = r.bits(3)? as usize;
    r.skip(1);
    // profile_tier_level: general part (88 bits), level (8).
    r.skip(88 + 8);
    let mut present = Vec::with_capacity(sub_layers);
    for _ in 0..sub_layers {
        present.push((r.bit()? == 1, r.bit()? == 1));
    }
    if sub_layers > 0 {
        r.skip(2 * (8 - sub_layers));
    }
    for (profile, level) in present {
        if profile {
            r.skip(88);
        }
        if level {
            r.skip(8);
        }
    }
    r.ue()?; // sps_seq_parameter_set_id
    if r.ue()? == 3 {
        r.skip(1);
    }
    Some((r.ue()?, r.ue()?))
}

#[doc(hidden)]
pub mod craft;

#[cfg(test)]
mod tests;
