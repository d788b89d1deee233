//! The original's `/etc/imaginator.yml`, read as it is: `secret`,
//! `domains`, `caches` (`dir`, human `size`), `image.max_width`,
//! `image.max_height`, `image.supported_formats`, `aliases`,
//! `allow_builtin_filters`, `log_filters_header`, and one key of ours,
//! `require_signature`. What maps onto a native setting (listen address,
//! domains, builtin filters) goes into the settings tree, where
//! `IMAGINATOR_*` variables still override it; the rest is `Compat`.

use super::grammar;
use crate::config::ByteSize;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

/// The file as the original's serde structs read it (every key optional
/// here; unknown keys, such as other plugins' settings, are reported).
#[derive(Deserialize, Default, Debug)]
pub struct OriginalFile {
    #[serde(default)]
    pub secret: Option<String>,
    #[serde(default)]
    pub domains: BTreeMap<String, String>,
    #[serde(default)]
    pub caches: BTreeMap<String, CacheFile>,
    #[serde(default)]
    pub image: ImageFile,
    #[serde(default)]
    pub aliases: BTreeMap<String, String>,
    #[serde(default)]
    pub allow_builtin_filters: bool,
    #[serde(default)]
    pub log_filters_header: Option<String>,
    /// Ours: refuse unsigned URLs when a secret is set (the original served them).
    #[serde(default)]
    pub require_signature: bool,
    #[serde(flatten)]
    pub unknown: BTreeMap<String, serde_yaml::Value>,
}

#[derive(Deserialize, Default, Debug)]
pub struct ImageFile {
    pub max_width: Option<i64>,
    pub max_height: Option<i64>,
    pub supported_formats: Option<Vec<String>>,
}

#[derive(Deserialize, Debug)]
pub struct CacheFile {
    pub dir: PathBuf,
    /// `size: 1073741824` or `size: 1 GiB` (`100 MB` is decimal, as the original's parser read it).
    pub size: ByteSize,
}

/// The original's output formats, by its names (`PNG`, `jpg`, ...): the
/// coder and the MIME type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OriginalFormat {
    Png,
    Jpeg,
    Tiff,
    Pdf,
    Ps,
    Svg,
}

impl OriginalFormat {
    /// The original's `FromStr`: exact spellings only.
    pub fn parse(name: &str) -> Option<OriginalFormat> {
        Some(match name {
            "PNG" | "png" => OriginalFormat::Png,
            "JPEG" | "JPG" | "jpeg" | "jpg" => OriginalFormat::Jpeg,
            "TIFF" | "TIF" | "tiff" | "tif" => OriginalFormat::Tiff,
            "PDF" | "pdf" => OriginalFormat::Pdf,
            "PS" | "ps" => OriginalFormat::Ps,
            "SVG" | "svg" => OriginalFormat::Svg,
            _ => return None,
        })
    }

    /// Our format for it; PDF, PS and SVG have none (their coders are off).
    pub fn native(self) -> Option<crate::pipeline::format::ImageFormat> {
        use crate::pipeline::format::ImageFormat;
        match self {
            OriginalFormat::Png => Some(ImageFormat::Png),
            OriginalFormat::Jpeg => Some(ImageFormat::Jpeg),
            OriginalFormat::Tiff => Some(ImageFormat::Tiff),
            _ => None,
        }
    }
}

/// A named cache (`caches:`): its directory and its size in bytes.
#[derive(Clone, Debug)]
pub struct NamedCache {
    pub dir: PathBuf,
    pub size: u64,
}

