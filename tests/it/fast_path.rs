//! The fast path (`imaginator::fast`) gives the result ImageMagick gives.
//! Every JPEG of the fixtures and of the Pillow and Go corpora (orientations
//! 1-8, 4:4:4 to 4:1:0 sampling, progressive, gray, JFIF in dpi and dpcm,
//! EXIF without JFIF, ICC profiles, CMYK, truncated files), through the
//! plans the fast path takes, rendered once with it and once with
//! ImageMagick alone: the same outcome (image or error status), and for
//! images the same format, size, component count, chroma sampling, coding
//! process and JFIF resolution, pixels within MIN_PSNR, bytes within 3% (or 32 bytes). Inputs it must not
//! take (CMYK, a non-sRGB profile, compose, other operations) fall back to
//! ImageMagick.

use crate::common;

use imaginator::config::Limits;
use imaginator::magick;
use imaginator::pipeline::Plan;
use imaginator::pipeline::alias::AliasSet;
use imaginator::pipeline::chain::compile;
use imaginator::pipeline::format::ImageFormat;
use imaginator::pipeline::parse::{ParseLimits, parse_chain};
use imaginator::render::{Job, JobError, Rendered, Source};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// The two paths resize with different implementations of the same filter
/// (ImageMagick in 16-bit floating point, the SIMD resizer in 8-bit fixed
/// point); the lowest PSNR measured between them over this whole set is
/// recorded in docs/benchmarks.md.
const MIN_PSNR: f64 = 38.0;

/// How much lower a fast-path WebP's or AVIF's PSNR against the plan's
/// lossless result may be than ImageMagick's. The largest measured: 0.34 dB
/// (iptc.jpg to AVIF q65 at libaom speed 7, both near 40 dB, where the two
/// resizers' difference starts to show); WebP 0.24 dB.
const MAX_WEBP_LOSS_DB: f64 = 0.4;

/// The plans the fast path takes (and one per filter it reproduces).
const PLANS: &[&str] = &[
    "fit-in(300,300):quality(80)",
    "cover(200,120):quality(85)",
    "cover(120,200,south-east)",
    "resize(400,0)",
    "resize(123,77,lanczos):quality(90)",
    "resize(0,100,mitchell)",
    "resize(150,150,triangle):progressive()",
    "quality(75)",
    // WebP and AVIF out: libwebp and libheif with ImageMagick's writer settings.
    "fit-in(300,300):format(webp):quality(75)",
    "cover(200,120):format(webp)",
    "fit-in(300,300):format(avif):quality(65)",
    "resize(200,0):format(avif):quality(90)",
];

/// Decodes what the test's `image` crate cannot (AVIF) with the magick CLI.
fn decode_any(bytes: &[u8]) -> image::DynamicImage {
    if image::guess_format(bytes).is_ok_and(|f| f != image::ImageFormat::Avif) {
        return common::decode(bytes).1;
    }
    let mut child = std::process::Command::new("magick")
        .args(["-", "png:-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("magick CLI");
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), bytes).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "magick could not decode the output");
    common::decode(&out.stdout).1
}

pub(crate) fn plan(steps: &str) -> Plan {
    let chain = parse_chain(&format!("download(o:a.jpg):{steps}"), ParseLimits::default()).unwrap();
    compile(&chain, &AliasSet::default(), true).unwrap().plan
}

pub(crate) fn render(bytes: &[u8], plan: &Plan, fast_path: bool) -> Result<Rendered, JobError> {
    let limits = Limits::default();
    magick::init(&limits).unwrap();
    let job = Job {
        sources: vec![Source {
            id: imaginator::storage::ImageId::of(bytes),
            bytes: bytes::Bytes::copy_from_slice(bytes),
            format: ImageFormat::sniff(bytes).unwrap_or(ImageFormat::Jpeg),
            density: None,
            hold: None,
        }],
        plan: plan.clone(),
        limits,
        deadline: Instant::now() + Duration::from_secs(60),
        decode_headroom: 1.0,
        fast_path,
    };
    // The service's choice: the fast path when it takes the job, else ImageMagick.
    if fast_path && let Ok(result) = imaginator::fast::try_render(&job) {
        return result;
    }
    magick::run(job)
}

