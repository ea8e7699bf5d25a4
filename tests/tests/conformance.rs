//! The store and queue contracts, checked against the memory adapters and against
//! DynamoDB/SQS on moto. The same bodies run against both, so the two cannot disagree.

use std::collections::{BTreeSet, HashSet};

use chrono::{Duration, Utc};
use shared::directory::{DirectorySnapshot, TeamRecord, UserRecord};
use shared::error::StoreError;
use shared::model::*;
use shared::ports::*;
use shared::runtime::Ports;
use tests::{conformance, t0};
use uuid::Uuid;

fn notification(
    id: Uuid,
    schedule_id: u64,
    company: u64,
    kind: BroadcastType,
    due: chrono::DateTime<Utc>,
) -> Notification {
    let content = Content {
        title: "Team notification".into(),
        body: format!("message {schedule_id}"),
        url: Some("https://example.com/x".into()),
        priority: Priority::High,
        actions: vec![Action {
            title: "Open".into(),
            data: ActionData::Url {
                url: "https://example.com".into(),
                navigation_target: Some(NavigationTarget::NewWindow),
            },
        }],
        ..Content::default()
    };
    let audience = Audience::Teams { company_id: company, team_ids: vec!["23".into(), "27".into()] };
    let mut n = Notification::new(
        id,
        schedule_id,
        company,
        Origin::GroupSend,
        kind,
        audience,
        content,
        "654".into(),
        t0(),
    );
    n.email = Some(EmailSpec {
        template: "Client.Generic.HTMLBody.Mandrill.html".into(),
        subject: "Hello".into(),
        params: vec![EmailParam { key: "userFirstName".into(), value: "x".into() }],
        body: None,
    });
    n.brochure_id = Some(4);
    n.description = "23,27".into();
    n.due_at = due;
    n
}

fn inbox_content(id: Uuid, priority: Priority, created: chrono::DateTime<Utc>) -> InboxContent {
    InboxContent {
        notification_id: id,
        origin: Origin::AppNotification,
        title: "t".into(),
        body: "b".into(),
        url: None,
        override_content: Some(OverrideContent { title: Some("**t**".into()), body: None, icon_url: None }),
        icon: IconType::Warning,
        toast: ToastType::Hidden,
        priority,
        actions: vec![],
        data: Some("{\"k\":1}".into()),
        source: Some("pe".into()),
        created_at: created,
        expires_at: created + Duration::days(14),
    }
}

/// Contents stored, and their entries for `user` delivered at `delivered`.
async fn deliver(p: &Ports, user: Uuid, contents: &[InboxContent], delivered: chrono::DateTime<Utc>) {
    for c in contents {
        p.inbox.put_content(c).await.unwrap();
    }
    let entries: Vec<InboxEntry> = contents.iter().map(|c| c.entry_for(user, delivered)).collect();
    p.inbox.put_entries(&entries, &ManualClock::new(delivered)).await.unwrap();
}

/// Every page of a read of the center.
async fn read_all(
    p: &Ports,
    user: Uuid,
    query: &InboxQuery,
    now: chrono::DateTime<Utc>,
    limit: usize,
) -> Vec<InboxItem> {
    tests::views::read_all(p.inbox.as_ref(), user, query, now, limit).await
}

async fn schedule_ids_are_unique_positive_and_increasing(p: Ports) {
    let first = p.notifications.next_schedule_id().await.unwrap();
    assert!(first >= 1);
    let ids: Vec<u64> = futures::future::join_all((0..20).map(|_| p.notifications.next_schedule_id()))
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    let set: BTreeSet<u64> = ids.iter().copied().collect();
    assert_eq!(set.len(), 20, "concurrent ids are unique");
    assert!(set.iter().all(|&i| i > first && i <= 1 << 53));
    let after = p.notifications.next_schedule_id().await.unwrap();
    assert!(after > *set.last().unwrap());
}

async fn insert_get_and_conditional_conflicts(p: Ports) {
    let n = notification(Uuid::new_v4(), 7, 3, BroadcastType::GT, t0());
    p.notifications.insert(&n).await.unwrap();
    // Every field, the email's content with what reads it (`an_emails_content_is_read_where_it_is_used`).
    let looked_up = p.notifications.get(n.id).await.unwrap();
    assert_eq!(looked_up, Some(n.clone().without_email_content()), "round trip keeps every field");
    let emails = p.notifications.email_context(n.id, 0, 0).await.unwrap().notification;
    assert_eq!(emails.as_ref(), Some(&n), "and the email's content");
    assert_eq!(p.notifications.get_by_schedule_id(7).await.unwrap().map(|x| x.id), Some(n.id));
    assert!(p.notifications.get_by_schedule_id(8).await.unwrap().is_none());
    assert!(p.notifications.get(Uuid::new_v4()).await.unwrap().is_none());
    // Same id again, and another id with the same schedule id: both conflict.
    assert!(matches!(p.notifications.insert(&n).await, Err(StoreError::Conflict(_))));
    let twin = notification(Uuid::new_v4(), 7, 3, BroadcastType::GT, t0());
    assert!(matches!(p.notifications.insert(&twin).await, Err(StoreError::Conflict(_))));
    assert!(p.notifications.get(twin.id).await.unwrap().is_none(), "a rejected insert leaves nothing");
}

/// An email's body and parameters are stored once and read where they are used: by an email job
/// (all of it) and sent history (the parameters: it shows them), and by no lookup, chunk or push
/// job; a notification without them, or with only one of them, reads as it was stored.
async fn an_emails_content_is_read_where_it_is_used(p: Ports) {
    let mut n = notification(Uuid::new_v4(), 70, 3, BroadcastType::GT, t0());
    let email = n.email.as_mut().expect("an email");
    // The largest body the group-send dialect stores, and parameters beside it.
    email.body =
        Some("<p>".to_string() + &"b".repeat(shared::dialects::group_send::MAX_EMAIL_BODY_BYTES - 4 * 1024));
    email.params = (0..3).map(|i| EmailParam { key: format!("k{i}"), value: format!("v{i}") }).collect();
    let mut body_only = notification(Uuid::new_v4(), 71, 3, BroadcastType::GT, t0());
    let email = body_only.email.as_mut().expect("an email");
    email.params.clear();
    email.body = Some("<p>only a body</p>".into());
    let params_only = notification(Uuid::new_v4(), 72, 3, BroadcastType::GT, t0());
    let mut bare = notification(Uuid::new_v4(), 73, 3, BroadcastType::GT, t0());
    bare.email.as_mut().expect("an email").params.clear();
    let mut none = notification(Uuid::new_v4(), 74, 3, BroadcastType::GT, t0());
    none.email = None;
    let all = [&n, &body_only, &params_only, &bare, &none];
    for each in all {
        p.notifications.insert(each).await.unwrap();
    }
    for each in all {
        let without = Some(each.clone().without_email_content());
        assert_eq!(p.notifications.get(each.id).await.unwrap(), without, "a lookup reads none of it");
        let by_schedule = p.notifications.get_by_schedule_id(each.schedule_id).await.unwrap();
        assert_eq!(by_schedule, without, "by schedule id neither");
        let chunk = p.notifications.chunk_context(each.id, 0).await.unwrap().notification;
        assert_eq!(chunk, without, "a chunk renders no email: none of it");
        let pushes = p.notifications.push_context(each.id, 0).await.unwrap().notification;
        assert_eq!(pushes, without, "nor does a push job");
        let emails = p.notifications.email_context(each.id, 0, 0).await.unwrap().notification;
        assert_eq!(emails.as_ref(), Some(each), "an email job reads all of it");
        let record = p.notifications.record(each.schedule_id).await.unwrap();
        assert_eq!(record, Some(each.clone().without_email_body()), "history's record: its parameters");
    }
    let scope = HistoryScope::CompanyType { company_id: 3, broadcast_type: BroadcastType::GT };
    let page = p.notifications.history(&scope, &PageRequest::first(10)).await.unwrap();
    let shown: Vec<Notification> =
        all.iter().rev().map(|each| (*each).clone().without_email_body()).collect();
    assert_eq!(page.items, shown, "history shows the parameters, not the body");
    // A refused insert stores none of it: the same id again conflicts and leaves the first.
    let mut twin = n.clone();
    twin.schedule_id = 75;
    twin.email.as_mut().expect("an email").body = Some("another".into());
    assert!(matches!(p.notifications.insert(&twin).await, Err(StoreError::Conflict(_))));
    let emails = p.notifications.email_context(n.id, 0, 0).await.unwrap().notification;
    assert_eq!(emails.as_ref(), Some(&n), "the first content stays");
}

async fn due_and_claim_exactly_once(p: Ports) {
    let now = t0();
    let early = notification(Uuid::new_v4(), 1, 3, BroadcastType::GT, now - Duration::minutes(5));
    let on_time = notification(Uuid::new_v4(), 2, 3, BroadcastType::GT, now);
    let later = notification(Uuid::new_v4(), 3, 3, BroadcastType::GT, now + Duration::minutes(1));
    for n in [&early, &on_time, &later] {
        p.notifications.insert(n).await.unwrap();
    }
    assert_eq!(p.notifications.due(now, 10).await.unwrap(), vec![early.id, on_time.id]);
    assert_eq!(p.notifications.due(now, 1).await.unwrap(), vec![early.id]);

    // Eight concurrent claims of one notification: exactly one wins.
    let lease = now + Duration::minutes(3);
    let wins = futures::future::join_all((0..8).map(|_| p.notifications.claim(on_time.id, now, lease))).await;
    assert_eq!(wins.into_iter().map(Result::unwrap).filter(|w| *w).count(), 1);
    assert_eq!(p.notifications.get(on_time.id).await.unwrap().unwrap().status, Status::FanningOut);
    assert_eq!(p.notifications.due(now, 10).await.unwrap(), vec![early.id], "claimed ones are no longer due");
    assert!(
        !p.notifications.claim(Uuid::new_v4(), now, lease).await.unwrap(),
        "unknown ids are never claimed"
    );
    assert!(!p.notifications.claim(later.id, now, lease).await.unwrap(), "not before its time");
    let soon = now + Duration::minutes(1);
    assert!(!p.notifications.claim(on_time.id, soon, lease).await.unwrap(), "lease still held");
    assert_eq!(p.notifications.due(now + Duration::minutes(2), 10).await.unwrap(), vec![early.id, later.id]);

    // The claimant crashed: once its lease runs out the notification is due again, and one of
    // several concurrent takers wins it.
    let expired = lease + Duration::seconds(1);
    assert_eq!(p.notifications.due(expired, 10).await.unwrap(), vec![early.id, later.id, on_time.id]);
    let new_lease = expired + Duration::minutes(3);
    let wins =
        futures::future::join_all((0..8).map(|_| p.notifications.claim(on_time.id, expired, new_lease)))
            .await;
    assert_eq!(wins.into_iter().map(Result::unwrap).filter(|w| *w).count(), 1);
    assert_eq!(p.notifications.get(on_time.id).await.unwrap().unwrap().lease_until, Some(new_lease));
    // The crashed run wakes up: its lease is no longer the token, so it can neither save
    // progress nor finish; the run that took over can.
    let progress = FanoutProgress { chunks_enqueued: 1, recipients_enqueued: 1 };
    let later = new_lease + Duration::minutes(1);
    assert!(matches!(
        p.notifications.save_progress(on_time.id, &progress, lease, later).await,
        Err(StoreError::Conflict(_))
    ));
    assert!(matches!(
        p.notifications.finish_fanout(on_time.id, 1, 1, lease, expired).await,
        Err(StoreError::Conflict(_))
    ));
    p.notifications.save_progress(on_time.id, &progress, new_lease, later).await.unwrap();
    assert_eq!(
        p.notifications.finish_fanout(on_time.id, 0, 0, later, expired).await.unwrap(),
        Status::Delivered
    );
}

