//! A sender cancels what it sent, in each dialect, on memory and on moto: who may (the dialect's
//! credentials and roles; another tenant's, department's or dialect's notification is answered
//! as one that does not exist), what the answer says (cancelled, the people reached, when and by
//! whom; a repeat answers the same; a finished one is a conflict naming its state), that a
//! cancelled notification reaches nobody afterwards, and that sent history shows it. The race of
//! a cancel against fan-out and delivery is in `concurrency.rs`.

use chrono::Duration;
use serde_json::{Value, json};
use shared::http::{GatewayRequest, body_text};
use shared::model::{NotificationId, UserId};
use tests::{Env, end_to_end};

const ADMIN3: (&str, &str) = ("demo-admin-token", "00000000-0000-4000-8000-000000000003");
const U1: &str = "11111111-1111-4111-8111-111111111111";
const U2: &str = "22222222-2222-4222-8222-222222222222";
const DEPT: &str = "d0000000-0000-4000-8000-000000000001";
const CANCEL: &str = "/rest/notification/send/{notificationScheduleId}";
const DEPARTMENT_CANCEL: &str =
    "/communications/department/{departmentUUID}/user/{userUUID}/notify/{notificationMessageUUID}";
const APP_CANCEL: &str = "/api/data/v9.2/appnotifications/{NotificationId}";

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

async fn cancel_group(env: &Env, (token, key): (&str, &str), id: &str) -> (u16, Value) {
    let req = GatewayRequest::new("DELETE", CANCEL, &format!("/rest/notification/send/{id}"))
        .path_param("notificationScheduleId", id)
        .header("x-nextinteract-authtoken", token)
        .header("x-nextinteract-company-api-key", key);
    let resp = send::handle(&env.ports, req.into_request()).await;
    (resp.status().as_u16(), json_of(&body_text(&resp)))
}

/// Whether `user` has notification `id` in their center.
async fn has(env: &Env, user: &str, id: NotificationId) -> bool {
    let user: UserId = user.parse().unwrap();
    env.ports.inbox.get(user, id).await.unwrap().is_some()
}

