//! The documentation holds: every relative link of README.md and docs/ names a file that exists,
//! and docs/benchmarks.md's figures are what `scripts/bench-report` generates from
//! `bench/results.json` (never edited by hand).

/// The targets of a markdown text's links (`](target)`), without anchors.
fn links(text: &str) -> Vec<String> {
    text.match_indices("](")
        .filter_map(|(i, _)| {
            let rest = &text[i + 2..];
            let end = rest.find(')')?;
            Some(rest[..end].split('#').next().unwrap_or_default().trim().to_string())
        })
        .collect()
}

#[test]
fn every_relative_link_resolves() {
    let root = tests::repo_root();
    let mut files = tests::files_with_extension(&root.join("docs"), "md");
    files.push(root.join("README.md"));
    let mut broken = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        for link in links(&text) {
            if link.is_empty() || link.contains("://") || link.starts_with("mailto:") {
                continue;
            }
            let target = file.parent().unwrap().join(&link);
            if !target.exists() {
                broken.push(format!("{}: {link}", file.display()));
            }
        }
    }
    assert!(broken.is_empty(), "links to nothing:\n{}", broken.join("\n"));
    assert_eq!(links("see [a](x.md#y) and [b](https://e.org)"), vec!["x.md", "https://e.org"]);
}

#[test]
fn the_benchmark_figures_are_generated_from_the_results() {
    let out = std::process::Command::new("python3")
        .arg(tests::repo_root().join("scripts/bench-report"))
        .arg("--check")
        .current_dir(tests::repo_root())
        .output()
        .expect("python3 runs scripts/bench-report");
    assert!(
        out.status.success(),
        "docs/benchmarks.md differs from what bench/results.json generates (run scripts/bench-report):\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The README's test command runs every stage (the deployment build and SAM's local emulation
/// too); only the flag the README names leaves some out, and no stage waits for an environment
/// variable a CI might not set.
#[test]
fn the_test_command_runs_every_stage_unless_told_quick() {
    let root = tests::repo_root();
    let script = std::fs::read_to_string(root.join("scripts/test")).unwrap();
    let code: String =
        script.lines().filter(|l| !l.trim_start().starts_with('#')).collect::<Vec<_>>().join("\n");
    for stage in
        ["scripts/check-openapi", "scripts/check-browser", "scripts/build-lambdas", "scripts/sam-local"]
    {
        assert!(code.contains(stage), "scripts/test runs {stage}");
    }
    assert!(!code.contains("${CI"), "no stage depends on CI's variable");
    // Exactly the two slow stages are left out by the flag.
    assert_eq!(code.matches(r#"[ "$quick" = 0 ]"#).count(), 2, "{code}");
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    assert!(readme.contains("scripts/test --quick"), "the README names the flag");
    let ci = std::fs::read_to_string(root.join(".ci/run")).unwrap();
    assert!(ci.lines().any(|l| l.trim() == "exec scripts/test"), "CI runs the README's command as it is");
}
