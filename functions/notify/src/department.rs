//! Department-user notify: Basic auth with the department's client id and secret.

use base64::Engine;
use lambda_http::http::HeaderValue;
use lambda_http::{Body, Request, Response};
use shared::credentials;
use shared::dialects::department::{self, ErrorEntry, NotifyResponse, WarningEntry, error, warning};
use shared::http::{self, header};
use shared::model::*;
use shared::ports::Ports;
use shared::service::idempotency;
use shared::service::notify::{self, Delivery};

use super::deadline_of;
use uuid::Uuid;

fn answer(
    status: u16,
    request: Uuid,
    id: Option<Uuid>,
    errors: Vec<ErrorEntry>,
    warnings: Vec<WarningEntry>,
) -> (u16, String) {
    let body = NotifyResponse {
        notification_message_uuid: id.map(|i| i.to_string()),
        status: if errors.is_empty() { "SUCCESS" } else { "FAILURE" },
        request_uuid: request.to_string(),
        errors,
        warnings,
    };
    (status, serde_json::to_string(&body).unwrap_or_default())
}

fn failure(status: u16, request: Uuid, code: &str, description: impl Into<String>) -> (u16, String) {
    answer(status, request, None, vec![error(code, description)], Vec::new())
}

/// A storage failure: logged with its cause, answered without it.
fn unavailable(request: Uuid, e: shared::StoreError) -> (u16, String) {
    let e = shared::ApiError::from(e);
    http::log_failure(&e, "department notify");
    failure(e.status(), request, "SERVICE_UNAVAILABLE", "the service is unavailable; try again shortly")
}

/// What an unknown department's secret is compared with (a digest no secret has), so that it
/// costs what a known one does.
const UNKNOWN_DEPARTMENT_SECRET: &str = "0000000000000000000000000000000000000000000000000000000000000000";

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

pub async fn handle(ports: &Ports, req: &Request) -> Response<Body> {
    let request_id = ports.ids.new_id();
    let (status, body) = respond(ports, req, request_id).await;
    let mut resp = http::respond(status, "application/json", body);
    if status == 401 {
        resp.headers_mut()
            .insert("www-authenticate", HeaderValue::from_static("Basic realm=\"notifications\""));
    }
    resp
}

async fn respond(ports: &Ports, req: &Request, request_id: Uuid) -> (u16, String) {
    let d = ports.directory.as_ref();
    let dept_id = http::path_param(req, "departmentUUID").and_then(|v| v.parse::<Uuid>().ok());
    let user_id = http::path_param(req, "userUUID").and_then(|v| v.parse::<Uuid>().ok());
    let Some((client_id, secret)) = basic(req) else {
        return failure(
            401,
            request_id,
            "UNAUTHORIZED",
            "Authorization: Basic <client id:secret> is required",
        );
    };
    // Credentials first: an unknown department answers as wrong credentials do (401, the same
    // words, the same comparisons), so that nobody learns which department ids exist.
    let department = match dept_id {
        Some(id) => match d.department(id).await {
            Ok(found) => found,
            Err(e) => return unavailable(request_id, e),
        },
        None => None,
    };
    let (known_id, known_secret) = match &department {
        Some(dep) => (dep.client_id.as_str(), dep.secret_sha256.as_str()),
        None => ("", UNKNOWN_DEPARTMENT_SECRET),
    };
    // Both compared in constant time; one message for either mismatch.
    let id_ok = credentials::matches(&credentials::digest(&client_id), &credentials::digest(known_id));
    let secret_ok = credentials::verify(&secret, known_secret);
    let (Some(dept_id), Some(department), true) = (dept_id, department, id_ok & secret_ok) else {
        return failure(
            401,
            request_id,
            "UNAUTHORIZED",
            "client id or secret is not valid for this department",
        );
    };
    let Some(user_id) = user_id else {
        return failure(404, request_id, "USER_NOT_FOUND", "userUUID is not a user of this department");
    };
    match d.department_has_member(dept_id, user_id).await {
        Ok(true) => {}
        Ok(false) => {
            return failure(404, request_id, "USER_NOT_FOUND", "userUUID is not a user of this department");
        }
        Err(e) => return unavailable(request_id, e),
    }
    let bytes = match http::body(req) {
        Ok(b) => b,
        Err(e) => return failure(e.status(), request_id, "PAYLOAD_TOO_LARGE", e.message),
    };
    let scope = http::idempotency_scope(&format!("dept:{dept_id}"), req);
    let now = ports.clock.now();
    let outcome = idempotency::once(
        ports.notifications.as_ref(),
        &scope,
        super::idempotency_key(req),
        bytes,
        now,
        || async {
            let parsed = match department::parse(bytes) {
                Ok(p) => p,
                Err(errors) => return Ok(answer(400, request_id, None, errors, Vec::new())),
            };
            let content = Content {
                title: parsed.subject.clone().unwrap_or_else(|| format!("Message from {}", department.name)),
                body: parsed.body.clone(),
                data: parsed.data.clone(),
                source: Some(department.name.clone()),
                ..Content::default()
            };
            let created_by: String = department.client_id.chars().take(15).collect();
            let id = idempotency::notification_id(&scope, super::idempotency_key(req), bytes, || {
                ports.ids.new_id()
            });
            let mut n = Notification::new(
                id,
                0,
                department.company_id,
                Origin::DepartmentNotify,
                BroadcastType::UN,
                Audience::Users { user_ids: vec![user_id] },
                content,
                created_by,
                now,
            );
            n.description = format!("department {}", department.name);
            n.due_at = match parsed.scheduled_on {
                Some(at) => at.max(now),
                None => now + chrono::Duration::seconds(parsed.delay_seconds as i64),
            };
            n.callback = parsed.callback_url.map(|url| Callback {
                url,
                metadata: parsed.callback_metadata,
                department_id: dept_id,
                user_id,
                request_id,
            });
            let mut warnings = parsed.warnings;
            if parsed.send_synchronously && n.due_at > now {
                warnings.push(warning(
                    "SYNC_IGNORED",
                    "sendSynchronously has no effect on a delayed or scheduled message",
                ));
            }
            let id = n.id;
            let delivery = notify::accept(ports, n, parsed.send_synchronously, deadline_of(req)).await?;
            // FAILURE only for what will not be delivered: a caller resends on FAILURE.
            let errors = match delivery {
                Delivery::NotYet(why) => {
                    warnings.push(warning("DELIVERY_PENDING", format!("not delivered yet: {why}")));
                    Vec::new()
                }
                Delivery::Failed(why) => vec![error("DELIVERY_FAILED", why)],
                Delivery::Queued | Delivery::Scheduled(_) | Delivery::Delivered => Vec::new(),
            };
            Ok(answer(200, request_id, Some(id), errors, warnings))
        },
    )
    .await;
    match outcome {
        Ok(o) => o.answer,
        Err(e) => {
            http::log_failure(&e, "department notify");
            failure(
                e.status(),
                request_id,
                e.kind.exception().trim_start_matches("WS").trim_end_matches("Exception"),
                e.message,
            )
        }
    }
}
