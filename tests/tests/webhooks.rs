//! A tenant's status webhooks, on memory and on moto: an administrator sets the endpoint (its
//! secret shown once), events of every kind arrive signed as Standard Webhooks describes (a
//! verifier written from the scheme checks them), each fact once when the receiver takes it, a
//! failing receiver is tried again on the promised schedule (5 s, 5 min, 30 min, 2 h, 5 h, 10 h,
//! 10 h: docs/api/webhooks.md) while delivery goes on, a rotation signs with both secrets for a
//! day, a replay sends the same `webhook-id` again, and nobody sees or configures another
//! tenant's.

use chrono::Duration;
use serde_json::{Value, json};
use shared::http::{GatewayRequest, body_text};
use shared::model::{InboxQuery, PageRequest, StatusFilter};
use shared::ports::Clock;
use tests::hooks::{Receiver, signed_by};
use tests::{Env, end_to_end};

const ADMIN3: (&str, &str) = ("demo-admin-token", "00000000-0000-4000-8000-000000000003");
const EVENTS3: (&str, &str) = ("demo-event-token", "00000000-0000-4000-8000-000000000003");
const ADMIN4: (&str, &str) = ("demo-admin-4-token", "00000000-0000-4000-8000-000000000004");
const U1: &str = "11111111-1111-4111-8111-111111111111";

fn json_of(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or(Value::String(text.to_string()))
}

/// A call of the send function as `(token, key)`: `template` is the route, `path` the request's.
async fn call(
    env: &Env,
    who: (&str, &str),
    method: &str,
    template: &str,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut req = GatewayRequest::new(method, template, path)
        .header("x-nextinteract-authtoken", who.0)
        .header("x-nextinteract-company-api-key", who.1);
    if let Some(id) = path.strip_prefix("/rest/notification/webhook/events/") {
        req = req.path_param("eventId", id.trim_end_matches("/replay"));
    }
    if let Some(id) = path.strip_prefix("/rest/notification/send/") {
        req = req.path_param("notificationScheduleId", id.split('/').next().unwrap());
    }
    if let Some(body) = body {
        req = req.body(body.to_string());
    }
    let resp = send::handle(&env.ports, req.into_request()).await;
    (resp.status().as_u16(), json_of(&body_text(&resp)))
}

const ENDPOINT: &str = "/rest/notification/webhook";

async fn configure(env: &Env, url: &str, events: Value) -> String {
    let (status, answer) =
        call(env, ADMIN3, "PUT", ENDPOINT, ENDPOINT, Some(json!({"url": url, "events": events}))).await;
    assert_eq!(status, 201, "{answer}");
    answer["secret"].as_str().unwrap().to_string()
}

async fn event(env: &Env, who: (&str, &str), id: &str) -> (u16, Value) {
    let template = "/rest/notification/webhook/events/{eventId}";
    call(env, who, "GET", template, &format!("/rest/notification/webhook/events/{id}"), None).await
}

async fn group_send(env: &Env, body: Value) -> u64 {
    let (status, answer) =
        call(env, ADMIN3, "POST", "/rest/notification/send", "/rest/notification/send", Some(body)).await;
    assert_eq!(status, 200, "{answer}");
    answer["notificationScheduleId"].as_u64().unwrap()
}

fn gt(message: &str) -> Value {
    json!({"version": 3, "type": "GT", "key": "3", "values": ["23"], "message": message})
}

async fn run(env: &Env) {
    local::workers::run_until_idle(&env.ports, env.max_receives).await.unwrap();
}

/// The posts of type `t`.
fn of_type(receiver: &Receiver, t: &str) -> Vec<tests::hooks::Post> {
    receiver.posts().into_iter().filter(|p| p.json()["type"] == t).collect()
}

