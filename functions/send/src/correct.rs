//! `POST /rest/notification/send/{notificationScheduleId}/correct`: group-send credentials, the
//! schedule id and the correction (`group_send::parse_correction`: message and url),
//! `service::recall::correct_group_send` with the dialect's own check of what the send then
//! shows, the answer in the dialect's shape.

use lambda_http::{Body, Request, Response};
use shared::ApiError;
use shared::dialects::group_send;
use shared::http;
use shared::service::recall;

use super::Deps;

pub async fn handle(deps: &Deps<'_>, req: &Request) -> Result<Response<Body>, ApiError> {
    let body = http::body(req)?;
    let user = super::sender(deps, req, "correcting").await?;
    let id = group_send::schedule_id(http::path_param(req, "notificationScheduleId").as_deref())?;
    let request = group_send::parse_correction(body)?;
    let corrected =
        recall::correct_group_send(&deps.recall, &user, id, &request, group_send::check_content).await?;
    Ok(http::json(200, &group_send::CorrectAnswer::from(&corrected)))
}
