//! Group send: who may send to whom, what the audience is, and storing the notification so that
//! fan-out can take it from there (at once for ad hoc sends, at its time for scheduled ones).

use chrono::{DateTime, Utc};

use super::audience;
use super::intake::{self, StoreDeps};
use crate::error::{ApiError, ErrorKind};
use crate::model::*;
use crate::ports::{Accounts, Audiences};

/// What a group send uses: the directory (the caller's company, the audience, assets touched),
/// the daily cap, and intake (its schedule ids and quota, storing once, queueing the fan-out).
pub struct SendDeps<'a> {
    pub(crate) accounts: &'a dyn Accounts,
    pub(crate) audiences: &'a dyn Audiences,
    pub(crate) store: StoreDeps<'a>,
    /// Recipients a company's group sends may reach per UTC day.
    pub(crate) daily_recipient_cap: u64,
}

/// What a send produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sent {
    pub notification_id: NotificationId,
    pub schedule_id: u64,
    /// People the message goes to, resolved now (version 2 answers with it).
    pub recipients: Option<u64>,
}

fn forbidden(message: impl Into<String>) -> ApiError {
    ApiError::new(ErrorKind::InsufficientPermissions, message)
}

/// The spec's roles: SUPER_USER anything; COMPANY_ADMIN for its own company; the event push
/// role for its own company's events (GE) only.
pub fn authorize(user: &User, target_company: CompanyId, kind: BroadcastType) -> Result<(), ApiError> {
    if user.has(Role::SuperUser) {
        return Ok(());
    }
    let own = user.company_id == target_company;
    if own && user.has(Role::CompanyAdmin) {
        return Ok(());
    }
    if own && kind == BroadcastType::GE && user.has(Role::EventPushNotification) {
        return Ok(());
    }
    if !own && (user.has(Role::CompanyAdmin) || user.has(Role::EventPushNotification)) {
        return Err(forbidden("you may only send notifications for your own company"));
    }
    if user.has(Role::EventPushNotification) {
        return Err(forbidden("EVENT_PUSH_NOTIFICATION_ROLE may only send event (GE) notifications"));
    }
    Err(forbidden("sending notifications needs SUPER_USER, COMPANY_ADMIN or EVENT_PUSH_NOTIFICATION_ROLE"))
}

/// Whether the user holds any role that can send at all (checked before reading the body).
pub fn may_send_anything(user: &User) -> bool {
    [Role::SuperUser, Role::CompanyAdmin, Role::EventPushNotification].iter().any(|r| user.has(*r))
}

fn company_key(key: &str) -> Result<CompanyId, ApiError> {
    key.trim().parse().map_err(|_| ApiError::invalid("key", format!("key {key:?} must be the company id")))
}

/// A send's url with its campaign tag, as recipients open it.
pub(crate) fn tagged(url: &str, tag: u64) -> String {
    format!("{url}{}campaignTagId={tag}", if url.contains('?') { '&' } else { '?' })
}

/// The inbox title of a group send (the dialect has none).
pub fn default_title(kind: BroadcastType) -> &'static str {
    match kind {
        BroadcastType::GE => "Event notification",
        BroadcastType::GT => "Team notification",
        BroadcastType::SN => "Smart library update",
        BroadcastType::JN => "Job notification",
        BroadcastType::GA => "Asset notification",
        BroadcastType::UN => "Notification",
    }
}

