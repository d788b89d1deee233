//! Everything the service does with untrusted bytes before ImageMagick sees
//! them: the magic-byte sniff, the reading of every size any layer claims
//! (containers, AV1 and HEVC headers, TIFF pages, GIF and WebP frames, the
//! image's end), the measure of its metadata (EXIF IFDs, inflated text and
//! profiles) and the limit checks. None of it may panic or hang on any
//! input, whatever format the bytes are read as.
#![no_main]

use imaginator::pipeline::format::{ImageFormat, check_dimensions, header_dimensions};
use imaginator::pipeline::layers::{claims, precheck};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let format = ImageFormat::sniff(data);
    if let Some((w, h)) = header_dimensions(data) {
        let _ = check_dimensions(w, h, 16_384, 16_384, 50_000_000);
    }
    if let Some(f) = format {
        assert_eq!(ImageFormat::parse(f.name()), Some(f));
    }
    for f in ImageFormat::ALL {
        if let Some(c) = claims(data, f) {
            let _ = c.check(16_384, 16_384, 50_000_000, 100);
            if let Some(end) = c.end {
                let _ = data.get(..end);
            }
        }
        let _ = precheck(data, f, 16_384, 16_384, 50_000_000, 100);
    }
});
