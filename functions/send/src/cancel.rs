//! `DELETE /rest/notification/send/{notificationScheduleId}`: group-send credentials (the auth
//! token and the company API key), the schedule id, `service::cancel::group_send`, the answer
//! in the dialect's shape. Cancelling is idempotent by nature: a repeat answers what the first
//! did.

use lambda_http::{Body, Request, Response};
use shared::ApiError;
use shared::dialects::group_send;
use shared::error::ErrorKind;
use shared::http::{self, header};
use shared::service::{cancel, send};

use super::{API_KEY, AUTH_TOKEN, Deps};

pub async fn handle(deps: &Deps<'_>, req: &Request) -> Result<Response<Body>, ApiError> {
    http::body(req)?;
    let (user, _) = shared::auth::user_and_company(
        deps.accounts,
        (header(req, AUTH_TOKEN), AUTH_TOKEN),
        (header(req, API_KEY), API_KEY),
        deps.clock.now(),
    )
    .await?;
    if !send::may_send_anything(&user) {
        return Err(ApiError::new(
            ErrorKind::InsufficientPermissions,
            "cancelling notifications needs SUPER_USER, COMPANY_ADMIN or EVENT_PUSH_NOTIFICATION_ROLE",
        ));
    }
    let id = group_send::schedule_id(http::path_param(req, "notificationScheduleId").as_deref())?;
    let done = cancel::group_send(&deps.cancel, &user, id).await?;
    Ok(http::json(200, &group_send::CancelAnswer::from(&done)))
}
