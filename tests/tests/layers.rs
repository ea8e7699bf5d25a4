//! The layers, and who may import whom (docs/architecture.md): `model` ← `ports` ← `service`
//! ← `dialects` ← handlers (`functions/*`) ← composition (`runtime`, `main.rs`, `local/`).
//! Adapters implement ports and import nothing above them. The bag of every port
//! (`runtime::Ports`) is composition's: a use case takes the deps it names, never the bag.
//! A test module (`#[cfg(test)]`) may reach further: it builds what it tests with.
//! (No import circles: `imports.rs`.)

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

/// Whether `code` names `word` as a whole identifier.
fn names_word(code: &str, word: &str) -> bool {
    code.match_indices(word).any(|(i, _)| {
        let before = code[..i].chars().last();
        let after = code[i + word.len()..].chars().next();
        !before.is_some_and(|c| c.is_alphanumeric() || c == '_')
            && !after.is_some_and(|c| c.is_alphanumeric() || c == '_')
    })
}

#[test]
fn no_use_case_takes_the_bag() {
    let mut found = Vec::new();
    for dir in ["service", "dialects", "ports", "model", "adapters"] {
        for file in rust_files(&shared(dir)) {
            let code = code_of(&file);
            let code: Vec<&str> = code.lines().filter(|l| !l.trim_start().starts_with("//")).collect();
            if names_word(&code.join("\n"), "Ports") {
                found.push(file.display().to_string());
            }
        }
    }
    assert!(found.is_empty(), "the bag of every port is composition's (runtime::Ports): {found:?}");
    // The check sees the bag where it is.
    assert!(names_word(&code_of(&shared("runtime/ports.rs")), "Ports"));
    assert!(!names_word("MemoryPorts", "Ports"));
}

#[test]
fn the_model_ports_and_adapters_import_nothing_above_them() {
    let above = ["crate::service", "crate::dialects", "crate::runtime", "crate::http", "lambda_http"];
    let found =
        violations(&[shared("model"), shared("ports"), shared("settings.rs"), shared("adapters")], &above);
    assert!(found.is_empty(), "{}", found.join("\n"));
    let found = violations(
        &[shared("model")],
        &["crate::ports", "crate::adapters", "crate::config", "crate::runtime"],
    );
    assert!(found.is_empty(), "the model depends on nothing: {}", found.join("\n"));
}

#[test]
fn configuration_and_composition_do_not_import_each_other_both_ways() {
    // Configuration is composition's (runtime/config.rs); the settings the services read
    // depend on neither it nor the rest of composition.
    let settings =
        violations(&[shared("settings.rs")], &["crate::runtime", "crate::config", "crate::adapters"]);
    assert!(settings.is_empty(), "settings are plain values: {settings:?}");
    let dialects = violations(&[shared("dialects")], &["crate::runtime", "crate::adapters", "lambda_http"]);
    assert!(dialects.is_empty(), "dialects translate, they do not wire: {dialects:?}");
}