async fn chunks_are_recorded_exactly_once(p: Ports) {
    let now = t0();
    let n = notification(Uuid::new_v4(), 1, 3, BroadcastType::GT, now);
    p.notifications.insert(&n).await.unwrap();
    // Progress can only be saved by the claimant.
    let lease = now + Duration::minutes(3);
    let early = FanoutProgress { chunks_enqueued: 1, recipients_enqueued: 3 };
    assert!(matches!(
        p.notifications.save_progress(n.id, &early, lease, lease).await,
        Err(StoreError::Conflict(_))
    ));
    assert!(p.notifications.claim(n.id, now, lease).await.unwrap());
    let progress = FanoutProgress { chunks_enqueued: 2, recipients_enqueued: 700 };
    let extended = lease + Duration::minutes(1);
    p.notifications.save_progress(n.id, &progress, lease, extended).await.unwrap();
    // The old lease is no longer the token: a write with it is refused.
    assert!(matches!(
        p.notifications.save_progress(n.id, &progress, lease, extended).await,
        Err(StoreError::Conflict(_))
    ));
    let stored = p.notifications.get(n.id).await.unwrap().unwrap();
    assert_eq!((stored.fanout, stored.lease_until), (progress, Some(extended)));
    let after_first_lease = lease + Duration::seconds(1);
    assert!(p.notifications.due(after_first_lease, 10).await.unwrap().is_empty(), "saving extends the lease");

    // A chunk may report before fan-out finishes.
    let first = ChunkTally {
        delivered: 500,
        emails_queued: 500,
        pushes: PushCounts { sent: 610, removed: 3, failed: 1, withdrawn: 0 },
        email_job_size: 256,
    };
    assert_eq!(p.notifications.chunk_context(n.id, 0).await.unwrap().email_job_size, None, "not recorded");
    assert_eq!(p.notifications.record_chunk(n.id, 0, &first, now).await.unwrap(), ChunkRecord::Recorded);
    // The record keeps how its emails were cut: a redelivery queues the same jobs.
    assert_eq!(p.notifications.chunk_context(n.id, 0).await.unwrap().email_job_size, Some(256));
    assert!(matches!(
        p.notifications.finish_fanout(n.id, 2, 700, lease, now).await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(p.notifications.finish_fanout(n.id, 2, 700, extended, now).await.unwrap(), Status::Delivering);
    assert!(matches!(
        p.notifications.finish_fanout(n.id, 2, 700, extended, now).await,
        Err(StoreError::Conflict(_))
    ));
    // Eight concurrent deliveries of the same chunk count once.
    let second = ChunkTally {
        delivered: 200,
        emails_queued: 200,
        pushes: PushCounts { sent: 5, ..PushCounts::default() },
        email_job_size: 256,
    };
    let results =
        futures::future::join_all((0..8).map(|_| p.notifications.record_chunk(n.id, 1, &second, now))).await;
    let recorded = results.into_iter().map(Result::unwrap).filter(|r| *r == ChunkRecord::Recorded).count();
    assert_eq!(recorded, 1);
    assert_eq!(
        p.notifications.record_chunk(n.id, 0, &first, now).await.unwrap(),
        ChunkRecord::AlreadyRecorded
    );
    assert!(p.notifications.chunk_recorded(n.id, 1).await.unwrap());
    assert!(!p.notifications.chunk_recorded(n.id, 2).await.unwrap());
    let stored = p.notifications.get(n.id).await.unwrap().unwrap();
    assert_eq!(
        (stored.delivered, stored.chunks_done, stored.chunks_total, stored.recipients),
        (700, 2, Some(2), 700)
    );
    assert_eq!(stored.emails_pending, 700, "every recipient's email is pending until its job settles");
    assert_eq!((stored.pushes_sent, stored.pushes_removed, stored.pushes_failed), (615, 3, 1));
    assert_eq!(stored.status, Status::Delivered, "email never holds the in-app delivery");

    // Email jobs: each (chunk, part) is counted once, moving its recipients out of pending.
    assert!(!p.notifications.email_context(n.id, 0, 0).await.unwrap().recorded);
    let job =
        EmailCounts { sent: 390, opted_out: 50, no_address: 30, failed: 20, suppressed: 5, withdrawn: 5 };
    let results =
        futures::future::join_all((0..8).map(|_| p.notifications.record_emails(n.id, 0, 0, &job, now))).await;
    let recorded = results.into_iter().map(Result::unwrap).filter(|r| *r == ChunkRecord::Recorded).count();
    assert_eq!(recorded, 1, "concurrent records of one email job count once");
    let other = EmailCounts { sent: 100, ..EmailCounts::default() };
    assert_eq!(p.notifications.record_emails(n.id, 1, 0, &other, now).await.unwrap(), ChunkRecord::Recorded);
    assert_eq!(
        p.notifications.record_emails(n.id, 1, 0, &other, now).await.unwrap(),
        ChunkRecord::AlreadyRecorded
    );
    let context = p.notifications.email_context(n.id, 0, 0).await.unwrap();
    assert!(context.recorded && context.notification.is_some());
    assert!(!p.notifications.email_context(n.id, 0, 1).await.unwrap().recorded, "another part");
    assert!(p.notifications.record_emails(Uuid::new_v4(), 0, 0, &other, now).await.is_err());
    let stored = p.notifications.get(n.id).await.unwrap().unwrap();
    assert_eq!(
        (stored.emails_sent, stored.emails_opted_out, stored.emails_no_address, stored.emails_failed),
        (490, 50, 30, 20),
        "email outcomes are counted once per job"
    );
    assert_eq!(
        (stored.emails_suppressed, stored.emails_withdrawn, stored.emails_pending),
        (5, 5, 100),
        "700 queued, 600 settled"
    );
    assert_eq!(stored.status, Status::Delivered);

    // A chunk's pushes: counted once per chunk, apart from the chunk's own record.
    assert!(!p.notifications.push_context(n.id, 0).await.unwrap().recorded);
    let pushes = PushCounts { sent: 7, removed: 2, failed: 1, withdrawn: 4 };
    let results =
        futures::future::join_all((0..8).map(|_| p.notifications.record_pushes(n.id, 0, &pushes, now))).await;
    let recorded = results.into_iter().map(Result::unwrap).filter(|r| *r == ChunkRecord::Recorded).count();
    assert_eq!(recorded, 1, "concurrent records of one chunk's pushes count once");
    let context = p.notifications.push_context(n.id, 0).await.unwrap();
    assert!(context.recorded && context.notification.is_some());
    assert!(!p.notifications.push_context(n.id, 1).await.unwrap().recorded, "another chunk");
    assert!(p.notifications.record_pushes(Uuid::new_v4(), 0, &pushes, now).await.is_err());
    let stored = p.notifications.get(n.id).await.unwrap().unwrap();
    assert_eq!(
        (stored.pushes_sent, stored.pushes_removed, stored.pushes_failed, stored.pushes_withdrawn),
        (622, 5, 2, 4)
    );

    // Bounces and complaints: once per email and kind, whoever reports them how often.
    for _ in 0..2 {
        p.notifications.record_feedback(n.id, "ses-1", FeedbackKind::Bounce, now).await.unwrap();
    }
    let complaints = futures::future::join_all(
        (0..4).map(|_| p.notifications.record_feedback(n.id, "ses-2", FeedbackKind::Complaint, now)),
    )
    .await;
    let recorded = complaints.into_iter().map(Result::unwrap).filter(|r| *r == ChunkRecord::Recorded).count();
    assert_eq!(recorded, 1);
    p.notifications.record_feedback(n.id, "ses-2", FeedbackKind::Bounce, now).await.unwrap();
    assert!(
        p.notifications.record_feedback(Uuid::new_v4(), "ses-3", FeedbackKind::Bounce, now).await.is_err()
    );
    let stored = p.notifications.get(n.id).await.unwrap().unwrap();
    assert_eq!((stored.emails_bounced, stored.emails_complained), (2, 1));
    assert!(stored.successful());
    assert!(
        p.notifications.due(now + Duration::days(1), 10).await.unwrap().is_empty(),
        "finished fan-outs are never due again"
    );
    // Recording against a notification that does not exist is refused.
    assert!(p.notifications.record_chunk(Uuid::new_v4(), 0, &ChunkTally::default(), now).await.is_err());
}

async fn fanout_with_no_chunks_or_all_chunks_done_completes(p: Ports) {
    let now = t0();
    let empty = notification(Uuid::new_v4(), 1, 3, BroadcastType::GT, now);
    p.notifications.insert(&empty).await.unwrap();
    assert!(p.notifications.claim(empty.id, now, now + Duration::minutes(3)).await.unwrap());
    let lease = now + Duration::minutes(3);
    assert_eq!(p.notifications.finish_fanout(empty.id, 0, 0, lease, now).await.unwrap(), Status::Delivered);
    // Giving a delivered notification up changes nothing: everyone has it.
    p.notifications.mark_failed(empty.id, "too late", now).await.unwrap();
    let stored = p.notifications.get(empty.id).await.unwrap().unwrap();
    assert_eq!((stored.status, stored.failure), (Status::Delivered, None));

    let failed = notification(Uuid::new_v4(), 2, 3, BroadcastType::GT, now);
    p.notifications.insert(&failed).await.unwrap();
    p.notifications.mark_failed(failed.id, "audience vanished", now).await.unwrap();
    let stored = p.notifications.get(failed.id).await.unwrap().unwrap();
    assert_eq!(stored.status, Status::Failed);
    assert_eq!(stored.failure.as_deref(), Some("audience vanished"));
    assert!(!stored.successful());
    assert!(p.notifications.due(now, 10).await.unwrap().is_empty(), "failed ones are not due");
}

async fn history_pages_newest_first_through_each_scope(p: Ports) {
    let event = Uuid::new_v4();
    for sid in 1..=60u64 {
        let kind = if sid % 3 == 0 { BroadcastType::JN } else { BroadcastType::GT };
        let mut n = notification(Uuid::new_v4(), sid, 3, kind, t0());
        if sid % 10 == 0 {
            n.broadcast_type = BroadcastType::GE;
            n.audience = Audience::EventTeams { event_id: event, team_ids: vec!["456".into()] };
        }
        if sid % 7 == 0 {
            n.broadcast_type = BroadcastType::GA;
            n.audience = Audience::Asset { brochure_id: 4 };
        }
        p.notifications.insert(&n).await.unwrap();
    }
    p.notifications.insert(&notification(Uuid::new_v4(), 61, 4, BroadcastType::GT, t0())).await.unwrap();

    let scope = HistoryScope::CompanyType { company_id: 3, broadcast_type: BroadcastType::GT };
    let mut seen = Vec::new();
    let mut page = PageRequest::first(15);
    loop {
        let got = p.notifications.history(&scope, &page).await.unwrap();
        assert!(got.items.len() <= 15);
        seen.extend(got.items.iter().map(|n| n.schedule_id));
        match got.next {
            Some(t) => page.after = Some(t),
            None => break,
        }
    }
    let expected: Vec<u64> = (1..=60u64).rev().filter(|s| s % 3 != 0 && s % 10 != 0 && s % 7 != 0).collect();
    assert_eq!(seen, expected, "each GT record of company 3 once, newest first");

    let ge = p
        .notifications
        .history(&HistoryScope::Event { event_id: event }, &PageRequest::first(50))
        .await
        .unwrap();
    assert_eq!(ge.items.iter().map(|n| n.schedule_id).collect::<Vec<_>>(), vec![60, 50, 40, 30, 20, 10]);
    assert!(ge.next.is_none());
    let ga = p
        .notifications
        .history(&HistoryScope::Asset { brochure_id: 4 }, &PageRequest::first(50))
        .await
        .unwrap();
    assert_eq!(
        ga.items.iter().map(|n| n.schedule_id).collect::<Vec<_>>(),
        vec![56, 49, 42, 35, 28, 21, 14, 7]
    );
    let other = HistoryScope::CompanyType { company_id: 4, broadcast_type: BroadcastType::GT };
    assert_eq!(p.notifications.history(&other, &PageRequest::first(50)).await.unwrap().items.len(), 1);
}

async fn idempotency_keys_are_claimed_once(p: Ports) {
    let now = t0();
    let exp = now + Duration::hours(24);
    let claims =
        futures::future::join_all((0..8).map(|_| p.notifications.claim_idempotency("u1:k1", "d1", exp, now)))
            .await;
    let won = claims.iter().filter(|c| matches!(c, Ok(IdempotencyClaim::Claimed))).count();
    assert_eq!(won, 1, "concurrent claims of one key: one wins");
    assert_eq!(
        p.notifications.claim_idempotency("u1:k1", "d2", exp, now).await.unwrap(),
        IdempotencyClaim::Existing { request_digest: "d1".into(), answer: None }
    );
    let record = IdempotencyRecord {
        scope: "u1:k1".into(),
        request_digest: "d1".into(),
        status: 200,
        body: "4".into(),
        expires_at: exp,
    };
    p.notifications.complete_idempotency(&record).await.unwrap();
    assert_eq!(
        p.notifications.claim_idempotency("u1:k1", "d1", exp, now).await.unwrap(),
        IdempotencyClaim::Existing { request_digest: "d1".into(), answer: Some((200, "4".into())) }
    );
    // Expired keys can be claimed again; released keys too.
    assert_eq!(
        p.notifications
            .claim_idempotency("u1:k1", "d3", exp + Duration::hours(1), exp + Duration::seconds(1))
            .await
            .unwrap(),
        IdempotencyClaim::Claimed
    );
    p.notifications.release_idempotency("u1:k1").await.unwrap();
    assert_eq!(
        p.notifications.claim_idempotency("u1:k1", "d4", exp, now).await.unwrap(),
        IdempotencyClaim::Claimed
    );
}

async fn inbox_orders_pages_filters_and_dismisses(p: Ports) {
    let user = Uuid::new_v4();
    let other = Uuid::new_v4();
    let now = t0();
    // 60 notifications (more than one BatchWriteItem), every fifth one High.
    let contents: Vec<InboxContent> = (0..60)
        .map(|i| {
            let priority = if i % 5 == 0 { Priority::High } else { Priority::Normal };
            inbox_content(Uuid::new_v4(), priority, now - Duration::minutes(60 - i))
        })
        .collect();
    deliver(&p, user, &contents, now).await;
    deliver(&p, other, &[inbox_content(Uuid::new_v4(), Priority::Normal, now)], now).await;
    let mut expired = inbox_content(Uuid::new_v4(), Priority::High, now - Duration::days(20));
    expired.expires_at = now - Duration::seconds(1);
    deliver(&p, user, std::slice::from_ref(&expired), now).await;
    // The same entry twice in one call, and half the set written again: still one each.
    let again: Vec<InboxEntry> =
        contents[..30].iter().chain([&contents[3]]).map(|c| c.entry_for(user, now)).collect();
    p.inbox.put_entries(&again, &ManualClock::new(now)).await.unwrap();

    let seen = read_all(&p, user, &InboxQuery::ordered(), now, 25).await;
    assert_eq!(seen.len(), 60, "every visible item once; the expired one and the other user's left out");
    assert_eq!(seen.iter().map(|i| i.content.notification_id).collect::<HashSet<_>>().len(), 60);
    assert!(seen[..12].iter().all(|i| i.content.priority == Priority::High), "High first");
    assert!(seen.windows(2).all(|w| w[0].content.priority > w[1].content.priority
        || (w[0].content.priority == w[1].content.priority
            && w[0].content.created_at >= w[1].content.created_at)));
    let seventh = seen.iter().find(|i| i.content.notification_id == contents[7].notification_id).unwrap();
    assert_eq!(seventh.content, contents[7], "content intact");
    assert_eq!(seventh.entry, contents[7].entry_for(user, now), "entry intact");
    assert_eq!(seventh.state, ItemState::default());

    // Dismiss: hidden afterwards, idempotent, unknown ids refused.
    let target = seen[0].content.notification_id;
    assert!(p.inbox.mark(user, target, Mark::Dismissed, now).await.unwrap());
    assert!(p.inbox.mark(user, target, Mark::Dismissed, now + Duration::seconds(5)).await.unwrap());
    let dismissed = p.inbox.get(user, target).await.unwrap().unwrap();
    assert_eq!(dismissed.entry.marks.dismissed_at, Some(now), "first dismissal kept");
    assert!(dismissed.state.dismissed);
    assert!(!p.inbox.mark(user, Uuid::new_v4(), Mark::Dismissed, now).await.unwrap());
    assert!(
        !p.inbox.mark(other, target, Mark::Dismissed, now).await.unwrap(),
        "another user's item is not yours to dismiss"
    );
    assert!(
        !p.inbox.mark(user, target, Mark::Read, now).await.unwrap(),
        "a dismissed item takes no other mark"
    );
    assert!(
        !p.inbox.mark(user, expired.notification_id, Mark::Read, now).await.unwrap(),
        "nor an expired one"
    );
    let after = p.inbox.list(user, &InboxQuery::ordered(), now, &PageRequest::first(100)).await.unwrap();
    assert_eq!(after.items.len(), 59);
    assert!(after.next.is_none());
    assert!(after.items.iter().all(|i| i.content.notification_id != target));

    // Polling: what was delivered after `since`, whenever it was created, in display order;
    // nothing delivered before it (everything above was delivered at `now`).
    let poll = now + Duration::seconds(1);
    assert!(read_all(&p, user, &InboxQuery::since(poll), now, 2).await.is_empty());
    let fresh = inbox_content(Uuid::new_v4(), Priority::Normal, now - Duration::minutes(5));
    deliver(&p, user, std::slice::from_ref(&fresh), now + Duration::seconds(2)).await;
    // Created three hours before it reached the person (a chunk retried for long, a dead letter
    // redriven): on DynamoDB a late entry, found by its pointer, not by walking older entries.
    let late = inbox_content(Uuid::new_v4(), Priority::Normal, now - Duration::hours(3));
    deliver(&p, user, std::slice::from_ref(&late), now + Duration::seconds(3)).await;
    let high = inbox_content(Uuid::new_v4(), Priority::High, now - Duration::minutes(2));
    deliver(&p, user, std::slice::from_ref(&high), now + Duration::seconds(4)).await;
    let ids = |items: Vec<InboxItem>| items.iter().map(|i| i.content.notification_id).collect::<Vec<_>>();
    let recent = read_all(&p, user, &InboxQuery::since(poll), now, 2).await;
    assert_eq!(
        ids(recent),
        vec![high.notification_id, fresh.notification_id, late.notification_id],
        "High first, then newest; the late one too"
    );
    // `since` is after it, `deliveredSince` at or after it.
    let at = now + Duration::seconds(3);
    assert_eq!(ids(read_all(&p, user, &InboxQuery::since(at), now, 2).await), vec![high.notification_id]);
    let cursor = InboxQuery { delivered_since: Some(at), ..InboxQuery::default() };
    assert_eq!(
        ids(read_all(&p, user, &cursor, now, 1).await),
        vec![high.notification_id, late.notification_id]
    );
    // Marked, they follow the view's rule as any other.
    assert!(p.inbox.mark(user, late.notification_id, Mark::Archived, now).await.unwrap());
    let unarchived = InboxQuery { since: Some(poll), ..InboxQuery::default() };
    assert_eq!(
        ids(read_all(&p, user, &unarchived, now, 2).await),
        vec![high.notification_id, fresh.notification_id]
    );
    let archived = InboxQuery { status: StatusFilter::Archived, since: Some(poll), ..InboxQuery::default() };
    assert_eq!(ids(read_all(&p, user, &archived, now, 2).await), vec![late.notification_id]);
    for c in [&fresh, &late, &high] {
        assert!(p.inbox.mark(user, c.notification_id, Mark::Dismissed, now).await.unwrap());
    }

    // Time passes: the items expire from view even before TTL deletes them.
    let later = now + Duration::days(15);
    assert!(
        p.inbox
            .list(user, &InboxQuery::ordered(), later, &PageRequest::first(10))
            .await
            .unwrap()
            .items
            .is_empty()
    );
    assert_eq!(
        p.inbox.count(user, later, COUNT_WINDOW).await.unwrap(),
        InboxCounts { unread: 0, unseen: 0, exact: true }
    );
}

/// Seen, read, unread, archived, unarchived on one notification; watermarks over everything;
/// the views and counts that follow; tokens of one view refused by another store's forgery.
async fn inbox_states_watermarks_views_and_counts(p: Ports) {
    let user = Uuid::new_v4();
    let now = t0();
    let contents: Vec<InboxContent> = (0..10)
        .map(|i| {
            inbox_content(
                Uuid::new_v4(),
                if i == 0 { Priority::High } else { Priority::Normal },
                now - Duration::minutes(20 - i),
            )
        })
        .collect();
    deliver(&p, user, &contents, now - Duration::minutes(10)).await;
    let ids: Vec<Uuid> = contents.iter().map(|c| c.notification_id).collect();
    let view = |status: StatusFilter| {
        let p = &p;
        async move {
            let query = InboxQuery { status, ..InboxQuery::default() };
            let mut got: Vec<Uuid> =
                read_all(p, user, &query, now, 3).await.iter().map(|i| i.content.notification_id).collect();
            got.sort();
            got
        }
    };
    let sorted = |v: &[Uuid]| {
        let mut v = v.to_vec();
        v.sort();
        v
    };
    assert_eq!(
        p.inbox.count(user, now, COUNT_WINDOW).await.unwrap(),
        InboxCounts { unread: 10, unseen: 10, exact: true }
    );

    // One at a time.
    assert!(p.inbox.mark(user, ids[1], Mark::Seen, now).await.unwrap());
    assert!(p.inbox.mark(user, ids[2], Mark::Read, now).await.unwrap());
    assert!(p.inbox.mark(user, ids[3], Mark::Read, now).await.unwrap());
    assert!(p.inbox.mark(user, ids[3], Mark::Unread, now + Duration::seconds(1)).await.unwrap());
    assert!(p.inbox.mark(user, ids[4], Mark::Archived, now).await.unwrap());
    assert!(p.inbox.mark(user, ids[5], Mark::Archived, now).await.unwrap());
    assert!(p.inbox.mark(user, ids[5], Mark::Unarchived, now + Duration::seconds(1)).await.unwrap());
    assert!(p.inbox.mark(user, ids[6], Mark::Dismissed, now).await.unwrap());
    for mark in Mark::ALL {
        assert!(!p.inbox.mark(user, Uuid::new_v4(), mark, now).await.unwrap(), "{mark:?} of an unknown id");
    }
    let state = |i: usize| {
        let p = &p;
        let id = ids[i];
        async move { p.inbox.get(user, id).await.unwrap().unwrap().state }
    };
    assert_eq!(state(1).await, ItemState { seen: true, ..ItemState::default() });
    assert_eq!(state(2).await, ItemState { seen: true, read: true, ..ItemState::default() });
    assert_eq!(state(3).await, ItemState { seen: true, ..ItemState::default() }, "unread keeps seen");
    assert_eq!(state(4).await, ItemState { archived: true, ..ItemState::default() });
    assert_eq!(state(5).await, ItemState::default());
    let live: Vec<Uuid> = ids.iter().copied().filter(|id| *id != ids[6]).collect();
    let not_archived: Vec<Uuid> = live.iter().copied().filter(|id| *id != ids[4]).collect();
    assert_eq!(view(StatusFilter::Inbox).await, sorted(&not_archived));
    assert_eq!(view(StatusFilter::All).await, sorted(&live));
    assert_eq!(view(StatusFilter::Archived).await, vec![ids[4]]);
    assert_eq!(view(StatusFilter::Read).await, vec![ids[2]]);
    let unread: Vec<Uuid> = not_archived.iter().copied().filter(|id| *id != ids[2]).collect();
    assert_eq!(view(StatusFilter::Unread).await, sorted(&unread));
    let unseen: Vec<Uuid> = unread.iter().copied().filter(|id| ![ids[1], ids[3]].contains(id)).collect();
    assert_eq!(view(StatusFilter::Unseen).await, sorted(&unseen));
    assert_eq!(
        p.inbox.count(user, now, COUNT_WINDOW).await.unwrap(),
        InboxCounts { unread: unread.len() as u64, unseen: unseen.len() as u64, exact: true }
    );

    // Everything at once: one watermark. What arrives after it is unread and unseen.
    let mark_time = now + Duration::minutes(1);
    p.inbox.mark_all(user, MarkAll::Seen, mark_time).await.unwrap();
    assert_eq!(p.inbox.count(user, now, COUNT_WINDOW).await.unwrap().unseen, 0);
    p.inbox.mark_all(user, MarkAll::Read { archive: false }, mark_time).await.unwrap();
    assert_eq!(
        p.inbox.count(user, now, COUNT_WINDOW).await.unwrap(),
        InboxCounts { unread: 0, unseen: 0, exact: true }
    );
    // Created earlier, delivered after the watermark: new to the person.
    let late = inbox_content(Uuid::new_v4(), Priority::Normal, now - Duration::hours(1));
    deliver(&p, user, std::slice::from_ref(&late), mark_time + Duration::seconds(1)).await;
    assert_eq!(
        p.inbox.count(user, now, COUNT_WINDOW).await.unwrap(),
        InboxCounts { unread: 1, unseen: 1, exact: true }
    );
    assert_eq!(view(StatusFilter::Unread).await, vec![late.notification_id]);
    // Undone after the watermark: unread again; archive all read takes the rest away.
    assert!(p.inbox.mark(user, ids[7], Mark::Unread, mark_time + Duration::seconds(2)).await.unwrap());
    assert_eq!(view(StatusFilter::Unread).await, sorted(&[ids[7], late.notification_id]));
    p.inbox.mark_all(user, MarkAll::Read { archive: true }, mark_time + Duration::seconds(3)).await.unwrap();
    assert_eq!(view(StatusFilter::Inbox).await, Vec::<Uuid>::new());
    let mut every = live.clone();
    every.push(late.notification_id);
    assert_eq!(view(StatusFilter::Archived).await, sorted(&every));
    assert!(p.inbox.mark(user, ids[8], Mark::Unarchived, mark_time + Duration::seconds(4)).await.unwrap());
    assert_eq!(view(StatusFilter::Inbox).await, vec![ids[8]]);
    assert_eq!(state(8).await, ItemState { seen: true, read: true, ..ItemState::default() });

    // A token is refused by a view other than its own only through the service's seal; a
    // forged one is refused here.
    let forged = PageRequest::after(3, Some("bm90LWEtdG9rZW4".into()));
    assert!(matches!(
        p.inbox.list(user, &InboxQuery::ordered(), now, &forged).await,
        Err(StoreError::BadToken(_))
    ));
}

/// Watermarks only move forward: a mark-all timed by a clock a few milliseconds behind the one
/// that set a watermark leaves it (moved back, it would uncover what the person had marked), and
/// moves forward only the watermarks it sets. An entry is dated when it is written, never earlier
/// than the stamp's time.
async fn watermarks_only_move_forward_and_entries_are_dated_when_written(p: Ports) {
    let user = Uuid::new_v4();
    let t = t0();
    let early = inbox_content(Uuid::new_v4(), Priority::Normal, t - Duration::hours(2));
    let later = inbox_content(Uuid::new_v4(), Priority::Normal, t - Duration::hours(1));
    for c in [&early, &later] {
        p.inbox.put_content(c).await.unwrap();
    }
    // Built an hour before they are written: dated when written.
    let stale = |c: &InboxContent| c.entry_for(user, t - Duration::hours(1));
    p.inbox.put_entries(&[stale(&early)], &ManualClock::new(t - Duration::milliseconds(1))).await.unwrap();
    p.inbox
        .put_new_entries(&[stale(&later)], &ManualClock::new(t + Duration::milliseconds(500)))
        .await
        .unwrap();
    let item = |c: &InboxContent| {
        let (p, id) = (&p, c.notification_id);
        async move { p.inbox.get(user, id).await.unwrap().unwrap() }
    };
    assert_eq!(item(&early).await.entry.delivered_at, t - Duration::milliseconds(1));
    assert_eq!(item(&later).await.entry.delivered_at, t + Duration::milliseconds(500));

    p.inbox.mark_all(user, MarkAll::Read { archive: true }, t).await.unwrap();
    p.inbox.mark_all(user, MarkAll::Read { archive: false }, t - Duration::milliseconds(3)).await.unwrap();
    let everything = ItemState { seen: true, read: true, archived: true, dismissed: false };
    assert_eq!(item(&early).await.state, everything, "still covered: nothing moved back");
    assert_eq!(item(&later).await.state, ItemState::default(), "delivered after the watermark");
    p.inbox.mark_all(user, MarkAll::Seen, t + Duration::seconds(1)).await.unwrap();
    assert_eq!(item(&later).await.state, ItemState { seen: true, ..ItemState::default() });
    assert_eq!(item(&early).await.state, everything);
}

/// Every view, read page by page, is the model's rule over a random history
/// ([`tests::views::match_the_rule`]).
async fn every_view_is_the_rule_over_a_random_history(p: Ports) {
    tests::views::match_the_rule(p.inbox.as_ref(), 0..3).await;
}

/// Counts read a bounded window: beyond it they say they are not exact. Mark-all of a large
/// inbox is one write (the stores count: see `inbox_write_units` for DynamoDB's bill).
async fn inbox_counts_are_bounded(p: Ports) {
    let user = Uuid::new_v4();
    let now = t0();
    let contents: Vec<InboxContent> = (0..12)
        .map(|i| inbox_content(Uuid::new_v4(), Priority::Normal, now - Duration::seconds(i)))
        .collect();
    deliver(&p, user, &contents, now).await;
    assert!(p.inbox.mark(user, contents[0].notification_id, Mark::Read, now).await.unwrap());
    assert_eq!(
        p.inbox.count(user, now, 12).await.unwrap(),
        InboxCounts { unread: 11, unseen: 11, exact: true }
    );
    assert_eq!(
        p.inbox.count(user, now, 5).await.unwrap(),
        InboxCounts { unread: 4, unseen: 4, exact: false }
    );
    assert_eq!(
        p.inbox.count(Uuid::new_v4(), now, 5).await.unwrap(),
        InboxCounts { unread: 0, unseen: 0, exact: true }
    );
}

/// Open WebSocket connections: by person, many people at once, unexpired only; a connection
/// forgotten names its person once.
async fn connections_are_kept_by_person_until_closed_or_expired(p: Ports) {
    let (a, b, c) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
    let (company, quiet) = (rand::random::<u32>() as u64 + 10, rand::random::<u32>() as u64 + 10);
    let now = t0();
    let later = now + Duration::hours(2);
    assert!(!p.connections.online(company, now).await.unwrap(), "nobody yet");
    p.connections.add(a, company, "conn-a1", later).await.unwrap();
    p.connections.add(a, company, "conn-a2", later - Duration::minutes(5)).await.unwrap();
    p.connections.add(b, company, "conn-b1", later).await.unwrap();
    p.connections.add(b, company, "conn-b-old", now - Duration::seconds(1)).await.unwrap();
    assert!(p.connections.online(company, now).await.unwrap());
    assert!(
        p.connections.online(company, later - Duration::seconds(1)).await.unwrap(),
        "until the latest expiry"
    );
    assert!(!p.connections.online(company, later).await.unwrap(), "not after it");
    assert!(!p.connections.online(quiet, now).await.unwrap(), "another company");
    let mut open = p.connections.of(&[a, b, c], now).await.unwrap();
    open.sort();
    let mut expected = vec![(a, "conn-a1".to_string()), (a, "conn-a2".into()), (b, "conn-b1".into())];
    expected.sort();
    assert_eq!(open, expected, "expired ones left out, people without any absent");
    assert_eq!(p.connections.remove("conn-a1").await.unwrap(), Some(a));
    assert_eq!(p.connections.remove("conn-a1").await.unwrap(), None, "once");
    assert_eq!(p.connections.remove("never-opened").await.unwrap(), None);
    assert_eq!(p.connections.of(&[a], now).await.unwrap(), vec![(a, "conn-a2".to_string())]);
    assert!(p.connections.of(&[], now).await.unwrap().is_empty());
    // Many people at once (more than one BatchGetItem).
    let many: Vec<Uuid> = (0..150).map(|_| Uuid::new_v4()).collect();
    for (i, u) in many.iter().enumerate() {
        if i % 3 == 0 {
            p.connections.add(*u, company, &format!("conn-{i}"), later).await.unwrap();
        }
    }
    assert_eq!(p.connections.of(&many, now).await.unwrap().len(), 50);
}

async fn directory_loads_and_answers(p: Ports) {
    let mut snapshot = DirectorySnapshot::demo();
    // A team larger than a page, to exercise member paging.
    let big: Vec<Uuid> = (0..60).map(|_| Uuid::new_v4()).collect();
    for (i, id) in big.iter().enumerate() {
        snapshot.users.push(UserRecord {
            id: *id,
            number: 5000 + i as u64,
            company_id: 3,
            email: format!("big{i}@demo.example"),
            first_name: String::new(),
            roles: vec![],
            token_sha256: shared::credentials::digest(&format!("big-{i}")),
            token_expires_at: None,
        });
    }
    snapshot.teams.push(TeamRecord { company_id: 3, id: "99".into(), members: big.clone() });
    p.directory.load(&snapshot).await.unwrap();

    let d = &p.directory;
    let digest = shared::credentials::digest;
    let u1: Uuid = "11111111-1111-4111-8111-111111111111".parse().unwrap();
    assert_eq!(
        d.credential(&digest("demo-user-1-token")).await.unwrap(),
        Some(Credential::UserToken { user_id: u1, expires_at: None })
    );
    assert_eq!(
        d.credential(&digest("00000000-0000-4000-8000-000000000004")).await.unwrap(),
        Some(Credential::CompanyApiKey { company_id: 4 })
    );
    assert_eq!(d.credential(&digest("nope")).await.unwrap(), None);
    // Batched: in the order asked, the unknown as None, one asked twice answered twice
    // (BatchGetItem refuses a key named twice in one request).
    let (token, key) = (digest("demo-user-1-token"), digest("00000000-0000-4000-8000-000000000004"));
    assert_eq!(
        d.credentials(&[&key, &digest("nope"), &token, &key]).await.unwrap(),
        vec![
            Some(Credential::CompanyApiKey { company_id: 4 }),
            None,
            Some(Credential::UserToken { user_id: u1, expires_at: None }),
            Some(Credential::CompanyApiKey { company_id: 4 }),
        ]
    );
    assert_eq!(d.credentials(&[]).await.unwrap(), vec![]);
    let (user, company) = d.user_and_company(u1, 4).await.unwrap();
    assert_eq!((user.map(|u| u.number), company.map(|c| c.id)), (Some(1001), Some(4)));
    assert_eq!(d.user_and_company(Uuid::new_v4(), 3).await.unwrap().0, None);
    assert_eq!(d.user_and_company(u1, 999).await.unwrap().1, None);
    assert!(!d.company(4).await.unwrap().unwrap().desktop_push_enabled);
    let user = d.user_by_email("Aaron.McMullen@hypermedia.com.au").await.unwrap().unwrap();
    assert_eq!((user.id, user.number, user.company_id), (u1, 1001, 3));
    assert_eq!(d.user(u1).await.unwrap().unwrap().email, "aaron.mcmullen@hypermedia.com.au");

    assert!(d.team(3, "23").await.unwrap().is_some());
    assert!(d.team(4, "23").await.unwrap().is_none(), "teams belong to a company");
    assert_eq!(d.team_members(3, "27", &PageRequest::first(10)).await.unwrap().items.len(), 2);
    let mut members = Vec::new();
    let mut page = PageRequest::first(25);
    loop {
        let got = d.team_members(3, "99", &page).await.unwrap();
        members.extend(got.items);
        match got.next {
            Some(t) => page.after = Some(t),
            None => break,
        }
    }
    assert_eq!(members.iter().collect::<HashSet<_>>(), big.iter().collect::<HashSet<_>>());
    assert_eq!(members.len(), 60);
    assert_eq!(d.company_members(4, &PageRequest::first(10)).await.unwrap().items.len(), 2);

    let event: Uuid = "ed90fcd2-cbb4-49b8-9be4-a14ccbc2d1e8".parse().unwrap();
    let e = d.event(event).await.unwrap().unwrap();
    assert!(!e.cancelled);
    assert_eq!(e.team_ids, vec!["456".to_string(), "459".to_string()]);
    let attendees = d.event_attendees(event, "456", &PageRequest::first(10)).await.unwrap().items;
    assert_eq!(attendees.iter().filter(|a| a.status == AttendeeStatus::Accepted).count(), 2);
    assert!(
        d.event("0c0c0c0c-0000-4000-8000-00000000000c".parse().unwrap()).await.unwrap().unwrap().cancelled
    );

    assert_eq!(
        d.smart_library(11).await.unwrap().unwrap().entry_ids,
        vec!["101".to_string(), "102".to_string()]
    );
    assert_eq!(d.smart_library_subscribers(11, &PageRequest::first(10)).await.unwrap().items.len(), 2);
    assert_eq!(d.asset_members(4, &PageRequest::first(10)).await.unwrap().items.len(), 4);
    let unsubs = d.asset_unsubscribes(4).await.unwrap();
    assert_eq!(unsubs.len(), 2);
    assert!(unsubs.iter().any(|u| u.notifications && !u.emails));
    d.touch_asset(4, t0()).await.unwrap();
    assert_eq!(d.asset(4).await.unwrap().unwrap().last_modified, Some(t0()));
    d.touch_asset(404, t0()).await.unwrap();
    assert!(d.asset(404).await.unwrap().is_none(), "touching an unknown asset creates nothing");

    let dept: Uuid = "d0000000-0000-4000-8000-000000000001".parse().unwrap();
    let department = d.department(dept).await.unwrap().unwrap();
    assert!(shared::credentials::verify("demo-secret", &department.secret_sha256));
    assert!(d.department_has_member(dept, u1).await.unwrap());
    assert!(
        !d.department_has_member(dept, "99999999-9999-4999-8999-999999999999".parse().unwrap())
            .await
            .unwrap()
    );
}

async fn queues_batch_redeliver_and_ack(p: Ports) {
    let q = &p.delivery_queue;
    let bodies: Vec<String> = (0..25).map(|i| format!("{{\"n\":{i}}}")).collect();
    q.send_all(&bodies).await.unwrap();
    let mut received = Vec::new();
    for _ in 0..20 {
        let got = q.receive(10).await.unwrap();
        if got.is_empty() && received.len() == 25 {
            break;
        }
        assert!(got.len() <= 10);
        received.extend(got);
    }
    assert_eq!(
        received.iter().map(|m| m.body.clone()).collect::<BTreeSet<_>>(),
        bodies.iter().cloned().collect::<BTreeSet<_>>()
    );
    assert!(received.iter().all(|m| m.receive_count == 1));
    assert!(q.receive(10).await.unwrap().is_empty(), "received messages are hidden");

    // A failed attempt (nack) comes back with a higher receive count; acked ones never do.
    let (retry, done) = received.split_at(1);
    for m in done {
        q.ack(&m.receipt).await.unwrap();
    }
    q.nack(&retry[0].receipt).await.unwrap();
    let again = q.receive(10).await.unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].body, retry[0].body);
    assert_eq!(again[0].receive_count, 2);
    q.ack(&again[0].receipt).await.unwrap();
    assert!(q.receive(10).await.unwrap().is_empty());
}

