//! Group send end to end: request → notification → fan-out → delivery → inbox, against memory
//! and against DynamoDB/SQS on moto, with the demo directory.

use std::collections::BTreeSet;

use chrono::Duration;
use serde_json::{Value, json};
use shared::http::{GatewayRequest, body_text};
use shared::model::*;
use shared::ports::Clock;
use tests::{Env, end_to_end};
use uuid::Uuid;

const U1: &str = "11111111-1111-4111-8111-111111111111";

fn user(n: u8) -> Uuid {
    let d = n.to_string();
    format!("{0}-{1}-4{2}-8{2}-{3}", d.repeat(8), d.repeat(4), d.repeat(3), d.repeat(12)).parse().unwrap()
}

async fn send(env: &Env, token: &str, body: Value) -> (u16, String) {
    send_through(&env.ports, token, body).await
}

/// A group send with company 3's API key through `ports` (the environment's, or wrapped).
async fn send_through(ports: &shared::runtime::Ports, token: &str, body: Value) -> (u16, String) {
    let req = GatewayRequest::new("POST", "/rest/notification/send", "/rest/notification/send")
        .header("x-nextinteract-authtoken", token)
        .header("x-nextinteract-company-api-key", "00000000-0000-4000-8000-000000000003")
        .body(body.to_string());
    let resp = send::handle(ports, req.into_request()).await;
    (resp.status().as_u16(), body_text(&resp))
}

/// Everyone who has an inbox item of this notification.
async fn holders(env: &Env, id: NotificationId) -> BTreeSet<Uuid> {
    let mut out = BTreeSet::new();
    for n in 1..=9u8 {
        let items = env
            .ports
            .inbox
            .list(user(n), &InboxQuery::ordered(), env.clock.now(), &PageRequest::first(100))
            .await
            .unwrap();
        if items.items.iter().any(|i| i.content.notification_id == id) {
            out.insert(user(n));
        }
    }
    out
}

async fn settle(env: &Env) {
    local::workers::run_until_idle(&env.ports, env.max_receives).await.unwrap();
}

async fn by_schedule_id(env: &Env, answer: &str) -> Notification {
    let sid = serde_json::from_str::<Value>(answer).unwrap()["notificationScheduleId"].as_u64().unwrap();
    env.ports.notifications.get_by_schedule_id(sid).await.unwrap().unwrap()
}

async fn latest(env: &Env, kind: BroadcastType) -> Notification {
    let scope = HistoryScope::CompanyType { company_id: 3, broadcast_type: kind };
    env.ports.notifications.history(&scope, &PageRequest::first(1)).await.unwrap().items.remove(0)
}

/// What a group send asks of the store and the queue, call by call: each is one request on AWS,
/// and a cold function pays each in CPU under its share (docs/benchmarks.md, cold start). The caller's two
/// credentials are one read and its user and company another.
async fn a_group_send_makes_nine_requests(env: Env) {
    let faults = tests::faults::Faults::none();
    let ports = tests::faults::faulty(&env.ports, &faults);
    let gt = json!({ "version": 2, "type": "GT", "key": "3", "values": ["23", "27"], "message": "counted" });
    assert_eq!(send_through(&ports, "demo-admin-token", gt).await, (200, "4".to_string()));
    assert_eq!(
        faults.ops(),
        [
            "credentials",
            "user_and_company",
            "teams",
            "team_members",
            "team_members",
            "consume_quota",
            "next_schedule_id",
            "insert",
            "send_all"
        ]
    );
}

/// A send reads the event, smart library or asset it names once: the check of the request, which
/// resolving the audience then trusts (fan-out reads it again, at its time).
async fn a_send_reads_its_group_once(env: Env) {
    for (token, body, group) in [
        (
            "demo-event-token",
            json!({"version": 2, "type": "GE", "key": "ed90fcd2-cbb4-49b8-9be4-a14ccbc2d1e8", "values": ["456"], "message": "ge"}),
            "event",
        ),
        (
            "demo-admin-token",
            json!({"version": 3, "type": "SN", "key": "11", "values": ["101"], "message": "sn"}),
            "smart_library",
        ),
        (
            "demo-admin-token",
            json!({"version": 3, "type": "GA", "key": "3", "brochureId": 4, "message": "ga"}),
            "asset",
        ),
    ] {
        let faults = tests::faults::Faults::none();
        let ports = tests::faults::faulty(&env.ports, &faults);
        let (status, text) = send_through(&ports, token, body).await;
        assert_eq!(status, 200, "{group}: {text}");
        let ops = faults.ops();
        assert_eq!(ops.iter().filter(|op| *op == group).count(), 1, "{group}: {ops:?}");
    }
}

