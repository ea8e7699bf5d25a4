//! Status webhooks: a tenant is told what became of its notifications (`notification.accepted`,
//! `.delivered`, `.failed`, `.cancelled`, `.retracted`) and of their emails (`email.bounced`,
//! `email.complained`), signed with the Standard Webhooks scheme, at least once.
//!
//! - **Owed, not pushed.** A notification's events follow from its state (`owed`): whoever
//!   handles it after a change (its acceptance, its last chunk, its give-up, a cancel or a
//!   retraction, and each later handling: a fan-out job, a redelivered chunk) settles them
//!   (`settle`). An event's id is derived from the fact (`HookEvent::id_for`), so settling twice
//!   records it once; one recorded but not known to be queued is queued by the next settle.
//!   Only notifications accepted while their tenant had an endpoint owe events
//!   (`Notification::hooks`): the others never look at the endpoint.
//! - **A queue between delivery and the receiver.** An emission records the event and queues
//!   one try; deliver's webhook source (its own queue, its own concurrency) posts it. A slow or
//!   failing receiver holds only that queue: never a chunk, an email or a request.
//! - **Capped backoff over hours.** A failed try is tried again after 5 s, 5 min, 30 min, 2 h,
//!   5 h, 10 h and 10 h (`RETRY_AFTER`, the schedule Standard Webhooks suggests; about 28 hours,
//!   8 tries); a wait longer than SQS's 15-minute delay is made of hops of the same try. Every
//!   try signs again with a fresh timestamp and the endpoint's secrets at that moment.
//! - **The callback's outbound rules**: the same HTTP client (no redirects, no private or
//!   metadata addresses, 5 s), checked at each try (a name can resolve anywhere later); the
//!   URL's shape (https) is checked when it is saved.
//! - **Rotation.** A new secret signs beside the one it replaced for `ROTATION_OVERLAP_HOURS`
//!   (`webhook-signature` carries one `v1,` signature per secret), so a receiver can switch
//!   without losing an event.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, Duration, Utc};
use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::deadline::Deadline;
use crate::error::{ApiError, DeliverError, ErrorKind, StoreError, StoreResult};
use crate::model::*;
use crate::ports::{Clock, PostError, Queue, Webhook, WebhookStore};

/// What emitting events uses: the endpoint and event records, the webhook queue, the clock.
pub struct EmitDeps<'a> {
    pub(crate) hooks: &'a dyn WebhookStore,
    pub(crate) queue: &'a dyn Queue,
    pub(crate) clock: &'a dyn Clock,
}

/// What a try of a delivery uses.
pub struct HookDeliveryDeps<'a> {
    pub(crate) hooks: &'a dyn WebhookStore,
    pub(crate) queue: &'a dyn Queue,
    pub(crate) webhook: &'a dyn Webhook,
    pub(crate) clock: &'a dyn Clock,
}

/// Seconds before each try after the first: Standard Webhooks' suggested schedule.
pub const RETRY_AFTER: [u64; 7] = [5, 5 * 60, 30 * 60, 2 * 3600, 5 * 3600, 10 * 3600, 10 * 3600];
/// Tries of one series (a replay starts another).
pub const MAX_TRIES: u32 = RETRY_AFTER.len() as u32 + 1;
/// How long a replaced secret still signs.
pub const ROTATION_OVERLAP_HOURS: i64 = 24;
/// SQS's longest delay: a longer wait is several hops.
pub const MAX_HOP_SECONDS: u64 = 900;
/// No try starts this close to the invocation's deadline: a try takes up to 10 s (the outbound
/// client's 5 s for the answer and 5 s for its body), recording it a moment more.
pub const HOOK_MARGIN: std::time::Duration = std::time::Duration::from_secs(13);
/// How long a try's claim holds its event (`HookEvents::claim_try`): longer than a try and its
/// record, shorter than the queue's visibility timeout (360 s), after which SQS hands out again
/// the message of a try whose invocation died.
pub const TRY_LEASE_SECONDS: i64 = 60;

