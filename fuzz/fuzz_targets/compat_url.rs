//! The compat profile's front end on arbitrary text, as `GET /{text}` reads
//! it: imaginator 2018's grammar, its alias expansion and the lowering to a
//! native plan. None may panic; the grammar's limits hold; what parses
//! prints as text that parses back to the same tree (a `cache(name)` key is
//! that text); and a plan that lowers gives every step a size of at least
//! 1x1 for small, ordinary and extreme inputs and resolutions.
#![no_main]

use imaginator::compat::expand::expand;
use imaginator::compat::grammar::{self, Node, Unit, Value};
use imaginator::compat::lower::{LEAF, lower};
use imaginator::pipeline::ops::original::MaxSize;
use imaginator::pipeline::ops::{Dpi, Op, Size};
use libfuzzer_sys::fuzz_target;
use std::collections::BTreeMap;
use std::sync::OnceLock;

/// Aliases in the original's forms: a whole argument, a chained `{0}`, a
/// body that downloads, one that calls another.
fn aliases() -> &'static BTreeMap<String, Node> {
    static ALIASES: OnceLock<BTreeMap<String, Node>> = OnceLock::new();
    ALIASES.get_or_init(|| {
        [
            ("thumb", "resize(download({0}),{1},0)"),
            ("square", "fit-in({0},{1},{1}):format(png)"),
            ("logo", "compose({0},download(o:logo.png),over,{1},{2})"),
            ("twice", "square(square({0},{1}),{1})"),
        ]
        .into_iter()
        .map(|(name, body)| (name.to_string(), grammar::parse(body).expect("a valid body")))
        .collect()
    })
}

/// What the front end does before lowering, without the network: each
/// `download(...)` and `cache(...)` becomes the next source.
fn with_sources(node: &Node, count: &mut i64) -> Node {
    if node.name == "download" || node.name == "cache" {
        *count += 1;
        return Node {
            name: LEAF.to_string(),
            args: vec![Value::Int(*count - 1, Unit::None)],
        };
    }
    Node {
        name: node.name.clone(),
        args: node
            .args
            .iter()
            .map(|a| match a {
                Value::Image(inner) => Value::Image(with_sources(inner, count)),
                other => other.clone(),
            })
            .collect(),
    }
}

/// A name that can be printed nested: a word that does not start as a
/// number does (`4x(...)` as an argument reads as the length `4`, then
/// fails, in the original's grammar too).
fn names_are_words(node: &Node) -> bool {
    node.name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && node.name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        && node.args.iter().all(|a| match a {
            Value::Image(inner) => names_are_words(inner),
            _ => true,
        })
}

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

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(tree) = grammar::parse(text) else { return };
    assert!(count(&tree) <= 64, "{text:?}: more nodes than the grammar allows");
    // The printed text is a named cache's key: for a tree that can run
    // (every name a filter's or an alias's, which are words), it reads back
    // as the same tree. The original took any text before `(` as a name;
    // such trees are refused before anything runs (no such filter).
    if names_are_words(&tree) {
        let printed = tree.to_string();
        let again =
            grammar::parse(&printed).unwrap_or_else(|e| panic!("{printed:?} (from {text:?}) does not parse: {e:?}"));
        assert_eq!(again, tree, "round trip of {text:?} via {printed:?}");
    }
    for builtin in [true, false] {
        let Ok(expanded) = expand(tree.clone(), aliases(), builtin) else { continue };
        let mut sources = 0;
        let resolved = with_sources(&expanded, &mut sources);
        for max in [
            MaxSize::default(),
            MaxSize {
                width: Some(1),
                height: Some(2000),
            },
        ] {
            let Ok((_, plan)) = lower(&resolved, max) else { continue };
            let _ = plan.canonical();
            for input in [Size::new(1, 1), Size::new(800, 500), Size::new(16_384, 3)] {
                for dpi in [Dpi::DEFAULT, Dpi { x: 10_000.0, y: 1.0 }, Dpi { x: 0.0, y: 0.0 }] {
                    let mut size = input;
                    for op in &plan.ops {
                        size = match op {
                            Op::Original(o) => o.output_size(size, (dpi.x, dpi.y)),
                            other => other.in_pixels(dpi).output_size(size),
                        };
                        assert!(size.width >= 1 && size.height >= 1, "{op}: {size:?}");
                    }
                }
            }
        }
    }
});
