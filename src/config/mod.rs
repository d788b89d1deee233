//! One settings tree: defaults in code, then an optional TOML file, then
//! `IMAGINATOR_*` environment overrides, then `validate()`. Anything invalid
//! stops start-up with one line naming the key and the problem.

mod units;

pub use units::{ByteSize, HumanDuration};

use crate::pipeline::format::ImageFormat;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Prefix of every environment override; nested keys use `__`
/// (`IMAGINATOR_LIMITS__MAX_WIDTH` sets `limits.max_width`).
pub const ENV_PREFIX: &str = "IMAGINATOR_";
/// Environment variable naming the configuration file (like `--config`).
pub const ENV_CONFIG_FILE: &str = "IMAGINATOR_CONFIG";

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    /// Address the HTTP server binds (port 0 picks a free port). Also
    /// `:3000` (every interface) and `localhost:3000` (loopback).
    #[serde(deserialize_with = "units::listen_address")]
    pub listen: SocketAddr,
    /// A second listener for the admin routes (`/dump_profile`, `/debug/*`,
    /// `/admin/*`, `DELETE /images/{id}`) and `/metrics`. When set, those are
    /// not served on `listen` (404 there). Unset: everything on `listen`.
    #[serde(deserialize_with = "units::optional_listen_address")]
    pub admin_listen: Option<SocketAddr>,
    /// Where originals and cached results live.
    pub data_dir: PathBuf,
    /// Directory of `*.toml` alias files, loaded and validated at start-up.
    pub aliases_dir: PathBuf,
    /// ImageMagick worker threads. Default: available parallelism (respects
    /// the cgroup CPU quota on Linux).
    pub workers: usize,
    /// Jobs that may wait for a worker; when full, requests get 503. Default 4 x workers.
    pub queue: Option<usize>,
    /// Wall-clock budget of one job, queue wait included.
    pub job_deadline: HumanDuration,
    /// How long SIGTERM waits for in-flight requests before giving up on them.
    pub shutdown_grace: HumanDuration,
    /// Largest accepted request body, enforced while streaming.
    pub max_body: ByteSize,
    /// Bytes of request bodies and downloads held in memory at once; past it,
    /// new ones are refused with 503 before a byte is read. Default:
    /// (workers + queue) x `max_body`.
    pub max_inflight_bytes: Option<ByteSize>,
    /// Seconds suggested to clients in `Retry-After` when the queue is full.
    pub retry_after_secs: u32,
    /// Bearer token that opens the admin endpoints (`/dump_profile`, `/debug/*`)
    /// to non-loopback callers. Empty: loopback only. Never logged.
    pub admin_token: String,
    /// Shrink-on-load: a JPEG is decoded at a reduced size (libjpeg's DCT
    /// scaling) that keeps this factor of resolution above what the pipeline's
    /// first resize needs. 1.0 is fastest; docs/benchmarks.md has the measured
    /// speed and quality of 1.0 and 2.0.
    pub decode_headroom: f64,
    /// Render the commonest plans (a JPEG in, one resize, fit-in or cover, a
    /// stripped JPEG out, sRGB or untagged) with libjpeg-turbo and a SIMD
    /// resizer instead of ImageMagick, with the same result
    /// (`crate::fast`). false: ImageMagick renders everything.
    pub fast_path: bool,
    /// Formats `POST /images` accepts (sniffed from magic bytes).
    pub upload_formats: Vec<ImageFormat>,
    /// The formats `format = "auto"` (and `format(auto)`) may choose when
    /// the request's `Accept` allows them: `avif`, `webp` or both, or none
    /// (AVIF costs the most CPU to encode).
    pub auto_formats: Vec<ImageFormat>,
    /// Client hints: image responses carry `Accept-CH: Sec-CH-DPR,
    /// Sec-CH-Width, DPR, Width`; an alias rendition without `dpr` takes
    /// `Sec-CH-DPR` (or `DPR`) as its dpr and, for an alias with a `width`
    /// parameter not given, `Sec-CH-Width` (or `Width`) as its width;
    /// `Save-Data: on` lowers the quality by 20 (to no less than 30).
    pub client_hints: bool,
    /// Accept built-in filters in client URLs; when false (the original's
    /// default) clients may only use aliases.
    pub allow_builtin_filters: bool,
    /// HMAC secrets for signed URLs (several, for rotation). When any is set,
    /// every chain URL must be `/{signature}/{chain}`. Never logged.
    pub secrets: Vec<String>,
    /// Also accept the original imaginator's 28-character HMAC-SHA1 signatures.
    pub legacy_sha1_signatures: bool,
    /// With `secrets` set, sign every image-producing request, not only chain
    /// URLs: renditions (`GET /images/{id}/{alias}`) need a `signature` query
    /// parameter over their path and the rest of the query, and
    /// `POST /transform/{alias}` needs one too, or the admin bearer token.
    pub sign_all_routes: bool,
    /// Who may send images (every route whose body is an image:
    /// `POST /images`, `POST /transform/{alias}`, `POST /info`): `open`
    /// (anyone), `token` (`Authorization: Bearer` with `upload_token` or
    /// `admin_token`) or `signed` (a `signature` query parameter, as
    /// `sign_all_routes` asks of renditions, or the admin token). Unset: `signed`
    /// when every route is signed, else `open` when `listen` is a loopback
    /// address, else `token`. The start-up log states the policy in force.
    pub uploads: Option<UploadPolicy>,
    /// Bearer token that admits uploads under `uploads = "token"` (the admin
    /// token does too). Never logged.
    pub upload_token: String,
    /// When set, responses carry this header listing the executed filters and
    /// each cache's hit or miss, as the original did.
    pub log_filters_header: String,
    /// Domain shortcuts: `origin = "http://127.0.0.1:8080/"` makes
    /// `download(origin:a.jpg)` fetch `http://127.0.0.1:8080/a.jpg`. A shortcut's
    /// base URL is explicitly allowed, even on loopback or a private network.
    pub domains: std::collections::BTreeMap<String, String>,
    pub download: DownloadSettings,
    pub fetch: FetchSettings,
    pub chain: ChainSettings,
    pub http: HttpSettings,
    pub limits: Limits,
    pub cache: CacheSettings,
    pub storage: StorageSettings,
    pub memory: MemorySettings,
    pub log: LogSettings,
    pub quarantine: QuarantineSettings,
    pub ui: UiSettings,
    pub info: InfoSettings,
    /// The signing rules of imaginator 2018's YAML file (`secret`,
    /// `require_signature`), when the compat profile is on. Not a TOML key:
    /// the loader (`crate::load`) sets it.
    #[serde(skip)]
    pub original_signing: Option<OriginalSigning>,
}