/// What the compat profile needs beyond the native settings.
#[derive(Clone)]
pub struct Compat {
    pub secret: Option<String>,
    pub require_signature: bool,
    /// Alias name -> its body, parsed at start-up.
    pub aliases: BTreeMap<String, grammar::Node>,
    pub alias_text: BTreeMap<String, String>,
    pub caches: BTreeMap<String, NamedCache>,
    pub max_width: Option<i64>,
    pub max_height: Option<i64>,
    /// Source formats allowed (`image.supported_formats`); `None`: any.
    pub supported_formats: Option<Vec<crate::pipeline::format::ImageFormat>>,
    pub log_filters_header: Option<String>,
    /// Shortcut -> base URL, concatenated with the rest as the original did.
    pub domains: BTreeMap<String, String>,
}

impl fmt::Debug for Compat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Compat")
            .field("secret", &self.secret.as_ref().map(|_| "<set>"))
            .field("require_signature", &self.require_signature)
            .field("aliases", &self.alias_text)
            .field("caches", &self.caches)
            .field("max_width", &self.max_width)
            .field("max_height", &self.max_height)
            .field("supported_formats", &self.supported_formats)
            .field("log_filters_header", &self.log_filters_header)
            .finish()
    }
}

/// The native settings tree a YAML file implies, the compat part, and
/// warnings for start-up.
#[derive(Debug)]
pub struct Loaded {
    pub tree: toml::Table,
    pub compat: Compat,
    pub warnings: Vec<String>,
}

/// `http://` or `https://` alone.
fn is_scheme_prefix(base: &str) -> bool {
    base.eq_ignore_ascii_case("http://") || base.eq_ignore_ascii_case("https://")
}

pub fn is_yaml(path: &std::path::Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("yml") || e.eq_ignore_ascii_case("yaml"))
}

/// Reads the original's YAML. Errors name the key.
pub fn load(text: &str) -> Result<Loaded, String> {
    let file: OriginalFile = serde_yaml::from_str(text).map_err(|e| e.to_string())?;
    from_file(file)
}

