//! A send's delivery log, on memory and moto: what its delivery recorded, chunk by chunk and job
//! by job (never per person), each once however often it was delivered, with the send's record;
//! paged; for whoever may read the send's history, and nobody else.

use serde_json::{Value, json};
use shared::http::{GatewayRequest, body_text};
use shared::model::FeedbackKind;
use shared::ports::Clock;
use tests::{Env, end_to_end};

const ADMIN3: (&str, &str) = ("demo-admin-token", "00000000-0000-4000-8000-000000000003");
const LOG: &str = "/rest/notification/sent/{notificationScheduleId}/log";

async fn log(env: &Env, token: &str, sid: &str, query: &str) -> (u16, Value, Option<String>) {
    let req = GatewayRequest::new("GET", LOG, &format!("/rest/notification/sent/{sid}/log"))
        .path_param("notificationScheduleId", sid)
        .header("x-nextinteract-authtoken", token)
        .query(query);
    let resp = sent_history::handle(&env.ports, req.into_request()).await;
    let header = resp.headers().get("x-next-token").map(|v| v.to_str().unwrap().to_string());
    let text = body_text(&resp);
    (resp.status().as_u16(), serde_json::from_str(&text).unwrap_or(Value::String(text)), header)
}

async fn a_sends_log_records_each_chunk_and_email_job_once(env: Env) {
    let mut env = env;
    env.ports.settings.chunk_size = 3;
    tests::crowd::load(&env.ports, 7, false).await;
    let body = json!({"version": 3, "type": "GT", "key": "3", "values": [tests::crowd::TEAM], "message": "logged",
        "emailTemplate": "Client.Generic.Notification.html", "emailSubject": "Logged"});
    let req = GatewayRequest::new("POST", "/rest/notification/send", "/rest/notification/send")
        .header("x-nextinteract-authtoken", ADMIN3.0)
        .header("x-nextinteract-company-api-key", ADMIN3.1)
        .body(body.to_string());
    let resp = send::handle(&env.ports, req.into_request()).await;
    let text = body_text(&resp);
    assert_eq!(resp.status(), 200, "{text}");
    let sid = serde_json::from_str::<Value>(&text).unwrap()["notificationScheduleId"].to_string();
    // Before anything went out: the record, no entry.
    let (status, before, _) = log(&env, ADMIN3.0, &sid, "").await;
    assert_eq!(status, 200, "{before}");
    assert_eq!(
        (before["entries"].as_array().map(Vec::len), before["chunksDelivered"].as_u64()),
        (Some(0), Some(0))
    );
    local::workers::run_until_idle(&env.ports, env.max_receives).await.unwrap();
    // Every chunk delivered again (SQS's at least once): nothing is recorded twice.
    let id = env.ports.notifications.get_by_schedule_id(sid.parse().unwrap()).await.unwrap().unwrap().id;
    for chunk in 0..3u32 {
        let recipients = (0..7usize).filter(|i| *i / 3 == chunk as usize).map(tests::crowd::person).collect();
        let again = shared::model::DeliveryChunk {
            notification_id: id,
            chunk,
            recipients,
            devices: None,
            push_round: None,
            hand_overs: None,
            revived: None,
        };
        env.ports.delivery_queue.send_all(&[serde_json::to_string(&again).unwrap()]).await.unwrap();
    }
    local::workers::run_until_idle(&env.ports, env.max_receives).await.unwrap();
    env.ports
        .notifications
        .record_feedback(id, "ses-message-1", FeedbackKind::Bounce, env.clock.now())
        .await
        .unwrap();

    let (status, all, header) = log(&env, ADMIN3.0, &sid, "").await;
    assert_eq!(status, 200, "{all}");
    assert_eq!(header, None);
    assert_eq!(all["nextToken"], Value::Null);
    let record = &all["notification"];
    assert_eq!(
        (record["notificationScheduleId"].to_string(), record["status"].as_str()),
        (sid.clone(), Some("delivered"))
    );
    assert_eq!(
        (record["totalNotificationsSent"].as_u64(), record["emailsSent"].as_u64()),
        (Some(7), Some(7))
    );
    assert_eq!((all["chunks"].as_u64(), all["chunksDelivered"].as_u64()), (Some(3), Some(3)));
    let entries = all["entries"].as_array().unwrap();
    let of = |event: &str| entries.iter().filter(|e| e["event"] == event).collect::<Vec<_>>();
    let chunks = of("chunkDelivered");
    assert_eq!(
        chunks
            .iter()
            .map(|e| (e["chunk"].as_u64().unwrap(), e["people"].as_u64().unwrap()))
            .collect::<Vec<_>>(),
        [(0, 3), (1, 3), (2, 1)]
    );
    let emails = of("emailsSettled");
    assert_eq!(
        emails.iter().map(|e| e["people"].as_u64().unwrap()).sum::<u64>(),
        7,
        "every recipient's email settled once: {entries:?}"
    );
    assert_eq!(
        of("bounce").iter().map(|e| e["messageId"].as_str().unwrap()).collect::<Vec<_>>(),
        ["ses-message-1"]
    );
    assert!(entries.iter().all(|e| e["at"].as_i64().is_some()), "each entry has its time");
    assert_eq!(entries.len(), chunks.len() + emails.len() + 1, "nothing else, nothing per person");

    // Page by page, 2 at a time: the same entries, in the same order.
    let (mut paged, mut token) = (Vec::new(), None::<String>);
    for _ in 0..10 {
        let query = match &token {
            Some(t) => format!("limit=2&nextToken={}", urlencode(t)),
            None => "limit=2".into(),
        };
        let (status, page, header) = log(&env, ADMIN3.0, &sid, &query).await;
        assert_eq!(status, 200, "{page}");
        assert!(page["entries"].as_array().unwrap().len() <= 2);
        paged.extend(page["entries"].as_array().unwrap().iter().cloned());
        assert_eq!(header.as_deref(), page["nextToken"].as_str(), "the token in the header too");
        token = page["nextToken"].as_str().map(str::to_string);
        if token.is_none() {
            break;
        }
    }
    assert_eq!(&paged, entries);

    // Who may not read it, and bad input, in the dialect's shape.
    let (status, body, _) = log(&env, "demo-admin-4-token", &sid, "").await;
    assert_eq!((status, body["exception"].as_str()), (404, Some("WSNotFoundException")), "{body}");
    let (status, body, _) = log(&env, "demo-user-1-token", &sid, "").await;
    assert_eq!(status, 403, "{body}");
    let (status, body, _) = log(&env, "demo-event-token", &sid, "").await;
    assert_eq!(status, 404, "events3 sees GE sends only: {body}");
    for (query, field) in [
        ("limit=0", "limit"),
        ("limit=501", "limit"),
        ("limit=x", "limit"),
        ("nextToken=forged", "nextToken"),
    ] {
        let (status, body, _) = log(&env, ADMIN3.0, &sid, query).await;
        assert_eq!((status, body["parameter"].as_str()), (400, Some(field)), "{query}: {body}");
    }
    // A token of another send's log is refused.
    let other = serde_json::to_string(
        &json!({"version": 3, "type": "GT", "key": "3", "values": [tests::crowd::TEAM], "message": "other"}),
    )
    .unwrap();
    let req = GatewayRequest::new("POST", "/rest/notification/send", "/rest/notification/send")
        .header("x-nextinteract-authtoken", ADMIN3.0)
        .header("x-nextinteract-company-api-key", ADMIN3.1)
        .body(other);
    let other: Value =
        serde_json::from_str(&body_text(&send::handle(&env.ports, req.into_request()).await)).unwrap();
    local::workers::run_until_idle(&env.ports, env.max_receives).await.unwrap();
    let (_, first, _) = log(&env, ADMIN3.0, &other["notificationScheduleId"].to_string(), "limit=1").await;
    let foreign = first["nextToken"].as_str().expect("more than one entry").to_string();
    let (status, body, _) = log(&env, ADMIN3.0, &sid, &format!("nextToken={}", urlencode(&foreign))).await;
    assert_eq!((status, body["parameter"].as_str()), (400, Some("nextToken")), "{body}");
    let (status, body, _) = log(&env, ADMIN3.0, "0", "").await;
    assert_eq!((status, body["parameter"].as_str()), (400, Some("notificationScheduleId")), "{body}");
}

fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

const U1: &str = "11111111-1111-4111-8111-111111111111";
const U2: &str = "22222222-2222-4222-8222-222222222222";
const DEPT: &str = "d0000000-0000-4000-8000-000000000001";

fn basic(client: &str, secret: &str) -> String {
    use base64::Engine;
    format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{client}:{secret}")))
}

fn json_of(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or(Value::String(text.to_string()))
}

async fn department_log(env: &Env, auth: &str, user: &str, id: &str, query: &str) -> (u16, Value) {
    let template =
        "/communications/department/{departmentUUID}/user/{userUUID}/notify/{notificationMessageUUID}/log";
    let req = GatewayRequest::new(
        "GET",
        template,
        &format!("/communications/department/{DEPT}/user/{user}/notify/{id}/log"),
    )
    .path_param("departmentUUID", DEPT)
    .path_param("userUUID", user)
    .path_param("notificationMessageUUID", id)
    .header("authorization", auth)
    .query(query);
    let resp = notify::handle(&env.ports, req.into_request()).await;
    (resp.status().as_u16(), json_of(&body_text(&resp)))
}

async fn app_log(env: &Env, token: &str, id: &str, query: &str) -> (u16, Value) {
    let template = "/api/data/v9.2/appnotifications/{NotificationId}/log";
    let req = GatewayRequest::new("GET", template, &format!("/api/data/v9.2/appnotifications/{id}/log"))
        .path_param("NotificationId", id)
        .header("authorization", &format!("Bearer {token}"))
        .query(query);
    let resp = notify::handle(&env.ports, req.into_request()).await;
    (resp.status().as_u16(), json_of(&body_text(&resp)))
}

