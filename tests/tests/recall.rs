//! A sender retracts or corrects a group send that went out, on memory and on moto: who may
//! (as its cancel), what the answers say (what cannot be recalled: the emails and pushes sent),
//! that every center loses a retracted notification (listed in no view, counted nowhere, found
//! by no id, whatever its person did with it) and each person's open pages are told, that a
//! correction shows in every center at once keeping each person's state, that a repeat does
//! nothing more (a step done again removes nothing, records nothing twice), that a send cancelled
//! half-way is retracted from exactly the people who had it and reaches nobody after, and what
//! sent history and the delivery log show.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use chrono::Duration;
use serde_json::{Value, json};
use shared::adapters::memory::MemoryRealtime;
use shared::http::{GatewayRequest, body_text};
use shared::model::{InboxEvent, InboxQuery, Mark, NotificationId, Pushed, RecallStep, StatusFilter, UserId};
use shared::ports::Clock;
use tests::{Env, end_to_end};

const ADMIN3: (&str, &str) = ("demo-admin-token", "00000000-0000-4000-8000-000000000003");
const COMPANY4: (&str, &str) = ("demo-admin-4-token", "00000000-0000-4000-8000-000000000004");

fn json_of(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or(Value::String(text.to_string()))
}

async fn group_send(env: &Env, body: Value) -> u64 {
    let req = GatewayRequest::new("POST", "/rest/notification/send", "/rest/notification/send")
        .header("x-nextinteract-authtoken", ADMIN3.0)
        .header("x-nextinteract-company-api-key", ADMIN3.1)
        .body(body.to_string());
    let resp = send::handle(&env.ports, req.into_request()).await;
    let text = body_text(&resp);
    assert_eq!(resp.status(), 200, "{text}");
    json_of(&text)["notificationScheduleId"].as_u64().unwrap()
}

/// `POST /rest/notification/send/{id}/{action}` (`retract`, `correct`) as `(token, key)`.
async fn recall(
    env: &Env,
    (token, key): (&str, &str),
    id: &str,
    action: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let template = format!("/rest/notification/send/{{notificationScheduleId}}/{action}");
    let mut req = GatewayRequest::new("POST", &template, &format!("/rest/notification/send/{id}/{action}"))
        .path_param("notificationScheduleId", id)
        .header("x-nextinteract-authtoken", token)
        .header("x-nextinteract-company-api-key", key);
    if let Some(body) = body {
        req = req.body(body.to_string());
    }
    let resp = send::handle(&env.ports, req.into_request()).await;
    (resp.status().as_u16(), json_of(&body_text(&resp)))
}

async fn run(env: &Env) {
    local::workers::run_until_idle(&env.ports, env.max_receives).await.unwrap();
}

/// Every event published so far, per person.
fn drain(rx: &mut tokio::sync::broadcast::Receiver<Pushed>) -> BTreeMap<UserId, Vec<InboxEvent>> {
    let mut told: BTreeMap<UserId, Vec<InboxEvent>> = BTreeMap::new();
    while let Ok(p) = rx.try_recv() {
        told.entry(p.user).or_default().push(p.event);
    }
    told
}

/// Whether `id` is in any view of `user`'s center, or counted there.
async fn anywhere(env: &Env, user: UserId, id: NotificationId) -> Vec<String> {
    let mut found = Vec::new();
    let now = env.clock.now();
    if env.ports.inbox.get(user, id).await.unwrap().is_some() {
        found.push("get".to_string());
    }
    for status in [
        StatusFilter::Inbox,
        StatusFilter::Unread,
        StatusFilter::Read,
        StatusFilter::Archived,
        StatusFilter::All,
    ] {
        let query = InboxQuery { status, ..InboxQuery::default() };
        let items = tests::views::read_all(env.ports.inbox.as_ref(), user, &query, now, 20).await;
        if items.iter().any(|i| i.content.notification_id == id) {
            found.push(format!("{status:?}"));
        }
    }
    found
}

async fn sent_record(env: &Env, sid: u64) -> Value {
    let req = GatewayRequest::new("GET", "/rest/notification/sent", "/rest/notification/sent")
        .header("x-nextinteract-authtoken", ADMIN3.0)
        .query(&format!("version=1&notificationScheduleId={sid}"));
    let resp = sent_history::handle(&env.ports, req.into_request()).await;
    json_of(&body_text(&resp))[0].clone()
}

async fn delivery_log(env: &Env, sid: u64) -> Value {
    let req = GatewayRequest::new(
        "GET",
        "/rest/notification/sent/{notificationScheduleId}/log",
        &format!("/rest/notification/sent/{sid}/log"),
    )
    .path_param("notificationScheduleId", &sid.to_string())
    .header("x-nextinteract-authtoken", ADMIN3.0)
    .query("limit=100");
    let resp = sent_history::handle(&env.ports, req.into_request()).await;
    assert_eq!(resp.status(), 200);
    json_of(&body_text(&resp))
}

