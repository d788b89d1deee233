//! A client's filter chain (`download(origin:a.jpg):thumbnail(200)`) turned
//! into work: one source, a plan, an optional named cache. Nested image
//! arguments are the original's other spelling of the same thing:
//! `thumbnail(download(a),200)` is `download(a):thumbnail(200)`.

use super::alias::AliasSet;
use super::format::ImageFormat;
use super::ops::{Args, Compose, Op};
use super::parse::{Arg, Chain, Step, Unit};
use super::{OutputSpec, Plan};

#[derive(Clone, Debug, PartialEq)]
pub struct Compiled {
    /// What the chain's `download(...)` steps name, in order: the first is the
    /// image the plan transforms, the others are laid over it by `compose`.
    pub sources: Vec<SourceSpec>,
    pub plan: Plan,
    /// `cache(name)`: results go to the named cache (default `chains`).
    pub cache: String,
    /// Executed filters in order, for `log_filters_header`.
    pub filters: Vec<String>,
}

/// One `download(url[,dpi])`.
#[derive(Clone, Debug, PartialEq)]
pub struct SourceSpec {
    /// A URL or `shortcut:path`, as written.
    pub url: String,
    /// The resolution to assume instead of the file's, as the original's
    /// `download(url,dpi)`.
    pub dpi: Option<f64>,
}

/// Most images one chain may download (each is fetched and decoded).
pub const MAX_SOURCES: usize = 4;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ChainError {
    #[error("a chain starts with download(url)")]
    NoSource,
    #[error("download() starts an image; use compose(dst, download(...), op, x, y) to combine two")]
    SecondSource,
    #[error("`{0}` is not an alias (built-in filters are disabled for clients)")]
    BuiltinDisabled(String),
    #[error("unknown filter `{0}`")]
    Unknown(String),
    #[error("{0}")]
    Invalid(String),
}

/// Flattens nested image arguments into (name, other arguments) in order.
/// `compose` takes two images: nested it has five arguments
/// (`compose(dst,src,op,x,y)`), chained four (`...:compose(src,op,x,y)`).
fn linearize(step: &Step, out: &mut Vec<(String, Vec<Arg>)>) {
    let nested = step.name != "download" && (step.name != "compose" || step.args.len() == 5);
    if nested && let Some(Arg::Call(inner)) = step.args.first() {
        linearize(inner, out);
        out.push((step.name.clone(), step.args[1..].to_vec()));
        return;
    }
    out.push((step.name.clone(), step.args.clone()));
}

fn text(arg: &Arg) -> Result<String, ChainError> {
    match arg {
        Arg::Number(n) => Ok(n.value.to_string()),
        Arg::Word(w) => Ok(w.clone()),
        other => Err(ChainError::Invalid(format!("unexpected argument `{other}`"))),
    }
}

pub fn compile(chain: &Chain, aliases: &AliasSet, allow_builtin: bool) -> Result<Compiled, ChainError> {
    let mut compiler = Compiler {
        aliases,
        allow_builtin,
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
    Ok(Compiled {
        sources: compiler.sources,
        plan: Plan { ops, output },
        cache,
        filters: compiler.filters,
    })
}

struct Compiler<'a> {
    aliases: &'a AliasSet,
    allow_builtin: bool,
    sources: Vec<SourceSpec>,
    filters: Vec<String>,
}

