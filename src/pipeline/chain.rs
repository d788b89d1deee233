//! A client's filter chain (`download(origin:a.jpg):thumbnail(200)`) turned
//! into work: one source, a plan, an optional named cache. Nested image
//! arguments are the original's other spelling of the same thing:
//! `thumbnail(download(a),200)` is `download(a):thumbnail(200)`.

use super::alias::AliasSet;
use super::format::ImageFormat;
use super::ops::{Args, Compose, Op};
use super::parse::{Arg, Chain, Step, Unit};
use super::{OutputSpec, Plan};
use std::fmt;

#[derive(Clone, Debug, PartialEq)]
pub struct Compiled {
    /// The image the plan transforms; the plan's `overlays` are the others.
    pub source: SourceSpec,
    pub plan: Plan,
    /// `cache(name)`: results go to the named cache (default `chains`).
    pub cache: String,
    /// Executed filters in order, for `log_filters_header`.
    pub filters: Vec<String>,
}

/// Where an image comes from.
#[derive(Clone, Debug, PartialEq)]
pub enum SourceSpec {
    /// `download(url[,dpi])`: a URL or `shortcut:path`, as written, and the
    /// resolution to assume instead of the file's (the original's `dpi`).
    Download { url: String, dpi: Option<f64> },
    /// `original(id)`: an image uploaded with `POST /images` (its SHA-256).
    Original { id: String },
}

impl SourceSpec {
    pub fn dpi(&self) -> Option<f64> {
        match self {
            SourceSpec::Download { dpi, .. } => *dpi,
            SourceSpec::Original { .. } => None,
        }
    }
}

impl fmt::Display for SourceSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SourceSpec::Download { url, dpi: None } => write!(f, "download('{url}')"),
            SourceSpec::Download { url, dpi: Some(d) } => write!(f, "download('{url}',{d})"),
            SourceSpec::Original { id } => write!(f, "original({id})"),
        }
    }
}

/// Most images one chain may use (each is fetched and decoded).
pub const MAX_SOURCES: usize = 4;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ChainError {
    #[error("a chain starts with download(url) or original(id)")]
    NoSource,
    #[error("download() starts an image; use compose(dst, download(...), op, x, y) to combine two")]
    SecondSource,
    /// The name, and a suggestion (`; did you mean ...?`) or nothing.
    #[error("`{0}` is not an alias (built-in filters are disabled for clients){1}")]
    BuiltinDisabled(String, String),
    #[error("unknown filter `{0}`{1}")]
    Unknown(String, String),
    #[error("{0}")]
    Invalid(String),
}

/// Flattens nested image arguments into (name, other arguments) in order.
/// `compose` takes two images: nested it has five arguments
/// (`compose(dst,src,op,x,y)`), chained four (`...:compose(src,op,x,y)`).
fn linearize(step: &Step, out: &mut Vec<(String, Vec<Arg>)>) {
    let source = matches!(step.name.as_str(), "download" | "original");
    let nested = !source && (step.name != "compose" || step.args.len() == 5);
    if nested && let Some(Arg::Call(inner)) = step.args.first() {
        linearize(inner, out);
        out.push((step.name.clone(), step.args[1..].to_vec()));
        return;
    }
    out.push((step.name.clone(), step.args.clone()));
}

/// An argument as text for an alias parameter or an output step; a number
/// keeps its unit, so `thumbnail(200w)` is refused rather than read as 200.
fn text(arg: &Arg) -> Result<String, ChainError> {
    match arg {
        Arg::Number(n) => Ok(n.to_string()),
        Arg::Word(w) => Ok(w.clone()),
        other => Err(ChainError::Invalid(format!("unexpected argument `{other}`"))),
    }
}