async fn daily_quota_is_atomic_per_company_and_day(p: Ports) {
    let n = &p.notifications;
    let wins = futures::future::join_all((0..8).map(|_| n.consume_quota(3, "2026-11-22", 2, 10))).await;
    assert_eq!(
        wins.into_iter().map(Result::unwrap).filter(|w| *w).count(),
        5,
        "8 concurrent sends of 2 under a cap of 10"
    );
    assert!(!n.consume_quota(3, "2026-11-22", 1, 10).await.unwrap(), "the cap is reached");
    assert!(n.consume_quota(4, "2026-11-22", 10, 10).await.unwrap(), "another company has its own");
    assert!(n.consume_quota(3, "2026-11-23", 10, 10).await.unwrap(), "another day has its own");
    assert!(!n.consume_quota(3, "2026-11-24", 11, 10).await.unwrap(), "one send over the cap");
    assert!(n.consume_quota(3, "2026-11-24", 0, 10).await.unwrap());
}

async fn chunk_context_reads_notification_marker_and_marks_at_once(p: Ports) {
    let now = t0();
    let n = notification(Uuid::new_v4(), 77, 3, BroadcastType::GT, now);
    let empty = p.notifications.chunk_context(n.id, 0).await.unwrap();
    assert_eq!(empty, ChunkContext::default(), "nothing known about an unknown notification");
    p.notifications.insert(&n).await.unwrap();
    let keys: Vec<String> = vec![SentMarks::email(Uuid::from_u128(1)), SentMarks::push("dev-1")];
    p.notifications.add_sent_marks(n.id, 3, &keys, now).await.unwrap();
    // Adding again (a retried write) and adding more keeps a set.
    p.notifications.add_sent_marks(n.id, 3, &keys[..1], now).await.unwrap();
    p.notifications.add_sent_marks(n.id, 3, &["p:dev-2".to_string()], now).await.unwrap();
    p.notifications.add_sent_marks(n.id, 3, &[], now).await.unwrap();
    let ctx = p.notifications.chunk_context(n.id, 3).await.unwrap();
    assert_eq!(ctx.notification.as_ref().map(|x| x.id), Some(n.id));
    assert!(!ctx.recorded);
    let mut marks: Vec<_> = ctx.marks.0.into_iter().collect();
    marks.sort();
    let mut expected = vec![keys[0].clone(), keys[1].clone(), "p:dev-2".to_string()];
    expected.sort();
    assert_eq!(marks, expected);
    assert!(p.notifications.chunk_context(n.id, 4).await.unwrap().marks.0.is_empty(), "marks are per chunk");
    p.notifications.record_chunk(n.id, 3, &ChunkTally::default(), now).await.unwrap();
    assert!(p.notifications.chunk_context(n.id, 3).await.unwrap().recorded);
}

