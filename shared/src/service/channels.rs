//! Email and mobile push for one delivery chunk, and the send-time checks of an email request.
//!
//! Neither SES nor SNS takes an idempotency key, so exactly-once is ours: every send is marked
//! on the chunk (`SentMarks`, a set of 12-byte digests of the person or device) right after it succeeds,
//! in batches, and a redelivered chunk or email job skips what is marked. The window left is a
//! crash between a send and its batch's mark write: at most one batch may go out twice, never
//! an unbounded number. Outcomes are returned as counts that `record_chunk` (pushes) and
//! `record_emails` (an email job) add exactly once.

use std::collections::HashSet;

use futures::StreamExt;

use crate::email::ChannelSettings;
use crate::email::{self, DESKTOP_URL, EMAIL_BODY, INTERACT_URL, UNSUBSCRIBE_URL, USER_FIRST_NAME, Vars};
use crate::error::{ApiError, StoreError};
use crate::model::*;
use crate::ports::{
    Accounts, Audiences, Clock, DeliveryLedger, DeviceStore, EmailPreferences, Mailer, OutgoingEmail,
    PushGateway, SendError,
};
use crate::service::deadline::Deadline;

/// Emails in flight at once per email job (the pace decides how many start per second).
const EMAIL_CONCURRENCY: usize = 8;
/// Why a round stopped when its invocation's deadline came near.
pub const DEADLINE_NEAR: &str = "the invocation's deadline is near";
/// No email starts this close to the invocation's deadline (a send takes well under a second).
pub const EMAIL_MARGIN: std::time::Duration = std::time::Duration::from_secs(5);
/// Publishes in flight at once per chunk.
const PUSH_CONCURRENCY: usize = 16;
/// Sends between two writes of the sent marks: a killed invocation sends at most this many less
/// one again (README: at most 63 per channel). As many marks as one write unit holds
/// (`MARK_MAX_BYTES` each, with the item's keys under 1 KB): a flush costs one unit, so a send
/// costs 1/64 of one; fewer per flush would cost as much per flush for less.
pub const MARK_BATCH: usize = 64;

/// Checks an email request when the notification is sent, so that a mistake is a 400 to the
/// caller and not a failure at delivery: the template exists, the subject is one plain line,
/// and every personalised param asked for can be filled.
pub fn check_email(spec: &EmailSpec, company: &Company, brochure: Option<u64>) -> Result<(), ApiError> {
    if email::template(&spec.template).is_none() {
        return Err(ApiError::invalid(
            "emailTemplate",
            format!(
                "unknown email template {:?}; known templates: {}",
                spec.template,
                email::template_names().join(", ")
            ),
        ));
    }
    if spec.subject.trim().is_empty() || spec.subject.chars().any(char::is_control) {
        return Err(ApiError::invalid("emailSubject", "emailSubject must be one non-empty line of text"));
    }
    let mut seen = HashSet::new();
    for (i, p) in spec.params.iter().enumerate() {
        let field = format!("emailParams[{i}].key");
        if !seen.insert(p.key.as_str()) {
            return Err(ApiError::invalid(field, format!("emailParams has {:?} twice", p.key)));
        }
        let missing = match p.key.as_str() {
            DESKTOP_URL if company.desktop_url.is_none() => Some("a desktop URL"),
            INTERACT_URL if company.interact_url.is_none() => Some("an Interact URL"),
            _ => None,
        };
        if let Some(what) = missing {
            return Err(ApiError::invalid(
                field,
                format!("{} cannot be filled: company {} has no {what} configured", p.key, company.id),
            ));
        }
        if p.key == UNSUBSCRIBE_URL && brochure.is_none() {
            return Err(ApiError::invalid(
                "brochureId",
                "unsubcribeURL needs brochureId: unsubscribing is per asset (ALP-EUN)",
            ));
        }
    }
    Ok(())
}

