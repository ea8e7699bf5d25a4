//! A retry never undoes what a person did (issue #34), on memory and on moto: a chunk fails at
//! each step after its inbox entries were written (a batch write part-done, a push, a sent mark,
//! the chunk's record, its email jobs), its people act on what reached them, the chunk is
//! delivered again, and every person's center is exactly as they left it — marks, delivery time
//! and what their watermarks cover — while whoever had nothing yet gets it, each device is pushed
//! once (but when the marks of pushes already sent were not written: those go again, the window
//! docs/reliability.md states) and the notification ends Delivered. An attempt that dies without handing its chunk back
//! holds it until its lease runs out: a copy arriving meanwhile leaves it alone and is never a
//! reason to give the notification up.

use serde_json::{Value, json};
use shared::http::{GatewayRequest, body_text};
use shared::model::*;
use shared::service::deadline::WORK_LEASE;
use shared::service::emails::EmailOutcome;
use tests::faults::{Faults, faulty};
use tests::{Env, end_to_end};
use uuid::Uuid;

fn user(n: u8) -> Uuid {
    let d = n.to_string();
    format!("{0}-{1}-4{2}-8{2}-{3}", d.repeat(8), d.repeat(4), d.repeat(3), d.repeat(12)).parse().unwrap()
}

/// GA for brochure 4 reaches u1, u3 and u4 (DEMO-DIRECTORY.md): in-app, a push to each one's
/// device, an email to u1 and u3.
async fn send_ga(env: &Env, subject: &str) -> Notification {
    let body = json!({
        "version": 3, "type": "GA", "key": "3", "message": "Brochure 4 has a new edition", "brochureId": 4,
        "emailTemplate": "Client.Generic.Notification.html", "emailSubject": subject, "emailParams": []
    });
    let req = GatewayRequest::new("POST", "/rest/notification/send", "/rest/notification/send")
        .header("x-nextinteract-authtoken", "demo-admin-token")
        .header("x-nextinteract-company-api-key", "00000000-0000-4000-8000-000000000003")
        .body(body.to_string());
    let resp = send::handle(&env.ports, req.into_request()).await;
    let answer: Value = serde_json::from_str(&body_text(&resp)).unwrap();
    assert_eq!(resp.status(), 200, "{answer}");
    let sid = answer["notificationScheduleId"].as_u64().unwrap();
    env.ports.notifications.get_by_schedule_id(sid).await.unwrap().unwrap()
}

/// A device for user `n`, registered with their own token: its endpoint.
async fn register(env: &Env, n: u8) -> String {
    let token = format!("fcm-{}{}", Uuid::new_v4().simple(), Uuid::new_v4().simple());
    let req = GatewayRequest::new("POST", "/users/{userId}/devices", &format!("/users/{}/devices", user(n)))
        .header("authorization", &format!("Bearer demo-user-{n}-token"))
        .path_param("userId", &user(n).to_string())
        .body(json!({ "platform": "GCM", "token": token }).to_string());
    let resp = inbox::handle(&env.ports, req.into_request()).await;
    let body: Value = serde_json::from_str(&body_text(&resp)).unwrap();
    assert_eq!(resp.status(), 201, "{body}");
    let devices = env.ports.devices.devices(user(n)).await.unwrap();
    devices.iter().find(|d| d.device_id == body["deviceId"].as_str().unwrap()).unwrap().endpoint_arn.clone()
}

/// Each person's item of `id`, whatever its state (None: nothing reached them).
async fn centers(env: &Env, id: NotificationId) -> Vec<Option<InboxItem>> {
    let mut out = Vec::new();
    for n in [1, 3, 4] {
        out.push(env.ports.inbox.get(user(n), id).await.unwrap());
    }
    out
}

/// What each of the three sees in their default view, and their badge.
async fn views(env: &Env, id: NotificationId) -> Vec<(bool, InboxCounts)> {
    let now = shared::ports::Clock::now(env.clock.as_ref());
    let mut out = Vec::new();
    for n in [1, 3, 4] {
        let page = env
            .ports
            .inbox
            .list(user(n), &InboxQuery::default(), now, &PageRequest::first(50))
            .await
            .unwrap();
        let listed = page.items.iter().any(|i| i.content.notification_id == id);
        out.push((listed, env.ports.inbox.count(user(n), now, 50).await.unwrap()));
    }
    out
}