async fn devices_are_owned_by_one_person_and_capped(p: Ports) {
    let device = |n: u8, at: i64| Device {
        device_id: format!("d{n}"),
        platform: Platform::Gcm,
        token: format!("token-{n}"),
        endpoint_arn: format!("arn:aws:sns:us-east-1:1:endpoint/GCM/app/{n}"),
        registered_at: t0() + Duration::seconds(at),
    };
    let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
    assert!(p.devices.put_device(a, &device(1, 1), 2).await.unwrap().is_empty());
    assert!(p.devices.put_device(a, &device(2, 2), 2).await.unwrap().is_empty());
    // Re-registering replaces, a third displaces the oldest.
    assert!(p.devices.put_device(a, &device(2, 3), 2).await.unwrap().is_empty());
    let displaced = p.devices.put_device(a, &device(3, 4), 2).await.unwrap();
    assert_eq!(displaced.iter().map(|d| d.device_id.as_str()).collect::<Vec<_>>(), vec!["d1"]);
    let ids = |v: Vec<Device>| v.into_iter().map(|d| d.device_id).collect::<Vec<_>>();
    assert_eq!(ids(p.devices.devices(a).await.unwrap()), vec!["d3", "d2"], "newest first");
    // Someone else registering d2 takes it.
    let moved = p.devices.put_device(b, &device(2, 5), 10).await.unwrap();
    assert_eq!(ids(moved), vec!["d2"]);
    assert_eq!(ids(p.devices.devices(a).await.unwrap()), vec!["d3"]);
    let mut of = p.devices.devices_of(&[a, b, Uuid::new_v4()]).await.unwrap();
    of.sort_by_key(|(u, _)| *u == b);
    assert_eq!(of.iter().map(|(u, d)| (*u, d.len())).collect::<Vec<_>>(), vec![(a, 1), (b, 1)]);
    assert_eq!(p.devices.remove_device(a, "d3").await.unwrap().map(|d| d.device_id), Some("d3".into()));
    assert_eq!(p.devices.remove_device(a, "d3").await.unwrap(), None);
    assert!(p.devices.devices_of(&[a]).await.unwrap().is_empty());
    let company = 1_000_000 + (a.as_u128() % 1_000_000) as u64;
    assert!(!p.devices.company_has_devices(company).await.unwrap());
    p.devices.mark_company_devices(company).await.unwrap();
    p.devices.mark_company_devices(company).await.unwrap();
    assert!(p.devices.company_has_devices(company).await.unwrap());
}

