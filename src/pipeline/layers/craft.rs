//! Builders of hostile files, for the tests and fuzz seeds that prove the
//! layer checks: containers that understate their coded stream, and
//! multi-page files with a huge page between small ones. They produce valid
//! structure around whatever coded data they are given; nothing here is used
//! by the service itself.

fn put_box(out: &mut Vec<u8>, kind: &[u8; 4], payload: &[u8]) {
    out.extend_from_slice(&((payload.len() + 8) as u32).to_be_bytes());
    out.extend_from_slice(kind);
    out.extend_from_slice(payload);
}

/// Writes bits most significant first.
#[derive(Default)]
struct BitWriter {
    bytes: Vec<u8>,
    bits: usize,
}

impl BitWriter {
    fn put(&mut self, value: u64, n: u32) {
        for i in (0..n).rev() {
            if self.bits % 8 == 0 {
                self.bytes.push(0);
            }
            let bit = ((value >> i) & 1) as u8;
            let last = self.bytes.len() - 1;
            self.bytes[last] |= bit << (7 - self.bits % 8);
            self.bits += 1;
        }
    }

    fn ue(&mut self, value: u32) {
        let v = u64::from(value) + 1;
        let len = 64 - v.leading_zeros();
        self.put(0, len - 1);
        self.put(v, len);
    }
}

/// An AV1 sequence header OBU (reduced still-picture header) coding a
/// `width` x `height` image.
pub fn av1_sequence_header(width: u32, height: u32) -> Vec<u8> {
    let mut w = BitWriter::default();
    w.put(0, 3); // seq_profile
    w.put(1, 1); // still_picture
    w.put(1, 1); // reduced_still_picture_header
    w.put(0, 5); // seq_level_idx
    w.put(15, 4); // frame_width_bits_minus_1
    w.put(15, 4); // frame_height_bits_minus_1
    w.put(u64::from(width - 1), 16);
    w.put(u64::from(height - 1), 16);
    w.put(0, 3); // the rest of the header, cut short: only the size matters here
    let mut obu = vec![0x0A, w.bytes.len() as u8];
    obu.extend_from_slice(&w.bytes);
    obu
}

/// An H.265 sequence parameter set NAL unit (with its header) coding a
/// `width` x `height` picture.
pub fn hevc_sps(width: u32, height: u32) -> Vec<u8> {
    let mut w = BitWriter::default();
    w.put(0, 4); // sps_video_parameter_set_id
    w.put(0, 3); // sps_max_sub_layers_minus1
    w.put(1, 1); // temporal id nesting
    w.put(0x01, 8); // profile space, tier, profile idc 1 (Main)
    w.put(0x6000_0000, 32); // compatibility flags
    w.put(0, 48); // source flags and reserved bits
    w.put(93, 8); // level
    w.ue(0); // sps_seq_parameter_set_id
    w.ue(1); // chroma_format_idc 4:2:0
    w.ue(width);
    w.ue(height);
    let mut nal = vec![33 << 1, 1];
    // Emulation prevention: no 00 00 0x (x <= 3) may appear in the payload.
    let mut zeros = 0;
    for b in w.bytes {
        if zeros >= 2 && b <= 3 {
            nal.push(3);
            zeros = 0;
        }
        zeros = if b == 0 { zeros + 1 } else { 0 };
        nal.push(b);
    }
    nal
}

/// A HEIF file (`brand`: `avif` or `heic`) with one image item whose `ispe`
/// property says `stated` and whose coded data is `coded` (stored in `mdat`,
/// located by `iloc`). `config` is the codec configuration box (`av1C` or
/// `hvcC`) and its payload.
pub fn heif(brand: &[u8; 4], stated: (u32, u32), config: (&[u8; 4], &[u8]), coded: &[u8]) -> Vec<u8> {
    heif_items(brand, stated, config, coded, &|mdat, len| vec![(mdat, len)])
}

