//! Build script shared by the Lambda function packages and the benchmark's hello-world baseline
//! (`build = "../../build-support/lambda-link.rs"` in their manifests).
//!
//! Links their executables as position-dependent (`-no-pie`), as Go links Lambda binaries by
//! default. A position-independent executable carries a relocation for every pointer in its
//! constant tables (about 23,000 in each function, 550 KB), which the dynamic loader applies at
//! every cold start, copying each of the ~90 pages it writes: about 0.4 ms of a 3 ms start,
//! for address randomisation of the executable image in a single-tenant microVM. Libraries,
//! heap and stacks stay randomised.

fn main() {
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    if os == "linux" {
        println!("cargo:rustc-link-arg-bins=-no-pie");
    }
}