async fn a_group_send_is_cancelled_until_it_is_delivered(env: Env) {
    let scheduled = json!({"version": 3, "type": "GT", "key": "3", "values": ["23"], "message": "not after all",
        "scheduleTimezoneId": "UTC", "scheduleLocalDateTime": "2026-11-22T09:30:00"});
    let sid = group_send(&env, scheduled).await;
    let id = env.ports.notifications.get_by_schedule_id(sid).await.unwrap().unwrap().id;
    let sid_text = sid.to_string();

    // Who may not: events3 (GE only), u1 (no role), company 4's admin (invisible to them).
    let (status, body) = cancel_group(&env, ("demo-event-token", ADMIN3.1), &sid_text).await;
    assert_eq!(
        (status, body["exception"].as_str()),
        (403, Some("WSInsufficientPermissionsException")),
        "{body}"
    );
    let (status, body) = cancel_group(&env, ("demo-user-1-token", ADMIN3.1), &sid_text).await;
    assert_eq!(
        (status, body["exception"].as_str()),
        (403, Some("WSInsufficientPermissionsException")),
        "{body}"
    );
    let company4 = ("demo-admin-4-token", "00000000-0000-4000-8000-000000000004");
    let (status, body) = cancel_group(&env, company4, &sid_text).await;
    assert_eq!((status, body["exception"].as_str()), (404, Some("WSNotFoundException")), "{body}");
    assert_eq!(body["parameter"], "notificationScheduleId");
    let (status, body) = cancel_group(&env, ("", ADMIN3.1), &sid_text).await;
    assert_eq!((status, body["exception"].as_str()), (401, Some("WSInvalidAuthTokenException")), "{body}");
    for bad in ["0", "-1", "1.5", "abc", "9007199254740993"] {
        let (status, body) = cancel_group(&env, ADMIN3, bad).await;
        assert_eq!(
            (status, body["parameter"].as_str()),
            (400, Some("notificationScheduleId")),
            "{bad}: {body}"
        );
    }
    let untouched = env.ports.notifications.get(id).await.unwrap().unwrap();
    assert_eq!(untouched.status, shared::model::Status::Pending, "refused cancels change nothing");

    // Its sender cancels it: it reached nobody; a repeat (by SUPER_USER) answers the same.
    let now_ms = tests::t0().timestamp_millis();
    let (status, first) = cancel_group(&env, ADMIN3, &sid_text).await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(
        first,
        json!({"notificationScheduleId": sid, "status": "cancelled", "peopleReached": 0, "cancelled": now_ms,
            "cancelledBy": "654", "alreadyCancelled": false})
    );
    env.clock.advance(Duration::minutes(1));
    let (status, again) = cancel_group(&env, ("demo-super-token", ADMIN3.1), &sid_text).await;
    assert_eq!(status, 200, "{again}");
    assert_eq!((again["cancelled"].as_i64(), again["cancelledBy"].as_str()), (Some(now_ms), Some("654")));
    assert_eq!((again["peopleReached"].as_u64(), again["alreadyCancelled"].as_bool()), (Some(0), Some(true)));

    // Sent history shows it cancelled, when and by whom.
    let req = GatewayRequest::new("GET", "/rest/notification/sent", "/rest/notification/sent")
        .header("x-nextinteract-authtoken", ADMIN3.0)
        .query(&format!("version=1&notificationScheduleId={sid}"));
    let resp = sent_history::handle(&env.ports, req.into_request()).await;
    let records = json_of(&body_text(&resp));
    let record = &records[0];
    assert_eq!(
        (record["status"].as_str(), record["cancelled"].as_i64(), record["cancelledBy"].as_str()),
        (Some("cancelled"), Some(now_ms), Some("654")),
        "{records}"
    );
    assert_eq!(
        (record["successful"].as_bool(), record["totalNotificationsSent"].as_u64()),
        (Some(false), Some(0))
    );

    // Its time comes and goes: nobody gets it.
    env.time_passes(Duration::minutes(31)).await;
    local::workers::tick(&env.ports).await.unwrap();
    local::workers::run_until_idle(&env.ports, env.max_receives).await.unwrap();
    for user in [U1, U2, "33333333-3333-4333-8333-333333333333"] {
        assert!(!has(&env, user, id).await, "{user} never got the cancelled send");
    }

    // Delivered: nothing to cancel, and the answer says what it is.
    let sid =
        group_send(&env, json!({"version": 3, "type": "GT", "key": "3", "values": ["23"], "message": "out"}))
            .await;
    local::workers::run_until_idle(&env.ports, env.max_receives).await.unwrap();
    let (status, body) = cancel_group(&env, ADMIN3, &sid.to_string()).await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(
        (body["exception"].as_str(), body["state"].as_str(), body["parameter"].as_str()),
        (Some("WSConflictException"), Some("delivered"), Some("notificationScheduleId"))
    );
    let delivered = env.ports.notifications.get_by_schedule_id(sid).await.unwrap().unwrap();
    assert!(has(&env, U1, delivered.id).await, "still in u1's center");

    // Another dialect's notification has a schedule id too; it is not a group send.
    let req = GatewayRequest::new(
        "POST",
        "/api/data/v9.2/SendAppNotification",
        "/api/data/v9.2/SendAppNotification",
    )
    .header("authorization", "Bearer demo-admin-token")
    .body(json!({"Title": "t", "Recipient": format!("/systemusers({U1})")}).to_string());
    let resp = notify::handle(&env.ports, req.into_request()).await;
    let app: NotificationId = json_of(&body_text(&resp))["NotificationId"].as_str().unwrap().parse().unwrap();
    let app_sid = env.ports.notifications.get(app).await.unwrap().unwrap().schedule_id;
    let (status, body) = cancel_group(&env, ADMIN3, &app_sid.to_string()).await;
    assert_eq!((status, body["exception"].as_str()), (404, Some("WSNotFoundException")), "{body}");
}

async fn change_group(env: &Env, (token, key): (&str, &str), id: &str, body: Value) -> (u16, Value) {
    let req = GatewayRequest::new("PATCH", CANCEL, &format!("/rest/notification/send/{id}"))
        .path_param("notificationScheduleId", id)
        .header("x-nextinteract-authtoken", token)
        .header("x-nextinteract-company-api-key", key)
        .body(body.to_string());
    let resp = send::handle(&env.ports, req.into_request()).await;
    (resp.status().as_u16(), json_of(&body_text(&resp)))
}

