use super::*;
use crate::pipeline::ops::Size;

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

const THUMB: &str = r#"
description = "fit"
chain = "fit-in({width},{0})"

[[param]]
name = "width"
type = "int"
default = 400
min = 1
max = 4096

[output]
format = "jpeg"
quality = 80
"#;

#[test]
fn an_alias_binds_defaults_and_query_values() {
    let dir = tempfile::tempdir().unwrap();
    let alias = Alias::from_file(&write(dir.path(), "thumb.toml", THUMB)).unwrap();
    assert_eq!(alias.name, "thumb");
    let plan = alias.instantiate([]).unwrap();
    assert_eq!(plan.output_size(Size::new(2000, 1000)), Size::new(400, 200));
    let plan = alias.instantiate([("width", "100")]).unwrap();
    assert_eq!(plan.output_size(Size::new(2000, 1000)), Size::new(100, 50));
    assert_eq!(plan.output.quality, 80);
}

#[test]
fn out_of_bounds_and_unknown_parameters_name_the_parameter() {
    let dir = tempfile::tempdir().unwrap();
    let alias = Alias::from_file(&write(dir.path(), "thumb.toml", THUMB)).unwrap();
    let err = alias.instantiate([("width", "0")]).unwrap_err();
    assert_eq!(err.param, "width");
    assert!(err.message.contains("between 1 and 4096"), "{err}");
    let err = alias.instantiate([("width", "wide")]).unwrap_err();
    assert!(err.message.contains("not a whole number"), "{err}");
    let err = alias.instantiate([("height", "10")]).unwrap_err();
    assert_eq!(err.param, "height");
}

#[test]
fn broken_files_are_refused_with_file_line_and_reason() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            "syntax.toml",
            "chain = \"fit-in(1,1)\"\nquality = = 3\n",
            "syntax.toml:2",
        ),
        (
            "chain.toml",
            "description = \"x\"\nchain = \"fit-in(1,\"\n",
            "chain.toml:2",
        ),
        ("op.toml", "chain = \"explode(1)\"\n", "unknown filter"),
        (
            "placeholder.toml",
            "chain = \"fit-in({w},{w})\"\n",
            "names no declared parameter",
        ),
        (
            "bounds.toml",
            "chain = \"fit-in({w},{w})\"\n[[param]]\nname = \"w\"\ntype = \"int\"\ndefault = 5\nmin = 0\nmax = 99999\n",
            "chain is invalid",
        ),
        (
            "default.toml",
            "chain = \"fit-in({w},{w})\"\n[[param]]\nname = \"w\"\ntype = \"int\"\ndefault = 500\nmin = 1\nmax = 10\n",
            "default is outside",
        ),
        (
            "quality.toml",
            "chain = \"fit-in(1,1)\"\n[output]\nquality = 0\n",
            "quality",
        ),
        (
            "format.toml",
            "chain = \"fit-in(1,1)\"\n[output]\nformat = \"bmp\"\n",
            "format.toml:3",
        ),
        ("unknown.toml", "chain = \"fit-in(1,1)\"\ncolour = 1\n", "unknown field"),
    ];
    for (name, text, expected) in cases {
        let err = Alias::from_file(&write(dir.path(), name, text))
            .unwrap_err()
            .to_string();
        assert!(err.contains(name), "{err}");
        assert!(err.contains(expected), "{name}: expected `{expected}` in `{err}`");
    }
}

#[test]
fn keep_writes_listed_input_formats_as_themselves() {
    let dir = tempfile::tempdir().unwrap();
    let text = "chain = \"fit-in(10,10)\"\n[output]\nformat = \"jpeg\"\nkeep = [\"png\"]\n";
    let alias = Alias::from_file(&write(dir.path(), "p.toml", text)).unwrap();
    assert_eq!(alias.output.format_for(ImageFormat::Png), ImageFormat::Png);
    assert_eq!(alias.output.format_for(ImageFormat::Gif), ImageFormat::Jpeg);
}

#[test]
fn the_shipped_aliases_load() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("aliases");
    let set = AliasSet::load_dir(&dir).unwrap();
    for name in ["thumbnail", "avatar", "preview"] {
        assert!(set.get(name).is_some(), "{name} missing");
    }
    let avatar = set.get("avatar").unwrap().instantiate([("size", "64")]).unwrap();
    assert_eq!(avatar.output_size(Size::new(640, 400)), Size::new(64, 64));
}

#[test]
fn decode_scale_follows_the_first_reduction_with_headroom() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("aliases");
    let set = AliasSet::load_dir(&dir).unwrap();
    let thumb = set.get("thumbnail").unwrap().instantiate([("width", "400")]).unwrap();
    // 5120x2880 -> 400x225: scale 0.078, x2 headroom = 0.156
    let scale = thumb.decode_scale(Size::new(5120, 2880), 2.0).unwrap();
    assert!((scale - 0.15625).abs() < 1e-9, "{scale}");
    // A small image needs no decode-time reduction.
    assert_eq!(thumb.decode_scale(Size::new(500, 300), 2.0), None);
    // 1x headroom: decode at the target size (5120 -> 400 is 0.078).
    assert!((thumb.decode_scale(Size::new(5120, 2880), 1.0).unwrap() - 0.078125).abs() < 1e-9);
}
