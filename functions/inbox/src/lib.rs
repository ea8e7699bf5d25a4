//! Handler of the inbox function: what reaches a person. The notification center
//! (`/users/{userId}/notifications`), the devices they register for push
//! (`/users/{userId}/devices`), their email's status (`/users/{userId}/email`), and the
//! unsubscribe links of emails (`/unsubscribe`).
//!
//! It takes [`Deps`], the ports it uses; `wiring.rs` builds them from the bag.

mod center;
mod devices;
mod email;
mod unsubscribe;
mod web;
mod wiring;

use lambda_http::{Body, Request, Response};
use shared::ApiError;
use shared::http;
use shared::model::User;
use shared::ports::{Accounts, Clock, EmailPreferences, IdempotencyStore};
use shared::routes::{Function, InboxOp, Op};
use shared::service::devices::{DeviceDeps, UnsubscribeDeps};
use shared::service::inbox::{CenterMarkDeps, CenterReadDeps};
use shared::service::realtime::TicketDeps;
use uuid::Uuid;

pub use center::NEXT_TOKEN_HEADER;
pub use wiring::handle;

/// What the inbox function uses.
pub struct Deps<'a> {
    pub accounts: &'a dyn Accounts,
    pub email_prefs: &'a dyn EmailPreferences,
    pub claims: &'a dyn IdempotencyStore,
    pub clock: &'a dyn Clock,
    pub center_reads: CenterReadDeps<'a>,
    pub center_marks: CenterMarkDeps<'a>,
    pub tickets: TicketDeps<'a>,
    pub devices: DeviceDeps<'a>,
    pub unsubscribes: UnsubscribeDeps<'a>,
    /// The stack's WebSocket API, for the web inbox's page (none on the local runner).
    pub realtime_url: Option<&'a str>,
}

/// A request, in its own trace (`shared::trace`): its answer names it in `x-request-id`.
pub async fn handle_request(deps: &Deps<'_>, req: Request) -> Response<Body> {
    http::traced(req, |req| serve(deps, req)).await
}

async fn serve(deps: &Deps<'_>, req: Request) -> Response<Body> {
    // Lambda refuses an invocation over its payload cap whatever the route: so do we, first.
    if let Err(e) = http::body(&req) {
        return http::answer(Err(e), "inbox");
    }
    let (route, req) = match http::routed(req, Function::Inbox) {
        Ok(routed) => routed,
        Err(e) => return http::answer(Err(e), "inbox"),
    };
    let Op::Inbox(op) = route.op else {
        return http::answer(Err(http::not_served(route)), "inbox");
    };
    let result = match op {
        InboxOp::WebAsset => match web::page(route.path, deps.realtime_url) {
            Some(page) => return page,
            None => Err(ApiError::new(shared::ErrorKind::NotFound, format!("no page at {}", route.path))),
        },
        InboxOp::UnsubscribePage | InboxOp::Unsubscribe => return unsubscribe::handle(deps, &req, op).await,
        InboxOp::RealtimeTicket => ticket(deps, &req).await,
        InboxOp::ListDevices | InboxOp::RegisterDevice | InboxOp::RemoveDevice => {
            devices::handle(deps, &req, op).await
        }
        InboxOp::EmailStatus => email::handle(deps, &req).await,
        InboxOp::CenterList | InboxOp::CenterCount | InboxOp::MarkAll | InboxOp::Mark => {
            center::handle(deps, &req, route.path, op).await
        }
    };
    http::answer(result, "inbox")
}

/// `POST /users/{userId}/realtime-ticket`: a single-use ticket, valid for a minute, to open the
/// person's realtime connection with (see `shared::service::realtime`).
async fn ticket(deps: &Deps<'_>, req: &Request) -> Result<Response<Body>, ApiError> {
    let viewer = viewer(deps, req).await?;
    let owner = user_param(req, &viewer)?;
    let ticket = shared::service::realtime::issue(&deps.tickets, &viewer, owner)?;
    let mut resp = http::json(
        201,
        &serde_json::json!({ "ticket": ticket, "expiresIn": shared::service::realtime::TICKET_SECONDS }),
    );
    resp.headers_mut().insert("cache-control", lambda_http::http::HeaderValue::from_static("no-store"));
    Ok(resp)
}

/// `{userId}`: a person's id, or `me` for the person whose token the request carries (a client
/// that signs in with a token does not need to know its id).
fn user_param(req: &Request, viewer: &User) -> Result<Uuid, ApiError> {
    match http::path_param(req, "userId").as_deref() {
        Some("me") => Ok(viewer.id),
        _ => uuid_param(req, "userId"),
    }
}

fn uuid_param(req: &Request, name: &str) -> Result<Uuid, ApiError> {
    let v = http::path_param(req, name).unwrap_or_default();
    v.parse().map_err(|_| ApiError::invalid(name, format!("{name} {v:?} is not a UUID")))
}

/// The person whose bearer token the request carries.
async fn viewer(deps: &Deps<'_>, req: &Request) -> Result<User, ApiError> {
    let token = shared::auth::bearer(http::header(req, "authorization"));
    shared::auth::user_by_token(deps.accounts, token, "Authorization", deps.clock.now()).await
}
