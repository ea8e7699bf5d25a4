//! Handler of the inbox function: what reaches a person. The notification center
//! (`/users/{userId}/notifications`), the devices they register for push
//! (`/users/{userId}/devices`), their email's status (`/users/{userId}/email`), and the
//! unsubscribe links of emails (`/unsubscribe`).

mod center;
mod devices;
mod email;
mod unsubscribe;

use lambda_http::{Body, Request, Response};
use shared::ApiError;
use shared::http;
use shared::model::User;
use shared::ports::Ports;
use uuid::Uuid;

pub use center::NEXT_TOKEN_HEADER;

pub async fn handle(ports: &Ports, req: Request) -> Response<Body> {
    // Lambda refuses an invocation over its payload cap whatever the route: so do we, first.
    if let Err(e) = http::body(&req) {
        return http::answer(Err(e), "inbox");
    }
    let path = req.uri().path().trim_end_matches('/').to_string();
    if path.ends_with("/unsubscribe") {
        return unsubscribe::handle(ports, &req).await;
    }
    let result = if path.contains("/devices") {
        devices::handle(ports, &req).await
    } else if path.ends_with("/email") {
        email::handle(ports, &req).await
    } else {
        center::handle(ports, &req).await
    };
    http::answer(result, "inbox")
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
