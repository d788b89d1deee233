//! The compat profile against imaginator 2018's rules: a server configured
//! by the original's YAML file, a local origin, and for pixels the `magick`
//! command-line tool doing what the original's code did (its filters call
//! MagickWand with Lanczos, exact sizes, fuzz 15 and so on). Every filter,
//! every resize filter, composite operator and compression type it named,
//! and each rule of its URLs, aliases, downloads, caches, signatures, status
//! codes and filter log header has at least one URL here.

use crate::common;

use crate::common::{decode, fixture, identify, psnr, repo_path};
use axum::extract::Path as UrlPath;
use axum::http::StatusCode;
use image::GenericImageView;
use imaginator::App;
use imaginator::load::{Loaded, load};
use std::path::{Path, PathBuf};
use std::process::Command;
use tokio::sync::oneshot;

struct Compat {
    base: String,
    client: reqwest::Client,
    _stop: oneshot::Sender<()>,
    dirs: Vec<tempfile::TempDir>,
}

impl Compat {
    async fn get(&self, path: &str) -> reqwest::Response {
        self.client.get(format!("{}{path}", self.base)).send().await.unwrap()
    }

    /// Status, content type and body of `path`.
    async fn fetch(&self, path: &str) -> (u16, String, Vec<u8>) {
        let r = self.get(path).await;
        let status = r.status().as_u16();
        let mime = r
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default();
        (status, mime, r.bytes().await.unwrap().to_vec())
    }

    /// The image at `path`, which must answer 200.
    async fn image(&self, path: &str) -> (image::ImageFormat, image::DynamicImage, Vec<u8>) {
        let (status, _, body) = self.fetch(path).await;
        assert_eq!(status, 200, "{path}: {}", String::from_utf8_lossy(&body));
        let (format, img) = decode(&body);
        (format, img, body)
    }

    fn cache_dir(&self) -> PathBuf {
        self.dirs[1].path().join("thumbs")
    }
}

