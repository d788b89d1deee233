//! Test harness: the real server on port 0 with a private data directory,
//! real image fixtures, and image comparison helpers.
#![allow(dead_code)]

pub mod garage;

use image::{DynamicImage, GenericImageView};
use imaginator::{App, Settings};
use std::path::{Path, PathBuf};
use tempfile::TempDir;
use tokio::sync::oneshot;

pub struct TestServer {
    pub base: String,
    /// The server's data directory.
    pub data: PathBuf,
    pub client: reqwest::Client,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
    _dirs: Vec<TempDir>,
}

pub fn repo_path(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

pub fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(repo_path("tests/fixtures").join(name)).unwrap_or_else(|e| panic!("fixture {name}: {e}"))
}

/// A copy of the shipped aliases plus `extra` (name, TOML text).
pub fn aliases_with(extra: &[(&str, &str)]) -> TempDir {
    let dir = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(repo_path("aliases")).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, dir.path().join(path.file_name().unwrap())).unwrap();
    }
    for (name, text) in extra {
        std::fs::write(dir.path().join(format!("{name}.toml")), text).unwrap();
    }
    dir
}

/// An alias that enlarges to 10 MP with Lanczos: about half a second of work
/// in ImageMagick, for load and deadline tests.
pub const HEAVY: (&str, &str) = (
    "heavy",
    "chain = \"resize(4000,2500,lanczos)\"\n[output]\nformat = \"jpeg\"\n",
);

impl TestServer {
    pub async fn start() -> TestServer {
        TestServer::start_with(&[], |_| {}).await
    }

    pub async fn start_with(extra_aliases: &[(&str, &str)], configure: impl FnOnce(&mut Settings)) -> TestServer {
        let data = tempfile::tempdir().unwrap();
        let path = data.path().to_path_buf();
        let mut server = TestServer::start_in(&path, extra_aliases, configure).await;
        server._dirs.push(data);
        server
    }

    /// A server on an existing data directory (to test restarts).
    pub async fn start_in(
        data: &Path,
        extra_aliases: &[(&str, &str)],
        configure: impl FnOnce(&mut Settings),
    ) -> TestServer {
        let aliases = aliases_with(extra_aliases);
        let env = vec![
            ("IMAGINATOR_LISTEN".to_string(), "127.0.0.1:0".to_string()),
            ("IMAGINATOR_DATA_DIR".to_string(), data.display().to_string()),
            (
                "IMAGINATOR_ALIASES_DIR".to_string(),
                aliases.path().display().to_string(),
            ),
            ("IMAGINATOR_WORKERS".to_string(), "2".to_string()),
        ];
        let (mut settings, _) = Settings::load(None, env).expect("test settings");
        configure(&mut settings);
        let app = App::build(settings).await.expect("app builds");
        let base = format!("http://{}", app.local_addr());
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(app.run(async move {
            let _ = rx.await;
        }));
        TestServer {
            base,
            data: data.to_path_buf(),
            client: reqwest::Client::new(),
            shutdown: Some(tx),
            task: Some(task),
            _dirs: vec![aliases],
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub async fn post(&self, path: &str, body: Vec<u8>) -> reqwest::Response {
        self.client
            .post(self.url(path))
            .body(body)
            .send()
            .await
            .expect("request sent")
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client.get(self.url(path)).send().await.expect("request sent")
    }

    pub async fn head(&self, path: &str) -> reqwest::Response {
        self.client.head(self.url(path)).send().await.expect("request sent")
    }

    /// `GET path` with `If-None-Match: etag`.
    pub async fn get_if_none_match(&self, path: &str, etag: &str) -> reqwest::Response {
        self.client
            .get(self.url(path))
            .header("if-none-match", etag)
            .send()
            .await
            .expect("request sent")
    }

    /// `POST /images` with the bytes as an `image/*` body; returns (status, JSON).
    pub async fn upload(&self, bytes: Vec<u8>) -> (u16, serde_json::Value) {
        let response = self
            .client
            .post(self.url("/images"))
            .header("content-type", "image/jpeg")
            .body(bytes)
            .send()
            .await
            .expect("request sent");
        let status = response.status().as_u16();
        (status, response.json().await.expect("JSON answer"))
    }

    pub async fn metrics(&self) -> String {
        self.get("/metrics").await.text().await.unwrap()
    }

    /// Stops the server the way SIGTERM does and waits for it.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.expect("server task").expect("server ran cleanly");
        }
    }
}

