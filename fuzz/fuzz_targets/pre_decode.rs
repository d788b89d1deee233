//! Everything the service does with untrusted bytes before ImageMagick sees
//! them: the magic-byte sniff, the header dimension probe, and the limit
//! check. None of it may panic or hang on any input.
#![no_main]

use imaginator::pipeline::format::{ImageFormat, check_dimensions, header_dimensions};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let format = ImageFormat::sniff(data);
    if let Some((w, h)) = header_dimensions(data) {
        let _ = check_dimensions(w, h, 16_384, 16_384, 50_000_000);
    }
    if let Some(f) = format {
        assert_eq!(ImageFormat::parse(f.name()), Some(f));
    }
});
