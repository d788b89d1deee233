//! The original imaginator's URL grammar, read the way its parser read it:
//! `a(x):b(y)` is `b(a(x),y)`; an argument is a number with a unit, a
//! whole chain (`compose(x, download(b):resize(5,5), over, 0, 0)`), or
//! text that may hold balanced parentheses (`download(origin:a(1).jpg)`).
//! Names are case-sensitive and taken up to `(`; there is no whitespace
//! skipping; a trailing `/name.ext` is ignored. A number is tried first, so
//! `download(2666/a.jpg)` fails as it did.

use std::fmt;

/// A unit after a number; `None` is a bare number.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unit {
    None,
    Px,
    W,
    H,
    Hcm,
    Vcm,
    Hin,
    Vin,
}

impl Unit {
    /// Tried in the original's order (`hcm` before `h`).
    const SUFFIXES: [(&'static str, Unit); 7] = [
        ("px", Unit::Px),
        ("hcm", Unit::Hcm),
        ("vcm", Unit::Vcm),
        ("hin", Unit::Hin),
        ("vin", Unit::Vin),
        ("w", Unit::W),
        ("h", Unit::H),
    ];

    fn suffix(self) -> &'static str {
        Unit::SUFFIXES.iter().find(|(_, u)| *u == self).map_or("", |(s, _)| s)
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Int(i64, Unit),
    Float(f64, Unit),
    Text(String),
    Image(Node),
}

/// One filter call; chained filters are nested into the first argument.
#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    pub name: String,
    pub args: Vec<Value>,
}

#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("URL parse error at character {position}: {message}")]
pub struct ParseError {
    pub position: usize,
    pub message: String,
}

/// Bounds a hostile URL cannot exceed (the original had none).
const MAX_DEPTH: usize = 16;
const MAX_NODES: usize = 64;

/// Parses a whole (percent-decoded) URL path after the signature.
pub fn parse(input: &str) -> Result<Node, ParseError> {
    let mut p = Parser {
        text: input,
        pos: 0,
        nodes: 0,
    };
    let node = p.chain(0)?;
    if p.pos != input.len() {
        return Err(p.error(format!("unparsed data `{}`", &input[p.pos..])));
    }
    Ok(node)
}

struct Parser<'a> {
    text: &'a str,
    pos: usize,
    nodes: usize,
}