/// The YAML file's signing rules, as the access policy needs them.
#[derive(Clone, Debug, Default)]
pub struct OriginalSigning {
    /// `secret` (any length: the original had no minimum). Never logged.
    pub secret: Option<String>,
    /// `require_signature`: refuse unsigned requests (the original served them).
    pub required: bool,
}

/// Who may send images to the service (`uploads`).
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum UploadPolicy {
    Open,
    Token,
    Signed,
}

impl std::fmt::Display for UploadPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            UploadPolicy::Open => "open",
            UploadPolicy::Token => "token",
            UploadPolicy::Signed => "signed",
        })
    }
}

/// `GET /images/{id}/info` and `POST /info`.
#[derive(Clone, Debug, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct InfoSettings {
    /// Include EXIF GPS coordinates (where a photo was taken: personal data,
    /// off by default).
    pub include_gps: bool,
}

/// The built-in pages (`crate::http::ui`).
#[derive(Clone, Debug, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct UiSettings {
    /// `/ui` (the playground) on the public listener, and `/ui/memory` there
    /// for admin callers: `auto` (the default) serves them when `listen` is
    /// a loopback address, `true` or `false` decide. The admin listener
    /// always serves `/ui/memory`.
    pub enabled: UiEnabled,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum UiEnabled {
    #[default]
    Auto,
    On,
    Off,
}

impl UiEnabled {
    /// Whether the pages are served on a public listener bound to `listen`.
    pub fn resolve(self, listen: SocketAddr) -> bool {
        match self {
            UiEnabled::Auto => listen.ip().is_loopback(),
            UiEnabled::On => true,
            UiEnabled::Off => false,
        }
    }
}

impl Serialize for UiEnabled {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            UiEnabled::Auto => s.serialize_str("auto"),
            UiEnabled::On => s.serialize_bool(true),
            UiEnabled::Off => s.serialize_bool(false),
        }
    }
}

impl<'de> Deserialize<'de> for UiEnabled {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Bool(bool),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Bool(true) => Ok(UiEnabled::On),
            Raw::Bool(false) => Ok(UiEnabled::Off),
            Raw::Text(t) => match t.as_str() {
                "auto" => Ok(UiEnabled::Auto),
                "true" => Ok(UiEnabled::On),
                "false" => Ok(UiEnabled::Off),
                other => Err(serde::de::Error::custom(format!(
                    "expected true, false or \"auto\", got \"{other}\""
                ))),
            },
        }
    }
}

