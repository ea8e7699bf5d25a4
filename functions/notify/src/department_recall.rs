//! `POST …/user/{userUUID}/notify/{notificationMessageUUID}/retract` and `…/correct` (beyond the
//! spec): the department's Basic credentials, the message's UUIDs, the body
//! (`department::parse_retraction`, `department::parse_correction`),
//! `service::recall::retract` / `correct` (who may: the department that sent it, as its cancel),
//! the dialect's answer with its `retraction` or `correction`, or its `errors[]`.

use lambda_http::{Body, Request, Response};
use shared::dialects::department::{self, NotifyResponse};
use shared::http;
use shared::service::recall::{self, Recalled};
use uuid::Uuid;

use super::department::{answer, authenticated, message_of, respond_with, with_challenge};

pub async fn retract(deps: &super::Deps<'_>, req: &Request) -> Response<Body> {
    let request_id = deps.ids.new_id();
    let (status, body) = respond_to_retract(deps, req, request_id).await;
    with_challenge(status, body)
}

pub async fn correct(deps: &super::Deps<'_>, req: &Request) -> Response<Body> {
    let request_id = deps.ids.new_id();
    let (status, body) = respond_to_correct(deps, req, request_id).await;
    with_challenge(status, body)
}

/// A domain error as the dialect's answer, logged.
fn refused(e: &shared::ApiError, request_id: Uuid, what: &str) -> (u16, String) {
    http::log_failure(e, what);
    answer(e.status(), request_id, None, vec![department::error_of(e)], Vec::new())
}

async fn respond_to_retract(deps: &super::Deps<'_>, req: &Request, request_id: Uuid) -> (u16, String) {
    let department = match authenticated(deps, req, request_id).await {
        Ok(department) => department,
        Err(refused) => return refused,
    };
    let (bytes, (user, id)) = match http::body(req).and_then(|b| Ok((b, message_of(req)?))) {
        Ok(read) => read,
        Err(e) => return refused(&e, request_id, "department retract"),
    };
    if let Err(errors) = department::parse_retraction(bytes) {
        return answer(400, request_id, None, errors, Vec::new());
    }
    match recall::retract(&deps.recall, &Recalled::Department { department: &department, user, id }).await {
        Ok(done) => respond_with(
            200,
            NotifyResponse {
                retraction: Some((&done).into()),
                ..NotifyResponse::new(request_id, Some(done.notification_id), Vec::new(), Vec::new())
            },
        ),
        Err(e) => refused(&e, request_id, "department retract"),
    }
}

async fn respond_to_correct(deps: &super::Deps<'_>, req: &Request, request_id: Uuid) -> (u16, String) {
    let department = match authenticated(deps, req, request_id).await {
        Ok(department) => department,
        Err(refused) => return refused,
    };
    let (bytes, (user, id)) = match http::body(req).and_then(|b| Ok((b, message_of(req)?))) {
        Ok(read) => read,
        Err(e) => return refused(&e, request_id, "department correct"),
    };
    let correction = match department::parse_correction(bytes) {
        Ok(c) => c,
        Err(errors) => return answer(400, request_id, None, errors, Vec::new()),
    };
    let target = Recalled::Department { department: &department, user, id };
    match recall::correct(&deps.recall, &target, &correction).await {
        Ok(corrected) => respond_with(
            200,
            NotifyResponse {
                correction: Some((&corrected).into()),
                ..NotifyResponse::new(request_id, Some(corrected.id), Vec::new(), Vec::new())
            },
        ),
        Err(e) => refused(&e, request_id, "department correct"),
    }
}
