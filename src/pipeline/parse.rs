//! The filter-chain language shared by URLs and alias files, as in the
//! original imaginator: `name(arg,...)` steps joined by `:`, where an argument
//! is a number with an optional unit (`px`, `w`, `h`), a word, a quoted
//! string, a `{placeholder}` (alias files only) or a nested step.
//! Limits on length, steps and nesting are checked while parsing.

use std::fmt;

#[derive(Clone, Debug, PartialEq)]
pub struct Chain(pub Vec<Step>);

#[derive(Clone, Debug, PartialEq)]
pub struct Step {
    pub name: String,
    pub args: Vec<Arg>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Arg {
    Number(Number),
    Word(String),
    Placeholder(String),
    Call(Step),
}

/// A length or plain number. `w` and `h` are fractions of the current image's
/// width and height; `px` (or no unit) is absolute; `hcm`/`vcm` and `hin`/`vin`
/// are centimetres and inches at the image's horizontal/vertical resolution.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Number {
    pub value: f64,
    pub unit: Unit,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unit {
    Px,
    W,
    H,
    Hcm,
    Vcm,
    Hin,
    Vin,
}

impl Unit {
    /// Every unit with its suffix; longer suffixes first so `hcm` is not read as `h`.
    pub const SUFFIXES: [(&'static str, Unit); 7] = [
        ("hcm", Unit::Hcm),
        ("vcm", Unit::Vcm),
        ("hin", Unit::Hin),
        ("vin", Unit::Vin),
        ("px", Unit::Px),
        ("w", Unit::W),
        ("h", Unit::H),
    ];

    pub fn suffix(self) -> &'static str {
        match self {
            Unit::Px => "",
            other => Unit::SUFFIXES
                .iter()
                .find(|(_, u)| *u == other)
                .map(|(s, _)| *s)
                .unwrap_or(""),
        }
    }

    /// A physical length, converted through the image's resolution.
    pub fn is_physical(self) -> bool {
        matches!(self, Unit::Hcm | Unit::Vcm | Unit::Hin | Unit::Vin)
    }
}

#[derive(Clone, Copy, Debug)]
pub struct ParseLimits {
    pub max_len: usize,
    pub max_steps: usize,
    pub max_depth: usize,
}

impl Default for ParseLimits {
    fn default() -> Self {
        ParseLimits {
            max_len: 2048,
            max_steps: 32,
            max_depth: 4,
        }
    }
}

#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("at character {position}: {message}")]
pub struct ParseError {
    pub position: usize,
    pub message: String,
}

pub fn parse_chain(text: &str, limits: ParseLimits) -> Result<Chain, ParseError> {
    if text.len() > limits.max_len {
        return Err(ParseError {
            position: limits.max_len,
            message: format!("chain is longer than {} characters", limits.max_len),
        });
    }
    let mut p = Parser {
        text,
        pos: 0,
        limits,
        steps: 0,
    };
    let chain = p.chain(0)?;
    p.skip_ws();
    if p.pos != text.len() {
        return Err(p.error(format!("unexpected `{}`", p.rest_char())));
    }
    Ok(chain)
}

struct Parser<'a> {
    text: &'a str,
    pos: usize,
    limits: ParseLimits,
    steps: usize,
}