/// Crash quarantine (`crate::crash`): inputs being decoded when the process
/// died of a fatal signal get a strike; enough strikes and they are refused.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct QuarantineSettings {
    /// Crashes an input must have been in flight at to be refused.
    pub after_crashes: u32,
    /// How often every replica re-reads the strikes (shared through the
    /// bucket when storage is S3).
    pub refresh: HumanDuration,
}

impl Default for QuarantineSettings {
    fn default() -> Self {
        QuarantineSettings {
            after_crashes: 2,
            refresh: HumanDuration(Duration::from_secs(30)),
        }
    }
}

/// The memory report's own settings.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MemorySettings {
    /// The verdict compares the floor of the heap at rest over the last
    /// window with the window before (a verdict needs two windows); the
    /// sampler takes ten samples a window (at most one every 10 s, at least
    /// one a second).
    pub trend_window: HumanDuration,
}

impl Default for MemorySettings {
    fn default() -> Self {
        MemorySettings {
            trend_window: HumanDuration(Duration::from_secs(600)),
        }
    }
}

/// Remote sources for `download(url)`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DownloadSettings {
    /// URL prefixes that may be fetched besides the domain shortcuts
    /// (`https://images.example.com/`). Addresses in loopback, private,
    /// link-local, CGNAT and unique-local ranges are refused unless a shortcut
    /// or an entry here names them explicitly.
    pub allowed_origins: Vec<String>,
    /// Largest accepted download, enforced while streaming.
    pub max_bytes: ByteSize,
    /// Whole-fetch time budget (connect, redirects, body).
    pub timeout: HumanDuration,
    pub max_redirects: u32,
}

impl Default for DownloadSettings {
    fn default() -> Self {
        DownloadSettings {
            allowed_origins: Vec::new(),
            max_bytes: ByteSize::mib(32),
            timeout: HumanDuration(Duration::from_secs(10)),
            max_redirects: 3,
        }
    }
}

/// What one client may hold of the HTTP server: connections and the time to
/// send a request.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpSettings {
    /// Connections the kernel may queue before they are accepted (capped by
    /// `net.core.somaxconn`).
    pub backlog: u32,
    /// Open connections at most (a closing connection counts while it drains).
    /// At the cap, a new connection is admitted by closing the connection
    /// that waits the longest for a request, or one whose client has read
    /// nothing of its answer for a second; when there is none, new
    /// connections wait in the kernel's accept queue.
    pub max_connections: usize,
    /// Time to receive a request's headers; also how long a kept-alive
    /// connection may sit idle before the next request.
    pub header_timeout: HumanDuration,
    /// Time to receive a whole request body (408 beyond).
    pub body_timeout: HumanDuration,
    /// Longest an answer may wait for its client to read (no byte of it
    /// accepted by the socket); the connection is closed beyond.
    pub send_timeout: HumanDuration,
    /// Bytes a second a request body must arrive at, on average, after its
    /// first 3 seconds (408 when it falls behind): a body that is not
    /// arriving is cut off in proportion to what it sent, not after the
    /// whole `body_timeout`.
    pub body_min_rate: ByteSize,
}

impl Default for HttpSettings {
    fn default() -> Self {
        HttpSettings {
            backlog: 1024,
            max_connections: 1024,
            header_timeout: HumanDuration(Duration::from_secs(30)),
            body_timeout: HumanDuration(Duration::from_secs(30)),
            send_timeout: HumanDuration(Duration::from_secs(30)),
            body_min_rate: ByteSize::kib(64),
        }
    }
}

/// How downloads leave the machine.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FetchSettings {
    /// An HTTP proxy for every download (`http://proxy:3128`); empty:
    /// direct connections. `HTTP_PROXY`/`HTTPS_PROXY` from the environment are
    /// ignored: a proxy resolves names itself, past the service's address
    /// checks, so one is used only when configured here (and then the proxy
    /// must enforce the egress rules).
    pub proxy: String,
}

/// Bounds on chain URLs, checked while parsing.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ChainSettings {
    pub max_url_len: usize,
    pub max_steps: usize,
    pub max_depth: usize,
}

impl Default for ChainSettings {
    fn default() -> Self {
        ChainSettings {
            max_url_len: 2048,
            max_steps: 32,
            max_depth: 4,
        }
    }
}

/// Where originals and the shared result tier live.
#[derive(Clone, Debug, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct StorageSettings {
    /// `local` (under `data_dir`) or `s3` (an S3-compatible bucket, shared by replicas).
    pub backend: StorageBackend,
    pub s3: S3Settings,
}

