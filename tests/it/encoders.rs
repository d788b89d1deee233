//! What each encoder is told: the plan's quality reaches every lossy format,
//! AVIF is full chroma, and a PNG is written at the stated zlib level
//! whatever quality the plan names (docs/benchmarks.md,
//! "Encoder settings", has what these settings cost and save).

use crate::common;
use crate::fast_path::{plan, render};
use imaginator::pipeline::Chroma;

/// The payload of the first box or chunk named `name`.
fn after<'a>(bytes: &'a [u8], name: &[u8]) -> &'a [u8] {
    let at = bytes
        .windows(name.len())
        .position(|w| w == name)
        .unwrap_or_else(|| panic!("no {} in the output", String::from_utf8_lossy(name)));
    &bytes[at + name.len()..]
}

/// Bytes of the photo fitted in 300x300 and written as `format` at
/// `quality` by ImageMagick, or by the fast path when `fast` (and it takes
/// the plan: JPEG, WebP and AVIF).
fn written_by(fast: bool, format: &str, quality: u8, chroma: Chroma) -> Vec<u8> {
    let photo = common::fixture("photo.jpg");
    let mut p = plan(&format!("fit-in(300,300):format({format}):quality({quality})"));
    p.output.chroma = chroma;
    let r = render(&photo, &p, fast).unwrap();
    assert_eq!(r.engine, if fast { "fast" } else { "imagemagick" }, "{format}");
    r.bytes.to_vec()
}

fn written(format: &str, quality: u8, chroma: Chroma) -> Vec<u8> {
    written_by(false, format, quality, chroma)
}

/// libheif reads the quality from ImageMagick's `ImageInfo`, not from the
/// image: until both were set, every AVIF was written at libheif's default
/// (50) whatever the plan said. Each lossy format must grow with quality.
#[test]
fn every_lossy_format_is_written_at_the_plans_quality() {
    for fast in [false, true] {
        for format in ["jpg", "webp", "avif"] {
            let low = written_by(fast, format, 30, Chroma::Subsampled).len();
            let mid = written_by(fast, format, 60, Chroma::Subsampled).len();
            let high = written_by(fast, format, 85, Chroma::Subsampled).len();
            assert!(
                low < mid && mid < high && high > 2 * low,
                "{format} (fast path: {fast}): {low} B at q30, {mid} B at q60, {high} B at q85"
            );
        }
    }
}

/// AVIF is 4:4:4 at every quality and whatever the plan's (JPEG) chroma,
/// in both engines (read from the `av1C` box: chroma_subsampling_x and _y
/// both 0).
#[test]
fn avif_is_full_chroma_in_both_engines() {
    for (quality, chroma) in [(50, Chroma::Subsampled), (80, Chroma::Subsampled), (90, Chroma::Full)] {
        for fast in [false, true] {
            let avif = written_by(fast, "avif", quality, chroma);
            // av1C: marker and version, profile and level, then the flags byte
            // (tier, high bitdepth, twelve bit, monochrome, subsampling x, y).
            let flags = after(&avif, b"av1C")[2];
            assert_eq!(
                flags & 0x1C,
                0,
                "q{quality}, {chroma:?}, fast path {fast}: av1C flags {flags:#04x}"
            );
        }
    }
}

/// A PNG is deflated at level 4 (the zlib header's FLEVEL says "fast", 1)
/// and is the same file whatever quality the plan names: ImageMagick would
/// read quality 80 as "level 8, no filters" and 88 as "run-length only".
#[test]
fn png_level_does_not_follow_the_plans_quality() {
    let reference = written("png", 85, Chroma::Subsampled);
    // IHDR's 13 bytes and CRC, then (no other chunk is written) IDAT:
    // its length, "IDAT", the zlib header CMF FLG.
    let flg = after(&reference, b"IDAT")[1];
    assert_eq!(flg >> 6, 1, "zlib FLEVEL of the first IDAT (FLG {flg:#04x})");
    for quality in [30, 80, 88] {
        assert!(
            written("png", quality, Chroma::Subsampled) == reference,
            "q{quality} changed the PNG"
        );
    }
}