pub const ID_HEADER: &str = "webhook-id";
pub const TIMESTAMP_HEADER: &str = "webhook-timestamp";
pub const SIGNATURE_HEADER: &str = "webhook-signature";

// ---------------------------------------------------------------------------------------------
// Signing (Standard Webhooks)

/// `v1,{base64 HMAC-SHA256(key, "{id}.{timestamp}.{body}")}`, the key being the base64 after
/// `whsec_`.
pub fn sign(secret: &str, id: &str, timestamp: i64, body: &str) -> String {
    let encoded = secret.strip_prefix("whsec_").unwrap_or(secret);
    let key = STANDARD.decode(encoded).unwrap_or_else(|_| encoded.as_bytes().to_vec());
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&key).expect("HMAC takes keys of any length");
    mac.update(format!("{id}.{timestamp}.{body}").as_bytes());
    format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
}

/// The `webhook-signature` header: one signature per secret, space-separated.
pub fn signature_header(secrets: &[&str], id: &str, timestamp: i64, body: &str) -> String {
    secrets.iter().map(|s| sign(s, id, timestamp, body)).collect::<Vec<_>>().join(" ")
}

/// A fresh secret: `whsec_` and the base64 of 32 random bytes.
pub fn new_secret() -> String {
    let key: [u8; 32] = rand::random();
    format!("whsec_{}", STANDARD.encode(key))
}

// ---------------------------------------------------------------------------------------------
// Emission

/// The events a notification's state owes.
pub fn owed(n: &Notification) -> Vec<HookEventType> {
    let mut owed = vec![HookEventType::Accepted];
    match n.status {
        Status::Delivered => owed.push(HookEventType::Delivered),
        Status::Failed => owed.push(HookEventType::Failed),
        _ => {}
    }
    if n.cancelled.is_some() {
        owed.push(HookEventType::Cancelled);
    }
    if n.retracted.is_some() {
        owed.push(HookEventType::Retracted);
    }
    owed
}

fn origin_name(origin: Origin) -> &'static str {
    match origin {
        Origin::GroupSend => "groupSend",
        Origin::DepartmentNotify => "departmentNotify",
        Origin::DesktopAssistant => "desktopAssistant",
        Origin::AppNotification => "appNotification",
    }
}

/// What an event about `n` says: the notification as its sender names it, and the fact.
pub fn notification_data(n: &Notification, t: HookEventType) -> serde_json::Value {
    // The fact's own status: an acceptance settled late (with the delivery) still says so.
    let status = match t {
        HookEventType::Accepted => "accepted",
        _ => n.status.word(),
    };
    let mut data = serde_json::json!({
        "notificationId": n.id,
        "notificationScheduleId": n.schedule_id,
        "origin": origin_name(n.origin),
        "status": status,
        "createdAt": n.created_at,
        "createdBy": n.created_by,
    });
    let fact = match t {
        HookEventType::Delivered => {
            serde_json::json!({ "recipients": n.recipients, "delivered": n.delivered })
        }
        HookEventType::Failed => {
            serde_json::json!({ "delivered": n.delivered, "reason": n.failure.clone().unwrap_or_default() })
        }
        HookEventType::Cancelled => serde_json::json!({
            "cancelledAt": n.cancelled.as_ref().map(|c| c.at),
            "cancelledBy": n.cancelled.as_ref().map(|c| c.by.clone()),
            "delivered": n.delivered,
        }),
        HookEventType::Retracted => serde_json::json!({
            "retractedAt": n.retracted.as_ref().map(|c| c.at),
            "retractedBy": n.retracted.as_ref().map(|c| c.by.clone()),
        }),
        _ => serde_json::json!({}),
    };
    if let (Some(data), serde_json::Value::Object(fact)) = (data.as_object_mut(), fact) {
        data.extend(fact);
    }
    data
}