/// The values one recipient's email is rendered with.
pub fn email_vars(
    n: &Notification,
    spec: &EmailSpec,
    user: &User,
    company: Option<&Company>,
    links: Option<&ChannelSettings>,
) -> Vars {
    // The company's app, at this notification.
    let app_link = |base: Option<&str>| {
        base.map(|b| format!("{}/notifications/{}", b.trim_end_matches('/'), n.id)).unwrap_or_default()
    };
    let mut vars = Vars::new();
    vars.insert("message".into(), n.content.body.clone());
    vars.insert("subject".into(), spec.subject.clone());
    if let Some(url) = &n.content.url {
        vars.insert("url".into(), url.clone());
    }
    for p in &spec.params {
        let value = match p.key.as_str() {
            // The spec: the value of a personalised param is a placeholder, filled per person.
            USER_FIRST_NAME => user.first_name.clone(),
            DESKTOP_URL => app_link(company.and_then(|c| c.desktop_url.as_deref())),
            INTERACT_URL => app_link(company.and_then(|c| c.interact_url.as_deref())),
            UNSUBSCRIBE_URL => match (links, n.brochure_id) {
                (Some(l), Some(b)) => unsubscribe_url(l, user.id, b).unwrap_or_default(),
                _ => String::new(),
            },
            // The spec: emailBody is injected only when an emailBody param is passed too.
            EMAIL_BODY => spec.body.clone().unwrap_or_default(),
            _ => p.value.clone(),
        };
        vars.insert(p.key.clone(), value);
    }
    vars
}

/// A person's signed link to stop emails about `brochure`, where the public API's URL is known.
fn unsubscribe_url(links: &ChannelSettings, user: UserId, brochure: u64) -> Option<String> {
    links.public_api_url.as_deref().map(|base| links.links.unsubscribe_url(base, user, brochure))
}

/// Renders one recipient's email, with one-click unsubscribe headers (RFC 8058) when the
/// notification is about an asset.
pub fn render_email(
    n: &Notification,
    spec: &EmailSpec,
    user: &User,
    company: Option<&Company>,
    links: Option<&ChannelSettings>,
) -> Option<OutgoingEmail> {
    let template = email::template(&spec.template)?;
    let vars = email_vars(n, spec, user, company, links);
    let mut headers = Vec::new();
    if let Some(url) = links.zip(n.brochure_id).and_then(|(l, b)| unsubscribe_url(l, user.id, b)) {
        headers.push(("List-Unsubscribe".to_string(), format!("<{url}>")));
        headers.push(("List-Unsubscribe-Post".to_string(), "List-Unsubscribe=One-Click".to_string()));
    }
    Some(OutgoingEmail {
        to: user.email.clone(),
        subject: spec.subject.clone(),
        html: template.render_html(&vars),
        text: template.render_text(&vars),
        headers,
        notification: Some(n.id),
    })
}

/// Where sends are marked: the chunk's sent marks, stamped with the clock.
#[derive(Clone, Copy)]
pub struct MarkDeps<'a> {
    pub(crate) ledger: &'a dyn DeliveryLedger,
    pub(crate) clock: &'a dyn Clock,
}

/// What sending an email job's emails uses.
pub struct EmailDeps<'a> {
    pub(crate) accounts: &'a dyn Accounts,
    pub(crate) audiences: &'a dyn Audiences,
    pub(crate) email_prefs: &'a dyn EmailPreferences,
    pub(crate) mailer: &'a dyn Mailer,
    pub(crate) marks: MarkDeps<'a>,
    /// Links in emails; `None` where the deployment sends no email.
    pub(crate) channels: Option<&'a ChannelSettings>,
    /// Emails per second this consumer starts at most (`None`: unpaced).
    pub(crate) pace: Option<f64>,
}

/// What publishing a chunk's pushes uses.
pub struct PushDeps<'a> {
    pub(crate) devices: &'a dyn DeviceStore,
    pub(crate) push: &'a dyn PushGateway,
    pub(crate) marks: MarkDeps<'a>,
}

