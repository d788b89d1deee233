//! Aliases the original's way. A call whose name is an alias is replaced by
//! the alias's body, in which an argument holding `{N}` becomes the call's
//! argument N, whole (`{0}` is the image when the alias is chained:
//! `download(x):thumb(200)` is `thumb(download(x),200)`). Arguments are
//! expanded before the call. With built-in filters off, clients may write
//! aliases only; the one exception is the image an alias is given, which may
//! be a `download(...)` (as in `/thumb(download(origin:a.jpg),200)`). Alias
//! bodies may use any filter.

use super::grammar::{Node, Value};
use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ExpandError {
    #[error("no such filter: {0}")]
    NoSuchFilter(String),
    #[error("the expanded URL has more than {0} filters")]
    TooLarge(usize),
    #[error("not enough arguments passed to {alias}: expected at least {expected}, but {given} were passed")]
    NotEnoughArguments {
        alias: String,
        expected: usize,
        given: usize,
    },
}

/// A `{N}` anywhere in a text argument (the original's `\{(\d+)\}`).
fn placeholder(text: &str) -> Option<usize> {
    let mut rest = text;
    while let Some(open) = rest.find('{') {
        let after = &rest[open + 1..];
        let digits = after.bytes().take_while(u8::is_ascii_digit).count();
        if digits > 0 && after.as_bytes().get(digits) == Some(&b'}') {
            return after[..digits].parse().ok();
        }
        rest = after;
    }
    None
}

fn substitute(mut body: Node, args: &[Value], alias: &str) -> Result<Node, ExpandError> {
    let mut out = Vec::with_capacity(body.args.len());
    for arg in body.args {
        out.push(match arg {
            Value::Image(inner) => Value::Image(substitute(inner, args, alias)?),
            Value::Text(text) => match placeholder(&text) {
                Some(n) => args.get(n).cloned().ok_or_else(|| ExpandError::NotEnoughArguments {
                    alias: alias.to_string(),
                    expected: n + 1,
                    given: args.len(),
                })?,
                None => Value::Text(text),
            },
            other => other,
        });
    }
    body.args = out;
    Ok(body)
}

/// Expands every alias call in `node`. `builtin`: whether clients may use
/// built-in filters.
pub fn expand(node: Node, aliases: &BTreeMap<String, Node>, builtin: bool) -> Result<Node, ExpandError> {
    let node = walk(node, aliases, builtin, false)?;
    // An alias may use its image twice: nested, that doubles at every level.
    if count(&node) > MAX_EXPANDED {
        return Err(ExpandError::TooLarge(MAX_EXPANDED));
    }
    Ok(node)
}

/// Most filters an expanded URL may have.
pub const MAX_EXPANDED: usize = 256;

fn count(node: &Node) -> usize {
    1 + node
        .args
        .iter()
        .map(|a| match a {
            Value::Image(inner) => count(inner),
            _ => 0,
        })
        .sum::<usize>()
}

fn walk(node: Node, aliases: &BTreeMap<String, Node>, builtin: bool, alias_input: bool) -> Result<Node, ExpandError> {
    let is_alias = aliases.contains_key(&node.name);
    let mut args = Vec::with_capacity(node.args.len());
    for (i, arg) in node.args.into_iter().enumerate() {
        args.push(match arg {
            Value::Image(inner) => Value::Image(walk(inner, aliases, builtin, is_alias && i == 0)?),
            other => other,
        });
    }
    match aliases.get(&node.name) {
        // Checked at every level, so a copy never grows past the bound.
        Some(body) => {
            let expanded = substitute(body.clone(), &args, &node.name)?;
            if count(&expanded) > MAX_EXPANDED {
                return Err(ExpandError::TooLarge(MAX_EXPANDED));
            }
            Ok(expanded)
        }
        None if builtin || (alias_input && node.name == "download") => Ok(Node { name: node.name, args }),
        None => Err(ExpandError::NoSuchFilter(node.name)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compat::grammar::parse;

    fn aliases() -> BTreeMap<String, Node> {
        [
            ("thumb", "resize(download({0}),{1},0)"),
            ("small", "resize({0},{1},{1})"),
            ("logo", "compose({0},download(origin:logo.png),over,{1},{2})"),
            ("png", "format({0},png)"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), parse(v).unwrap()))
        .collect()
    }

    fn run(url: &str, builtin: bool) -> Result<Node, ExpandError> {
        expand(parse(url).unwrap(), &aliases(), builtin)
    }

    /// The tree `text` is (compared as trees, not as printed text).
    fn tree(text: &str) -> Node {
        parse(text).unwrap()
    }

    #[test]
    fn placeholders_replace_whole_arguments() {
        assert_eq!(
            run("thumb(origin:a.jpg,200)", false).unwrap(),
            tree("resize(download(origin:a.jpg),200,0)")
        );
        assert_eq!(
            run("download(origin:a.jpg):small(64)", false).unwrap(),
            tree("resize(download(origin:a.jpg),64,64)"),
            "a chained alias receives the image as {{0}}"
        );
        assert_eq!(
            run("download(o:a.jpg):small(64):logo(5,6):png()", false).unwrap(),
            tree("format(compose(resize(download(o:a.jpg),64,64),download(origin:logo.png),over,5,6),png)")
        );
        assert_eq!(
            run("thumb(download(origin:a.jpg),200)", false).unwrap(),
            tree("resize(download(download(origin:a.jpg)),200,0)"),
            "an image argument goes in whole"
        );
        assert_eq!(placeholder("origin:{12}.jpg"), Some(12));
        assert_eq!(placeholder("{x}{3}"), Some(3));
        assert_eq!(placeholder("{}"), None);
    }

    #[test]
    fn an_alias_that_doubles_its_image_cannot_blow_up() {
        let mut aliases = aliases();
        aliases.insert(
            "dup".into(),
            parse("compose(compose({0},{0},over,0,0),{0},over,0,0)").unwrap(),
        );
        let url = "dup(".repeat(15) + "download(o:a)" + &")".repeat(15);
        assert_eq!(
            expand(parse(&url).unwrap(), &aliases, false).unwrap_err(),
            ExpandError::TooLarge(MAX_EXPANDED)
        );
        assert!(expand(parse("dup(dup(download(o:a)))").unwrap(), &aliases, false).is_ok());
    }

    #[test]
    fn builtins_off_allows_aliases_and_their_downloads_only() {
        assert_eq!(
            run("download(o:a.jpg)", false).unwrap_err(),
            ExpandError::NoSuchFilter("download".into())
        );
        assert_eq!(
            run("download(o:a.jpg):resize(1,1)", false).unwrap_err(),
            ExpandError::NoSuchFilter("download".into())
        );
        assert_eq!(
            run("thumb(o:a.jpg,1):resize(1,1)", false).unwrap_err(),
            ExpandError::NoSuchFilter("resize".into())
        );
        assert_eq!(
            run("small(resize(download(o:a),5,5),1)", false).unwrap_err(),
            ExpandError::NoSuchFilter("download".into()),
            "the innermost call is checked first, as the original did"
        );
        assert!(run("download(o:a.jpg):resize(1,1)", true).is_ok());
        assert!(matches!(
            run("small(download(o:a))", false).unwrap_err(),
            ExpandError::NotEnoughArguments {
                expected: 2,
                given: 1,
                ..
            }
        ));
    }
}