/// (components, progressive, JFIF density bytes, each component's sampling
/// byte) from the JPEG's markers.
fn jpeg_facts(jpeg: &[u8]) -> (u8, bool, Option<[u8; 5]>, Vec<u8>) {
    let (mut at, mut jfif, mut sof) = (2, None, None);
    while at + 4 <= jpeg.len() && jpeg[at] == 0xFF {
        let marker = jpeg[at + 1];
        let len = usize::from(u16::from_be_bytes([jpeg[at + 2], jpeg[at + 3]]));
        let body = &jpeg[at + 4..(at + 2 + len).min(jpeg.len())];
        match marker {
            0xE0 if body.starts_with(b"JFIF\0") && body.len() >= 12 => {
                jfif = Some(body[7..12].try_into().unwrap());
            }
            0xC0..=0xC2 => {
                let sampling = (0..usize::from(body[5]))
                    .filter_map(|c| body.get(7 + 3 * c).copied())
                    .collect();
                sof = Some((body[5], marker == 0xC2, sampling));
                break;
            }
            _ => {}
        }
        at += 2 + len;
    }
    let (components, progressive, sampling) = sof.expect("a frame header");
    (components, progressive, jfif, sampling)
}

/// `jpeg` with an XMP packet (APP1) right after SOI that claims another
/// orientation and resolution in the tiff: namespace, as Lightroom and
/// Photoshop write it.
fn with_xmp_tiff(jpeg: &[u8]) -> Vec<u8> {
    let packet = concat!(
        "http://ns.adobe.com/xap/1.0/\0",
        "<x:xmpmeta xmlns:x=\"adobe:ns:meta/\"><rdf:RDF xmlns:rdf=\"http://www.w3.org/1999/02/22-rdf-syntax-ns#\">",
        "<rdf:Description xmlns:tiff=\"http://ns.adobe.com/tiff/1.0/\">",
        "<tiff:Orientation>8</tiff:Orientation><tiff:XResolution>300/1</tiff:XResolution>",
        "<tiff:YResolution>300/1</tiff:YResolution><tiff:ResolutionUnit>3</tiff:ResolutionUnit>",
        "</rdf:Description></rdf:RDF></x:xmpmeta>"
    );
    let len = u16::try_from(packet.len() + 2).unwrap().to_be_bytes();
    let mut out = jpeg[..2].to_vec();
    out.extend_from_slice(&[0xFF, 0xE1, len[0], len[1]]);
    out.extend_from_slice(packet.as_bytes());
    out.extend_from_slice(&jpeg[2..]);
    out
}

/// Width and height from the JPEG's frame header (before any EXIF orientation).
fn stored_size(jpeg: &[u8]) -> (u32, u32) {
    let mut at = 2;
    while at + 9 <= jpeg.len() && jpeg[at] == 0xFF {
        let len = usize::from(u16::from_be_bytes([jpeg[at + 2], jpeg[at + 3]]));
        if matches!(jpeg[at + 1], 0xC0..=0xC2) {
            let b = &jpeg[at + 5..at + 9];
            return (
                u32::from(u16::from_be_bytes([b[2], b[3]])),
                u32::from(u16::from_be_bytes([b[0], b[1]])),
            );
        }
        at += 2 + len;
    }
    (0, 0)
}

/// A size with its shorter side first, so that a rotation does not matter.
fn sorted((a, b): (u32, u32)) -> (u32, u32) {
    (a.min(b), a.max(b))
}

fn jpegs() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = ["photo.jpg", "oriented.jpg", "cmyk.jpg"]
        .iter()
        .map(|f| common::repo_path(&format!("tests/fixtures/{f}")))
        .collect();
    let corpus = std::env::var("IMAGINATOR_CORPUS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| common::repo_path("target/corpus"));
    assert!(
        corpus.join("pillow").is_dir(),
        "corpora missing: run tests/corpus/fetch"
    );
    let mut found: Vec<PathBuf> = common::files_under(&corpus)
        .into_iter()
        .map(|(p, _)| p)
        .filter(|p| {
            let name = p.to_string_lossy().to_ascii_lowercase();
            (name.ends_with(".jpg") || name.ends_with(".jpeg")) && std::fs::metadata(p).is_ok_and(|m| m.len() < 4 << 20)
        })
        .collect();
    found.sort();
    files.extend(found);
    files
}