async fn users_in_batches_and_email_unsubscribes(p: Ports) {
    p.directory.load(&DirectorySnapshot::demo()).await.unwrap();
    let u1 = "11111111-1111-4111-8111-111111111111".parse().unwrap();
    let u3: Uuid = "33333333-3333-4333-8333-333333333333".parse().unwrap();
    let mut ids = vec![u1, u3, Uuid::new_v4()];
    ids.extend((0..150).map(|_| u1));
    let mut got: Vec<Uuid> = p.directory.users(&ids).await.unwrap().into_iter().map(|u| u.id).collect();
    got.sort();
    got.dedup();
    assert_eq!(got, vec![u1, u3]);
    // ALP-EUN: recorded for u3, kept beside u2's ALP-NUN; an unknown asset is refused.
    p.directory.unsubscribe_emails(4, u3).await.unwrap();
    p.directory.unsubscribe_emails(4, u3).await.unwrap();
    let prefs = p.directory.asset_unsubscribes(4).await.unwrap();
    let of = |u: Uuid| prefs.iter().find(|p| p.user_id == u).copied();
    assert!(of(u3).is_some_and(|p| p.emails && !p.notifications));
    assert!(of("22222222-2222-4222-8222-222222222222".parse().unwrap()).is_some_and(|p| p.notifications));
    assert!(matches!(p.directory.unsubscribe_emails(999, u3).await, Err(StoreError::Conflict(_))));
}

/// The sent marks of the largest chunk (5,000 people) with the most devices each (10) are 1.7 MB,
/// four times what one DynamoDB item may hold: they are kept, all of them, and a write naming a
/// mark twice (which DynamoDB refuses for a set) is fine.
async fn the_largest_chunks_sent_marks_are_all_kept(ports: Ports) {
    let id = Uuid::new_v4();
    let marks: Vec<String> = (0..5_000u32 * shared::service::devices::MAX_DEVICES_PER_USER as u32)
        .map(|i| format!("p:{:032x}", u128::from(i) * 0x9e37_79b9_7f4a_7c15))
        .collect();
    for batch in marks.chunks(2_500) {
        let mut batch = batch.to_vec();
        batch.push(batch[0].clone());
        ports.notifications.add_sent_marks(id, 7, &batch, t0()).await.expect("marks written");
    }
    let context = ports.notifications.chunk_context(id, 7).await.unwrap();
    assert_eq!(context.marks.0.len(), marks.len(), "every mark kept");
    assert!(marks.iter().all(|m| context.marks.0.contains(m)));
    assert!(ports.notifications.chunk_context(id, 8).await.unwrap().marks.0.is_empty(), "per chunk");
}

/// A suppressed address stays suppressed with its first reason, whatever case it is written in,
/// and a directory reload does not lift it.
async fn email_suppressions_keep_their_first_reason(p: Ports) {
    let now = t0();
    let tag = Uuid::new_v4().simple().to_string();
    let (a, b) = (format!("Bounced.{tag}@Example.com"), format!("complained.{tag}@example.com"));
    let suppression = |address: &str, reason| EmailSuppression {
        address: address.to_ascii_lowercase(),
        reason,
        since: now,
        notification_id: None,
    };
    assert!(p.directory.email_suppressions(&[a.clone(), b.clone()]).await.unwrap().is_empty());
    p.directory.suppress_email(&suppression(&a, FeedbackKind::Bounce)).await.unwrap();
    p.directory.suppress_email(&suppression(&a, FeedbackKind::Complaint)).await.unwrap();
    p.directory.suppress_email(&suppression(&b, FeedbackKind::Complaint)).await.unwrap();
    p.directory.load(&shared::directory::DirectorySnapshot::demo()).await.unwrap();
    let mut found =
        p.directory.email_suppressions(&[a.clone(), b.to_uppercase(), "x@y.z".into()]).await.unwrap();
    found.sort_by(|x, y| x.address.cmp(&y.address));
    let reasons: Vec<(String, FeedbackKind)> = found.into_iter().map(|s| (s.address, s.reason)).collect();
    assert_eq!(
        reasons,
        vec![(a.to_ascii_lowercase(), FeedbackKind::Bounce), (b.clone(), FeedbackKind::Complaint)]
    );
}

