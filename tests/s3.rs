//! Two imaginator processes sharing one bucket of a real S3-compatible server
//! (Garage, installed by scripts/setup), all on 127.0.0.1: an upload through
//! one is served by the other, and so is a rendition the first one made.

mod common;

use common::{fixture, start_binary_with};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const EXE: &str = env!("CARGO_BIN_EXE_imaginator");

fn garage_binary() -> PathBuf {
    let candidates = [
        std::env::var("GARAGE_BIN").ok().map(PathBuf::from),
        Some(PathBuf::from("garage")),
        std::env::var("CARGO_HOME")
            .ok()
            .map(|h| Path::new(&h).join("bin/garage")),
        std::env::var("HOME")
            .ok()
            .map(|h| Path::new(&h).join(".cargo/bin/garage")),
    ];
    candidates
        .into_iter()
        .flatten()
        .find(|p| {
            Command::new(p)
                .arg("--version")
                .output()
                .is_ok_and(|o| o.status.success())
        })
        .expect("the garage S3 server is needed for this test: run scripts/setup (it installs it)")
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Garage {
    child: Child,
    bin: PathBuf,
    config: PathBuf,
    s3_port: u16,
    _dir: tempfile::TempDir,
}

impl Garage {
    fn cli(&self, args: &[&str]) -> String {
        let out = Command::new(&self.bin)
            .arg("-c")
            .arg(&self.config)
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "garage {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    fn start() -> Garage {
        let bin = garage_binary();
        let dir = tempfile::tempdir().unwrap();
        let (rpc, s3, admin) = (free_port(), free_port(), free_port());
        let config = dir.path().join("garage.toml");
        let secret: String = (0..64).map(|i| b"0123456789abcdef"[(i * 7 + 3) % 16] as char).collect();
        std::fs::write(
            &config,
            format!(
                "metadata_dir = \"{d}/meta\"\ndata_dir = \"{d}/data\"\ndb_engine = \"sqlite\"\nreplication_factor = 1\n\
                 rpc_bind_addr = \"127.0.0.1:{rpc}\"\nrpc_public_addr = \"127.0.0.1:{rpc}\"\nrpc_secret = \"{secret}\"\n\
                 [s3_api]\ns3_region = \"garage\"\napi_bind_addr = \"127.0.0.1:{s3}\"\nroot_domain = \".s3.garage.localhost\"\n\
                 [admin]\napi_bind_addr = \"127.0.0.1:{admin}\"\n",
                d = dir.path().display()
            ),
        )
        .unwrap();
        let child = Command::new(&bin)
            .arg("-c")
            .arg(&config)
            .arg("server")
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let garage = Garage {
            child,
            bin,
            config,
            s3_port: s3,
            _dir: dir,
        };
        // `node id` only reads the key on disk; `status` needs the RPC server up.
        let until = Instant::now() + Duration::from_secs(30);
        loop {
            let up = Command::new(&garage.bin)
                .arg("-c")
                .arg(&garage.config)
                .arg("status")
                .output()
                .unwrap();
            if up.status.success() {
                break;
            }
            assert!(
                Instant::now() < until,
                "garage did not start: {}",
                String::from_utf8_lossy(&up.stderr)
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        let node = garage
            .cli(&["node", "id", "-q"])
            .trim()
            .split('@')
            .next()
            .unwrap()
            .to_string();
        garage.cli(&["layout", "assign", "-z", "dc1", "-c", "1G", &node]);
        garage.cli(&["layout", "apply", "--version", "1"]);
        garage
    }

    /// Creates a bucket and a key allowed on it; returns (key id, secret).
    fn bucket(&self, name: &str) -> (String, String) {
        let out = self.cli(&["key", "create", "imaginator-test"]);
        let field = |label: &str| {
            out.lines()
                .find_map(|l| l.trim().strip_prefix(label).map(|v| v.trim().to_string()))
                .unwrap_or_else(|| panic!("no `{label}` in:\n{out}"))
        };
        let (id, secret) = (field("Key ID:"), field("Secret key:"));
        self.cli(&["bucket", "create", name]);
        self.cli(&[
            "bucket",
            "allow",
            "--read",
            "--write",
            "--owner",
            name,
            "--key",
            "imaginator-test",
        ]);
        (id, secret)
    }
}

impl Drop for Garage {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_share_originals_and_renditions_through_s3() {
    let garage = Garage::start();
    let (key, secret) = garage.bucket("imaginator");
    let env = [
        ("IMAGINATOR_STORAGE__BACKEND", "s3".to_string()),
        ("IMAGINATOR_STORAGE__S3__BUCKET", "imaginator".to_string()),
        (
            "IMAGINATOR_STORAGE__S3__ENDPOINT",
            format!("http://127.0.0.1:{}", garage.s3_port),
        ),
        ("IMAGINATOR_STORAGE__S3__REGION", "garage".to_string()),
        ("IMAGINATOR_STORAGE__S3__ACCESS_KEY_ID", key),
        ("IMAGINATOR_STORAGE__S3__SECRET_ACCESS_KEY", secret),
        ("IMAGINATOR_STORAGE__S3__ALLOW_HTTP", "true".to_string()),
    ];
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (mut a, addr_a) = start_binary_with(EXE, dir_a.path(), &env);
    let (mut b, addr_b) = start_binary_with(EXE, dir_b.path(), &env);
    let client = reqwest::Client::new();

    let upload = client
        .post(format!("http://{addr_a}/images"))
        .header("content-type", "image/jpeg")
        .body(fixture("photo.jpg"))
        .send()
        .await
        .unwrap();
    assert_eq!(upload.status(), 201);
    let id = upload.json::<serde_json::Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();

    // The other replica serves the original it never saw uploaded...
    let original = client.get(format!("http://{addr_b}/images/{id}")).send().await.unwrap();
    assert_eq!(original.status(), 200);
    assert_eq!(
        original.bytes().await.unwrap().as_ref(),
        fixture("photo.jpg").as_slice()
    );
    // ...and the same bytes uploaded there are recognised (200, same id).
    let again = client
        .post(format!("http://{addr_b}/images"))
        .header("content-type", "image/jpeg")
        .body(fixture("photo.jpg"))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 200);

    // A rendition made by A is found in the bucket by B.
    let path = format!("/images/{id}/thumbnail?width=100");
    let made = client.get(format!("http://{addr_a}{path}")).send().await.unwrap();
    assert_eq!(made.headers()["x-cache"], "miss");
    let made = made.bytes().await.unwrap();
    let shared = client.get(format!("http://{addr_b}{path}")).send().await.unwrap();
    assert_eq!(
        shared.headers()["x-cache"],
        "hit-disk",
        "B found A's rendition in the shared tier"
    );
    assert_eq!(shared.bytes().await.unwrap(), made);
    assert!(
        common::files_under(&dir_b.path().join("cache")).is_empty(),
        "nothing on B's local disk"
    );

    // Deleting through B removes it for A too.
    let deleted = client
        .delete(format!("http://{addr_b}/images/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 204);
    let gone = client.get(format!("http://{addr_a}/images/{id}")).send().await.unwrap();
    assert_eq!(gone.status(), 404);
    // A still holds the rendition in its memory tier; it stops serving it
    // once it re-checks that the original exists (at most every 5 s).
    let started = std::time::Instant::now();
    let mut status = 200;
    while status == 200 && started.elapsed() < std::time::Duration::from_secs(15) {
        status = client
            .get(format!("http://{addr_a}{path}"))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16();
        if status == 200 {
            tokio::time::sleep(std::time::Duration::from_millis(250)).await;
        }
    }
    println!(
        "A stopped serving the deleted image's rendition after {:?}",
        started.elapsed()
    );
    assert_eq!(
        status, 404,
        "a replica does not serve renditions of a deleted original for long"
    );

    for child in [&mut a, &mut b] {
        child.kill().unwrap();
        child.wait().unwrap();
    }
}