/// Settles the events `n` owes (none unless it was accepted with an endpoint): each recorded
/// once and queued once it is recorded. Failures are logged and left to the next settle
/// (`false`), never failing what called it.
pub async fn settle(deps: &EmitDeps<'_>, n: &Notification) -> bool {
    if !n.hooks {
        return true;
    }
    // Boxed: it is awaited deep inside delivery's futures, which it would otherwise all grow.
    // In the notification's trace: its events' tries carry it.
    let trace = crate::trace::Trace::notification(n.id, n.origin_request.as_deref());
    crate::trace::within(trace, Box::pin(settle_owed(deps, n))).await
}

async fn settle_owed(deps: &EmitDeps<'_>, n: &Notification) -> bool {
    let subject = n.id.to_string();
    let events =
        owed(n).into_iter().map(|t| (t, subject.clone(), notification_data(n, t), fact_time(n, t))).collect();
    match emit(deps, n.company_id, events).await {
        Ok(()) => true,
        Err(e) => {
            tracing::warn!(notification = %n.id, error = %e, "status events not settled; the next handling settles them");
            false
        }
    }
}

/// When the fact happened, where the notification says (its acceptance, its cancel, its
/// retraction); the emission's time for what it does not date (its delivery, its give-up).
fn fact_time(n: &Notification, t: HookEventType) -> Option<DateTime<Utc>> {
    match t {
        HookEventType::Accepted => Some(n.created_at),
        HookEventType::Cancelled => n.cancelled.as_ref().map(|c| c.at),
        HookEventType::Retracted => n.retracted.as_ref().map(|c| c.at),
        _ => None,
    }
}

/// An event to emit: its type, what it is about (its id's subject), its data, when it happened
/// (`None`: now).
pub type Emission = (HookEventType, String, serde_json::Value, Option<DateTime<Utc>>);

/// Records and queues `events` of `company`, those its endpoint wants.
pub async fn emit(deps: &EmitDeps<'_>, company: CompanyId, events: Vec<Emission>) -> StoreResult<()> {
    let Some(endpoint) = deps.hooks.endpoint(company).await? else { return Ok(()) };
    for (t, subject, data, at) in events {
        if !endpoint.wants(t) {
            continue;
        }
        let id = HookEvent::id_for(t, &subject);
        // A read first: settling again what is settled costs a read, not a refused write.
        let recorded = match deps.hooks.event(&id).await? {
            Some(recorded) if recorded.queued => continue,
            Some(recorded) => recorded,
            None => {
                let at = at.unwrap_or_else(|| deps.clock.now());
                deps.hooks.record_event(&new_event(company, t, id, data, at)).await?
            }
        };
        if recorded.queued {
            continue;
        }
        // Queued twice by two settles at once, or again after `mark_queued` failed: the tries'
        // claims keep one chain (`deliver`).
        queue_try(deps.queue, &recorded.id, (recorded.series, 1), None).await?;
        deps.hooks.mark_queued(&recorded.id).await?;
    }
    Ok(())
}

fn new_event(
    company: CompanyId,
    t: HookEventType,
    id: String,
    data: serde_json::Value,
    at: DateTime<Utc>,
) -> HookEvent {
    HookEvent {
        id,
        company_id: company,
        event_type: t,
        timestamp: at,
        data,
        queued: false,
        state: HookState::Pending,
        attempts: Vec::new(),
        tries: 0,
        series: 0,
        attempt: 0,
        settled: 0,
        lease_until: 0,
    }
}

/// A bounce or complaint on an email of `n`, to each of `addresses`.
pub async fn email_feedback(deps: &EmitDeps<'_>, n: &Notification, feedback: &EmailFeedback) -> bool {
    if !n.hooks {
        return true;
    }
    Box::pin(feedback_events(deps, n, feedback)).await
}