#[test]
fn the_fast_path_gives_imagemagicks_result() {
    let mut fast_taken = 0;
    let mut declined = Vec::new();
    let mut worst = (f64::INFINITY, String::new());
    let mut bytes_ratio = (f64::INFINITY, 0.0f64);
    let mut inputs = Vec::new();
    for file in jpegs() {
        let input = std::fs::read(&file).unwrap();
        if ImageFormat::sniff(&input) != Some(ImageFormat::Jpeg) {
            continue;
        }
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        inputs.push((format!("{name}+xmp"), with_xmp_tiff(&input)));
        inputs.push((name, input));
    }
    let (mut xmp_fast, mut webp_fast, mut avif_fast, mut webp_loss) = (0, 0, 0, f64::NEG_INFINITY);
    for (name, input) in inputs {
        for steps in PLANS {
            let plan = plan(steps);
            let reference = render(&input, &plan, false);
            let fast = render(&input, &plan, true);
            let case = format!("{name} {steps}");
            match (&reference, &fast) {
                (Ok(r), Ok(f)) => {
                    assert_eq!(r.engine, "imagemagick");
                    if f.engine != "fast" {
                        // Enlarging is ImageMagick's: the fast path only shrinks.
                        let (stored, out) = (sorted(stored_size(&input)), sorted((r.size.width, r.size.height)));
                        if !(out.0 > stored.0 || out.1 > stored.1) {
                            declined.push(case);
                        }
                        continue;
                    }
                    fast_taken += 1;
                    webp_fast += usize::from(f.format != ImageFormat::Jpeg);
                    avif_fast += usize::from(f.format == ImageFormat::Avif);
                    xmp_fast += usize::from(name.ends_with("+xmp"));
                    assert_eq!((f.format, f.size), (r.format, r.size), "{case}");
                    if f.format == ImageFormat::Jpeg {
                        assert_eq!(
                            jpeg_facts(&f.bytes),
                            jpeg_facts(&r.bytes),
                            "{case}: components, progressive, JFIF, sampling"
                        );
                    } else if f.format == ImageFormat::Webp {
                        // A lossy WebP with no metadata: a plain RIFF WEBP VP8 file, as ImageMagick writes.
                        assert_eq!(&f.bytes[8..16], b"WEBPVP8 ", "{case}");
                        assert_eq!(&r.bytes[8..16], b"WEBPVP8 ", "{case}");
                    } else {
                        // AVIF: the same colour and chroma boxes (av1C's flags byte, nclx or none).
                        let boxes = |b: &[u8]| {
                            let av1c = b.windows(4).position(|w| w == b"av1C").map(|at| b[at + 6]);
                            (
                                av1c,
                                b.windows(4).any(|w| w == b"colr"),
                                b.windows(4).any(|w| w == b"Exif"),
                            )
                        };
                        assert_eq!(boxes(&f.bytes), boxes(&r.bytes), "{case}: av1C flags, colr, Exif");
                    }
                    let (a, b) = (decode_any(&r.bytes), decode_any(&f.bytes));
                    assert_eq!((a.width(), a.height()), (r.size.width, r.size.height), "{case}");
                    // At quality 90 and above the encoders lose less than the
                    // two resizers differ: there the paths are compared with
                    // each other, as JPEGs are.
                    if f.format != ImageFormat::Jpeg && plan.output.quality < 90 {
                        // Two lossy WebP (or AVIF) encodes of slightly
                        // different pixels differ more than two JPEGs do
                        // (36-37 dB on the fixture): each is held instead to
                        // the plan's lossless result from ImageMagick, and the
                        // fast one may not be worse than ImageMagick's.
                        let lossless = self::plan(
                            &steps
                                .replace("format(webp)", "format(png)")
                                .replace("format(avif)", "format(png)"),
                        );
                        let exact = common::decode(&render(&input, &lossless, false).unwrap().bytes).1;
                        let (ours, theirs) = (common::psnr(&exact, &b), common::psnr(&exact, &a));
                        assert!(
                            ours >= theirs - MAX_WEBP_LOSS_DB,
                            "{case}: fast {ours:.2} dB, ImageMagick {theirs:.2} dB against the lossless result"
                        );
                        webp_loss = webp_loss.max(theirs - ours);
                    } else {
                        let psnr = common::psnr(&a, &b);
                        assert!(psnr >= MIN_PSNR, "{case}: {psnr:.1} dB between the paths");
                        if psnr < worst.0 {
                            worst = (psnr, case.clone());
                        }
                    }
                    let ratio = f.bytes.len() as f64 / r.bytes.len() as f64;
                    bytes_ratio = (bytes_ratio.0.min(ratio), bytes_ratio.1.max(ratio));
                    let near = f.bytes.len().abs_diff(r.bytes.len()) <= 32;
                    // WebP's and AVIF's rate control amplifies the resizers'
                    // small differences more than JPEG's fixed tables do
                    // (0.953..1.021 measured with Lanczos).
                    let band = if f.format == ImageFormat::Jpeg {
                        0.97..=1.03
                    } else {
                        0.94..=1.06
                    };
                    assert!(
                        near || band.contains(&ratio),
                        "{case}: {} vs {} bytes",
                        f.bytes.len(),
                        r.bytes.len()
                    );
                }
                (Err(r), Err(f)) => {
                    assert_eq!(
                        std::mem::discriminant(f),
                        std::mem::discriminant(r),
                        "{case}: {f} vs {r}"
                    );
                }
                _ => panic!(
                    "{case}: ImageMagick {:?}, fast path {:?}",
                    reference.as_ref().map(|r| r.size),
                    fast.as_ref().map(|r| r.size)
                ),
            }
        }
    }
    eprintln!(
        "fast path took {fast_taken} renders ({webp_fast} WebP or AVIF, {avif_fast} AVIF, at most {webp_loss:.2} dB below ImageMagick's); lowest JPEG PSNR {:.1} dB ({}); bytes {:.3}..{:.3} of ImageMagick's; declined {} that do not enlarge",
        worst.0,
        worst.1,
        bytes_ratio.0,
        bytes_ratio.1,
        declined.len()
    );
    assert!(fast_taken >= 200, "the fast path took only {fast_taken} renders");
    assert!(
        webp_fast - avif_fast >= 50,
        "the fast path wrote only {} WebPs",
        webp_fast - avif_fast
    );
    assert!(avif_fast >= 50, "the fast path wrote only {avif_fast} AVIFs");
    // XMP's tiff: properties count only where EXIF has no orientation or
    // resolution; with both in EXIF the fast path takes the file.
    assert!(
        xmp_fast >= 8,
        "the fast path took {xmp_fast} renders of files with XMP tiff: properties"
    );
    let mut names: Vec<&str> = declined.iter().map(|d| d.split(' ').next().unwrap()).collect();
    names.dedup();
    eprintln!("declined: {names:?}");
    for must in [
        "photo.jpg",
        "oriented.jpg",
        "hopper_orientation_6.jpg",
        "video-005.gray.jpeg",
        "video-001.q50.410.progressive.jpeg",
        // Resolution from a Photoshop resource block.
        "photoshop-200dpi.jpg",
        "iptc.jpg",
    ] {
        assert!(
            !declined.iter().any(|d| d.split(' ').next() == Some(must)),
            "{must} should take the fast path"
        );
    }
    for must in ["cmyk.jpg", "video-001.cmyk.jpeg"] {
        assert!(
            declined.iter().any(|d| d.split(' ').next() == Some(must)),
            "{must} (CMYK) must fall back to ImageMagick"
        );
    }
}

