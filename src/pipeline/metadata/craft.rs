//! Builders of files whose metadata is built to cost, for the tests that
//! prove the metadata budget: an EXIF IFD bomb, and ways to carry it (PNG
//! `eXIf` and ImageMagick's "Raw profile type exif" text, JPEG APP1, WebP
//! `EXIF`), and ICC profiles in PNG `iCCP`. Each wraps a real image given to
//! it, so decoders still find pixels. Nothing here is used by the service.

fn crc32(kind: &[u8], data: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(kind);
    h.update(data);
    h.finalize()
}

fn chunk(kind: &[u8; 4], data: &[u8]) -> Vec<u8> {
    let mut c = (data.len() as u32).to_be_bytes().to_vec();
    c.extend_from_slice(kind);
    c.extend_from_slice(data);
    c.extend_from_slice(&crc32(kind, data).to_be_bytes());
    c
}

/// A 1x1 RGB PNG (a stored zlib block, no compressor needed).
pub fn tiny_png() -> Vec<u8> {
    let mut ihdr = 1u32.to_be_bytes().to_vec();
    ihdr.extend_from_slice(&1u32.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
    let raw = [0u8, 200, 100, 50]; // filter byte, then R G B
    let mut zlib = vec![0x78, 0x01, 1, raw.len() as u8, 0, !(raw.len() as u8), 0xFF];
    zlib.extend_from_slice(&raw);
    let (mut a, mut b) = (1u32, 0u32);
    for &x in &raw {
        a = (a + u32::from(x)) % 65521;
        b = (b + a) % 65521;
    }
    zlib.extend_from_slice(&((b << 16) | a).to_be_bytes());
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    png.extend(chunk(b"IHDR", &ihdr));
    png.extend(chunk(b"IDAT", &zlib));
    png.extend(chunk(b"IEND", &[]));
    png
}

/// A big-endian EXIF block (TIFF structure, no `Exif\0\0` prefix) whose
/// IFD0 has `entries` ASCII Orientation entries, every one pointing at the
/// same `region` bytes of text: small to send, costly to format entry by
/// entry.
pub fn exif_bomb(entries: u16, region: usize) -> Vec<u8> {
    let ifd_len = 2 + 12 * usize::from(entries) + 4;
    let region_at = (8 + ifd_len) as u32;
    let mut t = b"MM\0*\0\0\0\x08".to_vec();
    t.extend_from_slice(&entries.to_be_bytes());
    for _ in 0..entries {
        t.extend_from_slice(&0x0112u16.to_be_bytes());
        t.extend_from_slice(&2u16.to_be_bytes());
        t.extend_from_slice(&(region as u32).to_be_bytes());
        t.extend_from_slice(&region_at.to_be_bytes());
    }
    t.extend_from_slice(&0u32.to_be_bytes());
    t.extend(std::iter::repeat_n(b'A', region));
    t
}

/// `png` with a chunk inserted right after IHDR.
pub fn png_with_chunk(png: &[u8], kind: &[u8; 4], data: &[u8]) -> Vec<u8> {
    let ihdr_end = 8 + 12 + 13;
    let mut out = png[..ihdr_end].to_vec();
    out.extend(chunk(kind, data));
    out.extend_from_slice(&png[ihdr_end..]);
    out
}

/// `png` carrying `exif` as ImageMagick writes it: a text chunk keyed
/// "Raw profile type exif" with the length and hex digits, zlib-compressed
/// in `zTXt` when `compressed`, plain in `tEXt` otherwise.
pub fn png_with_raw_exif(png: &[u8], exif: &[u8], compressed: bool) -> Vec<u8> {
    let mut text = format!("\nexif\n{:8}\n", exif.len()).into_bytes();
    for line in exif.chunks(36) {
        text.extend(line.iter().flat_map(|b| format!("{b:02x}").into_bytes()));
        text.push(b'\n');
    }
    let mut data = b"Raw profile type exif\0".to_vec();
    if compressed {
        data.push(0);
        data.extend(miniz_oxide::deflate::compress_to_vec_zlib(&text, 9));
        png_with_chunk(png, b"zTXt", &data)
    } else {
        data.extend(text);
        png_with_chunk(png, b"tEXt", &data)
    }
}

/// `png` with `icc` as its `iCCP` profile.
pub fn png_with_iccp(png: &[u8], icc: &[u8]) -> Vec<u8> {
    let mut data = b"ICC Profile\0\0".to_vec();
    data.extend(miniz_oxide::deflate::compress_to_vec_zlib(icc, 9));
    png_with_chunk(png, b"iCCP", &data)
}

/// `jpeg` with `exif` in an APP1 segment after SOI (at most 65,527 bytes).
pub fn jpeg_with_exif(jpeg: &[u8], exif: &[u8]) -> Vec<u8> {
    let mut payload = b"Exif\0\0".to_vec();
    payload.extend_from_slice(exif);
    assert!(
        payload.len() + 2 <= 0xFFFF,
        "an APP1 segment holds at most 65,533 bytes"
    );
    let mut out = jpeg[..2].to_vec();
    out.extend_from_slice(&[0xFF, 0xE1]);
    out.extend_from_slice(&((payload.len() + 2) as u16).to_be_bytes());
    out.extend(payload);
    out.extend_from_slice(&jpeg[2..]);
    out
}

/// A simple (`VP8 `) `webp` turned into the extended format with an `EXIF`
/// chunk after its bitstream.
pub fn webp_with_exif(webp: &[u8], width: u32, height: u32, exif: &[u8]) -> Vec<u8> {
    let riff_chunk = |kind: &[u8; 4], data: &[u8]| {
        let mut c = kind.to_vec();
        c.extend_from_slice(&(data.len() as u32).to_le_bytes());
        c.extend_from_slice(data);
        if data.len() % 2 == 1 {
            c.push(0);
        }
        c
    };
    let mut vp8x = vec![0x08, 0, 0, 0]; // the EXIF flag
    vp8x.extend_from_slice(&(width - 1).to_le_bytes()[..3]);
    vp8x.extend_from_slice(&(height - 1).to_le_bytes()[..3]);
    let mut body = b"WEBP".to_vec();
    body.extend(riff_chunk(b"VP8X", &vp8x));
    body.extend_from_slice(&webp[12..]);
    body.extend(riff_chunk(b"EXIF", exif));
    let mut out = b"RIFF".to_vec();
    out.extend_from_slice(&(body.len() as u32).to_le_bytes());
    out.extend(body);
    out
}
