//! Email templates and links. Templates are files of the project (`shared/templates/email/`),
//! compiled into the binary and checked at first use: an HTML part and a text part, in a small
//! mustache subset. `{{name}}` inserts a value (HTML-escaped in the HTML part), `{{#name}}..{{/name}}`
//! keeps its content when the value is non-empty, `{{^name}}..{{/name}}` when it is empty, and
//! `{{{name}}}` inserts unescaped, which only the generic HTML-body template may do, and only
//! for `emailBody` (the caller's large HTML body, as the group-send spec describes).

use std::collections::HashMap;
use std::sync::OnceLock;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::model::UserId;

/// The personalised params the group-send spec names, spelled as on the wire (`unsubcribeURL`
/// keeps the spec's spelling). A caller asks for one by passing it as an emailParam with any value.
pub const USER_FIRST_NAME: &str = "userFirstName";
pub const DESKTOP_URL: &str = "desktopURL";
pub const INTERACT_URL: &str = "interactURL";
pub const UNSUBSCRIBE_URL: &str = "unsubcribeURL";
pub const PERSONALISED: [&str; 4] = [USER_FIRST_NAME, DESKTOP_URL, INTERACT_URL, UNSUBSCRIBE_URL];
/// The param that asks for `emailBody` to be injected.
pub const EMAIL_BODY: &str = "emailBody";
/// The generic HTML-body template of the spec.
pub const HTML_BODY_TEMPLATE: &str = "Client.Generic.HTMLBody.Mandrill.html";

struct Source {
    name: &'static str,
    html: &'static str,
    text: &'static str,
    /// Placeholders this template may insert unescaped.
    raw: &'static [&'static str],
}

const SOURCES: &[Source] = &[
    Source {
        name: HTML_BODY_TEMPLATE,
        html: include_str!("../templates/email/Client.Generic.HTMLBody.Mandrill.html"),
        text: include_str!("../templates/email/Client.Generic.HTMLBody.Mandrill.txt"),
        raw: &[EMAIL_BODY],
    },
    Source {
        name: "Client.Generic.Notification.html",
        html: include_str!("../templates/email/Client.Generic.Notification.html"),
        text: include_str!("../templates/email/Client.Generic.Notification.txt"),
        raw: &[],
    },
];

#[derive(Debug, Clone, PartialEq, Eq)]
enum Node {
    Text(&'static str),
    Var { name: &'static str, raw: bool },
    Section { name: &'static str, inverted: bool, body: Vec<Node> },
}

/// A parsed template.
#[derive(Debug)]
pub struct Template {
    pub name: &'static str,
    html: Vec<Node>,
    text: Vec<Node>,
}

/// Values by placeholder name; a missing name renders as empty.
pub type Vars = HashMap<String, String>;

impl Template {
    pub fn render_html(&self, vars: &Vars) -> String {
        let mut out = String::new();
        render(&self.html, vars, true, &mut out);
        out
    }

    pub fn render_text(&self, vars: &Vars) -> String {
        let mut out = String::new();
        render(&self.text, vars, false, &mut out);
        out
    }
}

fn render(nodes: &[Node], vars: &Vars, html: bool, out: &mut String) {
    for node in nodes {
        match node {
            Node::Text(t) => out.push_str(t),
            Node::Var { name, raw } => {
                let value = vars.get(*name).map(String::as_str).unwrap_or("");
                if html && !raw {
                    escape_html_into(value, out);
                } else {
                    out.push_str(value);
                }
            }
            Node::Section { name, inverted, body } => {
                let present = vars.get(*name).is_some_and(|v| !v.is_empty());
                if present != *inverted {
                    render(body, vars, html, out);
                }
            }
        }
    }
}

fn escape_html_into(s: &str, out: &mut String) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
}

pub fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    escape_html_into(s, &mut out);
    out
}

/// Parses a template source into nodes; `raw` lists the names it may insert unescaped.
fn parse(src: &'static str, raw: &[&str]) -> Result<Vec<Node>, String> {
    let mut stack: Vec<(&'static str, bool, Vec<Node>)> = vec![("", false, Vec::new())];
    let mut rest = src;
    while let Some(start) = rest.find("{{") {
        if start > 0 {
            stack.last_mut().expect("root").2.push(Node::Text(&rest[..start]));
        }
        let tag = &rest[start + 2..];
        let (inner, after) = if let Some(t) = tag.strip_prefix('{') {
            let end = t.find("}}}").ok_or("unclosed {{{")?;
            let name = t[..end].trim();
            if !raw.contains(&name) {
                return Err(format!("{{{{{{{name}}}}}}} would insert {name} unescaped"));
            }
            stack.last_mut().expect("root").2.push(Node::Var { name, raw: true });
            rest = &t[end + 3..];
            continue;
        } else {
            let end = tag.find("}}").ok_or("unclosed {{")?;
            (&tag[..end], &tag[end + 2..])
        };
        rest = after;
        let valid = |n: &str| !n.is_empty() && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if let Some(name) = inner.strip_prefix('#').or_else(|| inner.strip_prefix('^')) {
            let name = name.trim();
            if !valid(name) {
                return Err(format!("bad section name {name:?}"));
            }
            stack.push((name, inner.starts_with('^'), Vec::new()));
        } else if let Some(name) = inner.strip_prefix('/') {
            let (open, inverted, body) = stack.pop().ok_or("unbalanced section")?;
            if stack.is_empty() || open != name.trim() {
                return Err(format!("{{{{/{}}}}} closes {open:?}", name.trim()));
            }
            stack.last_mut().expect("root").2.push(Node::Section { name: open, inverted, body });
        } else {
            let name = inner.trim();
            if !valid(name) {
                return Err(format!("bad placeholder {name:?}"));
            }
            stack.last_mut().expect("root").2.push(Node::Var { name, raw: false });
        }
    }
    if !rest.is_empty() {
        stack.last_mut().expect("root").2.push(Node::Text(rest));
    }
    match stack.pop() {
        Some(("", _, nodes)) if stack.is_empty() => Ok(nodes),
        Some((open, _, _)) => Err(format!("section {open:?} is not closed")),
        None => Err("unbalanced sections".into()),
    }
}

fn registry() -> &'static [Template] {
    static REGISTRY: OnceLock<Vec<Template>> = OnceLock::new();
    REGISTRY.get_or_init(|| {
        SOURCES
            .iter()
            .map(|s| {
                // The sources are files of this crate and a test parses every one of them.
                let html = parse(s.html, s.raw).unwrap_or_else(|e| panic!("template {}: {e}", s.name));
                let text = parse(s.text, &[]).unwrap_or_else(|e| panic!("template {} (text): {e}", s.name));
                Template { name: s.name, html, text }
            })
            .collect()
    })
}

/// The template registered under `name`.
pub fn template(name: &str) -> Option<&'static Template> {
    registry().iter().find(|t| t.name == name)
}