#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum StorageBackend {
    #[default]
    Local,
    S3,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct S3Settings {
    pub bucket: String,
    /// e.g. `http://127.0.0.1:3900`; empty means AWS itself.
    pub endpoint: String,
    pub region: String,
    pub access_key_id: String,
    /// Never logged nor printed by `--print-config`.
    pub secret_access_key: String,
    /// Object key prefix, so several services can share a bucket.
    pub prefix: String,
    /// Allow plain-HTTP endpoints (a local test server).
    pub allow_http: bool,
    /// The longest one storage request may take, retries included; also
    /// bounds the readiness probe. A request that needs storage while it is
    /// unreachable fails with 503 after this.
    pub timeout: HumanDuration,
}

impl Default for S3Settings {
    fn default() -> Self {
        S3Settings {
            bucket: String::new(),
            endpoint: String::new(),
            region: "us-east-1".to_string(),
            access_key_id: String::new(),
            secret_access_key: String::new(),
            prefix: String::new(),
            allow_http: false,
            timeout: HumanDuration(Duration::from_secs(10)),
        }
    }
}

/// The result cache: a memory tier in front of a disk tier, both bounded in bytes.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CacheSettings {
    /// Budget of the in-memory tier (LRU).
    pub memory: ByteSize,
    /// Budget of the on-disk tier (evicted by recency; survives restarts).
    pub disk: ByteSize,
    /// `Cache-Control` sent with originals and results (their URLs are content-addressed).
    pub cache_control: String,
    /// The longest clients may cache a chain result made from a `download()`
    /// (its origin may change the image under the same URL): sent as
    /// `public, max-age=...` without `immutable`, shorter when the origin's
    /// own caching headers say so.
    pub download_max_age: HumanDuration,
    /// `download()` URLs the source cache remembers (content id, format,
    /// validators, freshness): a chain hit on a fresh source makes no
    /// origin request. 0 turns it off.
    pub sources_entries: usize,
    /// Bytes of downloaded images kept with them, so that a new result
    /// from a fresh source needs no download either.
    pub sources_memory: ByteSize,
}

impl Default for CacheSettings {
    fn default() -> Self {
        CacheSettings {
            memory: ByteSize::mib(256),
            disk: ByteSize(10 << 30),
            cache_control: "public, max-age=31536000, immutable".to_string(),
            download_max_age: HumanDuration(Duration::from_secs(24 * 3600)),
            sources_entries: 10_000,
            sources_memory: ByteSize::mib(64),
        }
    }
}

/// Bounds on a single image, checked on the header before any decode, and
/// ImageMagick's own resource limits (process-wide).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Largest accepted source width and height, in pixels.
    pub max_width: u32,
    pub max_height: u32,
    /// Largest accepted source area (width x height), in pixels.
    pub max_pixels: u64,
    /// Largest accepted number of frames (GIF, TIFF pages).
    pub max_frames: u32,
    /// ImageMagick pixel-cache memory; past it the cache goes to `map`, then `disk`.
    pub magick_memory: ByteSize,
    pub magick_map: ByteSize,
    /// 0 keeps the pixel cache from ever spilling to disk.
    pub magick_disk: ByteSize,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogSettings {
    /// `auto` (JSON unless stdout is a terminal), `json` or `text`.
    pub format: LogFormat,
    /// A tracing filter (`info`, `imaginator=debug,tower=warn`); `RUST_LOG` wins when set.
    pub filter: String,
}

#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Auto,
    Json,
    Text,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            listen: SocketAddr::from(([127, 0, 0, 1], 3000)),
            admin_listen: None,
            data_dir: PathBuf::from("./data"),
            aliases_dir: PathBuf::from("./aliases"),
            workers: std::thread::available_parallelism().map_or(1, |n| n.get()),
            queue: None,
            job_deadline: HumanDuration(Duration::from_secs(30)),
            shutdown_grace: HumanDuration(Duration::from_secs(25)),
            max_body: ByteSize::mib(32),
            max_inflight_bytes: None,
            retry_after_secs: 1,
            admin_token: String::new(),
            upload_formats: ImageFormat::ALL.to_vec(),
            auto_formats: vec![ImageFormat::Avif, ImageFormat::Webp],
            client_hints: false,
            decode_headroom: 1.0,
            fast_path: true,
            allow_builtin_filters: false,
            secrets: Vec::new(),
            legacy_sha1_signatures: false,
            sign_all_routes: false,
            uploads: None,
            upload_token: String::new(),
            log_filters_header: String::new(),
            domains: Default::default(),
            download: DownloadSettings::default(),
            fetch: FetchSettings::default(),
            chain: ChainSettings::default(),
            http: HttpSettings::default(),
            limits: Limits::default(),
            cache: CacheSettings::default(),
            storage: StorageSettings::default(),
            memory: MemorySettings::default(),
            log: LogSettings::default(),
            quarantine: QuarantineSettings::default(),
            ui: UiSettings::default(),
            info: InfoSettings::default(),
            original_signing: None,
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_width: 16_384,
            max_height: 16_384,
            max_pixels: 50_000_000,
            max_frames: 100,
            magick_memory: ByteSize::mib(512),
            magick_map: ByteSize::mib(1024),
            magick_disk: ByteSize(0),
        }
    }
}