/// Checks the target against the directory and turns it into an audience, returning the
/// company the notification belongs to. `known` is the company the caller's API key was read
/// with: a key naming it needs no second read.
async fn target(
    ports: &SendDeps<'_>,
    req: &GroupSend,
    known: &Company,
) -> Result<(CompanyId, Audience), ApiError> {
    let d = ports.audiences;
    let accounts = ports.accounts;
    let known = known.id;
    let existing_company = |id: CompanyId| async move {
        if id == known {
            return Ok(id);
        }
        match accounts.company(id).await? {
            Some(_) => Ok(id),
            None => Err(ApiError::invalid("key", format!("company {id} does not exist"))),
        }
    };
    match req.kind {
        BroadcastType::GT | BroadcastType::JN => {
            let company = existing_company(company_key(&req.key)?).await?;
            if req.kind == BroadcastType::GT && req.values.is_empty() {
                return Err(ApiError::invalid("values", "type GT needs at least one team id in values"));
            }
            let known: std::collections::HashSet<String> =
                d.teams(company, &req.values).await?.into_iter().map(|t| t.id).collect();
            if let Some(team) = req.values.iter().find(|t| !known.contains(*t)) {
                return Err(ApiError::invalid(
                    "values",
                    format!("team {team} does not exist in company {company}"),
                ));
            }
            let team_ids = req.values.clone();
            Ok(match req.kind {
                BroadcastType::GT => (company, Audience::Teams { company_id: company, team_ids }),
                _ => (company, Audience::Company { company_id: company, team_ids }),
            })
        }
        BroadcastType::GE => {
            let event_id: uuid::Uuid = req
                .key
                .trim()
                .parse()
                .map_err(|_| ApiError::invalid("key", "key must be the event UUID for type GE"))?;
            let event = d.event(event_id).await?.ok_or_else(|| {
                ApiError::new(ErrorKind::EventNotFound, format!("event {event_id} was not found"))
                    .with_parameter("key")
            })?;
            if event.cancelled {
                return Err(ApiError::new(
                    ErrorKind::EventCancelled,
                    format!("event {event_id} is cancelled"),
                )
                .with_parameter("key"));
            }
            if let Some(unknown) = req.values.iter().find(|t| !event.team_ids.contains(t)) {
                return Err(ApiError::invalid(
                    "values",
                    format!("team {unknown} is not a team of event {event_id}"),
                ));
            }
            // No team ids: every team of the event.
            let team_ids = if req.values.is_empty() { event.team_ids.clone() } else { req.values.clone() };
            Ok((event.company_id, Audience::EventTeams { event_id, team_ids }))
        }
        BroadcastType::SN => {
            let library_id: u64 = req
                .key
                .trim()
                .parse()
                .map_err(|_| ApiError::invalid("key", "key must be the smart library id for type SN"))?;
            let library = d.smart_library(library_id).await?.ok_or_else(|| {
                ApiError::new(
                    ErrorKind::SmartLibNotFound,
                    format!("smart library {library_id} was not found"),
                )
                .with_parameter("key")
            })?;
            if let Some(unknown) = req.values.iter().find(|e| !library.entry_ids.contains(e)) {
                return Err(ApiError::invalid(
                    "values",
                    format!("entry {unknown} is not in smart library {library_id}"),
                ));
            }
            Ok((library.company_id, Audience::SmartLibrary { library_id, entry_ids: req.values.clone() }))
        }
        BroadcastType::GA => {
            let company = existing_company(company_key(&req.key)?).await?;
            let brochure_id = req
                .brochure_id
                .ok_or_else(|| ApiError::invalid("brochureId", "brochureId is required for type GA"))?;
            match d.asset(brochure_id).await? {
                Some(a) if a.company_id == company => Ok((company, Audience::Asset { brochure_id })),
                _ => Err(ApiError::invalid(
                    "brochureId",
                    format!("asset {brochure_id} does not exist in company {company}"),
                )),
            }
        }
        BroadcastType::UN => {
            let company = existing_company(company_key(&req.key)?).await?;
            let mut user_ids = Vec::with_capacity(req.values.len());
            for email in &req.values {
                match accounts.user_by_email(email).await? {
                    Some(u) if u.company_id == company => user_ids.push(u.id),
                    _ => {
                        return Err(ApiError::invalid(
                            "values",
                            format!("{email} is not a user of company {company}"),
                        ));
                    }
                }
            }
            Ok((company, Audience::Users { user_ids }))
        }
    }
}

/// The id a send stores its notification under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendId {
    /// A new id: nothing can exist under it.
    Fresh(NotificationId),
    /// Derived from an idempotency key, so that a retried request finds the notification its
    /// first attempt stored.
    FromKey(NotificationId),
}