async fn spec_examples_reach_exactly_the_right_people(env: Env) {
    let gt = json!({ "version": 2, "type": "GT", "key": "3", "values": ["23", "27"], "message": "This is test message for team ids 23 and 27" });
    assert_eq!(send(&env, "demo-admin-token", gt).await, (200, "4".to_string()));
    let ge = json!({ "version": 2, "type": "GE", "key": "ed90fcd2-cbb4-49b8-9be4-a14ccbc2d1e8", "values": ["456", "459"], "message": "This is test message for event team ids 456 and 459" });
    assert_eq!(send(&env, "demo-event-token", ge).await, (200, "3".to_string()));
    let ga = json!({"version": 3, "type": "GA", "key": "3", "brochureId": 4, "message": "New brochure"});
    let (status, ga_answer) = send(&env, "demo-admin-token", ga).await;
    assert_eq!(status, 200);
    let un = json!({"version": 4, "type": "UN", "key": "3", "values": ["aaron.mcmullen@hypermedia.com.au"],
        "message": "PFIZER ORDER UPDATE - Order 123456 hs SHIPPED", "emailParams": [], "brochureId": 4,
        "updateEntityLastModified": false, "userNotificationTypeId": 7, "userNotificationTypeStatusId": 1});
    let (status, un_answer) = send(&env, "demo-admin-token", un).await;
    assert_eq!(status, 200);
    settle(&env).await;

    let gt = latest(&env, BroadcastType::GT).await;
    assert_eq!(holders(&env, gt.id).await, [1, 2, 3, 4].map(user).into());
    assert_eq!((gt.status, gt.recipients, gt.delivered), (Status::Delivered, 4, 4));
    assert_eq!(gt.description, "23,27");
    let ge = latest(&env, BroadcastType::GE).await;
    assert_eq!(holders(&env, ge.id).await, [1, 5, 7].map(user).into(), "Accepted attendees only");
    assert_eq!(ge.delivered, 3);
    let ga = by_schedule_id(&env, &ga_answer).await;
    assert_eq!(holders(&env, ga.id).await, [1, 3, 4].map(user).into(), "u2 unsubscribed (ALP-NUN)");
    assert_eq!((ga.status, ga.delivered), (Status::Delivered, 3));
    let un = by_schedule_id(&env, &un_answer).await;
    assert_eq!(holders(&env, un.id).await, [user(1)].into());

    let item = env.ports.inbox.get(U1.parse().unwrap(), un.id).await.unwrap().unwrap();
    assert_eq!(item.content.body, "PFIZER ORDER UPDATE - Order 123456 hs SHIPPED");
    assert_eq!(item.content.title, "Notification");
    assert_eq!(item.content.expires_at - item.content.created_at, Duration::days(14), "14 days by default");
    assert!(item.content.data.unwrap().contains("\"userNotificationTypeStatus\":\"Available\""));
    assert!(env.ports.fanout_queue.receive(10).await.unwrap().is_empty());
    assert!(env.ports.delivery_queue.receive(10).await.unwrap().is_empty());
}

async fn scheduled_send_goes_out_at_the_first_tick_after_its_time(env: Env) {
    // t0 is 2026-11-22T09:00:00Z = 20:00 in Sydney (AEDT, UTC+11): schedule 20:01 local.
    let body = json!({"version": 3, "type": "GT", "key": "3", "values": ["23"], "message": "in a minute",
        "scheduleTimezoneId": "Australia/Sydney", "scheduleLocalDateTime": "2026-11-22T20:01:00"});
    let (status, answer) = send(&env, "demo-admin-token", body).await;
    assert_eq!(status, 200);
    let n = by_schedule_id(&env, &answer).await;
    assert_eq!(n.due_at, tests::t0() + Duration::minutes(1));

    for seconds in [0, 30, 59] {
        env.clock.set(tests::t0() + Duration::seconds(seconds));
        local::workers::tick(&env.ports).await.unwrap();
        settle(&env).await;
        assert!(holders(&env, n.id).await.is_empty(), "not before its time (t0+{seconds}s)");
    }
    // Two scheduler runs at once after its time: it goes out once.
    env.clock.set(tests::t0() + Duration::seconds(61));
    let (a, b) = tokio::join!(local::workers::tick(&env.ports), local::workers::tick(&env.ports));
    let fanned: usize = [a, b]
        .into_iter()
        .map(|r| match r.unwrap() {
            fanout::Answer::Tick { fanned_out, .. } => fanned_out,
            other => panic!("{other:?}"),
        })
        .sum();
    assert_eq!(fanned, 1, "exactly one tick fans it out");
    settle(&env).await;
    assert_eq!(holders(&env, n.id).await, [1, 2, 3].map(user).into());
    let n = env.ports.notifications.get(n.id).await.unwrap().unwrap();
    assert_eq!((n.status, n.delivered, n.chunks_done), (Status::Delivered, 3, 1));
    assert_eq!(n.team_ids, vec!["23".to_string()]);
}

