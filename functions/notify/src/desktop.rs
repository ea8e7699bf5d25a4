//! Desktop-assistant notify: a user with `sn_dex_desktop.admin` or `admin`, behind the tenant's
//! `enable_push_notification` switch.

use lambda_http::{Body, Request, Response};
use shared::ApiError;
use shared::auth;
use shared::dialects::desktop::{self, DesktopResponse};
use shared::error::ErrorKind;
use shared::http;
use shared::model::*;
use shared::ports::Ports;
use shared::service::deadline::Deadline;
use shared::service::{idempotency, notify};
use uuid::Uuid;

fn reply(status: u16, message: impl Into<String>, metadata: Option<serde_json::Value>) -> (u16, String) {
    let body = DesktopResponse { response_code: status, message: message.into(), metadata };
    (status, serde_json::to_string(&body).unwrap_or_default())
}

pub async fn handle(ports: &Ports, req: &Request) -> Response<Body> {
    let (status, body) = match respond(ports, req).await {
        Ok(answer) => answer,
        Err(e) => {
            http::log_failure(&e, "desktop-assistant notify");
            let message = match &e.parameter {
                Some(p) if !e.message.contains(p.as_str()) => format!("{p}: {}", e.message),
                _ => e.message.clone(),
            };
            reply(e.status(), message, None)
        }
    };
    http::respond(status, "application/json", body)
}

async fn respond(ports: &Ports, req: &Request) -> Result<(u16, String), ApiError> {
    let now = ports.clock.now();
    let token = auth::bearer(http::header(req, "authorization"));
    let user = auth::user_by_token(ports.directory.as_ref(), token, "Authorization", now).await?;
    if !(user.has(Role::DesktopAdmin) || user.has(Role::Admin)) {
        return Err(ApiError::new(
            ErrorKind::InsufficientPermissions,
            "role sn_dex_desktop.admin or admin is required",
        ));
    }
    let company = ports
        .directory
        .company(user.company_id)
        .await?
        .ok_or_else(|| ApiError::new(ErrorKind::InsufficientPermissions, "your company is not known"))?;
    if !company.desktop_push_enabled {
        // The spec: with the switch off the call fails at once and nothing is created.
        return Err(ApiError::new(
            ErrorKind::FeatureDisabled,
            "sn_dex_desktop.enable_push_notification is false: desktop assistant notifications are disabled",
        ));
    }
    let body = http::body(req)?;
    let key = super::idempotency_key(req);
    let scope = http::idempotency_scope(&user.id.to_string(), req);
    let outcome = idempotency::once(ports.notifications.as_ref(), &scope, key, body, now, || async {
        let parsed = desktop::parse(body)?;
        let mut user_ids = Vec::with_capacity(parsed.recipients.len());
        for sys_id in &parsed.recipients {
            let id = Uuid::parse_str(sys_id)
                .map_err(|_| ApiError::invalid("recipient_list", format!("{sys_id} is not a sys_id")))?;
            match ports.directory.user(id).await? {
                Some(u) if u.company_id == user.company_id => user_ids.push(u.id),
                _ => {
                    return Err(ApiError::invalid(
                        "recipient_list",
                        format!("{sys_id} is not a user of this instance"),
                    ));
                }
            }
        }
        let data = serde_json::json!({
            "referrer_table": parsed.referrer_table,
            "referrer_id": parsed.referrer_id,
            "source": parsed.source,
        });
        let content = Content {
            title: parsed.title.clone().unwrap_or_else(|| "Desktop Assistant".to_string()),
            body: parsed.message.clone(),
            data: Some(data.to_string()),
            source: Some(parsed.source.clone()),
            ..Content::default()
        };
        let count = user_ids.len();
        let id =
            idempotency::notification_id(&scope, super::idempotency_key(req), body, || ports.ids.new_id());
        let mut n = Notification::new(
            id,
            0,
            user.company_id,
            Origin::DesktopAssistant,
            BroadcastType::UN,
            Audience::Users { user_ids },
            content,
            user.number.to_string(),
            now,
        );
        n.description = format!("desktop assistant ({})", parsed.source);
        let id = n.id;
        notify::accept(ports, n, false, Deadline::NONE).await?;
        Ok(reply(
            200,
            format!("Notification queued for {count} recipient(s)"),
            Some(serde_json::json!({ "notification_id": id })),
        ))
    })
    .await?;
    Ok(outcome.answer)
}