impl Parser<'_> {
    fn error(&self, message: impl Into<String>) -> ParseError {
        ParseError {
            position: self.pos,
            message: message.into(),
        }
    }

    fn peek(&self) -> Option<char> {
        self.text[self.pos..].chars().next()
    }

    fn rest_char(&self) -> char {
        self.peek().unwrap_or(' ')
    }

    fn skip_ws(&mut self) {
        while let Some(c) = self.peek().filter(|c| c.is_whitespace()) {
            // Unicode whitespace can be several bytes long (U+00A0: found by fuzz/run).
            self.pos += c.len_utf8();
        }
    }

    fn eat(&mut self, c: char) -> bool {
        self.skip_ws();
        if self.peek() == Some(c) {
            self.pos += c.len_utf8();
            true
        } else {
            false
        }
    }

    fn chain(&mut self, depth: usize) -> Result<Chain, ParseError> {
        let mut steps = vec![self.step(depth)?];
        while self.eat(':') {
            steps.push(self.step(depth)?);
        }
        Ok(Chain(steps))
    }

    fn name(&mut self) -> Result<String, ParseError> {
        self.skip_ws();
        let start = self.pos;
        while matches!(self.peek(), Some(c) if c.is_ascii_alphanumeric() || c == '-' || c == '_') {
            self.pos += 1;
        }
        let name = &self.text[start..self.pos];
        if name.is_empty() || !name.starts_with(|c: char| c.is_ascii_alphabetic()) {
            self.pos = start;
            return Err(self.error("expected a filter name"));
        }
        Ok(name.to_ascii_lowercase())
    }

    fn step(&mut self, depth: usize) -> Result<Step, ParseError> {
        if depth >= self.limits.max_depth {
            return Err(self.error(format!("nesting deeper than {} levels", self.limits.max_depth)));
        }
        self.steps += 1;
        if self.steps > self.limits.max_steps {
            return Err(self.error(format!("more than {} steps", self.limits.max_steps)));
        }
        let name = self.name()?;
        if !self.eat('(') {
            return Err(self.error(format!("expected `(` after `{name}`")));
        }
        let mut args = Vec::new();
        if !self.eat(')') {
            loop {
                args.push(self.arg(depth)?);
                if self.eat(')') {
                    break;
                }
                if !self.eat(',') {
                    return Err(self.error(format!("expected `,` or `)` in `{name}(...)`")));
                }
            }
        }
        Ok(Step { name, args })
    }

    fn arg(&mut self, depth: usize) -> Result<Arg, ParseError> {
        self.skip_ws();
        match self.peek() {
            Some('{') => {
                self.pos += 1;
                let start = self.pos;
                while matches!(self.peek(), Some(c) if c.is_ascii_alphanumeric() || c == '_') {
                    self.pos += 1;
                }
                let name = self.text[start..self.pos].to_string();
                if name.is_empty() || !self.eat('}') {
                    return Err(self.error("expected `{name}` or `{0}`"));
                }
                Ok(Arg::Placeholder(name))
            }
            Some(q @ ('\'' | '"')) => {
                self.pos += 1;
                let start = self.pos;
                let len = self.text[start..]
                    .find(q)
                    .ok_or_else(|| self.error("unterminated string"))?;
                self.pos = start + len + 1;
                Ok(Arg::Word(self.text[start..start + len].to_string()))
            }
            _ => {
                let start = self.pos;
                while matches!(self.peek(), Some(c) if !matches!(c, ',' | '(' | ')' | '\'' | '"' | '{' | '}')) {
                    self.pos += self.rest_char().len_utf8();
                }
                let word = self.text[start..self.pos].trim_end();
                if self.peek() == Some('(') {
                    self.pos = start;
                    return Ok(Arg::Call(self.chain_as_step(depth + 1)?));
                }
                if word.is_empty() {
                    return Err(self.error("expected an argument"));
                }
                Ok(number(word).map_or_else(|| Arg::Word(word.to_string()), Arg::Number))
            }
        }
    }

    /// A nested image argument: one step (its own `:` chain is not allowed
    /// inside an argument, as in the original).
    fn chain_as_step(&mut self, depth: usize) -> Result<Step, ParseError> {
        self.step(depth)
    }
}

fn number(word: &str) -> Option<Number> {
    let (digits, unit) = Unit::SUFFIXES
        .iter()
        .find_map(|(suffix, unit)| word.strip_suffix(suffix).map(|d| (d, *unit)))
        .unwrap_or((word, Unit::Px));
    let valid = !digits.is_empty()
        && digits
            .trim_start_matches(['-', '+'])
            .chars()
            .all(|c| c.is_ascii_digit() || c == '.')
        && digits.chars().any(|c| c.is_ascii_digit());
    let value: f64 = if valid { digits.parse().ok()? } else { return None };
    value.is_finite().then_some(Number { value, unit })
}

impl fmt::Display for Chain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, step) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(":")?;
            }
            write!(f, "{step}")?;
        }
        Ok(())
    }
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}(", self.name)?;
        for (i, arg) in self.args.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{arg}")?;
        }
        f.write_str(")")
    }
}

impl fmt::Display for Arg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Arg::Number(n) => write!(f, "{n}"),
            Arg::Placeholder(name) => write!(f, "{{{name}}}"),
            Arg::Call(step) => write!(f, "{step}"),
            Arg::Word(w) => {
                let plain = !w.is_empty()
                    && number(w).is_none()
                    && w.trim() == w
                    && !w.contains([',', '(', ')', '\'', '"', '{', '}']);
                if plain {
                    f.write_str(w)
                } else if w.contains('\'') {
                    write!(f, "\"{w}\"")
                } else {
                    write!(f, "'{w}'")
                }
            }
        }
    }
}

impl fmt::Display for Number {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.value, self.unit.suffix())
    }
}

#[cfg(test)]
mod tests;