impl Parser<'_> {
    fn rest(&self) -> &str {
        &self.text[self.pos..]
    }

    fn error(&self, message: impl Into<String>) -> ParseError {
        ParseError {
            position: self.pos,
            message: message.into(),
        }
    }

    /// `one(...)` then `:one(...)` repeated, each nesting what came before,
    /// then an optional `/name` (anything but `/`).
    fn chain(&mut self, depth: usize) -> Result<Node, ParseError> {
        if depth > MAX_DEPTH {
            return Err(self.error(format!("nesting deeper than {MAX_DEPTH} levels")));
        }
        let mut current = self.call(depth)?;
        while self.rest().starts_with(':') {
            let save = self.pos;
            self.pos += 1;
            match self.call(depth) {
                Ok(mut next) => {
                    next.args.insert(0, Value::Image(current));
                    current = next;
                }
                Err(_) => {
                    self.pos = save;
                    break;
                }
            }
        }
        if let Some(after) = self.rest().strip_prefix('/') {
            let len = after.find('/').unwrap_or(after.len());
            if len > 0 {
                self.pos += 1 + len;
            }
        }
        Ok(current)
    }

    fn call(&mut self, depth: usize) -> Result<Node, ParseError> {
        self.nodes += 1;
        if self.nodes > MAX_NODES {
            return Err(self.error(format!("more than {MAX_NODES} filters")));
        }
        let Some(open) = self.rest().find('(') else {
            return Err(self.error("expected `name(`"));
        };
        let name = self.rest()[..open].to_string();
        self.pos += open + 1;
        let mut args = Vec::new();
        // A list that stops at the first argument that does not parse.
        if let Some(first) = self.arg(depth)? {
            args.push(first);
            while self.rest().starts_with(',') {
                let save = self.pos;
                self.pos += 1;
                match self.arg(depth)? {
                    Some(arg) => args.push(arg),
                    None => {
                        self.pos = save;
                        break;
                    }
                }
            }
        }
        if !self.rest().starts_with(')') {
            return Err(self.error(format!("expected `,` or `)` in `{name}(...)`")));
        }
        self.pos += 1;
        Ok(Node { name, args })
    }

    /// A float with a unit, an integer with a unit, a chain or text; `None`
    /// where no argument starts (as before `)`).
    fn arg(&mut self, depth: usize) -> Result<Option<Value>, ParseError> {
        if let Some((len, value)) = float(self.rest()) {
            self.pos += len;
            let unit = self.unit();
            return Ok(Some(Value::Float(value, unit)));
        }
        if let Some((len, value)) = int(self.rest()) {
            self.pos += len;
            let unit = self.unit();
            return Ok(Some(Value::Int(value, unit)));
        }
        let rest = self.rest();
        if rest
            .find([':', ',', '(', ')'])
            .is_some_and(|i| rest.as_bytes()[i] == b'(')
        {
            return self.chain(depth + 1).map(|node| Some(Value::Image(node)));
        }
        Ok(self.text_arg().map(Value::Text))
    }

    fn unit(&mut self) -> Unit {
        for (suffix, unit) in Unit::SUFFIXES {
            if self.rest().starts_with(suffix) {
                self.pos += suffix.len();
                return unit;
            }
        }
        Unit::None
    }

    /// Text up to a `,` or `)` outside parentheses; `None` at a `)` that
    /// closes the call with nothing before it, or when the text never ends.
    fn text_arg(&mut self) -> Option<String> {
        let text = self.text;
        let rest = &text[self.pos..];
        let mut depth = 0usize;
        for (i, c) in rest.char_indices() {
            match c {
                ',' if depth == 0 => {
                    self.pos += i;
                    return Some(rest[..i].to_string());
                }
                '(' => depth += 1,
                ')' if depth > 0 => depth -= 1,
                ')' if i == 0 => return None,
                ')' => {
                    self.pos += i;
                    return Some(rest[..i].to_string());
                }
                _ => {}
            }
        }
        None
    }
}

/// `[+-]digits.digits?` or `[+-]digits?.digits`: (length, value).
fn float(s: &str) -> Option<(usize, f64)> {
    let b = s.as_bytes();
    let mut i = usize::from(matches!(b.first(), Some(b'+' | b'-')));
    let int_start = i;
    while b.get(i).is_some_and(u8::is_ascii_digit) {
        i += 1;
    }
    let int_digits = i - int_start;
    if b.get(i) != Some(&b'.') {
        return None;
    }
    i += 1;
    let frac_start = i;
    while b.get(i).is_some_and(u8::is_ascii_digit) {
        i += 1;
    }
    if int_digits == 0 && i == frac_start {
        return None;
    }
    let value: f64 = s[..i].parse().ok()?;
    value.is_finite().then_some((i, value))
}

/// `-?digits`: (length, value).
fn int(s: &str) -> Option<(usize, i64)> {
    let b = s.as_bytes();
    let start = usize::from(b.first() == Some(&b'-'));
    let mut i = start;
    while b.get(i).is_some_and(u8::is_ascii_digit) {
        i += 1;
    }
    if i == start {
        return None;
    }
    Some((i, s[..i].parse().ok()?))
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Int(v, u) => write!(f, "{v}{}", u.suffix()),
            // Positional, never an exponent (which the grammar cannot
            // read back): the text is a `cache(name)` key.
            Value::Float(v, u) if v.fract() == 0.0 => write!(f, "{v}.0{}", u.suffix()),
            Value::Float(v, u) => write!(f, "{v}{}", u.suffix()),
            Value::Text(t) => f.write_str(t),
            Value::Image(node) => write!(f, "{node}"),
        }
    }
}

