//! `GET /unsubscribe?user=..&brochure=..&sig=..` (the link in an email) checks the link and shows
//! a confirmation page whose button POSTs to the same URL; only that `POST` (also RFC 8058
//! one-click, sent by mail clients from the List-Unsubscribe header) records ALP-EUN for that
//! person and asset. Mail scanners and link previews fetch every link with GET: they change
//! nothing. Answers small HTML pages, since a person follows them.

use lambda_http::{Body, Request, Response};
use shared::email::escape_html;
use shared::http;
use shared::routes::InboxOp;
use shared::service::devices;

fn page(status: u16, title: &str, text: &str, form: &str) -> Response<Body> {
    let html = format!(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>{t}</title></head>\
         <body style=\"font-family:Arial,sans-serif;max-width:32em;margin:3em auto;\"><h1>{t}</h1><p>{x}</p>{form}</body></html>",
        t = escape_html(title),
        x = escape_html(text)
    );
    http::respond(status, "text/html; charset=utf-8", html)
}

pub async fn handle(deps: &crate::Deps<'_>, req: &Request, op: InboxOp) -> Response<Body> {
    let q = |name: &str| http::query(req, name);
    let (user, brochure, sig) = (q("user"), q("brochure"), q("sig"));
    let (user, brochure, sig) = (user.as_deref(), brochure.as_deref(), sig.as_deref());
    let result = if op == InboxOp::Unsubscribe {
        devices::unsubscribe(&deps.unsubscribes, user, brochure, sig).await.map(|_| None)
    } else {
        devices::check_unsubscribe_link(&deps.unsubscribes, user, brochure, sig).map(Some)
    };
    match result {
        Ok(Some(_)) => {
            // The same link, confirmed by a POST of its own query string.
            let action = format!("?{}", req.uri().query().unwrap_or_default());
            let form = format!(
                "<form method=\"post\" action=\"{}\"><button type=\"submit\" \
                 style=\"font-size:1em;padding:.5em 1.2em;\">Unsubscribe</button></form>",
                escape_html(&action)
            );
            page(
                200,
                "Unsubscribe from these emails?",
                "You will no longer receive emails about this content. Your notifications in the app stay as they are.",
                &form,
            )
        }
        Ok(None) => {
            page(200, "You are unsubscribed", "You will no longer receive emails about this content.", "")
        }
        Err(e) => {
            http::log_failure(&e, "unsubscribe");
            let what = e.parameter.as_deref().map(|p| format!(" ({p})")).unwrap_or_default();
            http::with_retry_after(
                page(e.status(), "This link did not work", &format!("{}{what}", e.message), ""),
                &e,
            )
        }
    }
}
