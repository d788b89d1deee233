//! `imaginator migrate imaginator.yml [OUT_DIR]`: the native configuration
//! for a YAML file: `OUT_DIR/imaginator.toml` and one `OUT_DIR/aliases/NAME.toml`
//! per alias that has a native form, and the list of every behaviour that
//! differs in the native profile (what clients and operators would notice),
//! so a deployment can run the compat profile today and move on later.

use super::config::{OriginalFile, from_file};
use super::grammar::{Node, Unit, Value};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// What `migrate` wrote and what differs.
pub struct Migration {
    pub written: Vec<PathBuf>,
    pub differences: Vec<String>,
}

pub fn migrate(yaml: &str, out: &Path) -> Result<Migration, String> {
    let file: OriginalFile = serde_yaml::from_str(yaml).map_err(|e| e.to_string())?;
    // The same validation as start-up: a file the compat profile refuses is not migrated.
    let raw_aliases = file.aliases.clone();
    let loaded = from_file(file)?;
    let c = &loaded.compat;
    let mut differences: Vec<String> = vec![
        "URLs: the native grammar skips whitespace, reads names case-insensitively, rounds `w`/`h`/`cm`/`in` sizes \
         (the original truncates), takes one image step as an argument (not a whole chain) and does not append the \
         query string to the chain."
            .into(),
        "Output: the native default is JPEG quality 85, metadata stripped, EXIF orientation applied and colour \
         converted to sRGB; the original kept the input's format, metadata and orientation. Migrated aliases keep \
         the input's format and metadata through their [output] table."
            .into(),
        "Filters: native `fit-in` never enlarges; `resize` offers 7 filters (default Catmull-Rom, not Lanczos); \
         `trim` uses no fuzz; `sepia` takes a percentage; `pattern` keeps the tile's aspect ratio."
            .into(),
        "Errors: native answers use precise 4xx codes (an unknown filter is 404, a bad argument 400, a failed \
         download 502) where the original answered 500 or passed the origin's status on."
            .into(),
        "Results: every native result is cached (memory + disk, bounded by cache.memory and cache.disk); \
         `cache(name)` only picks a namespace."
            .into(),
    ];
    let mut toml = String::from("# Written by `imaginator migrate` from an imaginator 2018 YAML file.\n");
    writeln!(toml, "listen = \"0.0.0.0:3000\"").ok();
    writeln!(toml, "aliases_dir = {:?}", out.join("aliases").display().to_string()).ok();
    writeln!(toml, "allow_builtin_filters = {}", loaded.tree["allow_builtin_filters"]).ok();
    if let Some(secret) = &c.secret {
        if secret.len() >= 16 {
            writeln!(toml, "secrets = [{secret:?}]\nlegacy_sha1_signatures = true").ok();
        } else {
            writeln!(
                toml,
                "# secrets: the YAML secret is shorter than 16 characters, which the native profile refuses"
            )
            .ok();
            differences.push(
                "secret: shorter than 16 characters; the native profile refuses it. Choose a new secret and re-sign URLs."
                    .into(),
            );
        }
        differences.push(
            "Signatures: with `secrets` set, the native profile refuses unsigned chain URLs (the original served \
             them). The original's 28-character HMAC-SHA1 signatures stay valid (`legacy_sha1_signatures`)."
                .into(),
        );
    }
    if let Some(header) = &c.log_filters_header {
        writeln!(toml, "log_filters_header = {header:?}").ok();
        differences.push(format!(
            "`{header}`: the native value lists filters innermost first with the cache tier \
             (`download(origin), resize; cache chains=miss`), not the original's `cache_miss(x),resize,download(origin)`."
        ));
    }
    if !c.caches.is_empty() {
        let total: u64 = c.caches.values().map(|n| n.size).sum();
        writeln!(toml, "\n[cache]\ndisk = {total}").ok();
        differences.push(format!(
            "Caches: the named caches ({}) become one result cache of {total} bytes under data_dir/cache; \
             their directories are no longer used.",
            c.caches.keys().cloned().collect::<Vec<_>>().join(", ")
        ));
    }
    if c.max_width.is_some() || c.max_height.is_some() {
        differences.push(
            "image.max_width/max_height clamped resize targets; the native limits.max_width/max_height refuse \
             sources larger than them (413) instead. Not migrated."
                .into(),
        );
    }
    if c.supported_formats.is_some() {
        differences.push(
            "image.supported_formats: the native service decodes JPEG, PNG, GIF, WebP, TIFF, AVIF and HEIC sources; \
             `upload_formats` restricts uploads only. Not migrated."
                .into(),
        );
    }
    if !c.domains.is_empty() {
        writeln!(toml, "\n[domains]").ok();
        for (name, base) in &c.domains {
            writeln!(toml, "{name} = {base:?}").ok();
            if !base.ends_with('/') {
                differences.push(format!(
                    "domains.{name}: natively `{name}:rest` is `{base}/rest`; the original concatenated \
                     (`{base}rest`)."
                ));
            }
        }
        differences.push(
            "Downloads: natively only shortcut bases and download.allowed_origins are fetched (the original fetched \
             any URL)."
                .into(),
        );
    }

    let aliases_dir = out.join("aliases");
    std::fs::create_dir_all(&aliases_dir).map_err(|e| format!("cannot create {}: {e}", aliases_dir.display()))?;
    let mut written = Vec::new();
    for (name, body) in &raw_aliases {
        let node = &c.aliases[name];
        match native_alias(name, body, node) {
            Ok(text) => {
                let path = aliases_dir.join(format!("{name}.toml"));
                std::fs::write(&path, &text).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
                if let Err(e) = crate::pipeline::alias::Alias::from_file(&path) {
                    let _ = std::fs::remove_file(&path);
                    differences.push(format!("alias `{name}` has no native form: {e}"));
                    continue;
                }
                written.push(path);
                differences.push(format!(
                    "alias `{name}`: natively `/images/{{id}}/{name}?p1=..` or `download(...):{name}(..)`; \
                     the original's `/{name}(image,..)` form is the compat profile's only."
                ));
            }
            Err(why) => differences.push(format!("alias `{name}` has no native form: {why}")),
        }
    }
    let config = out.join("imaginator.toml");
    std::fs::write(&config, toml).map_err(|e| format!("cannot write {}: {e}", config.display()))?;
    written.insert(0, config);
    Ok(Migration { written, differences })
}