/// The chain form (`a(...):b(...)`, the image a filter takes first written
/// before it), as URLs are written: it reads back as the same tree within
/// the grammar's nesting limit however long the chain.
impl fmt::Display for Node {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let args = match self.args.first() {
            Some(Value::Image(first)) => {
                write!(f, "{first}:")?;
                &self.args[1..]
            }
            _ => &self.args[..],
        };
        write!(f, "{}(", self.name)?;
        for (i, arg) in args.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{arg}")?;
        }
        f.write_str(")")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(name: &str, args: Vec<Value>) -> Node {
        Node {
            name: name.into(),
            args,
        }
    }

    fn text(s: &str) -> Value {
        Value::Text(s.into())
    }

    #[test]
    fn chains_nest_into_the_first_argument() {
        let a = parse("download(origin:a.jpg):resize(0.5w,100):format(png)/a.png").unwrap();
        let b = parse("format(resize(download(origin:a.jpg),0.5w,100),png)").unwrap();
        assert_eq!(a, b);
        assert_eq!(
            a,
            call(
                "format",
                vec![
                    Value::Image(call(
                        "resize",
                        vec![
                            Value::Image(call("download", vec![text("origin:a.jpg")])),
                            Value::Float(0.5, Unit::W),
                            Value::Int(100, Unit::None),
                        ]
                    )),
                    text("png"),
                ]
            )
        );
    }

    /// Found by the compat_url fuzz target: a chain longer than the nesting
    /// limit printed nested did not read back. Printed as a chain, it does.
    #[test]
    fn a_long_chain_prints_as_a_chain_and_reads_back() {
        let url = format!("download(o:a.jpg){}", ":flip()".repeat(40));
        let tree = parse(&url).unwrap();
        assert_eq!(tree.to_string(), url);
        assert_eq!(parse(&tree.to_string()).unwrap(), tree);
        let nested = parse("compose(download(a:x.jpg),download(a:y.png):resize(50.0,50),over,-5,0)").unwrap();
        assert_eq!(
            nested.to_string(),
            "download(a:x.jpg):compose(download(a:y.png):resize(50.0,50),over,-5,0)"
        );
        assert_eq!(parse(&nested.to_string()).unwrap(), nested);
    }

    #[test]
    fn a_whole_chain_is_an_argument() {
        let n = parse("compose(download(a:x.jpg),download(a:y.png):resize(50,50),over,-5,0)").unwrap();
        assert_eq!(n.args.len(), 5);
        let Value::Image(src) = &n.args[1] else { panic!("{n:?}") };
        assert_eq!(src.to_string(), "download(a:y.png):resize(50,50)");
        assert_eq!(n.args[3], Value::Int(-5, Unit::None));
    }

    #[test]
    fn text_keeps_balanced_parentheses_and_colons() {
        let n = parse("download(origin:a(1).jpg)").unwrap();
        assert_eq!(n.args, vec![text("origin:a(1).jpg")]);
        let n = parse("download(http://h:8080/a.jpg?x=1)").unwrap();
        assert_eq!(n.args, vec![text("http://h:8080/a.jpg?x=1")]);
        assert_eq!(parse("download()").unwrap().args, vec![]);
        // Text whose first special character is `(` is a call (the original's rule).
        assert!(matches!(&parse("bg(download(o:a),rgb(1,2,3))").unwrap().args[1], Value::Image(n) if n.name == "rgb"));
    }

    #[test]
    fn numbers_units_and_what_the_original_refused() {
        let n = parse("f(1,-2,3px,0.25h,2hcm,1.5vin,+.5)").unwrap();
        assert_eq!(
            n.args,
            vec![
                Value::Int(1, Unit::None),
                Value::Int(-2, Unit::None),
                Value::Int(3, Unit::Px),
                Value::Float(0.25, Unit::H),
                Value::Int(2, Unit::Hcm),
                Value::Float(1.5, Unit::Vin),
                Value::Float(0.5, Unit::None),
            ]
        );
        for bad in [
            "download(2666/a.jpg)",
            "resize(download(a:b),10x,5)",
            "download(a:b",
            "download(a:b) ",
            "download(a:b)/x/y",
            "nothing",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
        assert_eq!(parse("Resize(x:y)").unwrap().name, "Resize", "case is kept");
        let deep = "f(".repeat(40) + "a:b" + &")".repeat(40);
        assert!(parse(&deep).is_err());
    }
}