impl Default for LogSettings {
    fn default() -> Self {
        LogSettings {
            format: LogFormat::Auto,
            filter: "info".to_string(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read configuration file {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("configuration file {path}: {message}")]
    File { path: PathBuf, message: String },
    #[error("invalid configuration: {key}: {message}")]
    Invalid { key: String, message: String },
}

fn invalid(key: &str, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key: key.to_string(),
        message: message.into(),
    }
}

impl Settings {
    /// Loads defaults, then `file` (or `$IMAGINATOR_CONFIG`; TOML), then
    /// the given environment, and validates the result. `env` is passed in
    /// so tests do not have to mutate the process environment. (A YAML file
    /// in imaginator 2018's schema is read by `crate::load`, which uses
    /// `from_tree`.)
    pub fn load(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<(Settings, Vec<String>), ConfigError> {
        let env: Vec<(String, String)> = env.into_iter().collect();
        let mut tree = toml::Value::Table(toml::Table::new());
        if let Some(path) = &file_of(file, &env) {
            let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                path: path.clone(),
                source,
            })?;
            tree = toml::from_str::<toml::Table>(&text)
                .map(toml::Value::Table)
                .map_err(|e| ConfigError::File {
                    path: path.clone(),
                    message: located(&text, &e),
                })?;
            // Reject unknown keys and wrong types in the file before env is
            // merged, so the message can name the file, line and column.
            toml::from_str::<Settings>(&text).map_err(|e| ConfigError::File {
                path: path.clone(),
                message: located(&text, &e),
            })?;
            deserialize(tree.clone()).map_err(|(key, message)| ConfigError::File {
                path: path.clone(),
                message: format!("{key}: {message}"),
            })?;
            relative_to_file(&mut tree, path);
        }
        Settings::from_tree(tree, &env, None)
    }

    /// The settings of a tree of keys (a file's), with `env` over it and
    /// `original_signing` set, validated.
    pub fn from_tree(
        mut tree: toml::Value,
        env: &[(String, String)],
        original_signing: Option<OriginalSigning>,
    ) -> Result<(Settings, Vec<String>), ConfigError> {
        let warnings = overlay_env(&mut tree, env)?;
        let mut settings = deserialize(tree).map_err(|(key, message)| invalid(&key, message))?;
        settings.original_signing = original_signing;
        settings.validate()?;
        settings.resolve_paths();
        Ok((settings, warnings))
    }

    /// Jobs that may wait for a worker.
    pub fn queue_capacity(&self) -> usize {
        self.queue.unwrap_or(4 * self.workers)
    }

    /// Whether every image route must be signed: `sign_all_routes` with
    /// `secrets`, or the compat profile's `require_signature` with its `secret`.
    pub fn signs_every_route(&self) -> bool {
        (self.sign_all_routes && !self.secrets.is_empty())
            || self
                .original_signing
                .as_ref()
                .is_some_and(|o| o.required && o.secret.is_some())
    }

    /// The upload policy in force (`uploads`, or its default).
    pub fn upload_policy(&self) -> UploadPolicy {
        self.uploads.unwrap_or(if self.signs_every_route() {
            UploadPolicy::Signed
        } else if self.listen.ip().is_loopback() {
            UploadPolicy::Open
        } else {
            UploadPolicy::Token
        })
    }

    /// Bytes of bodies and downloads held at once (`max_inflight_bytes`).
    pub fn inflight_bytes(&self) -> u64 {
        self.max_inflight_bytes.map_or_else(
            || ((self.workers + self.queue_capacity()) as u64).saturating_mul(self.max_body.0),
            |b| b.0,
        )
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.workers == 0 || self.workers > 256 {
            return Err(invalid(
                "workers",
                format!("must be between 1 and 256, got {}", self.workers),
            ));
        }
        if let Some(q) = self.queue
            && q > 100_000
        {
            return Err(invalid("queue", format!("must be at most 100000, got {q}")));
        }
        if self.memory.trend_window.0 < Duration::from_secs(10) {
            return Err(invalid("memory.trend_window", "must be at least 10s"));
        }
        if self.job_deadline.0.is_zero() {
            return Err(invalid("job_deadline", "must be greater than zero"));
        }
        if let Some(f) = self
            .auto_formats
            .iter()
            .find(|f| !matches!(f, ImageFormat::Avif | ImageFormat::Webp))
        {
            return Err(invalid(
                "auto_formats",
                format!(
                    "`{}` is not a format `auto` chooses: only avif and webp",
                    f.to_string().to_lowercase()
                ),
            ));
        }
        for (name, base) in &self.domains {
            if !(base.starts_with("http://") || base.starts_with("https://")) {
                return Err(invalid(
                    &format!("domains.{name}"),
                    format!("`{base}` is not an http(s) URL"),
                ));
            }
        }
        for origin in &self.download.allowed_origins {
            if !(origin.starts_with("http://") || origin.starts_with("https://")) {
                return Err(invalid(
                    "download.allowed_origins",
                    format!("`{origin}` is not an http(s) URL"),
                ));
            }
        }
        if self.uploads == Some(UploadPolicy::Signed)
            && self.secrets.is_empty()
            && self.original_signing.as_ref().is_none_or(|o| o.secret.is_none())
        {
            return Err(invalid("uploads", "\"signed\" needs `secrets` to sign with"));
        }
        if self.secrets.iter().any(|s| s.len() < 16) {
            return Err(invalid("secrets", "each secret must be at least 16 characters"));
        }
        if !(1.0..=4.0).contains(&self.decode_headroom) {
            return Err(invalid(
                "decode_headroom",
                format!("must be between 1.0 and 4.0, got {}", self.decode_headroom),
            ));
        }
        if self.max_body.0 == 0 {
            return Err(invalid("max_body", "must be greater than zero"));
        }
        if let Some(b) = self.max_inflight_bytes
            && b.0 < self.max_body.0.max(self.download.max_bytes.0)
        {
            return Err(invalid(
                "max_inflight_bytes",
                format!(
                    "must be at least max_body and download.max_bytes ({}), got {b}",
                    ByteSize(self.max_body.0.max(self.download.max_bytes.0))
                ),
            ));
        }
        let h = &self.http;
        if h.backlog == 0 {
            return Err(invalid("http.backlog", "must be greater than zero"));
        }
        if h.max_connections == 0 {
            return Err(invalid("http.max_connections", "must be greater than zero"));
        }
        if h.header_timeout.0.is_zero() || h.body_timeout.0.is_zero() || h.send_timeout.0.is_zero() {
            return Err(invalid(
                "http",
                "header_timeout, body_timeout and send_timeout must be greater than zero",
            ));
        }
        let l = &self.limits;
        if l.max_width == 0 || l.max_height == 0 || l.max_pixels == 0 || l.max_frames == 0 {
            return Err(invalid(
                "limits",
                "max_width, max_height, max_pixels and max_frames must be greater than zero",
            ));
        }
        if l.magick_memory.0 < 16 << 20 {
            return Err(invalid(
                "limits.magick_memory",
                format!("must be at least 16MiB, got {}", l.magick_memory),
            ));
        }
        if self.log.filter.parse::<tracing_subscriber::EnvFilter>().is_err() {
            return Err(invalid(
                "log.filter",
                format!("`{}` is not a valid tracing filter", self.log.filter),
            ));
        }
        if self.storage.backend == StorageBackend::S3 {
            let s3 = &self.storage.s3;
            for (key, value) in [
                ("storage.s3.bucket", &s3.bucket),
                ("storage.s3.access_key_id", &s3.access_key_id),
                ("storage.s3.secret_access_key", &s3.secret_access_key),
            ] {
                if value.is_empty() {
                    return Err(invalid(key, "must be set when storage.backend = \"s3\""));
                }
            }
        }
        for (key, path) in [("data_dir", &self.data_dir), ("aliases_dir", &self.aliases_dir)] {
            if path.as_os_str().is_empty() {
                return Err(invalid(key, "must not be empty"));
            }
        }
        Ok(())
    }

    /// Makes directory paths absolute once, at start-up, so nothing later
    /// depends on the current directory.
    fn resolve_paths(&mut self) {
        for path in [&mut self.data_dir, &mut self.aliases_dir] {
            if let Ok(abs) = std::path::absolute(&*path) {
                *path = abs;
            }
        }
    }

    /// The effective configuration as TOML (for `--print-config`), secrets masked.
    ///
    /// Credentials are never printed: each one set is left out and named in
    /// a comment on top, so the text loads back as a config file (the
    /// credentials given again by their variables).
    pub fn to_toml(&self) -> String {
        let mut resolved = self.clone();
        resolved.queue = Some(self.queue_capacity());
        resolved.max_inflight_bytes = Some(ByteSize(self.inflight_bytes()));
        resolved.uploads = Some(self.upload_policy());
        let mut omitted = Vec::new();
        for (token, name) in [
            (&mut resolved.admin_token, "admin_token (IMAGINATOR_ADMIN_TOKEN)"),
            (&mut resolved.upload_token, "upload_token (IMAGINATOR_UPLOAD_TOKEN)"),
            (
                &mut resolved.storage.s3.secret_access_key,
                "storage.s3.secret_access_key (IMAGINATOR_STORAGE__S3__SECRET_ACCESS_KEY)",
            ),
        ] {
            if !token.is_empty() {
                token.clear();
                omitted.push(name.to_string());
            }
        }
        if !resolved.secrets.is_empty() {
            omitted.push(format!("secrets: {} (IMAGINATOR_SECRETS)", resolved.secrets.len()));
            resolved.secrets.clear();
            // Its consequences are printed as configured, not as resolved
            // from a secret the text no longer has.
            resolved.uploads = self.uploads;
        }
        if let Ok(mut proxy) = reqwest::Url::parse(&resolved.fetch.proxy)
            && proxy.password().is_some()
        {
            let _ = proxy.set_password(None);
            resolved.fetch.proxy = proxy.to_string();
            omitted.push("the password in fetch.proxy (IMAGINATOR_FETCH__PROXY)".into());
        }
        let text = toml::to_string_pretty(&resolved).unwrap_or_else(|e| format!("# cannot print configuration: {e}\n"));
        if omitted.is_empty() {
            return text;
        }
        format!(
            "# Credentials are not printed; give them again when loading this file:\n{}\n{text}",
            omitted
                .iter()
                .map(|o| format!("#   {o}"))
                .collect::<Vec<_>>()
                .join("\n")
        )
    }
}

/// Paths a file gives (`data_dir`, `aliases_dir`) are relative to that
/// file's directory, so a config and the aliases beside it move together;
/// paths from variables and defaults stay relative to the working directory.
fn relative_to_file(tree: &mut toml::Value, file: &Path) {
    let Some(dir) = file.parent() else { return };
    for key in ["data_dir", "aliases_dir"] {
        if let Some(toml::Value::String(p)) = tree.get_mut(key)
            && Path::new(p.as_str()).is_relative()
        {
            *p = dir.join(&*p).display().to_string();
        }
    }
}

/// The configuration file: `file`, else `$IMAGINATOR_CONFIG` from `env`.
pub fn file_of(file: Option<&Path>, env: &[(String, String)]) -> Option<PathBuf> {
    file.map(Path::to_path_buf).or_else(|| {
        env.iter()
            .find(|(k, _)| k == ENV_CONFIG_FILE)
            .map(|(_, v)| PathBuf::from(v))
    })
}

fn deserialize(tree: toml::Value) -> Result<Settings, (String, String)> {
    serde_path_to_error::deserialize(tree).map_err(|e| {
        let key = e.path().to_string();
        (
            if key == "." { "configuration".into() } else { key },
            with_suggestion(e.inner().message()),
        )
    })
}

/// A TOML error where it happened: `line 3, column 1: message`, with the
/// nearest key suggested for an unknown one.
fn located(text: &str, e: &toml::de::Error) -> String {
    let message = with_suggestion(e.message());
    let Some(span) = e.span() else { return message };
    let before = &text[..span.start.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
    format!("line {line}, column {column}: {message}")
}

/// serde's "unknown field `x`, expected one of `a`, `b`" with the nearest
/// of them named first.
fn with_suggestion(message: &str) -> String {
    let Some(rest) = message.strip_prefix("unknown field `") else {
        return message.to_string();
    };
    let Some((field, expected)) = rest.split_once('`') else {
        return message.to_string();
    };
    let names: Vec<&str> = expected.split('`').skip(1).step_by(2).collect();
    match crate::pipeline::suggest::nearest(field, names) {
        Some(n) => format!("unknown key `{field}`; did you mean `{n}`?"),
        None => message.to_string(),
    }
}

/// Merges `IMAGINATOR_SECTION__KEY=value` into `tree`. The value is read with
/// the type of the default at the same path (so `IMAGINATOR_WORKERS=8` is a
/// number and `IMAGINATOR_DATA_DIR=123` a path). Variables naming no setting are
/// returned as warnings, not errors: Kubernetes injects `IMAGINATOR_PORT` and
/// friends for a Service named `imaginator`.
fn overlay_env(tree: &mut toml::Value, env: &[(String, String)]) -> Result<Vec<String>, ConfigError> {
    let defaults = toml::Value::try_from(Settings {
        queue: Some(0),
        admin_listen: Some(SocketAddr::from(([127, 0, 0, 1], 0))),
        max_inflight_bytes: Some(ByteSize(0)),
        uploads: Some(UploadPolicy::Open),
        ..Settings::default()
    })
    .map_err(|e| invalid("configuration", e.to_string()))?;
    let mut warnings = Vec::new();
    let mut vars: Vec<&(String, String)> = env.iter().collect();
    vars.sort();
    for (name, raw) in vars {
        let Some(rest) = name.strip_prefix(ENV_PREFIX) else {
            continue;
        };
        if name == ENV_CONFIG_FILE {
            continue;
        }
        let path: Vec<String> = rest.split("__").map(str::to_ascii_lowercase).collect();
        // `[domains]` is a map of names the operator chooses:
        // IMAGINATOR_DOMAINS__ORIGIN=http://... sets `domains.origin`.
        if let [map, key] = path.as_slice()
            && FREE_MAPS.contains(&map.as_str())
            && !key.is_empty()
        {
            insert(tree, &path, toml::Value::String(raw.trim().to_string()));
            continue;
        }
        let Some(default) = lookup(&defaults, &path) else {
            let known = variables(&defaults, ENV_PREFIX.trim_end_matches('_'));
            warnings.push(format!(
                "ignoring {name}: it names no setting{}",
                crate::pipeline::suggest::did_you_mean(name, known.iter().map(String::as_str))
            ));
            continue;
        };
        let key = path.join(".");
        let value = coerce(default, raw).map_err(|message| invalid(&format!("{name} ({key})"), message))?;
        insert(tree, &path, value);
    }
    Ok(warnings)
}

/// Every `IMAGINATOR_*` variable name the settings tree `tree` has.
fn variables(tree: &toml::Value, prefix: &str) -> Vec<String> {
    match tree.as_table() {
        Some(table) => table
            .iter()
            .flat_map(|(k, v)| {
                let name = format!(
                    "{prefix}{}{}",
                    if prefix.ends_with('_') { "" } else { "_" },
                    k.to_ascii_uppercase()
                );
                let mut names = vec![name.clone()];
                if v.is_table() {
                    names.extend(variables(v, &format!("{name}__")));
                }
                names
            })
            .collect(),
        None => Vec::new(),
    }
}

/// Sections whose keys are names of the operator's, not settings.
const FREE_MAPS: [&str; 1] = ["domains"];

fn lookup<'a>(tree: &'a toml::Value, path: &[String]) -> Option<&'a toml::Value> {
    path.iter().try_fold(tree, |node, key| node.as_table()?.get(key))
}

