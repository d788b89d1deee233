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

/// Writes the native files for `yaml` into `out`. Refuses to replace a file
/// that exists unless `force`.
pub fn migrate(yaml: &str, out: &Path, force: bool) -> Result<Migration, String> {
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
         converted to sRGB; the original kept the input's format, quality, metadata and orientation. Migrated \
         aliases keep the input's format, JPEG quality (`input_quality`) and metadata through their [output] table."
            .into(),
        "Filters: native `fit-in` enlarges only as `fit-in(w,h,enlarge)` (migrated aliases say so) and uses \
         the service's own filter choice, not Lanczos; `resize` offers 7 filters (default Catmull-Rom, not \
         Lanczos: migrated aliases name lanczos); `trim` uses no fuzz; `sepia` takes a percentage; `pattern` \
         keeps the tile's aspect ratio."
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
    // Relative to this file: the config and its aliases move together.
    writeln!(toml, "aliases_dir = \"aliases\"").ok();
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
    let config = out.join("imaginator.toml");
    let natives: Vec<(&String, Result<NativeAlias, String>)> = raw_aliases
        .iter()
        .map(|(name, body)| (name, native_alias(name, body, &c.aliases[name])))
        .collect();
    // Nothing is written when something would be replaced.
    if !force {
        let existing: Vec<String> = std::iter::once(config.clone())
            .chain(
                natives
                    .iter()
                    .filter(|(_, n)| n.is_ok())
                    .map(|(name, _)| aliases_dir.join(format!("{name}.toml"))),
            )
            .filter(|p| p.exists())
            .map(|p| p.display().to_string())
            .collect();
        if !existing.is_empty() {
            return Err(format!(
                "{} exist(s) already; nothing written (--force replaces)",
                existing.join(", ")
            ));
        }
    }
    std::fs::create_dir_all(&aliases_dir).map_err(|e| format!("cannot create {}: {e}", aliases_dir.display()))?;
    let mut written = Vec::new();
    for (name, native) in natives {
        match native {
            Ok((text, params)) => {
                let path = aliases_dir.join(format!("{name}.toml"));
                write(&path, &text, false)?;
                if let Err(e) = crate::pipeline::alias::Alias::from_file(&path) {
                    let _ = std::fs::remove_file(&path);
                    differences.push(format!("alias `{name}` has no native form: {e}"));
                    continue;
                }
                written.push(path);
                let query: Vec<String> = params.iter().map(|p| format!("{p}=..")).collect();
                let query = match query.is_empty() {
                    true => String::new(),
                    false => format!("?{}", query.join("&")),
                };
                differences.push(format!(
                    "alias `{name}`: natively `/images/{{id}}/{name}{query}` or `download(...):{name}(..)`; \
                     the original's `/{name}(image,..)` form is the compat profile's only."
                ));
            }
            Err(why) => differences.push(format!("alias `{name}` has no native form: {why}")),
        }
    }
    write(&config, &toml, c.secret.is_some())?;
    written.insert(0, config);
    Ok(Migration { written, differences })
}

/// Writes `text` to `path`, replacing it; readable by its owner only when
/// it holds a secret (the mode is set before a byte is written).
fn write(path: &Path, text: &str, secret: bool) -> Result<(), String> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let fail = |e: std::io::Error| format!("cannot write {}: {e}", path.display());
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    if secret {
        options.mode(0o600);
        // An existing file keeps its mode on open: narrow it first.
        if path.exists() {
            use std::os::unix::fs::PermissionsExt as _;
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(fail)?;
        }
    }
    let mut file = options.open(path).map_err(fail)?;
    file.write_all(text.as_bytes()).map_err(fail)
}

/// A meaningful name for argument `index` (after the image) of the
/// original's filter `filter`, from the original's own parameter names.
fn argument_name(filter: &str, index: usize) -> Option<&'static str> {
    let names: &[&str] = match filter {
        "resize" | "fit-in" | "pattern" => &["width", "height", "filter"],
        "crop" => &["x", "y", "width", "height"],
        "extend" => &["x", "y", "right", "bottom"],
        "resample" => &["x_dpi", "y_dpi", "filter"],
        "repeat" => &["count_x", "count_y", "offset_x", "offset_y"],
        "canvas" => &["bleed_x", "bleed_y"],
        "cm" => &["width_cm", "height_cm"],
        "dpi" => &["x_dpi", "y_dpi"],
        "sepia" => &["threshold"],
        "bg" => &["colour"],
        _ => &[],
    };
    names.get(index).copied()
}

/// A native alias file's text and its parameters' names.
type NativeAlias = (String, Vec<String>);