/// A native alias file for an original alias body, when it has one: the
/// body applied to the image it is given (`{0}` or `download({0})`
/// innermost), with each other `{N}` a parameter `pN`.
fn native_alias(name: &str, body: &str, node: &Node) -> Result<String, String> {
    let mut steps: Vec<&Node> = Vec::new();
    let mut current = node;
    loop {
        steps.push(current);
        match current.args.first() {
            Some(Value::Image(inner)) if inner.name == "download" => match inner.args.as_slice() {
                [Value::Text(t)] if t == "{0}" => break,
                _ => return Err("it downloads a fixed URL (native aliases transform the image they are given)".into()),
            },
            Some(Value::Image(inner)) => current = inner,
            Some(Value::Text(t)) if t == "{0}" => break,
            _ => return Err("its innermost filter does not take the image it is given ({0})".into()),
        }
    }
    steps.reverse();
    let mut chain = Vec::new();
    let mut params: BTreeMap<String, bool> = BTreeMap::new();
    let mut format = None;
    for step in steps {
        let mut args = Vec::new();
        for arg in &step.args[1..] {
            args.push(match arg {
                Value::Int(v, unit) => format!("{v}{}", unit_suffix(*unit)),
                Value::Float(v, unit) => format!("{v}{}", unit_suffix(*unit)),
                Value::Text(t) => match placeholder(t) {
                    Some(n) => {
                        let p = format!("p{n}");
                        params.insert(p.clone(), true);
                        format!("{{{p}}}")
                    }
                    None => t.clone(),
                },
                Value::Image(_) => return Err("it lays a second image over (native aliases cannot download)".into()),
            });
        }
        if step.name == "resize" {
            // The original's default is Lanczos; natively it is Catmull-Rom.
            match args.get(2) {
                None => args.push("lanczos".into()),
                Some(f) if crate::pipeline::ops::Filter::parse(f).is_none() => {
                    return Err(format!("resize filter `{f}` is not among the native filters"));
                }
                Some(_) => {}
            }
        }
        match step.name.as_str() {
            "format" => format = args.first().cloned(),
            "cache" => {}
            other => chain.push(format!("{other}({})", args.join(","))),
        }
    }
    if chain.is_empty() {
        return Err("it has no filter besides format/cache".into());
    }
    let format = match format.as_deref() {
        None => None,
        Some(f) => Some(
            grammar_format(f).ok_or_else(|| format!("format `{f}` has no native output (PDF, PS and SVG are off)"))?,
        ),
    };
    let mut text = format!(
        "description = {:?}\nchain = {:?}\n",
        format!("Migrated from imaginator.yml: {name}: {body}"),
        chain.join(":")
    );
    for p in params.keys() {
        writeln!(
            text,
            "\n[[param]]\nname = {p:?}\ntype = \"int\"\ndefault = 100\nmin = 1\nmax = 16384"
        )
        .ok();
    }
    text.push_str("\n[output]\n");
    match format {
        Some(f) => writeln!(text, "format = {f:?}").ok(),
        None => writeln!(
            text,
            "format = \"jpeg\"\nkeep = [\"jpeg\", \"png\", \"gif\", \"webp\", \"tiff\"]"
        )
        .ok(),
    };
    text.push_str("strip = false\nauto_orient = false\nkeep_icc = true\n");
    Ok(text)
}