pub fn compile(chain: &Chain, aliases: &AliasSet, allow_builtin: bool) -> Result<Compiled, ChainError> {
    let mut compiler = Compiler {
        aliases,
        allow_builtin,
        downloads: true,
        sources: Vec::new(),
        filters: Vec::new(),
    };
    let mut output = OutputSpec::default();
    let mut cache = "chains".to_string();
    let mut steps = Vec::new();
    for step in &chain.0 {
        linearize(step, &mut steps);
    }
    let ops = compiler.image(steps, Some((&mut output, &mut cache)))?;
    let mut sources = compiler.sources.into_iter();
    let source = sources.next().ok_or(ChainError::NoSource)?;
    Ok(Compiled {
        source,
        plan: Plan {
            dialect: Default::default(),
            ops,
            output,
            overlays: sources.collect(),
        },
        cache,
        filters: compiler.filters,
    })
}

/// An alias body: steps applied to the request's image. `compose` may lay
/// uploaded originals (`original(id)`) over it, never a download: an alias
/// runs on every path, including `/images/{id}/{alias}`, where nothing
/// should reach the network. Returns the operations and the overlays they use.
pub fn compile_alias(steps: &[Step]) -> Result<(Vec<Op>, Vec<SourceSpec>), ChainError> {
    let none = AliasSet::default();
    let mut compiler = Compiler {
        aliases: &none,
        allow_builtin: true,
        downloads: false,
        // Index 0 is the request's image.
        sources: vec![SourceSpec::Original { id: String::new() }],
        filters: Vec::new(),
    };
    let steps = steps.iter().map(|s| (s.name.clone(), s.args.clone())).collect();
    let ops = compiler.steps(steps, None)?;
    Ok((ops, compiler.sources.split_off(1)))
}

struct Compiler<'a> {
    aliases: &'a AliasSet,
    allow_builtin: bool,
    /// Whether `download()` may name a source (not in alias files).
    downloads: bool,
    sources: Vec<SourceSpec>,
    filters: Vec<String>,
}

type Output<'a> = Option<(&'a mut OutputSpec, &'a mut String)>;