async fn a_redelivered_chunk_changes_nothing(env: Env) {
    let gt = json!({ "version": 3, "type": "GT", "key": "3", "values": ["23", "27"], "message": "once" });
    let (_, answer) = send(&env, "demo-admin-token", gt).await;
    local::workers::drain_fanout_once(&env.ports).await.unwrap();
    let messages = env.ports.delivery_queue.receive(10).await.unwrap();
    assert_eq!(messages.len(), 1);
    let event = || local::workers::sqs_event(local::workers::DELIVERY_QUEUE_ARN, &messages[..1]);
    let first = deliver::handle(&env.ports, env.max_receives, event()).await;
    let second = deliver::handle(&env.ports, env.max_receives, event()).await;
    assert!(first.batch_item_failures.is_empty() && second.batch_item_failures.is_empty());
    let n = by_schedule_id(&env, &answer).await;
    assert_eq!((n.delivered, n.chunks_done, n.status), (4, 1, Status::Delivered));
    assert_eq!(holders(&env, n.id).await.len(), 4);
    // And a duplicate chunk arriving concurrently is still counted once.
    let (a, b) = tokio::join!(
        deliver::handle(&env.ports, env.max_receives, event()),
        deliver::handle(&env.ports, env.max_receives, event())
    );
    assert!(a.batch_item_failures.is_empty() && b.batch_item_failures.is_empty());
    assert_eq!(env.ports.notifications.get(n.id).await.unwrap().unwrap().delivered, 4);
}

async fn a_poison_message_reaches_the_dlq_without_blocking_its_batch(env: Env) {
    let gt = json!({ "version": 3, "type": "GT", "key": "3", "values": ["27"], "message": "fine" });
    let (_, answer) = send(&env, "demo-admin-token", gt).await;
    env.ports.delivery_queue.send_all(&["{not json".to_string()]).await.unwrap();
    settle(&env).await;
    let n = by_schedule_id(&env, &answer).await;
    assert_eq!((n.status, n.delivered), (Status::Delivered, 2), "the good chunk went through");
    // The poison one was retried up to the receive limit, then dead-lettered.
    let mut dead = Vec::new();
    for _ in 0..5 {
        dead.extend(env.delivery_dlq.receive(10).await.unwrap());
        if !dead.is_empty() {
            break;
        }
        settle(&env).await;
    }
    assert_eq!(dead.iter().map(|m| m.body.as_str()).collect::<Vec<_>>(), vec!["{not json"]);
    assert!(env.ports.delivery_queue.receive(10).await.unwrap().is_empty());
}