/// The chunk of the notification just sent, fanned out and received (not yet settled).
async fn the_chunk(env: &Env) -> Vec<shared::ports::ReceivedMessage> {
    local::workers::drain_fanout_once(&env.ports).await.unwrap();
    let chunks = env.ports.delivery_queue.receive(10).await.unwrap();
    assert_eq!(chunks.len(), 1, "three people: one chunk");
    chunks
}

async fn deliver_with(
    env: &Env,
    ports: &shared::runtime::Ports,
    chunks: &[shared::ports::ReceivedMessage],
) -> usize {
    let event = local::workers::sqs_event(local::workers::DELIVERY_QUEUE_ARN, chunks);
    deliver::handle(ports, env.max_receives, event).await.batch_item_failures.len()
}

/// People act on what reached them: u1 reads it, u3 dismisses it, u4 reads and archives
/// everything at once. A second later.
async fn act(env: &Env, id: NotificationId) {
    env.clock.advance(chrono::Duration::seconds(1));
    let now = shared::ports::Clock::now(env.clock.as_ref());
    let has = |n| async move { env.ports.inbox.get(user(n), id).await.unwrap().is_some() };
    if has(1).await {
        assert!(env.ports.inbox.mark(user(1), id, Mark::Read, now).await.unwrap());
    }
    if has(3).await {
        assert!(env.ports.inbox.mark(user(3), id, Mark::Dismissed, now).await.unwrap());
    }
    env.ports.inbox.mark_all(user(4), MarkAll::Read { archive: true }, now).await.unwrap();
}

/// Each step after the entries were written fails once; the retry changes nothing anyone did. A
/// push's trouble (a publish, its marks) does not even fail the chunk: its pushes continue as
/// the chunk's push job, and neither that nor the chunk handed out again changes anything.
async fn a_retry_never_undoes_what_a_person_did(mut env: Env) {
    let now = std::time::Duration::ZERO;
    env.ports.settings.push_retry = shared::backoff::Backoff { base: now, cap: now, max_attempts: 8 };
    let endpoints = [register(&env, 1).await, register(&env, 3).await, register(&env, 4).await];
    for step in ["put_entries", "publish", "add_sent_marks", "record_chunk", "send_all"] {
        let n = send_ga(&env, &format!("Retry at {step} {}", Uuid::new_v4().simple())).await;
        let chunks = the_chunk(&env).await;
        let faults = Faults::none();
        faults.fail_next(step);
        let failing = faulty(&env.ports, &faults);
        let failed = deliver_with(&env, &failing, &chunks).await;
        if matches!(step, "publish" | "add_sent_marks") {
            assert_eq!(failed, 0, "{step}: a push's trouble never fails the chunk");
        } else {
            assert_eq!(failed, 1, "{step}: the chunk fails");
        }
        let reached = faults.reached();
        assert!(reached.keys().any(|k| k.starts_with(step)), "{step}: the fault was reached: {reached:?}");
        let first = centers(&env, n.id).await;
        if step != "put_entries" {
            assert!(first.iter().all(Option::is_some), "{step}: everyone had it before the failure");
        }
        act(&env, n.id).await;
        let acted = centers(&env, n.id).await;
        let seen = views(&env, n.id).await;

        // The queue hands the chunk out again (the failed attempt handed it back; a recorded one
        // comes again as SQS may hand out any message twice).
        env.clock.advance(chrono::Duration::seconds(1));
        assert_eq!(deliver_with(&env, &env.ports, &chunks).await, 0, "{step}: the retry delivers");
        let after = centers(&env, n.id).await;
        for (i, (was, now)) in acted.iter().zip(&after).enumerate() {
            match was {
                Some(was) => assert_eq!(now.as_ref(), Some(was), "{step}: person {i} as they left it"),
                None => assert!(now.is_some(), "{step}: person {i} reached by the retry"),
            }
        }
        if step != "put_entries" {
            assert_eq!(views(&env, n.id).await, seen, "{step}: views and badges as they were");
            let listed: Vec<bool> = seen.iter().map(|(listed, _)| *listed).collect();
            assert_eq!(listed, [true, false, false], "{step}: u1 read it, u3 dismissed it, u4 archived it");
        }
        let n = env.ports.notifications.get(n.id).await.unwrap().unwrap();
        assert_eq!((n.status, n.delivered, n.chunks_done), (Status::Delivered, 3, 1), "{step}");
        env.ports.delivery_queue.ack(&chunks[0].receipt).await.unwrap();
        local::workers::run_until_idle(&env.ports, env.max_receives).await.unwrap();
        let pushed = env.outbox.pushes(&endpoints).await;
        let of_this: Vec<_> = pushed.iter().filter(|p| p.message.contains(&n.id.to_string())).collect();
        if step == "add_sent_marks" {
            // Pushes that went out but whose marks were not written go out again: the window
            // docs/reliability.md states ("a kill at any point"), at most one batch of marks.
            assert!(
                (3..=6).contains(&of_this.len()),
                "{step}: at most the unmarked batch again: {of_this:?}"
            );
        } else {
            assert_eq!(of_this.len(), 3, "{step}: one push per device: {of_this:?}");
        }
    }
}