impl Compiler<'_> {
    /// One image: a source step, then filters. `output` is the whole
    /// result's format and cache, which only the main image may set.
    fn image(&mut self, steps: Vec<(String, Vec<Arg>)>, output: Output<'_>) -> Result<Vec<Op>, ChainError> {
        let mut iter = steps.into_iter();
        let (first, args) = iter.next().ok_or(ChainError::NoSource)?;
        self.source(&first, &args)?;
        self.steps(iter.collect(), output)
    }

    fn steps(&mut self, steps: Vec<(String, Vec<Arg>)>, mut output: Output<'_>) -> Result<Vec<Op>, ChainError> {
        let mut ops: Vec<Op> = Vec::new();
        for (name, args) in steps {
            let whole_result = matches!(
                name.as_str(),
                "format" | "quality" | "cache" | "interlace" | "progressive" | "strip" | "icc" | "depth"
            );
            match (name.as_str(), output.as_mut()) {
                ("download" | "original", _) => return Err(ChainError::SecondSource),
                (_, None) if whole_result => {
                    return Err(ChainError::Invalid(format!(
                        "{name}() applies to the whole result: set it in the alias's [output] or the URL, \
                         not inside an alias chain or compose's second image"
                    )));
                }
                (_, Some((output, cache))) if whole_result => output_step(&name, &args, output, cache)?,
                ("compose", _) => {
                    let op = self.compose(&args)?;
                    ops.push(op);
                }
                _ => {
                    let (more, alias_output) = self.filter(&name, &args)?;
                    ops.extend(more);
                    // The alias's output format and quality become the result's.
                    if let (Some(spec), Some((output, _))) = (alias_output, output.as_mut()) {
                        **output = spec;
                    }
                }
            }
            self.filters.push(name);
        }
        Ok(ops)
    }

    /// `download(url[,dpi])` or `original(id)`: registers a source.
    fn source(&mut self, name: &str, args: &[Arg]) -> Result<(), ChainError> {
        if self.sources.len() == MAX_SOURCES {
            return Err(ChainError::Invalid(format!("at most {MAX_SOURCES} images per chain")));
        }
        let spec = match name {
            "download" if !self.downloads => {
                return Err(ChainError::Invalid(
                    "an alias cannot download: lay an uploaded image over with compose(original(ID), op, x, y)".into(),
                ));
            }
            "download" => {
                let url = match args.first() {
                    Some(arg) => text(arg)?,
                    None => return Err(ChainError::Invalid("download() needs a URL".into())),
                };
                let dpi = match args.get(1) {
                    None => None,
                    Some(Arg::Number(n)) if n.unit == Unit::Px && (1.0..=10_000.0).contains(&n.value) => Some(n.value),
                    Some(other) => {
                        return Err(ChainError::Invalid(format!(
                            "download: dpi must be a number from 1 to 10000, got `{other}`"
                        )));
                    }
                };
                if args.len() > 2 {
                    return Err(ChainError::Invalid("download takes a URL and an optional dpi".into()));
                }
                self.filters.push(format!("download({url})"));
                SourceSpec::Download { url, dpi }
            }
            "original" => {
                let id = match args {
                    [Arg::Word(id)] if id.len() == 64 && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) => {
                        id.clone()
                    }
                    _ => {
                        return Err(ChainError::Invalid(
                            "original() takes the 64-character id POST /images returned".into(),
                        ));
                    }
                };
                self.filters.push(format!("original({id})"));
                SourceSpec::Original { id }
            }
            _ => return Err(ChainError::NoSource),
        };
        self.sources.push(spec);
        Ok(())
    }

    /// `compose(src,op,x,y)` after its first image was linearized away.
    fn compose(&mut self, args: &[Arg]) -> Result<Op, ChainError> {
        if !self.allow_builtin {
            return Err(self.builtin_disabled("compose"));
        }
        let Some(Arg::Call(src)) = args.first() else {
            return Err(ChainError::Invalid(
                "compose: the second image must be an image expression such as download(...) or original(ID)".into(),
            ));
        };
        let mut steps = Vec::new();
        linearize(src, &mut steps);
        let input = self.sources.len();
        let ops = self.image(steps, None)?;
        let rest = Step {
            name: "compose".into(),
            args: args[1..].to_vec(),
        };
        Compose::parse(&Args { step: &rest }, input, ops)
            .map(Op::Compose)
            .map_err(|e| ChainError::Invalid(e.to_string()))
    }

    /// An alias (expanded, its overlays renumbered after this chain's) or,
    /// when allowed, a built-in operation.
    fn filter(&mut self, name: &str, args: &[Arg]) -> Result<(Vec<Op>, Option<OutputSpec>), ChainError> {
        if let Some(alias) = self.aliases.get(name) {
            let values: Vec<String> = args.iter().map(text).collect::<Result<_, _>>()?;
            if values.len() > alias.params.len() {
                return Err(ChainError::Invalid(format!(
                    "{name} takes at most {} arguments",
                    alias.params.len()
                )));
            }
            let pairs: Vec<(&str, &str)> = alias
                .params
                .iter()
                .zip(&values)
                .map(|(p, v)| (p.name.as_str(), v.as_str()))
                .collect();
            let plan = alias
                .instantiate(pairs)
                .map_err(|e| ChainError::Invalid(format!("{name}: {e}")))?;
            if self.sources.len() + plan.overlays.len() > MAX_SOURCES {
                return Err(ChainError::Invalid(format!("at most {MAX_SOURCES} images per chain")));
            }
            // The alias numbers its overlays from 1 (0 is its input).
            let shift = self.sources.len() - 1;
            self.sources.extend(plan.overlays);
            let mut ops = plan.ops;
            for op in &mut ops {
                op.shift_sources(shift);
            }
            return Ok((ops, Some(plan.output)));
        }
        // A setting of the request (like `format`), allowed with or without
        // built-in filters: the sizes after it are for a denser screen.
        if name == "dpr" {
            let step = Step {
                name: name.to_string(),
                args: args.to_vec(),
            };
            return Op::from_step(&step)
                .map(|op| (vec![op], None))
                .map_err(|e| ChainError::Invalid(e.to_string()));
        }
        if !self.allow_builtin {
            return Err(self.builtin_disabled(name));
        }
        let step = Step {
            name: name.to_string(),
            args: args.to_vec(),
        };
        Op::from_step(&step).map(|op| (vec![op], None)).map_err(|e| {
            if e.message == "unknown filter" {
                let known = super::ops::NAMES
                    .iter()
                    .copied()
                    .chain(CHAIN_NAMES)
                    .chain(self.aliases.aliases.keys().map(String::as_str));
                ChainError::Unknown(name.to_string(), super::suggest::did_you_mean(name, known))
            } else {
                ChainError::Invalid(e.to_string())
            }
        })
    }

    /// A built-in filter named where only aliases are allowed, with the
    /// nearest alias as a suggestion.
    fn builtin_disabled(&self, name: &str) -> ChainError {
        let aliases = self.aliases.aliases.keys().map(String::as_str);
        ChainError::BuiltinDisabled(name.to_string(), super::suggest::did_you_mean(name, aliases))
    }
}