async fn status_events_arrive_signed_once_each(env: Env) {
    let receiver = Receiver::start(vec![]).await;
    let secret = configure(&env, &receiver.url, json!([])).await;
    assert!(secret.starts_with("whsec_"), "{secret}");
    // Shown once: reading the endpoint shows its dates, never the secret.
    let (status, shown) = call(&env, ADMIN3, "GET", ENDPOINT, ENDPOINT, None).await;
    assert_eq!((status, shown.get("secret")), (200, None), "{shown}");
    assert!(!shown.to_string().contains(&secret[6..]), "{shown}");

    let id = group_send(&env, gt("webhooks: delivered")).await;
    let app = tests::notify_app(&env, U1, "webhooks: in-app").await;
    run(&env).await;
    let accepted = of_type(&receiver, "notification.accepted");
    let delivered = of_type(&receiver, "notification.delivered");
    assert_eq!((accepted.len(), delivered.len()), (2, 2), "{:#?}", receiver.posts());
    for post in receiver.posts() {
        assert!(signed_by(&post, &secret), "verifiable with the secret: {post:?}");
        assert!(!signed_by(&post, &shared::service::webhooks::new_secret()), "by no other secret");
        assert!(post.header("webhook-id").starts_with("msg_"), "{post:?}");
        let timestamp: i64 = post.header("webhook-timestamp").parse().unwrap();
        assert_eq!(timestamp, env.clock.now().timestamp(), "signed when sent");
        assert_eq!((post.header("content-type"), post.count("content-type")), ("application/json", 1));
    }
    let group = delivered.iter().find(|p| p.json()["data"]["notificationScheduleId"] == id).unwrap().json();
    assert_eq!(group["data"]["origin"], "groupSend", "{group}");
    // Team 23 is u1, u2 and u3: the count every center agrees with.
    assert_eq!(
        (group["data"]["recipients"].as_u64(), group["data"]["delivered"].as_u64()),
        (Some(3), Some(3))
    );
    let in_app = delivered.iter().find(|p| p.json()["data"]["notificationId"] == app.to_string()).unwrap();
    assert_eq!(in_app.json()["data"]["origin"], "appNotification");
    // Once each: ticks, redeliveries and later handlings send nothing more.
    local::workers::tick(&env.ports).await.unwrap();
    env.time_passes(Duration::hours(30)).await;
    local::workers::tick(&env.ports).await.unwrap();
    run(&env).await;
    assert_eq!(receiver.posts().len(), 4, "each fact once");
    // Its record: delivered at the first try.
    let (status, record) = event(&env, ADMIN3, delivered[0].header("webhook-id")).await;
    assert_eq!(status, 200, "{record}");
    assert_eq!(
        (record["state"].as_str(), record["tries"].as_u64()),
        (Some("delivered"), Some(1)),
        "{record}"
    );
    assert_eq!(record["attempts"][0]["status"], 200, "{record}");
    // Another tenant's administrator sees no such event, and has no endpoint.
    let (status, _) = event(&env, ADMIN4, delivered[0].header("webhook-id")).await;
    assert_eq!(status, 404);
    let (status, none) = call(&env, ADMIN4, "GET", ENDPOINT, ENDPOINT, None).await;
    assert_eq!((status, none["exception"].as_str()), (404, Some("WSNotFoundException")), "{none}");
    // With company 3's key, company 4's administrator is refused (403), not given its own.
    let (status, mixed) = call(&env, (ADMIN4.0, ADMIN3.1), "GET", ENDPOINT, ENDPOINT, None).await;
    assert_eq!(status, 403, "{mixed}");
    // Kept 30 days (docs/api/webhooks.md), then gone, whether or not DynamoDB's TTL ran yet.
    let id = delivered[0].header("webhook-id");
    // (30 hours have passed since it happened: 29 days and 6 hours after the next step.)
    env.time_passes(Duration::days(28)).await;
    assert_eq!(event(&env, ADMIN3, id).await.0, 200, "kept 30 days");
    env.time_passes(Duration::days(1)).await;
    assert_eq!(event(&env, ADMIN3, id).await.0, 404, "gone after 30 days");
}