/// Plans the fast path must leave to ImageMagick.
#[test]
fn other_plans_fall_back_to_imagemagick() {
    let photo = std::fs::read(common::repo_path("tests/fixtures/photo.jpg")).unwrap();
    for steps in [
        "fit-in(300,300):format(png)",
        "fit-in(300,300):grayscale()",
        "resize(100,100,point)",
        "fit-in(300,300):icc(keep)",
        "crop(0,0,100,100)",
        "fit-in(300,300):rotate(90)",
    ] {
        let rendered = render(&photo, &plan(steps), true).unwrap();
        assert_eq!(rendered.engine, "imagemagick", "{steps}");
    }
    let rendered = render(&photo, &plan("fit-in(300,300)"), true).unwrap();
    assert_eq!(rendered.engine, "fast");
}

/// JPEG output at quality < 90 is 4:2:0 (as libjpeg, libvips and Pillow
/// write it), 4:4:4 from 90 or with `chroma = "444"`, whatever the source's
/// sampling, and both engines write the same.
#[test]
fn jpeg_chroma_follows_quality_and_the_plan_in_both_engines() {
    let photo = common::fixture("photo.jpg");
    assert_eq!(jpeg_facts(&photo).3, [0x11, 0x11, 0x11], "the fixture is 4:4:4");
    for (steps, full, expected) in [
        ("fit-in(300,300):quality(80)", false, [0x22, 0x11, 0x11]),
        ("fit-in(300,300):quality(90)", false, [0x11, 0x11, 0x11]),
        ("fit-in(300,300):quality(80)", true, [0x11, 0x11, 0x11]),
    ] {
        let mut p = plan(steps);
        if full {
            p.output.chroma = imaginator::pipeline::Chroma::Full;
        }
        for fast in [true, false] {
            let r = render(&photo, &p, fast).unwrap();
            assert_eq!(r.engine, if fast { "fast" } else { "imagemagick" }, "{steps}");
            assert_eq!(
                jpeg_facts(&r.bytes).3,
                expected,
                "{steps} (444: {full}) on {}",
                r.engine
            );
        }
    }
}

