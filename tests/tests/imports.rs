//! No import circle anywhere in the workspace: a module that names another (through `use`, or a
//! `crate::`/`super::` path in its code) is never named back by it, directly or around a longer
//! loop. A module and its own submodules are one unit here (a parent declares and re-exports its
//! children; a child may use its parent's items), so only links between separate modules count.
//! Test modules (`#[cfg(test)]` onwards) are left out: they build what they test with.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// A crate's source directory and the file that is its root.
struct Crate {
    src: PathBuf,
}

fn crates() -> Vec<Crate> {
    let root = tests::repo_root();
    let mut out = vec![Crate { src: root.join("shared/src") }, Crate { src: root.join("local/src") }];
    for entry in std::fs::read_dir(root.join("functions")).unwrap() {
        let dir = entry.unwrap().path().join("src");
        if dir.is_dir() {
            out.push(Crate { src: dir });
        }
    }
    out
}

/// The module path of a file (`["service", "deliver"]`; the crate root is `[]`).
fn module_of(src: &Path, file: &Path) -> Vec<String> {
    let rel = file.strip_prefix(src).unwrap();
    let mut parts: Vec<String> = rel.iter().map(|p| p.to_string_lossy().into_owned()).collect();
    let last = parts.pop().unwrap();
    match last.as_str() {
        "lib.rs" | "main.rs" | "mod.rs" => {}
        other => parts.push(other.trim_end_matches(".rs").to_string()),
    }
    parts
}

/// The code of a file: no comments, nothing from its test module on.
fn code_of(path: &Path) -> String {
    tests::without_comments(&tests::code_before_tests(path))
}

