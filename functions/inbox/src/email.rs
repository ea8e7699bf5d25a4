//! `GET /users/{userId}/email`: the person's email address and whether it is still mailed
//! (an address that bounced for good, or whose owner reported an email as spam, is not mailed
//! again; the answer says which and since when). Only the person themself, by their bearer
//! token. The rules are in `shared::service::emails`.

use lambda_http::{Body, Request, Response};
use serde::Serialize;
use shared::http;
use shared::runtime::Ports;
use shared::service::emails;
use shared::{ApiError, ErrorKind};

use crate::{uuid_param, viewer};

/// The answer.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct EmailStatusView {
    address: String,
    /// `active`, or `suppressed`.
    status: &'static str,
    /// Why it is suppressed: `bounce` or `complaint`.
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    since: Option<chrono::DateTime<chrono::Utc>>,
}

pub async fn handle(ports: &Ports, req: &Request) -> Result<Response<Body>, ApiError> {
    let viewer = viewer(ports, req).await?;
    let owner = uuid_param(req, "userId")?;
    if req.method().as_str() != "GET" {
        return Err(ApiError::new(
            ErrorKind::MethodNotAllowed,
            format!("{} is not allowed here", req.method()),
        ));
    }
    let status = emails::email_status(ports, &viewer, owner).await?;
    let view = EmailStatusView {
        address: status.address,
        status: if status.suppression.is_some() { "suppressed" } else { "active" },
        reason: status.suppression.as_ref().map(|s| s.reason.as_str()),
        since: status.suppression.as_ref().map(|s| s.since),
    };
    Ok(http::json(200, &view))
}
