//! Every function under its own IAM policy, as on AWS: moto enforces IAM (`scripts/moto-iam`),
//! each function's code signs with an identity holding exactly its `Policies` from
//! `template.yaml`, and the harness stands in for what AWS does around the functions (the SQS
//! event source mapping receives and deletes messages, under permissions SAM adds for SQS
//! events). Every path of every function runs: a missing action answers AccessDenied, which the
//! functions log with its cause; the test fails on any such line, naming the function (its
//! identity) and the action.
//!
//! The resources of the policies are checked statically at the end (moto evaluates every request
//! against resource `*`): each statement names only resources of this stack that the function's
//! configuration points it at.

use serde_json::{Value, json};
use shared::http::{GatewayRequest, body_text};
use shared::model::Status;
use tests::Functions;
use uuid::Uuid;

/// Log lines that report a request IAM refused.
fn denials() -> Vec<String> {
    log().lines_with(&["not authorized to perform", "AccessDenied"])
}

/// Every log line of this test binary.
fn log() -> &'static tests::logs::Capture {
    tests::logs::capture("info")
}

/// What IAM refused so far, and the errors logged, for an assertion's message.
fn refused() -> String {
    let denials = denials();
    let errors = log().lines_with(&[" ERROR ", " WARN "]);
    format!("\nrefused by IAM:\n{}\nerrors and warnings logged:\n{}", denials.join("\n"), errors.join("\n"))
}

fn user(n: u8) -> Uuid {
    let d = n.to_string();
    format!("{0}-{1}-4{2}-8{2}-{3}", d.repeat(8), d.repeat(4), d.repeat(3), d.repeat(12)).parse().unwrap()
}

const DEPT: &str = "d0000000-0000-4000-8000-000000000001";

fn tag() -> String {
    Uuid::new_v4().simple().to_string()[..8].to_string()
}

async fn send(f: &Functions, body: Value) -> Value {
    let req = GatewayRequest::new("POST", "/rest/notification/send", "/rest/notification/send")
        .header("x-nextinteract-authtoken", "demo-admin-token")
        .header("x-nextinteract-company-api-key", "00000000-0000-4000-8000-000000000003")
        .body(body.to_string());
    let resp = send::handle(&f.send, req.into_request()).await;
    let text = body_text(&resp);
    assert_eq!(resp.status(), 200, "send {body}: {text}{}", refused());
    serde_json::from_str(&text).unwrap_or(Value::Null)
}

/// The notification a send answered with.
async fn by_schedule_id(f: &Functions, answer: &Value) -> shared::model::Notification {
    let id = answer["notificationScheduleId"].as_u64().expect("a schedule id");
    f.env.ports.notifications.get_by_schedule_id(id).await.unwrap().expect("stored")
}

/// A sent-history query under its function's policy, which must answer 200; its next token.
async fn sent(f: &Functions, query: &str) -> Option<String> {
    let req = GatewayRequest::new("GET", "/rest/notification/sent", "/rest/notification/sent")
        .header("x-nextinteract-authtoken", "demo-admin-token")
        .query(query);
    let resp = sent_history::handle(&f.sent_history, req.into_request()).await;
    assert_eq!(resp.status(), 200, "sent history {query}: {}{}", body_text(&resp), refused());
    resp.headers().get("x-next-token").map(|v| v.to_str().unwrap().to_string())
}

async fn inbox(f: &Functions, req: GatewayRequest) -> (u16, String) {
    let resp = inbox::handle(&f.inbox, req.into_request()).await;
    (resp.status().as_u16(), body_text(&resp))
}

