//! The reference web inbox (`web/` in the repository): one page, its script and its style,
//! compiled into the function and served at `/`, `/inbox.js` and `/inbox.css`, on AWS as by the
//! local runner. No build step.
//!
//! The page learns where its realtime channel is from a `<meta name="realtime-url">` filled in
//! here: the stack's WebSocket API (`REALTIME_URL`), or empty on the local runner, where the script
//! uses its Server-Sent Events at `/realtime`. The Content-Security-Policy allows scripts and
//! styles from this origin only (no inline script, no `eval`), connections to this origin and to
//! that WebSocket API, and images over http(s) (custom icons are URLs): should rendering ever let
//! markup through, it could not run.

use lambda_http::http::HeaderValue;
use lambda_http::{Body, Response};

const INDEX: &str = include_str!("../../../web/index.html");
const SCRIPT: &str = include_str!("../../../web/inbox.js");
const STYLE: &str = include_str!("../../../web/inbox.css");
const REALTIME_META: &str = r#"<meta name="realtime-url" content="">"#;

/// The policy, with the WebSocket API (if any) as the one other place it may connect to.
pub fn content_security_policy(realtime_url: Option<&str>) -> String {
    let connect = match realtime_url {
        Some(url) => format!("'self' {url}"),
        None => "'self'".into(),
    };
    format!(
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src {connect}; \
         img-src 'self' https: http: data:; frame-src https: http:; base-uri 'none'; \
         form-action 'self'; frame-ancestors 'none'"
    )
}

/// `GET /`, `/inbox.js`, `/inbox.css`; `None` for any other path.
pub fn page(path: &str, realtime_url: Option<&str>) -> Option<Response<Body>> {
    let (body, kind) = match path {
        "" | "/" => {
            let url = realtime_url.unwrap_or_default();
            let escaped = shared::email::escape_html(url);
            (
                INDEX.replace(REALTIME_META, &format!(r#"<meta name="realtime-url" content="{escaped}">"#)),
                "text/html; charset=utf-8",
            )
        }
        "/inbox.js" => (SCRIPT.to_string(), "text/javascript; charset=utf-8"),
        "/inbox.css" => (STYLE.to_string(), "text/css; charset=utf-8"),
        _ => return None,
    };
    let mut resp = Response::new(Body::Text(body));
    let headers = resp.headers_mut();
    headers.insert("content-type", HeaderValue::from_static(kind));
    if let Ok(policy) = HeaderValue::from_str(&content_security_policy(realtime_url)) {
        headers.insert("content-security-policy", policy);
    }
    headers.insert("x-content-type-options", HeaderValue::from_static("nosniff"));
    headers.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
    headers.insert("cache-control", HeaderValue::from_static("no-cache"));
    Some(resp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_names_its_realtime_channel_and_the_policy_allows_only_it() {
        let local = page("/", None).unwrap();
        let html = match local.body() {
            Body::Text(t) => t.clone(),
            _ => panic!("text"),
        };
        assert!(html.contains(REALTIME_META), "empty on the local runner");
        let url = "wss://abc.execute-api.us-east-1.amazonaws.com/live";
        let aws = page("/", Some(url)).unwrap();
        let html = match aws.body() {
            Body::Text(t) => t.clone(),
            _ => panic!("text"),
        };
        assert!(html.contains(&format!(r#"<meta name="realtime-url" content="{url}">"#)));
        let policy = aws.headers()["content-security-policy"].to_str().unwrap().to_string();
        assert!(policy.contains(&format!("connect-src 'self' {url};")), "{policy}");
        assert!(policy.contains("script-src 'self';") && !policy.contains("unsafe"), "{policy}");
        assert_eq!(
            page("/inbox.js", None).unwrap().headers()["content-type"],
            "text/javascript; charset=utf-8"
        );
        assert!(page("/other", None).is_none());
    }
}