/// A send to ten people in four chunks, delivered, then marked by some of them (read, archived,
/// dismissed); retracted: gone from every center, every person told, the answer saying what it
/// reached and that emails and pushes are not recalled; a repeat answers the same and does
/// nothing more, nor does a step done again; sent history and the delivery log show it.
async fn a_delivered_send_is_retracted_from_every_center(env: Env) {
    let mut env = env;
    env.ports.settings.chunk_size = 3;
    let hub = Arc::new(MemoryRealtime::new());
    env.ports.realtime = hub.clone();
    let people = tests::crowd::load(&env.ports, 10, false).await;
    let body = json!({"version": 3, "type": "GT", "key": "3", "values": [tests::crowd::TEAM], "message": "Wrong room"});
    let sid = group_send(&env, body.clone()).await;
    let kept_sid = group_send(&env, json!({"version": 3, "type": "GT", "key": "3", "values": [tests::crowd::TEAM], "message": "Right room"})).await;
    run(&env).await;
    let id = env.ports.notifications.get_by_schedule_id(sid).await.unwrap().unwrap().id;
    let kept = env.ports.notifications.get_by_schedule_id(kept_sid).await.unwrap().unwrap().id;
    let now = env.clock.now();
    for (person, mark) in [(0, Mark::Read), (1, Mark::Archived), (2, Mark::Dismissed)] {
        assert!(env.ports.inbox.mark(people[person], id, mark, now).await.unwrap());
    }
    for p in &people[3..] {
        assert_eq!(env.ports.inbox.count(*p, now, 100).await.unwrap().unread, 2);
    }
    let sid_text = sid.to_string();

    // Who may not, and what is not a schedule id; nothing changes.
    let (status, body) = recall(&env, COMPANY4, &sid_text, "retract", None).await;
    assert_eq!((status, body["exception"].as_str()), (404, Some("WSNotFoundException")), "{body}");
    let (status, body) = recall(&env, ("demo-event-token", ADMIN3.1), &sid_text, "retract", None).await;
    assert_eq!(
        (status, body["exception"].as_str()),
        (403, Some("WSInsufficientPermissionsException")),
        "{body}"
    );
    let (status, body) = recall(&env, ("nope", ADMIN3.1), &sid_text, "retract", None).await;
    assert_eq!((status, body["exception"].as_str()), (401, Some("WSInvalidAuthTokenException")), "{body}");
    for bad in ["0", "abc", "9007199254740993"] {
        let (status, body) = recall(&env, ADMIN3, bad, "retract", None).await;
        assert_eq!(
            (status, body["parameter"].as_str()),
            (400, Some("notificationScheduleId")),
            "{bad}: {body}"
        );
    }
    let (status, body) = recall(&env, ADMIN3, &sid_text, "retract", Some(json!({"x": 1}))).await;
    assert_eq!(status, 400, "a retraction takes no body: {body}");
    assert!(env.ports.inbox.get(people[5], id).await.unwrap().is_some(), "refused: nothing removed");

    // Retracted: the answer, then every center loses it as the background steps run.
    let mut rx = hub.subscribe();
    let at = env.clock.now().timestamp_millis();
    let (status, answer) = recall(&env, ADMIN3, &sid_text, "retract", None).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        answer,
        json!({"notificationScheduleId": sid, "status": "retracted", "peopleReached": 10, "retracted": at,
            "retractedBy": "654", "alreadyRetracted": false, "emailsSent": 0, "pushesSent": 0,
            "note": "emails and pushes already sent cannot be recalled"})
    );
    run(&env).await;
    for p in &people {
        assert_eq!(anywhere(&env, *p, id).await, Vec::<String>::new(), "{p} still has it");
        assert!(env.ports.inbox.get(*p, kept).await.unwrap().is_some(), "the other send stays");
    }
    let later = env.clock.now();
    for p in &people[3..] {
        let counts = env.ports.inbox.count(*p, later, 100).await.unwrap();
        assert_eq!((counts.unread, counts.unseen), (1, 1), "counted no more");
    }
    let told = drain(&mut rx);
    for p in &people {
        let retracted =
            told.get(p).into_iter().flatten().filter(|e| **e == InboxEvent::Retracted { id }).count();
        assert_eq!(retracted, 1, "{p}'s open pages are told once: {told:?}");
    }

    // A repeat answers the same, and plans nothing: every chunk's removal is recorded.
    env.clock.advance(Duration::minutes(1));
    let (status, again) = recall(&env, ("demo-super-token", ADMIN3.1), &sid_text, "retract", None).await;
    assert_eq!(status, 200, "{again}");
    assert_eq!((again["retracted"].as_i64(), again["alreadyRetracted"].as_bool()), (Some(at), Some(true)));
    run(&env).await;
    assert!(drain(&mut rx).is_empty(), "nothing more is told");

    // A step done again (a copy of its message): nothing more removed, nothing recorded twice.
    let step = RecallStep {
        notification_id: id,
        chunk: 1,
        recall: shared::model::Recall::Retract,
        hand_overs: None,
    };
    env.ports.delivery_queue.send_all(&[serde_json::to_string(&step).unwrap()]).await.unwrap();
    run(&env).await;
    assert!(drain(&mut rx).is_empty(), "a step done again tells nobody again");
    let log = delivery_log(&env, sid).await;
    let retracted: Vec<&Value> =
        log["entries"].as_array().unwrap().iter().filter(|e| e["event"] == "chunkRetracted").collect();
    assert_eq!(retracted.len(), 4, "one per chunk: {log}");
    let people_removed: u64 = retracted.iter().map(|e| e["people"].as_u64().unwrap()).sum();
    assert_eq!(people_removed, 10, "{log}");
    assert_eq!(log["notification"]["retracted"].as_i64(), Some(at), "{log}");
    for p in &people {
        assert!(env.ports.inbox.get(*p, kept).await.unwrap().is_some());
    }

    // Sent history shows it; a correction of it is refused; the other send is untouched.
    let record = sent_record(&env, sid).await;
    assert_eq!(
        (record["retracted"].as_i64(), record["retractedBy"].as_str()),
        (Some(at), Some("654")),
        "{record}"
    );
    let (status, body) =
        recall(&env, ADMIN3, &sid_text, "correct", Some(json!({"message": "too late"}))).await;
    assert_eq!((status, body["state"].as_str()), (409, Some("retracted")), "{body}");

    // Not out yet: cancel it instead.
    let pending = group_send(
        &env,
        json!({"version": 3, "type": "GT", "key": "3", "values": [tests::crowd::TEAM], "message": "later",
            "scheduleTimezoneId": "UTC", "scheduleLocalDateTime": "2026-11-23T09:30:00"}),
    )
    .await;
    let (status, body) = recall(&env, ADMIN3, &pending.to_string(), "retract", None).await;
    assert_eq!(
        (status, body["exception"].as_str(), body["state"].as_str()),
        (409, Some("WSConflictException"), Some("pending")),
        "{body}"
    );
}

