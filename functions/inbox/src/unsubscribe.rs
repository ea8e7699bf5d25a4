//! `GET /unsubscribe?user=..&brochure=..&sig=..` (the link in an email) and `POST` to the same
//! URL (RFC 8058 one-click, sent by mail clients from the List-Unsubscribe header): records
//! ALP-EUN for that person and asset. Answers a small HTML page, since a person follows it.

use lambda_http::{Body, Request, Response};
use shared::email::escape_html;
use shared::http;
use shared::runtime::Ports;
use shared::service::devices;

fn page(status: u16, title: &str, text: &str) -> Response<Body> {
    let html = format!(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{t}</title></head>\
         <body style=\"font-family:Arial,sans-serif;max-width:32em;margin:3em auto;\"><h1>{t}</h1><p>{x}</p></body></html>",
        t = escape_html(title),
        x = escape_html(text)
    );
    http::respond(status, "text/html; charset=utf-8", html)
}

pub async fn handle(ports: &Ports, req: &Request) -> Response<Body> {
    let q = |name: &str| http::query(req, name);
    let (user, brochure, sig) = (q("user"), q("brochure"), q("sig"));
    match devices::unsubscribe(ports, user.as_deref(), brochure.as_deref(), sig.as_deref()).await {
        Ok(_) => page(200, "You are unsubscribed", "You will no longer receive emails about this content."),
        Err(e) => {
            http::log_failure(&e, "unsubscribe");
            let what = e.parameter.as_deref().map(|p| format!(" ({p})")).unwrap_or_default();
            http::with_retry_after(
                page(e.status(), "This link did not work", &format!("{}{what}", e.message)),
                &e,
            )
        }
    }
}
