//! `GET /images/{id}/info` and `POST /info`: the facts of real images (the
//! fixtures, an animated GIF, a photo with camera EXIF and GPS), the
//! ThumbHash against the image it stands for, the answer stored beside the
//! original, and bad input.

use crate::common;

use crate::common::{TestServer, error_code, fixture, metric_or_zero};
use serde_json::Value;

/// A little-endian TIFF/EXIF block: IFD0 (make, model, Exif and GPS
/// pointers), the Exif IFD (DateTimeOriginal) and the GPS IFD.
fn camera_exif() -> Vec<u8> {
    struct Entry {
        tag: u16,
        kind: u16,
        count: u32,
        data: Vec<u8>,
    }
    let ascii = |tag, s: &str| {
        let mut data = s.as_bytes().to_vec();
        data.push(0);
        Entry {
            tag,
            kind: 2,
            count: data.len() as u32,
            data,
        }
    };
    let rationals = |tag, values: [(u32, u32); 3]| Entry {
        tag,
        kind: 5,
        count: 3,
        data: values
            .iter()
            .flat_map(|(n, d)| n.to_le_bytes().into_iter().chain(d.to_le_bytes()))
            .collect(),
    };
    let long = |tag, v: u32| Entry {
        tag,
        kind: 4,
        count: 1,
        data: v.to_le_bytes().to_vec(),
    };
    let ifd_len = |n: usize| 2 + 12 * n + 4;
    // Offsets: IFD0 (4 entries) at 8, Exif IFD (1) next, GPS IFD (4) next, then data.
    let exif_at = 8 + ifd_len(4);
    let gps_at = exif_at + ifd_len(1);
    let mut data_at = gps_at + ifd_len(4);
    let ifds = [
        vec![
            ascii(0x010F, "TestCam"),
            ascii(0x0110, "X100"),
            long(0x8769, exif_at as u32),
            long(0x8825, gps_at as u32),
        ],
        vec![ascii(0x9003, "2024:05:06 07:08:09")],
        vec![
            ascii(0x0001, "N"),
            rationals(0x0002, [(48, 1), (51, 1), (30, 1)]),
            ascii(0x0003, "W"),
            rationals(0x0004, [(2, 1), (17, 1), (40, 1)]),
        ],
    ];
    let mut tiff = b"II*\0\x08\0\0\0".to_vec();
    let mut extra = Vec::new();
    for ifd in &ifds {
        tiff.extend_from_slice(&(ifd.len() as u16).to_le_bytes());
        for e in ifd {
            tiff.extend_from_slice(&e.tag.to_le_bytes());
            tiff.extend_from_slice(&e.kind.to_le_bytes());
            tiff.extend_from_slice(&e.count.to_le_bytes());
            if e.data.len() <= 4 {
                let mut v = e.data.clone();
                v.resize(4, 0);
                tiff.extend_from_slice(&v);
            } else {
                tiff.extend_from_slice(&(data_at as u32).to_le_bytes());
                extra.extend_from_slice(&e.data);
                data_at += e.data.len();
            }
        }
        tiff.extend_from_slice(&0u32.to_le_bytes());
    }
    tiff.extend_from_slice(&extra);
    let mut block = b"Exif\0\0".to_vec();
    block.extend_from_slice(&tiff);
    block
}

/// The fixture photo with `exif` as an APP1 segment.
fn photo_with_exif(exif: &[u8]) -> Vec<u8> {
    let photo = fixture("photo.jpg");
    let mut out = photo[..2].to_vec();
    out.extend_from_slice(&[0xFF, 0xE1]);
    out.extend_from_slice(&((exif.len() + 2) as u16).to_be_bytes());
    out.extend_from_slice(exif);
    out.extend_from_slice(&photo[2..]);
    out
}

