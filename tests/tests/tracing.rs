//! One id through the pipeline (`shared::trace`, README "Logs", docs/operations.md), on memory
//! and on moto: every answer names its request (`x-request-id`), and every log line about a
//! notification — in the function that took the request, the fan-out (a job's or the scheduler's
//! tick), delivery, email jobs, status events' tries and SES's feedback, across every queue hop —
//! carries that notification and the request that made it, where CloudWatch Logs Insights finds
//! them in Lambda's JSON logs (`span.notification`, `span.request`); another request about it (a
//! retraction) is named beside (`span.by`).

use std::collections::{BTreeMap, BTreeSet};

use chrono::Duration;
use serde_json::{Value, json};
use shared::http::{GatewayRequest, REQUEST_ID, body_text};
use tests::hooks::Receiver;
use tests::{Env, end_to_end};
use uuid::Uuid;

const ADMIN3: (&str, &str) = ("demo-admin-token", "00000000-0000-4000-8000-000000000003");
const U1: &str = "11111111-1111-4111-8111-111111111111";
const U1_EMAIL: &str = "aaron.mcmullen@hypermedia.com.au";

/// What an HTTP function answered: status, body, and the request id it named.
struct Answer {
    status: u16,
    body: Value,
    request: String,
}

fn answer_of(resp: lambda_http::Response<lambda_http::Body>) -> Answer {
    let request = resp.headers().get(REQUEST_ID).map(|v| v.to_str().unwrap().to_string());
    let request = request.unwrap_or_else(|| panic!("every answer names its request: {:?}", resp.headers()));
    assert!(request.parse::<Uuid>().is_ok(), "a request id is a UUID: {request}");
    let text = body_text(&resp);
    Answer {
        status: resp.status().as_u16(),
        body: serde_json::from_str(&text).unwrap_or(Value::String(text)),
        request,
    }
}

async fn send(env: &Env, method: &str, path: &str, body: Value) -> Answer {
    let req = GatewayRequest::new(method, path, path)
        .header("x-nextinteract-authtoken", ADMIN3.0)
        .header("x-nextinteract-company-api-key", ADMIN3.1)
        .body(body.to_string());
    answer_of(send::handle(&env.ports, req.into_request()).await)
}

/// One log line as Lambda's JSON format writes it.
struct Line {
    message: String,
    /// The notification its own fields name (`?Option` fields read `Some(…)`).
    names: Option<String>,
    /// Its span's notification, request and other request.
    notification: Option<String>,
    request: Option<String>,
    by: Option<String>,
}

fn lines() -> Vec<Line> {
    let text = tests::logs::capture_json("info").text();
    text.lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap_or_else(|e| panic!("a JSON line ({e}): {l}")))
        .map(|v| {
            let text = |v: &Value| v.as_str().map(str::to_string);
            Line {
                message: text(&v["fields"]["message"]).unwrap_or_default(),
                names: text(&v["fields"]["notification"])
                    .map(|id| id.trim_start_matches("Some(").trim_end_matches(')').to_string()),
                notification: text(&v["span"]["notification"]),
                request: text(&v["span"]["request"]),
                by: text(&v["span"]["by"]),
            }
        })
        .collect()
}

async fn run(env: &Env) {
    local::workers::run_until_idle(&env.ports, env.max_receives).await.unwrap();
}

