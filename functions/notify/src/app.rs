//! In-app notification (`SendAppNotification`): authenticate, parse, `service::notify::app`,
//! render the OData answer or error. The privilege rules are in the service.

use lambda_http::{Body, Request, Response};
use shared::ApiError;
use shared::auth;
use shared::dialects::app_notification;
use shared::http;
use shared::runtime::Ports;
use shared::service::{idempotency, notify};

/// Every answer, success or error, says which OData version it speaks.
pub async fn handle(ports: &Ports, req: &Request) -> Response<Body> {
    let mut resp = match respond(ports, req).await {
        Ok((status, body)) => http::respond(status, "application/json", body),
        Err(e) => {
            http::log_failure(&e, "app notification");
            http::with_retry_after(http::json(e.status(), &app_notification::error_body(&e)), &e)
        }
    };
    resp.headers_mut().insert("odata-version", lambda_http::http::HeaderValue::from_static("4.0"));
    resp
}

async fn respond(ports: &Ports, req: &Request) -> Result<(u16, String), ApiError> {
    let now = ports.clock.now();
    let token = auth::bearer(http::header(req, "authorization"));
    let sender = auth::user_by_token(ports.directory.as_ref(), token, "Authorization", now).await?;
    notify::app_sender(&sender)?;
    let body = http::body(req)?;
    let key = super::idempotency_key(req);
    let scope = http::idempotency_scope(&sender.id.to_string(), req);
    let outcome = idempotency::once(ports.notifications.as_ref(), &scope, key, body, now, || async {
        let parsed = app_notification::parse(body)?;
        let id = idempotency::notification_id(&scope, key, body, || ports.ids.new_id());
        let id = notify::app(&ports.notify(), &sender, parsed, id).await?;
        Ok((200, serde_json::json!({ "NotificationId": id }).to_string()))
    })
    .await?;
    Ok(outcome.answer)
}