/// A correction of a delivered send: every center shows the new message and url at once, each
/// person's read, archived and seen as they were; open pages are told; a bad correction names
/// its field and changes nothing; sent history shows it.
async fn a_delivered_send_is_corrected_in_every_center_keeping_each_state(env: Env) {
    let mut env = env;
    env.ports.settings.chunk_size = 3;
    let hub = Arc::new(MemoryRealtime::new());
    env.ports.realtime = hub.clone();
    let people = tests::crowd::load(&env.ports, 7, false).await;
    let sid = group_send(
        &env,
        json!({"version": 3, "type": "GT", "key": "3", "values": [tests::crowd::TEAM], "message": "Meet in room 1",
            "url": "https://example.com/room1"}),
    )
    .await;
    run(&env).await;
    let id = env.ports.notifications.get_by_schedule_id(sid).await.unwrap().unwrap().id;
    let now = env.clock.now();
    assert!(env.ports.inbox.mark(people[0], id, Mark::Read, now).await.unwrap());
    assert!(env.ports.inbox.mark(people[1], id, Mark::Archived, now).await.unwrap());
    let sid_text = sid.to_string();

    for (body, field) in [
        (json!({}), "message"),
        (json!({"message": ""}), "message"),
        (json!({"url": "javascript:alert(1)"}), "url"),
        (json!({"scheduleTimezoneId": "UTC"}), "scheduleTimezoneId"),
        (json!({"message": "m".repeat(2049)}), "message"),
    ] {
        let (status, answer) = recall(&env, ADMIN3, &sid_text, "correct", Some(body.clone())).await;
        assert_eq!((status, answer["parameter"].as_str()), (400, Some(field)), "{body}: {answer}");
    }
    let (status, answer) = recall(&env, COMPANY4, &sid_text, "correct", Some(json!({"message": "x"}))).await;
    assert_eq!(status, 404, "{answer}");
    assert_eq!(env.ports.inbox.get(people[2], id).await.unwrap().unwrap().content.body, "Meet in room 1");

    let mut rx = hub.subscribe();
    let at = env.clock.now().timestamp_millis();
    let (status, answer) = recall(
        &env,
        ADMIN3,
        &sid_text,
        "correct",
        Some(json!({"message": "Meet in room 2", "url": "https://example.com/room2"})),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        answer,
        json!({"notificationScheduleId": sid, "status": "delivered", "message": "Meet in room 2",
            "url": "https://example.com/room2", "corrected": at, "correctedBy": "654", "emailsSent": 0,
            "pushesSent": 0, "note": "emails and pushes already sent cannot be recalled"})
    );
    // At once, before any background step: the content is stored once for every center.
    for (i, p) in people.iter().enumerate() {
        let item = env.ports.inbox.get(*p, id).await.unwrap().expect("still there");
        assert_eq!(
            (item.content.body.as_str(), item.content.url.as_deref()),
            ("Meet in room 2", Some("https://example.com/room2")),
            "{p}"
        );
        assert_eq!((item.state.read, item.state.archived), (i == 0, i == 1), "{p}'s own state stays");
    }
    run(&env).await;
    let told = drain(&mut rx);
    for p in &people {
        let corrected: Vec<&InboxEvent> =
            told.get(p).into_iter().flatten().filter(|e| matches!(e, InboxEvent::Corrected { .. })).collect();
        assert_eq!(corrected.len(), 1, "{p}: {told:?}");
        let InboxEvent::Corrected { content } = corrected[0] else { unreachable!() };
        assert_eq!((content.notification_id, content.body.as_str()), (id, "Meet in room 2"));
    }
    let archived = InboxQuery { status: StatusFilter::Archived, ..InboxQuery::default() };
    let shown =
        tests::views::read_all(env.ports.inbox.as_ref(), people[1], &archived, env.clock.now(), 10).await;
    assert_eq!(shown.iter().map(|i| i.content.body.as_str()).collect::<Vec<_>>(), vec!["Meet in room 2"]);
    let record = sent_record(&env, sid).await;
    assert_eq!(
        (record["message"].as_str(), record["corrected"].as_i64(), record["correctedBy"].as_str()),
        (Some("Meet in room 2"), Some(at), Some("654")),
        "{record}"
    );
    // The url removed: the centers show none.
    let (status, answer) = recall(&env, ADMIN3, &sid_text, "correct", Some(json!({"url": null}))).await;
    assert_eq!((status, answer["url"].clone()), (200, Value::Null), "{answer}");
    assert_eq!(env.ports.inbox.get(people[3], id).await.unwrap().unwrap().content.url, None);
}

