//! Desktop-assistant notify: authenticate, parse, `service::notify::desktop`, render the
//! dialect's `responseCode` object. The rules (role, switch, recipients) are in the service.

use lambda_http::{Body, Request, Response};
use shared::ApiError;
use shared::auth;
use shared::dialects::desktop::{self, DesktopResponse};
use shared::http;
use shared::service::{idempotency, notify};

fn reply(status: u16, message: impl Into<String>, metadata: Option<serde_json::Value>) -> (u16, String) {
    let body = DesktopResponse { response_code: status, message: message.into(), metadata };
    (status, serde_json::to_string(&body).unwrap_or_default())
}

pub async fn handle(deps: &super::Deps<'_>, req: &Request) -> Response<Body> {
    let (status, body) = match respond(deps, req).await {
        Ok(answer) => answer,
        Err(e) => {
            http::log_failure(&e, "desktop-assistant notify");
            let body = desktop::error_response(&e);
            (body.response_code, serde_json::to_string(&body).unwrap_or_default())
        }
    };
    http::respond(status, "application/json", body)
}

async fn respond(deps: &super::Deps<'_>, req: &Request) -> Result<(u16, String), ApiError> {
    let now = deps.clock.now();
    let token = auth::bearer(http::header(req, "authorization"));
    let user = auth::user_by_token(deps.accounts, token, "Authorization", now).await?;
    notify::desktop_sender(&deps.notify, &user).await?;
    let body = http::body(req)?;
    let key = super::idempotency_key(req);
    let scope = http::idempotency_scope(&user.id.to_string(), req);
    let outcome = idempotency::once(deps.claims, &scope, key, body, now, || async {
        let parsed = desktop::parse(body)?;
        let id = idempotency::notification_id(&scope, key, body, || deps.ids.new_id());
        let count = notify::desktop(&deps.notify, &user, &parsed, id).await?;
        Ok(reply(
            200,
            format!("Notification queued for {count} recipient(s)"),
            Some(serde_json::json!({ "notification_id": id })),
        ))
    })
    .await?;
    Ok(outcome.answer)
}
