//! `DELETE /rest/notification/send/{notificationScheduleId}`: group-send credentials (the auth
//! token and the company API key), the schedule id, `service::cancel::group_send`, the answer
//! in the dialect's shape. Cancelling is idempotent by nature: a repeat answers what the first
//! did.

use lambda_http::{Body, Request, Response};
use shared::ApiError;
use shared::dialects::group_send;
use shared::http;
use shared::service::cancel;

use super::Deps;

pub async fn handle(deps: &Deps<'_>, req: &Request) -> Result<Response<Body>, ApiError> {
    http::body(req)?;
    let user = super::sender(deps, req, "cancelling").await?;
    let id = group_send::schedule_id(http::path_param(req, "notificationScheduleId").as_deref())?;
    let done = cancel::group_send(&deps.cancel, &user, id).await?;
    Ok(http::json(200, &group_send::CancelAnswer::from(&done)))
}