/// A send cut by a cancel after two of its four chunks started, then retracted: exactly the six
/// people who had it lose it, the rest never get it, and a retraction while it was still going
/// out was refused (cancel first).
async fn a_send_cancelled_half_way_is_retracted_from_exactly_its_people(env: Env) {
    let mut env = env;
    env.ports.settings.chunk_size = 3;
    let people = tests::crowd::load(&env.ports, 12, false).await;
    let schedule = tests::faults::Faults::none();
    let held = tests::faults::faulty(&env.ports, &schedule);
    let sid = group_send(
        &env,
        json!({"version": 3, "type": "GT", "key": "3", "values": [tests::crowd::TEAM], "message": "half"}),
    )
    .await;
    let id = env.ports.notifications.get_by_schedule_id(sid).await.unwrap().unwrap().id;
    schedule.stall_before("start", 2);
    let pipeline = {
        let (ports, max) = (held.clone(), env.max_receives);
        tokio::spawn(async move { local::workers::run_until_idle(&ports, max).await.map(|_| ()) })
    };
    let waited = tokio::time::Instant::now();
    while !schedule.stalled() {
        assert!(waited.elapsed() < std::time::Duration::from_secs(120), "the run never held");
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    let (status, body) = recall(&env, ADMIN3, &sid.to_string(), "retract", None).await;
    assert_eq!((status, body["state"].as_str()), (409, Some("sending")), "going out: cancel first: {body}");
    let req = GatewayRequest::new(
        "DELETE",
        "/rest/notification/send/{notificationScheduleId}",
        &format!("/rest/notification/send/{sid}"),
    )
    .path_param("notificationScheduleId", &sid.to_string())
    .header("x-nextinteract-authtoken", ADMIN3.0)
    .header("x-nextinteract-company-api-key", ADMIN3.1);
    let cancelled = json_of(&body_text(&send::handle(&env.ports, req.into_request()).await));
    assert_eq!(cancelled["peopleReached"].as_u64(), Some(6), "{cancelled}");
    schedule.resume();
    pipeline.await.unwrap().unwrap();
    run(&env).await;
    let had: BTreeSet<UserId> = {
        let mut had = BTreeSet::new();
        for p in &people {
            if env.ports.inbox.get(*p, id).await.unwrap().is_some() {
                had.insert(*p);
            }
        }
        had
    };
    assert_eq!(had.len(), 6);

    let (status, answer) = recall(&env, ADMIN3, &sid.to_string(), "retract", None).await;
    assert_eq!((status, answer["peopleReached"].as_u64()), (200, Some(6)), "{answer}");
    run(&env).await;
    for p in &people {
        assert!(anywhere(&env, *p, id).await.is_empty(), "{p} has it after the retraction");
    }
    // Time passes and every queue drains again: nobody gets it.
    env.time_passes(Duration::minutes(10)).await;
    local::workers::tick(&env.ports).await.unwrap();
    run(&env).await;
    for p in &people {
        assert!(env.ports.inbox.get(*p, id).await.unwrap().is_none());
    }
    let log = delivery_log(&env, sid).await;
    let removed: u64 = log["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["event"] == "chunkRetracted")
        .map(|e| e["people"].as_u64().unwrap())
        .sum();
    assert_eq!(removed, 6, "the people of the two chunks that started: {log}");
}

/// Emails still queued when a send is retracted are not sent: each is counted withdrawn, and
/// the answer and sent history say what went out and what did not.
async fn emails_queued_before_a_retraction_are_withdrawn(env: Env) {
    let mut env = env;
    env.ports.settings.chunk_size = 3;
    // Without devices: the crowd's device tokens are the same in every test, and on moto their
    // endpoints (and what was published to them) are shared with the tests that count pushes.
    let people = tests::crowd::load(&env.ports, 6, false).await;
    let subject = format!("withdrawn {}", uuid::Uuid::new_v4().simple());
    let sid = group_send(
        &env,
        json!({"version": 3, "type": "GT", "key": "3", "values": [tests::crowd::TEAM], "message": "Wrong date",
            "emailTemplate": "Client.Generic.HTMLBody.Mandrill.html", "emailSubject": subject}),
    )
    .await;
    // Fanned out and delivered (entries, the chunks' pushes), the email jobs still queued.
    local::workers::drain_fanout_once(&env.ports).await.unwrap();
    while local::workers::drain_delivery_once(&env.ports, env.max_receives).await.unwrap() > 0 {}
    let id = env.ports.notifications.get_by_schedule_id(sid).await.unwrap().unwrap().id;
    for p in &people {
        assert!(env.ports.inbox.get(*p, id).await.unwrap().is_some());
    }
    let (status, answer) = recall(&env, ADMIN3, &sid.to_string(), "retract", None).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["emailsSent"], 0, "{answer}");
    run(&env).await;
    assert!(env.outbox.emails(&subject).await.is_empty(), "no email went out after the retraction");
    let record = sent_record(&env, sid).await;
    assert_eq!(
        (record["emailsSent"].as_u64(), record["emailsWithdrawn"].as_u64(), record["emailsPending"].as_u64()),
        (Some(0), Some(6), Some(0)),
        "{record}"
    );
    assert_eq!((record["pushesSent"].as_u64(), answer["pushesSent"].as_u64()), (Some(0), Some(0)));
    for p in &people {
        assert!(env.ports.inbox.get(*p, id).await.unwrap().is_none());
    }
}

/// A retraction whose plan was never queued, and one whose steps were all lost (their queue gave
/// them up): once a step could no longer be alive (`RECHECK_SECONDS`), the scheduler's tick plans
/// what is left, every center loses it, and at its next look, every chunk done, the retraction
/// is finished (the tick no longer looks at it).
async fn a_lost_plan_or_lost_steps_are_planned_again_by_the_tick(env: Env) {
    let mut env = env;
    env.ports.settings.chunk_size = 3;
    let people = tests::crowd::load(&env.ports, 7, false).await;
    let send = |message: &'static str| json!({"version": 3, "type": "GT", "key": "3", "values": [tests::crowd::TEAM], "message": message});
    let first = group_send(&env, send("plan lost")).await;
    let second = group_send(&env, send("steps lost")).await;
    run(&env).await;
    let id_of = |sid: u64| {
        let ports = &env.ports;
        async move { ports.notifications.get_by_schedule_id(sid).await.unwrap().unwrap().id }
    };
    let (first, second_id) = (id_of(first).await, id_of(second).await);
    let holders = |id: NotificationId| {
        let (ports, people) = (&env.ports, &people);
        async move {
            let mut n = 0;
            for p in people {
                n += usize::from(ports.inbox.get(*p, id).await.unwrap().is_some());
            }
            n
        }
    };

    // The first: retracted in the store, its plan never queued (the request ended there).
    env.ports.notifications.retract(first, "654", env.clock.now()).await.unwrap();
    // The second: its plan ran, and every step it queued was lost.
    let (status, answer) = recall(&env, ADMIN3, &second.to_string(), "retract", None).await;
    assert_eq!(status, 200, "{answer}");
    local::workers::drain_fanout_once(&env.ports).await.unwrap();
    let lost = env.ports.delivery_queue.receive(10).await.unwrap();
    assert_eq!(lost.len(), 3, "one step per chunk");
    for m in &lost {
        env.ports.delivery_queue.ack(&m.receipt).await.unwrap();
    }
    run(&env).await;
    assert_eq!((holders(first).await, holders(second_id).await), (7, 7), "nothing removed yet");

    // Not looked at before their steps could have run (a tick now plans nothing again).
    local::workers::tick(&env.ports).await.unwrap();
    run(&env).await;
    assert_eq!((holders(first).await, holders(second_id).await), (7, 7), "not yet looked at");
    // Looked at once a step could no longer be alive: both planned, every center loses them.
    let recheck = Duration::seconds(shared::service::recall::RECHECK_SECONDS + 60);
    env.time_passes(recheck).await;
    local::workers::tick(&env.ports).await.unwrap();
    run(&env).await;
    assert_eq!((holders(first).await, holders(second_id).await), (0, 0), "planned again by the tick");
    // Both finished at their next look: every chunk done.
    env.time_passes(recheck).await;
    local::workers::tick(&env.ports).await.unwrap();
    run(&env).await;
    let later = env.clock.now() + Duration::days(1);
    assert!(env.ports.notifications.unfinished(later, 10).await.unwrap().is_empty(), "both finished");
    for sid in [first, second_id] {
        let log = env
            .ports
            .notifications
            .log(sid, &shared::model::PageRequest { limit: 50, after: None })
            .await
            .unwrap();
        let removed = log
            .items
            .iter()
            .filter(|e| matches!(e.event, shared::model::LogEvent::ChunkRetracted { .. }))
            .count();
        assert_eq!(removed, 3, "each chunk recorded once");
    }
}

const U1: &str = "11111111-1111-4111-8111-111111111111";
const U2: &str = "22222222-2222-4222-8222-222222222222";
const DEPT: &str = "d0000000-0000-4000-8000-000000000001";

fn basic(client: &str, secret: &str) -> String {
    use base64::Engine;
    format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{client}:{secret}")))
}

async fn notify_call(env: &Env, req: GatewayRequest) -> (u16, Value) {
    let resp = notify::handle(&env.ports, req.into_request()).await;
    (resp.status().as_u16(), json_of(&body_text(&resp)))
}

/// A department notify from Support to u1 (`body`'s message).
async fn department_notify(env: &Env, body: Value) -> String {
    let req = GatewayRequest::new(
        "POST",
        "/communications/department/{departmentUUID}/user/{userUUID}/notify",
        &format!("/communications/department/{DEPT}/user/{U1}/notify"),
    )
    .path_param("departmentUUID", DEPT)
    .path_param("userUUID", U1)
    .header("authorization", &basic("demo-dept", "demo-secret"))
    .body(body.to_string());
    let (status, answer) = notify_call(env, req).await;
    assert_eq!((status, answer["status"].as_str()), (200, Some("SUCCESS")), "{answer}");
    answer["notificationMessageUUID"].as_str().unwrap().to_string()
}

/// `POST …/notify/{message}/{action}` (`retract`, `correct`) with `auth`, for `dept` and `user`.
async fn department_recall(
    env: &Env,
    (auth, dept, user): (&str, &str, &str),
    message: &str,
    action: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let template = format!(
        "/communications/department/{{departmentUUID}}/user/{{userUUID}}/notify/{{notificationMessageUUID}}/{action}"
    );
    let path = format!("/communications/department/{dept}/user/{user}/notify/{message}/{action}");
    let mut req = GatewayRequest::new("POST", &template, &path)
        .path_param("departmentUUID", dept)
        .path_param("userUUID", user)
        .path_param("notificationMessageUUID", message)
        .header("authorization", auth);
    if let Some(body) = body {
        req = req.body(body.to_string());
    }
    notify_call(env, req).await
}

/// The first error's code and description of a department answer.
fn first_error(answer: &Value) -> (&str, &str) {
    let e = &answer["errors"][0];
    (e["errorCode"].as_str().unwrap_or_default(), e["errorDescription"].as_str().unwrap_or_default())
}

/// A department message delivered to u1 (synchronously) and read by u1: corrected by Support
/// (subject and body, shown at once, u1's read kept, u1's pages told), refused to another
/// department, another user's path, bad credentials and bodies that correct what cannot be
/// (each naming its field); then retracted (gone from every view, told once, a repeat answers
/// the same), after which a correction is refused; a message not out yet is refused both
/// (cancel it instead).
async fn a_department_message_is_corrected_and_retracted_by_its_department(env: Env) {
    let mut env = env;
    let hub = Arc::new(MemoryRealtime::new());
    env.ports.realtime = hub.clone();
    let billing = "d0000000-0000-4000-8000-000000000002";
    let mut snapshot = shared::directory::DirectorySnapshot::demo();
    snapshot.departments.push(shared::directory::DepartmentRecord {
        id: billing.parse().unwrap(),
        company_id: 3,
        name: "Billing".into(),
        client_id: "billing-dept".into(),
        secret_sha256: shared::credentials::digest("billing-secret"),
        members: vec![U1.parse().unwrap()],
    });
    env.ports.directory.load(&snapshot).await.unwrap();
    let support = basic("demo-dept", "demo-secret");
    let ours = (support.as_str(), DEPT, U1);
    let message = department_notify(
        &env,
        json!({"messageAttributes": {"subject": "Shift change", "body": "Your shift starts at 08:00."},
            "messageSendingAttributesLite": {"sendSynchronously": true}}),
    )
    .await;
    let id: NotificationId = message.parse().unwrap();
    let u1: UserId = U1.parse().unwrap();
    assert!(env.ports.inbox.mark(u1, id, Mark::Read, env.clock.now()).await.unwrap());

    // Refused: who may not, and what cannot be corrected; nothing changes.
    let billing_auth = basic("billing-dept", "billing-secret");
    for (who, code, status) in [
        ((billing_auth.as_str(), billing, U1), "NOT_FOUND", 404),
        ((support.as_str(), DEPT, U2), "NOT_FOUND", 404),
        ((&*basic("demo-dept", "wrong"), DEPT, U1), "UNAUTHORIZED", 401),
    ] {
        for (action, body) in
            [("correct", Some(json!({"messageAttributes": {"body": "x"}}))), ("retract", None)]
        {
            let (got, answer) = department_recall(&env, who, &message, action, body).await;
            assert_eq!((got, first_error(&answer).0), (status, code), "{action} as {who:?}: {answer}");
        }
    }
    let (status, answer) = department_recall(&env, ours, "not-a-uuid", "retract", None).await;
    assert_eq!(status, 400, "{answer}");
    assert!(first_error(&answer).1.starts_with("notificationMessageUUID"), "{answer}");
    for (body, field) in [
        (json!({}), "messageAttributes"),
        (json!({"messageAttributes": {}}), "messageAttributes"),
        (json!({"messageAttributes": {"body": " "}}), "messageAttributes.body"),
        (json!({"messageAttributes": {"subject": "s".repeat(256)}}), "messageAttributes.subject"),
        (json!({"messageAttributes": {"body": "x", "protocol": "HTML"}}), "messageAttributes.protocol"),
        (
            json!({"messageAttributes": {"body": "x"}, "messageSendingAttributesLite": {"delay": 5}}),
            "messageSendingAttributesLite",
        ),
    ] {
        let (status, answer) = department_recall(&env, ours, &message, "correct", Some(body.clone())).await;
        assert_eq!((status, answer["status"].as_str()), (400, Some("FAILURE")), "{body}: {answer}");
        assert!(first_error(&answer).1.starts_with(field), "{body} names {field}: {answer}");
    }
    let (status, answer) =
        department_recall(&env, ours, &message, "retract", Some(json!({"why": "x"}))).await;
    assert_eq!((status, first_error(&answer).1.starts_with("why")), (400, true), "{answer}");
    let item = env.ports.inbox.get(u1, id).await.unwrap().expect("u1 has it");
    assert_eq!(
        (item.content.title.as_str(), item.content.body.as_str()),
        ("Shift change", "Your shift starts at 08:00.")
    );

    // Corrected: at once in u1's center, read kept; u1's pages told.
    let mut rx = hub.subscribe();
    let (status, answer) = department_recall(
        &env,
        ours,
        &message,
        "correct",
        Some(json!({"messageAttributes": {"body": "Your shift starts at 09:00."}})),
    )
    .await;
    assert_eq!((status, answer["status"].as_str()), (200, Some("SUCCESS")), "{answer}");
    assert_eq!(
        answer["correction"],
        json!({"state": "delivered", "subject": "Shift change", "body": "Your shift starts at 09:00.",
            "correctedOn": "2026-11-22T09:00:00.000Z", "correctedBy": "demo-dept", "emailsSent": 0, "pushesSent": 0,
            "note": "emails and pushes already sent cannot be recalled"})
    );
    let item = env.ports.inbox.get(u1, id).await.unwrap().expect("u1 has it");
    assert_eq!(
        (item.content.title.as_str(), item.content.body.as_str(), item.state.read),
        ("Shift change", "Your shift starts at 09:00.", true)
    );
    run(&env).await;
    let told = drain(&mut rx);
    let corrected =
        told.get(&u1).into_iter().flatten().filter(|e| matches!(e, InboxEvent::Corrected { .. })).count();
    assert_eq!(corrected, 1, "{told:?}");

    // Retracted: gone from every view of u1's, u1 told once; a repeat answers the same.
    for repeated in [false, true] {
        let (status, answer) = department_recall(&env, ours, &message, "retract", None).await;
        assert_eq!((status, answer["status"].as_str()), (200, Some("SUCCESS")), "{answer}");
        let r = &answer["retraction"];
        assert_eq!(
            (
                r["state"].as_str(),
                r["peopleReached"].as_u64(),
                r["retractedBy"].as_str(),
                r["alreadyRetracted"].as_bool()
            ),
            (Some("retracted"), Some(1), Some("demo-dept"), Some(repeated)),
            "{answer}"
        );
        assert_eq!(r["note"], "emails and pushes already sent cannot be recalled");
        run(&env).await;
    }
    assert_eq!(anywhere(&env, u1, id).await, Vec::<String>::new());
    let a_day_on = env.clock.now() + Duration::days(1);
    assert!(
        !env.ports.notifications.unfinished(a_day_on, 50).await.unwrap().contains(&id),
        "one chunk: finished by its step, not left to the tick"
    );
    let told = drain(&mut rx);
    let retracted =
        told.get(&u1).into_iter().flatten().filter(|e| **e == InboxEvent::Retracted { id }).count();
    assert_eq!(retracted, 1, "{told:?}");
    let (status, answer) = department_recall(
        &env,
        ours,
        &message,
        "correct",
        Some(json!({"messageAttributes": {"body": "late"}})),
    )
    .await;
    assert_eq!((status, first_error(&answer).0), (409, "ALREADY_RETRACTED"), "{answer}");

    // Not out yet: cancel it instead.
    let later = department_notify(
        &env,
        json!({"messageAttributes": {"body": "in an hour"}, "messageSendingAttributesLite": {"delay": 3600}}),
    )
    .await;
    for (action, body) in [("retract", None), ("correct", Some(json!({"messageAttributes": {"body": "x"}})))]
    {
        let (status, answer) = department_recall(&env, ours, &later, action, body).await;
        assert_eq!((status, first_error(&answer).0), (409, "ALREADY_PENDING"), "{action}: {answer}");
    }
}

const APP: &str = "/api/data/v9.2/appnotifications/{NotificationId}";

/// An in-app notification from company 3's administrator to u1, with a markdown override.
async fn app_notify(env: &Env) -> NotificationId {
    let req = GatewayRequest::new(
        "POST",
        "/api/data/v9.2/SendAppNotification",
        "/api/data/v9.2/SendAppNotification",
    )
    .header("authorization", "Bearer demo-admin-token")
    .body(
        json!({"Title": "Build failed", "Body": "main is red", "Recipient": format!("/systemusers({U1})"),
                "OverrideContent": {"title": "**Build failed**", "body": "main is *red*"}})
        .to_string(),
    );
    let (status, answer) = notify_call(env, req).await;
    assert_eq!(status, 200, "{answer}");
    answer["NotificationId"].as_str().unwrap().parse().unwrap()
}

/// `POST …/appnotifications/{id}/retract` (no body given) or `PATCH …/appnotifications/{id}`
/// (a correction) as `token`.
async fn app_recall(env: &Env, token: &str, id: &str, correction: Option<Value>) -> (u16, Value) {
    let req = match correction {
        None => GatewayRequest::new(
            "POST",
            &format!("{APP}/retract"),
            &format!("/api/data/v9.2/appnotifications/{id}/retract"),
        ),
        Some(body) => GatewayRequest::new("PATCH", APP, &format!("/api/data/v9.2/appnotifications/{id}"))
            .body(body.to_string()),
    }
    .path_param("NotificationId", id)
    .header("authorization", &format!("Bearer {token}"));
    let resp = notify::handle(&env.ports, req.into_request()).await;
    assert_eq!(resp.headers().get("odata-version").map(|v| v.to_str().unwrap()), Some("4.0"));
    (resp.status().as_u16(), json_of(&body_text(&resp)))
}

/// An in-app notification delivered to u1 and read: corrected by its sender (Title only: the
/// override title that would hide it removed, its override body kept; shown at once, read kept, u1 told), refused to a user
/// without the privilege (403), another tenant (404), a bad id and parameters that cannot be
/// corrected (400 naming them); retracted (gone, told once, a repeat answers the same), after which
/// a correction is refused; one not delivered yet is refused (cancel it instead).
async fn an_app_notification_is_corrected_and_retracted_by_whoever_may_cancel_it(env: Env) {
    let mut env = env;
    let hub = Arc::new(MemoryRealtime::new());
    env.ports.realtime = hub.clone();
    let id = app_notify(&env).await;
    let text = id.to_string();
    // Not delivered yet: cancel it instead.
    for correction in [None, Some(json!({"Title": "x"}))] {
        let (status, answer) = app_recall(&env, "demo-admin-token", &text, correction).await;
        assert_eq!((status, answer["error"]["state"].as_str()), (409, Some("pending")), "{answer}");
    }
    run(&env).await;
    let u1: UserId = U1.parse().unwrap();
    assert!(env.ports.inbox.mark(u1, id, Mark::Read, env.clock.now()).await.unwrap());

    for (token, status, parameter) in
        [("demo-user-2-token", 403, None), ("demo-admin-4-token", 404, Some("NotificationId"))]
    {
        for correction in [None, Some(json!({"Title": "x"}))] {
            let (got, answer) = app_recall(&env, token, &text, correction).await;
            assert_eq!(
                (got, answer["error"]["parameter"].as_str()),
                (status, parameter),
                "{token}: {answer}"
            );
        }
    }
    let (status, answer) = app_recall(&env, "demo-admin-token", "nope", None).await;
    assert_eq!((status, answer["error"]["parameter"].as_str()), (400, Some("NotificationId")), "{answer}");
    for (body, parameter) in [
        (json!({}), "Title"),
        (json!({"Title": ""}), "Title"),
        (json!({"Title": null}), "Title"),
        (json!({"Title": "t".repeat(201)}), "Title"),
        (json!({"Recipient": format!("/systemusers({U2})")}), "Recipient"),
        (json!({"Title": "x", "Priority": 200000001}), "Priority"),
        (json!({"OverrideContent": {"iconUrl": "/x"}}), "OverrideContent.iconUrl"),
        (json!({"OverrideContent": "x"}), "OverrideContent"),
    ] {
        let (status, answer) = app_recall(&env, "demo-admin-token", &text, Some(body.clone())).await;
        assert_eq!(
            (status, answer["error"]["parameter"].as_str()),
            (400, Some(parameter)),
            "{body}: {answer}"
        );
    }
    let req = GatewayRequest::new(
        "POST",
        &format!("{APP}/retract"),
        &format!("/api/data/v9.2/appnotifications/{text}/retract"),
    )
    .path_param("NotificationId", &text)
    .header("authorization", "Bearer demo-admin-token")
    .body(json!({"reason": "x"}).to_string());
    let (status, answer) = notify_call(&env, req).await;
    assert_eq!((status, answer["error"]["parameter"].as_str()), (400, Some("reason")), "{answer}");

    // Corrected: the title, which shows (the override that hid it removed; the body's kept); at
    // once, read kept.
    let mut rx = hub.subscribe();
    let (status, answer) =
        app_recall(&env, "demo-admin-token", &text, Some(json!({"Title": "Build fixed"}))).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        answer,
        json!({"NotificationId": text, "State": "delivered", "Title": "Build fixed", "Body": "main is red",
            "OverrideContent": {"title": null, "body": "main is *red*"}, "CorrectedOn": "2026-11-22T09:00:00.000Z",
            "CorrectedBy": "654", "EmailsSent": 0, "PushesSent": 0, "Note": "emails and pushes already sent cannot be recalled"})
    );
    let item = env.ports.inbox.get(u1, id).await.unwrap().expect("u1 has it");
    let shown = item.content.override_content.clone().unwrap_or_default();
    assert_eq!(
        (item.content.title.as_str(), shown.title, shown.body.as_deref(), item.state.read),
        ("Build fixed", None, Some("main is *red*"), true)
    );
    run(&env).await;
    let told = drain(&mut rx);
    assert_eq!(
        told.get(&u1).into_iter().flatten().filter(|e| matches!(e, InboxEvent::Corrected { .. })).count(),
        1
    );

    // Retracted; a repeat answers the same.
    for repeated in [false, true] {
        let (status, answer) = app_recall(&env, "demo-admin-token", &text, None).await;
        assert_eq!(status, 200, "{answer}");
        assert_eq!(
            (
                answer["State"].as_str(),
                answer["PeopleReached"].as_u64(),
                answer["RetractedBy"].as_str(),
                answer["AlreadyRetracted"].as_bool()
            ),
            (Some("retracted"), Some(1), Some("654"), Some(repeated)),
            "{answer}"
        );
        run(&env).await;
    }
    assert_eq!(anywhere(&env, u1, id).await, Vec::<String>::new());
    let a_day_on = env.clock.now() + Duration::days(1);
    assert!(
        !env.ports.notifications.unfinished(a_day_on, 50).await.unwrap().contains(&id),
        "one chunk: finished by its step, not left to the tick"
    );
    let told = drain(&mut rx);
    assert_eq!(
        told.get(&u1).into_iter().flatten().filter(|e| **e == InboxEvent::Retracted { id }).count(),
        1
    );
    let (status, answer) = app_recall(&env, "demo-admin-token", &text, Some(json!({"Title": "late"}))).await;
    assert_eq!((status, answer["error"]["state"].as_str()), (409, Some("retracted")), "{answer}");
}

