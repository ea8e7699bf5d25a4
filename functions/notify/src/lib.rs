//! Handler of the notify function: three dialects that notify named people.
//! `POST /communications/department/{departmentUUID}/user/{userUUID}/notify`,
//! `POST /desktop-assistant/notifications`, `POST /api/data/v9.2/SendAppNotification`, and the
//! cancels, delivery logs, retractions and corrections of two of them: `DELETE`, `GET …/log`,
//! `POST …/retract` and `POST …/correct` of `…/user/{userUUID}/notify/{notificationMessageUUID}`;
//! `DELETE`, `GET …/log`, `POST …/retract` and `PATCH` of
//! `/api/data/v9.2/appnotifications/{NotificationId}`.
//!
//! It takes [`Deps`], the ports it uses; `wiring.rs` builds them from the bag.

mod app;
mod app_cancel;
mod app_recall;
mod department;
mod department_recall;
mod desktop;
mod wiring;

use lambda_http::{Body, Request, Response};
use shared::ports::{Accounts, Clock, IdGenerator, IdempotencyStore};
use shared::routes::{Function, NotifyOp, Op};
use shared::service::notify::NotifyDeps;

pub use wiring::handle;

/// What the notify function uses.
pub struct Deps<'a> {
    pub accounts: &'a dyn Accounts,
    pub claims: &'a dyn IdempotencyStore,
    pub clock: &'a dyn Clock,
    pub ids: &'a dyn IdGenerator,
    pub notify: NotifyDeps<'a>,
    pub cancel: shared::service::cancel::CancelDeps<'a>,
    pub log: shared::service::history::NotificationLogDeps<'a>,
    pub recall: shared::service::recall::RecallDeps<'a>,
}

/// Each dialect answers in its own shape; a request no dialect of this function takes (a route
/// API Gateway sends elsewhere) is answered in the group-send envelope.
/// A request, in its own trace (`shared::trace`): its answer names it in `x-request-id`.
pub async fn handle_request(deps: &Deps<'_>, req: Request) -> Response<Body> {
    shared::http::traced(req, |req| serve(deps, req)).await
}

async fn serve(deps: &Deps<'_>, req: Request) -> Response<Body> {
    match shared::http::routed(req, Function::Notify) {
        Ok((route, req)) => match route.op {
            Op::Notify(op) => match op {
                NotifyOp::Desktop => desktop::handle(deps, &req).await,
                NotifyOp::App => app::handle(deps, &req).await,
                NotifyOp::Department => department::handle(deps, &req).await,
                NotifyOp::DepartmentCancel => department::cancel(deps, &req).await,
                NotifyOp::AppCancel => app_cancel::handle(deps, &req).await,
                NotifyOp::DepartmentLog => department::log(deps, &req).await,
                NotifyOp::AppLog => app_cancel::log(deps, &req).await,
                NotifyOp::DepartmentRetract => department_recall::retract(deps, &req).await,
                NotifyOp::DepartmentCorrect => department_recall::correct(deps, &req).await,
                NotifyOp::AppRetract => app_recall::retract(deps, &req).await,
                NotifyOp::AppCorrect => app_recall::correct(deps, &req).await,
            },
            _ => shared::http::error(&shared::http::not_served(route)),
        },
        Err(e) => shared::http::error(&e),
    }
}

/// The invocation's deadline, from the Lambda context (none in the local runner and tests that
/// give none).
fn deadline_of(req: &Request) -> shared::service::deadline::Deadline {
    use lambda_http::RequestExt;
    req.lambda_context_ref()
        .map(|c| shared::service::deadline::Deadline::from_epoch_ms(c.deadline))
        .unwrap_or(shared::service::deadline::Deadline::NONE)
}

/// The `Idempotency-Key` of a request, for any dialect.
fn idempotency_key(req: &Request) -> Option<&str> {
    shared::http::idempotency_key(req)
}