/// A pending group send is changed (message, url, schedule with the send's rules) by whoever may
/// send it, until its fan-out starts; what goes out is the changed send, and sent history shows
/// it; after that, 409 naming its state.
async fn a_pending_group_send_is_changed_until_it_goes_out(env: Env) {
    let sid = group_send(
        &env,
        json!({"version": 3, "type": "GT", "key": "3", "values": ["23"], "message": "Meeting at 3pm",
            "url": "https://example.com/old", "scheduleTimezoneId": "Australia/Sydney",
            "scheduleLocalDateTime": "2026-11-23T09:00:00", "scheduleJobName": "reminder"}),
    )
    .await
    .to_string();
    let company4 = ("demo-admin-4-token", "00000000-0000-4000-8000-000000000004");
    let (status, body) = change_group(&env, company4, &sid, json!({"message": "intrusion"})).await;
    assert_eq!((status, body["exception"].as_str()), (404, Some("WSNotFoundException")), "{body}");
    let (status, body) =
        change_group(&env, ("demo-event-token", ADMIN3.1), &sid, json!({"message": "x"})).await;
    assert_eq!(
        (status, body["exception"].as_str()),
        (403, Some("WSInsufficientPermissionsException")),
        "{body}"
    );
    // Bad changes, each naming its field; nothing changes.
    for (body, field) in [
        (json!({}), "message"),
        (json!({"type": "GE"}), "type"),
        (json!({"message": ""}), "message"),
        (json!({"url": "javascript:alert(1)"}), "url"),
        (json!({"message": "m".repeat(2030)}), "message"),
        (json!({"scheduleTimezoneId": "Australia/Sydney"}), "scheduleLocalDateTime"),
        (
            json!({"scheduleTimezoneId": "Nowhere/Else", "scheduleLocalDateTime": "2026-11-23T10:00:00"}),
            "scheduleTimezoneId",
        ),
        // Sydney springs forward on 2027-10-03: 02:30 does not exist there.
        (
            json!({"scheduleTimezoneId": "Australia/Sydney", "scheduleLocalDateTime": "2027-10-03T02:30:00"}),
            "scheduleLocalDateTime",
        ),
    ] {
        let (status, answer) = change_group(&env, ADMIN3, &sid, body.clone()).await;
        assert_eq!((status, answer["parameter"].as_str()), (400, Some(field)), "{body}: {answer}");
    }
    // A message and url: the rest stays.
    let (status, changed) = change_group(
        &env,
        ADMIN3,
        &sid,
        json!({"message": "Meeting moved to 4pm", "url": "https://example.com/new"}),
    )
    .await;
    assert_eq!(status, 200, "{changed}");
    assert_eq!(
        (changed["message"].as_str(), changed["url"].as_str()),
        (Some("Meeting moved to 4pm"), Some("https://example.com/new"))
    );
    assert_eq!(changed["scheduleLocalDateTime"], "2026-11-23T09:00:00");
    assert_eq!(
        (changed["status"].as_str(), changed["notificationModifiedBy"].as_str()),
        (Some("pending"), Some("654"))
    );
    // Sydney falls back on 2027-04-04: 02:30 happens twice; the earlier instant (AEDT, +11).
    let (status, changed) = change_group(
        &env,
        ("demo-super-token", ADMIN3.1),
        &sid,
        json!({"scheduleTimezoneId": "Australia/Sydney", "scheduleLocalDateTime": "2027-04-04T02:30:00"}),
    )
    .await;
    assert_eq!(status, 200, "{changed}");
    let earlier = chrono::DateTime::parse_from_rfc3339("2027-04-03T15:30:00Z").unwrap().timestamp_millis();
    assert_eq!(changed["scheduled"].as_i64(), Some(earlier));
    assert_eq!(
        (changed["message"].as_str(), changed["scheduleJobName"].as_str()),
        (Some("Meeting moved to 4pm"), Some("reminder"))
    );
    // Moved to a time already past: it goes now (queued at once, no tick needed), as changed.
    let (status, changed) = change_group(
        &env,
        ADMIN3,
        &sid,
        json!({"url": null, "scheduleTimezoneId": "UTC", "scheduleLocalDateTime": "2026-11-22T08:00:00"}),
    )
    .await;
    assert_eq!(status, 200, "{changed}");
    assert_eq!(
        (changed["url"].clone(), changed["scheduled"].as_i64()),
        (Value::Null, Some(tests::t0().timestamp_millis()))
    );
    local::workers::run_until_idle(&env.ports, env.max_receives).await.unwrap();
    let n = env.ports.notifications.get_by_schedule_id(sid.parse().unwrap()).await.unwrap().unwrap();
    assert_eq!(n.status, shared::model::Status::Delivered, "delivered without a tick");
    let item = env.ports.inbox.get(U1.parse().unwrap(), n.id).await.unwrap().expect("u1 has it");
    assert_eq!((item.content.body.as_str(), item.content.url.as_deref()), ("Meeting moved to 4pm", None));
    let req = GatewayRequest::new("GET", "/rest/notification/sent", "/rest/notification/sent")
        .header("x-nextinteract-authtoken", ADMIN3.0)
        .query(&format!("version=1&notificationScheduleId={sid}"));
    let records = json_of(&body_text(&sent_history::handle(&env.ports, req.into_request()).await));
    assert_eq!(
        (records[0]["message"].as_str(), records[0]["status"].as_str()),
        (Some("Meeting moved to 4pm"), Some("delivered"))
    );
    // Gone out: too late.
    let (status, body) = change_group(&env, ADMIN3, &sid, json!({"message": "too late"})).await;
    assert_eq!((status, body["state"].as_str()), (409, Some("delivered")), "{body}");
}

