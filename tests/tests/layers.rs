//! The layers, and who may import whom (README, "Architecture"): `model` ← `ports` ← `service`
//! ← `dialects` ← handlers (`functions/*`) ← composition (`runtime`, `main.rs`, `local/`).
//! Adapters implement ports and import nothing above them. A test module (`#[cfg(test)]`) may
//! reach further: it builds what it tests with.

use std::path::{Path, PathBuf};

/// The code of a file before its test module.
fn code_of(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    match text.find("#[cfg(test)]") {
        Some(i) => text[..i].to_string(),
        None => text,
    }
}

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
    out.sort();
    out
}

fn shared(rel: &str) -> PathBuf {
    tests::repo_root().join("shared/src").join(rel)
}

/// Every file under `paths` whose code names one of `forbidden`.
fn violations(paths: &[PathBuf], forbidden: &[&str]) -> Vec<String> {
    let mut found = Vec::new();
    for path in paths {
        let files = if path.is_dir() { rust_files(path) } else { vec![path.clone()] };
        for file in files {
            let code = code_of(&file);
            for f in forbidden {
                if code.contains(f) {
                    found.push(format!("{} names {f}", file.display()));
                }
            }
        }
    }
    found
}

#[test]
fn services_use_ports_and_the_model_only() {
    let found = violations(
        &[shared("service")],
        &["crate::runtime", "crate::adapters", "crate::dialects", "crate::http", "lambda_http", "aws_sdk_"],
    );
    assert!(found.is_empty(), "services reach past their ports:\n{}", found.join("\n"));
}

#[test]
fn the_model_ports_and_adapters_import_nothing_above_them() {
    let above = ["crate::service", "crate::dialects", "crate::runtime", "crate::http", "lambda_http"];
    let found =
        violations(&[shared("model"), shared("ports.rs"), shared("settings.rs"), shared("adapters")], &above);
    assert!(found.is_empty(), "{}", found.join("\n"));
    let found = violations(&[shared("model")], &["crate::ports", "crate::adapters", "crate::config"]);
    assert!(found.is_empty(), "the model depends on nothing: {}", found.join("\n"));
}

#[test]
fn configuration_and_composition_do_not_import_each_other_both_ways() {
    let config = violations(&[shared("config.rs")], &["crate::runtime"]);
    assert!(config.is_empty(), "config is read by the composition, not the other way: {config:?}");
    let dialects = violations(&[shared("dialects")], &["crate::runtime", "crate::adapters", "lambda_http"]);
    assert!(dialects.is_empty(), "dialects translate, they do not wire: {dialects:?}");
}
