//! In-app notification (`SendAppNotification`): authenticate, parse, `service::notify::app`,
//! render the OData answer or error. The privilege rules are in the service.

use lambda_http::{Body, Request, Response};
use shared::ApiError;
use shared::auth;
use shared::dialects::app_notification;
use shared::http;
use shared::service::{idempotency, notify};

/// Every answer, success or error, says which OData version it speaks.
pub async fn handle(deps: &super::Deps<'_>, req: &Request) -> Response<Body> {
    let mut resp = match respond(deps, req).await {
        Ok((status, body)) => http::respond(status, "application/json", body),
        Err(e) => {
            http::log_failure(&e, "app notification");
            http::with_retry_after(http::json(e.status(), &app_notification::error_body(&e)), &e)
        }
    };
    resp.headers_mut().insert("odata-version", lambda_http::http::HeaderValue::from_static("4.0"));
    resp
}

async fn respond(deps: &super::Deps<'_>, req: &Request) -> Result<(u16, String), ApiError> {
    let now = deps.clock.now();
    let token = auth::bearer(http::header(req, "authorization"));
    let sender = auth::user_by_token(deps.accounts, token, "Authorization", now).await?;
    notify::app_sender(&sender)?;
    let body = http::body(req)?;
    let key = super::idempotency_key(req);
    let scope = http::idempotency_scope(&sender.id.to_string(), req);
    let outcome = idempotency::once(deps.claims, &scope, key, body, now, || async {
        let parsed = app_notification::parse(body)?;
        let id = idempotency::notification_id(&scope, key, body, || deps.ids.new_id());
        let id = notify::app(&deps.notify, &sender, parsed, id).await?;
        Ok((200, serde_json::json!({ "NotificationId": id }).to_string()))
    })
    .await?;
    Ok(outcome.answer)
}