/// Marks written as sends succeed, in batches; flushed on every exit.
struct Marks<'a> {
    ports: MarkDeps<'a>,
    id: NotificationId,
    chunk: u32,
    pending: Vec<String>,
}

impl Marks<'_> {
    async fn add(&mut self, key: String) -> Result<(), StoreError> {
        self.pending.push(key);
        if self.pending.len() >= MARK_BATCH { self.flush().await } else { Ok(()) }
    }

    async fn flush(&mut self) -> Result<(), StoreError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let now = self.ports.clock.now();
        self.ports.ledger.add_sent_marks(self.id, self.chunk, &self.pending, now).await?;
        self.pending.clear();
        Ok(())
    }
}

/// What one round of an email job did: the outcome of every recipient it settled, and why it
/// stopped early if it did (SES throttled or failed transiently, or the deadline came near).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EmailRound {
    pub counts: EmailCounts,
    pub unfinished: Option<String>,
}

/// A job's recipients as the chunk's sent marks and their preferences show them: the outcomes
/// of those settled (sent or failed before, opted out, no address, suppressed), and the emails
/// still to send, rendered, with their recipients.
pub async fn unsettled_emails(
    ports: &EmailDeps<'_>,
    n: &Notification,
    spec: &EmailSpec,
    job: &EmailJob,
    marks: &SentMarks,
) -> Result<(EmailCounts, Vec<(UserId, OutgoingEmail)>), StoreError> {
    let mut counts = EmailCounts::default();
    let opted_out: HashSet<UserId> = match n.brochure_id {
        Some(b) => ports
            .audiences
            .asset_unsubscribes(b)
            .await?
            .into_iter()
            .filter(|u| u.emails)
            .map(|u| u.user_id)
            .collect(),
        None => HashSet::new(),
    };
    let company = ports.accounts.company(n.company_id).await?;
    let users = ports.accounts.users(&job.recipients).await?;
    let known: HashSet<UserId> = users.iter().map(|u| u.id).collect();
    counts.no_address += job.recipients.iter().filter(|r| !known.contains(r)).count() as u64;

    let mut candidates = Vec::new();
    for user in &users {
        if marks.emailed(user.id) {
            counts.sent += 1;
        } else if marks.email_failed(user.id) {
            counts.failed += 1;
        } else if opted_out.contains(&user.id) {
            counts.opted_out += 1;
        } else if !is_plausible_email(&user.email) {
            counts.no_address += 1;
        } else {
            candidates.push(user);
        }
    }
    // Addresses that bounced for good or complained are not mailed again (one batch read: a
    // job has at most EMAIL_JOB_SIZE people).
    let addresses: Vec<String> = candidates.iter().map(|u| u.email.to_ascii_lowercase()).collect();
    let suppressed: HashSet<String> = match addresses.is_empty() {
        true => HashSet::new(),
        false => {
            ports.email_prefs.email_suppressions(&addresses).await?.into_iter().map(|s| s.address).collect()
        }
    };
    let mut todo = Vec::new();
    for user in candidates {
        if suppressed.contains(&user.email.to_ascii_lowercase()) {
            counts.suppressed += 1;
        } else if let Some(email) = render_email(n, spec, user, company.as_ref(), ports.channels) {
            todo.push((user.id, email));
        } else {
            // The template was checked at send time; one that vanished since cannot be sent.
            counts.failed += 1;
        }
    }
    Ok((counts, todo))
}

