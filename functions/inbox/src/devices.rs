//! `POST /users/{userId}/devices` registers a push token (201 new, 200 known: the same token is
//! the same device), `GET` lists them, `DELETE /users/{userId}/devices/{deviceId}` removes one
//! (204). Only the person themself, by their bearer token. The rules are in
//! `shared::service::devices`.

use lambda_http::{Body, Request, Response};
use shared::dialects::inbox::DeviceView;
use shared::http;
use shared::runtime::Ports;
use shared::service::devices;
use shared::service::idempotency;
use shared::{ApiError, ErrorKind};

use crate::{user_param, viewer};

pub async fn handle(ports: &Ports, req: &Request) -> Result<Response<Body>, ApiError> {
    let viewer = viewer(ports, req).await?;
    let owner = user_param(req, &viewer)?;
    match req.method().as_str() {
        "GET" => {
            let list = devices::list(&ports.devices(), &viewer, owner).await?;
            let views: Vec<DeviceView> = list.iter().map(DeviceView::from).collect();
            Ok(http::json(200, &serde_json::json!({ "devices": views })))
        }
        "POST" => {
            let body = http::body(req)?;
            let (platform, token) = shared::dialects::inbox::parse_registration(body)?;
            let scope = http::idempotency_scope(&viewer.id.to_string(), req);
            let outcome = idempotency::once(
                ports.notifications.as_ref(),
                &scope,
                http::idempotency_key(req),
                body,
                ports.clock.now(),
                || async {
                    let (device, created) =
                        devices::register(&ports.devices(), &viewer, owner, platform, &token).await?;
                    let view = serde_json::to_string(&DeviceView::from(&device)).unwrap_or_default();
                    Ok((if created { 201 } else { 200 }, view))
                },
            )
            .await?;
            Ok(http::respond(outcome.answer.0, "application/json", outcome.answer.1))
        }
        "DELETE" => {
            let device_id = http::path_param(req, "deviceId").unwrap_or_default();
            devices::unregister(&ports.devices(), &viewer, owner, &device_id).await?;
            let mut resp = http::respond(204, "application/json", String::new());
            *resp.body_mut() = Body::Empty;
            Ok(resp)
        }
        other => Err(ApiError::new(ErrorKind::MethodNotAllowed, format!("{other} is not allowed here"))),
    }
}