fn unit_suffix(unit: Unit) -> &'static str {
    match unit {
        Unit::None | Unit::Px => "",
        Unit::W => "w",
        Unit::H => "h",
        Unit::Hcm => "hcm",
        Unit::Vcm => "vcm",
        Unit::Hin => "hin",
        Unit::Vin => "vin",
    }
}

fn placeholder(text: &str) -> Option<usize> {
    let inner = text.strip_prefix('{')?.strip_suffix('}')?;
    inner.parse().ok()
}

fn grammar_format(name: &str) -> Option<&'static str> {
    super::config::OriginalFormat::parse(name)
        .and_then(|f| f.native())
        .map(|f| match f {
            crate::pipeline::format::ImageFormat::Png => "png",
            crate::pipeline::format::ImageFormat::Tiff => "tiff",
            _ => "jpeg",
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_config_and_its_aliases_round_trip_to_native_files_that_load() {
        let dir = tempfile::tempdir().unwrap();
        let yaml = r#"
secret: "a-secret-of-20-chars"
domains:
  origin: "http://127.0.0.1:8080/pho"
caches:
  thumbs: { dir: /tmp/x, size: 10 MB }
image: { max_width: 1000 }
aliases:
  thumb: "resize(download({0}),{1},0)"
  square: "fit-in({0},{1},{1}):format(png)"
  logo: "compose({0},download(origin:logo.png),over,0,0)"
allow_builtin_filters: false
log_filters_header: X-Filters
"#;
        let m = migrate(yaml, dir.path()).unwrap();
        assert_eq!(m.written.len(), 3, "config plus two aliases: {:?}", m.differences);
        let (settings, _) = crate::Settings::load(
            Some(&dir.path().join("imaginator.toml")),
            Vec::<(String, String)>::new(),
        )
        .unwrap();
        assert_eq!(settings.secrets, ["a-secret-of-20-chars"]);
        assert!(settings.legacy_sha1_signatures && !settings.allow_builtin_filters);
        assert_eq!(settings.cache.disk.0, 10_000_000);
        let set = crate::pipeline::alias::AliasSet::load_dir(&dir.path().join("aliases")).unwrap();
        let thumb = set.get("thumb").unwrap();
        assert_eq!(thumb.chain.to_string(), "resize({p1},0,lanczos)");
        let square = set.get("square").unwrap();
        assert_eq!(square.output.format, crate::pipeline::format::ImageFormat::Png);
        assert!(
            m.differences
                .iter()
                .any(|d| d.contains("alias `logo` has no native form"))
        );
        assert!(m.differences.iter().any(|d| d.contains("concatenated")));
        assert!(m.differences.iter().any(|d| d.contains("max_width")));
    }
}