/// An attempt killed after writing the entries cannot hand the chunk back: a copy of the chunk in
/// another message meanwhile leaves it to that attempt (and is no reason to give up, even at its
/// last receive); once the lease ran out it takes over and changes nothing anyone did. (The same
/// message is another attempt too: it comes back after its visibility timeout, when the lease
/// has run out.)
async fn a_killed_attempt_holds_its_chunk_until_its_lease_runs_out(env: Env) {
    let n = send_ga(&env, &format!("Killed {}", Uuid::new_v4().simple())).await;
    let chunks = the_chunk(&env).await;
    let faults = Faults::none();
    faults.fail_next("record_chunk");
    faults.fail_next("release");
    let killed = faulty(&env.ports, &faults);
    assert_eq!(deliver_with(&env, &killed, &chunks).await, 1);
    act(&env, n.id).await;
    let acted = centers(&env, n.id).await;

    // A copy in another message at its last allowed receive, within the lease: left alone, not
    // given up, and its receive not spent (handed to a new message, after a backoff).
    let mut copy = chunks.clone();
    copy[0].message_id = format!("copy-of-{}", chunks[0].message_id);
    copy[0].receipt = format!("copy-of-{}", chunks[0].receipt);
    copy[0].receive_count = env.max_receives;
    assert_eq!(deliver_with(&env, &env.ports, &copy).await, 0, "the chunk is held: the copy waits");
    // So is the same message handed out again at once (SQS may hand a message to two consumers).
    let mut again = chunks.clone();
    again[0].receipt = format!("{}-again", chunks[0].receipt);
    assert_eq!(deliver_with(&env, &env.ports, &again).await, 0, "held from another receive too");
    let waiting = env.ports.delivery_queue.receive(10).await.unwrap();
    let hand_overs: Vec<Option<u32>> =
        waiting.iter().map(|m| shared::service::deliver::parse_chunk(&m.body).unwrap().hand_overs).collect();
    assert_eq!(hand_overs, [Some(1), Some(1)], "each waits in a new message");
    let held = env.ports.notifications.get(n.id).await.unwrap().unwrap();
    assert_eq!((held.status, held.chunks_done), (Status::Delivering, 0), "not given up, not counted");

    // Past the lease (the queue's visibility timeout is longer still): the copy takes over.
    env.clock.advance(chrono::Duration::from_std(WORK_LEASE).unwrap() + chrono::Duration::seconds(1));
    assert_eq!(deliver_with(&env, &env.ports, &copy).await, 0);
    assert_eq!(centers(&env, n.id).await, acted, "as they left it");
    let done = env.ports.notifications.get(n.id).await.unwrap().unwrap();
    assert_eq!((done.status, done.delivered), (Status::Delivered, 3));
}