async fn a_failing_receiver_is_tried_on_the_schedule_while_delivery_goes_on(env: Env) {
    // Every try fails: 503 and 500 in turn, then 200 on the third; a second send's event is
    // never taken (always 500) and is given up after the eighth try.
    let receiver = Receiver::start(vec![503, 500]).await;
    configure(&env, &receiver.url, json!(["notification.delivered"])).await;
    group_send(&env, gt("webhooks: retried")).await;
    run(&env).await;
    // The receiver's failure held nothing: every center has it.
    for user in [U1, "22222222-2222-4222-8222-222222222222"] {
        let q = InboxQuery { status: StatusFilter::All, ..InboxQuery::default() };
        let page = env
            .ports
            .inbox
            .list(user.parse().unwrap(), &q, env.clock.now(), &PageRequest::first(10))
            .await
            .unwrap();
        assert_eq!(page.items.len(), 1, "delivered to {user}");
    }
    assert_eq!(receiver.posts().len(), 1);
    let id = receiver.posts()[0].header("webhook-id").to_string();
    let (_, record) = event(&env, ADMIN3, &id).await;
    assert_eq!((record["state"].as_str(), record["tries"].as_u64()), (Some("pending"), Some(1)), "{record}");
    // The second try comes 5 s after the first: not before.
    env.time_passes(Duration::seconds(4)).await;
    run(&env).await;
    assert_eq!(receiver.posts().len(), 1, "not before its time");
    env.time_passes(Duration::seconds(1)).await;
    run(&env).await;
    assert_eq!(receiver.posts().len(), 2, "the second try, 5 s on");
    // The third 5 minutes after the second (SQS's delay is at most 15 minutes: longer waits hop).
    env.time_passes(Duration::seconds(299)).await;
    run(&env).await;
    assert_eq!(receiver.posts().len(), 2);
    env.time_passes(Duration::seconds(1)).await;
    run(&env).await;
    let posts = receiver.posts();
    assert_eq!(posts.len(), 3, "the third try, 5 min on");
    assert!(posts.iter().all(|p| p.header("webhook-id") == id), "one id across tries");
    let stamps: Vec<&str> = posts.iter().map(|p| p.header("webhook-timestamp")).collect();
    assert!(stamps[0] < stamps[1] && stamps[1] < stamps[2], "each try signed afresh: {stamps:?}");
    let (_, record) = event(&env, ADMIN3, &id).await;
    assert_eq!(
        (record["state"].as_str(), record["tries"].as_u64()),
        (Some("delivered"), Some(3)),
        "{record}"
    );
    let statuses: Vec<u64> =
        record["attempts"].as_array().unwrap().iter().map(|a| a["status"].as_u64().unwrap()).collect();
    assert_eq!(statuses, vec![503, 500, 200]);

    // A receiver that never takes it: tried 8 times over the documented schedule, then failed.
    let down = Receiver::start(vec![500; 20]).await;
    let (status, _) = call(
        &env,
        ADMIN3,
        "PUT",
        ENDPOINT,
        ENDPOINT,
        Some(json!({"url": down.url, "events": ["notification.delivered"]})),
    )
    .await;
    assert_eq!(status, 200);
    group_send(&env, gt("webhooks: given up")).await;
    run(&env).await;
    // The waits the documentation promises, each passed whole (hops of at most 15 minutes).
    for (i, wait) in [5i64, 300, 1800, 7200, 18000, 36000, 36000].into_iter().enumerate() {
        env.time_passes(Duration::seconds(wait - 1)).await;
        run(&env).await;
        assert_eq!(down.posts().len(), i + 1, "try {} not before {wait} s", i + 2);
        env.time_passes(Duration::seconds(1)).await;
        run(&env).await;
        assert_eq!(down.posts().len(), i + 2, "try {} after {wait} s", i + 2);
    }
    env.time_passes(Duration::hours(48)).await;
    run(&env).await;
    assert_eq!(down.posts().len(), 8, "eight tries, then given up");
    let (_, record) = event(&env, ADMIN3, down.posts()[0].header("webhook-id")).await;
    assert_eq!((record["state"].as_str(), record["tries"].as_u64()), (Some("failed"), Some(8)), "{record}");
}