/// A department message's and an in-app notification's delivery logs: the state, the people
/// reached, each chunk once; for the department that sent it to that user (another user's path,
/// bad credentials, a bad page: refused in the dialect's shape), and for the in-app sender or
/// whoever of the tenant may notify others (a person without the privilege 403, another tenant
/// 404).
async fn a_department_message_and_an_app_notification_have_their_logs(env: Env) {
    let dept = basic("demo-dept", "demo-secret");
    let req = GatewayRequest::new(
        "POST",
        "/communications/department/{departmentUUID}/user/{userUUID}/notify",
        &format!("/communications/department/{DEPT}/user/{U1}/notify"),
    )
    .path_param("departmentUUID", DEPT)
    .path_param("userUUID", U1)
    .header("authorization", &dept)
    .body(json!({"messageAttributes": {"body": "logged", "subject": "Logged"}}).to_string());
    let resp = notify::handle(&env.ports, req.into_request()).await;
    let sent = json_of(&body_text(&resp));
    assert_eq!(resp.status(), 200, "{sent}");
    let id = sent["notificationMessageUUID"].as_str().unwrap().to_string();
    local::workers::run_until_idle(&env.ports, env.max_receives).await.unwrap();
    // Delivered once more (SQS's at least once): recorded once.
    let n = env.ports.notifications.get(id.parse().unwrap()).await.unwrap().unwrap();
    let again = shared::model::DeliveryChunk {
        notification_id: n.id,
        chunk: 0,
        recipients: vec![U1.parse().unwrap()],
        devices: None,
        push_round: None,
        hand_overs: None,
        revived: None,
    };
    env.ports.delivery_queue.send_all(&[serde_json::to_string(&again).unwrap()]).await.unwrap();
    local::workers::run_until_idle(&env.ports, env.max_receives).await.unwrap();

    let (status, log) = department_log(&env, &dept, U1, &id, "").await;
    assert_eq!(status, 200, "{log}");
    assert_eq!(
        (log["notificationMessageUUID"].as_str(), log["status"].as_str(), log["delivered"].as_u64()),
        (Some(id.as_str()), Some("delivered"), Some(1)),
        "{log}"
    );
    let entries = log["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 1, "{log}");
    assert_eq!(
        (entries[0]["event"].as_str(), entries[0]["people"].as_u64()),
        (Some("chunkDelivered"), Some(1))
    );
    assert!(entries[0]["at"].as_i64().is_some());
    // Whose it is not, and bad input, each in the dialect's shape.
    let (status, body) = department_log(&env, &dept, U2, &id, "").await;
    assert_eq!((status, body["status"].as_str()), (404, Some("FAILURE")), "another user's path: {body}");
    let (status, _) = department_log(&env, &basic("demo-dept", "wrong"), U1, &id, "").await;
    assert_eq!(status, 401);
    for (query, field) in [("limit=0", "limit"), ("limit=501", "limit"), ("nextToken=forged", "nextToken")] {
        let (status, body) = department_log(&env, &dept, U1, &id, query).await;
        assert_eq!(status, 400, "{query}: {body}");
        assert!(body.to_string().contains(field), "{query} names {field}: {body}");
    }
    let (status, _) = department_log(&env, &dept, U1, "not-a-uuid", "").await;
    assert_eq!(status, 400);

    // An in-app notification: its sender reads its log; a person without the privilege, and
    // another tenant's admin, do not.
    let req = GatewayRequest::new(
        "POST",
        "/api/data/v9.2/SendAppNotification",
        "/api/data/v9.2/SendAppNotification",
    )
    .header("authorization", "Bearer demo-admin-token")
    .body(json!({"Title": "Build failed", "Recipient": format!("/systemusers({U1})")}).to_string());
    let resp = notify::handle(&env.ports, req.into_request()).await;
    let sent = json_of(&body_text(&resp));
    assert_eq!(resp.status(), 200, "{sent}");
    let app = sent["NotificationId"].as_str().unwrap().to_string();
    local::workers::run_until_idle(&env.ports, env.max_receives).await.unwrap();
    let (status, log) = app_log(&env, "demo-admin-token", &app, "limit=1").await;
    assert_eq!(status, 200, "{log}");
    assert_eq!(
        (log["NotificationId"].as_str(), log["status"].as_str(), log["delivered"].as_u64()),
        (Some(app.as_str()), Some("delivered"), Some(1)),
        "{log}"
    );
    assert_eq!(log["entries"].as_array().map(Vec::len), Some(1), "{log}");
    let (status, body) = app_log(&env, "demo-user-1-token", &app, "").await;
    assert_eq!(status, 403, "{body}");
    let (status, body) = app_log(&env, "demo-admin-4-token", &app, "").await;
    assert_eq!(status, 404, "{body}");
    assert!(body["error"]["message"].as_str().is_some(), "the OData error shape: {body}");
    let (status, _) = app_log(&env, "demo-admin-token", &app, "limit=abc").await;
    assert_eq!(status, 400);
    // A token of the department message's log is no token of this one.
    let (_, first) = department_log(&env, &dept, U1, &id, "limit=1").await;
    assert!(first["nextToken"].is_null(), "one entry, no more: {first}");
}

end_to_end!(
    a_sends_log_records_each_chunk_and_email_job_once,
    a_department_message_and_an_app_notification_have_their_logs,
);