/// Names of every registered template.
pub fn template_names() -> Vec<&'static str> {
    SOURCES.iter().map(|s| s.name).collect()
}

/// Signs unsubscribe links. The key comes from the deployment (a generated secret); links carry
/// the user and the asset, and a MAC over both, so nobody can unsubscribe someone else.
///
/// A rotation keeps links already sent working: the signer holds the new key first, then the
/// keys earlier links were signed with. It signs with the first only and verifies with any
/// (`LINK_SIGNING_KEY` lists them: docs/operations.md, "Keys and secrets").
#[derive(Clone)]
pub struct LinkSigner {
    /// The signing key, then the keys that still verify. Never empty.
    keys: Vec<Vec<u8>>,
}

impl std::fmt::Debug for LinkSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "LinkSigner({} keys)", self.keys.len())
    }
}

impl LinkSigner {
    pub fn new(key: impl Into<Vec<u8>>) -> Self {
        LinkSigner { keys: vec![key.into()] }
    }

    /// A signer that signs with `signing` and verifies with it and every one of `earlier`.
    pub fn rotated(signing: impl Into<Vec<u8>>, earlier: impl IntoIterator<Item = Vec<u8>>) -> Self {
        LinkSigner { keys: std::iter::once(signing.into()).chain(earlier).collect() }
    }

