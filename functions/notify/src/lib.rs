//! Handler of the notify function: three dialects that notify named people.
//! `POST /communications/department/{departmentUUID}/user/{userUUID}/notify`,
//! `POST /desktop-assistant/notifications`, `POST /api/data/v9.2/SendAppNotification`.

mod app;
mod department;
mod desktop;

use lambda_http::{Body, Request, Response};
use shared::runtime::Ports;

pub async fn handle(ports: &Ports, req: Request) -> Response<Body> {
    let path = req.uri().path().trim_end_matches('/').to_string();
    if path.ends_with("/desktop-assistant/notifications") {
        desktop::handle(ports, &req).await
    } else if path.ends_with("/api/data/v9.2/SendAppNotification") {
        app::handle(ports, &req).await
    } else if path.contains("/communications/department/") && path.ends_with("/notify") {
        department::handle(ports, &req).await
    } else {
        shared::http::error(&shared::ApiError::new(
            shared::ErrorKind::NotFound,
            format!("no route for {path}"),
        ))
    }
}

/// The invocation's deadline, from the Lambda context (none in the local runner and tests that
/// give none).
fn deadline_of(req: &Request) -> shared::service::deadline::Deadline {
    use lambda_http::RequestExt;
    req.lambda_context_ref()
        .map(|c| shared::service::deadline::Deadline::from_epoch_ms(c.deadline))
        .unwrap_or(shared::service::deadline::Deadline::NONE)
}

/// The `Idempotency-Key` of a request, for any dialect.
fn idempotency_key(req: &Request) -> Option<&str> {
    shared::http::idempotency_key(req)
}
