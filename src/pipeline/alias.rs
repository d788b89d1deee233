//! Alias files (`aliases/NAME.toml`): a named chain in the filter language with
//! typed, bounded parameters and an output format. Loaded and fully validated
//! at start-up; a request only binds parameter values.

use super::format::ImageFormat;
use super::parse::{Arg, Chain, Number, ParseLimits, Step, Unit, parse_chain};
use super::{OutputSpec, Plan};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(Clone, Debug)]
pub struct Alias {
    pub name: String,
    pub description: String,
    pub params: Vec<Param>,
    pub chain: Chain,
    pub output: OutputSpec,
}

#[derive(Clone, Debug, Serialize)]
pub struct Param {
    pub name: String,
    #[serde(flatten)]
    pub kind: ParamKind,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
pub enum ParamKind {
    Int { default: i64, min: i64, max: i64 },
    Number { default: f64, min: f64, max: f64 },
    Enum { default: String, values: Vec<String> },
}

/// The file as written; turned into an `Alias` by `Alias::from_file`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AliasFile {
    #[serde(default)]
    description: String,
    chain: String,
    /// `[[param]]` tables: `name` plus a `ParamKind`.
    #[serde(default, rename = "param")]
    params: Vec<toml::Table>,
    #[serde(default)]
    output: OutputSpec,
}

/// A problem in an alias file, with the line it is on when known.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{}{}: {message}", path.display(), line.map(|l| format!(":{l}")).unwrap_or_default())]
pub struct AliasError {
    pub path: PathBuf,
    pub line: Option<usize>,
    pub message: String,
}

/// A request's parameters that do not fit the alias.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("parameter `{param}`: {message}")]
pub struct ParamError {
    pub param: String,
    pub message: String,
}