/// As `heif`, with one `iloc` item per extent `items(mdat offset, coded
/// length)` gives (offsets absolute, in the file).
pub fn heif_items(
    brand: &[u8; 4],
    stated: (u32, u32),
    config: (&[u8; 4], &[u8]),
    coded: &[u8],
    items: &dyn Fn(u32, u32) -> Vec<(u32, u32)>,
) -> Vec<u8> {
    let mut ftyp = brand.to_vec();
    ftyp.extend_from_slice(&0u32.to_be_bytes());
    ftyp.extend_from_slice(brand);
    ftyp.extend_from_slice(b"mif1");
    let mut ispe = vec![0; 4];
    ispe.extend_from_slice(&stated.0.to_be_bytes());
    ispe.extend_from_slice(&stated.1.to_be_bytes());
    let mut ipco = Vec::new();
    put_box(&mut ipco, b"ispe", &ispe);
    put_box(&mut ipco, config.0, config.1);
    let mut iprp = Vec::new();
    put_box(&mut iprp, b"ipco", &ipco);
    let item_type: &[u8; 4] = if brand == b"avif" { b"av01" } else { b"hvc1" };
    let mut infe = vec![2, 0, 0, 0, 0, 1, 0, 0];
    infe.extend_from_slice(item_type);
    infe.push(0);
    let mut iinf = vec![0, 0, 0, 0, 0, 1];
    put_box(&mut iinf, b"infe", &infe);
    let mut pitm = vec![0, 0, 0, 0];
    pitm.extend_from_slice(&1u16.to_be_bytes());

    // The file: ftyp, meta, mdat; iloc needs mdat's offset, so meta is built
    // twice (its size does not depend on the offset's value).
    let build = |mdat_offset: u32| {
        let extents = items(mdat_offset, coded.len() as u32);
        let mut iloc = vec![0, 0, 0, 0, 0x44, 0x00];
        iloc.extend_from_slice(&(extents.len() as u16).to_be_bytes()); // item count
        for (id, (offset, length)) in extents.iter().enumerate() {
            iloc.extend_from_slice(&(id as u16 + 1).to_be_bytes()); // item id
            iloc.extend_from_slice(&0u16.to_be_bytes()); // data reference
            iloc.extend_from_slice(&1u16.to_be_bytes()); // extents
            iloc.extend_from_slice(&offset.to_be_bytes());
            iloc.extend_from_slice(&length.to_be_bytes());
        }
        let mut meta = vec![0, 0, 0, 0];
        put_box(&mut meta, b"hdlr", b"\0\0\0\0\0\0\0\0pict\0\0\0\0\0\0\0\0\0\0\0\0\0");
        put_box(&mut meta, b"pitm", &pitm);
        put_box(&mut meta, b"iloc", &iloc);
        put_box(&mut meta, b"iinf", &iinf);
        put_box(&mut meta, b"iprp", &iprp);
        let mut file = Vec::new();
        put_box(&mut file, b"ftyp", &ftyp);
        put_box(&mut file, b"meta", &meta);
        file
    };
    let head = build(0).len() as u32 + 8;
    let mut file = build(head);
    put_box(&mut file, b"mdat", coded);
    file
}

/// An AVIF whose `ispe` says `stated` around an AV1 stream of `coded` size.
pub fn lying_avif(stated: (u32, u32), coded: (u32, u32)) -> Vec<u8> {
    let sequence = av1_sequence_header(coded.0, coded.1);
    let mut av1c = vec![0x81, 0x00, 0x0C, 0x00];
    av1c.extend_from_slice(&av1_sequence_header(stated.0, stated.1));
    // The coded item: a sequence header, then (absent) frame data.
    heif(b"avif", stated, (b"av1C", &av1c), &sequence)
}

/// A HEIC whose `ispe` says `stated` around an H.265 stream of `coded` size.
pub fn lying_heic(stated: (u32, u32), coded: (u32, u32)) -> Vec<u8> {
    let mut hvcc = vec![
        1, 1, 0x60, 0, 0, 0, 0x90, 0, 0, 0, 0, 0, 93, 0xF0, 0, 0xFC, 0xFD, 0xF8, 0xF8, 0, 0, 0x0F,
    ];
    let config_sps = hevc_sps(stated.0, stated.1);
    hvcc.push(1); // one array
    hvcc.push(0x80 | 33);
    hvcc.extend_from_slice(&1u16.to_be_bytes());
    hvcc.extend_from_slice(&(config_sps.len() as u16).to_be_bytes());
    hvcc.extend_from_slice(&config_sps);
    let sps = hevc_sps(coded.0, coded.1);
    let mut item = (sps.len() as u32).to_be_bytes().to_vec();
    item.extend_from_slice(&sps);
    heif(b"heic", stated, (b"hvcC", &hvcc), &item)
}