async fn feedback_events(deps: &EmitDeps<'_>, n: &Notification, feedback: &EmailFeedback) -> bool {
    let t = match feedback.kind {
        FeedbackKind::Bounce => HookEventType::EmailBounced,
        FeedbackKind::Complaint => HookEventType::EmailComplained,
    };
    let events = feedback
        .addresses
        .iter()
        .map(|address| {
            let address = address.to_ascii_lowercase();
            let data = serde_json::json!({
                "notificationId": n.id,
                "notificationScheduleId": n.schedule_id,
                "address": address,
                "emailMessageId": feedback.message_id,
                "reportedAt": feedback.at,
            });
            (t, format!("{}\n{address}", feedback.message_id), data, Some(feedback.at))
        })
        .collect();
    match emit(deps, n.company_id, events).await {
        Ok(()) => true,
        Err(e) => {
            tracing::warn!(notification = %n.id, error = %e, "email events not emitted");
            false
        }
    }
}

async fn queue_try(
    queue: &dyn Queue,
    event: &str,
    (series, attempt): (u32, u32),
    not_before: Option<(DateTime<Utc>, std::time::Duration)>,
) -> StoreResult<()> {
    let message =
        HookDelivery { event: event.to_string(), series, attempt, not_before: not_before.map(|(at, _)| at) };
    let body = serde_json::to_string(&message).map_err(|e| StoreError::InvalidData(e.to_string()))?;
    match not_before {
        None => queue.send_all(&[body]).await,
        Some((_, wait)) => queue.send_later(&body, wait).await,
    }
}

// ---------------------------------------------------------------------------------------------
// Delivery

/// What a try came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HookOutcome {
    Delivered,
    /// Failed; tried again at this time.
    Retrying(DateTime<Utc>),
    /// Failed for good (the last try, or a destination refused).
    Failed,
    /// Not sent: no endpoint, or it no longer wants the event.
    Dropped,
    /// Gone from the record (past its 30 days).
    Gone,
    /// Not due yet, or too close to the deadline: queued again as it was.
    Waiting,
    /// A copy of a try another message has or had (claimed, settled, of a replaced series, or
    /// of an event already delivered or failed): dropped.
    Duplicate,
}

