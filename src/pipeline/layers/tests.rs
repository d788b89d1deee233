use super::craft;
use super::*;

#[test]
fn an_avif_is_as_large_as_its_av1_sequence_header_says() {
    let avif = craft::lying_avif((100, 100), (16000, 16000));
    assert_eq!(ImageFormat::sniff(&avif), Some(ImageFormat::Avif));
    let c = claims(&avif, ImageFormat::Avif).unwrap();
    assert_eq!((c.max_width, c.max_height), (16000, 16000));
    assert_eq!(c.max_area, 256_000_000);
    // An honest one claims what it is.
    let honest = craft::lying_avif((640, 480), (640, 480));
    let c = claims(&honest, ImageFormat::Avif).unwrap();
    assert_eq!((c.max_width, c.max_height, c.max_area), (640, 480, 307_200));
}

#[test]
fn a_heic_is_as_large_as_its_hevc_sequence_parameter_set_says() {
    let heic = craft::lying_heic((100, 100), (12000, 9000));
    assert_eq!(ImageFormat::sniff(&heic), Some(ImageFormat::Heic));
    let c = claims(&heic, ImageFormat::Heic).unwrap();
    assert_eq!((c.max_width, c.max_height), (12000, 9000));
}

#[test]
fn every_tiff_page_and_gif_frame_counts() {
    let tiff = craft::multipage_tiff(&[(1, 1), (15000, 15000), (1, 1)]);
    let c = claims(&tiff, ImageFormat::Tiff).unwrap();
    assert_eq!((c.frames, c.max_width, c.max_area), (3, 15000, 225_000_000));
    let gif = craft::multiframe_gif((16, 16), &[(16, 16), (10000, 8000), (16, 16)]);
    let c = claims(&gif, ImageFormat::Gif).unwrap();
    assert_eq!((c.frames, c.max_width, c.max_height), (3, 10000, 8000));
}

#[test]
fn real_files_claim_their_real_size() {
    let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    for (name, format, size) in [
        ("photo.jpg", ImageFormat::Jpeg, (800, 500)),
        ("photo.gif", ImageFormat::Gif, (320, 200)),
        ("photo.webp", ImageFormat::Webp, (320, 200)),
        ("photo.tiff", ImageFormat::Tiff, (240, 150)),
        ("alpha.png", ImageFormat::Png, (240, 150)),
    ] {
        let bytes = std::fs::read(fixtures.join(name)).unwrap();
        let c = claims(&bytes, format).unwrap_or_else(|| panic!("{name}"));
        assert_eq!((c.max_width, c.max_height, c.frames), (size.0, size.1, 1), "{name}");
    }
}

#[test]
fn truncated_and_garbage_input_never_panics() {
    let samples = [
        craft::lying_avif((100, 100), (16000, 16000)),
        craft::lying_heic((100, 100), (12000, 9000)),
        craft::multipage_tiff(&[(1, 1), (15000, 15000)]),
        craft::multiframe_gif((16, 16), &[(10000, 8000)]),
    ];
    for sample in &samples {
        for cut in 0..sample.len() {
            for format in ImageFormat::ALL {
                let _ = claims(&sample[..cut], format);
            }
        }
        let mut flipped = sample.clone();
        for i in 0..flipped.len() {
            flipped[i] ^= 0xA5;
            for format in ImageFormat::ALL {
                let _ = claims(&flipped, format);
            }
            flipped[i] ^= 0xA5;
        }
    }
}

#[test]
fn the_end_of_the_image_is_found_and_trailing_bytes_are_not_part_of_it() {
    let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    for (name, format) in [
        ("photo.jpg", ImageFormat::Jpeg),
        ("oriented.jpg", ImageFormat::Jpeg),
        ("cmyk.jpg", ImageFormat::Jpeg),
        ("photo.gif", ImageFormat::Gif),
        ("photo.webp", ImageFormat::Webp),
        ("alpha.png", ImageFormat::Png),
    ] {
        let image = std::fs::read(fixtures.join(name)).unwrap();
        let end = claims(&image, format).unwrap().end;
        assert_eq!(end, Some(image.len()), "{name}: the file is exactly the image");
        let mut with_html = image.clone();
        with_html.extend_from_slice(b"<html><script>alert(1)</script></html>");
        assert_eq!(claims(&with_html, format).unwrap().end, Some(image.len()), "{name}");
    }
}

/// Items whose extents overlap again and again (each a different window
/// over the same bytes) would make the reader go over the file once per
/// item: refused as malformed, not half-read; a real layout (disjoint
/// extents, or one extent shared by several items) is read in full.
#[test]
fn overlapping_item_data_is_refused_and_shared_data_is_read_once() {
    let sequence = craft::av1_sequence_header(640, 480);
    let mut coded = sequence.clone();
    coded.resize(4096, 0);
    let mut av1c = vec![0x81, 0x00, 0x0C, 0x00];
    av1c.extend_from_slice(&sequence);
    let overlapping = craft::heif_items(b"avif", (640, 480), (b"av1C", &av1c), &coded, &|mdat, len| {
        (0..64).map(|i| (mdat + i, len - i)).collect()
    });
    let c = claims(&overlapping, ImageFormat::Avif).unwrap();
    assert!(c.malformed.is_some());
    assert!(matches!(
        c.check(16_384, 16_384, 50_000_000, 100),
        Err(Refusal::Malformed(_))
    ));

    let shared = craft::heif_items(b"avif", (640, 480), (b"av1C", &av1c), &coded, &|mdat, len| {
        vec![(mdat, len); 64]
    });
    let c = claims(&shared, ImageFormat::Avif).unwrap();
    assert_eq!((c.malformed, c.max_width, c.max_height), (None, 640, 480));
    assert_eq!(c.check(16_384, 16_384, 50_000_000, 100), Ok(()));
}