/// Expands a use tree (`a::{b, c::{d, e}}`) into its paths.
fn expand(tree: &str) -> Vec<String> {
    let tree = tree.trim();
    let Some(open) = tree.find('{') else { return vec![tree.to_string()] };
    let prefix = tree[..open].trim_end_matches("::").trim();
    let inner = &tree[open + 1..tree.rfind('}').unwrap_or(tree.len())];
    let mut items = Vec::new();
    let (mut depth, mut start) = (0, 0);
    for (i, c) in inner.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                items.push(&inner[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    items.push(&inner[start..]);
    items
        .into_iter()
        .filter(|i| !i.trim().is_empty())
        .flat_map(expand)
        .map(|p| if prefix.is_empty() { p } else { format!("{prefix}::{p}") })
        .collect()
}

/// Every `crate::`, `super::` and `self::` path the code names, as written.
fn paths_in(code: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = code;
    // `use` statements (their trees expanded)...
    while let Some(i) = rest.find("use ") {
        let before = rest[..i].chars().last();
        let after = &rest[i + 4..];
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            rest = after;
            continue;
        }
        let Some(end) = after.find(';') else { break };
        out.extend(expand(&after[..end].replace(['\n', ' '], "")));
        rest = &after[end..];
    }
    // ... and paths in code.
    let bytes = code.as_bytes();
    for start in ["crate::", "super::", "self::"] {
        for (i, _) in code.match_indices(start) {
            if i > 0 && (bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'_' || bytes[i - 1] == b':')
            {
                continue;
            }
            let end = code[i..]
                .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
                .map_or(code.len(), |e| i + e);
            out.push(code[i..end].trim_end_matches(':').to_string());
        }
    }
    out
}

/// The module a path names, as deep as the crate has a file for it.
fn resolve(
    path: &str,
    from: &[String],
    is_dir_module: bool,
    modules: &BTreeSet<Vec<String>>,
) -> Option<Vec<String>> {
    let mut segments = path.split("::").filter(|s| !s.is_empty()).map(str::to_string);
    let mut base: Vec<String> = match segments.next()?.as_str() {
        "crate" => Vec::new(),
        // `super` of a `mod.rs` is its directory's parent; of `x.rs`, the module holding `x`.
        "super" => {
            let mut b = from.to_vec();
            b.pop();
            let _ = is_dir_module;
            b
        }
        "self" => from.to_vec(),
        _ => return None,
    };
    let mut best = base.clone();
    for s in segments {
        match s.as_str() {
            "super" => {
                base.pop();
                best = base.clone();
            }
            "self" => {}
            name => {
                base.push(name.to_string());
                if modules.contains(&base) {
                    best = base.clone();
                } else {
                    break;
                }
            }
        }
    }
    Some(best)
}

fn related(a: &[String], b: &[String]) -> bool {
    a.starts_with(b) || b.starts_with(a)
}

/// Module → modules it names, for one crate.
fn graph(krate: &Crate) -> BTreeMap<Vec<String>, BTreeSet<Vec<String>>> {
    let files = tests::files_with_extension(&krate.src, "rs");
    let modules: BTreeSet<Vec<String>> = files.iter().map(|f| module_of(&krate.src, f)).collect();
    let mut edges: BTreeMap<Vec<String>, BTreeSet<Vec<String>>> = BTreeMap::new();
    for file in &files {
        let from = module_of(&krate.src, file);
        let is_dir = file.file_name().is_some_and(|n| n == "mod.rs");
        for path in paths_in(&code_of(file)) {
            if let Some(to) = resolve(&path, &from, is_dir, &modules)
                && !related(&from, &to)
            {
                edges.entry(from.clone()).or_default().insert(to);
            }
        }
    }
    edges
}

/// The circles of a graph: each strongly connected set of more than one module.
fn circles(edges: &BTreeMap<Vec<String>, BTreeSet<Vec<String>>>) -> Vec<Vec<Vec<String>>> {
    let nodes: BTreeSet<&Vec<String>> = edges.keys().chain(edges.values().flatten()).collect();
    let reach = |start: &Vec<String>| {
        let mut seen = BTreeSet::new();
        let mut todo = vec![start.clone()];
        while let Some(n) = todo.pop() {
            for next in edges.get(&n).into_iter().flatten() {
                if seen.insert(next.clone()) {
                    todo.push(next.clone());
                }
            }
        }
        seen
    };
    let reachable: BTreeMap<&Vec<String>, BTreeSet<Vec<String>>> =
        nodes.iter().map(|n| (*n, reach(n))).collect();
    let mut out: Vec<Vec<Vec<String>>> = Vec::new();
    for n in &nodes {
        if !reachable[n].contains(*n) || out.iter().any(|c| c.contains(n)) {
            continue;
        }
        let circle: Vec<Vec<String>> = nodes
            .iter()
            .filter(|m| reachable[n].contains(**m) && reachable[*m].contains(*n))
            .map(|m| (*m).clone())
            .collect();
        out.push(circle);
    }
    out
}

#[test]
fn no_module_imports_one_that_imports_it() {
    let mut found = Vec::new();
    for krate in crates() {
        for circle in circles(&graph(&krate)) {
            let names: Vec<String> = circle.iter().map(|m| format!("crate::{}", m.join("::"))).collect();
            found.push(format!("{}: {}", krate.src.display(), names.join(" ↔ ")));
        }
    }
    assert!(found.is_empty(), "import circles:\n{}", found.join("\n"));
}

/// The check itself finds a circle where there is one, and none across parent and child.
#[test]
fn the_circle_check_sees_a_circle() {
    let m = |s: &str| s.split("::").map(str::to_string).collect::<Vec<_>>();
    let mut edges = BTreeMap::new();
    edges.insert(m("service::deliver"), BTreeSet::from([m("service::emails")]));
    edges.insert(m("service::emails"), BTreeSet::from([m("service::deliver")]));
    assert_eq!(circles(&edges).len(), 1);
    let mut edges = BTreeMap::new();
    edges.insert(m("a"), BTreeSet::from([m("b")]));
    edges.insert(m("b"), BTreeSet::from([m("c")]));
    edges.insert(m("c"), BTreeSet::from([m("a")]));
    assert_eq!(circles(&edges), vec![vec![m("a"), m("b"), m("c")]]);
    assert_eq!(
        expand("super::{callback, channels::{self, EmailRound}}"),
        vec!["super::callback", "super::channels::self", "super::channels::EmailRound"]
    );
    let modules = BTreeSet::from([m("service"), m("service::deliver"), m("service::emails"), m("error")]);
    assert_eq!(
        resolve("super::emails::queue_jobs", &m("service::deliver"), false, &modules),
        Some(m("service::emails"))
    );
    assert_eq!(
        resolve("crate::error::DeliverError", &m("service::emails"), false, &modules),
        Some(m("error"))
    );
}
