//! Handler of `POST /rest/notification/send`: authenticate, parse, run once per idempotency key,
//! answer in the version's shape. The rules are in `shared::service::send`. It takes [`Deps`],
//! the ports it uses; `wiring.rs` builds them from the bag.

mod cancel;
mod change;
mod correct;
mod retract;
mod webhook;
mod wiring;

use lambda_http::http::HeaderValue;
use lambda_http::{Body, Request, Response};
use shared::ApiError;
use shared::dialects::group_send;
use shared::error::ErrorKind;
use shared::http::{self, header};
use shared::ports::{Accounts, Clock, IdGenerator, IdempotencyStore};
use shared::routes::{Function, Op, SendOp};
use shared::service::{idempotency, send};

pub use wiring::handle;

pub const AUTH_TOKEN: &str = "x-nextinteract-authtoken";
pub const API_KEY: &str = "x-nextinteract-company-api-key";

/// What the send function uses.
pub struct Deps<'a> {
    pub accounts: &'a dyn Accounts,
    pub claims: &'a dyn IdempotencyStore,
    pub clock: &'a dyn Clock,
    pub ids: &'a dyn IdGenerator,
    pub send: send::SendDeps<'a>,
    pub cancel: shared::service::cancel::CancelDeps<'a>,
    pub change: shared::service::change::ChangeDeps<'a>,
    pub recall: shared::service::recall::RecallDeps<'a>,
    pub webhooks: shared::service::webhooks::WebhookAdminDeps<'a>,
}

/// A request, in its own trace (`shared::trace`): its answer names it in `x-request-id`.
pub async fn handle_request(deps: &Deps<'_>, req: Request) -> Response<Body> {
    http::traced(req, |req| serve(deps, req)).await
}

async fn serve(deps: &Deps<'_>, req: Request) -> Response<Body> {
    let result = match http::routed(req, Function::Send) {
        Ok((route, req)) => match route.op {
            Op::Send(op) => match op {
                SendOp::GroupSend => try_handle(deps, &req).await,
                SendOp::Cancel => cancel::handle(deps, &req).await,
                SendOp::Change => change::handle(deps, &req).await,
                SendOp::Retract => retract::handle(deps, &req).await,
                SendOp::Correct => correct::handle(deps, &req).await,
                SendOp::WebhookShow => webhook::show(deps, &req).await,
                SendOp::WebhookPut => webhook::put(deps, &req).await,
                SendOp::WebhookDelete => webhook::delete(deps, &req).await,
                SendOp::WebhookRotate => webhook::rotate(deps, &req).await,
                SendOp::WebhookEvent => webhook::event(deps, &req).await,
                SendOp::WebhookReplay => webhook::replay(deps, &req).await,
            },
            _ => Err(http::not_served(route)),
        },
        Err(e) => Err(e),
    };
    http::answer(result, "send")
}

/// The caller of a cancel, a change, a retraction or a correction: the group send's two credentials, and a role that sends.
async fn sender(deps: &Deps<'_>, req: &Request, what: &str) -> Result<shared::model::User, ApiError> {
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
            format!("{what} notifications needs SUPER_USER, COMPANY_ADMIN or EVENT_PUSH_NOTIFICATION_ROLE"),
        ));
    }
    Ok(user)
}

async fn try_handle(deps: &Deps<'_>, req: &Request) -> Result<Response<Body>, ApiError> {
    let now = deps.clock.now();
    let body = http::body(req)?;
    let (user, company) = shared::auth::user_and_company(
        deps.accounts,
        (header(req, AUTH_TOKEN), AUTH_TOKEN),
        (header(req, API_KEY), API_KEY),
        now,
    )
    .await?;
    if !send::may_send_anything(&user) {
        return Err(ApiError::new(
            ErrorKind::InsufficientPermissions,
            "sending notifications needs SUPER_USER, COMPANY_ADMIN or EVENT_PUSH_NOTIFICATION_ROLE",
        ));
    }
    let key = http::idempotency_key(req);
    let scope = http::idempotency_scope(&user.id.to_string(), req);
    let outcome = idempotency::once(deps.claims, &scope, key, body, now, || async {
        let request = group_send::parse(body)?;
        let version = request.version;
        let id = match key {
            Some(_) => {
                send::SendId::FromKey(idempotency::notification_id(&scope, key, body, || deps.ids.new_id()))
            }
            None => send::SendId::Fresh(deps.ids.new_id()),
        };
        let sent = send::send(&deps.send, &user, &company, request, id, now).await?;
        // Version 2 answers with the plain number of recipients; 3 and 4 with the schedule id.
        let answer = match (version, sent.recipients) {
            (2, Some(n)) => n.to_string(),
            _ => serde_json::json!({ "notificationScheduleId": sent.schedule_id }).to_string(),
        };
        Ok((200, answer))
    })
    .await?;
    let mut resp = http::respond(outcome.answer.0, "application/json", outcome.answer.1);
    if outcome.replayed {
        resp.headers_mut().insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    Ok(resp)
}

#[cfg(test)]
mod tests;