/// The names a chain knows besides operations and aliases.
const CHAIN_NAMES: [&str; 12] = [
    "download",
    "original",
    "format",
    "quality",
    "cache",
    "interlace",
    "progressive",
    "strip",
    "icc",
    "depth",
    "compose",
    "dpr",
];

/// `format`, `quality`, `cache`, `interlace`/`progressive`, `strip`, `icc`
/// and `depth`: they shape the written result, not the pixels.
fn output_step(name: &str, args: &[Arg], output: &mut OutputSpec, cache: &mut String) -> Result<(), ChainError> {
    match name {
        "format" => {
            let f = args.first().map(text).transpose()?.unwrap_or_default();
            output.keep.clear();
            output.negotiate = f == "auto";
            if !output.negotiate {
                output.format = ImageFormat::parse(&f)
                    .filter(|f| *f != ImageFormat::Heic)
                    .ok_or_else(|| ChainError::Invalid(format!("format: unknown output format `{f}`")))?;
            }
        }
        "quality" => {
            let q = args.first().map(text).transpose()?.unwrap_or_default();
            output.quality = q
                .parse::<u8>()
                .ok()
                .filter(|q| (1..=100).contains(q))
                .ok_or_else(|| ChainError::Invalid(format!("quality: must be between 1 and 100, got `{q}`")))?;
        }
        "cache" => {
            let n = args.first().map(text).transpose()?.unwrap_or_default();
            if n.is_empty() || !n.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
                return Err(ChainError::Invalid(format!("cache: bad cache name `{n}`")));
            }
            *cache = n;
        }
        "interlace" | "progressive" => output.interlace = true,
        "strip" => output.strip = true,
        "icc" => {
            let mode = args.first().map(text).transpose()?.unwrap_or_default();
            output.keep_icc = match mode.as_str() {
                "keep" => true,
                "srgb" => false,
                other => {
                    return Err(ChainError::Invalid(format!(
                        "icc: `keep` (the image's own profile and pixels) or `srgb` (convert, the default), got `{other}`"
                    )));
                }
            };
        }
        "depth" => {
            let d = args.first().map(text).transpose()?.unwrap_or_default();
            output.depth = match d.as_str() {
                "8" => 8,
                "16" => 16,
                other => return Err(ChainError::Invalid(format!("depth: 8 or 16, got `{other}`"))),
            };
        }
        _ => unreachable!("not an output step: {name}"),
    }
    if !args.is_empty() && matches!(name, "interlace" | "progressive" | "strip") {
        return Err(ChainError::Invalid(format!("{name}() takes no arguments")));
    }
    Ok(())
}

