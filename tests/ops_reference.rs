//! Every operation against the `magick` command-line tool doing the same thing
//! to the same real photo: same dimensions, and a PSNR above the threshold
//! stated per operation (different but equivalent filters and decode paths
//! keep them from being byte-identical).

mod common;

use common::{TestServer, decode, fixture_origin, psnr, repo_path};
use image::GenericImageView;
use std::process::Command;

/// (chain steps, equivalent magick arguments, minimum PSNR in dB)
const CASES: &[(&str, &[&str], f64)] = &[
    ("resize(400,250)", &["-resize", "400x250!"], 32.0),
    ("resize(0,100)", &["-resize", "x100"], 30.0),
    ("fit-in(300,300)", &["-resize", "300x300>"], 32.0),
    (
        "cover(200,200)",
        &["-resize", "200x200^", "-gravity", "center", "-extent", "200x200"],
        30.0,
    ),
    (
        "cover(200,120,north-west)",
        &["-resize", "200x120^", "-gravity", "north-west", "-extent", "200x120"],
        30.0,
    ),
    ("crop(100,50,300,200)", &["-crop", "300x200+100+50", "+repage"], 40.0),
    ("flip()", &["-flip"], 40.0),
    ("flop()", &["-flop"], 40.0),
    ("rotate(90)", &["-rotate", "90"], 40.0),
    ("rotate(30,black)", &["-background", "black", "-rotate", "30"], 35.0),
    ("grayscale()", &["-colorspace", "Gray"], 40.0),
    ("blur(2)", &["-blur", "0x2"], 40.0),
    ("sharpen(1)", &["-sharpen", "0x1"], 35.0),
    ("sepia(80)", &["-sepia-tone", "80%"], 35.0),
    ("trim()", &["-trim", "+repage"], 40.0),
    ("dpi(300,300)", &["-units", "PixelsPerInch", "-density", "300"], 40.0),
];

#[tokio::test]
async fn every_operation_matches_the_magick_cli() {
    let origin = fixture_origin().await;
    let server = TestServer::start_with(&[], |s| {
        s.allow_builtin_filters = true;
        s.domains.insert("fx".into(), origin.clone());
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    for (steps, args, threshold) in CASES {
        let response = server
            .get(&format!("/download(fx:photo.jpg):{steps}:format(png)"))
            .await;
        assert_eq!(response.status(), 200, "{steps}");
        let (_, ours) = decode(&response.bytes().await.unwrap());

        let out = dir.path().join("reference.png");
        let status = Command::new("magick")
            .arg(repo_path("tests/fixtures/photo.jpg"))
            .args(*args)
            .arg("-strip")
            .arg(&out)
            .status()
            .expect("the magick command-line tool (installed by scripts/setup)");
        assert!(status.success(), "magick {args:?}");
        let reference = image::open(&out).unwrap();
        assert_eq!(ours.dimensions(), reference.dimensions(), "{steps} vs magick {args:?}");
        let score = psnr(&ours, &reference);
        println!(
            "{steps:<28} {:>5}x{:<5} PSNR {score:>6.2} dB (threshold {threshold})",
            ours.width(),
            ours.height()
        );
        assert!(
            score >= *threshold,
            "{steps}: PSNR {score:.2} dB < {threshold} against magick {args:?}"
        );
    }
    server.stop().await;
}

#[tokio::test]
async fn dpi_records_the_resolution_in_the_file() {
    let origin = fixture_origin().await;
    let server = TestServer::start_with(&[], |s| {
        s.allow_builtin_filters = true;
        s.domains.insert("fx".into(), origin.clone());
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    // PNG stores pixels per metre, so ImageMagick may report either unit: compare in dpi.
    for (step, want) in [("dpi(300,150)", (300.0, 150.0)), ("cm(40,40)", (101.6, 101.6))] {
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
