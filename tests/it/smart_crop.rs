//! Smart crop on a photo whose subject is off-centre: the real fixture photo
//! (in colour, sharp) beside a blurred grey copy of itself, as a shallow
//! depth of field leaves a background. `gravity=smart` must keep the
//! subject where `center` keeps half background; the choice is the same
//! every time.

use crate::common;

use crate::common::{TestServer, decode, fixture};
use image::{DynamicImage, GenericImage, RgbImage};

/// 1600 x 500: the photo on one side, a blurred grey copy on the other.
fn off_centre(subject_right: bool) -> Vec<u8> {
    let (_, photo) = decode(&fixture("photo.jpg"));
    let photo = photo.to_rgb8();
    let background = DynamicImage::ImageRgb8(photo.clone()).grayscale().blur(12.0).to_rgb8();
    let mut canvas = RgbImage::new(1600, 500);
    let (subject_x, background_x) = if subject_right { (800, 0) } else { (0, 800) };
    canvas.copy_from(&photo, subject_x, 0).unwrap();
    for (x, y, p) in background.enumerate_pixels() {
        canvas.put_pixel(background_x + x, y, *p);
    }
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 92)
        .encode_image(&canvas)
        .unwrap();
    out
}

/// Share of pixels in colour: the subject is in colour, the background grey.
fn subject_share(jpeg: &[u8]) -> f64 {
    let (_, img) = decode(jpeg);
    let rgb = img.to_rgb8();
    let colourful = rgb
        .pixels()
        .filter(|p| {
            let (max, min) = (p.0.iter().max().unwrap(), p.0.iter().min().unwrap());
            max - min > 12
        })
        .count();
    colourful as f64 / f64::from(rgb.width() * rgb.height())
}

async fn get(server: &TestServer, path: String) -> Vec<u8> {
    let r = server.get(&path).await;
    assert_eq!(r.status(), 200, "{path}");
    r.bytes().await.unwrap().to_vec()
}

#[tokio::test]
async fn a_smart_crop_keeps_the_off_centre_subject_where_center_does_not() {
    let server = TestServer::start_with(&[], |s| s.allow_builtin_filters = true).await;
    for subject_right in [true, false] {
        let (status, up) = server.upload(off_centre(subject_right)).await;
        assert_eq!(status, 201);
        let id = up["id"].as_str().unwrap();
        let smart = get(&server, format!("/images/{id}/avatar?size=400&gravity=smart")).await;
        let centre = get(&server, format!("/images/{id}/avatar?size=400&gravity=center")).await;
        let (_, s) = decode(&smart);
        assert_eq!((s.width(), s.height()), (400, 400));
        // Relative to the photo itself: not every pixel of a forest is colourful.
        let whole = subject_share(&fixture("photo.jpg"));
        let (smart_share, centre_share) = (subject_share(&smart) / whole, subject_share(&centre) / whole);
        println!(
            "subject on the {}: smart keeps {smart_share:.2} of it, center {centre_share:.2}",
            if subject_right { "right" } else { "left" }
        );
        assert!(smart_share > 0.9, "smart: the window is {smart_share:.2} subject");
        assert!(centre_share < 0.65, "center: {centre_share:.2}");

        // The chain form chooses the same window.
        let chained = get(&server, format!("/original({id}):cover(400,400,smart)")).await;
        assert!(subject_share(&chained) / whole > 0.9);
    }

    // Deterministic: the same input gives the same bytes, with no cache between.
    let body = off_centre(true);
    let mut answers = Vec::new();
    for _ in 0..2 {
        let r = server
            .client
            .post(server.url("/transform/avatar?size=300&gravity=smart"))
            .body(body.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        answers.push(r.bytes().await.unwrap());
    }
    assert_eq!(answers[0], answers[1]);

    // `smart` places crop windows only; anchoring extend/compose is refused clearly.
    let r = server
        .get("/download(origin:a.jpg):gravity(smart):extend(10,10,10,10)")
        .await;
    let (status, code, message) = common::error_code(r).await;
    assert_eq!((status, code.as_str()), (400, "invalid_parameter"), "{message}");
    assert!(message.contains("cover(w,h,smart)"), "{message}");

    // GET /aliases shows the new parameter with its values.
    let aliases: serde_json::Value = server.get("/aliases").await.json().await.unwrap();
    let avatar = aliases["aliases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == "avatar")
        .unwrap();
    let gravity = avatar["params"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "gravity")
        .unwrap();
    assert!(
        gravity["values"]
            .as_array()
            .unwrap()
            .contains(&serde_json::json!("smart"))
    );
}