/// Copies of one email job (a recorded chunk redelivered queues its jobs again) never send at
/// once: while one holds the job, another is left for later; the job's emails go out once.
async fn copies_of_an_email_job_never_send_at_once(env: Env) {
    let subject = format!("Copies {}", Uuid::new_v4().simple());
    let n = send_ga(&env, &subject).await;
    let chunks = the_chunk(&env).await;
    assert_eq!(deliver_with(&env, &env.ports, &chunks).await, 0);
    env.ports.delivery_queue.ack(&chunks[0].receipt).await.unwrap();
    let jobs = env.ports.email_queue.receive(10).await.unwrap();
    assert_eq!(jobs.len(), 1, "u1 and u3 in one job");
    let job = shared::service::emails::parse_job(&jobs[0].body).unwrap();
    let run = |message: &str| {
        let mut copy = jobs.clone();
        copy[0].message_id = message.to_string();
        copy[0].receipt = format!("{message}-receipt");
        let event = local::workers::sqs_event(local::workers::EMAIL_QUEUE_ARN, &copy);
        let ports = env.ports.clone();
        let max = env.max_receives;
        async move { deliver::handle(&ports, max, event).await.batch_item_failures.len() }
    };
    // Another copy is sending now (it holds the job's lease).
    let now = shared::ports::Clock::now(env.clock.as_ref());
    let lease = now + chrono::Duration::from_std(WORK_LEASE).unwrap();
    let work = shared::ports::Work::EmailJob { chunk: job.chunk, part: job.email_part };
    let other = env.ports.notifications.start(n.id, work, "the-other-copy", now, lease);
    assert_eq!(other.await.unwrap(), shared::ports::ChunkStart::First);
    assert_eq!(run("this-copy").await, 1, "left for later");
    assert!(env.outbox.emails(&subject).await.is_empty(), "nothing sent beside the other copy");
    // The other copy failed and handed the job back: this one sends, once.
    env.ports.notifications.release(n.id, work, "the-other-copy", lease).await.unwrap();
    assert_eq!(run("this-copy").await, 0);
    assert_eq!(env.outbox.emails(&subject).await.len(), 2);
    assert_eq!(run("a-third-copy").await, 0, "recorded: nothing to do");
    assert_eq!(env.outbox.emails(&subject).await.len(), 2, "each address emailed once");
    let done = env.ports.notifications.get(n.id).await.unwrap().unwrap();
    assert_eq!((done.emails_sent, done.emails_pending), (2, 0));
}

/// Every write of a chunk's sent marks fails while it pushes to 150 devices: the first failed
/// write stops new publishes (sending on unmarked would make every later send a repeat), the
/// chunk is recorded all the same, and its push job sends what the marks do not show. What goes
/// out twice is bounded by what docs/api/email-and-push.md states: a batch of marks (64) and the
/// other publishes in flight (15), 79 at most; every device is reached and counted once.
async fn a_mark_write_that_fails_stops_the_round(mut env: Env) {
    const PEOPLE: usize = 150;
    let now = std::time::Duration::ZERO;
    env.ports.settings.push_retry = shared::backoff::Backoff { base: now, cap: now, max_attempts: 8 };
    let people = tests::crowd::load(&env.ports, PEOPLE, true).await;
    let mut endpoints = Vec::new();
    for p in &people {
        endpoints.extend(env.ports.devices.devices(*p).await.unwrap().into_iter().map(|d| d.endpoint_arn));
    }
    let body =
        json!({"version": 3, "type": "GT", "key": "3", "values": [tests::crowd::TEAM], "message": "marks"});
    let req = GatewayRequest::new("POST", "/rest/notification/send", "/rest/notification/send")
        .header("x-nextinteract-authtoken", "demo-admin-token")
        .header("x-nextinteract-company-api-key", "00000000-0000-4000-8000-000000000003")
        .body(body.to_string());
    let resp = send::handle(&env.ports, req.into_request()).await;
    assert_eq!(resp.status(), 200, "{}", body_text(&resp));
    let sid: Value = serde_json::from_str(&body_text(&resp)).unwrap();
    let n = env.ports.notifications.get_by_schedule_id(sid["notificationScheduleId"].as_u64().unwrap());
    let n = n.await.unwrap().unwrap();
    let chunks = the_chunk(&env).await;
    let faults = Faults::none();
    for _ in 0..1000 {
        faults.fail_next("add_sent_marks");
    }
    let failing = faulty(&env.ports, &faults);
    assert_eq!(deliver_with(&env, &failing, &chunks).await, 0, "the chunk does not fail");
    env.ports.delivery_queue.ack(&chunks[0].receipt).await.unwrap();
    let first = env.outbox.pushes(&endpoints).await.len();
    assert!(first < PEOPLE, "the round stopped at the first failed mark write: {first} pushes");

    local::workers::run_until_idle(&env.ports, env.max_receives).await.unwrap();
    let done = env.ports.notifications.get(n.id).await.unwrap().unwrap();
    assert_eq!(
        (done.status, done.delivered, done.pushes_sent),
        (Status::Delivered, PEOPLE as u64, PEOPLE as u64)
    );
    let pushed: Vec<String> = env.outbox.pushes(&endpoints).await.into_iter().map(|p| p.endpoint).collect();
    let distinct: std::collections::BTreeSet<&String> = pushed.iter().collect();
    assert_eq!(distinct.len(), people.len(), "every device reached");
    assert!(pushed.len() - distinct.len() <= 79, "{} pushes went out twice", pushed.len() - distinct.len());
}