pub fn from_file(file: OriginalFile) -> Result<Loaded, String> {
    let mut warnings = Vec::new();
    for key in file.unknown.keys() {
        warnings.push(format!(
            "imaginator.yml: `{key}` is not a setting of imaginator 2018's core or base plugin; ignored"
        ));
    }
    let mut aliases = BTreeMap::new();
    for (name, body) in &file.aliases {
        let node = grammar::parse(body).map_err(|e| format!("aliases.{name}: {e}"))?;
        aliases.insert(name.clone(), node);
    }
    for (name, cache) in &file.caches {
        if cache.size.0 == 0 {
            return Err(format!("caches.{name}.size: must be more than 0 bytes"));
        }
        if cache.dir.as_os_str().is_empty() {
            return Err(format!("caches.{name}.dir: must name a directory"));
        }
    }
    let supported_formats = match &file.image.supported_formats {
        None => None,
        Some(names) => Some(
            names
                .iter()
                .map(|n| {
                    let f = OriginalFormat::parse(n)
                        .ok_or_else(|| format!("image.supported_formats: unknown format `{n}`"))?;
                    f.native().ok_or_else(|| {
                        format!(
                            "image.supported_formats: `{n}` sources are not decoded by this service (its coder is off)"
                        )
                    })
                })
                .collect::<Result<Vec<_>, String>>()?,
        ),
    };
    for (key, value) in [
        ("image.max_width", file.image.max_width),
        ("image.max_height", file.image.max_height),
    ] {
        if value.is_some_and(|v| v < 1) {
            return Err(format!("{key}: must be at least 1"));
        }
    }
    let secret = file.secret.filter(|s| !s.is_empty());
    if secret.is_some() && !file.require_signature {
        warnings.push(
            "imaginator.yml sets a secret but unsigned URLs are still served, as imaginator 2018 did; \
             set `require_signature: true` to refuse them"
                .into(),
        );
    }
    for (name, base) in &file.domains {
        // A bare scheme (`http: "http://"`, the original's README) is a
        // prefix: `download(http:example.com/a.jpg)` is concatenated into a
        // URL, which then meets the public-origin rules as any URL does.
        if reqwest::Url::parse(base).is_err() && !is_scheme_prefix(base) {
            return Err(format!(
                "domains.{name}: `{base}` is neither a URL nor `http://` or `https://`"
            ));
        }
    }

    let mut tree = toml::Table::new();
    tree.insert("listen".into(), toml::Value::String("0.0.0.0:3000".into()));
    tree.insert(
        "allow_builtin_filters".into(),
        toml::Value::Boolean(file.allow_builtin_filters),
    );
    // The download client's shortcuts (their hosts are allowed even on loopback).
    let domains: toml::Table = file
        .domains
        .iter()
        .map(|(k, v)| (k.clone(), toml::Value::String(v.clone())))
        .collect();
    tree.insert("domains".into(), toml::Value::Table(domains));
    let compat = Compat {
        secret,
        require_signature: file.require_signature,
        aliases,
        alias_text: file.aliases,
        caches: file
            .caches
            .into_iter()
            .map(|(name, c)| {
                let dir = std::path::absolute(&c.dir).unwrap_or(c.dir);
                (name, NamedCache { dir, size: c.size.0 })
            })
            .collect(),
        max_width: file.image.max_width,
        max_height: file.image.max_height,
        supported_formats,
        log_filters_header: file.log_filters_header.filter(|h| !h.is_empty()),
        domains: file.domains,
    };
    if let Some(h) = &compat.log_filters_header
        && axum::http::HeaderName::try_from(h.as_str()).is_err()
    {
        return Err(format!("log_filters_header: `{h}` is not a header name"));
    }
    Ok(Loaded { tree, compat, warnings })
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = r#"
secret: "s3cret"
domains:
  origin: "http://127.0.0.1:8080/img/"
caches:
  thumbs:
    dir: /tmp/imaginator-thumbs
    size: 100 MB
  big:
    dir: /tmp/imaginator-big
    size: 1073741824
image:
  max_width: 2000
  max_height: 2000
  supported_formats: [PNG, JPEG]
aliases:
  thumb: "resize(download({0}),{1},0)"
allow_builtin_filters: false
log_filters_header: X-Imaginator-Filters
"#;

    #[test]
    fn the_originals_file_loads_unchanged() {
        let loaded = load(FILE).unwrap();
        let c = &loaded.compat;
        assert_eq!(c.secret.as_deref(), Some("s3cret"));
        assert_eq!(c.caches["thumbs"].size, 100_000_000);
        assert_eq!(c.caches["big"].size, 1 << 30);
        assert_eq!(c.max_width, Some(2000));
        assert_eq!(c.aliases["thumb"].name, "resize");
        assert_eq!(c.log_filters_header.as_deref(), Some("X-Imaginator-Filters"));
        assert_eq!(loaded.tree["listen"].as_str(), Some("0.0.0.0:3000"));
        assert!(loaded.warnings.iter().any(|w| w.contains("require_signature")));
        assert!(!format!("{c:?}").contains("s3cret"), "the secret is never printed");
    }

    #[test]
    fn broken_files_name_the_key() {
        assert!(
            load("aliases:\n  bad: \"resize(\"\n")
                .unwrap_err()
                .contains("aliases.bad")
        );
        assert!(
            load("image:\n  supported_formats: [GIFF]\n")
                .unwrap_err()
                .contains("supported_formats")
        );
        assert!(
            load("caches:\n  c:\n    dir: /tmp/x\n    size: lots\n")
                .unwrap_err()
                .contains("size")
        );
        assert!(load("domains:\n  o: not a url\n").unwrap_err().contains("domains.o"));
        assert!(load("domains:\n  o: \"ftp://\"\n").unwrap_err().contains("domains.o"));
        let readme =
            load("domains:\n  http: \"http://\"\n  https: \"https://\"\n").expect("the original's README domains load");
        assert_eq!(readme.compat.domains["http"], "http://");
        let w = load("plugins_extra: 1\n").unwrap().warnings;
        assert!(w[0].contains("plugins_extra"));
    }
}
