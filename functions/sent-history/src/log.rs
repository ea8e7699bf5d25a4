//! `GET /rest/notification/sent/{notificationScheduleId}/log`: the auth token, the schedule id and
//! the page (`sent_history::parse_log`), `service::history::log`, the answer with its token also
//! in `X-Next-Token`.

use lambda_http::http::HeaderValue;
use lambda_http::{Body, Request, Response};
use shared::ApiError;
use shared::dialects::{group_send, sent_history};
use shared::http::{self, header};
use shared::service::history;

use super::{AUTH_TOKEN, Deps, NEXT_TOKEN_HEADER};

pub async fn handle(deps: &Deps<'_>, req: &Request) -> Result<Response<Body>, ApiError> {
    http::body(req)?;
    let user =
        shared::auth::user_by_token(deps.accounts, header(req, AUTH_TOKEN), AUTH_TOKEN, deps.clock.now())
            .await?;
    let id = group_send::schedule_id(http::path_param(req, "notificationScheduleId").as_deref())?;
    let page = sent_history::parse_log(|name| http::query(req, name))?;
    let (n, found) = history::log(&deps.history, &user, id, &page).await?;
    let mut resp = http::json(200, &sent_history::LogAnswer::new(&n, &found));
    if let Some(token) = found.next.as_deref().and_then(|t| HeaderValue::from_str(t).ok()) {
        resp.headers_mut().insert(NEXT_TOKEN_HEADER, token);
    }
    Ok(resp)
}