/// The chunk types of a PNG in order, runs of IDAT counted once.
fn png_chunks(png: &[u8]) -> Vec<String> {
    let mut at = 8;
    let mut kinds: Vec<String> = Vec::new();
    while at + 8 <= png.len() {
        let len = u32::from_be_bytes(png[at..at + 4].try_into().unwrap()) as usize;
        let kind = String::from_utf8_lossy(&png[at + 4..at + 8]).into_owned();
        if kinds.last() != Some(&kind) {
            kinds.push(kind);
        }
        at += 12 + len;
    }
    kinds
}

/// 8-bit RGB and gray PNGs with nothing but pixels: the fixtures' photos
/// written by the `image` crate (as exporters write them), and the corpus
/// PNGs.
fn pngs() -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for name in ["photo.jpg", "oriented.jpg"] {
        let decoded = common::decode(&common::fixture(name)).1;
        for (suffix, image) in [
            ("png", image::DynamicImage::ImageRgb8(decoded.to_rgb8())),
            ("gray.png", image::DynamicImage::ImageLuma8(decoded.to_luma8())),
        ] {
            let mut png = Vec::new();
            image
                .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
                .unwrap();
            out.push((format!("{name}.{suffix}"), png));
        }
    }
    let corpus = std::env::var("IMAGINATOR_CORPUS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| common::repo_path("target/corpus"));
    let mut found: Vec<PathBuf> = common::files_under(&corpus)
        .into_iter()
        .map(|(p, _)| p)
        .filter(|p| p.to_string_lossy().to_ascii_lowercase().ends_with(".png"))
        .filter(|p| std::fs::metadata(p).is_ok_and(|m| m.len() < 4 << 20))
        .collect();
    found.sort();
    for p in found {
        let bytes = std::fs::read(&p).unwrap();
        if ImageFormat::sniff(&bytes) == Some(ImageFormat::Png) {
            out.push((p.file_name().unwrap().to_string_lossy().into_owned(), bytes));
        }
    }
    out
}

