//! Department-user notify and its cancel: Basic credentials, parse, `service::notify::department`
//! (or `service::cancel::department`), render the dialect's `errors[]`/`warnings[]` answer. The
//! rules (credentials first, membership, delay and schedule, callback, who may cancel what) are
//! in the services.

use base64::Engine;
use lambda_http::http::HeaderValue;
use lambda_http::{Body, Request, Response};
use shared::dialects::department::{self, ErrorEntry, NotifyResponse, WarningEntry, error, warning};
use shared::http::{self, header};
use shared::service::notify::{self, Delivery};
use shared::service::{cancel, history, idempotency};

use super::deadline_of;
use uuid::Uuid;

pub(super) fn answer(
    status: u16,
    request: Uuid,
    id: Option<Uuid>,
    errors: Vec<ErrorEntry>,
    warnings: Vec<WarningEntry>,
) -> (u16, String) {
    respond_with(status, NotifyResponse::new(request, id, errors, warnings))
}

pub(super) fn respond_with(status: u16, body: NotifyResponse) -> (u16, String) {
    (status, serde_json::to_string(&body).unwrap_or_default())
}

fn failure(status: u16, request: Uuid, code: &str, description: impl Into<String>) -> (u16, String) {
    answer(status, request, None, vec![error(code, description)], Vec::new())
}

/// A storage failure: logged with its cause, answered without it.
fn unavailable(request: Uuid, e: shared::StoreError) -> (u16, String) {
    let e = shared::ApiError::from(e);
    http::log_failure(&e, "department notify");
    answer(e.status(), request, None, vec![department::error_of(&e)], Vec::new())
}

/// `client id`, `secret` of an `Authorization: Basic` header.
fn basic(req: &Request) -> Option<(String, String)> {
    let value = header(req, "authorization")?;
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD.decode(encoded.trim()).ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (id, secret) = text.split_once(':')?;
    Some((id.to_string(), secret.to_string()))
}

pub async fn handle(deps: &super::Deps<'_>, req: &Request) -> Response<Body> {
    let request_id = deps.ids.new_id();
    let (status, body) = respond(deps, req, request_id).await;
    with_challenge(status, body)
}

/// `DELETE …/user/{userUUID}/notify/{notificationMessageUUID}`: the department's credentials,
/// then `service::cancel::department`.
pub async fn cancel(deps: &super::Deps<'_>, req: &Request) -> Response<Body> {
    let request_id = deps.ids.new_id();
    let (status, body) = respond_to_cancel(deps, req, request_id).await;
    with_challenge(status, body)
}

pub(super) fn with_challenge(status: u16, body: String) -> Response<Body> {
    let mut resp = http::respond(status, "application/json", body);
    if status == 401 {
        resp.headers_mut()
            .insert("www-authenticate", HeaderValue::from_static("Basic realm=\"notifications\""));
    }
    resp
}

/// The path's user and message (`userUUID`, `notificationMessageUUID`), or the error naming the
/// one that is not a UUID.
pub(super) fn message_of(req: &Request) -> Result<(Uuid, Uuid), shared::ApiError> {
    let uuid = |name: &str| {
        let text = http::path_param(req, name).unwrap_or_default();
        text.parse::<Uuid>()
            .map_err(|_| shared::ApiError::invalid(name, format!("{name} {text:?} is not a UUID")))
    };
    Ok((uuid("userUUID")?, uuid("notificationMessageUUID")?))
}

/// The department whose Basic credentials the request carries, or the answer refusing it.
pub(super) async fn authenticated(
    deps: &super::Deps<'_>,
    req: &Request,
    request_id: Uuid,
) -> Result<shared::model::Department, (u16, String)> {
    let Some((client_id, secret)) = basic(req) else {
        return Err(failure(
            401,
            request_id,
            "UNAUTHORIZED",
            "Authorization: Basic <client id:secret> is required",
        ));
    };
    let dept_id = http::path_param(req, "departmentUUID").and_then(|v| v.parse::<Uuid>().ok());
    match notify::department_by_credentials(&deps.notify, dept_id, &client_id, &secret).await {
        Ok(Some(department)) => Ok(department),
        Ok(None) => Err(failure(
            401,
            request_id,
            "UNAUTHORIZED",
            "client id or secret is not valid for this department",
        )),
        Err(e) => Err(unavailable(request_id, e)),
    }
}

