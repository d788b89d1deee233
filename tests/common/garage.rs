//! Garage, a real S3-compatible server (installed by scripts/setup), run on
//! 127.0.0.1 with its own directories: started, stopped and restarted by the
//! tests that need shared object storage.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

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

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub struct Garage {
    child: Option<Child>,
    bin: PathBuf,
    config: PathBuf,
    pub s3_port: u16,
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

    /// A single-node cluster with its layout applied.
    pub fn start() -> Garage {
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
        let mut garage = Garage {
            child: None,
            bin,
            config,
            s3_port: s3,
            _dir: dir,
        };
        garage.resume();
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

    /// Starts the server process (again, after `stop`) and waits until its
    /// RPC answers.
    pub fn resume(&mut self) {
        assert!(self.child.is_none(), "garage is already running");
        let child = Command::new(&self.bin)
            .arg("-c")
            .arg(&self.config)
            .arg("server")
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        self.child = Some(child);
        // `node id` only reads the key on disk; `status` needs the RPC server up.
        let until = Instant::now() + Duration::from_secs(30);
        loop {
            let up = Command::new(&self.bin)
                .arg("-c")
                .arg(&self.config)
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
    }

    /// Kills the server: every S3 request is refused until `resume`.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Creates a bucket and a key allowed on it; returns (key id, secret).
    pub fn bucket(&self, name: &str) -> (String, String) {
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

    /// The `IMAGINATOR_*` variables of a service storing in `bucket` here.
    pub fn service_env(&self, bucket: &str) -> Vec<(&'static str, String)> {
        let (key, secret) = self.bucket(bucket);
        vec![
            ("IMAGINATOR_STORAGE__BACKEND", "s3".to_string()),
            ("IMAGINATOR_STORAGE__S3__BUCKET", bucket.to_string()),
            (
                "IMAGINATOR_STORAGE__S3__ENDPOINT",
                format!("http://127.0.0.1:{}", self.s3_port),
            ),
            ("IMAGINATOR_STORAGE__S3__REGION", "garage".to_string()),
            ("IMAGINATOR_STORAGE__S3__ACCESS_KEY_ID", key),
            ("IMAGINATOR_STORAGE__S3__SECRET_ACCESS_KEY", secret),
            ("IMAGINATOR_STORAGE__S3__ALLOW_HTTP", "true".to_string()),
        ]
    }
}

impl Drop for Garage {
    fn drop(&mut self) {
        self.stop();
    }
}
