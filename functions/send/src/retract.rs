//! `POST /rest/notification/send/{notificationScheduleId}/retract`: group-send credentials, the
//! schedule id, `service::recall::retract_group_send`, the answer in the dialect's shape (with
//! what cannot be recalled: the emails and pushes sent). Retracting is idempotent: a repeat
//! answers what the first did.

use lambda_http::{Body, Request, Response};
use shared::ApiError;
use shared::dialects::group_send;
use shared::http;
use shared::service::recall;

use super::Deps;

pub async fn handle(deps: &Deps<'_>, req: &Request) -> Result<Response<Body>, ApiError> {
    let body = http::body(req)?;
    let user = super::sender(deps, req, "retracting").await?;
    let id = group_send::schedule_id(http::path_param(req, "notificationScheduleId").as_deref())?;
    group_send::parse_retraction(body)?;
    let done = recall::retract_group_send(&deps.recall, &user, id).await?;
    Ok(http::json(200, &group_send::RetractAnswer::from(&done)))
}
