//! Handler of `GET /rest/notification/sent`: a JSON array of the spec's records, newest first;
//! more pages through `X-Next-Token` / `nextToken`; and of a send's delivery log (`log.rs`). The rules are in `shared::service::history`.
//! It takes [`Deps`], the ports it uses; `wiring.rs` builds them from the bag.

mod log;
mod wiring;

use lambda_http::http::HeaderValue;
use lambda_http::{Body, Request, Response};
use shared::ApiError;
use shared::dialects::sent_history::{self, SentRecord};
use shared::http::{self, header};
use shared::ports::{Accounts, Clock};
use shared::routes::{Function, Op, SentHistoryOp};
use shared::service::history::{self, HistoryDeps};

pub use wiring::handle;

pub const AUTH_TOKEN: &str = "x-nextinteract-authtoken";
pub const NEXT_TOKEN_HEADER: &str = "x-next-token";

/// What the sent-history function uses.
pub struct Deps<'a> {
    pub accounts: &'a dyn Accounts,
    pub clock: &'a dyn Clock,
    pub history: HistoryDeps<'a>,
}

/// A request, in its own trace (`shared::trace`): its answer names it in `x-request-id`.
pub async fn handle_request(deps: &Deps<'_>, req: Request) -> Response<Body> {
    http::traced(req, |req| serve(deps, req)).await
}

async fn serve(deps: &Deps<'_>, req: Request) -> Response<Body> {
    let result = match http::routed(req, Function::SentHistory) {
        Ok((route, req)) => match route.op {
            Op::SentHistory(op) => match op {
                SentHistoryOp::List => try_handle(deps, &req).await,
                SentHistoryOp::Log => log::handle(deps, &req).await,
            },
            _ => Err(http::not_served(route)),
        },
        Err(e) => Err(e),
    };
    http::answer(result, "sent history")
}

async fn try_handle(deps: &Deps<'_>, req: &Request) -> Result<Response<Body>, ApiError> {
    // Lambda refuses an invocation over its payload cap whatever the route: so do we, first.
    http::body(req)?;
    let user =
        shared::auth::user_by_token(deps.accounts, header(req, AUTH_TOKEN), AUTH_TOKEN, deps.clock.now())
            .await?;
    let query = sent_history::parse(|name| http::query(req, name))?;
    let page = history::list(&deps.history, &user, &query, |n| {
        serde_json::to_vec(&SentRecord::from(n)).map(|v| v.len()).unwrap_or_default()
    })
    .await?;
    let records: Vec<SentRecord> = page.items.iter().map(SentRecord::from).collect();
    let mut resp = http::json(200, &records);
    if let Some(token) = page.next.as_deref().and_then(|t| HeaderValue::from_str(t).ok()) {
        resp.headers_mut().insert(NEXT_TOKEN_HEADER, token);
    }
    Ok(resp)
}

#[cfg(test)]
mod tests;
