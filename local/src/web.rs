//! The reference web inbox (`web/` in the repository): one page, its script and its style,
//! compiled into the runner and served at `/`, `/inbox.js` and `/inbox.css`. No build step.
//!
//! The Content-Security-Policy allows scripts and styles from this origin only (no inline script,
//! no `eval`), connections to this origin, and images over http(s) (custom icons are URLs):
//! should rendering ever let markup through, it could not run.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};

use crate::server::HyperResponse;

const INDEX: &str = include_str!("../../web/index.html");
const SCRIPT: &str = include_str!("../../web/inbox.js");
const STYLE: &str = include_str!("../../web/inbox.css");

pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     connect-src 'self'; img-src 'self' https: http: data:; frame-src https: http:; \
     base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// The page at `path`, if it is one of the inbox's.
pub fn page(path: &str) -> Option<HyperResponse> {
    let (body, kind) = match path {
        "/" | "/index.html" => (INDEX, "text/html; charset=utf-8"),
        "/inbox.js" => (SCRIPT, "text/javascript; charset=utf-8"),
        "/inbox.css" => (STYLE, "text/css; charset=utf-8"),
        _ => return None,
    };
    Some(
        hyper::Response::builder()
            .status(200)
            .header("content-type", kind)
            .header("content-security-policy", CONTENT_SECURITY_POLICY)
            .header("x-content-type-options", "nosniff")
            .header("referrer-policy", "no-referrer")
            .header("cache-control", "no-cache")
            .body(Full::new(Bytes::from_static(body.as_bytes())).boxed())
            .expect("a valid response"),
    )
}