impl Compiler<'_> {
    /// One image: `download(...)` then filters. `output` is the whole
    /// result's format and cache, which only the main image may set.
    fn image(
        &mut self,
        steps: Vec<(String, Vec<Arg>)>,
        mut output: Option<(&mut OutputSpec, &mut String)>,
    ) -> Result<Vec<Op>, ChainError> {
        let mut iter = steps.into_iter();
        let (first, args) = iter.next().ok_or(ChainError::NoSource)?;
        if first != "download" {
            return Err(ChainError::NoSource);
        }
        self.download(&args)?;
        let mut ops: Vec<Op> = Vec::new();
        for (name, args) in iter {
            let whole_result = matches!(
                name.as_str(),
                "format" | "quality" | "cache" | "interlace" | "progressive" | "strip"
            );
            match (name.as_str(), output.as_mut()) {
                ("download", _) => return Err(ChainError::SecondSource),
                (_, None) if whole_result => {
                    return Err(ChainError::Invalid(format!(
                        "{name}() applies to the whole result, not to compose's second image"
                    )));
                }
                (_, Some((output, cache))) if whole_result => output_step(&name, &args, output, cache)?,
                ("compose", _) => {
                    let op = self.compose(&args)?;
                    ops.push(op);
                }
                _ => ops.extend(self.filter(&name, &args)?),
            }
            self.filters.push(name);
        }
        Ok(ops)
    }

    fn download(&mut self, args: &[Arg]) -> Result<(), ChainError> {
        if self.sources.len() == MAX_SOURCES {
            return Err(ChainError::Invalid(format!("at most {MAX_SOURCES} images per chain")));
        }
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
        self.sources.push(SourceSpec { url, dpi });
        Ok(())
    }

    /// `compose(src,op,x,y)` after its first image was linearized away.
    fn compose(&mut self, args: &[Arg]) -> Result<Op, ChainError> {
        if !self.allow_builtin {
            return Err(ChainError::BuiltinDisabled("compose".into()));
        }
        let Some(Arg::Call(src)) = args.first() else {
            return Err(ChainError::Invalid(
                "compose: the second image must be an image expression such as download(...)".into(),
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

    /// An alias (expanded) or, when allowed, a built-in operation.
    fn filter(&mut self, name: &str, args: &[Arg]) -> Result<Vec<Op>, ChainError> {
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
            return Ok(plan.ops);
        }
        if !self.allow_builtin {
            return Err(ChainError::BuiltinDisabled(name.to_string()));
        }
        let step = Step {
            name: name.to_string(),
            args: args.to_vec(),
        };
        Op::from_step(&step).map(|op| vec![op]).map_err(|e| {
            if e.message == "unknown filter" {
                ChainError::Unknown(name.to_string())
            } else {
                ChainError::Invalid(e.to_string())
            }
        })
    }
}

/// `format`, `quality`, `cache`, `interlace`/`progressive` and `strip`: they
/// shape the written result, not the pixels.
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
                .ok_or_else(|| ChainError::Invalid(format!("quality: must be 1..=100, got `{q}`")))?;
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
        assert_eq!(a.sources[0].url, "origin:a.jpg");
        assert_eq!(a.plan.output_size(Size::new(2000, 1000)), Size::new(200, 100));
    }

    #[test]
    fn builtins_need_permission_and_output_steps_apply() {
        assert_eq!(
            compile_text("download(x):resize(10,10)", false).unwrap_err(),
            ChainError::BuiltinDisabled("resize".into())
        );
        let c = compile_text("download(x):resize(10,10):format(png):quality(70):cache(avatars)", true).unwrap();
        assert_eq!(c.plan.output.format, ImageFormat::Png);
        assert_eq!(c.plan.output.quality, 70);
        assert_eq!(c.cache, "avatars");
        assert_eq!(c.filters, ["download(x)", "resize", "format", "quality", "cache"]);
        assert_eq!(
            compile_text("download(x):explode()", true).unwrap_err(),
            ChainError::Unknown("explode".into())
        );
        assert_eq!(compile_text("thumbnail(200)", false).unwrap_err(), ChainError::NoSource);
        assert!(matches!(
            compile_text("download(x):thumbnail(0)", false),
            Err(ChainError::Invalid(_))
        ));
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
        assert_eq!(nested.sources, chained.sources);
        assert_eq!(
            nested.sources,
            [
                SourceSpec {
                    url: "a.jpg".into(),
                    dpi: None
                },
                SourceSpec {
                    url: "b.png".into(),
                    dpi: Some(150.0)
                }
            ]
        );
        let Op::Compose(c) = &nested.plan.ops[0] else { panic!() };
        assert_eq!((c.input, c.operator.as_str(), c.ops.len()), (1, "over", 1));
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
            ChainError::BuiltinDisabled("compose".into())
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