/// An origin serving the fixtures by name; other names are 404. `a(1).jpg`
/// is the photo too (a name with parentheses).
async fn origin() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let app = axum::Router::new().route(
        "/{name}",
        axum::routing::get(|UrlPath(name): UrlPath<String>| async move {
            let name = if name == "a(1).jpg" {
                "photo.jpg".to_string()
            } else {
                name
            };
            let path = repo_path("tests/fixtures").join(&name);
            match std::fs::read(path) {
                Ok(bytes) => (StatusCode::OK, bytes),
                Err(_) => (StatusCode::NOT_FOUND, b"no such file".to_vec()),
            }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://127.0.0.1:{port}/")
}

/// A server on the original's YAML: `fx:` is the origin, `pre:` its base
/// cut short (`pre:to.jpg` is `photo.jpg`), one named cache.
async fn start(extra: &str) -> Compat {
    start_with_domains(&origin().await, "", extra).await
}

/// As `start`, with the origin given and more domain shortcuts.
async fn start_with_domains(origin: &str, domains: &str, extra: &str) -> Compat {
    let data = tempfile::tempdir().unwrap();
    let caches = tempfile::tempdir().unwrap();
    let yaml = format!(
        "domains:\n  fx: \"{origin}\"\n  pre: \"{origin}pho\"\n{domains}caches:\n  thumbs:\n    dir: {}\n    size: 10 MB\n\
         log_filters_header: X-Imaginator-Filters\n{extra}",
        caches.path().join("thumbs").display()
    );
    let file = data.path().join("imaginator.yml");
    std::fs::write(&file, yaml).unwrap();
    let env = vec![
        ("IMAGINATOR_LISTEN".to_string(), "127.0.0.1:0".to_string()),
        ("IMAGINATOR_DATA_DIR".to_string(), data.path().display().to_string()),
        ("IMAGINATOR_WORKERS".to_string(), "2".to_string()),
        // Room for a busy machine: the long-chain test's work is seconds, not its deadline.
        ("IMAGINATOR_JOB_DEADLINE".to_string(), "120s".to_string()),
    ];
    let loaded = load(Some(&file), env).expect("the original's YAML loads");
    assert!(loaded.compat.is_some());
    let app = App::from_loaded(loaded).await.expect("app builds");
    let base = format!("http://{}/", app.local_addr());
    let (tx, rx) = oneshot::channel::<()>();
    tokio::spawn(app.run(async move {
        let _ = rx.await;
    }));
    Compat {
        base,
        client: reqwest::Client::new(),
        _stop: tx,
        dirs: vec![data, caches],
    }
}

/// `magick` run on fixtures (named first in `args`), written as `out_ext`.
fn magick(args: &[&str], out_ext: &str) -> image::DynamicImage {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join(format!("out.{out_ext}"));
    let args: Vec<String> = args
        .iter()
        .map(|a| match a.strip_prefix("fixture:") {
            Some(name) => repo_path("tests/fixtures").join(name).display().to_string(),
            None => a.to_string(),
        })
        .collect();
    let status = Command::new("magick").args(&args).arg(&out).status().unwrap();
    assert!(status.success(), "magick {args:?}");
    image::open(&out).unwrap()
}

fn close_to(ours: &image::DynamicImage, reference: &image::DynamicImage, min_db: f64, what: &str) {
    assert_eq!(ours.dimensions(), reference.dimensions(), "{what}: size");
    let db = psnr(ours, reference);
    assert!(db >= min_db, "{what}: {db:.1} dB < {min_db} dB");
}

/// The original's filters, one test each (a failure in one does not hide
/// the others): pixels against the `magick` CLI doing what the original's
/// code did, sizes and names as it read them.
macro_rules! filter_case {
    ($name:ident, |$s:ident, $photo:ident| $body:block) => {
        #[tokio::test]
        async fn $name() {
            let $s = start("allow_builtin_filters: true\n").await;
            let $photo = "download(fx:photo.jpg)";
            $body
        }
    };
}

filter_case!(resize_keeps_the_input_format_and_uses_lanczos, |s, photo| {
    // The input's own format, exact sizes with Lanczos, a zero side from the ratio (truncated).
    let (format, img, _) = s.image(&format!("{photo}:resize(200,0)")).await;
    assert_eq!(format, image::ImageFormat::Jpeg);
    close_to(
        &img,
        &magick(
            &["fixture:photo.jpg", "-filter", "Lanczos", "-resize", "200x125!"],
            "jpg",
        ),
        40.0,
        "resize",
    );
});

filter_case!(sizes_are_computed_in_f32_and_truncated, |s, photo| {
    // Relative sizes are computed in f32 and truncated: 0.333 x 500 = 166.5 -> 166.
    let (_, img, _) = s.image(&format!("{photo}:resize(0.333w,0.333h)")).await;
    assert_eq!(img.dimensions(), ((0.333f32 * 800.0) as u32, (0.333f32 * 500.0) as u32));
    assert_eq!(img.dimensions(), (266, 166));
    // Physical units at the recorded 300 dpi, truncated: 2 cm = 236.2 -> 236.
    let (_, img, _) = s.image(&format!("{photo}:crop(0,0,2hcm,1vcm)")).await;
    assert_eq!(img.dimensions(), (236, 118));
    // A fraction of a pixel is refused, as the original did (500).
    assert_eq!(s.fetch(&format!("{photo}:resize(10.5,10)")).await.0, 500);
});

filter_case!(fit_in_enlarges, |s, photo| {
    // fit-in enlarges.
    let (_, img, _) = s.image(&format!("{photo}:fit-in(1600,1600)")).await;
    close_to(
        &img,
        &magick(
            &["fixture:photo.jpg", "-filter", "Lanczos", "-resize", "1600x1000!"],
            "jpg",
        ),
        38.0,
        "fit-in",
    );
});

filter_case!(every_resize_filter_by_the_originals_name, |s, photo| {
    // Every resize filter by the original's name.
    let filters = [
        "undefined",
        "point",
        "box",
        "triangle",
        "hermite",
        "hann",
        "hamming",
        "blackman",
        "gaussian",
        "quadratic",
        "cubic",
        "catrom",
        "mitchell",
        "jinc",
        "sinc",
        "sinc_fast",
        "kaiser",
        "welch",
        "parzen",
        "bohman",
        "bartlett",
        "lagrange",
        "lanczos",
        "lanczos_sharp",
        "lanczos2",
        "lanczos2_sharp",
        "robidoux",
        "robidoux_sharp",
        "cosine",
        "spline",
        "lanczos_radius",
        "cubic_spline",
    ];
    // Every filter is tried; the failures are reported together.
    let mut failures = Vec::new();
    for f in filters {
        let (status, _, body) = s.fetch(&format!("{photo}:resize(120,75,{f})")).await;
        if status != 200 {
            failures.push(format!("{f}: {status} {}", String::from_utf8_lossy(&body)));
            continue;
        }
        let (_, img) = decode(&body);
        let magick_name = f.replace('_', "");
        let reference = magick(
            &["fixture:photo.jpg", "-filter", &magick_name, "-resize", "120x75!"],
            "jpg",
        );
        let db = psnr(&img, &reference);
        if img.dimensions() != (120, 75) || db < 35.0 {
            failures.push(format!("{f}: {:?} at {db:.1} dB", img.dimensions()));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
    assert_eq!(s.fetch(&format!("{photo}:resize(10,10,wobbly)")).await.0, 500);
});

filter_case!(crop_is_imagemagicks_crop, |s, photo| {
    // crop as ImageMagick crops: a negative offset clips.
    let (_, img, _) = s.image(&format!("{photo}:crop(-10,-10,100,100)")).await;
    assert_eq!(img.dimensions(), (90, 90));
    let (_, img, _) = s.image(&format!("{photo}:crop(100,50,300,200)")).await;
    close_to(
        &img,
        &magick(&["fixture:photo.jpg", "-crop", "300x200+100+50", "+repage"], "jpg"),
        40.0,
        "crop",
    );
});

filter_case!(pattern_resizes_the_tile_exactly, |s, photo| {
    // pattern: the tile is resized exactly, then repeated over the image's size.
    let (_, img, _) = s.image(&format!("{photo}:format(png):pattern(100,30)")).await;
    let reference = magick(
        &[
            "fixture:photo.jpg",
            "-filter",
            "Lanczos",
            "-resize",
            "100x30!",
            "-write",
            "mpr:tile",
            "+delete",
            "-size",
            "800x500",
            "tile:mpr:tile",
        ],
        "png",
    );
    close_to(&img, &reference, 40.0, "pattern");
});

filter_case!(sepia_takes_quantum_units, |s, photo| {
    // sepia's threshold in quantum units (52428 of 65535 is 80%).
    let (_, img, _) = s.image(&format!("{photo}:sepia(52428)")).await;
    close_to(
        &img,
        &magick(&["fixture:photo.jpg", "-sepia-tone", "80%"], "jpg"),
        35.0,
        "sepia",
    );
});

filter_case!(trim_uses_fuzz_15, |s, photo| {
    // trim with fuzz 15 (quantum units), on the photo framed in white.
    let framed = format!("{photo}:extend(-20,-20,820,520)");
    let (_, img, _) = s.image(&format!("{framed}:trim()")).await;
    let reference = magick(
        &[
            "fixture:photo.jpg",
            "-background",
            "white",
            "-extent",
            "840x540-20-20",
            "-fuzz",
            "15",
            "-trim",
            "+repage",
        ],
        "jpg",
    );
    assert_eq!(img.dimensions(), reference.dimensions(), "trim");
});

filter_case!(extend_fills_with_the_background_colour, |s, photo| {
    // extend: (x, y, right, bottom) in the image's background colour, as ImageMagick's extent.
    let (_, img, _) = s.image(&format!("{photo}:bg(red):extend(-10,-20,810,500)")).await;
    assert_eq!(img.dimensions(), (820, 520));
    let corner = img.get_pixel(2, 2);
    assert!(
        corner[0] > 200 && corner[1] < 60,
        "bg(red) fills the extension: {corner:?}"
    );
});

filter_case!(flip_and_flop, |s, photo| {
    // flip and flop.
    let (_, img, _) = s.image(&format!("{photo}:flip()")).await;
    close_to(&img, &magick(&["fixture:photo.jpg", "-flip"], "jpg"), 40.0, "flip");
    let (_, img, _) = s.image(&format!("{photo}:flop()")).await;
    close_to(&img, &magick(&["fixture:photo.jpg", "-flop"], "jpg"), 40.0, "flop");
});

filter_case!(repeat_copies_right_and_down, |s, photo| {
    // repeat: copies to the right and down, on a canvas made wide enough first.
    let (_, img, _) = s
        .image(&format!("{photo}:resize(40,25):extend(0,0,120,50):repeat(3,2,40,25)"))
        .await;
    assert_eq!(img.dimensions(), (120, 50));
});

filter_case!(resolution_dpi_cm_resample_and_canvas, |s, photo| {
    // Resolution: dpi(), cm() (the image's print size) and resample().
    let (_, img, body) = s.image(&format!("{photo}:format(png):dpi(150,150)")).await;
    assert_eq!(img.dimensions(), (800, 500));
    assert!((dpi(&body) - 150.0).abs() < 0.1, "{}", dpi(&body));
    let (_, _, body) = s.image(&format!("{photo}:format(png):cm(10,10)")).await;
    assert!(
        (dpi(&body) - 203.2).abs() < 0.1,
        "800 px over 10 cm is 203.2 dpi: {}",
        dpi(&body)
    );
    let (_, img, _) = s.image(&format!("{photo}:resample(150,150)")).await;
    let reference = magick(
        &["fixture:photo.jpg", "-filter", "Lanczos", "-resample", "150x150"],
        "jpg",
    );
    close_to(&img, &reference, 38.0, "resample");
    assert_eq!(img.dimensions(), (400, 250));
    // canvas: a mirrored bleed of 0.5 cm at 300 dpi (59 px) around the image less its 1 px border.
    let (_, img, _) = s.image(&format!("{photo}:canvas(0.5,0.5)")).await;
    assert_eq!(img.dimensions(), (798 + 2 * 59, 498 + 2 * 59));
});

filter_case!(colorspace_alpha_gravity_and_compression_names, |s, photo| {
    let (_, img, _) = s.image(&format!("{photo}:colorspace(gray)")).await;
    close_to(
        &img,
        &magick(&["fixture:photo.jpg", "-colorspace", "gray"], "jpg"),
        38.0,
        "colorspace(gray)",
    );
    // colorspace, alpha, gravity and compression accept every name the original did, `undefined` included.
    for step in [
        "colorspace(undefined)",
        "colorspace(gray)",
        "alpha(undefined)",
        "alpha(set)",
        "gravity(undefined)",
        "gravity(north_west)",
    ] {
        let (status, _, body) = s.fetch(&format!("{photo}:resize(40,25):{step}")).await;
        assert_eq!(status, 200, "{step}: {}", String::from_utf8_lossy(&body));
    }
    for c in [
        "undefined",
        "b44a",
        "b44",
        "bzip",
        "dxt1",
        "dxt3",
        "dxt5",
        "fax",
        "group4",
        "jbig1",
        "jbig2",
        "jpeg2000",
        "jpeg",
        "losslessjpeg",
        "lzma",
        "lzw",
        "no",
        "piz",
        "pxr24",
        "rle",
        "zip",
        "zips",
    ] {
        let (status, _, body) = s
            .fetch(&format!("{photo}:resize(40,25):format(tiff):compression({c})"))
            .await;
        let text = String::from_utf8_lossy(&body);
        assert!(!text.contains("Unknown compression"), "{c}: {text}");
        if status == 200 {
            assert!(body.starts_with(b"II*\0") || body.starts_with(b"MM\0*"), "{c}: TIFF");
        }
    }
    let (status, _, body) = s
        .fetch(&format!("{photo}:resize(40,25):format(tiff):compression(zip)"))
        .await;
    assert_eq!(status, 200);
    assert_eq!(identify(&body, "%C"), "Zip");
    assert_eq!(s.fetch(&format!("{photo}:compression(zstd)")).await.0, 500);
});

filter_case!(profile_converts_with_the_bundled_profiles, |s, photo| {
    // profile: sRGB to FOGRA39 makes CMYK.
    let (status, _, body) = s.fetch(&format!("{photo}:resize(40,25):profile(srgb,fogra39)")).await;
    assert_eq!(status, 200);
    assert_eq!(identify(&body, "%[colorspace]"), "CMYK");
    assert_eq!(
        s.fetch(&format!("{photo}:profile(fogra39,srgb)")).await.0,
        500,
        "the image is not CMYK"
    );
});

filter_case!(format_names_and_refused_outputs, |s, photo| {
    // format(): the original's names; PDF, PS and SVG output is not offered (400).
    for (name, magic) in [
        ("png", &b"\x89PNG"[..]),
        ("jpg", &b"\xff\xd8"[..]),
        ("TIFF", &b"II*\0"[..]),
    ] {
        let (status, _, body) = s.fetch(&format!("{photo}:resize(40,25):format({name})")).await;
        assert_eq!(status, 200, "{name}");
        assert!(body.starts_with(magic), "{name}");
    }
    for name in ["pdf", "ps", "svg"] {
        let (status, _, body) = s.fetch(&format!("{photo}:format({name})")).await;
        assert_eq!(status, 400, "{name}: {}", String::from_utf8_lossy(&body));
    }
});

/// The horizontal resolution in dots per inch (PNG records dots per centimetre).
fn dpi(bytes: &[u8]) -> f64 {
    let text = identify(bytes, "%x %U");
    let (value, unit) = text.split_once(' ').unwrap();
    let value: f64 = value.parse().unwrap();
    if unit == "PixelsPerCentimeter" {
        value * 2.54
    } else {
        value
    }
}

/// `magick` laying alpha.png, resized to 50x50 with Lanczos, over the photo.
fn compose_reference(operator: &str, geometry: &str) -> image::DynamicImage {
    magick(
        &[
            "fixture:photo.jpg",
            "(",
            "fixture:alpha.png",
            "-filter",
            "Lanczos",
            "-resize",
            "50x50!",
            ")",
            "-geometry",
            geometry,
            "-compose",
            operator,
            "-composite",
        ],
        "jpg",
    )
}

#[tokio::test]
async fn compose_takes_a_whole_chain_and_every_operator() {
    let s = start("allow_builtin_filters: true\n").await;
    let src = "download(fx:alpha.png):resize(50,50)";
    let (_, img, _) = s
        .image(&format!("compose(download(fx:photo.jpg),{src},over,10,10)"))
        .await;
    close_to(&img, &compose_reference("over", "+10+10"), 38.0, "compose over");
    let operators = "undefined alpha atop blend blur bumpmap change_mask clear color_burn color_dodge colorize \
        copy_black copy_blue copy copy_cyan copy_green copy_magenta copy_alpha copy_red copy_yellow darken \
        darken_intensity difference displace dissolve distort divide_dst divide_src dst_atop dst dst_in dst_out \
        dst_over exclusion hard_light hard_mix hue in intensity lighten lighten_intensity linear_burn linear_dodge \
        linear_light luminize mathematics minus_dst minus_src modulate modulus_add modulus_subtract multiply no out \
        over overlay pegtop_light pin_light plus replace saturate screen soft_light src_atop src src_in src_out \
        src_over threshold vivid_light xor stereo";
    let operators: Vec<&str> = operators.split_whitespace().collect();
    assert_eq!(operators.len(), 72);
    let mut refused = Vec::new();
    for op in operators {
        let (status, _, body) = s
            .fetch(&format!("download(fx:photo.jpg):resize(80,50):compose({src},{op},5,5)"))
            .await;
        if status != 200 {
            refused.push(op);
            eprintln!("{op}: {status} {}", String::from_utf8_lossy(&body));
            continue;
        }
        let (_, img) = decode(&body);
        assert_eq!(img.dimensions(), (80, 50), "{op}");
    }
    // ImageMagick itself refuses `blur` without `compose:args` (the original
    // answered 500 too; `magick -compose blur -composite` only warns).
    assert_eq!(refused, ["blur"]);
    for (op, magick_op) in [
        ("multiply", "Multiply"),
        ("difference", "Difference"),
        ("soft_light", "SoftLight"),
    ] {
        let (_, img, _) = s
            .image(&format!("compose(download(fx:photo.jpg),{src},{op},-10,20)"))
            .await;
        close_to(&img, &compose_reference(magick_op, "-10+20"), 38.0, op);
    }
    assert_eq!(
        s.fetch(&format!("compose(download(fx:photo.jpg),{src},smudge,0,0)"))
            .await
            .0,
        500
    );
}

#[tokio::test]
async fn urls_downloads_and_output_as_the_original_read_them() {
    let s = start("allow_builtin_filters: true\n").await;
    let photo = fixture("photo.jpg");

    // download() alone: the source's bytes, unchanged, never sniffed into something else.
    let r = s.get("download(fx:photo.jpg)").await;
    assert_eq!(r.headers()["x-content-type-options"], "nosniff");
    let (status, mime, body) = s.fetch("download(fx:photo.jpg)").await;
    assert_eq!((status, mime.as_str()), (200, "image/jpeg"));
    assert_eq!(body, photo);
    // Shortcuts concatenate: `pre` is `.../pho`, so `pre:to.jpg` is `.../photo.jpg`.
    assert_eq!(s.fetch("download(pre:to.jpg)").await.2, photo);
    // Balanced parentheses inside a text argument.
    assert_eq!(s.fetch("download(fx:a(1).jpg)").await.2, photo);
    // The query string belongs to the chain: here it ends the origin's URL.
    assert_eq!(s.fetch("download(fx:photo.jpg?v=2)").await.2, photo);
    // A trailing /name is ignored; the path is percent-decoded.
    assert_eq!(s.fetch("download(fx:photo.jpg):resize(10,10)/thumb.jpg").await.0, 200);
    assert_eq!(s.fetch("download(fx%3Aphoto.jpg)").await.2, photo);
    // The origin's status passes through.
    let (status, _, body) = s.fetch("download(fx:missing.jpg):resize(10,10)").await;
    assert_eq!(status, 404, "{}", String::from_utf8_lossy(&body));
    let error: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(error["error"]["code"], "download_failed");
    // Special addresses stay refused unless a shortcut names them.
    assert_eq!(s.fetch("download(http://10.0.0.1/a.jpg)").await.0, 403);
    assert_eq!(s.fetch("download(http://169.254.169.254/latest)").await.0, 403);

    // Parse errors are 400; unknown filters 500; names are case-sensitive; only GET.
    for bad in [
        "download(fx:photo.jpg",
        "download(fx:photo.jpg):",
        "download(2666/a.jpg)",
        "x/y/z",
    ] {
        let (status, _, body) = s.fetch(bad).await;
        assert_eq!(status, 400, "{bad}: {}", String::from_utf8_lossy(&body));
    }
    assert_eq!(s.fetch("download(fx:photo.jpg):Resize(10,10)").await.0, 500);
    assert_eq!(s.fetch("download(fx:photo.jpg):explode()").await.0, 500);
    let post = s
        .client
        .post(format!("{}download(fx:photo.jpg)", s.base))
        .send()
        .await
        .unwrap();
    assert_eq!(post.status().as_u16(), 405);

    // Output: the input's format, metadata kept, no auto-orientation.
    let (format, img, body) = s.image("download(fx:oriented.jpg):resize(240,150)").await;
    assert_eq!(format, image::ImageFormat::Jpeg);
    assert_eq!(img.dimensions(), (240, 150), "stored orientation, not displayed");
    assert_eq!(identify(&body, "%[orientation]"), "RightTop", "EXIF kept");
    let (format, _, _) = s.image("download(fx:alpha.png):resize(24,15)").await;
    assert_eq!(format, image::ImageFormat::Png);

    // Nothing is cached unless a chain asks: the named cache stays empty.
    assert!(
        common::files_under(&s.cache_dir())
            .iter()
            .all(|(p, _)| !p.to_string_lossy().contains("/cache/"))
    );
}

#[tokio::test]
async fn cache_stores_the_part_before_it_and_the_header_says_so() {
    let s = start("allow_builtin_filters: true\n").await;
    let url = "download(fx:photo.jpg):resize(100,0):cache(thumbs):format(png)";
    let first = s.get(url).await;
    assert_eq!(first.status(), 200);
    assert_eq!(
        first.headers()["x-imaginator-filters"],
        "format,cache_miss(thumbs),resize,download(fx)"
    );
    let (_, a) = decode(&first.bytes().await.unwrap());
    let second = s.get(url).await;
    assert_eq!(second.headers()["x-imaginator-filters"], "format,cache_hit(thumbs)");
    let (_, b) = decode(&second.bytes().await.unwrap());
    assert_eq!(a.dimensions(), (100, 62));
    assert_eq!(psnr(&a, &b), f64::INFINITY, "a hit gives the same picture");
    // The stored part is the JPEG resize (before `cache`), in the named cache's own directory
    // (written just after the answer).
    let mut stored = Vec::new();
    for _ in 0..100 {
        stored = common::files_under(&s.cache_dir().join("cache"));
        if !stored.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(
        stored.len(),
        1,
        "{stored:?} {:?}",
        common::files_under(s.dirs[1].path())
    );
    // Another chain with the same part before `cache` hits it.
    let third = s.get("download(fx:photo.jpg):resize(100,0):cache(thumbs)").await;
    assert_eq!(third.headers()["x-imaginator-filters"], "cache_hit(thumbs)");
    assert_eq!(third.headers()["content-type"], "image/jpeg");
    // A cache that is not configured is the original's miss: the picture
    // answered, the save failure only logged; arguments after the name
    // are ignored.
    let nope = s.get("download(fx:photo.jpg):resize(50,0):cache(nope)").await;
    assert_eq!(nope.status(), 200);
    assert_eq!(
        nope.headers()["x-imaginator-filters"],
        "cache_miss(nope),resize,download(fx)"
    );
    let (_, img) = decode(&nope.bytes().await.unwrap());
    assert_eq!(img.dimensions(), (50, 31));
    let extra = s.get("download(fx:photo.jpg):resize(100,0):cache(thumbs,extra)").await;
    assert_eq!(extra.status(), 200);
    assert_eq!(extra.headers()["x-imaginator-filters"], "cache_hit(thumbs)");
    // Compose logs outermost first, each image in turn.
    let r = s
        .get("compose(download(fx:photo.jpg),download(pre:to.jpg):flip(),over,0,0)")
        .await;
    assert_eq!(
        r.headers()["x-imaginator-filters"],
        "compose,download(fx),flip,download(pre)"
    );
}

/// What the original answered where ImageMagick refused or ignored a call:
/// `resize(0,0)` and a size that truncates to 0 leave the image as it is;
/// `resample` after `download(url, dpi)` keeps the file's undefined units.
#[tokio::test]
async fn refused_resizes_and_resolution_units_as_the_original_left_them() {
    let s = start("allow_builtin_filters: true\n").await;
    let (_, _, original) = s.image("download(fx:photo.jpg)").await;
    let (_, unchanged, _) = s.image("download(fx:photo.jpg):resize(0,0)").await;
    assert_eq!(unchanged.dimensions(), (800, 500));
    let (_, reference) = decode(&original);
    assert!(psnr(&unchanged, &reference) > 40.0, "the same picture, re-encoded");
    let (_, thin, _) = s.image("download(fx:photo.jpg):resize(1,0)").await;
    assert_eq!(
        thin.dimensions(),
        (800, 500),
        "800x500 at width 1 truncates to height 0"
    );
    let (_, fitted, _) = s.image("download(fx:photo.jpg):fit-in(0,0)").await;
    assert_eq!(fitted.dimensions(), (800, 500));
    for url in [
        "download(fx:photo.jpg,300):resample(150,150)",
        "download(fx:photo.jpg,300):canvas(0.1,0.1)",
    ] {
        let (_, _, body) = s.image(url).await;
        let ours = identify(&body, "%U");
        let file = repo_path("tests/fixtures/photo.jpg").display().to_string();
        let op: Vec<&str> = if url.contains("resample") {
            vec!["-resample", "150x150"]
        } else {
            vec![]
        };
        let out = tempfile::NamedTempFile::with_suffix(".jpg").unwrap();
        let mut args = vec!["-density", "300", file.as_str()];
        args.extend(op);
        args.push(out.path().to_str().unwrap());
        assert!(Command::new("magick").args(&args).status().unwrap().success());
        let theirs = identify(&std::fs::read(out.path()).unwrap(), "%U");
        assert_eq!(ours, theirs, "{url}: units as `magick -density 300` leaves them");
        assert_eq!(ours, "Undefined", "{url}");
    }
}

/// Compat renders are native jobs: an oversized step is the same 413
/// `image_too_large` with the same outcome label (`too_large`), and the
/// response carries `Server-Timing`.
#[tokio::test]
async fn compat_jobs_count_and_time_as_native_jobs_do() {
    let s = start("allow_builtin_filters: true\n").await;
    let metrics = || async {
        s.client
            .get(format!("{}metrics", s.base))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    };
    let ok = s.get("download(fx:photo.jpg):resize(100,0)").await;
    let timing = ok.headers()["server-timing"].to_str().unwrap();
    assert!(timing.contains("render;dur="), "{timing}");
    let too_large = "imaginator_jobs_total{outcome=\"too_large\"}";
    let before = common::metric_or_zero(&metrics().await, too_large);
    let (status, code, message) = common::error_code(s.get("download(fx:photo.jpg):resize(20000,100)").await).await;
    assert_eq!((status, code.as_str()), (413, "image_too_large"), "{message}");
    let scrape = metrics().await;
    assert_eq!(common::metric_or_zero(&scrape, too_large), before + 1.0);
}

/// A YAML file is the whole configuration: no native alias file is needed
/// (its aliases are the file's own); natively, built-in filters alone are
/// enough too, and neither is refused.
#[tokio::test]
async fn a_yaml_config_or_builtins_start_without_alias_files() {
    let data = tempfile::tempdir().unwrap();
    let none = data.path().join("no-aliases-here");
    let env = |extra: &[(&str, &str)]| {
        let mut env = vec![
            ("IMAGINATOR_LISTEN".to_string(), "127.0.0.1:0".to_string()),
            ("IMAGINATOR_DATA_DIR".to_string(), data.path().display().to_string()),
            ("IMAGINATOR_ALIASES_DIR".to_string(), none.display().to_string()),
        ];
        env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        env
    };
    let yaml = data.path().join("imaginator.yml");
    std::fs::write(&yaml, "aliases:\n  thumb: \"resize(download({0}),{1},0)\"\n").unwrap();
    let loaded = load(Some(&yaml), env(&[])).expect("YAML loads");
    App::from_loaded(loaded).await.expect("a YAML file alone starts");
    let native = load(None, env(&[("IMAGINATOR_ALLOW_BUILTIN_FILTERS", "true")])).unwrap();
    App::from_loaded(native).await.expect("built-in filters alone start");
    let nothing = load(None, env(&[])).unwrap();
    let err = App::from_loaded(nothing)
        .await
        .err()
        .expect("no aliases and no builtins is refused");
    assert!(format!("{err:#}").contains("allow_builtin_filters"), "{err:#}");
}

/// The original's README: `domains: {http: "http://"}` turns
/// `download(http:example.com/image.jpg)` into a URL.
#[tokio::test]
async fn the_readmes_bare_scheme_domains_load_and_expand() {
    let origin = origin().await;
    let s = start_with_domains(&origin, "  http: \"http://\"\n", "allow_builtin_filters: true\n").await;
    // Expanded to http://127.0.0.1:PORT/photo.jpg: the `fx` shortcut's own
    // origin, so admitted; any other private port stays refused.
    let host = origin.trim_start_matches("http://");
    let (_, img, _) = s.image(&format!("download(http:{host}photo.jpg):resize(80,0)")).await;
    assert_eq!(img.dimensions(), (80, 50));
    let (status, _, body) = s.fetch("download(http:127.0.0.1:9/photo.jpg)").await;
    assert_eq!(status, 403, "{}", String::from_utf8_lossy(&body));
}

#[tokio::test]
async fn aliases_the_originals_way_with_builtins_off() {
    let s = start(
        "allow_builtin_filters: false\nimage:\n  max_width: 300\n  supported_formats: [JPEG, PNG]\naliases:\n  \
         thumb: \"resize({0},{1},0)\"\n  small: \"fit-in(download({0}),{1},{1})\"\n  \
         logo: \"compose({0},download(fx:alpha.png):resize(20,20),over,0,0):format(png)\"\n",
    )
    .await;
    // The image goes in whole as {0}: nested, chained, or as text for the alias's own download.
    let (_, img, _) = s.image("thumb(download(fx:photo.jpg),200)").await;
    assert_eq!(img.dimensions(), (200, 125));
    let (_, img, _) = s.image("download(fx:photo.jpg):thumb(100)").await;
    assert_eq!(img.dimensions(), (100, 62));
    let (_, img, _) = s.image("small(fx:photo.jpg,64)").await;
    assert_eq!(img.dimensions(), (64, 40));
    // An alias body may download and set the format.
    let (format, img, _) = s.image("download(fx:photo.jpg):thumb(100):logo()").await;
    assert_eq!((format, img.dimensions()), (image::ImageFormat::Png, (100, 62)));
    // max_width clamps resize targets.
    let (_, img, _) = s.image("thumb(download(fx:photo.jpg),2000)").await;
    assert_eq!(img.width(), 300);
    // With builtins off, nothing but aliases.
    for url in [
        "download(fx:photo.jpg)",
        "download(fx:photo.jpg):resize(10,10)",
        "thumb(download(fx:photo.jpg),20):flip()",
    ] {
        let (status, _, body) = s.fetch(url).await;
        assert_eq!(status, 500, "{url}");
        assert!(String::from_utf8_lossy(&body).contains("no such filter"), "{url}");
    }
    // Too few arguments for a placeholder.
    assert_eq!(s.fetch("thumb(download(fx:photo.jpg))").await.0, 500);
    // supported_formats: a GIF source is refused.
    assert_eq!(s.fetch("thumb(download(fx:photo.gif),20)").await.0, 415);
}

#[tokio::test]
async fn signatures_are_the_originals_and_optional_unless_required() {
    let secret = "s3cret";
    let s = start(&format!("allow_builtin_filters: true\nsecret: {secret}\n")).await;
    // Over the decoded rest plus `?query`; the URL may be sent encoded.
    let sig = imaginator::compat::http::sign(secret, "download(fx:photo.jpg):resize(50,0)?v=1");
    assert_eq!(sig.len(), 28);
    let encoded = "download(fx%3Aphoto.jpg):resize(50,0)?v=1";
    // The signature matches (over the decoded text with its query), so
    // what is refused is the text: `?v=1` after the chain does not parse.
    let (status, code, message) = common::error_code(s.get(&format!("{sig}/{encoded}")).await).await;
    assert_eq!((status, code.as_str()), (400, "invalid_url"), "{message}");
    let rest_ok = "download(fx:photo.jpg?v=1):resize(50,0)";
    let sig = imaginator::compat::http::sign(secret, rest_ok);
    let (status, _, body) = s.fetch(&format!("{sig}/{rest_ok}")).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let wrong = imaginator::compat::http::sign("other", rest_ok);
    let (status, code, message) = common::error_code(s.get(&format!("{wrong}/{rest_ok}")).await).await;
    assert_eq!((status, code.as_str()), (400, "invalid_signature"), "{message}");
    // Unsigned URLs are served, as the original did.
    assert_eq!(s.fetch(rest_ok).await.0, 200);

    let strict = start(&format!(
        "allow_builtin_filters: true\nsecret: {secret}\nrequire_signature: true\n"
    ))
    .await;
    assert_eq!(strict.fetch(rest_ok).await.0, 403);
    assert_eq!(strict.fetch(&format!("{sig}/{rest_ok}")).await.0, 200);
}

#[test]
fn migrate_writes_native_files_that_load() {
    let dir = tempfile::tempdir().unwrap();
    let yaml = dir.path().join("imaginator.yml");
    std::fs::write(
        &yaml,
        "secret: a-secret-long-enough\ndomains:\n  fx: \"http://127.0.0.1:8080/\"\ncaches: {}\n\
         aliases:\n  thumb: \"resize(download({0}),{1},0)\"\nallow_builtin_filters: false\n",
    )
    .unwrap();
    let out = dir.path().join("native");
    let exe = env!("CARGO_BIN_EXE_imaginator");
    let run = Command::new(exe)
        .args(["migrate"])
        .arg(&yaml)
        .arg(&out)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(run.status.success(), "{stdout}{}", String::from_utf8_lossy(&run.stderr));
    assert!(stdout.contains("What differs in the native profile"), "{stdout}");
    let check = Command::new(exe)
        .arg("check-aliases")
        .arg(out.join("aliases"))
        .output()
        .unwrap();
    assert!(check.status.success(), "{}", String::from_utf8_lossy(&check.stdout));
    let print = Command::new(exe)
        .args(["--config"])
        .arg(out.join("imaginator.toml"))
        .arg("--print-config")
        .output()
        .unwrap();
    assert!(print.status.success(), "{}", String::from_utf8_lossy(&print.stderr));
    assert!(Path::new(&out.join("aliases/thumb.toml")).exists());

    // `imaginator sign` with the YAML file signs the original's way (the decoded path).
    let sign = Command::new(exe)
        .args(["sign", "download(fx%3Aphoto.jpg):resize(10,0)"])
        .env("IMAGINATOR_CONFIG", &yaml)
        .output()
        .unwrap();
    assert!(sign.status.success(), "{}", String::from_utf8_lossy(&sign.stderr));
    let expected = imaginator::compat::http::sign("a-secret-long-enough", "download(fx:photo.jpg):resize(10,0)");
    assert_eq!(
        String::from_utf8_lossy(&sign.stdout).trim(),
        format!("/{expected}/download(fx%3Aphoto.jpg):resize(10,0)")
    );
}

/// Starts the app from a config file with `listen` and `data_dir` overridden.
async fn serve_config(file: &Path, data: &Path) -> (String, oneshot::Sender<()>) {
    let env = vec![
        ("IMAGINATOR_LISTEN".to_string(), "127.0.0.1:0".to_string()),
        ("IMAGINATOR_DATA_DIR".to_string(), data.display().to_string()),
        ("IMAGINATOR_WORKERS".to_string(), "2".to_string()),
    ];
    let loaded = load(Some(file), env).expect("config loads");
    let app = App::from_loaded(loaded).await.expect("app builds");
    let base = format!("http://{}/", app.local_addr());
    let (tx, rx) = oneshot::channel::<()>();
    tokio::spawn(app.run(async move {
        let _ = rx.await;
    }));
    (base, tx)
}

#[tokio::test]
async fn migrated_aliases_render_what_the_compat_profile_renders() {
    let origin = origin().await;
    let dir = tempfile::tempdir().unwrap();
    let yaml = dir.path().join("imaginator.yml");
    std::fs::write(
        &yaml,
        format!(
            "domains:\n  fx: \"{origin}\"\ncaches: {{}}\naliases:\n  thumb: \"resize(download({{0}}),{{1}},0)\"\n  \
             mirror: \"flop({{0}}):format(png)\"\n  big: \"fit-in({{0}},{{1}},{{1}})\"\nallow_builtin_filters: false\n"
        ),
    )
    .unwrap();
    let native = dir.path().join("native");
    imaginator::compat::migrate::migrate(&std::fs::read_to_string(&yaml).unwrap(), &native, false).unwrap();
    let (compat_base, _a) = serve_config(&yaml, &dir.path().join("data-compat")).await;
    let (native_base, _b) = serve_config(&native.join("imaginator.toml"), &dir.path().join("data-native")).await;
    let client = reqwest::Client::new();
    let get = |url: String| {
        let client = client.clone();
        async move {
            let r = client.get(&url).send().await.unwrap();
            assert_eq!(r.status(), 200, "{url}");
            r.bytes().await.unwrap()
        }
    };
    for (compat_url, native_url) in [
        ("thumb(fx:photo.jpg,200)", "download(fx:photo.jpg):thumb(200)"),
        ("download(fx:photo.jpg):mirror()", "download(fx:photo.jpg):mirror()"),
        ("download(fx:photo.jpg):big(1000)", "download(fx:photo.jpg):big(1000)"),
    ] {
        let ours = get(format!("{compat_base}{compat_url}")).await;
        let theirs = get(format!("{native_base}{native_url}")).await;
        let ((f1, a), (f2, b)) = (decode(&ours), decode(&theirs));
        assert_eq!(f1, f2, "{compat_url}: format");
        assert_eq!(
            a.dimensions(),
            b.dimensions(),
            "{compat_url}: size (fit-in enlarges in both)"
        );
        assert_eq!(
            identify(&ours, "%Q"),
            identify(&theirs, "%Q"),
            "{compat_url}: the source's own quality in both"
        );
        // The same picture by two pipelines: natively a JPEG is decoded
        // reduced (DCT scaling) and resized with the service's own filter
        // where the original decoded it whole and used Lanczos.
        close_to(&a, &b, 32.0, compat_url);
    }
}

#[tokio::test]
async fn a_long_chain_of_large_steps_renders_in_one_job() {
    // Seven 2900x2900 steps (84 MB of pixel cache each, 589 MB in all, more
    // than the 512 MiB budget) lowered into one plan. That the job reserves
    // its peak, not the sum, is `magick::estimate`'s unit test; here the
    // whole chain renders to the size its last step asks for.
    let s = start("allow_builtin_filters: true\n").await;
    let steps: String = (0..7).map(|i| format!(":resize({},2900)", 2900 - i)).collect();
    let started = std::time::Instant::now();
    let r = s.get(&format!("download(fx:photo.jpg){steps}:resize(100,100)")).await;
    assert_eq!(r.status(), 200);
    // Compat renders run as native jobs do, timing included.
    let timing = r.headers()["server-timing"].to_str().unwrap().to_string();
    assert!(
        timing.contains("queue;dur=") && timing.contains("render;dur="),
        "{timing}"
    );
    let (_, img) = decode(&r.bytes().await.unwrap());
    assert_eq!(img.dimensions(), (100, 100));
    eprintln!("seven 8.4 MP steps: {:?}", started.elapsed());
}

#[test]
fn the_sample_config_in_docs_loads() {
    let Loaded {
        settings,
        compat,
        warnings,
    } = load(Some(&repo_path("docs/imaginator.yml")), Vec::<(String, String)>::new())
        .expect("docs/imaginator.yml loads");
    let compat = compat.expect("a YAML file turns the compat profile on");
    assert_eq!(compat.aliases.len(), 3);
    assert_eq!(compat.caches["thumbs"].size, 1 << 30);
    assert_eq!(settings.listen.to_string(), "0.0.0.0:3000");
    assert!(warnings.iter().any(|w| w.contains("require_signature")), "{warnings:?}");
}

/// Hostile clients, round 2, class 5: a shortcut to `localhost` admits its
/// own scheme, host and port, nothing else; the service's own listener is
/// never a download target, under any name; and a request carrying this
/// process's own downloads' `Via` is refused as a loop.
#[tokio::test]
async fn a_localhost_shortcut_opens_its_own_port_only_and_never_the_service_itself() {
    let origin = origin().await;
    let port = origin.trim_end_matches('/').rsplit(':').next().unwrap().to_string();
    let shortcut = format!("  lo: \"http://localhost:{port}/\"\n");
    let open = start_with_domains(&origin, &shortcut, "allow_builtin_filters: true\n").await;
    let own = open.base.trim_end_matches('/').rsplit(':').next().unwrap().to_string();
    assert_eq!(
        open.fetch("download(lo:photo.jpg)").await.0,
        200,
        "the shortcut itself works"
    );
    for url in [
        format!("download(http://localhost:{own}/debug/memory)"),
        format!("download(http://localhost:{own}/metrics)"),
        format!("download(http://127.0.0.1:{own}/debug/memory)"),
        format!("download(http://[::1]:{own}/debug/memory)"),
        "download(http://localhost:1/debug/memory)".to_string(),
    ] {
        let (status, _, body) = open.fetch(&url).await;
        let body = String::from_utf8_lossy(&body);
        assert!(status == 403 || status == 400, "{url}: {status} {body}");
        assert!(
            !body.contains("jemalloc") && !body.contains("imaginator_"),
            "{url}: {body}"
        );
    }

    // Built-in filters off: an alias that downloads its argument.
    let aliases = "allow_builtin_filters: false\naliases:\n  thumb: \"download({0}):resize({1},0)\"\n";
    let closed = start_with_domains(&origin, &shortcut, aliases).await;
    let own = closed
        .base
        .trim_end_matches('/')
        .rsplit(':')
        .next()
        .unwrap()
        .to_string();
    let (status, _, body) = closed
        .fetch(&format!("thumb(http://localhost:{own}/dump_profile,1)"))
        .await;
    assert!(
        status == 403 || status == 400,
        "{status}: {}",
        String::from_utf8_lossy(&body)
    );
    let profiling: serde_json::Value = closed.get("debug/memory").await.json().await.unwrap();
    assert_eq!(
        profiling["allocator"]["profiling_active"], false,
        "heap profiling was not switched on through a download"
    );

    let looped = closed
        .client
        .get(format!("{}healthz", closed.base))
        .header("via", format!("1.1 {}", imaginator::fetch::via_pseudonym()))
        .send()
        .await
        .unwrap();
    assert_eq!(looped.status(), 508, "one of our own downloads come back");
}

/// Hostile clients, round 2, class 6: `require_signature` covers every
/// route, not only the chain route: uploads, transforms, info, the alias
/// list and the playground refuse unsigned requests from anyone but an
/// operator, and take the native query signature made with the YAML secret.
#[tokio::test]
async fn require_signature_covers_every_route() {
    let secret = "a-yaml-secret";
    let c = start(&format!("secret: {secret}\nrequire_signature: true\n")).await;
    let outside = |r: reqwest::RequestBuilder| r.header("x-forwarded-for", "203.0.113.9");
    let photo = fixture("photo.jpg");
    for (method, path) in [
        ("POST", "transform/thumbnail?width=50"),
        ("POST", "images"),
        ("POST", "info"),
        ("GET", "ui"),
        ("GET", "aliases"),
        ("GET", "download(fx:photo.jpg)"),
    ] {
        let url = format!("{}{path}", c.base);
        let request = match method {
            "POST" => c.client.post(&url).body(photo.clone()),
            _ => c.client.get(&url),
        };
        let status = outside(request).send().await.unwrap().status().as_u16();
        assert_eq!(status, 403, "unsigned {method} /{path}");
    }
    for path in ["transform/thumbnail?width=50", "info", "images"] {
        let signature = imaginator::signature::sign(secret, path);
        let separator = if path.contains('?') { '&' } else { '?' };
        let url = format!("{}{path}{separator}signature={signature}", c.base);
        let r = outside(
            c.client
                .post(url)
                .header("content-type", "image/jpeg")
                .body(photo.clone()),
        )
        .send()
        .await
        .unwrap();
        assert!(r.status().is_success(), "signed POST /{path}: {}", r.status());
    }
}