/// A native alias file for an original alias body, when it has one, and
/// its parameters' names: the body applied to the image it is given (`{0}`
/// or `download({0})` innermost), with each other `{N}` a parameter named
/// by where it is used (`width`; `size` when it is both width and height;
/// `crop_width` when another parameter is already `width`; `pN` where the
/// body gives no name).
fn native_alias(name: &str, body: &str, node: &Node) -> Result<NativeAlias, String> {
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
    let names = parameter_names(&steps);
    let mut chain = Vec::new();
    let mut format = None;
    for step in steps {
        let mut args = Vec::new();
        for arg in &step.args[1..] {
            args.push(match arg {
                Value::Int(v, unit) => format!("{v}{}", unit_suffix(*unit)),
                Value::Float(v, unit) => format!("{v}{}", unit_suffix(*unit)),
                Value::Text(t) => match placeholder(t) {
                    Some(n) => format!("{{{}}}", names[&n]),
                    None => t.clone(),
                },
                Value::Image(_) => return Err("it lays a second image over (native aliases cannot download)".into()),
            });
        }
        if step.name == "fit-in" {
            // The original's fit-in enlarged a smaller image.
            args.push("enlarge".into());
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
    let params: Vec<String> = names.into_values().collect();
    for p in &params {
        let (default, min) = match p.ends_with('x') || p.ends_with('y') || p.starts_with("offset") {
            // Offsets may be 0 or negative.
            true => (0, -16384),
            false => (100, 1),
        };
        writeln!(
            text,
            "\n[[param]]\nname = {p:?}\ntype = \"int\"\ndefault = {default}\nmin = {min}\nmax = 16384"
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
    text.push_str("input_quality = true\nstrip = false\nauto_orient = false\nkeep_icc = true\n");
    Ok((text, params))
}

/// Each placeholder's parameter name (`native_alias`), by its number.
fn parameter_names(steps: &[&Node]) -> BTreeMap<usize, String> {
    // Where each placeholder is used: (filter, argument name).
    let mut uses: BTreeMap<usize, Vec<(&str, Option<&'static str>)>> = BTreeMap::new();
    for step in steps {
        for (i, arg) in step.args.iter().skip(1).enumerate() {
            if let Value::Text(t) = arg
                && let Some(n) = placeholder(t)
            {
                uses.entry(n)
                    .or_default()
                    .push((step.name.as_str(), argument_name(&step.name, i)));
            }
        }
    }
    let mut names = BTreeMap::new();
    let mut taken = std::collections::BTreeSet::new();
    for (n, used) in uses {
        let mut kinds: Vec<&str> = used.iter().filter_map(|(_, k)| *k).collect();
        kinds.dedup();
        let base = match kinds.as_slice() {
            ["width", "height"] | ["height", "width"] => Some("size".to_string()),
            [kind] => Some(kind.to_string()),
            _ => None,
        };
        let name = match base {
            Some(b) if taken.insert(b.clone()) => b,
            Some(b) => {
                let scoped = format!("{}_{b}", used[0].0.replace('-', "_"));
                if taken.insert(scoped.clone()) {
                    scoped
                } else {
                    format!("p{n}")
                }
            }
            None => format!("p{n}"),
        };
        taken.insert(name.clone());
        names.insert(n, name);
    }
    names
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
        let m = migrate(yaml, dir.path(), false).unwrap();
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
        assert_eq!(thumb.chain.to_string(), "resize({width},0,lanczos)");
        assert!(
            thumb.output.input_quality,
            "a JPEG keeps its own quality, as the original wrote it"
        );
        let square = set.get("square").unwrap();
        assert_eq!(square.chain.to_string(), "fit-in({size},{size},enlarge)");
        assert_eq!(square.output.format, crate::pipeline::format::ImageFormat::Png);
        assert!(m.differences.iter().any(|d| d.contains("/images/{id}/thumb?width=..")));
        assert!(
            m.differences
                .iter()
                .any(|d| d.contains("alias `logo` has no native form"))
        );
        assert!(m.differences.iter().any(|d| d.contains("concatenated")));
        assert!(m.differences.iter().any(|d| d.contains("max_width")));
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(dir.path().join("imaginator.toml"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "the config holds the secret");

        // A second run replaces nothing unless told to.
        std::fs::write(dir.path().join("aliases/thumb.toml"), "edited").unwrap();
        let refused = migrate(yaml, dir.path(), false).err().expect("existing files are kept");
        assert!(
            refused.contains("imaginator.toml") && refused.contains("thumb.toml"),
            "{refused}"
        );
        assert_eq!(
            std::fs::read_to_string(dir.path().join("aliases/thumb.toml")).unwrap(),
            "edited"
        );
        migrate(yaml, dir.path(), true).expect("--force replaces");
        assert!(
            std::fs::read_to_string(dir.path().join("aliases/thumb.toml"))
                .unwrap()
                .contains("resize")
        );
    }

    #[test]
    fn parameters_are_named_by_where_the_body_uses_them() {
        let dir = tempfile::tempdir().unwrap();
        let yaml = "aliases:\n  box: \"crop(resize({0},{1},{2}),{3},{4},{5},{6})\"\n";
        let m = migrate(yaml, dir.path(), false).unwrap();
        let set = crate::pipeline::alias::AliasSet::load_dir(&dir.path().join("aliases")).unwrap();
        assert_eq!(
            set.get("box").unwrap().chain.to_string(),
            "resize({width},{height},lanczos):crop({x},{y},{crop_width},{crop_height})",
            "{:?}",
            m.differences
        );
    }
}
