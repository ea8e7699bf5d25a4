//! In-app notification (`SendAppNotification`): the sender needs the send privilege, and the
//! Create privilege at Global level to notify others (Basic: only itself).

use lambda_http::{Body, Request, Response};
use shared::ApiError;
use shared::auth;
use shared::dialects::app_notification;
use shared::error::ErrorKind;
use shared::http;
use shared::model::*;
use shared::ports::Ports;
use shared::service::deadline::Deadline;
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
    if !sender.has(Role::SendAppNotification) {
        return Err(ApiError::new(
            ErrorKind::InsufficientPrivileges,
            "the Send In-App Notification privilege (prvSendAppNotification) is required",
        ));
    }
    let body = http::body(req)?;
    let key = super::idempotency_key(req);
    let scope = http::idempotency_scope(&sender.id.to_string(), req);
    let outcome = idempotency::once(ports.notifications.as_ref(), &scope, key, body, now, || async {
        let parsed = app_notification::parse(body)?;
        let recipient = match ports.directory.user(parsed.recipient).await? {
            Some(u) if u.company_id == sender.company_id => u,
            _ => {
                return Err(ApiError::new(
                    ErrorKind::NotFound,
                    format!("systemuser {} does not exist", parsed.recipient),
                )
                .with_parameter("Recipient"));
            }
        };
        let to_self = recipient.id == sender.id;
        let may = sender.has(Role::CreateAppNotificationGlobal)
            || (to_self && sender.has(Role::CreateAppNotificationBasic));
        if !may {
            let why = if to_self {
                "the Create privilege on app notifications is required"
            } else {
                "notifying other users needs the Create privilege on app notifications at Global level"
            };
            return Err(ApiError::new(ErrorKind::InsufficientPrivileges, why).with_parameter("Recipient"));
        }
        let id =
            idempotency::notification_id(&scope, super::idempotency_key(req), body, || ports.ids.new_id());
        let mut n = Notification::new(
            id,
            0,
            sender.company_id,
            Origin::AppNotification,
            BroadcastType::UN,
            Audience::Users { user_ids: vec![recipient.id] },
            parsed.content,
            sender.number.to_string(),
            now,
        );
        n.ttl_seconds = parsed.ttl_seconds;
        n.description = "in-app notification".into();
        let id = n.id;
        notify::accept(ports, n, false, Deadline::NONE).await?;
        Ok((200, serde_json::json!({ "NotificationId": id }).to_string()))
    })
    .await?;
    Ok(outcome.answer)
}
