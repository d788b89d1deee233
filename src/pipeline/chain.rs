//! A client's filter chain (`download(origin:a.jpg):thumbnail(200)`) turned
//! into work: one source, a plan, an optional named cache. Nested image
//! arguments are the original's other spelling of the same thing:
//! `thumbnail(download(a),200)` is `download(a):thumbnail(200)`.

use super::alias::AliasSet;
use super::format::ImageFormat;
use super::ops::Op;
use super::parse::{Arg, Chain, Step};
use super::{OutputSpec, Plan};

#[derive(Clone, Debug, PartialEq)]
pub struct Compiled {
    /// What `download(...)` named, as written (a URL or `shortcut:path`).
    pub source: String,
    pub plan: Plan,
    /// `cache(name)`: results go to the named cache (default `chains`).
    pub cache: String,
    /// Executed filters in order, for `log_filters_header`.
    pub filters: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ChainError {
    #[error("a chain starts with download(url)")]
    NoSource,
    #[error("only one download() per chain is supported")]
    SecondSource,
    #[error("`{0}` is not an alias (built-in filters are disabled for clients)")]
    BuiltinDisabled(String),
    #[error("unknown filter `{0}`")]
    Unknown(String),
    #[error("{0}")]
    Invalid(String),
}

/// Flattens nested image arguments into (name, other arguments) in order.
fn linearize(step: &Step, out: &mut Vec<(String, Vec<Arg>)>) {
    if step.name != "download"
        && let Some(Arg::Call(inner)) = step.args.first()
    {
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
    let mut steps = Vec::new();
    for step in &chain.0 {
        linearize(step, &mut steps);
    }
    let mut iter = steps.into_iter();
    let (first, args) = iter.next().ok_or(ChainError::NoSource)?;
    if first != "download" {
        return Err(ChainError::NoSource);
    }
    let source = match args.first() {
        Some(arg) => text(arg)?,
        None => return Err(ChainError::Invalid("download() needs a URL".into())),
    };
    let mut ops: Vec<Op> = Vec::new();
    let mut output = OutputSpec::default();
    let mut cache = "chains".to_string();
    let mut filters = vec![format!("download({source})")];
    for (name, args) in iter {
        match name.as_str() {
            "download" => return Err(ChainError::SecondSource),
            "format" => {
                let f = args.first().map(text).transpose()?.unwrap_or_default();
                output.negotiate = f == "auto";
                if output.negotiate {
                    output.keep.clear();
                    filters.push(name);
                    continue;
                }
                output.format = ImageFormat::parse(&f)
                    .filter(|f| *f != ImageFormat::Heic)
                    .ok_or_else(|| ChainError::Invalid(format!("format: unknown output format `{f}`")))?;
                output.keep.clear();
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
                cache = n;
            }
            _ => {
                if let Some(alias) = aliases.get(&name) {
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
                    ops.extend(plan.ops);
                    output = plan.output;
                } else if !allow_builtin {
                    return Err(ChainError::BuiltinDisabled(name));
                } else {
                    let op = Op::from_step(&Step {
                        name: name.clone(),
                        args: args.clone(),
                    })
                    .map_err(|e| {
                        if e.message == "unknown filter" {
                            ChainError::Unknown(name.clone())
                        } else {
                            ChainError::Invalid(e.to_string())
                        }
                    })?;
                    ops.push(op);
                }
            }
        }
        filters.push(name);
    }
    Ok(Compiled {
        source,
        plan: Plan { ops, output },
        cache,
        filters,
    })
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
        assert_eq!(a.source, "origin:a.jpg");
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