/// A later attempt's entries never change one a person has: their marks, its delivery time and
/// the watermarks' cover stay exactly as they were; the entries nobody has are written, and said.
async fn new_entries_leave_what_people_did_alone(p: Ports) {
    let now = t0();
    let (reader, dismisser, archiver, sweeper, newcomer) =
        (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
    let content = inbox_content(Uuid::new_v4(), Priority::Normal, now - Duration::minutes(5));
    p.inbox.put_content(&content).await.unwrap();
    let first = now - Duration::minutes(4);
    let people = [reader, dismisser, archiver, sweeper];
    let entries: Vec<InboxEntry> = people.iter().map(|u| content.entry_for(*u, first)).collect();
    p.inbox.put_entries(&entries, &ManualClock::new(first)).await.unwrap();
    let id = content.notification_id;
    assert!(p.inbox.mark(reader, id, Mark::Read, now - Duration::minutes(3)).await.unwrap());
    assert!(p.inbox.mark(dismisser, id, Mark::Dismissed, now - Duration::minutes(3)).await.unwrap());
    assert!(p.inbox.mark(archiver, id, Mark::Archived, now - Duration::minutes(3)).await.unwrap());
    p.inbox.mark_all(sweeper, MarkAll::Read { archive: true }, now - Duration::minutes(2)).await.unwrap();
    let before: Vec<Option<InboxItem>> =
        futures::future::join_all(people.iter().map(|u| p.inbox.get(*u, id)))
            .await
            .into_iter()
            .map(Result::unwrap)
            .collect();
    assert!(before.iter().all(Option::is_some));

    // The retry, a minute later: every person of the chunk again, and one who was not reached.
    let again: Vec<InboxEntry> =
        people.iter().chain([&newcomer]).map(|u| content.entry_for(*u, now - Duration::minutes(1))).collect();
    let retried = ManualClock::new(now - Duration::minutes(1));
    assert_eq!(
        p.inbox.put_new_entries(&again, &retried).await.unwrap(),
        vec![newcomer],
        "only the newcomer's is new"
    );
    assert!(p.inbox.put_new_entries(&again, &retried).await.unwrap().is_empty(), "and then nobody's");
    for (person, was) in people.iter().zip(&before) {
        assert_eq!(&p.inbox.get(*person, id).await.unwrap(), was, "{person}: as it was");
    }
    let read = |u| {
        let p = &p;
        async move { read_all(p, u, &InboxQuery::default(), now, 10).await.len() }
    };
    assert_eq!(read(dismisser).await, 0, "dismissed stays dismissed");
    assert_eq!(read(archiver).await, 0, "archived stays archived");
    assert_eq!(read(sweeper).await, 0, "still under the watermark that read and archived it");
    assert_eq!(p.inbox.count(reader, now, COUNT_WINDOW).await.unwrap().unread, 0, "read stays read");
    let fresh = p.inbox.get(newcomer, id).await.unwrap().expect("the newcomer's entry");
    assert_eq!((fresh.entry.delivered_at, fresh.state.read), (now - Duration::minutes(1), false));
}

/// A chunk is started once: the first attempt is told so; while its lease runs any other attempt
/// (another message's, or another receive of the same message: SQS can hand one message to two
/// consumers at once) is told to leave it, and only the same attempt takes it over (its first
/// write's answer was lost); once the lease ran out (or was handed back by its holder) any
/// attempt takes it over.
async fn a_chunk_is_started_by_one_attempt_at_a_time(p: Ports) {
    let now = t0();
    let id = Uuid::new_v4();
    let lease = now + Duration::seconds(75);
    let start = |chunk, holder: &'static str, at, until| {
        let p = &p;
        async move { p.notifications.start(id, Work::Chunk(chunk), holder, at, until).await.unwrap() }
    };
    assert_eq!(start(3, "m1", now, lease).await, ChunkStart::First);
    assert_eq!(start(4, "m1", now, lease).await, ChunkStart::First, "per chunk");
    let during = now + Duration::seconds(74);
    let later = during + Duration::seconds(75);
    assert_eq!(start(3, "copy", during, later).await, ChunkStart::Held, "another receive waits");
    assert_eq!(start(3, "m1", during, later).await, ChunkStart::Retry, "the same attempt takes over");
    assert_eq!(
        start(3, "copy", later - Duration::seconds(1), later).await,
        ChunkStart::Held,
        "its new lease"
    );
    let after = later + Duration::seconds(1);
    let third = after + Duration::seconds(75);
    assert_eq!(start(3, "copy", after, third).await, ChunkStart::Retry, "run out: anyone's");
    // Handing back needs the lease: an earlier holder's is no longer it, nor is another
    // attempt's with the same end.
    p.notifications.release(id, Work::Chunk(3), "m1", later).await.unwrap();
    assert_eq!(start(3, "m1", after, third).await, ChunkStart::Held);
    p.notifications.release(id, Work::Chunk(3), "m1", third).await.unwrap();
    assert_eq!(start(3, "m1", after, third).await, ChunkStart::Held, "not m1's to hand back");
    p.notifications.release(id, Work::Chunk(3), "copy", third).await.unwrap();
    assert_eq!(start(3, "m1", after, third).await, ChunkStart::Retry, "handed back");
    // A chunk's email job is a piece of work of its own.
    let job = Work::EmailJob { chunk: 3, part: 0 };
    assert_eq!(p.notifications.start(id, job, "copy", after, third).await.unwrap(), ChunkStart::First);
    // Of two messages' attempts at once, one holds it.
    let (a, b) = tokio::join!(start(9, "a", now, lease), start(9, "b", now, lease));
    let mut got = [a, b];
    got.sort_by_key(|s| format!("{s:?}"));
    assert_eq!(got, [ChunkStart::First, ChunkStart::Held]);
}

/// A cancel and every chunk's start meet at the notification's gate: a chunk that started before
/// is counted in the cancel's answer, one after never starts; a pending notification is never
/// due again; a finished one is not cancelled; a repeat answers the same; nothing later moves
/// a cancelled notification, and a started chunk's record still counts.
async fn a_cancel_and_the_chunks_starts_meet_at_one_gate(p: Ports) {
    let now = t0();
    let by = "654";
    let cancel = |id, at| {
        let p = &p;
        async move { p.notifications.cancel(id, by, at).await.unwrap() }
    };
    // Pending: cancelled, reached nobody, never due, never claimed.
    let pending = notification(Uuid::new_v4(), 1, 3, BroadcastType::GT, now);
    p.notifications.insert(&pending).await.unwrap();
    let first = cancel(pending.id, now).await;
    let cancellation = Cancellation { at: now, by: by.into() };
    assert_eq!(first, CancelOutcome::Cancelled { cancellation: cancellation.clone(), reached: 0, now: true });
    assert!(p.notifications.due(now + Duration::hours(1), 10).await.unwrap().is_empty(), "never due again");
    assert!(!p.notifications.claim(pending.id, now, now + Duration::minutes(3)).await.unwrap());
    let stored = p.notifications.get(pending.id).await.unwrap().unwrap();
    assert_eq!((stored.status, stored.cancelled.as_ref()), (Status::Cancelled, Some(&cancellation)));
    assert_eq!(stored.modified_by, by);
    assert!(!stored.successful());
    // A repeat, later and by someone else, answers what the first did.
    assert_eq!(
        p.notifications.cancel(pending.id, "721", now + Duration::minutes(1)).await.unwrap(),
        CancelOutcome::Cancelled { cancellation, reached: 0, now: false }
    );

    // Under way: two chunks started (in two gates) before the cancel are its answer; a chunk
    // after it never starts, on its first attempt or any; the started ones go on.
    let running = notification(Uuid::new_v4(), 2, 3, BroadcastType::GT, now);
    p.notifications.insert(&running).await.unwrap();
    let lease = now + Duration::minutes(3);
    assert!(p.notifications.claim(running.id, now, lease).await.unwrap());
    let start = |chunk, people, holder: &'static str, at| {
        let p = &p;
        let id = running.id;
        async move {
            p.notifications
                .start_chunk(id, chunk, people, holder, at, at + Duration::seconds(75))
                .await
                .unwrap()
        }
    };
    assert_eq!(start(0, 2000, "m0", now).await, Some(ChunkStart::First));
    assert_eq!(start(9, 5, "m9", now).await, Some(ChunkStart::First));
    assert_eq!(start(0, 2000, "copy", now).await, Some(ChunkStart::Held), "counted once");
    let at = now + Duration::seconds(10);
    assert_eq!(
        cancel(running.id, at).await,
        CancelOutcome::Cancelled {
            cancellation: Cancellation { at, by: by.into() },
            reached: 2005,
            now: true
        }
    );
    assert_eq!(start(1, 2000, "m1", at).await, None, "a chunk not started by then never starts");
    assert_eq!(start(1, 2000, "m1", at + Duration::minutes(5)).await, None, "nor on a later attempt");
    assert_eq!(start(0, 2000, "m0", at).await, Some(ChunkStart::Retry), "a started one goes on");
    let progress = FanoutProgress { chunks_enqueued: 10, recipients_enqueued: 18_005 };
    assert!(
        matches!(
            p.notifications.save_progress(running.id, &progress, lease, lease).await,
            Err(StoreError::Conflict(_))
        ),
        "the fan-out stops at its next batch"
    );
    assert!(matches!(
        p.notifications.finish_fanout(running.id, 10, 18_005, lease, at).await,
        Err(StoreError::Conflict(_))
    ));
    let tally = ChunkTally { delivered: 2000, ..ChunkTally::default() };
    assert_eq!(p.notifications.record_chunk(running.id, 0, &tally, at).await.unwrap(), ChunkRecord::Recorded);
    assert_eq!(p.notifications.complete_if_done(running.id, at).await.unwrap(), Status::Cancelled);
    let stored = p.notifications.get(running.id).await.unwrap().unwrap();
    assert_eq!((stored.status, stored.delivered, stored.failure), (Status::Cancelled, 2000, None));
    assert_eq!(
        cancel(running.id, at + Duration::minutes(1)).await,
        CancelOutcome::Cancelled {
            cancellation: Cancellation { at, by: by.into() },
            reached: 2005,
            now: false
        }
    );

    // A chunk it counted given up later: the reason is kept beside its status, the first one.
    p.notifications.mark_failed(running.id, "chunk 9 dead-lettered twice", at).await.unwrap();
    p.notifications.mark_failed(running.id, "again", at).await.unwrap();
    let stored = p.notifications.get(running.id).await.unwrap().unwrap();
    assert_eq!(
        (stored.status, stored.failure.as_deref()),
        (Status::Cancelled, Some("chunk 9 dead-lettered twice"))
    );

    // Stored by an earlier version (its chunks started without the gate): stopped only while
    // pending; going out, it goes on.
    let mut old = notification(Uuid::new_v4(), 6, 3, BroadcastType::GT, now);
    old.gated = false;
    p.notifications.insert(&old).await.unwrap();
    assert!(p.notifications.claim(old.id, now, lease).await.unwrap());
    assert_eq!(cancel(old.id, now).await, CancelOutcome::Ungated(Status::FanningOut));
    assert_eq!(p.notifications.get(old.id).await.unwrap().unwrap().status, Status::FanningOut);
    let mut old_pending = notification(Uuid::new_v4(), 7, 3, BroadcastType::GT, now);
    old_pending.gated = false;
    p.notifications.insert(&old_pending).await.unwrap();
    assert!(matches!(
        cancel(old_pending.id, now).await,
        CancelOutcome::Cancelled { reached: 0, now: true, .. }
    ));

    // Changes: while pending, at the revision read; a stale one and a late one are told apart.
    let mut draft = notification(Uuid::new_v4(), 8, 3, BroadcastType::GT, now + Duration::hours(1));
    p.notifications.insert(&draft).await.unwrap();
    draft.content.body = "changed".into();
    draft.due_at = now + Duration::hours(2);
    draft.revision = 1;
    assert_eq!(p.notifications.change(&draft, 0).await.unwrap(), ChangeOutcome::Changed);
    assert_eq!(
        p.notifications.change(&draft, 0).await.unwrap(),
        ChangeOutcome::Stale,
        "read before the first"
    );
    let stored = p.notifications.get(draft.id).await.unwrap().unwrap();
    assert_eq!(
        (stored.content.body.as_str(), stored.due_at, stored.revision),
        ("changed", now + Duration::hours(2), 1)
    );
    let due_at = |t| {
        let p = &p;
        async move { p.notifications.due(t, 10).await.unwrap() }
    };
    assert!(
        !due_at(now + Duration::minutes(90)).await.contains(&draft.id),
        "due at its new time, not its old"
    );
    assert!(due_at(now + Duration::hours(2)).await.contains(&draft.id));
    assert!(
        p.notifications.claim(draft.id, now + Duration::hours(2), now + Duration::hours(3)).await.unwrap()
    );
    draft.revision = 2;
    assert_eq!(
        p.notifications.change(&draft, 1).await.unwrap(),
        ChangeOutcome::NotPending(Status::FanningOut)
    );
    let mut ghost = draft.clone();
    ghost.id = Uuid::new_v4();
    assert_eq!(p.notifications.change(&ghost, 0).await.unwrap(), ChangeOutcome::Missing);

    // Finished: delivered and failed ones are not cancelled; an unknown one is missing.
    let done = notification(Uuid::new_v4(), 3, 3, BroadcastType::GT, now);
    p.notifications.insert(&done).await.unwrap();
    assert!(p.notifications.claim(done.id, now, lease).await.unwrap());
    assert_eq!(p.notifications.finish_fanout(done.id, 0, 0, lease, now).await.unwrap(), Status::Delivered);
    assert_eq!(cancel(done.id, now).await, CancelOutcome::Finished(Status::Delivered));
    let failed = notification(Uuid::new_v4(), 4, 3, BroadcastType::GT, now);
    p.notifications.insert(&failed).await.unwrap();
    p.notifications.mark_failed(failed.id, "audience vanished", now).await.unwrap();
    assert_eq!(cancel(failed.id, now).await, CancelOutcome::Finished(Status::Failed));
    assert_eq!(cancel(Uuid::new_v4(), now).await, CancelOutcome::Missing);
    assert_eq!(p.notifications.get(done.id).await.unwrap().unwrap().status, Status::Delivered);

    // Chunk starts racing a cancel: whatever the order, the answer is the people of the chunks
    // that started, and no chunk starts after it.
    let raced = notification(Uuid::new_v4(), 5, 3, BroadcastType::GT, now);
    p.notifications.insert(&raced).await.unwrap();
    let starts = (0..16u32).map(|c| {
        let p = &p;
        async move {
            (c, p.notifications.start_chunk(raced.id, c, 100 + c as u64, "m", now, lease).await.unwrap())
        }
    });
    let (started, cancelled) =
        tokio::join!(futures::future::join_all(starts), async { cancel(raced.id, now).await });
    let counted: u64 =
        started.iter().filter(|(_, s)| *s == Some(ChunkStart::First)).map(|(c, _)| 100 + *c as u64).sum();
    let CancelOutcome::Cancelled { reached, .. } = cancelled else { panic!("{cancelled:?}") };
    assert_eq!(reached, counted, "the answer is the people of the chunks that started: {started:?}");
    for c in 0..16u32 {
        let again = p
            .notifications
            .start_chunk(raced.id, c, 100 + c as u64, "n", lease, lease + Duration::minutes(1))
            .await
            .unwrap();
        let before = started[c as usize].1;
        assert_eq!(
            again.is_some(),
            before.is_some(),
            "chunk {c}: started once means it goes on; refused stays refused"
        );
    }
}

