//! No binary of this workspace carries aws-lc's CPU jitter entropy source (`.cargo/config.toml`
//! sets `AWS_LC_SYS_NO_JITTER_ENTROPY=1` for every build; docs/decisions/0001-no-jitter-entropy.md says why).
//! This test executable links aws-lc through the same SDK and TLS crates as the functions and is
//! built by the same cargo configuration; `scripts/build-lambdas` runs the same check on what
//! `sam build` ships.

use std::process::Command;

fn check(paths: &[&std::path::Path]) -> std::process::Output {
    Command::new("python3")
        .arg(tests::repo_root().join("scripts/check-no-jitter"))
        .args(paths)
        .output()
        .expect("python3 runs scripts/check-no-jitter")
}

#[test]
fn this_build_carries_no_cpu_jitter_entropy_source() {
    // The check itself finds the source's signature (its lag cutoff table, little-endian u32).
    let dir = std::env::temp_dir().join(format!("jitter-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let planted = dir.join("planted");
    let mut bytes = b"\x7fELF padding".to_vec();
    for n in [66443u32, 93504, 104761, 110875, 114707] {
        bytes.extend_from_slice(&n.to_le_bytes());
    }
    std::fs::write(&planted, bytes).unwrap();
    let found = check(&[&planted]);
    assert_eq!(found.status.code(), Some(1), "the check finds a planted signature");
    std::fs::remove_dir_all(&dir).ok();

    // And this executable, which links aws-lc-sys as every function does, has none.
    let exe = std::env::current_exe().expect("the test executable's path");
    let out = check(&[&exe]);
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