end_to_end!(
    a_mark_write_that_fails_stops_the_round,
    a_retry_never_undoes_what_a_person_did,
    a_killed_attempt_holds_its_chunk_until_its_lease_runs_out,
    copies_of_an_email_job_never_send_at_once
);

/// A group send of company 3 to team 23 as stored, `schedule_id` and `text` (its message and its
/// email's subject) its own, with an email with a body and a parameter.
fn group_send(schedule_id: u64, text: &str) -> Notification {
    let mut n = Notification::new(
        Uuid::new_v4(),
        schedule_id,
        3,
        Origin::GroupSend,
        BroadcastType::GT,
        Audience::Teams { company_id: 3, team_ids: vec!["23".into()] },
        Content { title: "Title".into(), body: text.into(), ..Content::default() },
        "654".into(),
        tests::t0(),
    );
    n.email = Some(EmailSpec {
        template: "Client.Generic.HTMLBody.Mandrill.html".into(),
        subject: text.into(),
        params: vec![EmailParam { key: "k".into(), value: "v".into() }],
        body: Some("<p>the body</p>".into()),
    });
    n
}

/// A chunk an earlier version recorded counted its pushes with it (its marker carries no
/// `pushesApart`). Handed out again after the upgrade (in flight, or redriven from the
/// dead-letter queue), it queues its push job, which finds its pushes counted: nothing is sent
/// or counted twice. (DynamoDB only: the memory store has no earlier versions.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chunk_recorded_before_the_upgrade_counts_its_pushes_once() {
    let (sdk, provisioned, config) = tests::provision_moto().await;
    let env = Env::moto_on(&sdk, &provisioned, &config).await;
    let endpoints = [register(&env, 1).await, register(&env, 3).await, register(&env, 4).await];
    let n = send_ga(&env, &format!("Upgrade {}", Uuid::new_v4().simple())).await;
    let chunks = the_chunk(&env).await;
    assert_eq!(deliver_with(&env, &env.ports, &chunks).await, 0);
    let counted = env.ports.notifications.get(n.id).await.unwrap().unwrap();
    assert_eq!(counted.pushes_sent, 3);

    // As an earlier version left it: the chunk's marker without the flag or its email jobs' size
    // (it cut jobs of 100), no pushes' marker.
    let db = aws_sdk_dynamodb::Client::new(&sdk);
    let s = aws_sdk_dynamodb::types::AttributeValue::S;
    db.update_item()
        .table_name(&config.notifications_table)
        .key("pk", s(format!("N#{}", n.id)))
        .key("sk", s("C#00000000".into()))
        .update_expression("REMOVE pushesApart, emailJobSize")
        .condition_expression("attribute_exists(pushesApart) AND attribute_exists(emailJobSize)")
        .send()
        .await
        .expect("the chunk's marker carries the flag");
    db.delete_item()
        .table_name(&config.notifications_table)
        .key("pk", s(format!("N#{}#K#0", n.id)))
        .key("sk", s("P#00000000".into()))
        .condition_expression("attribute_exists(pk)")
        .send()
        .await
        .expect("the pushes' marker sits beside the chunk's counters");

    let legacy = env.ports.notifications.chunk_context(n.id, 0).await.unwrap();
    assert_eq!((legacy.recorded, legacy.email_job_size), (true, None), "read as an earlier version's");

    env.ports.delivery_queue.nack(&chunks[0].receipt).await.unwrap();
    local::workers::run_until_idle(&env.ports, env.max_receives).await.unwrap();
    let after = env.ports.notifications.get(n.id).await.unwrap().unwrap();
    assert_eq!((after.pushes_sent, after.delivered), (3, 3), "counted once");
    assert_eq!((after.emails_sent, after.emails_pending), (2, 0), "its email job counted once");
    let pushed = env.outbox.pushes(&endpoints).await;
    assert_eq!(pushed.iter().filter(|p| p.message.contains(&n.id.to_string())).count(), 3, "sent once");
}