/// PNG in, PNG or WebP out: the fast path's file has ImageMagick's chunks,
/// size and pixels (within the resizers' difference), or the fast path
/// declines and ImageMagick renders it.
#[test]
fn the_png_fast_path_gives_imagemagicks_result() {
    let plans = [
        "fit-in(300,300):format(png)",
        "cover(200,120):format(png)",
        "resize(150,0,catrom):format(png)",
        "fit-in(300,300):format(webp):quality(75)",
    ];
    let (mut taken, mut worst, mut ratios) = (0, f64::INFINITY, (f64::INFINITY, 0.0f64));
    let mut taken_files = std::collections::BTreeSet::new();
    for (name, input) in pngs() {
        for steps in plans {
            let plan = plan(steps);
            let case = format!("{name} {steps}");
            let (reference, fast) = (render(&input, &plan, false), render(&input, &plan, true));
            let (r, f) = match (&reference, &fast) {
                (Ok(r), Ok(f)) => (r, f),
                (Err(r), Err(f)) => {
                    assert_eq!(
                        std::mem::discriminant(f),
                        std::mem::discriminant(r),
                        "{case}: {f} vs {r}"
                    );
                    continue;
                }
                _ => panic!(
                    "{case}: ImageMagick {:?}, fast path {:?}",
                    reference.as_ref().map(|r| r.size),
                    fast.as_ref().map(|r| r.size)
                ),
            };
            if f.engine != "fast" {
                continue;
            }
            taken += 1;
            taken_files.insert(name.clone());
            assert_eq!((f.format, f.size), (r.format, r.size), "{case}");
            let (a, b) = (common::decode(&r.bytes).1, common::decode(&f.bytes).1);
            if f.format == ImageFormat::Png {
                assert_eq!(png_chunks(&f.bytes), png_chunks(&r.bytes), "{case}: chunks");
                assert_eq!(
                    (f.bytes[24], f.bytes[25]),
                    (r.bytes[24], r.bytes[25]),
                    "{case}: depth, colour type"
                );
                let psnr = common::psnr(&a, &b);
                assert!(psnr >= MIN_PSNR, "{case}: {psnr:.1} dB between the paths");
                worst = worst.min(psnr);
            } else {
                let exact = common::decode(
                    &render(
                        &input,
                        &self::plan(&steps.replace("format(webp)", "format(png)")),
                        false,
                    )
                    .unwrap()
                    .bytes,
                )
                .1;
                let (ours, theirs) = (common::psnr(&exact, &b), common::psnr(&exact, &a));
                // Above 42 dB (flat graphics) the encoder loses less than the
                // resizers differ: there the paths are compared with each other.
                let between = common::psnr(&a, &b);
                assert!(
                    ours >= theirs - MAX_WEBP_LOSS_DB || theirs >= 42.0 && between >= MIN_PSNR,
                    "{case}: fast {ours:.2} dB, ImageMagick {theirs:.2} dB, {between:.2} dB between them"
                );
            }
            let ratio = f.bytes.len() as f64 / r.bytes.len() as f64;
            if r.bytes.len() > 16 << 10 {
                ratios = (ratios.0.min(ratio), ratios.1.max(ratio));
            }
            // Never larger than ImageMagick's by more than 5% (or 1 KiB for a
            // file of a few KiB). Smaller is allowed: the SIMD resizer's
            // 8-bit rounding leaves smoother low bits than ImageMagick's
            // 16-bit one, which deflate rewards (photos 0.92-1.00; a fractal
            // 0.81), and the pixels are held to MIN_PSNR above.
            let near = f.bytes.len() <= r.bytes.len() + 1024;
            assert!(
                near || ratio <= 1.05,
                "{case}: {} vs {} bytes",
                f.bytes.len(),
                r.bytes.len()
            );
        }
    }
    eprintln!(
        "PNG fast path took {taken} renders of {} files; lowest PSNR between the paths {worst:.1} dB; bytes {:.3}..{:.3} of ImageMagick's (files over 16 KiB)",
        taken_files.len(),
        ratios.0,
        ratios.1
    );
    assert!(taken_files.len() >= 100, "the PNG fast path took only {taken_files:?}");
    for must in ["photo.jpg.png", "photo.jpg.gray.png"] {
        assert!(taken_files.contains(must), "{must} should take the PNG fast path");
    }
    // Broken files: libpng's errors stay in png.c and the job goes to
    // ImageMagick, whose error (and wording) the service gives.
    for broken in ["invalid-trunc.png", "invalid-zlib.png"] {
        let bytes = common::fixture(broken);
        let p = plan("fit-in(100,100):format(png)");
        let (r, f) = (render(&bytes, &p, false), render(&bytes, &p, true));
        assert!(r.is_err(), "{broken} decodes?");
        assert_eq!(format!("{:?}", f.err()), format!("{:?}", r.err()), "{broken}");
    }
    // What it must leave to ImageMagick: transparency, a palette, 16 bits.
    let alpha = common::fixture("alpha.png");
    assert_eq!(
        render(&alpha, &plan("fit-in(100,100):format(png)"), true)
            .unwrap()
            .engine,
        "imagemagick"
    );
}
