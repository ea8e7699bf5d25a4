//! In-app notification (`SendAppNotification`): authenticate, parse, `service::notify::app`,
//! render the OData answer or error. The privilege rules are in the service.

use lambda_http::{Body, Request, Response};
use shared::ApiError;
use shared::auth;
use shared::dialects::app_notification;
use shared::http;
use shared::ports::Ports;
use shared::service::{idempotency, notify};

/// The OData error body: `{"error": {"code", "message", "parameter"}}`.
fn odata_error(e: &ApiError) -> Response<Body> {
    let code = match e.status() {
        400 | 413 => "0x80040203",
        401 => "0x80048306",
        403 => "0x80040220",
        404 => "0x80040217",
        409 => "0x80040237",
        _ => "0x80040216",
    };
    let mut error = serde_json::json!({ "code": code, "message": e.message });
    if let Some(p) = &e.parameter {
        error["parameter"] = serde_json::Value::String(p.clone());
    }
    http::with_retry_after(http::json(e.status(), &serde_json::json!({ "error": error })), e)
}

/// Every answer, success or error, says which OData version it speaks.
pub async fn handle(ports: &Ports, req: &Request) -> Response<Body> {
    let mut resp = match respond(ports, req).await {
        Ok((status, body)) => http::respond(status, "application/json", body),
        Err(e) => {
            http::log_failure(&e, "app notification");
            odata_error(&e)
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
        let id = notify::app(ports, &sender, parsed, id).await?;
        Ok((200, serde_json::json!({ "NotificationId": id }).to_string()))
    })
    .await?;
    Ok(outcome.answer)
}