async fn a_rotation_signs_with_both_secrets_for_a_day_and_a_replay_sends_again(env: Env) {
    let receiver = Receiver::start(vec![]).await;
    let old = configure(&env, &receiver.url, json!(["notification.delivered"])).await;
    let (status, rotated) = call(
        &env,
        ADMIN3,
        "POST",
        "/rest/notification/webhook/rotate",
        "/rest/notification/webhook/rotate",
        None,
    )
    .await;
    assert_eq!(status, 200, "{rotated}");
    let new = rotated["secret"].as_str().unwrap().to_string();
    assert_ne!(new, old);
    let day = env.clock.now() + Duration::hours(24);
    assert_eq!(rotated["secrets"][1]["expiresAt"].as_i64(), Some(day.timestamp_millis()), "{rotated}");
    group_send(&env, gt("webhooks: rotated")).await;
    run(&env).await;
    let first = &receiver.posts()[0];
    assert!(signed_by(first, &new) && signed_by(first, &old), "both verify during the day: {first:?}");
    // A day on, the old one no longer signs.
    env.time_passes(Duration::hours(24)).await;
    group_send(&env, gt("webhooks: a day later")).await;
    run(&env).await;
    let later = &receiver.posts()[1];
    assert!(signed_by(later, &new) && !signed_by(later, &old), "{later:?}");
    assert_eq!(later.header("webhook-signature").split(' ').count(), 1);
    // A replay of the first event: the same id, signed afresh, counted in its tries.
    let id = first.header("webhook-id").to_string();
    let replay = format!("/rest/notification/webhook/events/{id}/replay");
    let (status, replayed) =
        call(&env, ADMIN3, "POST", "/rest/notification/webhook/events/{eventId}/replay", &replay, None).await;
    assert_eq!((status, replayed["state"].as_str()), (202, Some("pending")), "{replayed}");
    run(&env).await;
    let again = &receiver.posts()[2];
    assert_eq!(again.header("webhook-id"), id);
    assert_eq!(again.body, first.body, "the same event");
    assert!(signed_by(again, &new));
    let (_, record) = event(&env, ADMIN3, &id).await;
    assert_eq!(
        (record["state"].as_str(), record["tries"].as_u64()),
        (Some("delivered"), Some(2)),
        "{record}"
    );
    // Another tenant cannot replay it.
    let (status, _) =
        call(&env, ADMIN4, "POST", "/rest/notification/webhook/events/{eventId}/replay", &replay, None).await;
    assert_eq!(status, 404);
    assert_eq!(receiver.posts().len(), 3);
}