/// Sends an email job's emails: one per recipient with a usable address who has not opted out
/// of the asset's emails, skipping those the chunk's sent marks show as done. Sends start at
/// most `pace.per_consumer` per second (the consumer's share of the account's SES rate); the
/// first transient failure (throttling) stops new sends, and none starts `EMAIL_MARGIN` before
/// the deadline. Every send is marked as it succeeds, so the next round sends only the rest.
pub async fn send_emails(
    ports: &EmailDeps<'_>,
    n: &Notification,
    spec: &EmailSpec,
    job: &EmailJob,
    marks: &SentMarks,
    deadline: Deadline,
) -> Result<EmailRound, StoreError> {
    let (mut counts, todo) = unsettled_emails(ports, n, spec, job, marks).await?;
    let pace = ports.pace;
    let started = tokio::time::Instant::now();
    let stop = std::sync::atomic::AtomicBool::new(false);
    let stop = &stop;
    let mut marker = Marks { ports: ports.marks, id: n.id, chunk: job.chunk, pending: Vec::new() };
    let mut results = futures::stream::iter(todo.into_iter().enumerate())
        .map(|(i, (user, email))| async move {
            if let Some(rate) = pace {
                tokio::time::sleep_until(started + std::time::Duration::from_secs_f64(i as f64 / rate)).await;
            }
            if stop.load(std::sync::atomic::Ordering::SeqCst) {
                return (user, None);
            }
            if !deadline.allows(ports.marks.clock.now(), EMAIL_MARGIN) {
                stop.store(true, std::sync::atomic::Ordering::SeqCst);
                return (user, Some(Err(SendError::Transient(DEADLINE_NEAR.into()))));
            }
            (user, Some(ports.mailer.send(&email).await))
        })
        .buffer_unordered(EMAIL_CONCURRENCY);
    let mut unfinished = None;
    while let Some((user, result)) = results.next().await {
        match result {
            None => {}
            Some(Ok(_)) => {
                counts.sent += 1;
                marker.add(SentMarks::email(user)).await?;
            }
            Some(Err(SendError::Rejected(why))) | Some(Err(SendError::Gone(why))) => {
                tracing::warn!(notification = %n.id, %user, error = %why, "email refused");
                counts.failed += 1;
                marker.add(SentMarks::failed(&SentMarks::email(user))).await?;
            }
            Some(Err(SendError::Transient(why))) => {
                // Throttled (or SES unavailable): sending more now only earns more refusals.
                stop.store(true, std::sync::atomic::Ordering::SeqCst);
                unfinished.get_or_insert(why);
            }
        }
    }
    drop(results);
    marker.flush().await?;
    Ok(EmailRound { counts, unfinished })
}

/// What one round of a chunk's pushes did: the outcome of every device it settled (marked
/// earlier or now), how many it left unsettled, and why it stopped early if it did (SNS
/// throttled or failed transiently, or the invocation's deadline came near).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PushRound {
    pub counts: PushCounts,
    pub unsent: u64,
    /// Devices this round settled (the rest of `counts` was marked before it).
    pub settled_now: u64,
    pub unfinished: Option<String>,
}

/// The chunk's devices as its sent marks show them: the outcomes of those settled (sent, failed
/// for good, removed), and the devices still to publish to, with their owners.
pub async fn unsettled_pushes(
    ports: &PushDeps<'_>,
    n: &Notification,
    chunk: &DeliveryChunk,
    marks: &SentMarks,
) -> Result<(PushCounts, Vec<(UserId, Device)>), StoreError> {
    let mut counts = PushCounts::default();
    let any_devices = match chunk.devices {
        Some(known) => known,
        None => ports.devices.company_has_devices(n.company_id).await?,
    };
    if !any_devices {
        return Ok((counts, Vec::new()));
    }
    let mut todo = Vec::new();
    for (user, devices) in ports.devices.devices_of(&chunk.recipients).await? {
        for device in devices {
            if marks.pushed(&device.device_id) {
                counts.sent += 1;
            } else if marks.push_failed(&device.device_id) {
                counts.failed += 1;
            } else {
                todo.push((user, device));
            }
        }
    }
    // Devices an earlier attempt removed are no longer listed; their marks still count them.
    counts.removed += marks.removed_devices();
    Ok((counts, todo))
}

/// No publish starts this close to the invocation's deadline (one takes well under a second):
/// what is left continues as the chunk's push job.
pub const PUSH_MARGIN: std::time::Duration = std::time::Duration::from_secs(5);