async fn notify(f: &Functions, req: GatewayRequest) -> (u16, Value) {
    let resp = notify::handle(&f.notify, req.into_request()).await;
    let text = body_text(&resp);
    (resp.status().as_u16(), serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

/// The scheduler's tick and the fan-out and delivery queues' event source mappings, until both
/// queues are empty: receives and deletes with the harness's identity, handlers with the
/// functions'.
async fn settle(f: &Functions) {
    for _ in 0..200 {
        let (handled, failed) = f.event_sources_once().await;
        assert!(failed.is_empty(), "records failed under their functions' policies: {failed:?}{}", refused());
        if handled == 0 {
            return;
        }
    }
    panic!("the queues did not drain");
}

async fn tick(f: &Functions) {
    local::workers::tick(&f.fanout).await.expect("the tick under FanoutFunction's policy");
}

/// A callback receiver on loopback (the suites' `tests::hooks::Receiver`, answering 200), and
/// its URL.
async fn receiver() -> (String, tests::hooks::Receiver) {
    let receiver = tests::hooks::Receiver::start(vec![]).await;
    (receiver.url.clone(), receiver)
}

/// The bodies a receiver got.
fn bodies(receiver: &tests::hooks::Receiver) -> Vec<String> {
    receiver.posts().into_iter().map(|p| p.body).collect()
}

fn department(user: &str, body: &Value) -> GatewayRequest {
    use base64::Engine;
    let auth = base64::engine::general_purpose::STANDARD.encode("demo-dept:demo-secret");
    GatewayRequest::new(
        "POST",
        "/communications/department/{departmentUUID}/user/{userUUID}/notify",
        &format!("/communications/department/{DEPT}/user/{user}/notify"),
    )
    .path_param("departmentUUID", DEPT)
    .path_param("userUUID", user)
    .header("authorization", &format!("Basic {auth}"))
    .body(body.to_string())
}

fn sample(name: &str) -> GatewayRequest {
    let path = tests::repo_root().join("events").join(format!("{name}.json"));
    let event: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let mut req = GatewayRequest::new(
        event["requestContext"]["http"]["method"].as_str().unwrap(),
        event["routeKey"].as_str().unwrap().split_once(' ').unwrap().1,
        event["rawPath"].as_str().unwrap(),
    );
    for (k, v) in event["headers"].as_object().unwrap() {
        req = req.header(k, v.as_str().unwrap());
    }
    if let Some(body) = event["body"].as_str() {
        req = req.body(body.to_string());
    }
    req
}

/// Send (every type, with email) → fan-out (queue job and tick) → delivery (in-app, email, push,
/// a dead endpoint pruned) → sent history (every query kind) and the inbox (list, since,
/// dismiss, devices, unsubscribe); notify (department sync, async, delayed with a callback,
/// desktop assistant, app notification); the give-up path of delivery; each under its own policy.
/// A call of the tenant's webhook routes under SendFunction's policy, as company 3's admin.
async fn webhook_route(
    f: &Functions,
    method: &str,
    template: &str,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut req = GatewayRequest::new(method, template, path)
        .header("x-nextinteract-authtoken", "demo-admin-token")
        .header("x-nextinteract-company-api-key", "00000000-0000-4000-8000-000000000003");
    if let Some(id) = path.strip_prefix("/rest/notification/webhook/events/") {
        req = req.path_param("eventId", id.trim_end_matches("/replay"));
    }
    if let Some(body) = body {
        req = req.body(body.to_string());
    }
    let resp = send::handle(&f.send, req.into_request()).await;
    let text = body_text(&resp);
    (resp.status().as_u16(), serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

/// Company 3's webhook endpoint, made and rotated under SendFunction's policy: its receiver and
/// the secret that signs.
async fn webhook_endpoint(f: &Functions) -> (tests::hooks::Receiver, String) {
    let hooks = tests::hooks::Receiver::start(vec![]).await;
    let endpoint = "/rest/notification/webhook";
    let (status, made) = webhook_route(f, "PUT", endpoint, endpoint, Some(json!({"url": hooks.url}))).await;
    assert_eq!(status, 201, "webhook endpoint: {made}{}", refused());
    let (status, rotated) = webhook_route(
        f,
        "POST",
        "/rest/notification/webhook/rotate",
        "/rest/notification/webhook/rotate",
        None,
    )
    .await;
    assert_eq!(status, 200, "rotation: {rotated}{}", refused());
    let secret = rotated["secret"].as_str().unwrap().to_string();
    (hooks, secret)
}

/// The status events of `every_path` reached company 3 (posted under deliver's policy); one is
/// read and replayed, and the endpoint removed, under send's.
async fn webhooks_told(f: &Functions, hooks: &tests::hooks::Receiver, secret: &str) {
    let endpoint = "/rest/notification/webhook";
    // Every kind of status event reached the tenant, signed, each emitted and posted under its
    // functions' policies; one is read and replayed under send's.
    settle(f).await;
    let posts = hooks.posts();
    let kinds: std::collections::BTreeSet<String> =
        posts.iter().map(|p| p.json()["type"].as_str().unwrap().to_string()).collect();
    for kind in [
        "notification.accepted",
        "notification.delivered",
        "notification.failed",
        "notification.cancelled",
        "notification.retracted",
        "email.bounced",
    ] {
        assert!(kinds.contains(kind), "{kind} not told: {kinds:?}{}", refused());
    }
    assert!(posts.iter().all(|p| tests::hooks::signed_by(p, secret)), "signed");
    let id = posts[0].header("webhook-id").to_string();
    let (status, shown) = webhook_route(
        f,
        "GET",
        "/rest/notification/webhook/events/{eventId}",
        &format!("/rest/notification/webhook/events/{id}"),
        None,
    )
    .await;
    assert_eq!(status, 200, "event: {shown}{}", refused());
    let (status, replayed) = webhook_route(
        f,
        "POST",
        "/rest/notification/webhook/events/{eventId}/replay",
        &format!("/rest/notification/webhook/events/{id}/replay"),
        None,
    )
    .await;
    assert_eq!(status, 202, "replay: {replayed}{}", refused());
    settle(f).await;
    assert_eq!(hooks.posts().len(), posts.len() + 1, "replayed under deliver's policy{}", refused());
    let (status, _) = webhook_route(f, "DELETE", endpoint, endpoint, None).await;
    assert_eq!(status, 204, "removed{}", refused());
}

async fn every_path(f: &Functions) {
    // Company 3 is told of everything below, each event emitted under the policy of the
    // function where it happens (send, notify, fan-out, deliver) and posted by deliver.
    let (hooks, secret) = Box::pin(webhook_endpoint(f)).await;
    // Devices first (inbox: SNS CreatePlatformEndpoint, directory writes), one of them dead.
    let mut endpoints = Vec::new();
    for (n, platform) in [(1u8, "GCM"), (3, "APNS"), (1, "APNS")] {
        let token = format!("{}{}", Uuid::new_v4().simple(), Uuid::new_v4().simple());
        let (status, body) = inbox(
            f,
            GatewayRequest::new("POST", "/users/{userId}/devices", &format!("/users/{}/devices", user(n)))
                .path_param("userId", &user(n).to_string())
                .header("authorization", &format!("Bearer demo-user-{n}-token"))
                .body(json!({ "platform": platform, "token": token }).to_string()),
        )
        .await;
        assert_eq!(status, 201, "register device: {body}{}", refused());
        endpoints.push(body);
    }
    let listed = f.env.ports.devices.devices(user(1)).await.unwrap();
    let dead = listed.iter().find(|d| d.platform.as_str() == "APNS").expect("u1's APNS device").clone();
    f.env.ports.push.delete_endpoint(&dead.endpoint_arn).await.expect("the push service drops the endpoint");
    let (status, body) = inbox(
        f,
        GatewayRequest::new("GET", "/users/{userId}/devices", &format!("/users/{}/devices", user(3)))
            .path_param("userId", &user(3).to_string())
            .header("authorization", "Bearer demo-user-3-token"),
    )
    .await;
    assert_eq!(status, 200, "list devices: {body}{}", refused());

    // Send: every type; GA with email (and push to the registered devices).
    let subject = format!("IAM {}", tag());
    let ga = send(f, json!({"version": 3, "type": "GA", "key": "3", "brochureId": 4, "message": "New edition",
        "url": "https://example.com/b/4", "emailTemplate": "Client.Generic.Notification.html", "emailSubject": subject,
        "emailParams": [{"key": "unsubcribeURL", "value": "x"}]})).await;
    let gt =
        send(f, json!({"version": 2, "type": "GT", "key": "3", "values": ["23", "27"], "message": "teams"}))
            .await;
    send(f, json!({"version": 2, "type": "GE", "key": "ed90fcd2-cbb4-49b8-9be4-a14ccbc2d1e8", "values": ["456"], "message": "event"}))
        .await;
    send(f, json!({"version": 4, "type": "UN", "key": "3", "values": ["aaron.mcmullen@hypermedia.com.au"], "message": "one"})).await;
    send(f, json!({"version": 3, "type": "JN", "key": "3", "values": [], "message": "joined"})).await;
    let later = send(
        f,
        json!({"version": 3, "type": "GT", "key": "3", "values": ["23"], "message": "later",
        "scheduleTimezoneId": "UTC", "scheduleLocalDateTime": "2026-11-22T09:30:00"}),
    )
    .await;
    // Cancels, each under its function's policy (one transaction over the notification and its
    // gates, then the gates read): a scheduled group send (send), a delayed department message
    // and an in-app notification not fanned out yet (notify).
    let doomed = send(
        f,
        json!({"version": 3, "type": "GT", "key": "3", "values": ["23"], "message": "never",
        "scheduleTimezoneId": "UTC", "scheduleLocalDateTime": "2026-11-22T09:30:00"}),
    )
    .await;
    let sid = doomed["notificationScheduleId"].to_string();
    // Changed first (moved to a time past: queued for fan-out at once), then cancelled.
    let req = GatewayRequest::new(
        "PATCH",
        "/rest/notification/send/{notificationScheduleId}",
        &format!("/rest/notification/send/{sid}"),
    )
    .path_param("notificationScheduleId", &sid)
    .header("x-nextinteract-authtoken", "demo-admin-token")
    .header("x-nextinteract-company-api-key", "00000000-0000-4000-8000-000000000003")
    .body(json!({"message": "never, changed", "scheduleTimezoneId": "UTC", "scheduleLocalDateTime": "2026-11-22T08:00:00"}).to_string());
    let resp = send::handle(&f.send, req.into_request()).await;
    let text = body_text(&resp);
    assert_eq!(resp.status(), 200, "group-send change under SendFunction's policy: {text}{}", refused());
    let req = GatewayRequest::new(
        "DELETE",
        "/rest/notification/send/{notificationScheduleId}",
        &format!("/rest/notification/send/{sid}"),
    )
    .path_param("notificationScheduleId", &sid)
    .header("x-nextinteract-authtoken", "demo-admin-token")
    .header("x-nextinteract-company-api-key", "00000000-0000-4000-8000-000000000003");
    let resp = send::handle(&f.send, req.into_request()).await;
    let text = body_text(&resp);
    assert_eq!(resp.status(), 200, "group-send cancel under SendFunction's policy: {text}{}", refused());
    assert!(text.contains("\"peopleReached\":0"), "{text}");
    let (status, delayed) = notify(
        f,
        department(
            &user(2).to_string(),
            &json!({"messageAttributes": {"body": "never"},
            "messageSendingAttributesLite": {"delay": 3600}}),
        ),
    )
    .await;
    assert_eq!(status, 200, "{delayed}");
    let message = delayed["notificationMessageUUID"].as_str().unwrap().to_string();
    let auth = {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode("demo-dept:demo-secret")
    };
    let cancel = GatewayRequest::new(
        "DELETE",
        "/communications/department/{departmentUUID}/user/{userUUID}/notify/{notificationMessageUUID}",
        &format!("/communications/department/{DEPT}/user/{}/notify/{message}", user(2)),
    )
    .path_param("departmentUUID", DEPT)
    .path_param("userUUID", &user(2).to_string())
    .path_param("notificationMessageUUID", &message)
    .header("authorization", &format!("Basic {auth}"));
    let (status, answer) = notify(f, cancel).await;
    assert_eq!(status, 200, "department cancel under NotifyFunction's policy: {answer}{}", refused());
    assert_eq!(answer["cancellation"]["peopleReached"], 0, "{answer}");
    let (status, app) = notify(
        f,
        GatewayRequest::new(
            "POST",
            "/api/data/v9.2/SendAppNotification",
            "/api/data/v9.2/SendAppNotification",
        )
        .header("authorization", "Bearer demo-admin-token")
        .body(json!({"Title": "never", "Recipient": format!("/systemusers({})", user(3))}).to_string()),
    )
    .await;
    assert_eq!(status, 200, "{app}");
    let app_id = app["NotificationId"].as_str().unwrap().to_string();
    let cancel = GatewayRequest::new(
        "DELETE",
        "/api/data/v9.2/appnotifications/{NotificationId}",
        &format!("/api/data/v9.2/appnotifications/{app_id}"),
    )
    .path_param("NotificationId", &app_id)
    .header("authorization", "Bearer demo-admin-token");
    let (status, answer) = notify(f, cancel).await;
    assert_eq!(status, 200, "app cancel under NotifyFunction's policy: {answer}{}", refused());
    assert_eq!(answer["PeopleReached"], 0, "{answer}");
    settle(f).await;
    for id in [message, app_id] {
        let n = f.env.ports.notifications.get(id.parse().unwrap()).await.unwrap().unwrap();
        assert_eq!((n.status, n.delivered), (Status::Cancelled, 0), "its queued fan-out did nothing");
    }

    let ga_n = by_schedule_id(f, &ga).await;
    assert_eq!(ga_n.status, Status::Delivered, "GA delivered under the functions' policies{}", refused());
    assert!(ga_n.emails_sent > 0 && ga_n.pushes_sent > 0, "email and push went out: {ga_n:?}{}", refused());
    let emails = f.env.outbox.emails(&subject).await;
    assert!(!emails.is_empty(), "SES recorded the emails");
    assert!(
        !f.env.ports.devices.devices(user(1)).await.unwrap().iter().any(|d| d.device_id == dead.device_id),
        "the dead endpoint's device was pruned by deliver"
    );
    assert_eq!(gt, json!(4), "GT to teams 23 and 27 reached 4 people");

    // A send whose first attempt stored and delivered it but never answered (its idempotency
    // claim freed, as a killed request's is once its window passes) is retried with its key:
    // the retry reads the delivered notification, its counts (items of their own) included.
    let body = json!({"version": 2, "type": "GT", "key": "3", "values": ["23"], "message": "retried"});
    let key = format!("iam-{}", tag());
    let keyed = |body: &Value| {
        GatewayRequest::new("POST", "/rest/notification/send", "/rest/notification/send")
            .header("x-nextinteract-authtoken", "demo-admin-token")
            .header("x-nextinteract-company-api-key", "00000000-0000-4000-8000-000000000003")
            .header("Idempotency-Key", &key)
            .body(body.to_string())
            .into_request()
    };
    let first = send::handle(&f.send, keyed(&body)).await;
    assert_eq!(first.status(), 200, "keyed send: {}{}", body_text(&first), refused());
    settle(f).await;
    let caller = shared::service::idempotency::scope(
        "a3a3a3a3-0000-4000-8000-000000000003",
        "POST",
        "/rest/notification/send",
    );
    f.env.ports.notifications.release_idempotency(&format!("{caller}:{key}")).await.unwrap();
    let again = send::handle(&f.send, keyed(&body)).await;
    assert_eq!(
        again.status(),
        200,
        "the retried send under SendFunction's policy: {}{}",
        body_text(&again),
        refused()
    );
    assert_eq!(body_text(&again), body_text(&first), "the retry answers as the first attempt would have");
    assert!(again.headers().get("idempotent-replayed").is_none(), "answered by the send, not replayed");

    // SES reports a bounce: deliver suppresses the address and counts it; the person sees it.
    let bounce = json!({"eventType": "Bounce", "mail": {"timestamp": "2026-11-26T10:00:00.000Z",
        "messageId": "ses-iam-1", "destination": [emails[0].to[0]], "tags": {"notification": [ga_n.id.to_string()]}},
        "bounce": {"bounceType": "Permanent", "timestamp": "2026-11-26T10:00:05.000Z",
        "bouncedRecipients": [{"emailAddress": emails[0].to[0]}]}});
    let record = local::workers::sqs_event(
        local::workers::EMAIL_EVENTS_QUEUE_ARN,
        &[shared::ports::ReceivedMessage {
            message_id: "ses-iam-1".into(),
            receipt: "r".into(),
            body: bounce.to_string(),
            receive_count: 1,
            trace: None,
        }],
    );
    let response = deliver::handle(&f.deliver, 5, record).await;
    assert!(
        response.batch_item_failures.is_empty(),
        "the bounce under DeliverFunction's policy{}",
        refused()
    );
    assert_eq!(by_schedule_id(f, &ga).await.emails_bounced, 1, "the bounce is counted{}", refused());

    // Dead letters, settled under DeliverFunction's policy (the same calls as its other paths):
    // a chunk of the GA's never delivered (its lease, the give-up's conditional write, which a
    // Delivered notification refuses) and an email job of nobody (its lease, its record).
    let dead = |body: String| shared::ports::ReceivedMessage {
        message_id: "dead-iam".into(),
        receipt: "r".into(),
        body,
        receive_count: 1,
        trace: None,
    };
    let chunk = json!({"notificationId": ga_n.id, "chunk": 99, "recipients": [user(1)]}).to_string();
    let job = json!({"notificationId": ga_n.id, "chunk": 0, "emailPart": 99, "recipients": [], "round": 0});
    for (source, body) in [
        (local::workers::DELIVERY_DEAD_LETTER_QUEUE_ARN, chunk),
        (local::workers::EMAIL_DEAD_LETTER_QUEUE_ARN, job.to_string()),
    ] {
        let response = deliver::handle(&f.deliver, 5, local::workers::sqs_event(source, &[dead(body)])).await;
        assert!(
            response.batch_item_failures.is_empty(),
            "a dead letter settled under DeliverFunction's policy{}",
            refused()
        );
    }
    assert_eq!(
        by_schedule_id(f, &ga).await.status,
        Status::Delivered,
        "Delivered stays Delivered{}",
        refused()
    );
    let bounced = f.env.ports.directory.user_by_email(&emails[0].to[0]).await.unwrap().expect("a demo user");
    let number = (1..=9).find(|n| user(*n) == bounced.id).expect("a demo user with a token");
    let status = GatewayRequest::new("GET", "/users/{userId}/email", &format!("/users/{}/email", bounced.id))
        .path_param("userId", &bounced.id.to_string())
        .header("authorization", &format!("Bearer demo-user-{number}-token"));
    let (code, body) = inbox(f, status).await;
    assert_eq!(code, 200, "email status under InboxFunction's policy: {body}{}", refused());
    assert!(body.contains("suppressed"), "{body}");

    // The scheduled one: due after the clock moves; the tick claims it.
    f.env.clock.advance(chrono::Duration::minutes(31));
    tick(f).await;
    settle(f).await;
    let later_n = by_schedule_id(f, &later).await;
    assert_eq!(later_n.status, Status::Delivered, "the tick fanned out the scheduled GT{}", refused());
    let doomed_n = by_schedule_id(f, &doomed).await;
    assert_eq!(
        (doomed_n.status, doomed_n.delivered),
        (Status::Cancelled, 0),
        "the tick left the cancelled GT"
    );

    // The delivery log of the GA send (its chunk and email markers), under sent history's policy.
    let sid = ga["notificationScheduleId"].to_string();
    let req = GatewayRequest::new(
        "GET",
        "/rest/notification/sent/{notificationScheduleId}/log",
        &format!("/rest/notification/sent/{sid}/log"),
    )
    .path_param("notificationScheduleId", &sid)
    .header("x-nextinteract-authtoken", "demo-admin-token");
    let resp = sent_history::handle(&f.sent_history, req.into_request()).await;
    let text = body_text(&resp);
    assert_eq!(resp.status(), 200, "delivery log under SentHistoryFunction's policy: {text}{}", refused());
    assert!(text.contains("chunkDelivered") && text.contains("emailsSettled"), "{text}");

    // Corrected (the content written again before the answer: the Inbox under SendFunction's
    // policy), then retracted: the plan under FanoutFunction's, each chunk's step (its lease
    // closed, its people read, their entries deleted, its record) under DeliverFunction's.
    let ga_n = by_schedule_id(f, &ga).await;
    let had: Vec<Uuid> = {
        let mut had = Vec::new();
        for n in 1..=9 {
            if f.env.ports.inbox.get(user(n), ga_n.id).await.unwrap().is_some() {
                had.push(user(n));
            }
        }
        had
    };
    assert!(!had.is_empty(), "the GA send reached someone");
    for (action, body) in [("correct", Some(json!({"message": "GA, corrected"}))), ("retract", None)] {
        let template = format!("/rest/notification/send/{{notificationScheduleId}}/{action}");
        let mut req =
            GatewayRequest::new("POST", &template, &format!("/rest/notification/send/{sid}/{action}"))
                .path_param("notificationScheduleId", &sid)
                .header("x-nextinteract-authtoken", "demo-admin-token")
                .header("x-nextinteract-company-api-key", "00000000-0000-4000-8000-000000000003");
        if let Some(body) = body {
            req = req.body(body.to_string());
        }
        let resp = send::handle(&f.send, req.into_request()).await;
        let text = body_text(&resp);
        assert_eq!(resp.status(), 200, "{action} under SendFunction's policy: {text}{}", refused());
        if action == "correct" {
            let item = f.env.ports.inbox.get(had[0], ga_n.id).await.unwrap().expect("still there");
            assert_eq!(item.content.body, "GA, corrected", "written before the answer");
        }
        settle(f).await;
    }
    for person in &had {
        assert!(
            f.env.ports.inbox.get(*person, ga_n.id).await.unwrap().is_none(),
            "retracted from {person}{}",
            refused()
        );
    }
    let req = GatewayRequest::new(
        "GET",
        "/rest/notification/sent/{notificationScheduleId}/log",
        &format!("/rest/notification/sent/{sid}/log"),
    )
    .path_param("notificationScheduleId", &sid)
    .header("x-nextinteract-authtoken", "demo-admin-token");
    let text = body_text(&sent_history::handle(&f.sent_history, req.into_request()).await);
    assert!(text.contains("chunkRetracted"), "{text}");
    // Ten minutes on, the tick's sweep finds every chunk done and finishes the retraction
    // (FanoutFunction's DeleteItem of RECALL/{id}).
    f.env.clock.advance(chrono::Duration::seconds(shared::service::recall::RECHECK_SECONDS + 60));
    tick(f).await;
    settle(f).await;
    let a_day_on = shared::ports::Clock::now(&*f.env.clock) + chrono::Duration::days(1);
    assert!(
        !f.env.ports.notifications.unfinished(a_day_on, 50).await.unwrap().contains(&ga_n.id),
        "the retraction finished under FanoutFunction's policy{}",
        refused()
    );

    // A department message and an in-app notification, delivered, corrected (their content
    // written again before the answer) and retracted (the retraction's transaction, its plan
    // queued) under NotifyFunction's policy; the plan and steps under fan-out's and deliver's.
    let (status, sync) = notify(
        f,
        department(
            &user(2).to_string(),
            &json!({"messageAttributes": {"body": "to correct"}, "messageSendingAttributesLite": {"sendSynchronously": true}}),
        ),
    )
    .await;
    assert_eq!(status, 200, "{sync}");
    let message = sync["notificationMessageUUID"].as_str().unwrap().to_string();
    let (status, app) = notify(
        f,
        GatewayRequest::new(
            "POST",
            "/api/data/v9.2/SendAppNotification",
            "/api/data/v9.2/SendAppNotification",
        )
        .header("authorization", "Bearer demo-admin-token")
        .body(json!({"Title": "to correct", "Recipient": format!("/systemusers({})", user(3))}).to_string()),
    )
    .await;
    assert_eq!(status, 200, "{app}");
    let app_id = app["NotificationId"].as_str().unwrap().to_string();
    settle(f).await;
    let dept_auth = {
        use base64::Engine;
        format!("Basic {}", base64::engine::general_purpose::STANDARD.encode("demo-dept:demo-secret"))
    };
    let department_recall = |action: &str, body: Option<Value>| {
        let template = format!(
            "/communications/department/{{departmentUUID}}/user/{{userUUID}}/notify/{{notificationMessageUUID}}/{action}"
        );
        let path = format!("/communications/department/{DEPT}/user/{}/notify/{message}/{action}", user(2));
        let req = GatewayRequest::new("POST", &template, &path)
            .path_param("departmentUUID", DEPT)
            .path_param("userUUID", &user(2).to_string())
            .path_param("notificationMessageUUID", &message)
            .header("authorization", &dept_auth);
        match body {
            Some(body) => req.body(body.to_string()),
            None => req,
        }
    };
    let app_recall = |correction: Option<Value>| {
        let path = format!("/api/data/v9.2/appnotifications/{app_id}");
        match correction {
            Some(body) => {
                GatewayRequest::new("PATCH", "/api/data/v9.2/appnotifications/{NotificationId}", &path)
                    .body(body.to_string())
            }
            None => GatewayRequest::new(
                "POST",
                "/api/data/v9.2/appnotifications/{NotificationId}/retract",
                &format!("{path}/retract"),
            ),
        }
        .path_param("NotificationId", &app_id)
        .header("authorization", "Bearer demo-admin-token")
    };
    let (dept_id, app_uuid): (Uuid, Uuid) = (message.parse().unwrap(), app_id.parse().unwrap());
    // Which field each corrects: the department's body, the app notification's Title.
    for (what, req, person, id, title) in [
        (
            "department correct",
            department_recall("correct", Some(json!({"messageAttributes": {"body": "corrected"}}))),
            user(2),
            dept_id,
            false,
        ),
        ("app correct", app_recall(Some(json!({"Title": "corrected"}))), user(3), app_uuid, true),
    ] {
        let (status, answer) = notify(f, req).await;
        assert_eq!(status, 200, "{what} under NotifyFunction's policy: {answer}{}", refused());
        let item = f.env.ports.inbox.get(person, id).await.unwrap().expect("delivered");
        let shown = if title { &item.content.title } else { &item.content.body };
        assert_eq!(shown, "corrected", "{what}: written before the answer");
    }
    for (what, req) in
        [("department retract", department_recall("retract", None)), ("app retract", app_recall(None))]
    {
        let (status, answer) = notify(f, req).await;
        assert_eq!(status, 200, "{what} under NotifyFunction's policy: {answer}{}", refused());
    }
    settle(f).await;
    for (person, id) in [(user(2), dept_id), (user(3), app_uuid)] {
        assert!(
            f.env.ports.inbox.get(person, id).await.unwrap().is_none(),
            "retracted from {person}{}",
            refused()
        );
    }

    // Sent history: every query kind.
    for query in [
        "version=1&broadcastType=GT&companyId=3".to_string(),
        "version=1&broadcastType=GT&companyId=3&limit=1".to_string(),
        "version=1&broadcastType=ET&eventUUID=ed90fcd2-cbb4-49b8-9be4-a14ccbc2d1e8".to_string(),
        "version=1&broadcastType=JN".to_string(),
        format!("version=1&notificationScheduleId={}", later["notificationScheduleId"]),
    ] {
        if let Some(next) = sent(f, &query).await {
            sent(f, &format!("{query}&nextToken={next}")).await;
        }
    }

    // The notification center: list, since, dismiss (both verbs).
    let center = |query: &str| {
        GatewayRequest::new(
            "GET",
            "/users/{userId}/notifications",
            &format!("/users/{}/notifications", user(1)),
        )
        .path_param("userId", &user(1).to_string())
        .header("authorization", "Bearer demo-user-1-token")
        .query(query)
    };
    let (status, list) = inbox(f, center("")).await;
    assert_eq!(status, 200, "list: {list}{}", refused());
    let list: Value = serde_json::from_str(&list).unwrap();
    let items = list["notifications"].as_array().expect("items").clone();
    assert!(items.len() >= 2, "{list}");
    let (status, since) = inbox(f, center("since=2026-11-22T08:00:00Z")).await;
    assert_eq!(status, 200, "since: {since}{}", refused());
    for (method, item) in [("POST", &items[0]), ("DELETE", &items[1])] {
        let id = item["id"].as_str().expect("an id");
        let (status, body) = inbox(
            f,
            GatewayRequest::new(
                method,
                "/users/{userId}/notifications/{id}/dismiss",
                &format!("/users/{}/notifications/{id}/dismiss", user(1)),
            )
            .path_param("userId", &user(1).to_string())
            .path_param("id", id)
            .header("authorization", "Bearer demo-user-1-token"),
        )
        .await;
        assert!(status < 300, "{method} dismiss: {status} {body}{}", refused());
    }
    // Marks (content read for the key, one conditional update), mark-all (the watermark), the
    // badge (watermark and a bounded query).
    let as_u1 = |method: &str, template: &str, tail: &str| {
        GatewayRequest::new(method, template, &format!("/users/{}{tail}", user(1)))
            .path_param("userId", &user(1).to_string())
            .header("authorization", "Bearer demo-user-1-token")
    };
    let id = items[2.min(items.len() - 1)]["id"].as_str().expect("an id").to_string();
    for mark in ["seen", "read", "unread", "archive", "unarchive"] {
        let template = format!("/users/{{userId}}/notifications/{{id}}/{mark}");
        let req = as_u1("POST", &template, &format!("/notifications/{id}/{mark}")).path_param("id", &id);
        let (status, body) = inbox(f, req).await;
        assert_eq!(status, 204, "{mark}: {body}{}", refused());
    }
    // A mark on a dismissed notification: 404, and the marker written for it removed again.
    let dismissed = items[0]["id"].as_str().expect("an id").to_string();
    let req = as_u1(
        "POST",
        "/users/{userId}/notifications/{id}/archive",
        &format!("/notifications/{dismissed}/archive"),
    )
    .path_param("id", &dismissed);
    let (status, body) = inbox(f, req).await;
    assert_eq!(status, 404, "archive after dismiss: {body}{}", refused());
    assert!(denials().is_empty(), "{}", refused());
    let (status, body) = inbox(
        f,
        as_u1("POST", "/users/{userId}/notifications/mark-all-read", "/notifications/mark-all-read"),
    )
    .await;
    assert_eq!(status, 204, "mark-all-read: {body}{}", refused());
    let (status, body) =
        inbox(f, as_u1("GET", "/users/{userId}/notifications/count", "/notifications/count")).await;
    assert_eq!(status, 200, "count: {body}{}", refused());
    assert!(body.contains("\"unread\":0"), "everything read: {body}");

    // Realtime: a ticket from the inbox function opens a connection under RealtimeFunction's
    // policy; a delivery (deliver's policy) and a mark (inbox's) are posted to it.
    let (status, body) = inbox(f, as_u1("POST", "/users/{userId}/realtime-ticket", "/realtime-ticket")).await;
    assert_eq!(status, 201, "ticket: {body}{}", refused());
    let ticket: Value = serde_json::from_str(&body).unwrap();
    let connection = format!("conn{}", Uuid::new_v4().simple());
    let mut open = aws_lambda_events::event::apigw::ApiGatewayWebsocketProxyRequest::default();
    open.request_context.route_key = Some("$connect".into());
    open.request_context.connection_id = Some(connection.clone());
    open.query_string_parameters = std::collections::HashMap::from([(
        "ticket".to_string(),
        ticket["ticket"].as_str().unwrap().to_string(),
    )])
    .into();
    let opened = realtime::handle(&f.realtime, open).await;
    assert_eq!(opened.status_code, 200, "$connect: {:?}{}", opened.body, refused());
    send(f, json!({"version": 4, "type": "UN", "key": "3", "values": ["aaron.mcmullen@hypermedia.com.au"], "message": "live"})).await;
    settle(f).await;
    let template = "/users/{userId}/notifications/{id}/unread";
    let (status, body) =
        inbox(f, as_u1("POST", template, &format!("/notifications/{id}/unread")).path_param("id", &id)).await;
    assert_eq!(status, 204, "unread: {body}{}", refused());
    let posted = tests::posted_to(&connection).await;
    assert!(
        posted.iter().any(|m| m.contains("\"type\":\"new\"")),
        "deliver posted the delivery: {posted:?}{}",
        refused()
    );
    assert!(
        posted.iter().any(|m| m.contains("\"type\":\"marked\"")),
        "inbox posted the mark: {posted:?}{}",
        refused()
    );

    // Unsubscribe through the email's link.
    let html = &emails[0].html;
    let start = html.find("/unsubscribe?").expect("an unsubscribe link");
    let query = html[start + "/unsubscribe?".len()..].split('"').next().unwrap().replace("&amp;", "&");
    let (status, page) =
        inbox(f, GatewayRequest::new("POST", "/unsubscribe", "/unsubscribe").query(&query)).await;
    assert_eq!(status, 200, "unsubscribe: {page}{}", refused());

    // Remove a device.
    let device = &f.env.ports.devices.devices(user(3)).await.unwrap()[0];
    let (status, body) = inbox(
        f,
        GatewayRequest::new(
            "DELETE",
            "/users/{userId}/devices/{deviceId}",
            &format!("/users/{}/devices/{}", user(3), device.device_id),
        )
        .path_param("userId", &user(3).to_string())
        .path_param("deviceId", &device.device_id)
        .header("authorization", "Bearer demo-user-3-token"),
    )
    .await;
    assert!(status < 300, "remove device: {status} {body}{}", refused());

    // Notify: department synchronous (its callback queued by notify, sent by fan-out),
    // asynchronous, delayed with a callback.
    let u1 = user(1).to_string();
    let (sync_url, sync_calls) = receiver().await;
    let (status, answer) = notify(
        f,
        department(
            &u1,
            &json!({"messageAttributes": {"body": "sync", "subject": "s"},
        "messageSendingAttributesLite": {"sendSynchronously": true, "callBackUrl": sync_url}}),
        ),
    )
    .await;
    assert_eq!(
        (status, answer["status"].clone()),
        (200, json!("SUCCESS")),
        "department sync: {answer}{}",
        refused()
    );
    let (status, answer) = notify(f, department(&u1, &json!({"messageAttributes": {"body": "async"}}))).await;
    assert_eq!(
        (status, answer["status"].clone()),
        (200, json!("SUCCESS")),
        "department async: {answer}{}",
        refused()
    );
    let (url, calls) = receiver().await;
    let (status, answer) = notify(
        f,
        department(
            &u1,
            &json!({"messageAttributes": {"body": "delayed"},
        "messageSendingAttributesLite": {"delaySeconds": 60, "callBackUrl": url}}),
        ),
    )
    .await;
    assert_eq!(
        (status, answer["status"].clone()),
        (200, json!("SUCCESS")),
        "department delayed: {answer}{}",
        refused()
    );
    // Desktop assistant and app notification, from events/.
    let (status, answer) = notify(f, sample("notify-desktop-assistant")).await;
    assert_eq!(status, 200, "desktop assistant: {answer}{}", refused());
    let (status, answer) = notify(f, sample("notify-app-notification-welcome")).await;
    assert!(status < 300, "app notification: {status} {answer}{}", refused());
    settle(f).await;
    f.env.clock.advance(chrono::Duration::minutes(2));
    tick(f).await;
    settle(f).await;
    let delivered = bodies(&calls);
    assert_eq!(delivered.len(), 1, "the delayed notify's callback: {delivered:?}{}", refused());
    assert!(delivered[0].contains("SUCCESS"), "{delivered:?}");
    let sync_delivered = bodies(&sync_calls);
    assert_eq!(sync_delivered.len(), 1, "the synchronous notify's callback: {sync_delivered:?}{}", refused());
    assert!(sync_delivered[0].contains("SUCCESS"), "{sync_delivered:?}");

    // The retry path: a chunk that failed after its entries were written is handed back, and
    // its next attempt writes only the entries people do not have (conditional puts).
    let (status, answer) =
        notify(f, department(&u1, &json!({"messageAttributes": {"body": "retried"}}))).await;
    assert_eq!(status, 200, "{answer}");
    let retried: Uuid = answer["notificationMessageUUID"].as_str().unwrap().parse().unwrap();
    let (chunks, failing) = one_chunk_failing_its_record(f).await;
    let event = || local::workers::sqs_event(local::workers::DELIVERY_QUEUE_ARN, &chunks);
    assert_eq!(deliver::handle(&failing, f.env.max_receives, event()).await.batch_item_failures.len(), 1);
    let again = deliver::handle(&f.deliver, f.env.max_receives, event()).await;
    assert!(again.batch_item_failures.is_empty(), "the retry under DeliverFunction's policy{}", refused());
    local::workers::settle(f.env.ports.delivery_queue.as_ref(), &chunks, &[]).await.unwrap();
    let n = f.env.ports.notifications.get(retried).await.unwrap().unwrap();
    assert_eq!((n.status, n.delivered), (Status::Delivered, 1), "retried{}", refused());

    // The same retry in a synchronous notify's process (its chunk's first write answered late:
    // the chunk is its own, entries may exist), under NotifyFunction's policy: it reads the
    // entries people have (the inbox's BatchGetItem) and writes only the missing ones.
    let (status, answer) =
        notify(f, department(&u1, &json!({"messageAttributes": {"body": "retried inline"}}))).await;
    assert_eq!(status, 200, "{answer}");
    let inline: Uuid = answer["notificationMessageUUID"].as_str().unwrap().parse().unwrap();
    let (chunks, failing) = one_chunk_failing_its_record(f).await;
    assert_eq!(
        deliver::handle(&failing, f.env.max_receives, event_of(&chunks)).await.batch_item_failures.len(),
        1
    );
    let chunk: shared::model::DeliveryChunk = serde_json::from_str(&chunks[0].body).unwrap();
    f.env.clock.advance(chrono::Duration::minutes(10));
    let delivered =
        shared::service::deliver::deliver_chunk_only(&f.notify.deliver(), &chunk, "inline retry").await;
    assert!(delivered.is_ok(), "the retry under NotifyFunction's policy: {delivered:?}{}", refused());
    local::workers::settle(f.env.ports.delivery_queue.as_ref(), &chunks, &[]).await.unwrap();
    let n = f.env.ports.notifications.get(inline).await.unwrap().unwrap();
    assert_eq!((n.status, n.delivered), (Status::Delivered, 1), "retried inline{}", refused());

    // A chunk without time left in its invocation is handed to a new message of the delivery
    // queue (its receive ends, even the last one), which a later invocation delivers.
    let (status, answer) =
        notify(f, department(&u1, &json!({"messageAttributes": {"body": "handed over"}}))).await;
    assert_eq!(status, 200, "{answer}");
    let handed: Uuid = answer["notificationMessageUUID"].as_str().unwrap().parse().unwrap();
    let (chunks, _) = one_chunk_failing_its_record(f).await;
    let mut event = local::workers::sqs_event(local::workers::DELIVERY_QUEUE_ARN, &chunks);
    event.records[0].attributes.insert("ApproximateReceiveCount".into(), f.env.max_receives.to_string());
    let too_close = shared::service::deadline::Deadline::at(
        shared::ports::Clock::now(f.env.clock.as_ref()) + chrono::Duration::seconds(5),
    );
    let answered = deliver::handle_within(&f.deliver, f.env.max_receives, event, too_close).await;
    assert!(
        answered.batch_item_failures.is_empty(),
        "handed over under DeliverFunction's policy{}",
        refused()
    );
    local::workers::settle(f.env.ports.delivery_queue.as_ref(), &chunks, &[]).await.unwrap();
    let waiting = f.env.ports.notifications.get(handed).await.unwrap().unwrap();
    assert_eq!((waiting.status, waiting.delivered), (Status::Delivering, 0), "not given up");
    settle(f).await;
    let n = f.env.ports.notifications.get(handed).await.unwrap().unwrap();
    assert_eq!(
        (n.status, n.delivered),
        (Status::Delivered, 1),
        "delivered from the new message{}",
        refused()
    );

    // The give-up path: a chunk that fails at its last receive marks its notification Failed.
    let (url, failure_calls) = receiver().await;
    let (status, answer) = notify(
        f,
        department(
            &u1,
            &json!({"messageAttributes": {"body": "doomed"},
        "messageSendingAttributesLite": {"callBackUrl": url}}),
        ),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    let id: Uuid = answer["notificationMessageUUID"].as_str().unwrap().parse().unwrap();
    let (chunks, failing) = one_chunk_failing_its_record(f).await;
    let mut event = local::workers::sqs_event(local::workers::DELIVERY_QUEUE_ARN, &chunks);
    event.records[0].attributes.insert("ApproximateReceiveCount".into(), f.env.max_receives.to_string());
    deliver::handle(&failing, f.env.max_receives, event).await;
    local::workers::settle(f.env.ports.delivery_queue.as_ref(), &chunks, &[]).await.unwrap();
    let failed = f.env.ports.notifications.get(id).await.unwrap().unwrap();
    assert_eq!(failed.status, Status::Failed, "given up at the last receive{}", refused());
    let calls = bodies(&failure_calls);
    assert_eq!(calls.len(), 1, "the give-up path sends the FAILURE callback: {calls:?}");
    assert!(calls[0].contains("FAILURE"), "{calls:?}");

    Box::pin(webhooks_told(f, &hooks, &secret)).await;

    let denials = denials();
    assert!(
        denials.is_empty(),
        "requests IAM refused (function = the user, and the action):\n{}",
        denials.join("\n")
    );
}

fn event_of(chunks: &[shared::ports::ReceivedMessage]) -> aws_lambda_events::event::sqs::SqsEvent {
    local::workers::sqs_event(local::workers::DELIVERY_QUEUE_ARN, chunks)
}

/// The fan-out job just queued, run under FanoutFunction's policy; its one chunk, and deliver's
/// ports (DeliverFunction's policy) with that chunk's record failing once.
async fn one_chunk_failing_its_record(
    f: &Functions,
) -> (Vec<shared::ports::ReceivedMessage>, shared::runtime::Ports) {
    let jobs = f.env.ports.fanout_queue.receive(10).await.unwrap();
    let event = local::workers::sqs_event(local::workers::FANOUT_QUEUE_ARN, &jobs);
    fanout::handle(&f.fanout, fanout::Trigger::Queue(event)).await.expect("fanout");
    local::workers::settle(f.env.ports.fanout_queue.as_ref(), &jobs, &[]).await.unwrap();
    let chunks = f.env.ports.delivery_queue.receive(10).await.unwrap();
    assert_eq!(chunks.len(), 1);
    let faults = tests::faults::Faults::none();
    faults.fail_next("record_chunk");
    (chunks, tests::faults::faulty(&f.deliver, &faults))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_function_works_under_its_own_policy_and_a_missing_action_is_named() {
    let log = log();
    let f = Functions::moto().await;
    // Boxed: the whole path is one large future, too large for a test thread's stack in a debug build.
    Box::pin(every_path(&f)).await;

    // The check has teeth: send's code under sent history's policy (reads only, no SQS) is
    // refused, answers 500 without the cause, and logs the cause naming identity and action.
    log.clear();
    let wrong = Functions { send: f.sent_history.clone(), ..f };
    let req = GatewayRequest::new("POST", "/rest/notification/send", "/rest/notification/send")
        .header("x-nextinteract-authtoken", "demo-admin-token")
        .header("x-nextinteract-company-api-key", "00000000-0000-4000-8000-000000000003")
        .body(json!({"version": 4, "type": "UN", "key": "3", "values": ["aaron.mcmullen@hypermedia.com.au"], "message": "x"}).to_string());
    let resp = send::handle(&wrong.send, req.into_request()).await;
    let text = body_text(&resp);
    assert_eq!(resp.status(), 500, "{text}");
    assert!(!text.contains("authorized"), "the answer carries no cause: {text}");
    let denials = denials();
    assert!(
        // A send's first request reads the caller's two credentials in one BatchGetItem, which
        // sent history's policy does not allow on the directory.
        denials.iter().any(|l| {
            l.contains("user/SentHistoryFunction is not authorized to perform: dynamodb:BatchGetItem on resource: arn:aws:dynamodb:")
                && l.contains("DirectoryTable because no identity-based policy allows the dynamodb:BatchGetItem action")
        }),
        "the log names the identity, the action and the resource as AWS does: {denials:?}"
    );
}

/// The emulator refuses what AWS's IAM refuses, and allows what it allows: resources are
/// checked (a table, an index, a queue), transactions are authorised per action inside them,
/// SQS batches by their single-message action, unknown credentials are refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_emulator_applies_aws_iam_rules() {
    use aws_sdk_dynamodb::types::{AttributeValue, ConditionCheck, TransactWriteItem, Update};
    let (sdk, provisioned, _) = tests::provision_moto().await;
    let table = |logical: &str| provisioned.tables[logical].clone();
    let queue = |logical: &str| provisioned.queue_urls[logical].clone();
    let key = |pk: &str| {
        std::collections::HashMap::from([
            ("pk".to_string(), AttributeValue::S(pk.into())),
            ("sk".to_string(), AttributeValue::S("META".into())),
        ])
    };
    let refused = |e: &dyn std::fmt::Debug| format!("{e:?}").contains("AccessDeniedException");

    // Resources: sent history may read the directory and the notifications' history index, not
    // the inbox, nor the pending index.
    let history = aws_sdk_dynamodb::Client::new(&tests::sdk_as(&sdk, "SentHistoryFunction"));
    let get = |t: String| history.get_item().table_name(t).set_key(Some(key("X"))).send();
    get(table("DirectoryTable")).await.expect("GetItem on its own table");
    let e = get(table("InboxTable")).await.expect_err("GetItem on another table");
    assert!(refused(&e), "{e:?}");
    let query = |index: &str| {
        history
            .query()
            .table_name(table("NotificationsTable"))
            .index_name(index)
            .key_condition_expression("#k = :v")
            .expression_attribute_names("#k", if index == "history" { "histPk" } else { "pendingShard" })
            .expression_attribute_values(":v", AttributeValue::S("x".into()))
            .send()
    };
    let _ = query("history").await.map_err(|e| assert!(!refused(&e), "Query on its index: {e:?}"));
    let e = query("pending").await.expect_err("Query on an index it was not granted");
    assert!(refused(&e), "{e:?}");

    // Transactions: deliver may ConditionCheck and Update notifications, not Delete them.
    let deliver = aws_sdk_dynamodb::Client::new(&tests::sdk_as(&sdk, "DeliverFunction"));
    let check = TransactWriteItem::builder()
        .condition_check(
            ConditionCheck::builder()
                .table_name(table("NotificationsTable"))
                .set_key(Some(key("A")))
                .condition_expression("attribute_not_exists(pk)")
                .build()
                .unwrap(),
        )
        .build();
    let update = |pk: &str| {
        TransactWriteItem::builder()
            .update(
                Update::builder()
                    .table_name(table("NotificationsTable"))
                    .set_key(Some(key(pk)))
                    .update_expression("SET n = :one")
                    .expression_attribute_values(":one", AttributeValue::N("1".into()))
                    .build()
                    .unwrap(),
            )
            .build()
    };
    // DynamoDB may cancel any transaction unasked (the suite draws such cancellations, as AWS
    // does under contention): a caller tries again, and so does this check, until IAM answers.
    let until_not_cancelled = |items: Vec<TransactWriteItem>| {
        let deliver = &deliver;
        async move {
            let mut tries = 0;
            loop {
                let out = deliver.transact_write_items().set_transact_items(Some(items.clone())).send().await;
                match out {
                    Err(e) if format!("{e:?}").contains("TransactionCanceledException") && tries < 20 => {
                        tries += 1
                    }
                    out => return out,
                }
            }
        }
    };
    until_not_cancelled(vec![check.clone(), update("B")])
        .await
        .expect("ConditionCheckItem and UpdateItem are granted");
    let delete = TransactWriteItem::builder()
        .delete(
            aws_sdk_dynamodb::types::Delete::builder()
                .table_name(table("NotificationsTable"))
                .set_key(Some(key("C")))
                .build()
                .unwrap(),
        )
        .build();
    // Deliver may delete only its retractions' registrations (a `dynamodb:LeadingKeys`
    // condition moto does not evaluate, pinned in parity.rs): sent history, which may not delete
    // at all, is refused the transaction's delete.
    let reader = aws_sdk_dynamodb::Client::new(&tests::sdk_as(&sdk, "SentHistoryFunction"));
    let mut tries = 0;
    let e = loop {
        match reader.transact_write_items().set_transact_items(Some(vec![delete.clone()])).send().await {
            Err(e) if format!("{e:?}").contains("TransactionCanceledException") && tries < 20 => tries += 1,
            out => break out.expect_err("no DeleteItem"),
        }
    };
    assert!(refused(&e), "{e:?}");

    // SQS: SendMessage allows SendMessageBatch, on its own queue only.
    let send = aws_sdk_sqs::Client::new(&tests::sdk_as(&sdk, "SendFunction"));
    let batch = |url: String| {
        send.send_message_batch()
            .queue_url(url)
            .entries(
                aws_sdk_sqs::types::SendMessageBatchRequestEntry::builder()
                    .id("1")
                    .message_body("{}")
                    .build()
                    .unwrap(),
            )
            .send()
    };
    batch(queue("FanoutQueue")).await.expect("SendMessageBatch under sqs:SendMessage");
    let e = batch(queue("DeliveryQueue")).await.expect_err("another queue");
    assert!(format!("{e:?}").contains("AccessDenied"), "{e:?}");

    // Unknown credentials.
    let stranger = aws_sdk_dynamodb::Client::new(
        &sdk.to_builder()
            .credentials_provider(aws_sdk_sqs::config::SharedCredentialsProvider::new(
                aws_sdk_sqs::config::Credentials::new("AKIDSTRANGER0000000", "x", None, None, "test"),
            ))
            .build(),
    );
    let e = stranger.list_tables().send().await.expect_err("unknown credentials");
    assert!(format!("{e:?}").contains("403") || format!("{e:?}").contains("UnrecognizedClient"), "{e:?}");
}

/// Deliver, given no `PUBLIC_API_URL` (a stack deployed without `PublicApiUrl`), reads where its
/// emails' links point from the SSM parameter the stack writes its HTTP API's URL to, under its
/// own policy (`ssm:GetParameter` on that parameter: the read fails without it, as it does for a
/// function without the grant); a missing parameter or a value that is no URL stops its start,
/// named, rather than emailing links that go nowhere.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deliver_reads_where_its_links_point_from_the_stacks_parameter() {
    use shared::runtime::aws::{Services, aws_ports};
    let (sdk, _, config) = tests::provision_moto().await;
    let name = config.public_api_url_parameter.clone().expect("deliver's environment names the parameter");
    let template = local::provision::read_template(&tests::template_path()).unwrap();
    let declared =
        serde_yaml_ng::to_string(&template["Resources"]["PublicApiUrlParameter"]["Properties"]["Name"])
            .unwrap();
    assert!(
        declared.contains("/notifications/${Stage}/public-api-url") && name.starts_with("/notifications/"),
        "the environment names the parameter the stack writes: {name} {declared}"
    );
    let ssm = aws_sdk_ssm::Client::new(&sdk);
    let put = |value: &str| {
        ssm.put_parameter()
            .name(&name)
            .value(value)
            .r#type(aws_sdk_ssm::types::ParameterType::String)
            .overwrite(true)
            .send()
    };
    let mut config = config.clone();
    config.public_api_url = None;
    let start = |who: &str, config: &shared::Config| {
        let (sdk, config) = (tests::sdk_as(&sdk, who), config.clone());
        async move {
            aws_ports(&sdk, &config, Services::ALL).await.map(|p| p.channels.and_then(|c| c.public_api_url))
        }
    };

    put("https://abc123.execute-api.us-east-1.amazonaws.com/").await.expect("the stack's parameter");
    assert_eq!(
        start("DeliverFunction", &config).await.unwrap().as_deref(),
        Some("https://abc123.execute-api.us-east-1.amazonaws.com")
    );
    // Without the grant (the inbox's policy has none), the read is refused and named.
    let refused = start("InboxFunction", &config).await.expect_err("no ssm:GetParameter");
    assert!(
        refused.to_string().contains(shared::Config::PUBLIC_API_URL_PARAMETER)
            && format!("{refused:?}").contains("AccessDenied"),
        "{refused:?}"
    );
    // A value that is no URL stops the start; a given PUBLIC_API_URL is used without a read.
    put("not a url").await.unwrap();
    let bad = start("DeliverFunction", &config).await.expect_err("not a URL");
    assert!(bad.to_string().contains("not an http(s) URL"), "{bad}");
    let given =
        shared::Config { public_api_url: Some("https://notify.example.com".into()), ..config.clone() };
    assert_eq!(
        start("InboxFunction", &given).await.expect("no read where the URL is given").as_deref(),
        Some("https://notify.example.com")
    );
    ssm.delete_parameter().name(&name).send().await.unwrap();
    let missing = start("DeliverFunction", &config).await.expect_err("no parameter");
    assert!(missing.to_string().contains(&name), "{missing}");
}