/// One message of the webhook queue. A store or queue failure is an error (the message comes
/// back); the receiver's failures are the event's outcome.
pub async fn deliver(
    deps: &HookDeliveryDeps<'_>,
    body: &str,
    deadline: Deadline,
) -> Result<HookOutcome, DeliverError> {
    let message: HookDelivery = serde_json::from_str(body)
        .map_err(|e| DeliverError::Permanent(format!("not a webhook delivery: {e}")))?;
    if !(1..=MAX_TRIES).contains(&message.attempt) {
        let why = format!("try {} of a webhook delivery is none of 1..={MAX_TRIES}", message.attempt);
        return Err(DeliverError::Permanent(why));
    }
    let now = deps.clock.now();
    if let Some(at) = message.not_before
        && at > now
    {
        let wait = (at - now).to_std().unwrap_or_default();
        let hop = wait.min(std::time::Duration::from_secs(MAX_HOP_SECONDS));
        queue_try(deps.queue, &message.event, (message.series, message.attempt), Some((at, hop))).await?;
        return Ok(HookOutcome::Waiting);
    }
    if !deadline.allows(now, HOOK_MARGIN) {
        deps.queue.send_all(&[body.to_string()]).await?;
        return Ok(HookOutcome::Waiting);
    }
    let Some(event) = deps.hooks.event(&message.event).await? else { return Ok(HookOutcome::Gone) };
    // One chain of tries: a copy, a stale series or a finished event goes no further.
    let lease = (now + Duration::seconds(TRY_LEASE_SECONDS)).timestamp_millis();
    if event.series != message.series
        || event.state != HookState::Pending
        || !deps
            .hooks
            .claim_try(&event.id, message.series, message.attempt, now.timestamp_millis(), lease)
            .await?
    {
        return Ok(HookOutcome::Duplicate);
    }
    let endpoint = deps.hooks.endpoint(event.company_id).await?;
    let Some(endpoint) = endpoint.filter(|e| e.wants(event.event_type)) else {
        let attempt = HookAttempt {
            at: now,
            attempt: message.attempt,
            status: None,
            error: Some(
                "not sent: the tenant's endpoint is removed, disabled or does not take this event".into(),
            ),
        };
        deps.hooks.record_attempt(&event.id, message.series, &attempt, HookState::Dropped).await?;
        return Ok(HookOutcome::Dropped);
    };
    let payload = event.payload().to_string();
    let timestamp = now.timestamp();
    // The outbound client sets `content-type: application/json` itself.
    let headers = vec![
        (ID_HEADER.to_string(), event.id.clone()),
        (TIMESTAMP_HEADER.to_string(), timestamp.to_string()),
        (
            SIGNATURE_HEADER.to_string(),
            signature_header(&endpoint.live_secrets(now), &event.id, timestamp, &payload),
        ),
    ];
    let (status, error, retry) = match deps.webhook.post(&endpoint.url, &headers, &payload).await {
        Ok(s) if (200..300).contains(&s) => (Some(s), None, false),
        Ok(s) if (300..400).contains(&s) => {
            (Some(s), Some(format!("HTTP {s}: redirects are not followed")), true)
        }
        Ok(s) => (Some(s), Some(format!("HTTP {s}")), true),
        Err(PostError::Refused(why)) => (None, Some(why), false),
        Err(PostError::Failed(why)) => (None, Some(why), true),
    };
    let at = deps.clock.now();
    let attempt = HookAttempt { at, attempt: message.attempt, status, error: error.clone() };
    let outcome = match (error, retry) {
        (None, _) => HookOutcome::Delivered,
        (Some(_), true) if message.attempt < MAX_TRIES => {
            let wait = RETRY_AFTER[(message.attempt - 1) as usize];
            HookOutcome::Retrying(at + Duration::seconds(wait as i64))
        }
        _ => HookOutcome::Failed,
    };
    // The next try is queued before this one is recorded: a failure in between sends this one
    // again (the receiver dedupes on `webhook-id`), never loses the next.
    if let HookOutcome::Retrying(next) = outcome {
        let wait =
            (next - at).to_std().unwrap_or_default().min(std::time::Duration::from_secs(MAX_HOP_SECONDS));
        queue_try(deps.queue, &event.id, (message.series, message.attempt + 1), Some((next, wait))).await?;
    }
    let state = match outcome {
        HookOutcome::Delivered => HookState::Delivered,
        HookOutcome::Failed => HookState::Failed,
        _ => HookState::Pending,
    };
    deps.hooks.record_attempt(&event.id, message.series, &attempt, state).await?;
    match outcome {
        HookOutcome::Delivered => crate::metrics::count(crate::metrics::Metric::WebhooksDelivered, 1, &[]),
        HookOutcome::Failed => {
            tracing::warn!(event = %event.id, company = event.company_id, tries = message.attempt, "webhook event given up");
            crate::metrics::count(crate::metrics::Metric::WebhooksFailed, 1, &[]);
        }
        _ => {}
    }
    Ok(outcome)
}

// ---------------------------------------------------------------------------------------------
// The tenant's administration

/// What a tenant's administration of its endpoint uses.
pub struct WebhookAdminDeps<'a> {
    pub(crate) hooks: &'a dyn WebhookStore,
    pub(crate) queue: &'a dyn Queue,
    pub(crate) clock: &'a dyn Clock,
}

/// An endpoint as a tenant sets it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointRequest {
    pub url: String,
    pub events: Vec<HookEventType>,
    pub enabled: bool,
}

