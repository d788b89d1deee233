//! Every operation against the `magick` command-line tool doing the same thing
//! to the same real photo: same dimensions, and a PSNR above the threshold
//! stated per operation (different but equivalent filters and decode paths
//! keep them from being byte-identical).

use crate::common::{TestServer, decode, fixture_origin, identify, psnr, repo_path};
use image::GenericImageView;
use std::process::Command;

/// The image every case starts from, as a chain source and as `magick` input.
const PHOTO: (&str, &[&str]) = ("download(fx:photo.jpg)", &["tests/fixtures/photo.jpg"]);
const ALPHA: (&str, &[&str]) = ("download(fx:alpha.png)", &["tests/fixtures/alpha.png"]);
const CMYK: (&str, &[&str]) = ("download(fx:cmyk.jpg)", &["tests/fixtures/cmyk.jpg"]);

/// (source, chain steps, equivalent magick arguments, minimum PSNR in dB)
type Case = (
    (&'static str, &'static [&'static str]),
    &'static str,
    &'static [&'static str],
    f64,
);

const CASES: &[Case] = &[
    (PHOTO, "resize(400,250)", &["-resize", "400x250!"], 32.0),
    (PHOTO, "resize(0,100)", &["-resize", "x100"], 30.0),
    (PHOTO, "fit-in(300,300)", &["-resize", "300x300>"], 32.0),
    (
        PHOTO,
        "cover(200,200)",
        &["-resize", "200x200^", "-gravity", "center", "-extent", "200x200"],
        30.0,
    ),
    (
        PHOTO,
        "cover(200,120,north-west)",
        &["-resize", "200x120^", "-gravity", "north-west", "-extent", "200x120"],
        30.0,
    ),
    (
        PHOTO,
        "crop(100,50,300,200)",
        &["-crop", "300x200+100+50", "+repage"],
        40.0,
    ),
    // photo.jpg records 300 dpi: 2 cm = 236 px, 1 cm = 118 px.
    (PHOTO, "crop(0,0,2hcm,1vcm)", &["-crop", "236x118+0+0", "+repage"], 40.0),
    (PHOTO, "flip()", &["-flip"], 40.0),
    (PHOTO, "flop()", &["-flop"], 40.0),
    (PHOTO, "rotate(90)", &["-rotate", "90"], 40.0),
    (
        PHOTO,
        "rotate(30,black)",
        &["-background", "black", "-rotate", "30"],
        35.0,
    ),
    (PHOTO, "grayscale()", &["-colorspace", "Gray"], 40.0),
    (PHOTO, "blur(2)", &["-blur", "0x2"], 40.0),
    (PHOTO, "sharpen(1)", &["-sharpen", "0x1"], 35.0),
    (PHOTO, "sepia(80)", &["-sepia-tone", "80%"], 35.0),
    // The original's quantum units: 52428 of 65535 is 80%.
    (PHOTO, "sepia(52428)", &["-sepia-tone", "80%"], 35.0),
    (PHOTO, "trim()", &["-trim", "+repage"], 40.0),
    (
        PHOTO,
        "dpi(300,300)",
        &["-units", "PixelsPerInch", "-density", "300"],
        40.0,
    ),
    (
        PHOTO,
        "extend(-20,-10,820,510)",
        &["-background", "white", "-extent", "840x520-20-10"],
        40.0,
    ),
    (
        PHOTO,
        "bg(red):gravity(center):extend(0,0,1000,600)",
        &["-background", "red", "-gravity", "center", "-extent", "1000x600"],
        40.0,
    ),
    (
        ALPHA,
        "alpha(remove)",
        &["-background", "white", "-alpha", "remove"],
        40.0,
    ),
    (
        ALPHA,
        "bg(navy):alpha(remove)",
        &["-background", "navy", "-alpha", "remove"],
        40.0,
    ),
    (ALPHA, "alpha(extract)", &["-alpha", "extract"], 40.0),
    (PHOTO, "colorspace(lab)", &["-colorspace", "Lab"], 40.0),
    (PHOTO, "colorspace(cmyk)", &["-colorspace", "CMYK"], 40.0),
    (
        CMYK,
        "profile(fogra39,srgb)",
        &[
            "-profile",
            "src/magick/profiles/FOGRA39L.icc",
            "-profile",
            "src/magick/profiles/sRGB.icc",
        ],
        40.0,
    ),
    (
        PHOTO,
        "profile(srgb,fogra39)",
        &[
            "-profile",
            "src/magick/profiles/sRGB.icc",
            "-profile",
            "src/magick/profiles/FOGRA39L.icc",
        ],
        40.0,
    ),
    (
        PHOTO,
        "resample(150,150)",
        &["-filter", "Lanczos", "-resample", "150"],
        40.0,
    ),
    (
        (
            "download(fx:photo.jpg,150)",
            &["-density", "150", "tests/fixtures/photo.jpg"],
        ),
        "resample(75,75)",
        &["-filter", "Lanczos", "-resample", "75"],
        40.0,
    ),
    (
        PHOTO,
        "pattern(100,100)",
        &[
            "-filter",
            "Lanczos",
            "-resize",
            "100x100",
            "-write",
            "mpr:tile",
            "+delete",
            "-size",
            "800x500",
            "tile:mpr:tile",
        ],
        40.0,
    ),
    (
        PHOTO,
        "repeat(2,2,300,200)",
        &[
            "-write",
            "mpr:o",
            "mpr:o",
            "-geometry",
            "+300+0",
            "-composite",
            "mpr:o",
            "-geometry",
            "+0+200",
            "-composite",
            "mpr:o",
            "-geometry",
            "+300+200",
            "-composite",
        ],
        40.0,
    ),
    // 1 cm at 300 dpi is 118 px: 798x498 after the shave, 1034x734 with the bleed.
    (
        PHOTO,
        "canvas(1,1)",
        &[
            "-shave",
            "1x1",
            "+repage",
            "-virtual-pixel",
            "mirror",
            "-filter",
            "point",
            "-set",
            "option:distort:viewport",
            "1034x734-118-118",
            "-distort",
            "SRT",
            "0",
            "+repage",
        ],
        40.0,
    ),
    (
        PHOTO,
        "compose(download(fx:alpha.png),over,100,50)",
        &["tests/fixtures/alpha.png", "-geometry", "+100+50", "-composite"],
        40.0,
    ),
    (
        PHOTO,
        "gravity(south-east):compose(download(fx:alpha.png),multiply,10,20)",
        &[
            "-gravity",
            "southeast",
            "tests/fixtures/alpha.png",
            "-geometry",
            "+10+20",
            "-compose",
            "multiply",
            "-composite",
        ],
        40.0,
    ),
    (
        PHOTO,
        "compose(resize(download(fx:alpha.png),120,75),screen,0.5w,0.5h)",
        &[
            "(",
            "tests/fixtures/alpha.png",
            "-filter",
            "Lanczos",
            "-resize",
            "120x75!",
            ")",
            "-geometry",
            "+400+250",
            "-compose",
            "screen",
            "-composite",
        ],
        40.0,
    ),
];

/// A server with built-in filters on and `fx:` naming the fixtures' origin.
async fn reference_server() -> TestServer {
    let origin = fixture_origin().await;
    TestServer::start_with(&[], |s| {
        s.allow_builtin_filters = true;
        s.domains.insert("fx".into(), origin);
    })
    .await
}

#[tokio::test]
async fn every_operation_matches_the_magick_cli() {
    let server = reference_server().await;
    let dir = tempfile::tempdir().unwrap();
    let mut failures = Vec::new();
    for ((source, input), steps, args, threshold) in CASES {
        let response = server.get(&format!("/{source}:{steps}:format(png)")).await;
        let status = response.status();
        let body = response.bytes().await.unwrap();
        assert_eq!(status, 200, "{steps}: {}", String::from_utf8_lossy(&body));
        let (_, ours) = decode(&body);

        let out = dir.path().join("reference.png");
        let status = Command::new("magick")
            .current_dir(repo_path(""))
            .args(*input)
            .args(*args)
            .arg("-strip")
            .arg(&out)
            .status()
            .expect("the magick command-line tool (installed by scripts/setup)");
        assert!(status.success(), "magick {args:?}");
        let reference = image::open(&out).unwrap();
        if ours.dimensions() != reference.dimensions() {
            failures.push(format!(
                "{steps}: {:?} vs magick {:?}",
                ours.dimensions(),
                reference.dimensions()
            ));
            continue;
        }
        let score = psnr(&ours, &reference);
        println!(
            "{steps:<40} {:>5}x{:<5} PSNR {score:>6.2} dB (threshold {threshold})",
            ours.width(),
            ours.height()
        );
        if score < *threshold {
            failures.push(format!(
                "{steps}: PSNR {score:.2} dB < {threshold} against magick {args:?}"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    server.stop().await;
}

#[tokio::test]
async fn dpi_records_the_resolution_in_the_file() {
    let server = reference_server().await;
    let dir = tempfile::tempdir().unwrap();
    // PNG stores pixels per metre, so ImageMagick may report either unit: compare in dpi.
    // cm() is the printed size, as in the original: 800x500 px over 20x12.5 cm is 101.6 dpi.
    for (step, want) in [("dpi(300,150)", (300.0, 150.0)), ("cm(20,12.5)", (101.6, 101.6))] {
        let bytes = server
            .get(&format!("/download(fx:photo.jpg):{step}:format(png)"))
            .await
            .bytes()
            .await
            .unwrap();
        let file = dir.path().join("out.png");
        std::fs::write(&file, &bytes).unwrap();
        let out = Command::new("magick")
            .args(["identify", "-format", "%x %y %U"])
            .arg(&file)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        let parts: Vec<&str> = text.split_whitespace().collect();
        let scale = if parts[2] == "PixelsPerCentimeter" { 2.54 } else { 1.0 };
        let (x, y) = (
            parts[0].parse::<f64>().unwrap() * scale,
            parts[1].parse::<f64>().unwrap() * scale,
        );
        assert!((x - want.0).abs() < 0.5 && (y - want.1).abs() < 0.5, "{step}: {text}");
    }
    server.stop().await;
}

#[tokio::test]
async fn output_settings_reach_the_file() {
    let server = reference_server().await;
    let body = |path: String| {
        let server = &server;
        async move {
            let response = server.get(&path).await;
            assert_eq!(response.status(), 200, "{path}");
            response.bytes().await.unwrap()
        }
    };
    // compression(type), as `magick -compress`.
    for (step, want) in [
        ("compression(lzw)", "LZW"),
        ("compression(zip)", "Zip"),
        ("compression(no)", "None"),
    ] {
        let tiff = body(format!("/download(fx:photo.jpg):{step}:format(tiff)")).await;
        assert_eq!(identify(&tiff, "%C"), want, "{step}");
    }
    // interlace(): a progressive JPEG (start-of-frame marker SOF2) and ImageMagick agrees.
    let plain = body("/download(fx:photo.jpg):resize(200,0):format(jpeg)".into()).await;
    let progressive = body("/download(fx:photo.jpg):resize(200,0):interlace():format(jpeg)".into()).await;
    let sof2 = |b: &[u8]| b.windows(2).any(|w| w == [0xFF, 0xC2]);
    assert!(!sof2(&plain) && sof2(&progressive));
    assert_eq!(identify(&progressive, "%[interlace]"), "JPEG");
    // profile(srgb,fogra39) to JPEG: CMYK pixels, and the profile that describes
    // them survives the default metadata strip.
    let cmyk = body("/download(fx:photo.jpg):resize(200,0):profile(srgb,fogra39):format(jpeg)".into()).await;
    assert_eq!(identify(&cmyk, "%[colorspace]"), "CMYK");
    assert!(identify(&cmyk, "%[profile:icc]").contains("FOGRA39L"), "ICC kept");
    let rgb = body("/download(fx:cmyk.jpg):profile(fogra39,srgb):format(jpeg)".into()).await;
    assert_eq!(identify(&rgb, "%[colorspace]"), "sRGB");
    server.stop().await;
}

#[tokio::test]
async fn impossible_operations_are_clear_errors() {
    let server = reference_server().await;
    for (steps, status, code) in [
        // An RGB photo is not described by a CMYK profile.
        ("profile(fogra39,srgb)", 422, "invalid_operation"),
        // photo.jpg is 300 dpi: a 10 cm bleed is 1181 px, wider than the image.
        ("canvas(10,10)", 422, "invalid_operation"),
        // 300 to 9000 dpi would be 24000 px wide.
        ("resample(9000,9000)", 413, "image_too_large"),
        ("alpha(sideways)", 400, "invalid_parameter"),
        ("colorspace(rainbow)", 400, "invalid_parameter"),
        ("compose(download(fx:alpha.png),explode,0,0)", 400, "invalid_parameter"),
        ("compose(download(fx:missing.png),over,0,0)", 404, "source_not_found"),
        ("repeat(20,20,10,10)", 400, "invalid_parameter"),
        // 16000x16000 is within the side limit but over the 50 MP area limit.
        ("resize(16000,16000)", 413, "image_too_large"),
        ("extend(0,0,16000,16000)", 413, "image_too_large"),
        ("extend(10,10,5,5)", 400, "invalid_parameter"),
        // Arguments that used to be accepted and silently ignored.
        ("bg(nonsense):extend(0,0,900,600)", 400, "invalid_parameter"),
        ("rotate(30,nonsense)", 400, "invalid_parameter"),
        ("dpi(2w)", 400, "invalid_parameter"),
        ("canvas(0.5w,1)", 400, "invalid_parameter"),
        ("resample(150hcm,150)", 400, "invalid_parameter"),
        ("blur(2h)", 400, "invalid_parameter"),
    ] {
        let response = server.get(&format!("/download(fx:photo.jpg):{steps}")).await;
        assert_eq!(response.status(), status, "{steps}");
        let json: serde_json::Value = response.json().await.unwrap();
        assert_eq!(json["error"]["code"], code, "{steps}: {json}");
    }
    // The service keeps serving.
    let ok = server.get("/download(fx:photo.jpg):resize(10,10)").await;
    assert_eq!(ok.status(), 200);
    server.stop().await;
}