/// Three 64x48 frames of different colours, looping, as a GIF.
fn animated_gif() -> Vec<u8> {
    use image::codecs::gif::{GifEncoder, Repeat};
    use image::{Delay, Frame, Rgba, RgbaImage};
    let mut out = Vec::new();
    {
        let mut encoder = GifEncoder::new(&mut out);
        encoder.set_repeat(Repeat::Infinite).unwrap();
        for colour in [[200, 30, 30, 255], [30, 200, 30, 255], [30, 30, 200, 255]] {
            let frame = RgbaImage::from_pixel(64, 48, Rgba(colour));
            encoder
                .encode_frame(Frame::from_parts(frame, 0, 0, Delay::from_numer_denom_ms(100, 1)))
                .unwrap();
        }
    }
    out
}

/// `POST /info` with the body as `application/octet-stream`.
async fn post_info(server: &TestServer, bytes: Vec<u8>) -> reqwest::Response {
    server
        .client
        .post(server.url("/info"))
        .header("content-type", "application/octet-stream")
        .body(bytes)
        .send()
        .await
        .unwrap()
}

async fn info_of(server: &TestServer, bytes: Vec<u8>) -> Value {
    let r = post_info(server, bytes).await;
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

#[tokio::test]
async fn an_uploaded_photo_is_described_and_the_answer_is_kept_with_it() {
    let server = TestServer::start().await;
    let (status, uploaded) = server.upload(fixture("photo.jpg")).await;
    assert_eq!(status, 201);
    let id = uploaded["id"].as_str().unwrap();
    let r = server.get(&format!("/images/{id}/info")).await;
    assert_eq!(r.status(), 200);
    let info: Value = r.json().await.unwrap();
    assert_eq!(info["id"], id);
    assert_eq!(info["format"], "jpeg");
    assert_eq!(
        (info["width"].as_u64(), info["height"].as_u64()),
        (Some(800), Some(500))
    );
    assert_eq!(info["orientation"], 1);
    assert_eq!(info["frames"], 1);
    assert_eq!(info["animated"], false);
    assert_eq!(info["has_alpha"], false);
    assert_eq!(info["colorspace"], "sRGB");
    assert_eq!(info["bit_depth"], 8);
    assert_eq!(info["icc"], Value::Null);

    // The placeholder stands for this picture: its aspect ratio, and an
    // average colour close to the photo's own.
    use base64::Engine;
    let hash = base64::engine::general_purpose::STANDARD
        .decode(info["thumbhash"].as_str().unwrap())
        .unwrap();
    assert!(hash.len() <= 32, "a compact placeholder: {} bytes", hash.len());
    let ratio = thumbhash::thumb_hash_to_approximate_aspect_ratio(&hash).unwrap();
    assert!((ratio - 1.6).abs() < 0.15, "aspect ratio {ratio}");
    let (r, g, b, _) = thumbhash::thumb_hash_to_average_rgba(&hash).unwrap();
    let (_, photo) = common::decode(&fixture("photo.jpg"));
    let rgb = photo.to_rgb8();
    let n = f64::from(rgb.width() * rgb.height());
    let mean = |c: usize| rgb.pixels().map(|p| f64::from(p[c])).sum::<f64>() / n / 255.0;
    for (got, want) in [(r, mean(0)), (g, mean(1)), (b, mean(2))] {
        assert!((f64::from(got) - want).abs() < 0.06, "average colour {got} vs {want}");
    }

    // Kept beside the original: the second answer runs no job.
    let jobs = |scrape: &str| metric_or_zero(scrape, "imaginator_jobs_total{outcome=\"ok\"}");
    let before = jobs(&server.metrics().await);
    let again: Value = server.get(&format!("/images/{id}/info")).await.json().await.unwrap();
    assert_eq!(again, info);
    assert_eq!(jobs(&server.metrics().await), before, "served from the stored answer");
    let stored = server.data.join(format!("originals/{}/{id}.info.json", &id[..2]));
    assert!(stored.exists());

    // Deleting the image deletes what was said about it.
    assert_eq!(
        server
            .client
            .delete(server.url(&format!("/images/{id}")))
            .send()
            .await
            .unwrap()
            .status(),
        204
    );
    assert!(!stored.exists());
    assert_eq!(server.get(&format!("/images/{id}/info")).await.status(), 404);
}

#[tokio::test]
async fn orientation_alpha_cmyk_and_animation_are_reported() {
    let server = TestServer::start().await;
    let oriented = info_of(&server, fixture("oriented.jpg")).await;
    assert_eq!(oriented["orientation"], 6);
    assert_eq!(
        (oriented["width"].as_u64(), oriented["height"].as_u64()),
        (oriented["stored_height"].as_u64(), oriented["stored_width"].as_u64()),
        "width and height as displayed: the stored ones swapped"
    );
    assert!(oriented.get("id").is_none(), "nothing is stored for POST /info");

    let alpha = info_of(&server, fixture("alpha.png")).await;
    assert_eq!(
        (alpha["format"].as_str(), alpha["has_alpha"].as_bool()),
        (Some("png"), Some(true))
    );

    let cmyk = info_of(&server, fixture("cmyk.jpg")).await;
    assert_eq!(cmyk["colorspace"], "CMYK");

    let gif = info_of(&server, animated_gif()).await;
    assert_eq!(
        (gif["frames"].as_u64(), gif["animated"].as_bool()),
        (Some(3), Some(true))
    );
    assert_eq!((gif["width"].as_u64(), gif["height"].as_u64()), (Some(64), Some(48)));
    let still = info_of(&server, fixture("photo.gif")).await;
    assert_eq!(still["animated"], false);
}

#[tokio::test]
async fn camera_exif_is_reported_and_gps_only_when_configured() {
    let photo = photo_with_exif(&camera_exif());
    let server = TestServer::start().await;
    let info = info_of(&server, photo.clone()).await;
    assert_eq!(info["exif"]["make"], "TestCam");
    assert_eq!(info["exif"]["model"], "X100");
    assert_eq!(info["exif"]["taken_at"], "2024:05:06 07:08:09");
    assert!(info["exif"].get("gps").is_none(), "no GPS by default: {}", info["exif"]);
    // Also for a stored image whose answer was computed with GPS inside.
    let (_, up) = server.upload(photo.clone()).await;
    let stored: Value = server
        .get(&format!("/images/{}/info", up["id"].as_str().unwrap()))
        .await
        .json()
        .await
        .unwrap();
    assert!(stored["exif"].get("gps").is_none());

    let with_gps = TestServer::start_with(&[], |s| s.info.include_gps = true).await;
    let info = info_of(&with_gps, photo).await;
    let (lat, lon) = (
        info["exif"]["gps"]["latitude"].as_f64().unwrap(),
        info["exif"]["gps"]["longitude"].as_f64().unwrap(),
    );
    assert!(
        (lat - 48.858333).abs() < 1e-4 && (lon + 2.294444).abs() < 1e-4,
        "{lat}, {lon}"
    );
}

#[tokio::test]
async fn bad_input_gets_a_clear_error_and_the_service_keeps_answering() {
    let server = TestServer::start().await;
    let (status, code, _) = error_code(post_info(&server, b"not an image at all".to_vec()).await).await;
    assert_eq!((status, code.as_str()), (415, "unsupported_format"));
    let (status, code, message) = error_code(post_info(&server, fixture("invalid-trunc.png")).await).await;
    assert!(status == 422 || status == 400, "{status} {code}: {message}");
    let (status, code, _) = error_code(post_info(&server, common::png_declaring(100_000, 100_000)).await).await;
    assert_eq!((status, code.as_str()), (413, "image_too_large"));
    let unknown = "0".repeat(64);
    assert_eq!(server.get(&format!("/images/{unknown}/info")).await.status(), 404);
    assert_eq!(post_info(&server, fixture("photo.jpg")).await.status(), 200);
}