async fn one_request_id_follows_each_notification_through_every_function(env: Env) {
    tests::logs::capture_json("info");
    // The tenant's status events (the webhook queue's hop), a device of u1's (pushes).
    let receiver = Receiver::start(vec![]).await;
    let hook =
        send(&env, "PUT", "/rest/notification/webhook", json!({"url": receiver.url, "events": []})).await;
    assert_eq!(hook.status, 201, "{}", hook.body);
    let path = format!("/users/{U1}/devices");
    let token = format!("{}{}", Uuid::new_v4().simple(), Uuid::new_v4().simple());
    let req = GatewayRequest::new("POST", "/users/{userId}/devices", &path)
        .header("authorization", "Bearer demo-user-1-token")
        .path_param("userId", U1)
        .body(json!({"platform": "APNS", "token": token}).to_string());
    let device = answer_of(inbox::handle(&env.ports, req.into_request()).await);
    assert_eq!(device.status, 201, "{}", device.body);

    // A broadcast with email, now; a team send at its time (the scheduler's tick takes it); an
    // in-app notification through the notify function.
    let subject = format!("Traced {}", &Uuid::new_v4().simple().to_string()[..8]);
    let ga = send(
        &env,
        "POST",
        "/rest/notification/send",
        json!({"version": 3, "type": "GA", "key": "3", "message": "Brochure 4 has a new edition",
            "url": "https://example.com/brochures/4", "brochureId": 4,
            "emailTemplate": "Client.Generic.Notification.html", "emailSubject": subject,
            "emailParams": [{"key": "firstName", "value": "x"}]}),
    )
    .await;
    assert_eq!(ga.status, 200, "{}", ga.body);
    // t0 is 20:00 in Sydney: due a minute later.
    let later = send(
        &env,
        "POST",
        "/rest/notification/send",
        json!({"version": 3, "type": "GT", "key": "3", "values": ["23"], "message": "in a minute",
            "scheduleTimezoneId": "Australia/Sydney", "scheduleLocalDateTime": "2026-11-22T20:01:00"}),
    )
    .await;
    assert_eq!(later.status, 200, "{}", later.body);
    let path = "/api/data/v9.2/SendAppNotification";
    let req =
        GatewayRequest::new("POST", path, path).header("authorization", "Bearer demo-admin-token").body(
            json!({"Title": "Traced", "Body": "b", "Recipient": format!("/systemusers({U1})")}).to_string(),
        );
    let app = answer_of(notify::handle(&env.ports, req.into_request()).await);
    assert_eq!(app.status, 200, "{}", app.body);
    run(&env).await;
    env.clock.set(tests::t0() + Duration::seconds(61));
    local::workers::tick(&env.ports).await.unwrap();
    run(&env).await;
    // Another request about the in-app notification: its retraction, whose steps remove it.
    let app_id: Uuid = app.body["NotificationId"].as_str().unwrap().parse().unwrap();
    let path = format!("/api/data/v9.2/appnotifications/{app_id}/retract");
    let req = GatewayRequest::new("POST", "/api/data/v9.2/appnotifications/{NotificationId}/retract", &path)
        .header("authorization", "Bearer demo-admin-token")
        .path_param("NotificationId", &app_id.to_string());
    let retract = answer_of(notify::handle(&env.ports, req.into_request()).await);
    assert_eq!(retract.status, 200, "{}", retract.body);
    run(&env).await;
    let requests: BTreeSet<&str> =
        [&hook, &device, &ga, &later, &app, &retract].map(|a| a.request.as_str()).into();
    assert_eq!(requests.len(), 6, "each request its own id");

    let by_schedule = |answer: &Answer| answer.body["notificationScheduleId"].as_u64().unwrap();
    let ga_n = env.ports.notifications.get_by_schedule_id(by_schedule(&ga)).await.unwrap().unwrap();
    let later_n = env.ports.notifications.get_by_schedule_id(by_schedule(&later)).await.unwrap().unwrap();
    for n in [&ga_n, &later_n] {
        assert_eq!(n.status, shared::model::Status::Delivered, "{n:?}");
    }
    assert_eq!(
        ga_n.origin_request.as_deref(),
        Some(ga.request.as_str()),
        "the notification keeps its request"
    );
    assert!(!env.outbox.emails(&subject).await.is_empty(), "the broadcast was emailed");
    assert!(!receiver.posts().is_empty(), "status events went out");

    // SES reports a bounce of the broadcast's email, with the tags the email was sent with.
    let bounce = json!({"eventType": "Bounce", "mail": {"timestamp": "2026-11-22T09:00:00.000Z",
        "messageId": format!("ses-{}", Uuid::new_v4().simple()), "destination": [U1_EMAIL],
        "tags": {"notification": [ga_n.id.to_string()], "request": [ga.request]}},
        "bounce": {"bounceType": "Permanent", "timestamp": "2026-11-22T09:00:05.000Z",
        "bouncedRecipients": [{"emailAddress": U1_EMAIL}]}});
    assert!(env.ses_events(&[bounce]).await.is_empty());

    let expected: BTreeMap<String, &str> = [
        (ga_n.id.to_string(), ga.request.as_str()),
        (later_n.id.to_string(), later.request.as_str()),
        (app_id.to_string(), app.request.as_str()),
    ]
    .into();
    let mut seen: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    let mut by_retraction = BTreeSet::new();
    let mut wrong = Vec::new();
    for line in lines() {
        let about: BTreeSet<&String> = line.names.iter().chain(&line.notification).collect();
        for (id, request) in about.into_iter().filter_map(|id| expected.get_key_value(id)) {
            // In its span (where the query finds it), with the request that made it.
            if (line.notification.as_ref(), line.request.as_deref()) != (Some(id), Some(*request)) {
                wrong.push(format!(
                    "{:?} about {id} in the span of {:?}, request {:?}",
                    line.message, line.notification, line.request
                ));
            }
            seen.entry(*request).or_default().insert(line.message.clone());
            if line.by.as_deref() == Some(retract.request.as_str()) {
                by_retraction.insert(line.message.clone());
            }
        }
    }
    assert!(wrong.is_empty(), "lines without their notification's span:\n{}", wrong.join("\n"));
    // Every function's lines are there, each named by the request.
    let has = |request: &str, messages: &[&str]| {
        let lines = seen.get(request).cloned().unwrap_or_default();
        for m in messages {
            assert!(lines.contains(*m), "{m:?} among the lines of request {request}: {lines:#?}");
        }
    };
    has(
        &ga.request,
        &[
            "notification accepted",
            "fan-out job",
            "fan-out finished",
            "chunk delivered",
            "email job recorded",
            "status event tried",
            "email feedback recorded",
        ],
    );
    // The scheduler's tick names the request that made it, from its record.
    has(
        &later.request,
        &["notification accepted", "fan-out finished", "chunk delivered", "status event tried"],
    );
    has(
        &app.request,
        &["fan-out job", "fan-out finished", "chunk delivered", "status event tried", "recall step"],
    );
    // The retraction's own lines name the notification's request, and the retraction's beside.
    assert!(by_retraction.contains("retracted"), "{by_retraction:?}");
}

end_to_end!(one_request_id_follows_each_notification_through_every_function);