/// Two changes of one pending send at once both land, each made on what the other left (the
/// later one reads it again): never one lost; eight times. On memory every call gives way at
/// random.
async fn two_changes_at_once_both_land(env: Env) {
    let seed = std::env::var("CONCURRENCY_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| u64::from(rand::random::<u32>()));
    println!("two changes at once: interleaving seed {seed} (CONCURRENCY_SEED={seed} replays it)");
    let (env, schedule) = env.interleaved(seed);
    for round in 0..8 {
        let sid = group_send(
            &env,
            json!({"version": 3, "type": "GT", "key": "3", "values": ["23"], "message": format!("first {round}"),
                "scheduleTimezoneId": "UTC", "scheduleLocalDateTime": "2026-11-23T09:00:00"}),
        )
        .await
        .to_string();
        let message = change_group(&env, ADMIN3, &sid, json!({"message": "second"}));
        let url =
            change_group(&env, ("demo-super-token", ADMIN3.1), &sid, json!({"url": "https://example.com/u"}));
        let ((a, a_body), (b, b_body)) = tokio::join!(message, url);
        assert_eq!((a, b), (200, 200), "{a_body} {b_body}");
        let n = env.ports.notifications.get_by_schedule_id(sid.parse().unwrap()).await.unwrap().unwrap();
        assert_eq!(
            (n.content.body.as_str(), n.content.url.as_deref()),
            ("second", Some("https://example.com/u")),
            "both landed"
        );
        assert_eq!(n.revision, 2);
    }
    assert!(schedule.most_in_flight() > 1, "the two changes overlapped");
}

/// A url changed keeps the send's campaign tag (checked without it, as the send was); a send that
/// was not scheduled cannot be given a schedule (it is going out).
async fn a_changed_url_keeps_its_campaign_tag(env: Env) {
    let sid = group_send(
        &env,
        json!({"version": 3, "type": "GT", "key": "3", "values": ["23"], "message": "m".repeat(2048 - 22),
            "url": "https://example.com/a", "campaignTagId": 42,
            "scheduleTimezoneId": "UTC", "scheduleLocalDateTime": "2026-11-23T09:00:00"}),
    )
    .await
    .to_string();
    // 2026 message characters and a 22-character url fit; the tag the send added does not count.
    let (status, changed) = change_group(&env, ADMIN3, &sid, json!({"url": "https://example.com/b"})).await;
    assert_eq!(status, 200, "{changed}");
    assert_eq!(changed["url"], "https://example.com/b?campaignTagId=42");
    let (status, changed) = change_group(
        &env,
        ADMIN3,
        &sid,
        json!({"scheduleTimezoneId": "UTC", "scheduleLocalDateTime": "2026-11-24T09:00:00"}),
    )
    .await;
    assert_eq!(status, 200, "a schedule alone re-checks nothing else: {changed}");
    let (status, body) =
        change_group(&env, ADMIN3, &sid, json!({"url": "https://example.com/longer-by-far"})).await;
    assert_eq!((status, body["parameter"].as_str()), (400, Some("message")), "{body}");
    // Sent ad hoc, queued: no schedule to change.
    let adhoc =
        group_send(&env, json!({"version": 3, "type": "GT", "key": "3", "values": ["23"], "message": "now"}))
            .await;
    let (status, body) = change_group(
        &env,
        ADMIN3,
        &adhoc.to_string(),
        json!({"scheduleTimezoneId": "UTC", "scheduleLocalDateTime": "2026-11-24T09:00:00"}),
    )
    .await;
    assert_eq!((status, body["parameter"].as_str()), (409, Some("scheduleTimezoneId")), "{body}");
}

fn basic(client: &str, secret: &str) -> String {
    use base64::Engine;
    format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{client}:{secret}")))
}

async fn department_notify(env: &Env, body: Value) -> (u16, Value) {
    let req = GatewayRequest::new(
        "POST",
        "/communications/department/{departmentUUID}/user/{userUUID}/notify",
        &format!("/communications/department/{DEPT}/user/{U1}/notify"),
    )
    .path_param("departmentUUID", DEPT)
    .path_param("userUUID", U1)
    .header("authorization", &basic("demo-dept", "demo-secret"))
    .body(body.to_string());
    let resp = notify::handle(&env.ports, req.into_request()).await;
    (resp.status().as_u16(), json_of(&body_text(&resp)))
}

async fn cancel_department(env: &Env, auth: &str, dept: &str, user: &str, message: &str) -> (u16, Value) {
    let req = GatewayRequest::new(
        "DELETE",
        DEPARTMENT_CANCEL,
        &format!("/communications/department/{dept}/user/{user}/notify/{message}"),
    )
    .path_param("departmentUUID", dept)
    .path_param("userUUID", user)
    .path_param("notificationMessageUUID", message)
    .header("authorization", auth);
    let resp = notify::handle(&env.ports, req.into_request()).await;
    (resp.status().as_u16(), json_of(&body_text(&resp)))
}

async fn a_department_message_is_cancelled_by_its_department_only(env: Env) {
    // A second department of company 3, with u1 among its users.
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

    let (status, sent) = department_notify(
        &env,
        json!({"messageAttributes": {"body": "in ten minutes"}, "messageSendingAttributesLite": {"delay": 600}}),
    )
    .await;
    assert_eq!(status, 200, "{sent}");
    let message = sent["notificationMessageUUID"].as_str().unwrap().to_string();
    let support = basic("demo-dept", "demo-secret");

    // Another department (with its own credentials), another user in the path, bad credentials,
    // a bad id: refused, in the dialect's shape.
    let (status, body) =
        cancel_department(&env, &basic("billing-dept", "billing-secret"), billing, U1, &message).await;
    assert_eq!((status, body["errors"][0]["errorCode"].as_str()), (404, Some("NOT_FOUND")), "{body}");
    let (status, body) = cancel_department(&env, &support, DEPT, U2, &message).await;
    assert_eq!((status, body["errors"][0]["errorCode"].as_str()), (404, Some("NOT_FOUND")), "{body}");
    let (status, body) = cancel_department(&env, &basic("demo-dept", "wrong"), DEPT, U1, &message).await;
    assert_eq!((status, body["errors"][0]["errorCode"].as_str()), (401, Some("UNAUTHORIZED")), "{body}");
    let (status, body) = cancel_department(&env, &support, DEPT, U1, "not-a-uuid").await;
    assert_eq!((status, body["status"].as_str()), (400, Some("FAILURE")), "{body}");
    let description = body["errors"][0]["errorDescription"].as_str().unwrap_or_default();
    assert!(description.starts_with("notificationMessageUUID"), "names the field: {body}");

    // Its department cancels it; a repeat answers the same.
    for repeated in [false, true] {
        let (status, body) = cancel_department(&env, &support, DEPT, U1, &message).await;
        assert_eq!((status, body["status"].as_str()), (200, Some("SUCCESS")), "{body}");
        assert_eq!(body["notificationMessageUUID"], message.as_str());
        let c = &body["cancellation"];
        assert_eq!(
            (c["state"].as_str(), c["peopleReached"].as_u64()),
            (Some("cancelled"), Some(0)),
            "{body}"
        );
        assert_eq!(
            (c["cancelledBy"].as_str(), c["alreadyCancelled"].as_bool()),
            (Some("demo-dept"), Some(repeated))
        );
        assert_eq!(c["cancelledOn"], "2026-11-22T09:00:00.000Z");
    }
    env.time_passes(Duration::minutes(11)).await;
    local::workers::tick(&env.ports).await.unwrap();
    local::workers::run_until_idle(&env.ports, env.max_receives).await.unwrap();
    assert!(!has(&env, U1, message.parse().unwrap()).await, "u1 never got the cancelled message");

    // Delivered synchronously: too late, and the error says so.
    let (status, sent) =
        department_notify(&env, json!({"messageAttributes": {"body": "now"}, "messageSendingAttributesLite": {"sendSynchronously": true}}))
            .await;
    assert_eq!((status, sent["status"].as_str()), (200, Some("SUCCESS")), "{sent}");
    let message = sent["notificationMessageUUID"].as_str().unwrap().to_string();
    let (status, body) = cancel_department(&env, &support, DEPT, U1, &message).await;
    assert_eq!((status, body["status"].as_str()), (409, Some("FAILURE")), "{body}");
    assert_eq!(body["errors"][0]["errorCode"], "ALREADY_DELIVERED", "{body}");
    assert!(has(&env, U1, message.parse().unwrap()).await);
}

async fn app_notify(env: &Env, token: &str, recipient: &str) -> NotificationId {
    let req = GatewayRequest::new(
        "POST",
        "/api/data/v9.2/SendAppNotification",
        "/api/data/v9.2/SendAppNotification",
    )
    .header("authorization", &format!("Bearer {token}"))
    .body(json!({"Title": "Build failed", "Recipient": format!("/systemusers({recipient})")}).to_string());
    let resp = notify::handle(&env.ports, req.into_request()).await;
    let text = body_text(&resp);
    assert_eq!(resp.status(), 200, "{text}");
    json_of(&text)["NotificationId"].as_str().unwrap().parse().unwrap()
}

async fn cancel_app(env: &Env, token: &str, id: &str) -> (u16, Value) {
    let req = GatewayRequest::new("DELETE", APP_CANCEL, &format!("/api/data/v9.2/appnotifications/{id}"))
        .path_param("NotificationId", id)
        .header("authorization", &format!("Bearer {token}"));
    let resp = notify::handle(&env.ports, req.into_request()).await;
    assert_eq!(resp.headers().get("odata-version").map(|v| v.to_str().unwrap()), Some("4.0"));
    (resp.status().as_u16(), json_of(&body_text(&resp)))
}

async fn an_app_notification_is_cancelled_by_its_sender_before_it_arrives(env: Env) {
    let id = app_notify(&env, "demo-admin-token", U1).await;
    let text = id.to_string();
    // u2 has no privilege to send; company 4's admin cannot see it; a bad id names the field.
    let (status, body) = cancel_app(&env, "demo-user-2-token", &text).await;
    assert_eq!((status, body["error"]["code"].as_str()), (403, Some("0x80040220")), "{body}");
    let (status, body) = cancel_app(&env, "demo-admin-4-token", &text).await;
    assert_eq!((status, body["error"]["parameter"].as_str()), (404, Some("NotificationId")), "{body}");
    let (status, body) = cancel_app(&env, "demo-admin-token", "nope").await;
    assert_eq!((status, body["error"]["parameter"].as_str()), (400, Some("NotificationId")), "{body}");
    // Its sender cancels it (braces as Dataverse writes some GUIDs are fine); nobody gets it.
    let (status, body) = cancel_app(&env, "demo-admin-token", &format!("{{{text}}}")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (body["NotificationId"].as_str(), body["State"].as_str(), body["PeopleReached"].as_u64()),
        (Some(text.as_str()), Some("cancelled"), Some(0))
    );
    assert_eq!(
        (body["CancelledBy"].as_str(), body["AlreadyCancelled"].as_bool()),
        (Some("654"), Some(false))
    );
    local::workers::run_until_idle(&env.ports, env.max_receives).await.unwrap();
    assert!(!has(&env, U1, id).await, "u1 never got the cancelled notification");
    // Delivered: a conflict naming the state.
    let id = app_notify(&env, "demo-admin-token", U1).await;
    local::workers::run_until_idle(&env.ports, env.max_receives).await.unwrap();
    let (status, body) = cancel_app(&env, "demo-admin-token", &id.to_string()).await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(
        (body["error"]["code"].as_str(), body["error"]["state"].as_str()),
        (Some("0x80040237"), Some("delivered"))
    );
}

/// The cancel lands between two chunk starts, at each point of a send to fifteen people in five
/// chunks of three: after k chunks started, it answers 3k people, exactly those 3k have it when
/// everything has run, and the delivered count is theirs; after the last one, the send finishes
/// (409, delivered to all fifteen). Deterministic (the k+1-th start is held until the cancel has
/// answered), on memory and moto.
async fn a_cancel_between_two_chunk_starts_counts_exactly_the_chunks_before_it(env: Env) {
    let mut env = env;
    env.ports.settings.chunk_size = 3;
    let people = tests::crowd::load(&env.ports, 15, false).await;
    let schedule = tests::faults::Faults::none();
    let held = tests::faults::faulty(&env.ports, &schedule);
    for k in 0..=5u64 {
        let sid = group_send(
            &env,
            json!({"version": 3, "type": "GT", "key": "3", "values": [tests::crowd::TEAM], "message": format!("cut after {k}")}),
        )
        .await;
        let id = env.ports.notifications.get_by_schedule_id(sid).await.unwrap().unwrap().id;
        schedule.stall_before("start", k);
        let pipeline = {
            let (ports, max) = (held.clone(), env.max_receives);
            tokio::spawn(async move { local::workers::run_until_idle(&ports, max).await.map(|_| ()) })
        };
        // Chunks 0..k started; the k+1-th waits (or, after the fifth, the run ends).
        let waited = tokio::time::Instant::now();
        while !schedule.stalled() && !pipeline.is_finished() {
            assert!(
                waited.elapsed() < std::time::Duration::from_secs(120),
                "k {k}: the run neither held nor ended"
            );
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        let (status, answer) = cancel_group(&env, ADMIN3, &sid.to_string()).await;
        schedule.resume();
        pipeline.await.unwrap().unwrap();
        local::workers::run_until_idle(&env.ports, env.max_receives).await.unwrap();
        let mut holders = 0;
        for p in &people {
            holders += u64::from(env.ports.inbox.get(*p, id).await.unwrap().is_some());
        }
        let n = env.ports.notifications.get(id).await.unwrap().unwrap();
        if k < 5 {
            assert_eq!(status, 200, "k {k}: {answer}");
            assert_eq!(answer["peopleReached"].as_u64(), Some(3 * k), "k {k}: {answer}");
            assert_eq!(
                (holders, n.delivered),
                (3 * k, 3 * k),
                "k {k}: the people who have it are the answer's"
            );
            assert_eq!(n.status, shared::model::Status::Cancelled);
        } else {
            assert_eq!((status, answer["state"].as_str()), (409, Some("delivered")), "{answer}");
            assert_eq!((holders, n.delivered), (15, 15));
        }
    }
}

end_to_end!(
    a_pending_group_send_is_changed_until_it_goes_out,
    two_changes_at_once_both_land,
    a_changed_url_keeps_its_campaign_tag,
    a_cancel_between_two_chunk_starts_counts_exactly_the_chunks_before_it,
    a_group_send_is_cancelled_until_it_is_delivered,
    a_department_message_is_cancelled_by_its_department_only,
    an_app_notification_is_cancelled_by_its_sender_before_it_arrives,
);
