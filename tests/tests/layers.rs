//! The layers, and who may import whom (docs/architecture.md): `model` ← `ports` ← `service`
//! ← `dialects` ← handlers (`functions/*`) ← composition (`runtime`, `main.rs`, `local/`).
//! Adapters implement ports and import nothing above them. The bag of every port
//! (`runtime::Ports`) is composition's: a use case takes the deps it names, never the bag.
//! A test module (`#[cfg(test)]`) may reach further: it builds what it tests with.
//! (No import circles: `imports.rs`.)

use std::path::{Path, PathBuf};

use tests::{code_before_tests as code_of, files_with_extension, without_comments};

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    files_with_extension(dir, "rs")
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
            if names_word(&without_comments(&code_of(&file)), "Ports") {
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

/// A handler takes its function's `Deps` (the ports it uses): only the function's composition
/// (`main.rs`, `wiring.rs`) and its tests see the bag.
#[test]
fn handlers_take_their_deps_not_the_bag() {
    let mut found = Vec::new();
    let functions = tests::repo_root().join("functions");
    let mut wired = 0;
    for file in rust_files(&functions) {
        let name = file.file_name().unwrap().to_string_lossy().to_string();
        let code = without_comments(&code_of(&file));
        if ["main.rs", "wiring.rs", "tests.rs"].contains(&name.as_str()) {
            wired += usize::from(name == "wiring.rs" && names_word(&code, "Ports"));
            continue;
        }
        if names_word(&code, "Ports") || code.contains("shared::runtime") {
            found.push(file.display().to_string());
        }
    }
    assert!(found.is_empty(), "handlers that see the bag: {found:?}");
    // Every function is wired (and the check sees the bag where it is).
    let packages = std::fs::read_dir(&functions).unwrap().count();
    assert_eq!(wired, packages, "one wiring.rs per function builds its Deps from the bag");
}
