//! `DELETE /api/data/v9.2/appnotifications/{NotificationId}`: the bearer token,
//! `service::cancel::app` (who may cancel which), the OData answer or error; and
//! `GET /api/data/v9.2/appnotifications/{NotificationId}/log`, its delivery log, for whoever may
//! cancel it (`service::history::app_log`).

use lambda_http::{Body, Request, Response};
use shared::ApiError;
use shared::auth;
use shared::dialects::app_notification;
use shared::http;
use shared::service::cancel;

pub async fn handle(deps: &super::Deps<'_>, req: &Request) -> Response<Body> {
    odata(respond(deps, req).await, "app notification cancel")
}

pub async fn log(deps: &super::Deps<'_>, req: &Request) -> Response<Body> {
    odata(respond_to_log(deps, req).await, "app notification log")
}

/// The answer, or the OData error, with the OData version header.
pub(super) fn odata(result: Result<serde_json::Value, ApiError>, what: &str) -> Response<Body> {
    let mut resp = match result {
        Ok(body) => http::json(200, &body),
        Err(e) => {
            http::log_failure(&e, what);
            http::with_retry_after(http::json(e.status(), &app_notification::error_body(&e)), &e)
        }
    };
    resp.headers_mut().insert("odata-version", lambda_http::http::HeaderValue::from_static("4.0"));
    resp
}

async fn respond_to_log(deps: &super::Deps<'_>, req: &Request) -> Result<serde_json::Value, ApiError> {
    let token = auth::bearer(http::header(req, "authorization"));
    let reader = auth::user_by_token(deps.accounts, token, "Authorization", deps.clock.now()).await?;
    http::body(req)?;
    let id = app_notification::notification_id(http::path_param(req, "NotificationId").as_deref())?;
    let page = shared::dialects::sent_history::parse_log(|name| http::query(req, name))?;
    let (n, found) = shared::service::history::app_log(&deps.log, &reader, id, &page).await?;
    Ok(shared::dialects::sent_history::notification_log("NotificationId", &n, &found))
}

async fn respond(deps: &super::Deps<'_>, req: &Request) -> Result<serde_json::Value, ApiError> {
    let token = auth::bearer(http::header(req, "authorization"));
    let sender = auth::user_by_token(deps.accounts, token, "Authorization", deps.clock.now()).await?;
    http::body(req)?;
    let id = app_notification::notification_id(http::path_param(req, "NotificationId").as_deref())?;
    let done = cancel::app(&deps.cancel, &sender, id).await?;
    Ok(app_notification::cancel_answer(&done))
}
