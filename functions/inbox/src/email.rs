//! `GET /users/{userId}/email`: the person's email address and whether it is still mailed
//! (an address that bounced for good, or whose owner reported an email as spam, is not mailed
//! again; the answer says which and since when). Only the person themself, by their bearer
//! token. The rules are in `shared::service::emails`.

use lambda_http::{Body, Request, Response};
use shared::ApiError;
use shared::dialects::inbox::EmailStatusView;
use shared::http;
use shared::service::emails;

use crate::{Deps, user_param, viewer};

pub async fn handle(deps: &Deps<'_>, req: &Request) -> Result<Response<Body>, ApiError> {
    let viewer = viewer(deps, req).await?;
    let owner = user_param(req, &viewer)?;
    let status = emails::email_status(deps.email_prefs, &viewer, owner).await?;
    Ok(http::json(200, &EmailStatusView::new(status.address, status.suppression.as_ref())))
}