/// A chunk whose every receive was killed (Lambda's timeout: no answer, nothing given up) is
/// moved to the DeliveryQueue's dead-letter queue by SQS, and deliver, consuming it, tries it
/// once more (a timeout under load is not poison); killed at every receive again, it gives its
/// notification up — Failed, with why — instead of leaving it Delivering for ever. While another
/// attempt holds the chunk (a copy of it delivering) the dead letter waits for it; a dead letter
/// handed out again (another receive) settles once; a reason given before stays.
async fn a_chunk_killed_at_every_receive_is_given_up_from_its_dead_letter_queue(env: Env) {
    let body =
        json!({"version": 3, "type": "GT", "key": "3", "values": ["27"], "message": "killed every time"});
    let (status, answer) = send(&env, "demo-admin-token", body).await;
    assert_eq!(status, 200, "{answer}");
    local::workers::drain_fanout_once(&env.ports).await.unwrap();
    let killed_at_every_receive = || async {
        let mut dead = Vec::new();
        for _ in 0..=env.max_receives + 1 {
            for killed in env.ports.delivery_queue.receive(10).await.unwrap() {
                env.ports.delivery_queue.nack(&killed.receipt).await.unwrap();
            }
            dead.extend(env.delivery_dlq.receive(10).await.unwrap());
            if !dead.is_empty() {
                break;
            }
        }
        assert_eq!(dead.len(), 1, "the chunk is dead-lettered after its receives");
        dead
    };
    let settle_dead = |dead: &[shared::ports::ReceivedMessage], receive: u32| {
        let mut again = dead.to_vec();
        again[0].receipt = format!("{}#{receive}", dead[0].receipt);
        again[0].receive_count = env.max_receives + receive;
        let event = local::workers::sqs_event(local::workers::DELIVERY_DEAD_LETTER_QUEUE_ARN, &again);
        let env = &env;
        async move { deliver::handle(&env.ports, env.max_receives, event).await.batch_item_failures.len() }
    };
    let dead = killed_at_every_receive().await;
    let n = by_schedule_id(&env, &answer).await;
    assert_eq!(n.status, Status::Delivering, "the kills left it Delivering");
    // A copy of the chunk is delivering (it holds the chunk): the dead letter waits.
    let now = env.clock.now();
    let lease = now + Duration::seconds(75);
    let live = env.ports.notifications.start(n.id, shared::ports::Work::Chunk(0), "live copy", now, lease);
    assert_eq!(live.await.unwrap(), shared::ports::ChunkStart::First);
    assert_eq!(settle_dead(&dead, 1).await, 1, "comes back after the live copy");
    env.ports.notifications.release(n.id, shared::ports::Work::Chunk(0), "live copy", lease).await.unwrap();
    // Then it is tried once more, as a new message.
    assert_eq!(settle_dead(&dead, 2).await, 0, "settled");
    env.delivery_dlq.ack(&dead[0].receipt).await.unwrap();
    assert_eq!(by_schedule_id(&env, &answer).await.status, Status::Delivering, "tried again, not given up");
    let dead = killed_at_every_receive().await;
    assert!(dead[0].body.contains("\"revived\":1"), "{}", dead[0].body);
    for receive in [1, 2] {
        assert_eq!(settle_dead(&dead, receive).await, 0, "settled");
    }
    env.delivery_dlq.ack(&dead[0].receipt).await.unwrap();
    let n = by_schedule_id(&env, &answer).await;
    assert_eq!(n.status, Status::Failed, "given up: {n:?}");
    assert!(n.failure.as_deref().is_some_and(|why| why.contains("dead-lettered")), "{:?}", n.failure);
    assert!(holders(&env, n.id).await.is_empty(), "nobody got it");
    // A dead letter of a notification its last receive gave up keeps that reason.
    env.ports.notifications.mark_failed(n.id, "delivery failed after 5 attempts", now).await.unwrap();
    assert_eq!(settle_dead(&dead, 3).await, 0);
    let n = by_schedule_id(&env, &answer).await;
    assert_eq!(n.failure.as_deref(), Some("delivery failed after 5 attempts"), "the first reason stays");
}

/// Near its invocation's deadline the fan-out function starts nothing new: a tick leaves what
/// is due for the next tick, a queued job comes back as a failure for SQS to redeliver; with
/// time to spare both go out, once.
async fn near_the_deadline_fan_out_starts_nothing_new(env: Env) {
    use shared::service::deadline::Deadline;
    let body = json!({"version": 3, "type": "GT", "key": "3", "values": ["23"], "message": "late in the invocation"});
    let (status, answer) = send(&env, "demo-admin-token", body).await;
    assert_eq!(status, 200);
    let n = by_schedule_id(&env, &answer).await;
    let too_close = Deadline::at(env.clock.now() + Duration::seconds(5));
    let jobs = env.ports.fanout_queue.receive(10).await.unwrap();
    assert_eq!(jobs.len(), 1);
    let answer = fanout::handle_within(
        &env.ports,
        fanout::Trigger::Queue(local::workers::sqs_event(local::workers::FANOUT_QUEUE_ARN, &jobs)),
        too_close,
    )
    .await
    .unwrap();
    assert!(matches!(&answer, fanout::Answer::Batch(b) if b.batch_item_failures.len() == 1), "{answer:?}");
    env.ports.fanout_queue.nack(&jobs[0].receipt).await.unwrap();
    let tick = |deadline| {
        let mut event = aws_lambda_events::event::eventbridge::EventBridgeEvent::default();
        event.detail_type = "Scheduled Event".into();
        fanout::handle_within(&env.ports, fanout::Trigger::Schedule(event), deadline)
    };
    assert_eq!(tick(too_close).await.unwrap(), fanout::Answer::Tick { due: 1, fanned_out: 0 });
    assert_eq!(env.ports.notifications.get(n.id).await.unwrap().unwrap().status, Status::Pending);
    let in_time = Deadline::at(env.clock.now() + Duration::seconds(60));
    assert_eq!(tick(in_time).await.unwrap(), fanout::Answer::Tick { due: 1, fanned_out: 1 });
    settle(&env).await;
    let n = env.ports.notifications.get(n.id).await.unwrap().unwrap();
    assert_eq!((n.status, n.delivered), (Status::Delivered, 3));
}

end_to_end!(
    a_group_send_makes_nine_requests,
    a_send_reads_its_group_once,
    near_the_deadline_fan_out_starts_nothing_new,
    spec_examples_reach_exactly_the_right_people,
    scheduled_send_goes_out_at_the_first_tick_after_its_time,
    a_redelivered_chunk_changes_nothing,
    a_poison_message_reaches_the_dlq_without_blocking_its_batch,
    a_chunk_killed_at_every_receive_is_given_up_from_its_dead_letter_queue,
);
