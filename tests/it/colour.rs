//! Colour management: whatever colour space a photo comes in (an embedded
//! Adobe RGB, ProPhoto, CMYK or gray profile, CMYK without one, a 16-bit PNG
//! with `iCCP`, a PNG whose `gAMA` says it is not sRGB, a camera's EXIF
//! Adobe RGB marker), every alias writes 8-bit sRGB without a profile, and
//! its pixels match the `magick` CLI doing the conversion right as closely as
//! the same alias matches `magick` on an sRGB copy of the same photo.
//!
//! The inputs are made here, from the photo fixture, with `magick -profile`
//! and Debian's ICC profiles (`colord-data`, `icc-profiles-free`: installed
//! by scripts/setup).

use crate::common::{TestServer, aliases_with, decode, fixture, psnr, repo_path};
use std::path::{Path, PathBuf};
use std::process::Command;

const COLORD: &str = "/usr/share/color/icc/colord";

fn icc(name: &str) -> String {
    format!("{COLORD}/{name}")
}

fn srgb_icc() -> String {
    repo_path("src/magick/profiles/sRGB.icc").display().to_string()
}

fn fogra_icc() -> String {
    repo_path("src/magick/profiles/FOGRA39L.icc").display().to_string()
}

fn magick(args: &[&str]) {
    let status = Command::new("magick")
        .args(args)
        .status()
        .expect("the magick command-line tool (installed by scripts/setup)");
    assert!(status.success(), "magick {args:?}");
}