/// Thirty in-app notifications delivered, then retracted in the store with no plan queued (as if
/// each request ended at its write): more than a tick reads at once. Once due, one tick plans every
/// one of them (page after page, not a fixed number a minute), and each, one chunk, is finished by its
/// step: every center loses them, none is left registered.
async fn a_backlog_of_retractions_is_worked_off_in_one_tick(env: Env) {
    let mut ids = Vec::new();
    for _ in 0..30 {
        ids.push(app_notify(&env).await);
    }
    run(&env).await;
    let u1: UserId = U1.parse().unwrap();
    for id in &ids {
        assert!(env.ports.inbox.get(u1, *id).await.unwrap().is_some());
        env.ports.notifications.retract(*id, "654", env.clock.now()).await.unwrap();
    }
    // Looked at once a step could no longer be alive: all by the one tick.
    env.time_passes(Duration::seconds(shared::service::recall::RECHECK_SECONDS + 60)).await;
    local::workers::tick(&env.ports).await.unwrap();
    run(&env).await;
    for id in &ids {
        assert!(env.ports.inbox.get(u1, *id).await.unwrap().is_none(), "{id} retracted after one tick");
    }
    let a_day_on = env.clock.now() + Duration::days(1);
    assert_eq!(
        env.ports.notifications.unfinished(a_day_on, 100).await.unwrap(),
        Vec::<NotificationId>::new(),
        "all finished"
    );
}

end_to_end!(
    a_backlog_of_retractions_is_worked_off_in_one_tick,
    a_department_message_is_corrected_and_retracted_by_its_department,
    an_app_notification_is_corrected_and_retracted_by_whoever_may_cancel_it,
    a_lost_plan_or_lost_steps_are_planned_again_by_the_tick,
    emails_queued_before_a_retraction_are_withdrawn,
    a_delivered_send_is_retracted_from_every_center,
    a_delivered_send_is_corrected_in_every_center_keeping_each_state,
    a_send_cancelled_half_way_is_retracted_from_exactly_its_people,
);
