//! Credentials are kept only as SHA-256 digests and compared in constant time.

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Hex SHA-256 of a token, API key or secret: the only form in which credentials are stored.
pub fn digest(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// Constant-time equality of two stored digests (or any two strings).
pub fn matches(a: &str, b: &str) -> bool {
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// Whether `presented` (a plain secret) hashes to `stored_digest`.
pub fn verify(presented: &str, stored_digest: &str) -> bool {
    matches(&digest(presented), stored_digest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_is_hex_sha256() {
        assert_eq!(digest("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }

    #[test]
    fn verify_accepts_only_the_right_secret() {
        let stored = digest("demo-secret");
        assert!(verify("demo-secret", &stored));
        assert!(!verify("demo-secreT", &stored));
        assert!(!verify("", &stored));
    }
}
