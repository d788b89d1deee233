//! The crate's top-level modules form layers without cycles (issue 30):
//! read from the source text, each module's `crate::<module>` paths are its
//! edges; no module may reach itself again through them. A few edges the
//! design forbids by name are checked too, so a regression names its cause.

use crate::common::repo_path;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Top-level module -> the other top-level modules its code names.
fn edges() -> BTreeMap<String, BTreeSet<String>> {
    let src = repo_path("src");
    let mut modules = BTreeSet::new();
    for entry in std::fs::read_dir(&src).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_stem().unwrap().to_string_lossy().to_string();
        if path.is_dir()
            || (path.extension().is_some_and(|e| e == "rs") && !["lib", "main", "build"].contains(&name.as_str()))
        {
            modules.insert(name);
        }
    }
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut stack = vec![src.clone()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let top = top_module(&src, &path);
            if !modules.contains(&top) {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            for used in named_modules(&text) {
                if used != top && modules.contains(&used) {
                    edges.entry(top.clone()).or_default().insert(used);
                }
            }
        }
    }
    assert!(
        edges.len() > 10,
        "too few modules read from {}: {edges:?}",
        src.display()
    );
    edges
}

fn top_module(src: &Path, file: &Path) -> String {
    let first = file.strip_prefix(src).unwrap().components().next().unwrap();
    let first = first.as_os_str().to_string_lossy();
    first.strip_suffix(".rs").unwrap_or(&first).to_string()
}

/// Every `crate::name` and `crate::{a, b::c}` outside comments.
fn named_modules(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for line in text.lines().filter(|l| !l.trim_start().starts_with("//")) {
        let mut rest = line;
        while let Some(at) = rest.find("crate::") {
            rest = &rest[at + "crate::".len()..];
            if let Some(group) = rest.strip_prefix('{') {
                let end = group.find('}').unwrap_or(group.len());
                for item in group[..end].split(',') {
                    let word: String = item
                        .trim()
                        .chars()
                        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                        .collect();
                    out.insert(word);
                }
            } else {
                out.insert(
                    rest.chars()
                        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                        .collect(),
                );
            }
        }
    }
    out
}

/// A path from `from` back to itself through `edges`, if there is one.
fn cycle_through(edges: &BTreeMap<String, BTreeSet<String>>, from: &str) -> Option<Vec<String>> {
    fn walk(
        edges: &BTreeMap<String, BTreeSet<String>>,
        goal: &str,
        at: &str,
        path: &mut Vec<String>,
        seen: &mut BTreeSet<String>,
    ) -> bool {
        for next in edges.get(at).into_iter().flatten() {
            path.push(next.clone());
            if next == goal || (seen.insert(next.clone()) && walk(edges, goal, next, path, seen)) {
                return true;
            }
            path.pop();
        }
        false
    }
    let mut path = vec![from.to_string()];
    walk(edges, from, from, &mut path, &mut BTreeSet::new()).then_some(path)
}

#[test]
fn no_cycle_binds_top_level_modules() {
    let edges = edges();
    let cycles: Vec<String> = edges
        .keys()
        .filter_map(|m| cycle_through(&edges, m))
        .map(|path| path.join(" -> "))
        .collect();
    assert!(cycles.is_empty(), "import cycles:\n{}", cycles.join("\n"));
}

#[test]
fn the_layers_the_design_names_hold() {
    let edges = edges();
    let uses = |a: &str, b: &str| edges.get(a).is_some_and(|e| e.contains(b));
    for (a, b, why) in [
        (
            "http",
            "compat",
            "the compat route is mounted by app; http never calls into compat",
        ),
        ("config", "compat", "the YAML is read by load, above both"),
        (
            "magick",
            "fast",
            "the runner picks an executor; executors do not call each other",
        ),
        (
            "fast",
            "magick",
            "the runner picks an executor; executors do not call each other",
        ),
        (
            "render",
            "magick",
            "render is the executors' shared vocabulary, below them",
        ),
        ("pipeline", "magick", "pipeline is pure"),
        ("pipeline", "http", "pipeline is pure"),
    ] {
        assert!(!uses(a, b), "{a} uses {b}: {why}");
    }
    // The check sees real edges (it would pass on an empty graph otherwise).
    assert!(
        uses("app", "http") && uses("service", "render") && uses("magick", "render"),
        "{edges:?}"
    );
}

#[test]
fn grouped_and_plain_paths_are_both_read() {
    let text = "use crate::{alpha, beta::x};\n// crate::gamma\nlet y = crate::delta::f();";
    let found = named_modules(text);
    assert_eq!(
        found,
        ["alpha", "beta", "delta"].into_iter().map(String::from).collect(),
        "a comment names nothing"
    );
}