fn insert(tree: &mut toml::Value, path: &[String], value: toml::Value) {
    let mut node = tree;
    for key in &path[..path.len() - 1] {
        let table = node.as_table_mut().expect("config tree nodes are tables");
        node = table
            .entry(key.clone())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
    }
    if let Some(table) = node.as_table_mut() {
        table.insert(path[path.len() - 1].clone(), value);
    }
}

fn coerce(default: &toml::Value, raw: &str) -> Result<toml::Value, String> {
    let raw = raw.trim();
    match default {
        toml::Value::Integer(_) => raw
            .parse::<i64>()
            .map(toml::Value::Integer)
            .map_err(|_| format!("`{raw}` is not a whole number")),
        toml::Value::Float(_) => raw
            .parse::<f64>()
            .map(toml::Value::Float)
            .map_err(|_| format!("`{raw}` is not a number")),
        toml::Value::Boolean(_) => match raw.to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" => Ok(toml::Value::Boolean(true)),
            "false" | "0" | "no" | "off" => Ok(toml::Value::Boolean(false)),
            _ => Err(format!("`{raw}` is not true or false")),
        },
        toml::Value::Array(_) => {
            if raw.starts_with('[') {
                toml::from_str::<toml::Table>(&format!("v = {raw}"))
                    .ok()
                    .and_then(|mut t| t.remove("v"))
                    .ok_or_else(|| format!("`{raw}` is not a TOML array"))
            } else {
                Ok(toml::Value::Array(
                    raw.split(',')
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .map(|s| toml::Value::String(s.to_string()))
                        .collect(),
                ))
            }
        }
        toml::Value::Table(_) => Err("names a whole section; set its keys with SECTION__KEY".to_string()),
        _ => Ok(toml::Value::String(raw.to_string())),
    }
}

#[cfg(test)]
mod tests;