async fn cancellations_and_retractions_are_told(env: Env) {
    let receiver = Receiver::start(vec![]).await;
    configure(&env, &receiver.url, json!(["notification.cancelled", "notification.retracted"])).await;
    let later = env.clock.now() + Duration::days(2);
    let scheduled = group_send(
        &env,
        json!({"version": 3, "type": "GT", "key": "3", "values": ["23"], "message": "webhooks: scheduled",
               "scheduleTimezoneId": "UTC", "scheduleLocalDateTime": later.format("%Y-%m-%dT09:00:00").to_string()}),
    )
    .await;
    let path = format!("/rest/notification/send/{scheduled}");
    let (status, answer) =
        call(&env, ADMIN3, "DELETE", "/rest/notification/send/{notificationScheduleId}", &path, None).await;
    assert_eq!(status, 200, "{answer}");
    let sent = group_send(&env, gt("webhooks: retracted")).await;
    run(&env).await;
    let retract = format!("/rest/notification/send/{sent}/retract");
    let (status, answer) = call(
        &env,
        ADMIN3,
        "POST",
        "/rest/notification/send/{notificationScheduleId}/retract",
        &retract,
        None,
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    run(&env).await;
    let cancelled = of_type(&receiver, "notification.cancelled");
    let retracted = of_type(&receiver, "notification.retracted");
    assert_eq!((cancelled.len(), retracted.len()), (1, 1), "{:#?}", receiver.posts());
    let c = cancelled[0].json();
    assert_eq!(c["data"]["notificationScheduleId"], scheduled);
    assert_eq!(
        (c["data"]["cancelledBy"].as_str(), c["data"]["delivered"].as_u64()),
        (Some("654"), Some(0)),
        "{c}"
    );
    let r = retracted[0].json();
    assert_eq!(
        (r["data"]["notificationScheduleId"].as_u64(), r["data"]["retractedBy"].as_str()),
        (Some(sent), Some("654"))
    );
    // Repeats answer the same and tell nothing new.
    call(&env, ADMIN3, "DELETE", "/rest/notification/send/{notificationScheduleId}", &path, None).await;
    call(&env, ADMIN3, "POST", "/rest/notification/send/{notificationScheduleId}/retract", &retract, None)
        .await;
    run(&env).await;
    assert_eq!(receiver.posts().len(), 2, "each fact once");
}

async fn the_endpoint_is_the_tenants_administrators(env: Env) {
    let receiver = Receiver::start(vec![]).await;
    let body = json!({"url": receiver.url});
    // Only a COMPANY_ADMIN or SUPER_USER, in the dialect's envelope.
    let (status, refused) = call(&env, EVENTS3, "PUT", ENDPOINT, ENDPOINT, Some(body.clone())).await;
    assert_eq!(
        (status, refused["exception"].as_str()),
        (403, Some("WSInsufficientPermissionsException")),
        "{refused}"
    );
    let (status, _) = call(&env, ("nobody", ADMIN3.1), "GET", ENDPOINT, ENDPOINT, None).await;
    assert_eq!(status, 401);
    // Bad input names its field.
    for (bad, field) in [
        (json!({"url": "mailto:ops@example.com"}), "url"),
        (json!({"url": receiver.url, "events": ["notification.read"]}), "events[0]"),
        (json!({"url": receiver.url, "enabled": 1}), "enabled"),
        (json!({"url": receiver.url, "secret": "whsec_mine"}), "secret"),
    ] {
        let (status, answer) = call(&env, ADMIN3, "PUT", ENDPOINT, ENDPOINT, Some(bad)).await;
        assert_eq!((status, answer["parameter"].as_str()), (400, Some(field)), "{answer}");
    }
    // A notification accepted before the tenant had an endpoint owes nothing.
    group_send(&env, gt("webhooks: before")).await;
    run(&env).await;
    let (status, _) = call(&env, ADMIN3, "PUT", ENDPOINT, ENDPOINT, Some(body.clone())).await;
    assert_eq!(status, 201);
    run(&env).await;
    assert!(receiver.posts().is_empty(), "{:#?}", receiver.posts());
    // Disabled: nothing is sent; enabled again, what is accepted then is.
    let off = json!({"url": receiver.url, "enabled": false});
    assert_eq!(call(&env, ADMIN3, "PUT", ENDPOINT, ENDPOINT, Some(off)).await.0, 200);
    group_send(&env, gt("webhooks: disabled")).await;
    run(&env).await;
    assert!(receiver.posts().is_empty());
    assert_eq!(call(&env, ADMIN3, "PUT", ENDPOINT, ENDPOINT, Some(body.clone())).await.0, 200);
    let sid = group_send(&env, gt("webhooks: enabled again")).await;
    run(&env).await;
    let told: Vec<Value> =
        receiver.posts().iter().map(|p| p.json()["data"]["notificationScheduleId"].clone()).collect();
    assert_eq!(told, vec![json!(sid), json!(sid)], "accepted and delivered, of the send made once enabled");
    // A plain http URL outside loopback is refused: events carry people's addresses.
    let plain = json!({"url": "http://hooks.example.com/n"});
    let (status, answer) = call(&env, ADMIN3, "PUT", ENDPOINT, ENDPOINT, Some(plain)).await;
    assert_eq!((status, answer["parameter"].as_str()), (400, Some("url")), "{answer}");
    // Removed: gone for the tenant (404 after), and another tenant's admin never touched it.
    let (status, _) = call(&env, ADMIN4, "DELETE", ENDPOINT, ENDPOINT, None).await;
    assert_eq!(status, 404, "company 4 has none of its own");
    assert_eq!(call(&env, ADMIN3, "GET", ENDPOINT, ENDPOINT, None).await.0, 200);
    assert_eq!(call(&env, ADMIN3, "DELETE", ENDPOINT, ENDPOINT, None).await.0, 204);
    assert_eq!(call(&env, ADMIN3, "GET", ENDPOINT, ENDPOINT, None).await.0, 404);
}

async fn an_internal_address_is_never_posted_to(env: Env) {
    // The callback's outbound rules: a metadata address is refused at the try, for good.
    let (status, _) = call(
        &env,
        ADMIN3,
        "PUT",
        ENDPOINT,
        ENDPOINT,
        Some(json!({"url": "https://169.254.169.254/latest/meta-data"})),
    )
    .await;
    assert_eq!(status, 201);
    let sid = group_send(&env, gt("webhooks: refused")).await;
    run(&env).await;
    let n = env.ports.notifications.get_by_schedule_id(sid).await.unwrap().unwrap();
    let id = shared::model::HookEvent::id_for(shared::model::HookEventType::Accepted, &n.id.to_string());
    let (status, record) = event(&env, ADMIN3, &id).await;
    assert_eq!(status, 200, "{record}");
    assert_eq!((record["state"].as_str(), record["tries"].as_u64()), (Some("failed"), Some(1)), "{record}");
    assert!(record["attempts"][0]["error"].as_str().unwrap().contains("not an address"), "{record}");
}

async fn an_event_that_could_not_be_queued_is_queued_by_the_next_handling(mut env: Env) {
    // The webhook queue refuses the acceptance's event as the request stores the notification:
    // the request still answers, the event stays recorded but unqueued, and the fan-out's first
    // run (the next handling) queues it. Told at least once, under one id.
    let receiver = Receiver::start(vec![]).await;
    configure(&env, &receiver.url, json!(["notification.accepted"])).await;
    let faults = tests::faults::Faults::none();
    env.ports.webhook_queue =
        std::sync::Arc::new(tests::faults::FaultyQueue(env.ports.webhook_queue.clone(), faults.clone()));
    faults.fail_next("send_all");
    let sid = group_send(&env, gt("webhooks: queued late")).await;
    let n = env.ports.notifications.get_by_schedule_id(sid).await.unwrap().unwrap();
    let id = shared::model::HookEvent::id_for(shared::model::HookEventType::Accepted, &n.id.to_string());
    let recorded = env.ports.webhooks.event(&id).await.unwrap().expect("recorded before it was queued");
    assert!(!recorded.queued, "its queueing failed");
    run(&env).await;
    let posts = receiver.posts();
    assert!(!posts.is_empty() && posts.iter().all(|p| p.header("webhook-id") == id), "{posts:#?}");
    let (_, record) = event(&env, ADMIN3, &id).await;
    assert_eq!(record["state"].as_str(), Some("delivered"), "{record}");
    assert!(env.ports.webhooks.event(&id).await.unwrap().unwrap().queued);
}

async fn copies_of_a_try_and_a_replay_keep_one_chain(env: Env) {
    // SQS hands the first try out twice: one post, one chain of tries after it.
    let receiver = Receiver::start(vec![500]).await;
    configure(&env, &receiver.url, json!(["notification.accepted"])).await;
    group_send(&env, gt("webhooks: copies")).await;
    let first = env.ports.webhook_queue.receive(10).await.unwrap();
    assert_eq!(first.len(), 1, "the acceptance's first try");
    env.ports.webhook_queue.send_all(&[first[0].body.clone(), first[0].body.clone()]).await.unwrap();
    env.ports.webhook_queue.ack(&first[0].receipt).await.unwrap();
    run(&env).await;
    assert_eq!(receiver.posts().len(), 1, "one copy posted (500), the other dropped");
    env.time_passes(Duration::seconds(5)).await;
    run(&env).await;
    env.time_passes(Duration::hours(30)).await;
    run(&env).await;
    assert_eq!(receiver.posts().len(), 2, "one second try (200), and nothing after");
    let id = receiver.posts()[0].header("webhook-id").to_string();
    let (_, record) = event(&env, ADMIN3, &id).await;
    assert_eq!(
        (record["state"].as_str(), record["tries"].as_u64()),
        (Some("delivered"), Some(2)),
        "{record}"
    );

    // A replay while a chain still waits replaces it: its pending try is dropped when due.
    let failing = Receiver::start(vec![500]).await;
    let url = json!({"url": failing.url, "events": ["notification.accepted"]});
    assert_eq!(call(&env, ADMIN3, "PUT", ENDPOINT, ENDPOINT, Some(url)).await.0, 200);
    group_send(&env, gt("webhooks: replaced")).await;
    run(&env).await;
    assert_eq!(failing.posts().len(), 1, "the first try failed; the second waits 5 s");
    let id = failing.posts()[0].header("webhook-id").to_string();
    let replay = format!("/rest/notification/webhook/events/{id}/replay");
    let (status, _) =
        call(&env, ADMIN3, "POST", "/rest/notification/webhook/events/{eventId}/replay", &replay, None).await;
    assert_eq!(status, 202);
    run(&env).await;
    env.time_passes(Duration::hours(30)).await;
    run(&env).await;
    assert_eq!(failing.posts().len(), 2, "the replay's one post; the replaced chain's try dropped");
    let (_, record) = event(&env, ADMIN3, &id).await;
    assert_eq!(
        (record["state"].as_str(), record["tries"].as_u64()),
        (Some("delivered"), Some(2)),
        "{record}"
    );
}

/// A scheduled send fanned out by the scheduler's tick, whose every chunk is delivered before the
/// fan-out finishes: the fan-out completes it and owes its `notification.delivered`; the webhook
/// queue refuses that event then. The tick's run has nobody to retry it, so it hands the event to
/// a fan-out job, whose run queues it: told once.
async fn a_fan_out_that_cannot_queue_the_final_event_hands_it_to_a_job(env: Env) {
    let receiver = Receiver::start(vec![]).await;
    configure(&env, &receiver.url, json!(["notification.delivered"])).await;
    let at = (env.clock.now() + Duration::minutes(30)).format("%Y-%m-%dT%H:%M:%S").to_string();
    let mut body = gt("webhooks: the tick completes it");
    body["scheduleTimezoneId"] = json!("UTC");
    body["scheduleLocalDateTime"] = json!(at);
    let sid = group_send(&env, body).await;
    let id = env.ports.notifications.get_by_schedule_id(sid).await.unwrap().unwrap().id;
    env.time_passes(Duration::minutes(31)).await;

    // The tick's fan-out, held just before it finishes; its chunks delivered meanwhile.
    let faults = tests::faults::Faults::none();
    let mut ports = tests::faults::faulty(&env.ports, &faults);
    ports.webhook_queue =
        std::sync::Arc::new(tests::faults::FaultyQueue(env.ports.webhook_queue.clone(), faults.clone()));
    faults.stall_before("finish_fanout", 0);
    let tick = tokio::spawn(async move { local::workers::tick(&ports).await });
    for _ in 0..500 {
        if faults.stalled() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert!(faults.stalled(), "the tick's fan-out reached its finish");
    run(&env).await;
    assert!(
        of_type(&receiver, "notification.delivered").is_empty(),
        "not complete before the fan-out finishes"
    );
    // The first queueing after it goes on is the final event's: refused.
    faults.fail_next("send_all");
    faults.resume();
    tick.await.unwrap().expect("the tick answers");
    let n = env.ports.notifications.get(id).await.unwrap().unwrap();
    assert_eq!(n.status, shared::model::Status::Delivered, "completed by the tick's fan-out");
    let event_id = shared::model::HookEvent::id_for(shared::model::HookEventType::Delivered, &id.to_string());
    let recorded = env.ports.webhooks.event(&event_id).await.unwrap().expect("recorded");
    assert!(!recorded.queued, "its queueing was refused");

    run(&env).await;
    let delivered = of_type(&receiver, "notification.delivered");
    assert_eq!(delivered.len(), 1, "told once, by the fan-out job: {:#?}", receiver.posts());
    assert_eq!(delivered[0].header("webhook-id"), event_id);
    assert!(env.ports.webhooks.event(&event_id).await.unwrap().unwrap().queued);
}

end_to_end!(
    a_fan_out_that_cannot_queue_the_final_event_hands_it_to_a_job,
    copies_of_a_try_and_a_replay_keep_one_chain,
    an_event_that_could_not_be_queued_is_queued_by_the_next_handling,
    status_events_arrive_signed_once_each,
    a_failing_receiver_is_tried_on_the_schedule_while_delivery_goes_on,
    a_rotation_signs_with_both_secrets_for_a_day_and_a_replay_sends_again,
    cancellations_and_retractions_are_told,
    the_endpoint_is_the_tenants_administrators,
    an_internal_address_is_never_posted_to,
);
