//! The notification center:
//! - `GET /users/{userId}/notifications`: High first, then newest; `status`, `since`, `limit`,
//!   `nextToken`;
//! - `GET /users/{userId}/notifications/count`: the badge, `{"unread", "unseen", "exact"}`;
//! - `POST /users/{userId}/notifications/{id}/{seen|read|unread|archive|unarchive|dismiss}`
//!   (and `DELETE …/dismiss`): one notification, idempotent, 204;
//! - `POST /users/{userId}/notifications/mark-all-seen` and `/mark-all-read` (body
//!   `{"archive": true}` to archive too): everything at once, one write, 204.
//!
//! The rules are in `shared::service::inbox`, the wire in `shared::dialects::inbox`.

use chrono::{DateTime, Utc};
use lambda_http::http::HeaderValue;
use lambda_http::{Body, Request, Response};
use shared::ApiError;
use shared::dialects::inbox::{self as wire, DEFAULT_LIMIT, InboxView, MAX_LIMIT};
use shared::http;
use shared::model::{InboxQuery, PageRequest, User};
use shared::routes::InboxOp;
use shared::service::idempotency;
use shared::service::inbox;

use crate::{Deps, user_param, uuid_param, viewer};

pub const NEXT_TOKEN_HEADER: &str = "x-next-token";

/// `since`: an RFC 3339 instant or epoch milliseconds.
fn parse_since(text: &str) -> Result<DateTime<Utc>, ApiError> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .ok()
        .or_else(|| text.parse::<i64>().ok().and_then(DateTime::from_timestamp_millis))
        .ok_or_else(|| ApiError::invalid("since", "since must be an RFC 3339 instant or epoch milliseconds"))
}

pub async fn handle(
    deps: &Deps<'_>,
    req: &Request,
    route: &str,
    op: InboxOp,
) -> Result<Response<Body>, ApiError> {
    let viewer = viewer(deps, req).await?;
    let owner = user_param(req, &viewer)?;
    // The action is the route's last segment (`mark-all-seen`, `read`, `dismiss`, …).
    let segment = route.rsplit('/').next().unwrap_or_default();
    match op {
        InboxOp::CenterList => list(deps, req, &viewer, owner).await,
        InboxOp::CenterCount => {
            let counts = inbox::count(&deps.center_reads, &viewer, owner).await?;
            Ok(http::json(200, &counts))
        }
        InboxOp::MarkAll => {
            let mark = wire::parse_mark_all(segment, http::body(req)?)?.ok_or_else(|| {
                ApiError::invalid("path", format!("{segment:?} is not an action on every notification"))
            })?;
            let marks = &deps.center_marks;
            idempotent(deps, req, &viewer, || inbox::mark_all(marks, &viewer, owner, mark)).await
        }
        InboxOp::Mark => {
            let mark = wire::mark_of(segment).ok_or_else(|| {
                ApiError::invalid("path", format!("{segment:?} is not an action on a notification"))
            })?;
            let id = uuid_param(req, "id")?;
            let marks = &deps.center_marks;
            idempotent(deps, req, &viewer, || inbox::mark(marks, &viewer, owner, id, mark)).await
        }
        other => {
            Err(ApiError::invalid("path", format!("{other:?} is not a route of the notification center")))
        }
    }
}

async fn list(
    deps: &Deps<'_>,
    req: &Request,
    viewer: &User,
    owner: uuid::Uuid,
) -> Result<Response<Body>, ApiError> {
    // An empty parameter reads as absent (`?since=` from a form).
    let param = |name: &str| http::query(req, name).filter(|v| !v.is_empty());
    let limit = match param("limit") {
        None => DEFAULT_LIMIT,
        Some(l) => match l.parse::<usize>() {
            Ok(n @ 1..=MAX_LIMIT) => n,
            _ => return Err(ApiError::invalid("limit", format!("limit must be 1 to {MAX_LIMIT}"))),
        },
    };
    let query = InboxQuery {
        status: wire::parse_status(param("status").as_deref())?,
        since: param("since").map(|s| parse_since(&s)).transpose()?,
        delivered_since: match param("deliveredSince") {
            None => None,
            Some(c) => Some(wire::parse_cursor(&c).ok_or_else(|| {
                ApiError::invalid("deliveredSince", "deliveredSince must be a cursor of a realtime event")
            })?),
        },
    };
    let page = PageRequest::after(limit, param("nextToken"));
    let (got, resync) = inbox::list(&deps.center_reads, viewer, owner, &query, &page).await?;
    let views: Vec<InboxView> = got.items.into_iter().map(InboxView::from).collect();
    let next_since = shared::model::next_since(deps.clock.now());
    let mut resp = http::json(
        200,
        &serde_json::json!({
            "notifications": views, "nextToken": got.next, "nextSince": next_since, "resync": resync
        }),
    );
    if let Some(token) = got.next.as_deref().and_then(|t| HeaderValue::from_str(t).ok()) {
        resp.headers_mut().insert(NEXT_TOKEN_HEADER, token);
    }
    Ok(resp)
}

/// A state change, answered 204. Marks are idempotent anyway; an `Idempotency-Key` is honoured
/// as on every POST route.
async fn idempotent<F, Fut>(
    deps: &Deps<'_>,
    req: &Request,
    viewer: &User,
    change: F,
) -> Result<Response<Body>, ApiError>
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = Result<(), ApiError>>,
{
    let scope = http::idempotency_scope(&viewer.id.to_string(), req);
    let outcome = idempotency::once(
        deps.claims,
        &scope,
        http::idempotency_key(req),
        http::body(req)?,
        deps.clock.now(),
        || async {
            change().await?;
            Ok((204, String::new()))
        },
    )
    .await?;
    let mut resp = http::respond(outcome.answer.0, "application/json", String::new());
    *resp.body_mut() = Body::Empty;
    Ok(resp)
}