    fn keyed(key: &[u8], message: &str) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes keys of any length");
        mac.update(message.as_bytes());
        mac
    }

    /// Whether `signature` is a MAC of `message` by one of the keys (each compared in constant
    /// time; every key is tried, so the time does not tell which one matched).
    fn verifies(&self, message: &str, signature: &str) -> bool {
        let Ok(bytes) = URL_SAFE_NO_PAD.decode(signature) else { return false };
        self.keys
            .iter()
            .fold(false, |found, key| Self::keyed(key, message).verify_slice(&bytes).is_ok() | found)
    }

    fn signed(&self, message: &str) -> String {
        URL_SAFE_NO_PAD.encode(Self::keyed(&self.keys[0], message).finalize().into_bytes())
    }

    fn link(user: UserId, brochure: u64) -> String {
        format!("unsubscribe-email:v1:{user}:{brochure}")
    }

    pub fn sign(&self, user: UserId, brochure: u64) -> String {
        self.signed(&Self::link(user, brochure))
    }

    /// Constant-time check of a link's signature.
    pub fn verify(&self, user: UserId, brochure: u64, signature: &str) -> bool {
        self.verifies(&Self::link(user, brochure), signature)
    }

    /// A MAC over `text` for another purpose than unsubscribe links (`purpose` keeps the two
    /// apart: a signature of one is never valid as the other).
    pub fn sign_text(&self, purpose: &str, text: &str) -> String {
        self.signed(&format!("{purpose}:v1:{text}"))
    }

    /// Constant-time check of [`Self::sign_text`].
    pub fn verify_text(&self, purpose: &str, text: &str, signature: &str) -> bool {
        self.verifies(&format!("{purpose}:v1:{text}"), signature)
    }

    /// `{base}/unsubscribe?user=..&brochure=..&sig=..`.
    pub fn unsubscribe_url(&self, base: &str, user: UserId, brochure: u64) -> String {
        format!(
            "{}/unsubscribe?user={user}&brochure={brochure}&sig={}",
            base.trim_end_matches('/'),
            self.sign(user, brochure)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> Vars {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn every_registered_template_parses() {
        assert_eq!(registry().len(), SOURCES.len());
        for name in template_names() {
            assert!(template(name).is_some(), "{name}");
        }
        assert!(template("Nope.html").is_none());
    }

    #[test]
    fn escapes_values_in_html_but_not_in_text() {
        let t = template("Client.Generic.Notification.html").unwrap();
        let v = vars(&[("message", "<script>alert('x')</script> & co"), ("userFirstName", "Bo\"b")]);
        let html = t.render_html(&v);
        assert!(html.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; co"), "{html}");
        assert!(!html.contains("<script>"));
        assert!(html.contains("Hi Bo&quot;b,"));
        assert!(t.render_text(&v).contains("<script>alert('x')</script> & co"));
    }

    #[test]
    fn the_html_body_template_injects_email_body_raw_and_falls_back_to_the_message() {
        let t = template(HTML_BODY_TEMPLATE).unwrap();
        let with_body = t.render_html(&vars(&[("emailBody", "<h1>Big news</h1>"), ("message", "m")]));
        assert!(with_body.contains("<h1>Big news</h1>"));
        assert!(!with_body.contains("<p>m</p>"));
        let without = t.render_html(&vars(&[("message", "short <b>")]));
        assert!(without.contains("<p>short &lt;b&gt;</p>"), "{without}");
    }

    #[test]
    fn sections_follow_presence() {
        let t = template(HTML_BODY_TEMPLATE).unwrap();
        assert!(!t.render_html(&vars(&[])).contains("Unsubscribe"));
        let html = t.render_html(&vars(&[("unsubcribeURL", "https://x/u?a=1&b=2")]));
        assert!(html.contains("href=\"https://x/u?a=1&amp;b=2\""), "{html}");
    }

    #[test]
    fn raw_insertion_is_refused_outside_the_allow_list() {
        assert!(parse("{{{message}}}", &[]).is_err());
        assert!(parse("{{{emailBody}}}", &[EMAIL_BODY]).is_ok());
        assert!(parse("{{#a}}x", &[]).is_err());
        assert!(parse("{{#a}}x{{/b}}", &[]).is_err());
        assert!(parse("x{{/a}}", &[]).is_err());
        assert!(parse("{{bad name}}", &[]).is_err());
        assert!(parse("{{open", &[]).is_err());
    }

    #[test]
    fn a_rotated_signer_signs_with_its_new_key_and_verifies_links_of_the_old() {
        let u = uuid::Uuid::from_u128(7);
        let old = LinkSigner::new(b"old".to_vec());
        let rotated = LinkSigner::rotated(b"new".to_vec(), [b"old".to_vec()]);
        let new_only = LinkSigner::new(b"new".to_vec());
        let (before, after) = (old.sign(u, 4), rotated.sign(u, 4));
        assert!(rotated.verify(u, 4, &before), "a link sent before the rotation still works");
        assert_eq!(after, new_only.sign(u, 4), "new links are signed with the new key");
        assert!(!old.verify(u, 4, &after) && new_only.verify(u, 4, &after));
        assert!(!new_only.verify(u, 4, &before), "once the old key is dropped, its links stop");
        assert!(!rotated.verify(u, 5, &before), "still for its own asset only");
        let ticket = old.sign_text("ticket", "t");
        assert!(rotated.verify_text("ticket", "t", &ticket) && !rotated.verify(u, 4, &ticket));
    }

    #[test]
    fn link_signatures_verify_only_for_their_user_and_asset() {
        let s = LinkSigner::new(b"k".to_vec());
        let u = uuid::Uuid::from_u128(7);
        let sig = s.sign(u, 4);
        assert!(s.verify(u, 4, &sig));
        assert!(!s.verify(u, 5, &sig));
        assert!(!s.verify(uuid::Uuid::from_u128(8), 4, &sig));
        assert!(!LinkSigner::new(b"other".to_vec()).verify(u, 4, &sig));
        assert!(!s.verify(u, 4, "not base64!"));
        let url = s.unsubscribe_url("https://api.example/", u, 4);
        assert!(url.starts_with("https://api.example/unsubscribe?user="), "{url}");
    }
}

/// What email links need: where the public API is, and the key that signs them.
#[derive(Debug, Clone)]
pub struct ChannelSettings {
    /// Base URL of this service's public API (links in emails point at its `/unsubscribe`):
    /// where emails are sent, always (`runtime::aws` refuses to start without it); `None` in the
    /// functions that only verify links and tickets.
    pub public_api_url: Option<String>,
    pub links: LinkSigner,
    /// The stack's WebSocket API for people's open centers (`wss://…/live`), which the web inbox
    /// connects to; `None` where there is none (the local runner serves Server-Sent Events).
    pub realtime_url: Option<String>,
}
