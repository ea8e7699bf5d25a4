//! Selects, at build time, the root certificates AWS service endpoints chain to (Amazon Trust
//! Services' roots, and the Starfield root that cross-signs them) from the Mozilla set that
//! `webpki-root-certs` carries, and writes them as one PEM bundle that `runtime.rs` includes.
//! Selecting and encoding them at every cold start cost ~0.1 ms and linked all ~150 roots.

use base64::Engine;
use std::fmt::Write;

fn is_aws_root(der: &[u8]) -> bool {
    let contains = |needle: &[u8]| der.windows(needle.len()).any(|w| w == needle);
    contains(b"Amazon Root CA") || contains(b"Starfield Services Root Certificate Authority - G2")
}

fn main() {
    let mut bundle = String::new();
    let mut count = 0;
    for cert in webpki_root_certs::TLS_SERVER_ROOT_CERTS.iter().filter(|c| is_aws_root(c.as_ref())) {
        let body = base64::engine::general_purpose::STANDARD.encode(cert.as_ref());
        bundle.push_str("-----BEGIN CERTIFICATE-----\n");
        for line in body.as_bytes().chunks(64) {
            let _ = writeln!(bundle, "{}", String::from_utf8_lossy(line));
        }
        bundle.push_str("-----END CERTIFICATE-----\n");
        count += 1;
    }
    // Amazon Root CA 1-4 and Starfield Services Root CA G2; fewer means the set changed shape.
    assert!(count >= 4, "only {count} AWS roots found in webpki-root-certs");
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    std::fs::write(out.join("aws-roots.pem"), bundle).expect("write the AWS root bundle");
    println!("cargo:rerun-if-changed=build.rs");
}
