//! Handler of the inbox function: what reaches a person. The notification center
//! (`/users/{userId}/notifications`), the devices they register for push
//! (`/users/{userId}/devices`), their email's status (`/users/{userId}/email`), and the
//! unsubscribe links of emails (`/unsubscribe`).

mod center;
mod devices;
mod email;
mod unsubscribe;
mod web;

use lambda_http::{Body, Request, Response};
use shared::ApiError;
use shared::http;
use shared::model::User;
use shared::runtime::Ports;
use uuid::Uuid;

pub use center::NEXT_TOKEN_HEADER;

pub async fn handle(ports: &Ports, req: Request) -> Response<Body> {
    // Lambda refuses an invocation over its payload cap whatever the route: so do we, first.
    if let Err(e) = http::body(&req) {
        return http::answer(Err(e), "inbox");
    }
    let path = req.uri().path().trim_end_matches('/').to_string();
    let realtime_url = ports.channels.as_ref().and_then(|c| c.realtime_url.as_deref());
    if req.method() == "GET"
        && let Some(page) = web::page(&path, realtime_url)
    {
        return page;
    }
    if path.ends_with("/unsubscribe") {
        return unsubscribe::handle(ports, &req).await;
    }
    let result = if path.ends_with("/realtime-ticket") {
        ticket(ports, &req).await
    } else if path.contains("/devices") {
        devices::handle(ports, &req).await
    } else if path.ends_with("/email") {
        email::handle(ports, &req).await
    } else {
        center::handle(ports, &req).await
    };
    http::answer(result, "inbox")
}

/// `POST /users/{userId}/realtime-ticket`: a single-use ticket, valid for a minute, to open the
/// person's realtime connection with (see `shared::service::realtime`).
async fn ticket(ports: &Ports, req: &Request) -> Result<Response<Body>, ApiError> {
    let viewer = viewer(ports, req).await?;
    let owner = user_param(req, &viewer)?;
    let ticket = shared::service::realtime::issue(&ports.tickets(), &viewer, owner)?;
    let mut resp = http::json(
        201,
        &serde_json::json!({ "ticket": ticket, "expiresIn": shared::service::realtime::TICKET_SECONDS }),
    );
    resp.headers_mut().insert("cache-control", lambda_http::http::HeaderValue::from_static("no-store"));
    Ok(resp)
}

/// `{userId}`: a person's id, or `me` for the person whose token the request carries (a client
/// that signs in with a token does not need to know its id).
fn user_param(req: &Request, viewer: &User) -> Result<Uuid, ApiError> {
    match http::path_param(req, "userId").as_deref() {
        Some("me") => Ok(viewer.id),
        _ => uuid_param(req, "userId"),
    }
}

fn uuid_param(req: &Request, name: &str) -> Result<Uuid, ApiError> {
    let v = http::path_param(req, name).unwrap_or_default();
    v.parse().map_err(|_| ApiError::invalid(name, format!("{name} {v:?} is not a UUID")))
}

/// The person whose bearer token the request carries.
async fn viewer(ports: &Ports, req: &Request) -> Result<User, ApiError> {
    let token = shared::auth::bearer(http::header(req, "authorization"));
    shared::auth::user_by_token(ports.directory.as_ref(), token, "Authorization", ports.clock.now()).await
}