/// A notification an earlier version stored kept its email's body and parameters inside its own
/// item, as a store with `EMAIL_CONTENT_APART=false` (the first step of an upgrade) still writes
/// it. Read by this version: an email job gets all of it, sent history its parameters, a lookup
/// and a chunk none of it (as for one stored apart). (DynamoDB only.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_email_stored_before_the_upgrade_reads_as_it_did() {
    let (sdk, provisioned, config) = tests::provision_moto().await;
    let env = Env::moto_on(&sdk, &provisioned, &config).await;
    let n = group_send(990, "before");
    let db = aws_sdk_dynamodb::Client::new(&sdk);
    let inside =
        shared::adapters::dynamodb::DynamoNotificationStore::new(db.clone(), &config.notifications_table, 4)
            .content_apart(false);
    shared::ports::NotificationIntake::insert(&inside, &n).await.unwrap();

    // The earlier versions' shape: the content inside the notification's item, no items apart.
    let s = aws_sdk_dynamodb::types::AttributeValue::S;
    let item = |pk: String, sk: &str| {
        db.get_item().table_name(&config.notifications_table).key("pk", s(pk)).key("sk", s(sk.into())).send()
    };
    let meta = item(format!("N#{}", n.id), "META").await.unwrap().item.expect("the notification's item");
    let email = meta["email"].as_m().expect("its email");
    assert_eq!(email["body"], s("<p>the body</p>".into()), "the body inside");
    assert!(email.contains_key("params") && !meta.contains_key("emailParts"), "{meta:?}");
    for part in ["BODY", "PARAMS"] {
        assert!(item(format!("N#{}#C", n.id), part).await.unwrap().item.is_none(), "no {part} item");
    }

    let store = &env.ports.notifications;
    assert_eq!(
        store.email_context(n.id, 0, 0).await.unwrap().notification.as_ref(),
        Some(&n),
        "an email job: all"
    );
    let without = Some(n.clone().without_email_content());
    assert_eq!(store.get(n.id).await.unwrap(), without, "a lookup none of it");
    assert_eq!(store.chunk_context(n.id, 0).await.unwrap().notification, without, "a chunk none of it");
    let scope = HistoryScope::CompanyType { company_id: 3, broadcast_type: BroadcastType::GT };
    let page = store.history(&scope, &PageRequest::first(10)).await.unwrap();
    assert_eq!(page.items, vec![n.clone().without_email_body()], "history its parameters");
    assert_eq!(store.record(990).await.unwrap(), Some(n.clone().without_email_body()), "its record too");
}