/// Every regular file under `dir`, recursively, with its size.
pub fn files_under(dir: &Path) -> Vec<(PathBuf, u64)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else { continue };
        for e in entries.flatten() {
            let meta = e.metadata().unwrap();
            if meta.is_dir() {
                stack.push(e.path());
            } else {
                out.push((e.path(), meta.len()));
            }
        }
    }
    out
}

/// A PNG whose header declares `width` x `height` (a decompression bomb's
/// shape: tiny file, huge image).
pub fn png_declaring(width: u32, height: u32) -> Vec<u8> {
    fn chunk(kind: &[u8], data: &[u8]) -> Vec<u8> {
        let mut c = (data.len() as u32).to_be_bytes().to_vec();
        c.extend_from_slice(kind);
        c.extend_from_slice(data);
        let mut crc_input = kind.to_vec();
        crc_input.extend_from_slice(data);
        c.extend_from_slice(&crc32(&crc_input).to_be_bytes());
        c
    }
    fn crc32(bytes: &[u8]) -> u32 {
        let mut crc = 0xFFFF_FFFFu32;
        for &b in bytes {
            crc ^= u32::from(b);
            for _ in 0..8 {
                crc = if crc & 1 != 0 {
                    (crc >> 1) ^ 0xEDB8_8320
                } else {
                    crc >> 1
                };
            }
        }
        !crc
    }
    let mut ihdr = width.to_be_bytes().to_vec();
    ihdr.extend_from_slice(&height.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    png.extend(chunk(b"IHDR", &ihdr));
    // A zlib stream of a few zero bytes: far too little data for the declared size.
    png.extend(chunk(
        b"IDAT",
        &[0x78, 0x9c, 0x63, 0x60, 0x00, 0x00, 0x00, 0x02, 0x00, 0x01],
    ));
    png.extend(chunk(b"IEND", &[]));
    png
}

fn sample(scrape: &str, name_and_labels: &str) -> Option<f64> {
    scrape
        .lines()
        .find(|l| l.starts_with(name_and_labels) && l[name_and_labels.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

/// Reads a counter or gauge sample from a Prometheus text scrape; a missing
/// series fails the test (a renamed metric must not pass as 0).
pub fn metric_value(scrape: &str, name_and_labels: &str) -> f64 {
    sample(scrape, name_and_labels).unwrap_or_else(|| panic!("no series `{name_and_labels}` in the scrape"))
}

/// As `metric_value`, for a labelled counter that may not have counted yet
/// (Prometheus exports a label set once it is used): 0 then, but only if the
/// metric itself is exported.
pub fn metric_or_zero(scrape: &str, name_and_labels: &str) -> f64 {
    let name = name_and_labels.split('{').next().unwrap_or(name_and_labels);
    let family = ["_count", "_sum", "_bucket"]
        .iter()
        .find_map(|suffix| name.strip_suffix(suffix))
        .unwrap_or(name);
    assert!(
        scrape.contains(&format!("# TYPE {name} ")) || scrape.contains(&format!("# TYPE {family} ")),
        "metric `{name}` is not exported"
    );
    sample(scrape, name_and_labels).unwrap_or(0.0)
}

/// An error response's `error.code`, checking the JSON shape on the way.
pub async fn error_code(response: reqwest::Response) -> (u16, String, String) {
    let status = response.status().as_u16();
    let body: serde_json::Value = response.json().await.expect("error body is JSON");
    let code = body["error"]["code"].as_str().expect("error.code").to_string();
    let message = body["error"]["message"].as_str().expect("error.message").to_string();
    (status, code, message)
}

pub fn decode(bytes: &[u8]) -> (image::ImageFormat, DynamicImage) {
    let format = image::guess_format(bytes).expect("a known image format");
    (format, image::load_from_memory(bytes).expect("decodable image"))
}

/// Peak signal-to-noise ratio of two same-sized images over RGB, in dB.
pub fn psnr(a: &DynamicImage, b: &DynamicImage) -> f64 {
    assert_eq!(
        a.dimensions(),
        b.dimensions(),
        "images to compare must have the same size"
    );
    let (a, b) = (a.to_rgb8(), b.to_rgb8());
    let mse: f64 = a
        .as_raw()
        .iter()
        .zip(b.as_raw())
        .map(|(x, y)| (f64::from(*x) - f64::from(*y)).powi(2))
        .sum::<f64>()
        / a.as_raw().len() as f64;
    if mse == 0.0 {
        f64::INFINITY
    } else {
        10.0 * (255.0f64 * 255.0 / mse).log10()
    }
}

/// The real binary (`env!("CARGO_BIN_EXE_imaginator")` of the calling test),
/// with no inherited `IMAGINATOR_*` variables and the shipped aliases.
pub fn binary(exe: &str) -> std::process::Command {
    let mut cmd = std::process::Command::new(exe);
    for (key, _) in std::env::vars() {
        if key.starts_with("IMAGINATOR_") {
            cmd.env_remove(key);
        }
    }
    cmd.env("IMAGINATOR_ALIASES_DIR", repo_path("aliases"));
    cmd
}

/// Starts the binary on a free port with `data` as its data directory and
/// returns it with its address, read from the JSON start-up log line.
pub fn start_binary(exe: &str, data: &Path) -> (std::process::Child, String) {
    start_binary_with(exe, data, &[])
}

/// As `start_binary`, with extra environment variables.
pub fn start_binary_with(exe: &str, data: &Path, env: &[(&str, String)]) -> (std::process::Child, String) {
    let (child, started) = start_binary_logged(exe, data, env);
    (child, started["listen"].as_str().unwrap().to_string())
}

/// As `start_binary_with`, returning the whole JSON start-up log line
/// (`listen`, `admin_listen`, `workers`, ...).
pub fn start_binary_logged(exe: &str, data: &Path, env: &[(&str, String)]) -> (std::process::Child, serde_json::Value) {
    use std::io::BufRead;
    use std::process::Stdio;
    use std::time::{Duration, Instant};
    let mut cmd = binary(exe);
    for (k, v) in env {
        cmd.env(k, v);
    }
    if !env.iter().any(|(k, _)| *k == "IMAGINATOR_LISTEN") {
        cmd.env("IMAGINATOR_LISTEN", "127.0.0.1:0");
    }
    let mut child = cmd
        .env("IMAGINATOR_DATA_DIR", data)
        .env("IMAGINATOR_LOG__FORMAT", "json")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .expect("server starts");
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let deadline = Instant::now() + Duration::from_secs(30);
    let started = loop {
        assert!(Instant::now() < deadline, "no start-up line");
        let line = lines.next().expect("server exited before starting").unwrap();
        let entry: serde_json::Value = serde_json::from_str(&line).expect("JSON log line");
        if entry["message"] == "imaginator started" {
            break entry;
        }
    };
    // Keep draining the log so the server never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    (child, started)
}

/// A local HTTP origin on 127.0.0.1 serving the fixtures by name
/// (`/photo.jpg`); any other name is its 404.
pub async fn fixture_origin() -> String {
    use axum::extract::Path as UrlPath;
    use axum::response::IntoResponse;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let app = axum::Router::new().route(
        "/{name}",
        axum::routing::get(|UrlPath(name): UrlPath<String>| async move {
            match std::fs::read(repo_path("tests/fixtures").join(&name)) {
                Ok(bytes) => bytes.into_response(),
                Err(_) => axum::http::StatusCode::NOT_FOUND.into_response(),
            }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://127.0.0.1:{port}/")
}

/// SHA-256 of `bytes` in lowercase hex: an original's id.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    <sha2::Sha256 as sha2::Digest>::digest(bytes)
        .iter()
        .fold(String::new(), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

/// What `magick identify -format` says about an encoded image.
pub fn identify(bytes: &[u8], format: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("out");
    std::fs::write(&file, bytes).unwrap();
    let out = std::process::Command::new("magick")
        .args(["identify", "-format", format])
        .arg(&file)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}