/// An endpoint and, when it was just made or rotated, its new secret (shown only then).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointView {
    pub endpoint: WebhookEndpoint,
    pub new_secret: Option<String>,
}

/// A tenant's administrator, as `administrator` found them: what the use cases below take, so
/// that none runs for anyone else.
#[derive(Debug, Clone)]
pub struct Administrator(User);

/// Who may administer a tenant's webhooks: its COMPANY_ADMIN, or SUPER_USER, with the
/// tenant's own company API key (another company's key names no endpoint of theirs).
pub fn administrator(user: User, key_of: &Company) -> Result<Administrator, ApiError> {
    if !(user.has(Role::CompanyAdmin) || user.has(Role::SuperUser)) {
        return Err(ApiError::new(
            ErrorKind::InsufficientPermissions,
            "the tenant's webhooks are administered by COMPANY_ADMIN or SUPER_USER",
        ));
    }
    if key_of.id != user.company_id {
        return Err(ApiError::new(
            ErrorKind::InsufficientPermissions,
            "the company API key is another company's: a tenant's webhooks are administered with its own",
        ));
    }
    Ok(Administrator(user))
}

fn no_endpoint() -> ApiError {
    ApiError::new(ErrorKind::NotFound, "this tenant has no webhook endpoint (PUT one first)")
}

fn raced() -> ApiError {
    ApiError::new(
        ErrorKind::Conflict,
        "the endpoint changed while this request was made; read it and try again",
    )
}

pub async fn show(deps: &WebhookAdminDeps<'_>, admin: &Administrator) -> Result<EndpointView, ApiError> {
    let user = &admin.0;
    let endpoint = deps.hooks.endpoint(user.company_id).await?.ok_or_else(no_endpoint)?;
    Ok(EndpointView { endpoint, new_secret: None })
}

/// Creates the endpoint (with its first secret) or changes its URL, events and switch (its
/// secrets stay). Only notifications accepted while it exists owe events.
pub async fn configure(
    deps: &WebhookAdminDeps<'_>,
    admin: &Administrator,
    request: EndpointRequest,
) -> Result<(EndpointView, bool), ApiError> {
    let user = &admin.0;
    let now = deps.clock.now();
    let by = user.number.to_string();
    let stored = deps.hooks.endpoint(user.company_id).await?;
    let (endpoint, new_secret, read) = match stored {
        Some(old) => {
            let read = old.revision;
            let endpoint = WebhookEndpoint {
                url: request.url,
                events: request.events,
                enabled: request.enabled,
                revision: read + 1,
                modified_at: now,
                modified_by: by,
                ..old
            };
            (endpoint, None, Some(read))
        }
        None => {
            let secret = new_secret();
            let endpoint = WebhookEndpoint {
                company_id: user.company_id,
                url: request.url,
                events: request.events,
                enabled: request.enabled,
                secrets: vec![SigningSecret { secret: secret.clone(), created_at: now, expires_at: None }],
                revision: 1,
                created_at: now,
                modified_at: now,
                modified_by: by,
            };
            (endpoint, Some(secret), None)
        }
    };
    if !deps.hooks.save_endpoint(&endpoint, read).await? {
        return Err(raced());
    }
    let created = read.is_none();
    Ok((EndpointView { endpoint, new_secret }, created))
}

/// A new secret; the current one signs beside it for `ROTATION_OVERLAP_HOURS`; older ones go.
pub async fn rotate(deps: &WebhookAdminDeps<'_>, admin: &Administrator) -> Result<EndpointView, ApiError> {
    let user = &admin.0;
    let now = deps.clock.now();
    let old = deps.hooks.endpoint(user.company_id).await?.ok_or_else(no_endpoint)?;
    let read = old.revision;
    let secret = new_secret();
    let until = now + Duration::hours(ROTATION_OVERLAP_HOURS);
    let mut secrets = vec![SigningSecret { secret: secret.clone(), created_at: now, expires_at: None }];
    if let Some(current) = old.secrets.iter().find(|s| s.expires_at.is_none()) {
        secrets.push(SigningSecret { expires_at: Some(until), ..current.clone() });
    }
    let endpoint = WebhookEndpoint {
        secrets,
        revision: read + 1,
        modified_at: now,
        modified_by: user.number.to_string(),
        ..old
    };
    if !deps.hooks.save_endpoint(&endpoint, Some(read)).await? {
        return Err(raced());
    }
    Ok(EndpointView { endpoint, new_secret: Some(secret) })
}

