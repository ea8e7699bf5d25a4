//! `POST /api/data/v9.2/appnotifications/{NotificationId}/retract` and
//! `PATCH /api/data/v9.2/appnotifications/{NotificationId}` (its correction, an OData update;
//! both beyond the spec): the bearer token, the GUID, the body (`app_notification::
//! parse_retraction`, `parse_correction`), `service::recall::retract` / `correct` (who may: as
//! its cancel), the answer in the entity's PascalCase or the OData error.

use lambda_http::{Body, Request, Response};
use shared::ApiError;
use shared::auth;
use shared::dialects::app_notification;
use shared::http;
use shared::model::User;
use shared::service::recall::{self, Recalled};

use super::app_cancel::odata;

pub async fn retract(deps: &super::Deps<'_>, req: &Request) -> Response<Body> {
    odata(respond_to_retract(deps, req).await, "app notification retract")
}

pub async fn correct(deps: &super::Deps<'_>, req: &Request) -> Response<Body> {
    odata(respond_to_correct(deps, req).await, "app notification correct")
}

/// The caller (its bearer token), the body and the notification the path names.
async fn read<'r>(
    deps: &super::Deps<'_>,
    req: &'r Request,
) -> Result<(User, &'r [u8], uuid::Uuid), ApiError> {
    let token = auth::bearer(http::header(req, "authorization"));
    let sender = auth::user_by_token(deps.accounts, token, "Authorization", deps.clock.now()).await?;
    let bytes = http::body(req)?;
    let id = app_notification::notification_id(http::path_param(req, "NotificationId").as_deref())?;
    Ok((sender, bytes, id))
}

async fn respond_to_retract(deps: &super::Deps<'_>, req: &Request) -> Result<serde_json::Value, ApiError> {
    let (sender, bytes, id) = read(deps, req).await?;
    app_notification::parse_retraction(bytes)?;
    let done = recall::retract(&deps.recall, &Recalled::App { sender: &sender, id }).await?;
    Ok(app_notification::retract_answer(&done))
}

async fn respond_to_correct(deps: &super::Deps<'_>, req: &Request) -> Result<serde_json::Value, ApiError> {
    let (sender, bytes, id) = read(deps, req).await?;
    let correction = app_notification::parse_correction(bytes)?;
    let corrected =
        recall::correct(&deps.recall, &Recalled::App { sender: &sender, id }, &correction).await?;
    Ok(app_notification::correct_answer(&corrected))
}
