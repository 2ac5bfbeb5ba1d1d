//! The hub's modules depend on each other one way: no cycle between modules, so each can
//! be read (and changed) knowing only what it uses. The graph comes from the `use
//! crate::...` / `use super::...` paths and inline `crate::...` paths in `src/`, tests
//! excluded; a path counts for the deepest module it names.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

type Graph = BTreeMap<String, BTreeSet<String>>;

/// Every module of `src/` (`a::b` for `src/a/b.rs` or `src/a/b/mod.rs`; "" for lib.rs)
/// and its file.
fn modules(src: &Path) -> BTreeMap<String, PathBuf> {
    let mut found = BTreeMap::new();
    let mut dirs = vec![src.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).expect("read src") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                dirs.push(path);
                continue;
            }
            if path.extension().and_then(|e| e.to_str()) != Some("rs") {
                continue;
            }
            let relative = path
                .strip_prefix(src)
                .expect("under src")
                .with_extension("");
            let mut parts: Vec<String> = relative
                .iter()
                .map(|p| p.to_string_lossy().into_owned())
                .collect();
            if parts.last().is_some_and(|p| p == "mod" || p == "lib") {
                parts.pop();
            }
            found.insert(parts.join("::"), path);
        }
    }
    found
}

/// The source without its `#[cfg(test)]` module (tests may use anything).
fn without_tests(source: &str) -> &str {
    source
        .find("#[cfg(test)]\nmod tests")
        .or_else(|| source.find("#[cfg(test)]\npub(crate) mod tests"))
        .map_or(source, |at| &source[..at])
}

/// `use` trees flattened to paths: `crate::a::{b, c::D}` gives `crate::a::b`,
/// `crate::a::c::D`.
fn flatten(tree: &str) -> Vec<String> {
    let tree = without_renames(tree);
    let Some(open) = tree.find("::{") else {
        return vec![tree];
    };
    let (prefix, inner) = (&tree[..open], &tree[open + 3..tree.len() - 1]);
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0, 0);
    for (i, c) in inner.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&inner[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&inner[start..]);
    parts
        .into_iter()
        .filter(|p| !p.is_empty())
        .flat_map(|p| flatten(&format!("{prefix}::{p}")))
        .collect()
}

/// `tree` without whitespace and without its `as` renames.
fn without_renames(tree: &str) -> String {
    let mut out = String::new();
    let mut tokens = tree.split_whitespace();
    while let Some(token) = tokens.next() {
        if token == "as" {
            let alias = tokens.next().unwrap_or_default();
            out.extend(alias.chars().filter(|c| matches!(c, ',' | '}')));
        } else {
            out.push_str(token);
        }
    }
    out
}

/// The module `path` (absolute, without `crate::`) names: its longest prefix that is a
/// module.
fn resolve<'m>(path: &[&str], modules: &'m BTreeMap<String, PathBuf>) -> Option<&'m str> {
    (1..=path.len())
        .rev()
        .map(|n| path[..n].join("::"))
        .find_map(|candidate| modules.get_key_value(&candidate).map(|(k, _)| k.as_str()))
}

fn graph(src: &Path) -> Graph {
    let modules = modules(src);
    let mut graph = Graph::new();
    for (module, file) in &modules {
        let source = std::fs::read_to_string(file).expect("read module");
        let source = without_tests(&source);
        let here: Vec<&str> = module.split("::").filter(|p| !p.is_empty()).collect();
        let mut paths = Vec::new();
        for statement in source.split(';') {
            let statement = statement.trim_start();
            let tree = statement
                .strip_prefix("use ")
                .or_else(|| statement.strip_prefix("pub(crate) use "))
                .or_else(|| statement.strip_prefix("pub use "));
            if let Some(tree) =
                tree.filter(|t| t.starts_with("crate::") || t.starts_with("super::"))
            {
                paths.extend(flatten(tree));
            }
        }
        for (at, _) in source.match_indices("crate::") {
            let before = source[..at].chars().next_back();
            if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') {
                continue;
            }
            let rest: String = source[at..]
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':')
                .collect();
            paths.push(rest);
        }
        for path in paths {
            let mut parts: Vec<&str> = path.split("::").filter(|p| !p.is_empty()).collect();
            let absolute: Vec<&str> = if parts.first() == Some(&"crate") {
                parts.remove(0);
                parts
            } else {
                let mut base = here.clone();
                while parts.first() == Some(&"super") {
                    parts.remove(0);
                    base.pop();
                }
                base.extend(parts);
                base
            };
            if let Some(target) = resolve(&absolute, &modules) {
                let is_ancestor = module == target || module.starts_with(&format!("{target}::"));
                if !target.is_empty() && !is_ancestor {
                    graph
                        .entry(module.clone())
                        .or_default()
                        .insert(target.to_owned());
                }
            }
        }
    }
    graph
}

/// A cycle through `start`, if there is one (depth-first search).
fn cycle_through(graph: &Graph, start: &str) -> Option<Vec<String>> {
    fn visit(
        graph: &Graph,
        node: &str,
        start: &str,
        path: &mut Vec<String>,
        seen: &mut BTreeSet<String>,
    ) -> bool {
        for next in graph.get(node).into_iter().flatten() {
            if next == start {
                return true;
            }
            if seen.insert(next.clone()) {
                path.push(next.clone());
                if visit(graph, next, start, path, seen) {
                    return true;
                }
                path.pop();
            }
        }
        false
    }
    let mut path = vec![start.to_owned()];
    let mut seen = BTreeSet::new();
    visit(graph, start, start, &mut path, &mut seen).then_some(path)
}

#[test]
fn no_module_cycles_in_the_hub() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let graph = graph(&src);
    assert!(
        graph
            .get("journey::engine")
            .is_some_and(|d| d.contains("journey::store")),
        "the graph is read from the sources: {graph:?}"
    );
    let cycles: Vec<String> = graph
        .keys()
        .filter_map(|module| cycle_through(&graph, module))
        .map(|cycle| format!("{} -> {}", cycle.join(" -> "), cycle[0]))
        .collect();
    assert!(cycles.is_empty(), "module cycles:\n{}", cycles.join("\n"));
}

#[test]
fn the_check_finds_a_cycle() {
    let graph: Graph = [
        ("a", vec!["b"]),
        ("b", vec!["c"]),
        ("c", vec!["a"]),
        ("d", vec!["a"]),
    ]
    .into_iter()
    .map(|(m, deps)| (m.to_owned(), deps.into_iter().map(str::to_owned).collect()))
    .collect();
    assert_eq!(
        cycle_through(&graph, "a"),
        Some(vec!["a".into(), "b".into(), "c".into()])
    );
    assert_eq!(cycle_through(&graph, "d"), None);
    assert_eq!(
        flatten("crate::a::{b, c::{D, e as f}}"),
        ["crate::a::b", "crate::a::c::D", "crate::a::c::e"]
    );
}