/// A retraction's part of the store: a chunk keeps the people of each attempt (the same list
/// once, another list beside it), the retraction is one conditional write once the notification
/// is out (and closes the gate), a chunk is closed only when no attempt holds it and never starts
/// again, each chunk's removal is recorded once (in the delivery log), and removed entries are
/// gone from every read. A correction replaces the content of one that went out, on the
/// revision read, until it is retracted.
async fn a_retraction_closes_each_chunk_and_removes_what_it_kept(p: Ports) {
    let now = t0();
    let lease = now + Duration::minutes(3);
    let chunk_lease = now + Duration::seconds(75);
    let people: Vec<UserId> = (0..5).map(|_| Uuid::new_v4()).collect();
    let n = notification(Uuid::new_v4(), 11, 3, BroadcastType::GT, now);
    p.notifications.insert(&n).await.unwrap();
    assert!(p.notifications.claim(n.id, now, lease).await.unwrap());
    let until = now + Duration::days(14);

    // Two chunks start; chunk 0's first attempt keeps its three, a copy from a resumed fan-out
    // keeps a list of its own (one more person), and keeping a list again changes nothing.
    for (chunk, holder) in [(0, "m0"), (1, "m1")] {
        let started = p.notifications.start_chunk(n.id, chunk, 3, holder, now, chunk_lease).await.unwrap();
        assert_eq!(started, Some(ChunkStart::First));
    }
    p.notifications.keep_recipients(n.id, 0, &people[..3], until).await.unwrap();
    p.notifications.keep_recipients(n.id, 0, &people[..3], until).await.unwrap();
    p.notifications.keep_recipients(n.id, 0, &[people[2], people[3]], until).await.unwrap();
    p.notifications.keep_recipients(n.id, 1, &people[4..], until).await.unwrap();
    let kept: BTreeSet<UserId> = p.notifications.recipients(n.id, 0).await.unwrap().into_iter().collect();
    assert_eq!(kept, people[..4].iter().copied().collect(), "every attempt's people, each once");
    assert_eq!(p.notifications.recipients(n.id, 0).await.unwrap().len(), 4);
    assert_eq!(p.notifications.recipients(n.id, 1).await.unwrap(), people[4..].to_vec());
    assert!(p.notifications.recipients(n.id, 2).await.unwrap().is_empty());
    // An email job's lease is no chunk's.
    let job = Work::EmailJob { chunk: 0, part: 1 };
    assert_eq!(p.notifications.start(n.id, job, "e", now, chunk_lease).await.unwrap(), ChunkStart::First);
    assert_eq!(p.notifications.started_chunks(n.id).await.unwrap(), vec![0, 1]);

    // Going out: not yet (cancel first).
    assert_eq!(
        p.notifications.retract(n.id, "654", now).await.unwrap(),
        RetractOutcome::NotOut(Status::FanningOut)
    );
    let tally = ChunkTally { delivered: 3, ..ChunkTally::default() };
    for chunk in [0, 1] {
        p.notifications.record_chunk(n.id, chunk, &tally, now).await.unwrap();
    }
    assert_eq!(p.notifications.finish_fanout(n.id, 2, 6, lease, now).await.unwrap(), Status::Delivered);

    // A correction of what went out: on the revision read; a stale one is told apart.
    let mut fixed = p.notifications.get(n.id).await.unwrap().unwrap();
    fixed.content.body = "corrected".into();
    fixed.corrected = Some(Cancellation { at: now, by: "654".into() });
    fixed.revision = 1;
    assert_eq!(p.notifications.correct(&fixed, 0).await.unwrap(), CorrectOutcome::Corrected);
    assert_eq!(p.notifications.correct(&fixed, 0).await.unwrap(), CorrectOutcome::Stale);
    let stored = p.notifications.get(n.id).await.unwrap().unwrap();
    assert_eq!(
        (stored.content.body.as_str(), stored.corrected.as_ref(), stored.revision, stored.status),
        ("corrected", fixed.corrected.as_ref(), 1, Status::Delivered)
    );

    // Retracted once; a repeat answers the same; the gate is closed.
    let at = now + Duration::seconds(5);
    let retraction = Cancellation { at, by: "654".into() };
    assert_eq!(
        p.notifications.retract(n.id, "654", at).await.unwrap(),
        RetractOutcome::Retracted { retraction: retraction.clone(), reached: 6, now: true }
    );
    assert_eq!(
        p.notifications.retract(n.id, "721", at + Duration::minutes(1)).await.unwrap(),
        RetractOutcome::Retracted { retraction: retraction.clone(), reached: 6, now: false }
    );
    assert_eq!(p.notifications.get(n.id).await.unwrap().unwrap().retracted, Some(retraction));
    // Registered unfinished, first looked at once its steps could no longer be alive (a bound
    // taken from the queues' lives, not the constant: 20 hand-overs of a minute and 10 receives of
    // 6 minutes are 80 minutes); moved on, then finished.
    assert!(!p.notifications.unfinished(at + Duration::minutes(80), 10).await.unwrap().contains(&n.id));
    let first_look = at + Duration::seconds(RETRACTION_RECHECK_SECONDS);
    assert!(p.notifications.unfinished(first_look, 10).await.unwrap().contains(&n.id));
    let next = at + Duration::minutes(10);
    p.notifications.recheck(n.id, Some(next)).await.unwrap();
    assert!(!p.notifications.unfinished(at, 10).await.unwrap().contains(&n.id), "not due before its look");
    assert!(p.notifications.unfinished(next, 10).await.unwrap().contains(&n.id));
    p.notifications.recheck(n.id, None).await.unwrap();
    p.notifications.recheck(n.id, Some(next)).await.unwrap();
    assert!(
        !p.notifications.unfinished(next + Duration::days(1), 10).await.unwrap().contains(&n.id),
        "finished stays finished"
    );
    assert_eq!(p.notifications.kept_chunks(n.id).await.unwrap(), vec![0, 1], "the chunks that kept a list");
    assert_eq!(
        p.notifications.start_chunk(n.id, 7, 3, "late", at, at + Duration::seconds(75)).await.unwrap(),
        None,
        "no chunk starts after it"
    );
    fixed.revision = 2;
    assert_eq!(p.notifications.correct(&fixed, 1).await.unwrap(), CorrectOutcome::Retracted);

    // Closing: a recorded chunk at once, whoever holds it (every entry was written before its
    // record); never started again.
    assert!(p.notifications.close_chunk(n.id, 0, at).await.unwrap(), "recorded: closed while held");
    let later = at + Duration::minutes(10);
    assert_eq!(
        p.notifications
            .start_chunk(n.id, 0, 3, "redriven", later, later + Duration::seconds(75))
            .await
            .unwrap(),
        None,
        "never started again"
    );
    // One not recorded (a cancelled send's chunk under way): not while an attempt holds it (its
    // first, or a retry after its lease ran out); once it is handed back, for good.
    let cut = notification(Uuid::new_v4(), 14, 3, BroadcastType::GT, now);
    p.notifications.insert(&cut).await.unwrap();
    assert!(p.notifications.claim(cut.id, now, lease).await.unwrap());
    assert_eq!(
        p.notifications.start_chunk(cut.id, 0, 3, "c0", now, chunk_lease).await.unwrap(),
        Some(ChunkStart::First)
    );
    assert!(matches!(
        p.notifications.cancel(cut.id, "654", now).await.unwrap(),
        CancelOutcome::Cancelled { reached: 3, .. }
    ));
    assert!(matches!(
        p.notifications.retract(cut.id, "654", now).await.unwrap(),
        RetractOutcome::Retracted { reached: 3, now: true, .. }
    ));
    assert!(!p.notifications.close_chunk(cut.id, 0, now).await.unwrap(), "held by its first attempt");
    let retry = chunk_lease + Duration::seconds(1);
    assert_eq!(
        p.notifications
            .start_chunk(cut.id, 0, 3, "c0-again", retry, retry + Duration::seconds(75))
            .await
            .unwrap(),
        Some(ChunkStart::Retry)
    );
    assert!(!p.notifications.close_chunk(cut.id, 0, retry).await.unwrap(), "held: later");
    p.notifications.release(cut.id, Work::Chunk(0), "c0-again", retry + Duration::seconds(75)).await.unwrap();
    assert!(p.notifications.close_chunk(cut.id, 0, retry).await.unwrap());
    assert!(p.notifications.close_chunk(cut.id, 0, retry).await.unwrap(), "closed stays closed");
    assert_eq!(
        p.notifications
            .start_chunk(cut.id, 0, 3, "c0-late", later, later + Duration::seconds(75))
            .await
            .unwrap(),
        None
    );
    // A lease run out is nobody's: closed; a chunk never started is closed before it starts.
    assert!(p.notifications.close_chunk(n.id, 1, later).await.unwrap());
    assert!(p.notifications.close_chunk(n.id, 5, later).await.unwrap());
    assert_eq!(
        p.notifications.start_chunk(n.id, 5, 3, "m5", later, later + Duration::seconds(75)).await.unwrap(),
        None
    );

    // Each chunk's removal recorded once, in the delivery log.
    p.notifications.record_retracted(n.id, 0, 4, later).await.unwrap();
    p.notifications.record_retracted(n.id, 0, 9, later + Duration::minutes(1)).await.unwrap();
    assert_eq!(p.notifications.retracted_chunks(n.id).await.unwrap(), vec![0]);
    assert!(p.notifications.chunk_retracted(n.id, 0).await.unwrap());
    assert!(!p.notifications.chunk_retracted(n.id, 1).await.unwrap());
    let log = p.notifications.log(n.id, &PageRequest { limit: 50, after: None }).await.unwrap();
    let retracted: Vec<&LogEntry> =
        log.items.iter().filter(|e| matches!(e.event, LogEvent::ChunkRetracted { .. })).collect();
    assert_eq!(retracted.len(), 1, "{:?}", log.items);
    assert_eq!(retracted[0].event, LogEvent::ChunkRetracted { chunk: 0, people: 4 });
    assert_eq!(retracted[0].at, Some(later));

    // Not out yet, stored by an earlier version, unknown.
    let pending = notification(Uuid::new_v4(), 12, 3, BroadcastType::GT, now + Duration::hours(1));
    p.notifications.insert(&pending).await.unwrap();
    assert_eq!(
        p.notifications.retract(pending.id, "654", now).await.unwrap(),
        RetractOutcome::NotOut(Status::Pending)
    );
    let mut early = pending.clone();
    early.revision = 1;
    assert_eq!(p.notifications.correct(&early, 0).await.unwrap(), CorrectOutcome::NotOut(Status::Pending));
    let mut old = notification(Uuid::new_v4(), 13, 3, BroadcastType::GT, now);
    old.keeps_recipients = false;
    p.notifications.insert(&old).await.unwrap();
    assert!(p.notifications.claim(old.id, now, lease).await.unwrap());
    assert_eq!(p.notifications.finish_fanout(old.id, 0, 0, lease, now).await.unwrap(), Status::Delivered);
    assert_eq!(
        p.notifications.retract(old.id, "654", now).await.unwrap(),
        RetractOutcome::Unrecorded(Status::Delivered)
    );
    assert_eq!(p.notifications.retract(Uuid::new_v4(), "654", now).await.unwrap(), RetractOutcome::Missing);
    let mut ghost = fixed.clone();
    ghost.id = Uuid::new_v4();
    assert_eq!(p.notifications.correct(&ghost, 2).await.unwrap(), CorrectOutcome::Missing);

    // A correction's content: of two written out of order, the later revision stays.
    let corrected = inbox_content(Uuid::new_v4(), Priority::Normal, now);
    let reader = Uuid::new_v4();
    deliver(&p, reader, std::slice::from_ref(&corrected), now).await;
    let revision = |body: &str| InboxContent { body: body.into(), ..corrected.clone() };
    p.inbox.correct_content(&revision("second"), 2).await.unwrap();
    p.inbox.correct_content(&revision("first"), 1).await.unwrap();
    let shown = p.inbox.get(reader, corrected.notification_id).await.unwrap().unwrap();
    assert_eq!(shown.content.body, "second", "an earlier revision written late never wins");
    p.inbox.correct_content(&revision("third"), 3).await.unwrap();
    let shown = p.inbox.get(reader, corrected.notification_id).await.unwrap().unwrap();
    assert_eq!(shown.content.body, "third");
    // A fan-out writing the content again (a run resumed from the start) never undoes it.
    p.inbox.put_content(&corrected).await.unwrap();
    let shown = p.inbox.get(reader, corrected.notification_id).await.unwrap().unwrap();
    assert_eq!(shown.content.body, "third", "the fan-out's content never over a correction");

    // Entries removed by key: gone from every read; removing again, or what nobody has, is no error.
    let c = inbox_content(Uuid::new_v4(), Priority::Normal, now);
    let other = inbox_content(Uuid::new_v4(), Priority::High, now);
    for user in &people {
        deliver(&p, *user, &[c.clone(), other.clone()], now).await;
    }
    let user = people[0];
    assert!(p.inbox.mark(user, c.notification_id, Mark::Archived, now).await.unwrap());
    let entries: Vec<InboxEntry> = people.iter().map(|u| c.entry_for(*u, later)).collect();
    p.inbox.remove_entries(&entries).await.unwrap();
    p.inbox.remove_entries(&entries).await.unwrap();
    p.inbox.remove_entries(&[c.entry_for(Uuid::new_v4(), later)]).await.unwrap();
    for user in &people {
        assert!(p.inbox.get(*user, c.notification_id).await.unwrap().is_none());
        assert!(p.inbox.get(*user, other.notification_id).await.unwrap().is_some(), "the others stay");
        let counts = p.inbox.count(*user, now, 100).await.unwrap();
        assert_eq!((counts.unread, counts.unseen), (1, 1));
    }
    for status in [StatusFilter::Inbox, StatusFilter::Archived, StatusFilter::All] {
        let query = InboxQuery { status, ..InboxQuery::default() };
        let shown: Vec<NotificationId> =
            read_all(&p, user, &query, now, 10).await.iter().map(|i| i.content.notification_id).collect();
        assert!(!shown.contains(&c.notification_id), "{status:?}: {shown:?}");
    }
}

