//! The notification center: `GET /users/{userId}/notifications` (sorted High first, then
//! newest; `limit`, `nextToken`, `since`), and `POST`/`DELETE
//! /users/{userId}/notifications/{id}/dismiss` (idempotent, 204). The rules are in
//! `shared::service::inbox`.

use chrono::{DateTime, Utc};
use lambda_http::http::HeaderValue;
use lambda_http::{Body, Request, Response};
use shared::ApiError;
use shared::dialects::inbox::{DEFAULT_LIMIT, InboxView, MAX_LIMIT};
use shared::http;
use shared::model::{InboxQuery, PageRequest};
use shared::ports::Ports;
use shared::service::idempotency;
use shared::service::inbox;

use crate::{uuid_param, viewer};

pub const NEXT_TOKEN_HEADER: &str = "x-next-token";

/// `since`: an RFC 3339 instant or epoch milliseconds.
fn parse_since(text: &str) -> Result<DateTime<Utc>, ApiError> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .ok()
        .or_else(|| text.parse::<i64>().ok().and_then(DateTime::from_timestamp_millis))
        .ok_or_else(|| ApiError::invalid("since", "since must be an RFC 3339 instant or epoch milliseconds"))
}

pub async fn handle(ports: &Ports, req: &Request) -> Result<Response<Body>, ApiError> {
    let viewer = viewer(ports, req).await?;
    let owner = uuid_param(req, "userId")?;
    if req.method() == "GET" {
        // An empty parameter reads as absent (`?since=` from a form).
        let param = |name: &str| http::query(req, name).filter(|v| !v.is_empty());
        let limit = match param("limit") {
            None => DEFAULT_LIMIT,
            Some(l) => match l.parse::<usize>() {
                Ok(n @ 1..=MAX_LIMIT) => n,
                _ => return Err(ApiError::invalid("limit", format!("limit must be 1 to {MAX_LIMIT}"))),
            },
        };
        let query = match param("since") {
            None => InboxQuery::Ordered,
            Some(s) => InboxQuery::Since(parse_since(&s)?),
        };
        let page = PageRequest::after(limit, param("nextToken"));
        let got = inbox::list(ports, &viewer, owner, &query, &page).await?;
        let views: Vec<InboxView> = got.items.into_iter().map(InboxView::from).collect();
        let mut resp = http::json(200, &serde_json::json!({ "notifications": views, "nextToken": got.next }));
        if let Some(token) = got.next.as_deref().and_then(|t| HeaderValue::from_str(t).ok()) {
            resp.headers_mut().insert(NEXT_TOKEN_HEADER, token);
        }
        Ok(resp)
    } else {
        let id = uuid_param(req, "id")?;
        // Dismissing is idempotent anyway; a key is honoured like on every POST route.
        let scope = http::idempotency_scope(&viewer.id.to_string(), req);
        let now = ports.clock.now();
        let outcome = idempotency::once(
            ports.notifications.as_ref(),
            &scope,
            http::idempotency_key(req),
            b"",
            now,
            || async {
                inbox::dismiss(ports, &viewer, owner, id).await?;
                Ok((204, String::new()))
            },
        )
        .await?;
        let mut resp = http::respond(outcome.answer.0, "application/json", String::new());
        *resp.body_mut() = Body::Empty;
        Ok(resp)
    }
}