/// Publishes the notification to every registered device of the chunk's recipients, skipping
/// what the chunk's sent marks show as done. A device whose endpoint is disabled or gone is
/// removed from its owner's devices; a refusal that trying again would not mend counts failed.
/// The first transient failure (throttling, 5xx) stops new publishes, so does a mark (or
/// device) write that fails, and none starts `PUSH_MARGIN` before the deadline: the round
/// reports what it left (`unfinished`), for the chunk's push job to continue. Every settled
/// device is marked, in batches, before it returns; only when the last flush of the marks fails
/// too is the round an error (the push job continues from the marks that were written: at most
/// a batch and the publishes in flight go out again).
pub async fn send_pushes(
    ports: &PushDeps<'_>,
    n: &Notification,
    chunk: &DeliveryChunk,
    marks: &SentMarks,
    deadline: Deadline,
) -> Result<PushRound, StoreError> {
    let (mut counts, todo) = unsettled_pushes(ports, n, chunk, marks).await?;

    let message = &PushMessage {
        notification_id: n.id,
        title: n.content.title.clone(),
        body: n.content.body.clone(),
        url: n.content.url.clone(),
        high_priority: n.content.priority == Priority::High,
    };
    let total = todo.len() as u64;
    let mut unsent = total;
    let stop = std::sync::atomic::AtomicBool::new(false);
    let stop = &stop;
    let clock = ports.marks.clock;
    let mut marker = Marks { ports: ports.marks, id: n.id, chunk: chunk.chunk, pending: Vec::new() };
    let mut results = futures::stream::iter(todo)
        .map(|(user, device)| async move {
            if stop.load(std::sync::atomic::Ordering::SeqCst) {
                return (user, device, None);
            }
            if !deadline.allows(clock.now(), PUSH_MARGIN) {
                stop.store(true, std::sync::atomic::Ordering::SeqCst);
                return (user, device, Some(Err(SendError::Transient(DEADLINE_NEAR.into()))));
            }
            let result = ports.push.publish(&device.endpoint_arn, device.platform, message).await;
            (user, device, Some(result))
        })
        .buffer_unordered(PUSH_CONCURRENCY);
    let mut unfinished = None;
    // A store write that fails (a mark, a device's removal) stops new publishes, as SNS's
    // throttling does: sending on without marking would make every later send a repeat.
    let stop_for = |why: String, unfinished: &mut Option<String>| {
        stop.store(true, std::sync::atomic::Ordering::SeqCst);
        unfinished.get_or_insert(why);
    };
    while let Some((user, device, result)) = results.next().await {
        let mark = match result {
            None => None,
            Some(Ok(_)) => {
                counts.sent += 1;
                Some(SentMarks::push(&device.device_id))
            }
            Some(Err(SendError::Gone(why))) => {
                tracing::info!(%user, device = %device.device_id, reason = %why, "endpoint gone: device removed");
                if let Err(e) = ports.devices.remove_device(user, &device.device_id).await {
                    // Not marked: the push job tries it again, and finds it gone again.
                    stop_for(format!("a device not removed: {e}"), &mut unfinished);
                    continue;
                }
                if let Err(e) = ports.push.delete_endpoint(&device.endpoint_arn).await {
                    tracing::warn!(endpoint = %device.endpoint_arn, error = %e, "endpoint not deleted");
                }
                counts.removed += 1;
                Some(SentMarks::removed(&device.device_id))
            }
            Some(Err(SendError::Rejected(why))) => {
                tracing::warn!(%user, device = %device.device_id, error = %why, "push refused");
                counts.failed += 1;
                Some(SentMarks::failed(&SentMarks::push(&device.device_id)))
            }
            Some(Err(SendError::Transient(why))) => {
                // Throttled (or SNS unavailable): publishing more now only earns more refusals.
                stop_for(why, &mut unfinished);
                None
            }
        };
        if let Some(mark) = mark {
            unsent -= 1;
            // The publishes already in flight are still marked (a failed flush keeps its batch
            // for the next one).
            if let Err(e) = marker.add(mark).await {
                stop_for(format!("sent marks not written: {e}"), &mut unfinished);
            }
        }
    }
    drop(results);
    // The last try at the marks: what it cannot write is the bounded window (at most one batch
    // and the publishes in flight), and the round fails.
    marker.flush().await?;
    let settled_now = total - unsent;
    Ok(PushRound { counts, unsent, settled_now, unfinished })
}