/// Sends (or schedules) a group notification for `user`, whose API key identified `key_company`.
pub async fn send(
    ports: &SendDeps<'_>,
    user: &User,
    key_company: &Company,
    req: GroupSend,
    id: SendId,
    now: DateTime<Utc>,
) -> Result<Sent, ApiError> {
    let (id, may_exist) = match id {
        SendId::Fresh(id) => (id, false),
        SendId::FromKey(id) => (id, true),
    };
    if key_company.id != user.company_id {
        return Err(forbidden("the company API key does not belong to your company")
            .with_parameter("x-nextinteract-company-api-key"));
    }
    let (company_id, audience) = target(ports, &req, key_company).await?;
    authorize(user, company_id, req.kind)?;
    if let Some(brochure) = req.brochure_id
        && req.kind != BroadcastType::GA
    {
        match ports.audiences.asset(brochure).await? {
            Some(a) if a.company_id == company_id => {}
            _ => {
                return Err(ApiError::invalid(
                    "brochureId",
                    format!("asset {brochure} does not exist in company {company_id}"),
                ));
            }
        }
    }
    if let Some(spec) = &req.email {
        let company =
            match company_id == key_company.id {
                true => key_company.clone(),
                false => ports.accounts.company(company_id).await?.ok_or_else(|| {
                    ApiError::invalid("key", format!("company {company_id} does not exist"))
                })?,
            };
        super::channels::check_email(spec, &company, req.brochure_id)?;
    }

    // Resolved now: version 2 answers with the number of people reached, and every send
    // counts against the company's daily recipient cap.
    // `target` has just read the event, library or asset and checked it.
    let just_checked = audience::GroupCheck::JustChecked;
    let people = audience::recipients(ports.audiences, &audience, req.brochure_id, just_checked)
        .await
        .map_err(|e| match e {
            audience::ResolveError::Store(s) => ApiError::from(s),
            audience::ResolveError::Gone(g) => ApiError::invalid("key", g.to_string()),
        })?
        .len() as u64;
    let recipients = (req.version == 2).then_some(people);
    // A retried idempotent request whose notification exists was already counted.
    let retried = may_exist && ports.store.lookup.get(id).await?.is_some();
    if !retried {
        let day = now.format("%Y-%m-%d").to_string();
        if !ports.store.intake.consume_quota(company_id, &day, people, ports.daily_recipient_cap).await? {
            let midnight =
                (now.date_naive() + chrono::Days::new(1)).and_hms_opt(0, 0, 0).unwrap_or_default().and_utc();
            let mut e = ApiError::new(
                ErrorKind::TooManyRequests,
                format!(
                    "company {company_id} reached its daily cap of {} recipients",
                    ports.daily_recipient_cap
                ),
            );
            e.retry_after = Some((midnight - now).num_seconds().max(1) as u64);
            return Err(e);
        }
    }

    if req.update_entity_last_modified {
        if let Some(brochure) = req.brochure_id {
            ports.audiences.touch_asset(brochure, now).await?;
        }
        if let Audience::SmartLibrary { library_id, .. } = &audience {
            ports.audiences.touch_smart_library(*library_id, now).await?;
        }
    }

    // A scheduled time already past is sent now (as an ad hoc send).
    let scheduled_at = req.schedule.as_ref().map(|s| s.at).filter(|at| *at > now);
    let due_at = scheduled_at.unwrap_or(now);
    let url = match (&req.url, req.campaign_tag_id) {
        (Some(u), Some(tag)) => Some(tagged(u, tag)),
        (u, _) => u.clone(),
    };
    let data = (req.kind == BroadcastType::UN)
        .then(|| {
            let mut d = serde_json::Map::new();
            if let Some(t) = req.user_notification_type_id {
                d.insert("userNotificationTypeId".into(), t.into());
            }
            if let Some(s) = req.user_notification_type_status_id {
                d.insert("userNotificationTypeStatusId".into(), s.into());
                d.insert(
                    "userNotificationTypeStatus".into(),
                    user_notification_status_name(s).unwrap_or_default().into(),
                );
            }
            (!d.is_empty()).then(|| serde_json::Value::Object(d).to_string())
        })
        .flatten();
    // The spec: ad hoc sends carry their team ids in the description, scheduled ones in teamIds.
    let (description, team_ids) = match &req.schedule {
        None => (req.values.join(","), Vec::new()),
        Some(s) => (s.schedule.job_name.clone().unwrap_or_default(), req.values.clone()),
    };

    let schedule_id = ports.store.intake.next_schedule_id().await?;
    let content = Content {
        title: default_title(req.kind).to_string(),
        body: req.message,
        url,
        data,
        ..Content::default()
    };
    let created_by = user.number.to_string();
    let notification =
        Notification::draft(id, company_id, Origin::GroupSend, req.kind, audience, content, created_by, now)
            .schedule_id(schedule_id)
            .email(req.email, req.brochure_id)
            .schedule(req.schedule.map(|s| s.schedule), team_ids)
            .description(description)
            .due_at(due_at)
            .campaign_tag(req.campaign_tag_id)
            .build();
    let notification = intake::insert_once(&ports.store, notification).await?;
    let schedule_id = notification.schedule_id;
    if notification.status == Status::Pending && notification.due_at <= now {
        intake::enqueue_fanout(&ports.store, notification.id).await;
    }
    tracing::info!(notification = %notification.id, schedule_id, kind = notification.broadcast_type.as_str(), scheduled = scheduled_at.is_some(), "notification accepted");
    Ok(Sent { notification_id: notification.id, schedule_id, recipients })
}
