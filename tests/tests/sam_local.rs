//! `scripts/docker-host-address` (where `scripts/sam-local` serves moto to the function
//! containers) answers with the host's address on the bridge in every setup seen, and refuses,
//! naming what it tried, when there is none: never an empty address.
//!
//! Stand-in `docker` and `ip` commands on `PATH` print exactly what the real ones printed:
//! a daemon that ran before (the gateway reported), the first start of Debian's docker.io 20.10
//! (IPAM config with only the subnet, `docker0` already addressed), a bridge without its
//! interface address, and no bridge network at all.

use std::path::{Path, PathBuf};
use std::process::Command;

/// A directory with stand-in `docker` and `ip` scripts that print `inspect` and `addr` (or fail
/// with `stderr` when `None`).
fn stand_ins(name: &str, inspect: Option<&str>, addr: Option<&str>) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("docker-host-address-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let script = |out: Option<&str>, err: &str| match out {
        Some(text) => format!("#!/bin/sh\ncat <<'EOF'\n{text}\nEOF\n"),
        None => format!("#!/bin/sh\necho '{err}' >&2\nexit 1\n"),
    };
    write_exec(&dir.join("docker"), &script(inspect, "Error: No such network: bridge"));
    write_exec(&dir.join("ip"), &script(addr, "Device \"docker0\" does not exist."));
    dir
}

fn write_exec(path: &Path, text: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// (exit success, stdout, stderr) of the script with the stand-ins first on PATH.
fn run(dir: &Path) -> (bool, String, String) {
    let path = format!("{}:{}", dir.display(), std::env::var("PATH").unwrap_or_default());
    let out = Command::new("python3")
        .arg(tests::repo_root().join("scripts/docker-host-address"))
        .arg("bridge")
        .env("PATH", path)
        .output()
        .expect("python3 runs scripts/docker-host-address");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

const BRIDGE_OPTIONS: &str = r#""Options": {"com.docker.network.bridge.default_bridge": "true", "com.docker.network.bridge.name": "docker0"}"#;
const DOCKER0: &str = "3: docker0    inet 172.17.0.1/16 brd 172.17.255.255 scope global docker0\\       valid_lft forever preferred_lft forever";

#[test]
fn a_daemon_that_ran_before_reports_the_gateway() {
    let inspect = format!(
        r#"[{{"Name": "bridge", "IPAM": {{"Driver": "default", "Config": [{{"Subnet": "172.17.0.0/16", "Gateway": "172.17.0.1"}}]}}, {BRIDGE_OPTIONS}}}]"#
    );
    // The interface answers something else: the reported gateway wins.
    let dir =
        stand_ins("gateway", Some(&inspect), Some("3: docker0    inet 10.9.9.9/16 scope global docker0"));
    let (ok, out, err) = run(&dir);
    assert!(ok, "{err}");
    assert_eq!(out.trim(), "172.17.0.1");
    assert!(err.contains("gateway"), "says how it found it: {err}");
}

#[test]
fn a_first_start_without_a_gateway_uses_the_bridge_interface() {
    // docker.io 20.10's first start: the IPAM config holds only the subnet.
    let inspect = format!(
        r#"[{{"Name": "bridge", "IPAM": {{"Driver": "default", "Options": null, "Config": [{{"Subnet": "172.17.0.0/16"}}]}}, {BRIDGE_OPTIONS}}}]"#
    );
    let dir = stand_ins("interface", Some(&inspect), Some(DOCKER0));
    let (ok, out, err) = run(&dir);
    assert!(ok, "{err}");
    assert_eq!(out.trim(), "172.17.0.1");
    assert!(err.contains("interface docker0"), "{err}");
}

#[test]
fn without_gateway_or_interface_address_the_subnets_first_address() {
    let inspect = r#"[{"Name": "bridge", "IPAM": {"Config": [{"Subnet": "172.18.0.0/16"}]}, "Options": {}}]"#;
    let dir = stand_ins("subnet", Some(inspect), None);
    let (ok, out, err) = run(&dir);
    assert!(ok, "{err}");
    assert_eq!(out.trim(), "172.18.0.1");
    assert!(err.contains("subnet 172.18.0.0/16"), "{err}");
}

#[test]
fn no_bridge_is_an_error_naming_what_was_tried_never_an_empty_address() {
    let dir = stand_ins("none", None, None);
    let (ok, out, err) = run(&dir);
    assert!(!ok, "no address is a failure");
    assert_eq!(out, "", "prints no address");
    assert!(err.contains("No such network: bridge"), "names the inspect failure: {err}");
    assert!(err.contains("docker0"), "names the interface it tried: {err}");
    assert!(err.contains("subnet"), "names the subnet step: {err}");

    // A network with neither gateway, interface address nor subnet: the same.
    let dir = stand_ins("empty", Some(r#"[{"Name": "bridge", "IPAM": {"Config": []}}]"#), Some(""));
    let (ok, out, err) = run(&dir);
    assert!(!ok && out.is_empty(), "{out} {err}");
    assert!(err.contains("no IPv4 gateway") && err.contains("no IPv4 address"), "{err}");
}

/// `scripts/sam-local` takes its address from the script and stops when there is none, before
/// any build: the address and moto come first.
#[test]
fn sam_local_uses_the_address_finder_before_building() {
    let script = std::fs::read_to_string(tests::repo_root().join("scripts/sam-local")).unwrap();
    let find = script.find("scripts/docker-host-address").expect("sam-local uses docker-host-address");
    let moto_check = script.find("moto did not answer").expect("sam-local checks moto answers");
    let build = script.find("SAM_BUILD_MODE=debug sam build").expect("sam-local builds");
    let cargo = script.find("cargo build --quiet -p local").expect("sam-local builds the runner");
    assert!(
        find < build && moto_check < build && moto_check < cargo,
        "address and moto are checked before any build"
    );
    assert!(!script.contains(".IPAM.Config 0).Gateway"), "no bare gateway lookup that can print nothing");
}
