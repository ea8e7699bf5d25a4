//! `POST /users/{userId}/devices` registers a push token (201 new, 200 known: the same token is
//! the same device), `GET` lists them, `DELETE /users/{userId}/devices/{deviceId}` removes one
//! (204). Only the person themself, by their bearer token. The rules are in
//! `shared::service::devices`.

use lambda_http::{Body, Request, Response};
use shared::dialects::inbox::DeviceView;
use shared::http;
use shared::routes::InboxOp;
use shared::service::devices;
use shared::service::idempotency;
use shared::{ApiError, ErrorKind};

use crate::{Deps, user_param, viewer};

pub async fn handle(deps: &Deps<'_>, req: &Request, op: InboxOp) -> Result<Response<Body>, ApiError> {
    let viewer = viewer(deps, req).await?;
    let owner = user_param(req, &viewer)?;
    match op {
        InboxOp::ListDevices => {
            let list = devices::list(&deps.devices, &viewer, owner).await?;
            let views: Vec<DeviceView> = list.iter().map(DeviceView::from).collect();
            Ok(http::json(200, &serde_json::json!({ "devices": views })))
        }
        InboxOp::RegisterDevice => {
            let body = http::body(req)?;
            let (platform, token) = shared::dialects::inbox::parse_registration(body)?;
            let scope = http::idempotency_scope(&viewer.id.to_string(), req);
            let outcome = idempotency::once(
                deps.claims,
                &scope,
                http::idempotency_key(req),
                body,
                deps.clock.now(),
                || async {
                    let (device, created) =
                        devices::register(&deps.devices, &viewer, owner, platform, &token).await?;
                    let view = serde_json::to_string(&DeviceView::from(&device)).unwrap_or_default();
                    Ok((if created { 201 } else { 200 }, view))
                },
            )
            .await?;
            Ok(http::respond(outcome.answer.0, "application/json", outcome.answer.1))
        }
        InboxOp::RemoveDevice => {
            let device_id = http::path_param(req, "deviceId").unwrap_or_default();
            devices::unregister(&deps.devices, &viewer, owner, &device_id).await?;
            let mut resp = http::respond(204, "application/json", String::new());
            *resp.body_mut() = Body::Empty;
            Ok(resp)
        }
        other => Err(ApiError::new(ErrorKind::NotFound, format!("{other:?} is not a route of devices"))),
    }
}