fn identify(bytes: &[u8], format: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("out");
    std::fs::write(&file, bytes).unwrap();
    let out = Command::new("magick")
        .args(["identify", "-format", format])
        .arg(&file)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// One input: a file, the `magick` arguments that make its pixels sRGB
/// (placed right after the input), and the sRGB twin it is judged against.
struct Case {
    name: &'static str,
    file: PathBuf,
    to_srgb: Vec<String>,
    twin: &'static str,
}

/// The PNG `gAMA` case: a 16-bit gray PNG of the sRGB gray photo S, stored
/// the way its gAMA chunk (0.6) says, V = L^0.6 for the linear light L that S
/// encodes; so its sRGB rendition is S again.
fn gray_png_with_gamma(srgb_gray: &Path, out: &Path) {
    let gray = image::open(srgb_gray).unwrap().to_luma16();
    let (w, h) = gray.dimensions();
    let linear = |s: f64| {
        if s <= 0.04045 {
            s / 12.92
        } else {
            ((s + 0.055) / 1.055).powf(2.4)
        }
    };
    let encoded: Vec<u16> = gray
        .pixels()
        .map(|p| {
            let s = f64::from(p.0[0]) / 65535.0;
            (linear(s).powf(0.6) * 65535.0).round() as u16
        })
        .collect();
    let buffer = image::ImageBuffer::<image::Luma<u16>, Vec<u16>>::from_raw(w, h, encoded).unwrap();
    let mut png = Vec::new();
    buffer
        .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .unwrap();
    // gAMA goes right after IHDR (8-byte signature + 25-byte IHDR chunk).
    let mut chunk = 4u32.to_be_bytes().to_vec();
    let body = [b"gAMA".as_slice(), &60_000u32.to_be_bytes()].concat();
    chunk.extend_from_slice(&body);
    chunk.extend_from_slice(&crc32fast::hash(&body).to_be_bytes());
    let mut with_gamma = png[..33].to_vec();
    with_gamma.extend_from_slice(&chunk);
    with_gamma.extend_from_slice(&png[33..]);
    std::fs::write(out, with_gamma).unwrap();
}

/// A JPEG with the EXIF block a camera set to Adobe RGB writes.
fn with_adobe_rgb_exif(jpeg: &Path, out: &Path) {
    let src = std::fs::read(jpeg).unwrap();
    let block = imaginator::pipeline::exif::adobe_rgb_marker_block();
    let mut file = src[..2].to_vec();
    file.extend_from_slice(&[0xFF, 0xE1]);
    file.extend_from_slice(&((block.len() + 2) as u16).to_be_bytes());
    file.extend_from_slice(&block);
    file.extend_from_slice(&src[2..]);
    std::fs::write(out, file).unwrap();
}

/// Every input, made in `dir`.
fn cases(dir: &Path) -> Vec<Case> {
    let photo = repo_path("tests/fixtures/photo.jpg").display().to_string();
    let at = |name: &str| dir.join(name);
    let path = |name: &str| at(name).display().to_string();
    let (srgb, fogra) = (srgb_icc(), fogra_icc());
    // sRGB twins, made the same way as the inputs they stand beside.
    magick(&[&photo, "-quality", "92", &path("srgb.jpg")]);
    magick(&[&photo, "-depth", "16", &path("srgb16.png")]);
    magick(&[&photo, "-colorspace", "gray", "-quality", "92", &path("gray.jpg")]);
    magick(&[&photo, "-colorspace", "gray", "-depth", "16", &path("gray16.png")]);
    // Inputs whose pixels are in another space.
    for (name, profile) in [("adobe.jpg", "AdobeRGB1998.icc"), ("prophoto.jpg", "ProPhotoRGB.icc")] {
        magick(&[
            &photo,
            "-profile",
            &srgb,
            "-profile",
            &icc(profile),
            "-quality",
            "92",
            &path(name),
        ]);
    }
    magick(&[
        &photo,
        "-profile",
        &srgb,
        "-profile",
        &icc("AdobeRGB1998.icc"),
        "-strip",
        "-quality",
        "92",
        &path("adobe-bare.jpg"),
    ]);
    with_adobe_rgb_exif(&at("adobe-bare.jpg"), &at("adobe-exif.jpg"));
    magick(&[
        &photo,
        "-profile",
        &srgb,
        "-profile",
        &fogra,
        "-quality",
        "92",
        &path("cmyk.jpg"),
    ]);
    magick(&[
        &photo,
        "-profile",
        &srgb,
        "-profile",
        &fogra,
        "-strip",
        "-quality",
        "92",
        &path("cmyk-bare.jpg"),
    ]);
    magick(&[
        &photo,
        "-profile",
        &srgb,
        "-profile",
        &icc("AdobeRGB1998.icc"),
        "-depth",
        "16",
        &path("adobe16.png"),
    ]);
    magick(&[
        &path("gray.jpg"),
        "-profile",
        "/usr/share/color/icc/Gray.icc",
        "-quality",
        "92",
        &path("gray-profile.jpg"),
    ]);
    gray_png_with_gamma(&at("gray16.png"), &at("gray-gamma.png"));

    let convert = |from: &[&str]| from.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    vec![
        Case {
            name: "JPEG, sRGB",
            file: at("srgb.jpg"),
            to_srgb: vec![],
            twin: "srgb.jpg",
        },
        Case {
            name: "JPEG, Adobe RGB profile",
            file: at("adobe.jpg"),
            to_srgb: convert(&["-profile", &srgb]),
            twin: "srgb.jpg",
        },
        Case {
            name: "JPEG, ProPhoto RGB profile",
            file: at("prophoto.jpg"),
            to_srgb: convert(&["-profile", &srgb]),
            twin: "srgb.jpg",
        },
        Case {
            name: "JPEG, EXIF Adobe RGB (R03), no profile",
            file: at("adobe-exif.jpg"),
            to_srgb: convert(&["-profile", &icc("AdobeRGB1998.icc"), "-profile", &srgb]),
            twin: "srgb.jpg",
        },
        Case {
            name: "JPEG, CMYK with FOGRA39 profile",
            file: at("cmyk.jpg"),
            to_srgb: convert(&["-profile", &srgb]),
            twin: "srgb.jpg",
        },
        Case {
            name: "JPEG, Adobe CMYK, no profile",
            file: at("cmyk-bare.jpg"),
            to_srgb: convert(&["-profile", &fogra, "-profile", &srgb]),
            twin: "srgb.jpg",
        },
        Case {
            name: "PNG 16-bit, Adobe RGB iCCP",
            file: at("adobe16.png"),
            to_srgb: convert(&["-profile", &srgb]),
            twin: "srgb16.png",
        },
        Case {
            name: "JPEG, gray with gray profile",
            file: at("gray-profile.jpg"),
            to_srgb: convert(&["-profile", &srgb]),
            twin: "gray.jpg",
        },
        Case {
            name: "PNG 16-bit gray, gAMA 0.6",
            file: at("gray-gamma.png"),
            // Its sRGB rendition is the gray photo it was made from.
            to_srgb: vec![],
            twin: "gray16.png",
        },
    ]
}

/// The shipped aliases, the `magick` geometry that does what each does, and
/// the JPEG quality each writes.
const ALIASES: [(&str, &[&str], &str); 3] = [
    ("thumbnail", &["-resize", "400x400>"], "80"),
    (
        "avatar",
        &["-resize", "256x256^", "-gravity", "center", "-extent", "256x256"],
        "85",
    ),
    ("preview", &["-resize", "1280x1280>"], "85"),
];

/// Above this, two pictures are indistinguishable: a case and its twin both
/// above it are equally good.
const INDISTINGUISHABLE_DB: f64 = 50.0;

/// `alias`'s output for `file`, and its PSNR against the `magick` CLI doing
/// the same whole job right: the conversion `to_srgb`, the same geometry,
/// and the same output format, quality and JPEG chroma sampling (so both
/// carry the encoder's loss, and the score measures the pipeline, not how
/// well the content compresses).
async fn render_and_score(
    server: &TestServer,
    dir: &Path,
    (alias, geometry, quality): (&str, &[&str], &str),
    file: &Path,
    to_srgb: &[String],
    reference_input: &Path,
) -> (Vec<u8>, f64) {
    let response = server
        .post(&format!("/transform/{alias}"), std::fs::read(file).unwrap())
        .await;
    assert_eq!(response.status(), 200, "{alias} on {}", file.display());
    let body = response.bytes().await.unwrap().to_vec();
    let (format, ours) = decode(&body);
    let extension = if format == image::ImageFormat::Png {
        "png"
    } else {
        "jpg"
    };
    let reference = dir.join(format!("ref-{alias}.{extension}"));
    let mut args: Vec<String> = vec![reference_input.display().to_string()];
    args.extend(to_srgb.iter().cloned());
    args.extend(geometry.iter().map(|s| s.to_string()));
    // The service's JPEG chroma: 4:2:0 below quality 90.
    let sampling = if quality.parse::<u8>().unwrap() < 90 {
        "2x2,1x1,1x1"
    } else {
        "1x1,1x1,1x1"
    };
    args.extend(
        [
            "-strip",
            "-depth",
            "8",
            "-quality",
            quality,
            "-sampling-factor",
            sampling,
        ]
        .map(String::from),
    );
    args.push(reference.display().to_string());
    magick(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let score = psnr(&ours, &image::open(&reference).unwrap());
    (body, score)
}

#[tokio::test]
async fn every_alias_writes_8_bit_srgb_whatever_colour_space_comes_in() {
    let dir = tempfile::tempdir().unwrap();
    let cases = cases(dir.path());
    // The Adobe CMYK input really is the inverted kind (APP14 "Adobe").
    let bare = std::fs::read(dir.path().join("cmyk-bare.jpg")).unwrap();
    assert!(bare.windows(5).any(|w| w == b"Adobe"), "an Adobe APP14 marker");
    let server = TestServer::start().await;
    let mut failures = Vec::new();
    println!(
        "{:<40} {:<10} {:>9} {:>9}  output",
        "input", "alias", "PSNR dB", "twin dB"
    );
    for job in ALIASES {
        let alias = job.0;
        for case in &cases {
            let twin = dir.path().join(case.twin);
            let reference_input = if case.name.contains("gAMA") { &twin } else { &case.file };
            let (body, score) =
                render_and_score(&server, dir.path(), job, &case.file, &case.to_srgb, reference_input).await;
            let (_, twin_score) = render_and_score(&server, dir.path(), job, &twin, &[], &twin).await;
            let facts = identify(&body, "%m %[colorspace] %[depth] icc=%[profile:icc]");
            println!("{:<40} {alias:<10} {score:>9.2} {twin_score:>9.2}  {facts}", case.name);
            let mut words = facts.split_whitespace();
            let (format, space, depth, profile) = (words.next(), words.next(), words.next(), words.next());
            if !matches!(space, Some("sRGB" | "Gray")) {
                failures.push(format!("{} / {alias}: colour space {space:?}", case.name));
            }
            if depth != Some("8") {
                failures.push(format!("{} / {alias}: {depth:?} bits in {format:?}", case.name));
            }
            if profile != Some("icc=") {
                failures.push(format!("{} / {alias}: a profile is left: {profile:?}", case.name));
            }
            if score < twin_score.min(INDISTINGUISHABLE_DB) - 1.0 {
                failures.push(format!(
                    "{} / {alias}: PSNR {score:.2} dB, more than 1 dB below the sRGB twin's {twin_score:.2}",
                    case.name
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    server.stop().await;
}

#[tokio::test]
async fn uploads_renditions_get_the_same_colour_as_transform() {
    let dir = tempfile::tempdir().unwrap();
    let cases = cases(dir.path());
    let adobe = std::fs::read(&cases[1].file).unwrap();
    let server = TestServer::start().await;
    let (status, json) = server.upload(adobe.clone()).await;
    assert_eq!(status, 201, "{json}");
    let id = json["id"].as_str().unwrap();
    let rendition = server
        .get(&format!("/images/{id}/thumbnail"))
        .await
        .bytes()
        .await
        .unwrap();
    let transformed = server.post("/transform/thumbnail", adobe).await.bytes().await.unwrap();
    assert_eq!(rendition, transformed, "one colour policy on every path");
    server.stop().await;
}

#[tokio::test]
async fn an_alias_may_keep_the_profile_or_write_16_bit_png() {
    let dir = tempfile::tempdir().unwrap();
    let cases = cases(dir.path());
    let aliases = [
        (
            "keep",
            "chain = \"fit-in(400,400)\"\n[output]\nformat = \"jpeg\"\nkeep_icc = true\n",
        ),
        (
            "deep",
            "chain = \"fit-in(400,400)\"\n[output]\nformat = \"png\"\ndepth = 16\n",
        ),
    ];
    let server = TestServer::start_with(&aliases, |_| {}).await;
    // keep_icc: the Adobe RGB pixels and their profile, untouched.
    let adobe = &cases[1].file;
    let body = server.post("/transform/keep", std::fs::read(adobe).unwrap()).await;
    assert_eq!(body.status(), 200);
    let body = body.bytes().await.unwrap();
    assert!(identify(&body, "%[profile:icc]").contains("Adobe RGB"), "profile kept");
    let reference = dir.path().join("keep.png");
    magick(&[
        &adobe.display().to_string(),
        "-resize",
        "400x400>",
        "-strip",
        &reference.display().to_string(),
    ]);
    let (_, ours) = decode(&body);
    assert!(
        psnr(&ours, &image::open(&reference).unwrap()) > 30.0,
        "pixels not converted"
    );
    // depth = 16: a 16-bit PNG stays 16-bit, converted to sRGB.
    let png16 = std::fs::read(&cases[6].file).unwrap();
    let deep = server
        .post("/transform/deep", png16.clone())
        .await
        .bytes()
        .await
        .unwrap();
    assert_eq!(
        identify(&deep, "%[depth] %[colorspace] icc=%[profile:icc]"),
        "16 sRGB icc="
    );
    // The default keeps nothing: the same input through preview is 8-bit.
    let preview = server.post("/transform/preview", png16).await.bytes().await.unwrap();
    assert_eq!(identify(&preview, "%m %[depth]"), "PNG 8");
    // Alias files refuse depths other than 8 and 16.
    let broken = aliases_with(&[("odd", "chain = \"fit-in(10,10)\"\n[output]\ndepth = 12\n")]);
    let err = imaginator::pipeline::alias::Alias::from_file(&broken.path().join("odd.toml")).unwrap_err();
    assert!(err.to_string().contains("depth"), "{err}");
    server.stop().await;
}

#[tokio::test]
async fn the_fixture_cmyk_jpeg_comes_out_srgb() {
    let cmyk = fixture("cmyk.jpg");
    assert_eq!(identify(&cmyk, "%[colorspace]"), "CMYK");
    let server = TestServer::start().await;
    let body = server.post("/transform/thumbnail", cmyk).await.bytes().await.unwrap();
    assert_eq!(identify(&body, "%m %[colorspace]"), "JPEG sRGB");
    let dir = tempfile::tempdir().unwrap();
    let reference = dir.path().join("ref.png");
    magick(&[
        &repo_path("tests/fixtures/cmyk.jpg").display().to_string(),
        "-profile",
        &fogra_icc(),
        "-profile",
        &srgb_icc(),
        "-resize",
        "400x400>",
        "-strip",
        &reference.display().to_string(),
    ]);
    let (_, ours) = decode(&body);
    let score = psnr(&ours, &image::open(&reference).unwrap());
    assert!(score > 30.0, "PSNR {score:.2} dB against magick's FOGRA39 to sRGB");
    server.stop().await;
}