/// Records an email job's outcomes once (`EmailLedger::record_emails`), counting them in the
/// metrics when this is the time they are recorded (never again on a repeat).
pub(crate) async fn record_emails(
    ledger: &dyn crate::ports::EmailLedger,
    id: NotificationId,
    (chunk, part): (u32, u32),
    counts: &EmailCounts,
    now: chrono::DateTime<chrono::Utc>,
) -> crate::error::StoreResult<crate::ports::ChunkRecord> {
    let record = ledger.record_emails(id, chunk, part, counts, now).await?;
    if record == crate::ports::ChunkRecord::Recorded {
        use crate::metrics::{Metric, count};
        count(Metric::EmailsSent, counts.sent, &[]);
        count(Metric::EmailsFailed, counts.failed, &[]);
    }
    Ok(record)
}

/// Records a chunk's push outcomes once (`DeliveryLedger::record_pushes`), counting them in the
/// metrics when this is the time they are recorded.
pub(crate) async fn record_pushes(
    ledger: &dyn crate::ports::DeliveryLedger,
    id: NotificationId,
    chunk: u32,
    counts: &PushCounts,
    now: chrono::DateTime<chrono::Utc>,
) -> crate::error::StoreResult<crate::ports::ChunkRecord> {
    let record = ledger.record_pushes(id, chunk, counts, now).await?;
    if record == crate::ports::ChunkRecord::Recorded {
        use crate::metrics::{Metric, count};
        count(Metric::PushesSent, counts.sent, &[]);
        count(Metric::PushesFailed, counts.failed, &[]);
        count(Metric::EndpointsPruned, counts.removed, &[]);
    }
    Ok(record)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn email_requests_are_checked_at_send_time() {
        let company = Company {
            id: 3,
            name: "c".into(),
            desktop_push_enabled: true,
            desktop_url: None,
            interact_url: Some("https://i".into()),
        };
        let spec = |template: &str, subject: &str, keys: &[&str]| EmailSpec {
            template: template.into(),
            subject: subject.into(),
            params: keys.iter().map(|k| EmailParam { key: k.to_string(), value: "x".into() }).collect(),
            body: None,
        };
        let param = |r: Result<(), ApiError>| r.unwrap_err().parameter.unwrap();
        let ok = spec("Client.Generic.Notification.html", "Hello", &["interactURL", "userFirstName"]);
        assert!(check_email(&ok, &company, None).is_ok());
        assert_eq!(param(check_email(&spec("Nope.html", "s", &[]), &company, None)), "emailTemplate");
        assert_eq!(
            param(check_email(&spec(email::HTML_BODY_TEMPLATE, "a\r\nBcc: x", &[]), &company, None)),
            "emailSubject"
        );
        assert_eq!(
            param(check_email(&spec(email::HTML_BODY_TEMPLATE, "s", &["desktopURL"]), &company, None)),
            "emailParams[0].key"
        );
        assert_eq!(
            param(check_email(&spec(email::HTML_BODY_TEMPLATE, "s", &["a", "a"]), &company, None)),
            "emailParams[1].key"
        );
        assert_eq!(
            param(check_email(&spec(email::HTML_BODY_TEMPLATE, "s", &["unsubcribeURL"]), &company, None)),
            "brochureId"
        );
        assert!(
            check_email(&spec(email::HTML_BODY_TEMPLATE, "s", &["unsubcribeURL"]), &company, Some(4)).is_ok()
        );
    }
}