/// Removes the endpoint: events not sent yet are dropped at their next try.
pub async fn remove(deps: &WebhookAdminDeps<'_>, admin: &Administrator) -> Result<(), ApiError> {
    let user = &admin.0;
    deps.hooks.endpoint(user.company_id).await?.ok_or_else(no_endpoint)?;
    deps.hooks.delete_endpoint(user.company_id).await?;
    Ok(())
}

/// One event of the caller's tenant, with its tries (another tenant's is one that does not
/// exist).
pub async fn event(
    deps: &WebhookAdminDeps<'_>,
    admin: &Administrator,
    id: &str,
) -> Result<HookEvent, ApiError> {
    let user = &admin.0;
    match deps.hooks.event(id).await? {
        // Past its days, it is gone whether or not the table's TTL has deleted it yet.
        Some(e)
            if e.company_id == user.company_id
                && e.timestamp + Duration::days(HookEvent::KEPT_DAYS) > deps.clock.now() =>
        {
            Ok(e)
        }
        _ => Err(event_gone(id)),
    }
}

/// Sends one event again, from a first try (same `webhook-id`, fresh timestamp and signature),
/// in a new series: the tries of the one it replaces stop.
pub async fn replay(
    deps: &WebhookAdminDeps<'_>,
    admin: &Administrator,
    id: &str,
) -> Result<HookEvent, ApiError> {
    let user = &admin.0;
    let e = event(deps, admin, id).await?;
    deps.hooks.endpoint(user.company_id).await?.ok_or_else(no_endpoint)?;
    let series = deps.hooks.start_series(&e.id).await?.ok_or_else(|| event_gone(id))?;
    queue_try(deps.queue, &e.id, (series, 1), None).await?;
    Ok(HookEvent { state: HookState::Pending, series, attempt: 0, settled: 0, lease_until: 0, ..e })
}

fn event_gone(id: &str) -> ApiError {
    ApiError::new(ErrorKind::NotFound, format!("no webhook event {id} (events are kept 30 days)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_reproduce_the_standard_webhooks_test_vector() {
        // The vector the Standard Webhooks reference libraries test against: a receiver's
        // library verifies what this signs.
        assert_eq!(
            sign(
                "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
                "msg_p5jXN8AQM9LWM0D4loKWxJek",
                1614265330,
                r#"{"test": 2432232314}"#
            ),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }

    #[test]
    fn a_rotation_signs_with_both_secrets() {
        let (a, b) = (new_secret(), new_secret());
        assert!(a.starts_with("whsec_") && a != b);
        let header = signature_header(&[&a, &b], "msg_x", 1, "{}");
        let parts: Vec<&str> = header.split(' ').collect();
        assert_eq!(parts, vec![sign(&a, "msg_x", 1, "{}"), sign(&b, "msg_x", 1, "{}")]);
    }

    #[test]
    fn the_schedule_spans_hours_and_is_capped() {
        // The promise (docs/api/webhooks.md): 8 tries over about 28 hours, no wait above 10 h.
        assert_eq!(MAX_TRIES, 8);
        let total: u64 = RETRY_AFTER.iter().sum();
        assert!((27 * 3600..29 * 3600).contains(&total), "{total}");
        assert!(RETRY_AFTER.windows(2).all(|w| w[0] <= w[1]) && RETRY_AFTER[6] == 10 * 3600);
    }
}