async fn respond_to_cancel(deps: &super::Deps<'_>, req: &Request, request_id: Uuid) -> (u16, String) {
    let department = match authenticated(deps, req, request_id).await {
        Ok(department) => department,
        Err(refused) => return refused,
    };
    if let Err(e) = http::body(req) {
        return answer(e.status(), request_id, None, vec![department::error_of(&e)], Vec::new());
    }
    let outcome = match message_of(req) {
        Ok((user, id)) => cancel::department(&deps.cancel, &department, user, id).await,
        Err(e) => Err(e),
    };
    match outcome {
        Ok(done) => respond_with(
            200,
            NotifyResponse {
                cancellation: Some((&done).into()),
                ..NotifyResponse::new(request_id, Some(done.notification_id), Vec::new(), Vec::new())
            },
        ),
        Err(e) => {
            http::log_failure(&e, "department cancel");
            answer(e.status(), request_id, None, vec![department::error_of(&e)], Vec::new())
        }
    }
}

/// `GET …/user/{userUUID}/notify/{notificationMessageUUID}/log`: the department's credentials,
/// the message's UUIDs and the page (`sent_history::parse_log`), `service::history::department_log`,
/// the log (`sent_history::notification_log`) or the dialect's error answer.
pub async fn log(deps: &super::Deps<'_>, req: &Request) -> Response<Body> {
    let request_id = deps.ids.new_id();
    let (status, body) = respond_to_log(deps, req, request_id).await;
    with_challenge(status, body)
}

async fn respond_to_log(deps: &super::Deps<'_>, req: &Request, request_id: Uuid) -> (u16, String) {
    let department = match authenticated(deps, req, request_id).await {
        Ok(department) => department,
        Err(refused) => return refused,
    };
    let read = async {
        http::body(req)?;
        let (user, id) = message_of(req)?;
        let page = shared::dialects::sent_history::parse_log(|name| http::query(req, name))?;
        history::department_log(&deps.log, &department, user, id, &page).await
    };
    match read.await {
        Ok((n, found)) => {
            let body =
                shared::dialects::sent_history::notification_log("notificationMessageUUID", &n, &found);
            (200, body.to_string())
        }
        Err(e) => {
            http::log_failure(&e, "department message log");
            answer(e.status(), request_id, None, vec![department::error_of(&e)], Vec::new())
        }
    }
}

async fn respond(deps: &super::Deps<'_>, req: &Request, request_id: Uuid) -> (u16, String) {
    let department = match authenticated(deps, req, request_id).await {
        Ok(department) => department,
        Err(refused) => return refused,
    };
    let user_id = http::path_param(req, "userUUID").and_then(|v| v.parse::<Uuid>().ok());
    let user_id = match notify::department_member(&deps.notify, &department, user_id).await {
        Ok(Some(user)) => user,
        Ok(None) => {
            return failure(404, request_id, "USER_NOT_FOUND", "userUUID is not a user of this department");
        }
        Err(e) => return unavailable(request_id, e),
    };
    let bytes = match http::body(req) {
        Ok(b) => b,
        Err(e) => return answer(e.status(), request_id, None, vec![department::error_of(&e)], Vec::new()),
    };
    let scope = http::idempotency_scope(&format!("dept:{}", department.id), req);
    let key = super::idempotency_key(req);
    let outcome = idempotency::once(deps.claims, &scope, key, bytes, deps.clock.now(), || async {
        let parsed = match department::parse(bytes) {
            Ok(p) => p,
            Err(errors) => return Ok(answer(400, request_id, None, errors, Vec::new())),
        };
        let id = idempotency::notification_id(&scope, key, bytes, || deps.ids.new_id());
        let done = notify::department(
            &deps.notify,
            &department,
            user_id,
            parsed.message(),
            request_id,
            id,
            deadline_of(req),
        )
        .await?;
        let mut warnings = parsed.warnings;
        if done.sync_ignored {
            warnings.push(warning(
                "SYNC_IGNORED",
                "sendSynchronously has no effect on a delayed or scheduled message",
            ));
        }
        // FAILURE only for what will not be delivered: a caller resends on FAILURE.
        let errors = match done.delivery {
            Delivery::NotYet(why) => {
                warnings.push(warning("DELIVERY_PENDING", format!("not delivered yet: {why}")));
                Vec::new()
            }
            Delivery::Failed(why) => vec![error("DELIVERY_FAILED", why)],
            Delivery::Queued | Delivery::Scheduled(_) | Delivery::Delivered => Vec::new(),
        };
        Ok(answer(200, request_id, Some(done.id), errors, warnings))
    })
    .await;
    match outcome {
        Ok(o) => o.answer,
        Err(e) => {
            http::log_failure(&e, "department notify");
            answer(e.status(), request_id, None, vec![department::error_of(&e)], Vec::new())
        }
    }
}