/// A part of an email's content the notification's item names and the read does not find (an
/// item lost, a restore): the email job sends nothing and tries again, never an email without its
/// body, and its dead letter still counts it failed; sent history shows the record without it.
/// (DynamoDB only: the memory store keeps the content with the notification.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_part_of_an_email_is_an_error_not_an_empty_email() {
    let (sdk, provisioned, config) = tests::provision_moto().await;
    let env = Env::moto_on(&sdk, &provisioned, &config).await;
    let store = &env.ports.notifications;
    let db = aws_sdk_dynamodb::Client::new(&sdk);
    for (schedule_id, part) in [(991, "BODY"), (992, "PARAMS")] {
        let subject = format!("parts {}", Uuid::new_v4().simple());
        let n = group_send(schedule_id, &subject);
        store.insert(&n).await.unwrap();
        db.delete_item()
            .table_name(&config.notifications_table)
            .key("pk", aws_sdk_dynamodb::types::AttributeValue::S(format!("N#{}#C", n.id)))
            .key("sk", aws_sdk_dynamodb::types::AttributeValue::S(part.into()))
            .condition_expression("attribute_exists(pk)")
            .send()
            .await
            .unwrap_or_else(|e| panic!("the {part} item was written: {e:?}"));
        let read = store.email_context(n.id, 0, 0).await.expect("the context reads");
        assert_eq!(read.email_content_missing, vec![part.to_string()], "the {part} reported missing");
        let job = EmailJob {
            notification_id: n.id,
            chunk: 0,
            email_part: 0,
            recipients: vec![user(1)],
            round: 0,
            hand_overs: None,
        };
        let jobs = env.ports.email_jobs();
        let sent =
            shared::service::emails::send_job(&jobs, &job, "m", shared::service::deadline::Deadline::NONE)
                .await;
        assert!(
            matches!(&sent, Err(shared::error::DeliverError::Transient(why)) if why.to_string().contains(part)),
            "an email job without its {part} sends nothing and tries again: {sent:?}"
        );
        assert!(env.outbox.emails(&subject).await.is_empty(), "nothing sent");
        // Its dead letter counts it failed: counting needs none of the content.
        let settled = shared::service::emails::give_up(&jobs, &job, "dead").await;
        assert!(
            matches!(settled, Ok(EmailOutcome::Recorded { sent: 0, gave_up: true })),
            "settled from its dead letter: {settled:?}"
        );
        let again = shared::service::emails::give_up(&jobs, &job, "dead again").await;
        assert!(matches!(again, Ok(EmailOutcome::AlreadyDone)), "once: {again:?}");
        // History shows what it has (a lost item is logged, and does not fail the page).
        let mut shown = n.clone().without_email_body();
        if part == "PARAMS" {
            shown.email.as_mut().expect("an email").params.clear();
        }
        assert_eq!(store.record(schedule_id).await.unwrap(), Some(shown), "history without the {part}");
    }
}

/// A chunk's first attempt writes its entries blind, and only once: a batch write whose answer
/// was lost after it landed (a timeout after the commit) is never sent blind again, as the SDK's
/// own retry would send it (a person who read their entry in between would find it unread); its
/// entries are written only where absent, conditionally. Billed by the meter: one write unit an
/// entry, every entry once. (DynamoDB only: the memory store never loses an answer.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_entries_batch_whose_answer_was_lost_is_never_written_blind_again() {
    let (sdk, provisioned, config) = tests::provision_moto().await;
    let env = Env::moto_on(&sdk, &provisioned, &config).await;
    let n = group_send(993, "lost");
    env.ports.inbox.put_content(&shared::service::deliver::inbox_content(&n)).await.unwrap();
    let people: Vec<Uuid> = (0..30).map(|_| Uuid::new_v4()).collect();
    let entries: Vec<InboxEntry> =
        people.iter().map(|p| shared::service::deliver::inbox_entry(&n, *p, tests::t0())).collect();
    let prefix = tests::moto_prefix(&provisioned);
    tests::arm_meter(&prefix, 0.0, 0.0).await;
    tests::arm_fault(&config.inbox_table, "BatchWriteItem", 1, "AnswerLost").await;
    env.ports.inbox.put_entries(&entries, &*env.clock).await.expect("the entries are written");
    let report = tests::metered(&prefix).await;
    assert_eq!(
        report["operations"]["BatchWriteItem"].as_f64(),
        Some(people.len() as f64),
        "each entry written blind once, the lost batch not again: {report}"
    );
    assert!(report["operations"]["PutItem"].is_null(), "nothing was missing: no conditional put: {report}");
    for person in &people {
        assert!(env.ports.inbox.get(*person, n.id).await.unwrap().is_some(), "everyone has theirs");
    }
}