/// Splits a URL path (already percent-decoded) into the chain and an
/// ignored trailing `/file-name` for humans: the first `/` outside
/// parentheses and quotes ends the chain.
pub fn strip_trailing_name(path: &str) -> &str {
    let mut depth = 0i32;
    let mut quote: Option<char> = None;
    for (i, c) in path.char_indices() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '\'' | '"') => quote = Some(c),
            (None, '(') => depth += 1,
            (None, ')') => depth -= 1,
            (None, '/') if depth == 0 => return &path[..i],
            _ => {}
        }
    }
    path
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::ops::Size;
    use crate::pipeline::parse::{ParseLimits, parse_chain};
    use std::path::Path;

    fn aliases() -> AliasSet {
        AliasSet::load_dir(&Path::new(env!("CARGO_MANIFEST_DIR")).join("aliases")).unwrap()
    }

    fn compile_text(text: &str, builtin: bool) -> Result<Compiled, ChainError> {
        compile(&parse_chain(text, ParseLimits::default()).unwrap(), &aliases(), builtin)
    }

    #[test]
    fn nested_and_chained_forms_are_the_same_work() {
        let a = compile_text("download(origin:a.jpg):thumbnail(200)", false).unwrap();
        let b = compile_text("thumbnail(download(origin:a.jpg),200)", false).unwrap();
        assert_eq!(a.plan, b.plan);
        assert_eq!(
            a.source,
            SourceSpec::Download {
                url: "origin:a.jpg".into(),
                dpi: None
            }
        );
        assert_eq!(a.plan.output_size(Size::new(2000, 1000)), Size::new(200, 100));
    }

    #[test]
    fn builtins_need_permission_and_output_steps_apply() {
        assert_eq!(
            compile_text("download(x):resize(10,10)", false).unwrap_err(),
            ChainError::BuiltinDisabled("resize".into(), String::new())
        );
        let c = compile_text("download(x):resize(10,10):format(png):quality(70):cache(avatars)", true).unwrap();
        assert_eq!(c.plan.output.format, ImageFormat::Png);
        assert_eq!(c.plan.output.quality, 70);
        assert_eq!(c.cache, "avatars");
        assert_eq!(c.filters, ["download(x)", "resize", "format", "quality", "cache"]);
        assert_eq!(
            compile_text("download(x):explode()", true).unwrap_err(),
            ChainError::Unknown("explode".into(), String::new())
        );
        assert_eq!(
            compile_text("download(x):resise(10,10)", true).unwrap_err().to_string(),
            "unknown filter `resise`; did you mean `resize`?"
        );
        assert_eq!(compile_text("thumbnail(200)", false).unwrap_err(), ChainError::NoSource);
        assert!(matches!(
            compile_text("download(x):thumbnail(0)", false),
            Err(ChainError::Invalid(_))
        ));
        assert!(
            matches!(compile_text("download(x):thumbnail(200w)", false), Err(ChainError::Invalid(m)) if m.contains("200w")),
            "a unit is not dropped"
        );
    }

    #[test]
    fn compose_takes_a_second_image_nested_or_chained() {
        let nested = compile_text(
            "compose(download(a.jpg),resize(download(b.png,150),10,10),over,5,6):format(png)",
            true,
        )
        .unwrap();
        let chained = compile_text(
            "download(a.jpg):compose(resize(download(b.png,150),10,10),over,5,6):format(png)",
            true,
        )
        .unwrap();
        assert_eq!(nested.plan, chained.plan);
        assert_eq!(nested.source, chained.source);
        assert_eq!(
            nested.plan.overlays,
            [SourceSpec::Download {
                url: "b.png".into(),
                dpi: Some(150.0)
            }]
        );
        let Op::Compose(c) = &nested.plan.ops[0] else { panic!() };
        assert_eq!((c.input, c.operator.name(), c.ops.len()), (1, "over", 1));
        assert_eq!(
            nested.plan.canonical().split('|').next(),
            Some("compose(#1:resize(10,10,auto),over,5,6)")
        );

        // The second image cannot set the output, and builtins need permission.
        assert!(matches!(
            compile_text("download(a):compose(format(download(b),png),over,0,0)", true),
            Err(ChainError::Invalid(_))
        ));
        assert_eq!(
            compile_text("download(a):compose(download(b),over,0,0)", false).unwrap_err(),
            ChainError::BuiltinDisabled("compose".into(), String::new())
        );
        assert!(matches!(
            compile_text("download(a):compose(over,0,0,1)", true),
            Err(ChainError::Invalid(_))
        ));
        assert!(matches!(
            compile_text("download(a):compose(download(b),explode,0,0)", true),
            Err(ChainError::Invalid(_))
        ));
        let many = "download(a)".to_string() + &":compose(download(b),over,0,0)".repeat(MAX_SOURCES);
        assert!(matches!(
            compile(
                &parse_chain(
                    &many,
                    ParseLimits {
                        max_steps: 64,
                        max_depth: 8,
                        ..Default::default()
                    }
                )
                .unwrap(),
                &aliases(),
                true
            ),
            Err(ChainError::Invalid(_))
        ));
    }

    #[test]
    fn an_alias_brings_its_output_and_its_overlays_renumbered() {
        let logo = "ab".repeat(32);
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("mark.toml"),
            format!("chain = \"compose(original({logo}),over,1,1)\"\n[output]\nformat = \"png\"\n"),
        )
        .unwrap();
        let set = AliasSet::load_dir(dir.path()).unwrap();
        let chain = "download(a):compose(download(b),over,0,0):mark()";
        let c = compile(&parse_chain(chain, ParseLimits::default()).unwrap(), &set, true).unwrap();
        assert_eq!(c.plan.output.format, ImageFormat::Png, "the alias's output wins");
        assert_eq!(
            c.plan.overlays,
            [
                SourceSpec::Download {
                    url: "b".into(),
                    dpi: None
                },
                SourceSpec::Original { id: logo.clone() }
            ]
        );
        let inputs: Vec<usize> = c
            .plan
            .ops
            .iter()
            .map(|op| match op {
                Op::Compose(c) => c.input,
                other => panic!("{other}"),
            })
            .collect();
        assert_eq!(inputs, [1, 2], "the alias's overlay follows the chain's");
        assert_eq!(
            compile_text("download(x):preview()", false).unwrap().plan.output.keep,
            [ImageFormat::Png, ImageFormat::Gif]
        );

        // What an alias body may not do.
        let body = |text: &str| compile_alias(&parse_chain(text, ParseLimits::default()).unwrap().0);
        assert!(body("compose(download(origin:logo.png),over,0,0)").is_err());
        assert!(body("resize(10,10):format(png)").is_err());
        assert!(body("compose(original(abc),over,0,0)").is_err());
        let (ops, overlays) = body(&format!("fit-in(100,100):compose(original({logo}),over,0,0)")).unwrap();
        assert_eq!((ops.len(), overlays.len()), (2, 1));
    }

    #[test]
    fn output_steps_shape_the_result() {
        let c = compile_text("download(a):interlace():strip()", true).unwrap();
        assert!(c.plan.output.interlace && c.plan.output.strip);
        assert!(
            compile_text("download(a):progressive()", true)
                .unwrap()
                .plan
                .output
                .interlace
        );
        assert!(compile_text("download(a):interlace(1)", true).is_err());
        assert!(compile_text("download(a,0)", true).is_err());
        assert!(compile_text("download(a,72,1)", true).is_err());
    }

    #[test]
    fn a_trailing_file_name_is_ignored_but_urls_inside_are_kept() {
        assert_eq!(
            strip_trailing_name("download(origin:a.jpg):thumbnail()/cat.jpg"),
            "download(origin:a.jpg):thumbnail()"
        );
        assert_eq!(
            strip_trailing_name("download(http://h/x/y.jpg):thumbnail()"),
            "download(http://h/x/y.jpg):thumbnail()"
        );
        assert_eq!(strip_trailing_name("download('a/b)'):x()/n"), "download('a/b)'):x()");
    }
}
