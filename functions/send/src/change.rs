//! `PATCH /rest/notification/send/{notificationScheduleId}`: group-send credentials, the schedule
//! id and the change (`group_send::parse_change`), `service::change::group_send` with the
//! dialect's own check of what the send then shows, the answer in the dialect's shape.

use lambda_http::{Body, Request, Response};
use shared::ApiError;
use shared::dialects::group_send;
use shared::http;
use shared::service::change;

use super::Deps;

pub async fn handle(deps: &Deps<'_>, req: &Request) -> Result<Response<Body>, ApiError> {
    let body = http::body(req)?;
    let user = super::sender(deps, req, "changing").await?;
    let id = group_send::schedule_id(http::path_param(req, "notificationScheduleId").as_deref())?;
    let request = group_send::parse_change(body)?;
    let changed = change::group_send(&deps.change, &user, id, &request, group_send::check_content).await?;
    Ok(http::json(200, &group_send::ChangeAnswer::from(&changed)))
}