/// A tenant's webhook endpoint is written conditionally on the revision read (two admins at once
/// lose nothing), and an event is recorded once by its id: a second record answers the first, a
/// try is kept while the list is short and counted always, and nothing is made for an id that
/// does not exist.
async fn webhook_endpoints_and_events_are_written_once(p: Ports) {
    use shared::model::{HookAttempt, HookEvent, HookEventType, HookState, SigningSecret, WebhookEndpoint};
    let now = t0();
    let company = 900_000 + u64::from(Uuid::new_v4().as_u128() as u16);
    let endpoint = WebhookEndpoint {
        company_id: company,
        url: "https://hooks.example.com/a".into(),
        events: vec![HookEventType::Delivered],
        enabled: true,
        secrets: vec![SigningSecret { secret: "whsec_c2VjcmV0".into(), created_at: now, expires_at: None }],
        revision: 1,
        created_at: now,
        modified_at: now,
        modified_by: "654".into(),
    };
    assert_eq!(p.webhooks.endpoint(company).await.unwrap(), None);
    assert!(p.webhooks.save_endpoint(&endpoint, None).await.unwrap(), "created");
    assert!(!p.webhooks.save_endpoint(&endpoint, None).await.unwrap(), "created once");
    let changed =
        WebhookEndpoint { url: "https://hooks.example.com/b".into(), revision: 2, ..endpoint.clone() };
    assert!(p.webhooks.save_endpoint(&changed, Some(1)).await.unwrap(), "changed from the revision read");
    let stale =
        WebhookEndpoint { url: "https://hooks.example.com/stale".into(), revision: 2, ..endpoint.clone() };
    assert!(!p.webhooks.save_endpoint(&stale, Some(1)).await.unwrap(), "a write from a stale read loses");
    assert_eq!(p.webhooks.endpoint(company).await.unwrap(), Some(changed));
    p.webhooks.delete_endpoint(company).await.unwrap();
    p.webhooks.delete_endpoint(company).await.unwrap();
    assert_eq!(p.webhooks.endpoint(company).await.unwrap(), None);

    let id = HookEvent::id_for(HookEventType::Delivered, &Uuid::new_v4().to_string());
    let event = HookEvent {
        id: id.clone(),
        company_id: company,
        event_type: HookEventType::Delivered,
        timestamp: now,
        data: serde_json::json!({"notificationId": "n", "delivered": 3, "nested": {"list": [1, "two", null]}}),
        queued: false,
        state: HookState::Pending,
        attempts: Vec::new(),
        tries: 0,
        series: 0,
        attempt: 0,
        settled: 0,
        lease_until: 0,
    };
    assert_eq!(p.webhooks.record_event(&event).await.unwrap(), event);
    let later =
        HookEvent { timestamp: now + Duration::hours(1), data: serde_json::json!({}), ..event.clone() };
    assert_eq!(p.webhooks.record_event(&later).await.unwrap(), event, "the first record stays");
    p.webhooks.mark_queued(&id).await.unwrap();
    // A try is claimed by one copy: another copy, while the claim lives, is refused; once the
    // claim runs out (its invocation died) the next receive claims it again.
    let ms = |t: chrono::DateTime<Utc>| t.timestamp_millis();
    let lease = ms(now + Duration::seconds(60));
    assert!(p.webhooks.claim_try(&id, 0, 1, ms(now), lease).await.unwrap(), "the first copy");
    assert!(!p.webhooks.claim_try(&id, 0, 1, ms(now), lease).await.unwrap(), "a second copy, at once");
    assert!(
        !p.webhooks.claim_try(&id, 1, 1, ms(now + Duration::minutes(2)), lease).await.unwrap(),
        "another series"
    );
    let after = ms(now + Duration::minutes(2));
    assert!(p.webhooks.claim_try(&id, 0, 1, after, after + 60_000).await.unwrap(), "after its lease");
    let kept = HookEvent::KEPT_ATTEMPTS as u32;
    for n in 1..=kept + 2 {
        let attempt = HookAttempt { at: now, attempt: n, status: Some(500), error: Some("HTTP 500".into()) };
        p.webhooks.record_attempt(&id, 0, &attempt, HookState::Pending).await.unwrap();
    }
    // A settled try is never claimed again; the next one is.
    assert!(!p.webhooks.claim_try(&id, 0, kept + 2, after, after + 60_000).await.unwrap(), "settled");
    assert!(p.webhooks.claim_try(&id, 0, kept + 3, after, after + 60_000).await.unwrap(), "the next try");
    let done = HookAttempt { at: now, attempt: kept + 3, status: Some(200), error: None };
    p.webhooks.record_attempt(&id, 0, &done, HookState::Delivered).await.unwrap();
    // A finished event's try is claimed by nobody; an old series' outcome changes nothing.
    assert!(!p.webhooks.claim_try(&id, 0, kept + 4, after, after + 60_000).await.unwrap(), "delivered");
    p.webhooks.record_attempt(&id, 7, &done, HookState::Failed).await.unwrap();
    let stored = p.webhooks.event(&id).await.unwrap().unwrap();
    assert!(stored.queued);
    assert_eq!(
        (stored.state, stored.tries, stored.attempts.len()),
        (HookState::Delivered, kept + 3, kept as usize)
    );
    assert_eq!((stored.attempts[0].status, stored.settled), (Some(500), kept + 3));
    // A replay starts series 1 from its first try; the old series' copies are refused.
    assert_eq!(p.webhooks.start_series(&id).await.unwrap(), Some(1));
    assert!(!p.webhooks.claim_try(&id, 0, kept + 4, after, after + 60_000).await.unwrap(), "the old series");
    assert!(p.webhooks.claim_try(&id, 1, 1, after, after + 60_000).await.unwrap(), "the replay's first try");
    let replayed = p.webhooks.event(&id).await.unwrap().unwrap();
    assert_eq!((replayed.state, replayed.series, replayed.tries), (HookState::Pending, 1, kept + 3));
    // Nothing is made for an event that does not exist.
    let missing = HookEvent::id_for(HookEventType::Failed, "nothing");
    p.webhooks.mark_queued(&missing).await.unwrap();
    p.webhooks.record_attempt(&missing, 0, &done, HookState::Delivered).await.unwrap();
    assert!(!p.webhooks.claim_try(&missing, 0, 1, after, after).await.unwrap());
    assert_eq!(p.webhooks.start_series(&missing).await.unwrap(), None);
    assert_eq!(p.webhooks.event(&missing).await.unwrap(), None);
}

conformance!(
    webhook_endpoints_and_events_are_written_once,
    a_retraction_closes_each_chunk_and_removes_what_it_kept,
    a_cancel_and_the_chunks_starts_meet_at_one_gate,
    an_emails_content_is_read_where_it_is_used,
    new_entries_leave_what_people_did_alone,
    a_chunk_is_started_by_one_attempt_at_a_time,
    email_suppressions_keep_their_first_reason,
    the_largest_chunks_sent_marks_are_all_kept,
    chunk_context_reads_notification_marker_and_marks_at_once,
    devices_are_owned_by_one_person_and_capped,
    users_in_batches_and_email_unsubscribes,
    daily_quota_is_atomic_per_company_and_day,
    schedule_ids_are_unique_positive_and_increasing,
    insert_get_and_conditional_conflicts,
    due_and_claim_exactly_once,
    chunks_are_recorded_exactly_once,
    fanout_with_no_chunks_or_all_chunks_done_completes,
    history_pages_newest_first_through_each_scope,
    idempotency_keys_are_claimed_once,
    inbox_orders_pages_filters_and_dismisses,
    inbox_states_watermarks_views_and_counts,
    inbox_counts_are_bounded,
    every_view_is_the_rule_over_a_random_history,
    watermarks_only_move_forward_and_entries_are_dated_when_written,
    connections_are_kept_by_person_until_closed_or_expired,
    directory_loads_and_answers,
    queues_batch_redeliver_and_ack,
);