/// A little-endian TIFF with one uncompressed 8-bit gray page per size in
/// `pages`: every page's header is real, pixel data is present only for
/// pages of at most 64 pixels (the others' strips point past the end).
pub fn multipage_tiff(pages: &[(u32, u32)]) -> Vec<u8> {
    let mut out = b"II*\0".to_vec();
    out.extend_from_slice(&8u32.to_le_bytes());
    for (i, &(w, h)) in pages.iter().enumerate() {
        let ifd_at = out.len();
        let entries = 8u16;
        let next = if i + 1 < pages.len() {
            ifd_at + 2 + 12 * usize::from(entries) + 4 + (w * h).min(64) as usize
        } else {
            0
        };
        let data_at = (ifd_at + 2 + 12 * usize::from(entries) + 4) as u32;
        let entry = |out: &mut Vec<u8>, tag: u16, kind: u16, value: u32| {
            out.extend_from_slice(&tag.to_le_bytes());
            out.extend_from_slice(&kind.to_le_bytes());
            out.extend_from_slice(&1u32.to_le_bytes());
            out.extend_from_slice(&value.to_le_bytes());
        };
        out.extend_from_slice(&entries.to_le_bytes());
        entry(&mut out, 256, 4, w); // width
        entry(&mut out, 257, 4, h); // length
        entry(&mut out, 258, 3, 8); // bits per sample
        entry(&mut out, 259, 3, 1); // no compression
        entry(&mut out, 262, 3, 1); // black is zero
        entry(&mut out, 273, 4, data_at); // strip offset
        entry(&mut out, 278, 4, h); // rows per strip
        entry(&mut out, 279, 4, w * h); // strip bytes
        out.extend_from_slice(&(next as u32).to_le_bytes());
        out.extend(std::iter::repeat_n(128u8, (w * h).min(64) as usize));
    }
    out
}

/// A GIF89a whose logical screen is `screen` with one frame per size in
/// `frames`, each a real, decodable image of one colour (LZW-coded here).
pub fn multiframe_gif(screen: (u16, u16), frames: &[(u16, u16)]) -> Vec<u8> {
    let mut out = b"GIF89a".to_vec();
    out.extend_from_slice(&screen.0.to_le_bytes());
    out.extend_from_slice(&screen.1.to_le_bytes());
    out.extend_from_slice(&[0x80, 0, 0]); // global colour table of 2 entries
    out.extend_from_slice(&[0, 0, 0, 255, 255, 255]);
    for (i, &(w, h)) in frames.iter().enumerate() {
        out.push(0x2C);
        out.extend_from_slice(&[0, 0, 0, 0]);
        out.extend_from_slice(&w.to_le_bytes());
        out.extend_from_slice(&h.to_le_bytes());
        out.push(0);
        out.push(2); // LZW minimum code size
        let data = lzw(usize::from(w) * usize::from(h), (i % 2) as u8);
        for block in data.chunks(255) {
            out.push(block.len() as u8);
            out.extend_from_slice(block);
        }
        out.push(0);
    }
    out.push(0x3B);
    out
}

/// GIF's LZW coding (minimum code size 2) of `pixels` pixels of `index`.
/// A run of one value codes as runs of length 1, 2, 3, ... (each run's code
/// is the table entry the previous one created), so no table is needed.
fn lzw(pixels: usize, index: u8) -> Vec<u8> {
    let (clear, end) = (4u32, 5u32);
    let mut out = Vec::new();
    let (mut acc, mut bits) = (0u64, 0u32);
    let mut emit = |code: u32, width: u32, out: &mut Vec<u8>| {
        acc |= u64::from(code) << bits;
        bits += width;
        while bits >= 8 {
            out.push(acc as u8);
            acc >>= 8;
            bits -= 8;
        }
    };
    emit(clear, 3, &mut out);
    let (mut next, mut width, mut run, mut remaining) = (6u32, 3u32, 1usize, pixels);
    while remaining > 0 {
        let len = run.min(remaining);
        let code = if len == 1 { u32::from(index) } else { 6 + len as u32 - 2 };
        emit(code, width, &mut out);
        remaining -= len;
        if remaining == 0 {
            break;
        }
        if next < 4096 {
            next += 1;
            if next > (1 << width) && width < 12 {
                width += 1;
            }
            run += 1;
        } else {
            emit(clear, width, &mut out);
            (next, width, run) = (6, 3, 1);
        }
    }
    emit(end, width, &mut out);
    if bits > 0 {
        out.push(acc as u8);
    }
    out
}