impl Alias {
    pub fn from_file(path: &Path) -> Result<Alias, AliasError> {
        let fail = |line: Option<usize>, message: String| AliasError {
            path: path.to_path_buf(),
            line,
            message,
        };
        let name = path
            .file_stem()
            .and_then(|s| s.to_str())
            .filter(|s| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'))
            .ok_or_else(|| {
                fail(
                    None,
                    "alias file names may only use letters, digits, `-` and `_`".into(),
                )
            })?
            .to_string();
        if RESERVED.contains(&name.as_str()) {
            return Err(fail(
                None,
                format!(
                    "an alias may not be named `{name}`: GET /images/{{id}}/{name} answers what the image is; rename the file"
                ),
            ));
        }
        let text = std::fs::read_to_string(path).map_err(|e| fail(None, format!("cannot read: {e}")))?;
        let file: AliasFile = toml::from_str(&text).map_err(|e| {
            let line = e.span().map(|s| line_of(&text, s.start));
            fail(line, e.message().to_string())
        })?;
        let line_of_key = |key: &str| {
            text.lines()
                .position(|l| l.trim_start().starts_with(key))
                .map(|i| i + 1)
        };

        let chain = parse_chain(&file.chain, ParseLimits::default())
            .map_err(|e| fail(line_of_key("chain"), format!("chain: {e}")))?;
        let mut params: Vec<Param> = Vec::new();
        for mut table in file.params {
            let name = match table.remove("name") {
                Some(toml::Value::String(name)) => name,
                _ => {
                    return Err(fail(
                        line_of_key("[[param]]"),
                        "every [[param]] needs a `name` string".into(),
                    ));
                }
            };
            let at = line_of_key(&format!("name = \"{name}\"")).or(line_of_key("[[param]]"));
            let kind: ParamKind = toml::Value::Table(table)
                .try_into()
                .map_err(|e: toml::de::Error| fail(at, format!("parameter `{name}`: {}", e.message())))?;
            if params.iter().any(|q| q.name == name) {
                return Err(fail(at, format!("parameter `{name}` is declared twice")));
            }
            if name == DPR {
                return Err(fail(
                    at,
                    "`dpr` is every alias's own parameter (device pixel ratio): pick another name".into(),
                ));
            }
            check_param(&name, &kind).map_err(|m| fail(at, m))?;
            params.push(Param { name, kind });
        }
        // Every alias takes the device pixel ratio, last (after the
        // positional parameters its chain may name by index).
        params.push(Param {
            name: DPR.to_string(),
            kind: ParamKind::Number {
                default: 1.0,
                min: crate::pipeline::ops::dpr::MIN,
                max: crate::pipeline::ops::dpr::MAX,
            },
        });
        if let Err(m) = file.output.validate() {
            return Err(fail(line_of_key("[output]"), m));
        }
        let alias = Alias {
            name,
            description: file.description,
            params,
            chain,
            output: file.output,
        };
        // Every placeholder must name a parameter, and the chain must be valid
        // with the defaults and with every bound.
        alias
            .check_placeholders(&alias.chain.0)
            .map_err(|m| fail(line_of_key("chain"), m))?;
        for values in alias.probe_values() {
            alias.bind(&values).map_err(|e| {
                let values: Vec<String> = values.iter().map(|(k, v)| format!("{k}={v}")).collect();
                fail(
                    line_of_key("chain"),
                    format!("chain is invalid for {}: {e}", values.join(", ")),
                )
            })?;
        }
        Ok(alias)
    }

    fn check_placeholders(&self, steps: &[Step]) -> Result<(), String> {
        for step in steps {
            for arg in &step.args {
                match arg {
                    Arg::Placeholder(p) if self.param_for(p).is_none() => {
                        return Err(format!("placeholder `{{{p}}}` names no declared parameter"));
                    }
                    Arg::Call(inner) => self.check_placeholders(std::slice::from_ref(inner))?,
                    _ => {}
                }
            }
        }
        Ok(())
    }

    fn param_for(&self, placeholder: &str) -> Option<&Param> {
        match placeholder.parse::<usize>() {
            Ok(i) => self.params.get(i),
            Err(_) => self.params.iter().find(|p| p.name == placeholder),
        }
    }

    /// Parameter sets to validate at load: all defaults, then each parameter at
    /// each of its bounds.
    fn probe_values(&self) -> Vec<BTreeMap<String, Arg>> {
        let defaults: BTreeMap<String, Arg> = self
            .params
            .iter()
            .map(|p| (p.name.clone(), p.kind.default_arg()))
            .collect();
        let mut sets = vec![defaults.clone()];
        for p in &self.params {
            for arg in p.kind.bound_args() {
                let mut set = defaults.clone();
                set.insert(p.name.clone(), arg);
                sets.push(set);
            }
        }
        sets
    }

    /// Binds a request's parameters (`?width=200`) and returns the plan.
    pub fn instantiate<'a>(&self, query: impl IntoIterator<Item = (&'a str, &'a str)>) -> Result<Plan, ParamError> {
        let mut values: BTreeMap<String, Arg> = self
            .params
            .iter()
            .map(|p| (p.name.clone(), p.kind.default_arg()))
            .collect();
        for (key, raw) in query {
            let param = self.params.iter().find(|p| p.name == key).ok_or_else(|| ParamError {
                param: key.to_string(),
                message: if self.params.is_empty() {
                    format!("alias `{}` takes no parameters", self.name)
                } else {
                    format!(
                        "unknown parameter{}; alias `{}` takes {}",
                        super::suggest::did_you_mean(key, self.params.iter().map(|p| p.name.as_str())),
                        self.name,
                        self.params
                            .iter()
                            .map(|p| p.name.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                },
            })?;
            let arg = param.kind.parse_value(raw).map_err(|message| ParamError {
                param: key.to_string(),
                message,
            })?;
            values.insert(key.to_string(), arg);
        }
        self.bind(&values).map_err(|e| ParamError {
            param: self.name.clone(),
            message: e,
        })
    }

    fn bind(&self, values: &BTreeMap<String, Arg>) -> Result<Plan, String> {
        let chain = Chain(self.chain.0.iter().map(|s| self.substitute(s, values)).collect());
        let (mut ops, overlays) = super::chain::compile_alias(&chain.0).map_err(|e| e.to_string())?;
        // `dpr` scales this alias's own sizes, and only those.
        if let Some(Arg::Number(n)) = values.get(DPR)
            && n.value != 1.0
        {
            use crate::pipeline::ops::{Op, dpr::Dpr};
            ops.insert(0, Op::Dpr(Dpr(n.value)));
            ops.push(Op::Dpr(Dpr(1.0)));
        }
        Ok(Plan {
            dialect: Default::default(),
            ops,
            output: self.output.clone(),
            overlays,
        })
    }

    fn substitute(&self, step: &Step, values: &BTreeMap<String, Arg>) -> Step {
        let args = step
            .args
            .iter()
            .map(|arg| match arg {
                Arg::Placeholder(p) => self
                    .param_for(p)
                    .and_then(|param| values.get(&param.name).cloned())
                    .unwrap_or_else(|| arg.clone()),
                Arg::Call(inner) => Arg::Call(self.substitute(inner, values)),
                other => other.clone(),
            })
            .collect();
        Step {
            name: step.name.clone(),
            args,
        }
    }
}

impl ParamKind {
    fn default_arg(&self) -> Arg {
        match self {
            ParamKind::Int { default, .. } => number(*default as f64),
            ParamKind::Number { default, .. } => number(*default),
            ParamKind::Enum { default, .. } => Arg::Word(default.clone()),
        }
    }

    fn bound_args(&self) -> Vec<Arg> {
        match self {
            ParamKind::Int { min, max, .. } => vec![number(*min as f64), number(*max as f64)],
            ParamKind::Number { min, max, .. } => vec![number(*min), number(*max)],
            ParamKind::Enum { values, .. } => values.iter().cloned().map(Arg::Word).collect(),
        }
    }

    fn parse_value(&self, raw: &str) -> Result<Arg, String> {
        match self {
            ParamKind::Int { min, max, .. } => {
                let v: i64 = raw
                    .trim()
                    .parse()
                    .map_err(|_| format!("`{raw}` is not a whole number"))?;
                if v < *min || v > *max {
                    return Err(format!("must be between {min} and {max}, got {v}"));
                }
                Ok(number(v as f64))
            }
            ParamKind::Number { min, max, .. } => {
                let v: f64 = raw.trim().parse().map_err(|_| format!("`{raw}` is not a number"))?;
                if !v.is_finite() || v < *min || v > *max {
                    return Err(format!("must be between {min} and {max}, got {raw}"));
                }
                Ok(number(v))
            }
            ParamKind::Enum { values, .. } => {
                if values.iter().any(|v| v == raw) {
                    Ok(Arg::Word(raw.to_string()))
                } else {
                    Err(format!("must be one of {}, got `{raw}`", values.join(", ")))
                }
            }
        }
    }
}

fn check_param(name: &str, kind: &ParamKind) -> Result<(), String> {
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(format!("parameter name `{name}` may only use letters, digits and `_`"));
    }
    let ok = match kind {
        ParamKind::Int { default, min, max } => min <= default && default <= max,
        ParamKind::Number { default, min, max } => min <= default && default <= max,
        ParamKind::Enum { default, values } => values.contains(default),
    };
    if ok {
        Ok(())
    } else {
        Err(format!(
            "parameter `{name}`: default is outside its bounds or allowed values"
        ))
    }
}

/// The parameter every alias takes: the device pixel ratio.
pub const DPR: &str = "dpr";

/// Names a route already gives a meaning (`/images/{id}/info`).
pub const RESERVED: [&str; 1] = ["info"];

fn number(value: f64) -> Arg {
    Arg::Number(Number { value, unit: Unit::Px })
}

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

/// All aliases of a directory, by name.
#[derive(Clone, Debug, Default)]
pub struct AliasSet {
    pub aliases: BTreeMap<String, Alias>,
}

impl AliasSet {
    /// Loads every `*.toml` of `dir`; the first broken file is an error.
    pub fn load_dir(dir: &Path) -> Result<AliasSet, AliasError> {
        let entries = std::fs::read_dir(dir).map_err(|e| AliasError {
            path: dir.to_path_buf(),
            line: None,
            message: format!("cannot read the aliases directory: {e}"),
        })?;
        let mut paths: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "toml"))
            .collect();
        paths.sort();
        let mut set = AliasSet::default();
        for path in paths {
            let alias = Alias::from_file(&path)?;
            set.aliases.insert(alias.name.clone(), alias);
        }
        Ok(set)
    }

    pub fn get(&self, name: &str) -> Option<&Alias> {
        self.aliases.get(name)
    }
}

impl OutputSpec {
    fn validate(&self) -> Result<(), String> {
        if !(1..=100).contains(&self.quality) {
            return Err(format!(
                "output.quality must be between 1 and 100, got {}",
                self.quality
            ));
        }
        if !matches!(self.depth, 8 | 16) {
            return Err(format!("output.depth must be 8 or 16, got {}", self.depth));
        }
        Ok(())
    }

    /// Bits per channel to write in `format`: 16 only where asked for and
    /// the format has it.
    pub fn depth_for(&self, format: ImageFormat) -> u8 {
        match format {
            ImageFormat::Png | ImageFormat::Tiff => self.depth,
            _ => 8,
        }
    }

    /// The format to write for an input of `input` format.
    pub fn format_for(&self, input: ImageFormat) -> ImageFormat {
        if self.keep.contains(&input) { input } else { self.format }
    }
}

#[cfg(test)]
mod tests;
