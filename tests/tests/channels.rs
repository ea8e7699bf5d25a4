//! Email (SES v2) and mobile push (SNS) end to end, against the memory adapters and against moto,
//! with the demo directory: who gets what, what it says, unsubscribe links, and no duplicates
//! when a delivery chunk is redelivered.

use std::collections::BTreeSet;

use serde_json::{Value, json};
use shared::http::{GatewayRequest, body_text};
use shared::model::*;
use tests::faults::{Faults, faulty};
use tests::{Env, end_to_end};
use uuid::Uuid;

const U1_EMAIL: &str = "aaron.mcmullen@hypermedia.com.au";
const U3_EMAIL: &str = "user3@demo.example";

fn user(n: u8) -> Uuid {
    let d = n.to_string();
    format!("{0}-{1}-4{2}-8{2}-{3}", d.repeat(8), d.repeat(4), d.repeat(3), d.repeat(12)).parse().unwrap()
}

/// A subject of this test run only: moto's outbox is shared by every test.
fn subject(what: &str) -> String {
    format!("{what} {}", &Uuid::new_v4().simple().to_string()[..8])
}

async fn send(env: &Env, body: Value) -> (u16, Value) {
    let req = GatewayRequest::new("POST", "/rest/notification/send", "/rest/notification/send")
        .header("x-nextinteract-authtoken", "demo-admin-token")
        .header("x-nextinteract-company-api-key", "00000000-0000-4000-8000-000000000003")
        .body(body.to_string());
    let resp = send::handle(&env.ports, req.into_request()).await;
    (resp.status().as_u16(), serde_json::from_str(&body_text(&resp)).unwrap_or(Value::Null))
}

fn ga(subject: &str, params: Value) -> Value {
    json!({
        "version": 3, "type": "GA", "key": "3", "message": "Brochure 4 has a new edition",
        "url": "https://example.com/brochures/4", "brochureId": 4,
        "emailTemplate": "Client.Generic.Notification.html", "emailSubject": subject, "emailParams": params
    })
}

/// Registers a device for user `n` with their own token; the device's endpoint ARN.
async fn register(env: &Env, n: u8, platform: &str, token: &str) -> (u16, Value) {
    let path = format!("/users/{}/devices", user(n));
    let req = GatewayRequest::new("POST", "/users/{userId}/devices", &path)
        .header("authorization", &format!("Bearer demo-user-{n}-token"))
        .path_param("userId", &user(n).to_string())
        .body(json!({ "platform": platform, "token": token }).to_string());
    let resp = inbox::handle(&env.ports, req.into_request()).await;
    (resp.status().as_u16(), serde_json::from_str(&body_text(&resp)).unwrap_or(Value::Null))
}

fn random_token(platform: &str) -> String {
    let hex = format!("{}{}", Uuid::new_v4().simple(), Uuid::new_v4().simple());
    if platform == "GCM" { format!("fcm-{hex}") } else { hex }
}

/// Registers a fresh device for each (user, platform); their endpoint ARNs by user.
async fn devices(env: &Env, who: &[(u8, &str)]) -> Vec<(u8, String)> {
    let mut out = Vec::new();
    for (n, platform) in who {
        let (status, body) = register(env, *n, platform, &random_token(platform)).await;
        assert_eq!(status, 201, "{body}");
        let listed = env.ports.devices.devices(user(*n)).await.unwrap();
        let device = listed.iter().find(|d| d.device_id == body["deviceId"].as_str().unwrap()).unwrap();
        out.push((*n, device.endpoint_arn.clone()));
    }
    out
}

async fn settle(env: &Env) {
    local::workers::run_until_idle(&env.ports, env.max_receives).await.unwrap();
}

async fn notification(env: &Env, answer: &Value) -> Notification {
    let sid = answer["notificationScheduleId"].as_u64().unwrap();
    env.ports.notifications.get_by_schedule_id(sid).await.unwrap().unwrap()
}

fn recipients(emails: &[tests::outbox::SentEmail]) -> Vec<String> {
    emails.iter().flat_map(|e| e.to.clone()).collect()
}

/// The demo's answer: GA for brochure 4 emails u1 and u3 (u2 unsubscribed from its notifications,
/// u4 from its emails) and pushes to the devices of u1, u3 and u4.
async fn ga_emails_two_people_and_pushes_three(env: Env) {
    let registered = devices(&env, &[(1, "GCM"), (2, "GCM"), (3, "APNS"), (4, "APNS_SANDBOX")]).await;
    let subject = subject("New edition");
    let params = json!([
        {"key": "userFirstName", "value": "x"}, {"key": "desktopURL", "value": "x"},
        {"key": "unsubcribeURL", "value": "x"}, {"key": "headline", "value": "<script>alert(1)</script>"}
    ]);
    let (status, answer) = send(&env, ga(&subject, params)).await;
    assert_eq!(status, 200, "{answer}");
    settle(&env).await;

    let emails = env.outbox.emails(&subject).await;
    assert_eq!(recipients(&emails), vec![U1_EMAIL.to_string(), U3_EMAIL.to_string()]);
    let n = notification(&env, &answer).await;
    let aaron = &emails[0].html;
    assert!(aaron.contains("Hi Aaron,"), "personalised first name: {aaron}");
    assert!(aaron.contains(&format!("https://desktop.demo.example/notifications/{}", n.id)), "{aaron}");
    assert!(aaron.contains("&lt;script&gt;alert(1)&lt;/script&gt;") && !aaron.contains("<script>"));
    assert!(aaron.contains(&format!("/unsubscribe?user={}&amp;brochure=4&amp;sig=", user(1))), "{aaron}");
    assert!(emails[1].html.contains("Hi Cal,"));

    let endpoints: Vec<String> = registered.iter().map(|(_, arn)| arn.clone()).collect();
    let pushes = env.outbox.pushes(&endpoints).await;
    let pushed: BTreeSet<u8> =
        pushes.iter().map(|p| registered.iter().find(|(_, arn)| *arn == p.endpoint).unwrap().0).collect();
    assert_eq!(pushed, BTreeSet::from([1, 3, 4]), "u2 unsubscribed from the asset's notifications");
    assert_eq!(pushes.len(), 3);
    for p in &pushes {
        let message: Value = serde_json::from_str(&p.message).unwrap();
        assert_eq!(message["default"], "Brochure 4 has a new edition");
        let (platform, payload) = message
            .as_object()
            .unwrap()
            .iter()
            .find(|(k, _)| *k != "default")
            .map(|(k, v)| (k.clone(), v.clone()))
            .unwrap();
        let payload: Value = serde_json::from_str(payload.as_str().unwrap()).unwrap();
        let (title, id) = match platform.as_str() {
            "GCM" => (
                payload["fcmV1Message"]["message"]["notification"]["title"].clone(),
                payload["fcmV1Message"]["message"]["data"]["notificationId"].clone(),
            ),
            _ => (payload["aps"]["alert"]["title"].clone(), payload["notificationId"].clone()),
        };
        assert_eq!(title, "Asset notification");
        assert_eq!(id, json!(n.id.to_string()));
    }

    assert_eq!(
        (n.emails_sent, n.emails_opted_out, n.emails_no_address, n.emails_failed),
        (2, 1, 0, 0),
        "per-recipient email outcomes"
    );
    assert_eq!((n.pushes_sent, n.pushes_removed, n.pushes_failed), (3, 0, 0));
    assert_eq!(n.delivered, 3);

    // Sent history shows the outcomes beside the in-app count.
    let sid = answer["notificationScheduleId"].as_u64().unwrap();
    let req = GatewayRequest::new("GET", "/rest/notification/sent", "/rest/notification/sent")
        .header("x-nextinteract-authtoken", "demo-admin-token")
        .query(&format!("version=1&notificationScheduleId={sid}"));
    let resp = sent_history::handle(&env.ports, req.into_request()).await;
    let history: Value = serde_json::from_str(&body_text(&resp)).unwrap();
    let record = &history[0];
    assert_eq!(record["totalNotificationsSent"], 3, "{history}");
    assert_eq!(
        (record["emailsSent"].clone(), record["emailsOptedOut"].clone(), record["pushesSent"].clone()),
        (json!(2), json!(1), json!(3)),
        "{history}"
    );
}

/// The generic HTML-body template injects emailBody as given when an emailBody param is passed.
async fn the_html_body_template_renders_email_body(env: Env) {
    let subject = subject("Quarterly");
    let body = json!({
        "version": 3, "type": "GT", "key": "3", "values": ["5"], "message": "Short text",
        "emailTemplate": "Client.Generic.HTMLBody.Mandrill.html", "emailSubject": subject,
        "emailBody": "<h1>Quarterly report</h1><p>All <b>good</b>.</p>",
        "emailParams": [{"key": "emailBody", "value": "x"}]
    });
    let (status, answer) = send(&env, body).await;
    assert_eq!(status, 200, "{answer}");
    settle(&env).await;
    let emails = env.outbox.emails(&subject).await;
    assert_eq!(recipients(&emails), vec![U1_EMAIL.to_string()]);
    assert!(
        emails[0].html.contains("<h1>Quarterly report</h1><p>All <b>good</b>.</p>"),
        "{}",
        emails[0].html
    );
    assert!(!emails[0].html.contains("Short text"), "the body replaces the message");
}

/// The largest emailBody this service stores (300 KB with its parameters) is stored with its
/// notification (one DynamoDB item, under 400 KB with its indexes) and emailed whole; one byte
/// more is a 400 naming emailParams (the two together are over), and a body over 300 KB alone
/// one naming emailBody, before anything is stored or counted. Parameters count with the
/// body: the most of both is stored, one byte more of parameters is a 400 naming emailParams
/// (never a 500 after the daily cap was counted).
async fn the_largest_email_body_is_stored_and_one_byte_more_is_refused(env: Env) {
    // The one parameter below ("emailBody", "x") weighs 10 bytes and its overhead of the cap.
    let max = shared::dialects::group_send::MAX_EMAIL_BODY_BYTES
        - 10
        - shared::dialects::group_send::PARAM_OVERHEAD_BYTES;
    let html = |len: usize| format!("<p>{}</p>", "r".repeat(len - 7));
    let request = |subject: &str, len: usize| {
        json!({
            "version": 3, "type": "GT", "key": "3", "values": ["5"], "message": "Short text",
            "emailTemplate": "Client.Generic.HTMLBody.Mandrill.html", "emailSubject": subject,
            "emailBody": html(len), "emailParams": [{"key": "emailBody", "value": "x"}]
        })
    };
    let too_big = subject("Too big");
    let (status, answer) = send(&env, request(&too_big, max + 1)).await;
    assert_eq!(
        (status, answer["parameter"].as_str()),
        (400, Some("emailParams")),
        "with its parameter: {answer}"
    );
    let body_alone = shared::dialects::group_send::MAX_EMAIL_BODY_BYTES + 1;
    let (status, answer) = send(&env, request(&too_big, body_alone)).await;
    assert_eq!((status, answer["parameter"].as_str()), (400, Some("emailBody")), "the body alone: {answer}");
    let largest = subject("Largest");
    let (status, answer) = send(&env, request(&largest, max)).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["notificationScheduleId"].as_u64(), Some(1), "the refused one used no schedule id");
    settle(&env).await;
    let emails = env.outbox.emails(&largest).await;
    assert_eq!(recipients(&emails), vec![U1_EMAIL.to_string()]);
    assert!(emails[0].html.contains(&html(max)), "the whole body was emailed");
    assert!(env.outbox.emails(&too_big).await.is_empty());

    // Many parameters beside a large body: 100 of 2,048 bytes (2,000 of value, 48 of key) and a
    // body that brings the two to the cap are stored; one more byte of parameters is refused.
    let params = |extra: usize| {
        let mut list: Vec<Value> = (0..100)
            .map(|i| json!({"key": format!("param{i:03}{}", "k".repeat(40)), "value": "v".repeat(2000)}))
            .collect();
        list.push(json!({"key": "emailBody", "value": "x".repeat(1 + extra)}));
        Value::Array(list)
    };
    let overhead = shared::dialects::group_send::PARAM_OVERHEAD_BYTES;
    let params_bytes = 100 * (2048 + overhead) + "emailBody".len() + 1 + overhead;
    let body = shared::dialects::group_send::MAX_EMAIL_BODY_BYTES - params_bytes;
    let many = |subject: &str, extra: usize| {
        json!({
            "version": 3, "type": "GT", "key": "3", "values": ["5"], "message": "Short text",
            "emailTemplate": "Client.Generic.HTMLBody.Mandrill.html", "emailSubject": subject,
            "emailBody": html(body), "emailParams": params(extra)
        })
    };
    let (status, answer) = send(&env, many(&subject("Too many"), 1)).await;
    assert_eq!((status, answer["parameter"].as_str()), (400, Some("emailParams")), "{answer}");
    let (status, answer) = send(&env, many(&subject("Most"), 0)).await;
    assert_eq!(status, 200, "the most of body and parameters is stored: {answer}");
    assert_eq!(answer["notificationScheduleId"].as_u64(), Some(2), "the refused ones used no schedule id");
}

/// Unknown templates and unfillable personalised params are refused at send time.
async fn email_mistakes_are_400_at_send_time(env: Env) {
    let (status, answer) = send(
        &env,
        ga("s", json!([]))
            .as_object()
            .cloned()
            .map(|mut o| {
                o.insert("emailTemplate".into(), json!("Client.Nope.html"));
                Value::Object(o)
            })
            .unwrap(),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(answer["exception"], "WSInvalidParameterException");
    assert_eq!(answer["parameter"], "emailTemplate");
    let gt = json!({
        "version": 3, "type": "GT", "key": "3", "values": ["5"], "message": "m",
        "emailTemplate": "Client.Generic.Notification.html", "emailSubject": "s",
        "emailParams": [{"key": "unsubcribeURL", "value": "x"}]
    });
    let (status, answer) = send(&env, gt).await;
    assert_eq!((status, answer["parameter"].clone()), (400, json!("brochureId")), "{answer}");
}

fn unescape(href: &str) -> String {
    href.replace("&amp;", "&")
}

/// The unsubscribe link in an email records ALP-EUN: the next email about the asset skips them.
async fn following_the_unsubscribe_link_stops_the_next_email(env: Env) {
    let first = subject("Edition 1");
    let (status, _) = send(&env, ga(&first, json!([{"key": "unsubcribeURL", "value": "x"}]))).await;
    assert_eq!(status, 200);
    settle(&env).await;
    let emails = env.outbox.emails(&first).await;
    assert_eq!(recipients(&emails), vec![U1_EMAIL.to_string(), U3_EMAIL.to_string()]);
    let html = &emails[0].html;
    let start = html
        .find("https://api.test.example/unsubscribe?")
        .or_else(|| html.find("http://127.0.0.1:3000/unsubscribe?"))
        .expect(html);
    let link = unescape(&html[start..start + html[start..].find('"').unwrap()]);
    let query = link.split_once('?').unwrap().1.to_string();

    // A tampered link is refused and changes nothing.
    let tampered = query.replace(&user(1).to_string(), &user(3).to_string());
    let req = GatewayRequest::new("GET", "/unsubscribe", "/unsubscribe").query(&tampered);
    let resp = inbox::handle(&env.ports, req.into_request()).await;
    assert_eq!(resp.status().as_u16(), 403, "{}", body_text(&resp));

    // Following the link (GET, as a person or a mail scanner does) asks to confirm and changes
    // nothing: the next email still reaches u1.
    let req = GatewayRequest::new("GET", "/unsubscribe", "/unsubscribe").query(&query);
    let resp = inbox::handle(&env.ports, req.into_request()).await;
    let page = body_text(&resp);
    assert_eq!(resp.status().as_u16(), 200, "{page}");
    assert!(
        page.contains("Unsubscribe from these emails?") && page.contains("<form method=\"post\""),
        "{page}"
    );
    let scanned = subject("Edition 1b");
    assert_eq!(send(&env, ga(&scanned, json!([]))).await.0, 200);
    settle(&env).await;
    assert_eq!(
        recipients(&env.outbox.emails(&scanned).await),
        vec![U1_EMAIL.to_string(), U3_EMAIL.to_string()],
        "a GET of the link unsubscribes nobody"
    );
    // Confirming (the form's POST, or a mail client's RFC 8058 one-click POST) records it.
    let req = GatewayRequest::new("POST", "/unsubscribe", "/unsubscribe")
        .query(&query)
        .header("content-type", "application/x-www-form-urlencoded")
        .body("List-Unsubscribe=One-Click");
    let resp = inbox::handle(&env.ports, req.into_request()).await;
    assert_eq!(resp.status().as_u16(), 200, "{}", body_text(&resp));
    assert!(body_text(&resp).contains("You are unsubscribed"));

    let second = subject("Edition 2");
    let (status, answer) = send(&env, ga(&second, json!([]))).await;
    assert_eq!(status, 200);
    settle(&env).await;
    assert_eq!(recipients(&env.outbox.emails(&second).await), vec![U3_EMAIL.to_string()]);
    let n = notification(&env, &answer).await;
    assert_eq!((n.emails_sent, n.emails_opted_out), (1, 2));
    // Notifications are untouched: u1 still has the in-app item.
    let item = env.ports.inbox.get(user(1), n.id).await.unwrap();
    assert!(item.is_some());
}

/// A chunk whose pushes went out but whose recording failed is redelivered: it pushes nothing
/// twice and counts everything once. Its emails go out as an email job, after the chunk is
/// recorded; a job whose emails went out but whose recording failed, and a job queued twice,
/// send nothing twice either.
async fn a_redelivered_chunk_sends_no_duplicate_email_or_push(env: Env) {
    use shared::service::emails::{self, EmailOutcome};
    let registered = devices(&env, &[(1, "GCM"), (3, "APNS"), (4, "GCM")]).await;
    let endpoints: Vec<String> = registered.iter().map(|(_, arn)| arn.clone()).collect();
    let subject = subject("Once");
    let (status, answer) = send(&env, ga(&subject, json!([{"key": "userFirstName", "value": "x"}]))).await;
    assert_eq!(status, 200);
    local::workers::drain_fanout_once(&env.ports).await.unwrap();
    let messages = env.ports.delivery_queue.receive(10).await.unwrap();
    assert_eq!(messages.len(), 1, "three recipients: one chunk");
    let chunk = shared::service::deliver::parse_chunk(&messages[0].body).unwrap();

    let faults = Faults::none();
    faults.fail_next("record_chunk");
    let failing = faulty(&env.ports, &faults);
    assert!(shared::service::deliver::deliver(&failing.deliver(), &chunk, "m1").await.is_err());
    assert_eq!(env.outbox.pushes(&endpoints).await.len(), 3, "the first attempt pushed");
    assert!(env.outbox.emails(&subject).await.is_empty(), "emails wait for the chunk's record");
    assert!(env.ports.email_queue.receive(10).await.unwrap().is_empty(), "no job before the record");

    let again = shared::service::deliver::deliver(&env.ports.deliver(), &chunk, "m1").await.unwrap();
    assert_eq!(again, shared::service::deliver::Delivered::Written(3));
    let third = shared::service::deliver::deliver(&env.ports.deliver(), &chunk, "m1").await.unwrap();
    assert_eq!(third, shared::service::deliver::Delivered::AlreadyDone);
    env.ports.delivery_queue.ack(&messages[0].receipt).await.unwrap();
    assert_eq!(env.outbox.pushes(&endpoints).await.len(), 3, "one push per device");

    // The record queued the job and the redelivered recorded chunk queued it again.
    let jobs = env.ports.email_queue.receive(10).await.unwrap();
    assert_eq!(jobs.len(), 2, "{jobs:?}");
    let job = emails::parse_job(&jobs[0].body).unwrap();
    assert_eq!(job, emails::parse_job(&jobs[1].body).unwrap());
    let pending = notification(&env, &answer).await;
    assert_eq!(
        (pending.emails_pending, pending.status),
        (3, Status::Delivered),
        "in-app is not held by email"
    );

    faults.fail_next("record_emails");
    let none = shared::service::deadline::Deadline::NONE;
    assert!(emails::send_job(&failing.email_jobs(), &job, "m1", none).await.is_err());
    assert_eq!(env.outbox.emails(&subject).await.len(), 2, "the first attempt sent the emails");
    assert_eq!(
        emails::send_job(&env.ports.email_jobs(), &job, "m1", none).await.unwrap(),
        EmailOutcome::Recorded { sent: 2, gave_up: false }
    );
    assert_eq!(
        emails::send_job(&env.ports.email_jobs(), &job, "m1", none).await.unwrap(),
        EmailOutcome::AlreadyDone
    );
    for m in &jobs {
        env.ports.email_queue.ack(&m.receipt).await.unwrap();
    }

    assert_eq!(
        recipients(&env.outbox.emails(&subject).await),
        vec![U1_EMAIL.to_string(), U3_EMAIL.to_string()]
    );
    let n = notification(&env, &answer).await;
    assert_eq!((n.emails_sent, n.pushes_sent, n.delivered, n.status), (2, 3, 3, Status::Delivered));
    let settled = n.emails_sent + n.emails_opted_out + n.emails_no_address + n.emails_failed;
    assert_eq!((settled, n.emails_pending), (3, 0), "every recipient settled once; nothing pending");
}

/// An endpoint that is gone (deleted, as SNS does for an uninstalled app's token) is removed and does not fail the chunk.
async fn a_deleted_endpoint_removes_the_device(env: Env) {
    let registered = devices(&env, &[(1, "GCM"), (1, "APNS")]).await;
    let gone = registered[0].1.clone();
    // Unregistering through the API removes one; the other is disabled by the push service.
    let device_id = env
        .ports
        .devices
        .devices(user(1))
        .await
        .unwrap()
        .iter()
        .find(|d| d.endpoint_arn == registered[1].1)
        .unwrap()
        .device_id
        .clone();
    let path = format!("/users/{}/devices/{device_id}", user(1));
    let req = GatewayRequest::new("DELETE", "/users/{userId}/devices/{deviceId}", &path)
        .header("authorization", "Bearer demo-user-1-token")
        .path_param("userId", &user(1).to_string())
        .path_param("deviceId", &device_id);
    assert_eq!(inbox::handle(&env.ports, req.into_request()).await.status().as_u16(), 204);
    env.ports.push.delete_endpoint(&gone).await.unwrap();

    let (status, answer) =
        send(&env, json!({"version": 3, "type": "GT", "key": "3", "values": ["5"], "message": "hello"}))
            .await;
    assert_eq!(status, 200);
    settle(&env).await;
    let n = notification(&env, &answer).await;
    assert_eq!((n.status, n.delivered, n.pushes_sent, n.pushes_removed), (Status::Delivered, 1, 0, 1));
    assert!(env.ports.devices.devices(user(1)).await.unwrap().is_empty());
}

/// The app registers a token again after the push service disabled its endpoint (an invalid
/// token that became valid, a reinstalled app): the endpoint is enabled again and pushes reach
/// it. SNS answers CreatePlatformEndpoint with the existing, still disabled endpoint.
async fn registering_a_disabled_endpoint_again_enables_it(env: Env) {
    let token = random_token("GCM");
    let (status, first) = register(&env, 1, "GCM", &token).await;
    assert_eq!(status, 201, "{first}");
    let endpoint = env.ports.devices.devices(user(1)).await.unwrap()[0].endpoint_arn.clone();
    env.outbox.disable_endpoint(&endpoint).await;
    let (status, again) = register(&env, 1, "GCM", &token).await;
    assert_eq!((status, &again["deviceId"]), (200, &first["deviceId"]), "{again}");
    assert_eq!(
        env.ports.devices.devices(user(1)).await.unwrap()[0].endpoint_arn,
        endpoint,
        "the same endpoint"
    );

    let (status, answer) =
        send(&env, json!({"version": 3, "type": "GT", "key": "3", "values": ["5"], "message": "back"})).await;
    assert_eq!(status, 200);
    settle(&env).await;
    let n = notification(&env, &answer).await;
    assert_eq!((n.pushes_sent, n.pushes_removed), (1, 0), "pushed, not pruned");
    assert_eq!(env.outbox.pushes(&[endpoint]).await.len(), 1);
}

/// Devices: only their owner manages them; the same token twice is one device; bad input is a
/// 400 naming the field.
async fn device_registration_rules(env: Env) {
    let token = random_token("APNS");
    let (status, first) = register(&env, 1, "APNS", &token).await;
    assert_eq!(status, 201, "{first}");
    let (status, again) = register(&env, 1, "APNS", &token.to_uppercase()).await;
    assert_eq!((status, &again["deviceId"]), (200, &first["deviceId"]), "{again}");
    assert_eq!(env.ports.devices.devices(user(1)).await.unwrap().len(), 1);
    assert_eq!(again["tokenSuffix"], json!(&token[token.len() - 8..]));

    // The same token registered by another person moves to them.
    let (status, _) = register(&env, 3, "APNS", &token).await;
    assert_eq!(status, 201);
    assert!(env.ports.devices.devices(user(1)).await.unwrap().is_empty());
    assert_eq!(env.ports.devices.devices(user(3)).await.unwrap().len(), 1);

    let (status, bad) = register(&env, 1, "WNS", "abc").await;
    assert_eq!((status, bad["parameter"].clone()), (400, json!("platform")));
    let (status, bad) = register(&env, 1, "APNS", "not-hex").await;
    assert_eq!((status, bad["parameter"].clone()), (400, json!("token")));

    // Someone else's devices: refused.
    let path = format!("/users/{}/devices", user(3));
    let req = GatewayRequest::new("GET", "/users/{userId}/devices", &path)
        .header("authorization", "Bearer demo-user-1-token")
        .path_param("userId", &user(3).to_string());
    assert_eq!(inbox::handle(&env.ports, req.into_request()).await.status().as_u16(), 403);
    let req = GatewayRequest::new("GET", "/users/{userId}/devices", &path)
        .header("authorization", "Bearer demo-user-3-token")
        .path_param("userId", &user(3).to_string());
    let resp = inbox::handle(&env.ports, req.into_request()).await;
    assert_eq!(resp.status().as_u16(), 200);
    let listed: Value = serde_json::from_str(&body_text(&resp)).unwrap();
    assert_eq!(listed["devices"].as_array().unwrap().len(), 1);
    assert!(!body_text(&resp).contains(&token), "the full token is never shown");

    let path = format!("/users/{}/devices/nope", user(3));
    let req = GatewayRequest::new("DELETE", "/users/{userId}/devices/{deviceId}", &path)
        .header("authorization", "Bearer demo-user-3-token")
        .path_param("userId", &user(3).to_string())
        .path_param("deviceId", "nope");
    assert_eq!(inbox::handle(&env.ports, req.into_request()).await.status().as_u16(), 404);
}

/// Email rounds for tests: unpaced (to meet SES's limits), a second between rounds.
fn quick_rounds(env: &mut Env, max_rounds: u32) {
    let second = std::time::Duration::from_secs(1);
    env.ports.settings.email_sending = shared::settings::EmailSending {
        per_consumer: None,
        retry: shared::backoff::Backoff { base: second, cap: second, max_attempts: max_rounds },
        max_rounds,
    };
}

/// Runs the queues until the notification's emails are all settled (bounded), waiting out the
/// delays of later rounds.
async fn settle_emails(env: &Env, answer: &Value) -> Notification {
    for _ in 0..60 {
        settle(env).await;
        let n = notification(env, answer).await;
        if n.emails_pending == 0 {
            return n;
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
    panic!("emails still pending: {:?}", notification(env, answer).await);
}

/// SES's daily quota runs out half-way through a send: every recipient still gets the in-app
/// notification at once, the notification is Delivered (never Failed, no DLQ), the email that
/// fits the quota goes out, and the one that does not is counted failed after its rounds.
async fn an_exhausted_ses_quota_costs_no_in_app_delivery(mut env: Env) {
    quick_rounds(&mut env, 3);
    env.limit_email(100, 1).await;
    let subject = subject("Quota");
    let (status, answer) = send(&env, ga(&subject, json!([]))).await;
    assert_eq!(status, 200, "{answer}");
    settle(&env).await;

    let n = notification(&env, &answer).await;
    assert_eq!((n.status, n.delivered), (Status::Delivered, 3), "in-app is not held by email: {n:?}");
    for u in [1, 3, 4] {
        assert!(env.ports.inbox.get(user(u), n.id).await.unwrap().is_some(), "u{u} has the item");
    }
    assert_eq!(n.emails_pending, 3, "the job waits for the quota, and counts its recipients when it settles");

    let n = settle_emails(&env, &answer).await;
    assert_eq!(env.outbox.emails(&subject).await.len(), 1, "the quota let one through");
    assert_eq!(
        (n.emails_sent, n.emails_failed, n.emails_opted_out, n.emails_no_address, n.emails_pending),
        (1, 1, 1, 0, 0),
        "every recipient counted once"
    );
    assert_eq!(n.status, Status::Delivered, "email outcomes never fail the notification");
    assert!(env.delivery_dlq.receive(10).await.unwrap().is_empty(), "no chunk reached the DLQ");
}

/// SES throttles at one email a second: the job sends what it may, continues in a later round
/// for the rest, and every address gets its email exactly once.
async fn throttled_emails_continue_later_and_go_out_once(mut env: Env) {
    quick_rounds(&mut env, 10);
    env.limit_email(1, 1000).await;
    let subject = subject("Throttled");
    let (status, answer) = send(&env, ga(&subject, json!([]))).await;
    assert_eq!(status, 200, "{answer}");
    settle(&env).await;
    let n = notification(&env, &answer).await;
    assert_eq!((n.status, n.delivered), (Status::Delivered, 3));

    let n = settle_emails(&env, &answer).await;
    assert_eq!(
        recipients(&env.outbox.emails(&subject).await),
        vec![U1_EMAIL.to_string(), U3_EMAIL.to_string()],
        "each address once"
    );
    assert_eq!((n.emails_sent, n.emails_failed, n.emails_opted_out, n.emails_pending), (2, 0, 1, 0));
}

/// An SES event record as the email events topic delivers it (raw).
fn ses_event(kind: &str, address: &str, message_id: &str, notification: Uuid, bounce_type: &str) -> Value {
    let mail = json!({
        "timestamp": "2026-11-26T10:00:00.000Z",
        "messageId": message_id,
        "destination": [address],
        "tags": {"notification": [notification.to_string()], "ses:configuration-set": ["notifications"]},
    });
    match kind {
        "Bounce" => json!({"eventType": "Bounce", "mail": mail, "bounce": {
            "bounceType": bounce_type, "bounceSubType": "General", "timestamp": "2026-11-26T10:00:05.000Z",
            "bouncedRecipients": [{"emailAddress": address, "action": "failed", "status": "5.1.1"}]}}),
        "Complaint" => json!({"eventType": "Complaint", "mail": mail, "complaint": {
            "timestamp": "2026-11-26T10:01:00.000Z", "complaintFeedbackType": "abuse",
            "complainedRecipients": [{"emailAddress": address}]}}),
        other => json!({"eventType": other, "mail": mail}),
    }
}

async fn email_status(env: &Env, token: &str, owner: u8) -> (u16, Value) {
    let path = format!("/users/{}/email", user(owner));
    let req = GatewayRequest::new("GET", "/users/{userId}/email", &path)
        .header("authorization", &format!("Bearer {token}"))
        .path_param("userId", &user(owner).to_string());
    let resp = inbox::handle(&env.ports, req.into_request()).await;
    (resp.status().as_u16(), serde_json::from_str(&body_text(&resp)).unwrap_or(Value::Null))
}

/// SES reports a permanent bounce of u1's email and a complaint about u3's, some twice and one
/// in SNS's envelope: each counts once on the notification, neither address is mailed again
/// (the next send counts them suppressed, before SES is asked), and each person sees why. A
/// transient bounce and a delivery change nothing.
async fn bounces_and_complaints_stop_mailing_and_are_counted(env: Env) {
    let first = subject("Bounce");
    let (status, answer) = send(&env, ga(&first, json!([]))).await;
    assert_eq!(status, 200, "{answer}");
    settle(&env).await;
    let n = notification(&env, &answer).await;
    assert_eq!(n.emails_sent, 2);

    let bounce = ses_event("Bounce", U1_EMAIL, "ses-m1", n.id, "Permanent");
    let complaint = ses_event("Complaint", &U3_EMAIL.to_uppercase(), "ses-m3", n.id, "");
    let enveloped = json!({"Type": "Notification", "MessageId": "sns-1", "TopicArn": "arn:aws:sns:us-east-1:123456789012:t",
        "Message": complaint.to_string()});
    let events = [
        bounce.clone(),
        ses_event("Bounce", U1_EMAIL, "ses-m1", n.id, "Transient"),
        ses_event("Delivery", U1_EMAIL, "ses-m1", n.id, ""),
        complaint,
        bounce,
        enveloped,
    ];
    assert_eq!(env.ses_events(&events).await, Vec::<String>::new(), "every event handled");
    let n = notification(&env, &answer).await;
    assert_eq!((n.emails_bounced, n.emails_complained), (1, 1), "once per email and kind");

    let (status, u1) = email_status(&env, "demo-user-1-token", 1).await;
    assert_eq!(status, 200, "{u1}");
    assert_eq!((u1["status"].as_str(), u1["reason"].as_str()), (Some("suppressed"), Some("bounce")), "{u1}");
    assert_eq!(u1["address"], U1_EMAIL.to_ascii_lowercase());
    let (_, u3) = email_status(&env, "demo-user-3-token", 3).await;
    assert_eq!(
        (u3["status"].as_str(), u3["reason"].as_str()),
        (Some("suppressed"), Some("complaint")),
        "{u3}"
    );
    let (_, u2) = email_status(&env, "demo-user-2-token", 2).await;
    assert_eq!(u2["status"], "active", "{u2}");
    assert!(u2.get("reason").is_none());
    assert_eq!(email_status(&env, "demo-user-1-token", 3).await.0, 403, "only one's own");
    assert_eq!(email_status(&env, "nope", 1).await.0, 401);
    let req = GatewayRequest::new("GET", "/users/{userId}/email", "/users/x/email")
        .header("authorization", "Bearer demo-user-1-token")
        .path_param("userId", "x");
    let resp = inbox::handle(&env.ports, req.into_request()).await;
    assert_eq!(resp.status().as_u16(), 400);
    assert!(body_text(&resp).contains("userId"), "names the field");

    let second = subject("After the bounce");
    let (_, answer) = send(&env, ga(&second, json!([]))).await;
    let n = settle_emails(&env, &answer).await;
    assert!(env.outbox.emails(&second).await.is_empty(), "suppressed addresses are not mailed");
    assert_eq!((n.emails_sent, n.emails_suppressed, n.emails_opted_out), (0, 2, 1));
    let record = shared::dialects::sent_history::SentRecord::from(&n);
    let record = serde_json::to_value(record).unwrap();
    assert_eq!((record["emailsSuppressed"].as_u64(), record["emailsPending"].as_u64()), (Some(2), Some(0)));
}

/// Runs the queues until the notification's pushes are all counted (bounded), waiting out the
/// delays of the push job's later rounds.
async fn settle_pushes(env: &Env, answer: &Value, devices: u64) -> Notification {
    for _ in 0..60 {
        settle(env).await;
        let n = notification(env, answer).await;
        if n.pushes_sent + n.pushes_failed + n.pushes_removed >= devices {
            return n;
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
    panic!("pushes still uncounted: {:?}", notification(env, answer).await);
}

/// SNS refuses a chunk's pushes for a while (throttling, 5xx): the chunk is recorded all the
/// same — its people have the notification at once and it is Delivered — and its pushes continue
/// as the chunk's push job, which publishes each device once and counts them once. Pushes SNS
/// never takes are counted failed after the job's rounds, and the notification stays Delivered:
/// no push fails, repeats or gives up an in-app delivery.
async fn a_push_failure_never_fails_the_chunk(mut env: Env) {
    let second = std::time::Duration::from_secs(1);
    env.ports.settings.push_retry = shared::backoff::Backoff { base: second, cap: second, max_attempts: 3 };
    let registered = devices(&env, &[(1, "GCM"), (3, "APNS"), (4, "GCM")]).await;
    let endpoints: Vec<String> = registered.iter().map(|(_, arn)| arn.clone()).collect();
    let faults = Faults::none();
    env.ports = faulty(&env.ports, &faults);
    // The chunk's round and its push job's first round each stop at their first publish, which
    // fails (a transient failure stops new publishes: more would only earn more refusals).
    for _ in 0..2 {
        faults.fail_next("publish");
    }
    let (status, answer) = send(&env, ga(&subject("Pushes later"), json!([]))).await;
    assert_eq!(status, 200, "{answer}");
    settle(&env).await;
    let n = notification(&env, &answer).await;
    assert_eq!((n.status, n.delivered), (Status::Delivered, 3), "in-app is not held by SNS: {n:?}");
    for u in [1, 3, 4] {
        assert!(env.ports.inbox.get(user(u), n.id).await.unwrap().is_some(), "u{u} has the item");
    }
    assert!(env.delivery_dlq.receive(10).await.unwrap().is_empty(), "no chunk failed for a push");
    let n = settle_pushes(&env, &answer, 3).await;
    assert_eq!((n.pushes_sent, n.pushes_failed, n.pushes_removed), (3, 0, 0), "{n:?}");
    let mut pushed: Vec<String> =
        env.outbox.pushes(&endpoints).await.into_iter().map(|p| p.endpoint).collect();
    pushed.sort();
    let mut expected = endpoints.clone();
    expected.sort();
    assert_eq!(pushed, expected, "one push per device, after SNS came back");
    assert_eq!(faults.reached().get("publish failed"), Some(&2), "{:?}", faults.reached());

    // SNS never takes them: counted failed after the rounds; the notification stays Delivered.
    for _ in 0..100 {
        faults.fail_next("publish");
    }
    let (status, answer) = send(&env, ga(&subject("Pushes never"), json!([]))).await;
    assert_eq!(status, 200, "{answer}");
    let n = settle_pushes(&env, &answer, 3).await;
    assert_eq!((n.status, n.delivered), (Status::Delivered, 3));
    assert_eq!((n.pushes_sent, n.pushes_failed), (0, 3), "{n:?}");
    assert!(env.delivery_dlq.receive(10).await.unwrap().is_empty());
}

/// Jobs that failed every receive reach their dead-letter queues (a push job the DeliveryQueue's,
/// an email job the EmailQueue's), and deliver, consuming them, counts what they would still have
/// sent failed (and the rest as a round would: u4 opted out), once, however often a dead letter
/// is handed out: nobody stays pending, nothing is sent, and the notification stays Delivered
/// (its in-app delivery is done).
async fn dead_lettered_jobs_count_what_they_left_failed(mut env: Env) {
    // The push job visible at once (its backoff is SQS's business, not this test's).
    let now = std::time::Duration::ZERO;
    env.ports.settings.push_retry = shared::backoff::Backoff { base: now, cap: now, max_attempts: 8 };
    let registered = devices(&env, &[(1, "GCM"), (3, "APNS"), (4, "GCM")]).await;
    let endpoints: Vec<String> = registered.iter().map(|(_, arn)| arn.clone()).collect();
    let faults = Faults::none();
    let failing = faulty(&env.ports, &faults);
    for _ in 0..3 {
        faults.fail_next("publish");
    }
    let subject = subject("Dead jobs");
    let (status, answer) = send(&env, ga(&subject, json!([]))).await;
    assert_eq!(status, 200, "{answer}");
    local::workers::drain_fanout_once(&env.ports).await.unwrap();
    local::workers::drain_delivery_once(&failing, env.max_receives).await.unwrap();
    let n = notification(&env, &answer).await;
    assert_eq!((n.status, n.delivered, n.emails_pending), (Status::Delivered, 3, 3), "{n:?}");
    // The push job and the email job, as their dead-letter queues hand them to deliver.
    let push_jobs = env.ports.delivery_queue.receive(10).await.unwrap();
    let email_jobs = env.ports.email_queue.receive(10).await.unwrap();
    assert_eq!((push_jobs.len(), email_jobs.len()), (1, 1), "one job of each");
    assert!(push_jobs[0].body.contains("pushRound"), "{}", push_jobs[0].body);
    let settle_dead = |source: &'static str, jobs: &[shared::ports::ReceivedMessage]| {
        let event = local::workers::sqs_event(source, jobs);
        let env = &env;
        async move { deliver::handle(&env.ports, env.max_receives, event).await.batch_item_failures.len() }
    };
    // Copies of the jobs still running hold their leases: their dead letters wait for them.
    let now = shared::ports::Clock::now(env.clock.as_ref());
    let lease = now + chrono::Duration::seconds(75);
    let works = [shared::ports::Work::PushJob(0), shared::ports::Work::EmailJob { chunk: 0, part: 0 }];
    for work in works {
        let live = env.ports.notifications.start(n.id, work, "live copy", now, lease).await.unwrap();
        assert_ne!(live, shared::ports::ChunkStart::Held, "{work:?}");
    }
    assert_eq!(settle_dead(local::workers::DELIVERY_DEAD_LETTER_QUEUE_ARN, &push_jobs).await, 1, "waits");
    assert_eq!(settle_dead(local::workers::EMAIL_DEAD_LETTER_QUEUE_ARN, &email_jobs).await, 1, "waits");
    let waited = notification(&env, &answer).await;
    assert_eq!((waited.pushes_sent + waited.pushes_failed, waited.emails_pending), (0, 3), "nothing counted");
    for work in works {
        env.ports.notifications.release(n.id, work, "live copy", lease).await.unwrap();
    }
    for _ in 0..2 {
        for (source, jobs) in [
            (local::workers::DELIVERY_DEAD_LETTER_QUEUE_ARN, &push_jobs),
            (local::workers::EMAIL_DEAD_LETTER_QUEUE_ARN, &email_jobs),
        ] {
            let event = local::workers::sqs_event(source, jobs);
            let answer = deliver::handle(&env.ports, env.max_receives, event).await;
            assert!(answer.batch_item_failures.is_empty(), "settled: {answer:?}");
        }
    }
    env.ports.delivery_queue.ack(&push_jobs[0].receipt).await.unwrap();
    env.ports.email_queue.ack(&email_jobs[0].receipt).await.unwrap();
    let n = notification(&env, &answer).await;
    let pushed = env.outbox.pushes(&endpoints).await.len() as u64;
    assert_eq!(n.status, Status::Delivered, "{n:?}");
    assert_eq!((n.pushes_sent, n.pushes_sent + n.pushes_failed), (pushed, 3), "{n:?}");
    // u1 and u3 would have been mailed: failed; u4 opted out of the asset's emails.
    assert_eq!((n.emails_sent, n.emails_failed, n.emails_opted_out, n.emails_pending), (0, 2, 1, 0), "{n:?}");
    assert!(env.outbox.emails(&subject).await.is_empty(), "nothing sent by a dead letter");
}

/// A chunk recorded before its email jobs could be queued, then dead-lettered (its queue sends
/// failed at every receive): deliver, consuming its dead letter, queues its jobs; each address is
/// emailed once and nothing stays pending.
async fn a_dead_lettered_recorded_chunk_queues_its_jobs(env: Env) {
    let subject = subject("Recorded, then dead");
    let (status, answer) = send(&env, ga(&subject, json!([]))).await;
    assert_eq!(status, 200, "{answer}");
    local::workers::drain_fanout_once(&env.ports).await.unwrap();
    let chunks = env.ports.delivery_queue.receive(10).await.unwrap();
    let event = local::workers::sqs_event(local::workers::DELIVERY_QUEUE_ARN, &chunks);
    assert!(deliver::handle(&env.ports, env.max_receives, event).await.batch_item_failures.is_empty());
    env.ports.delivery_queue.ack(&chunks[0].receipt).await.unwrap();
    // Its email jobs never made it to the queue.
    for lost in env.ports.email_queue.receive(10).await.unwrap() {
        env.ports.email_queue.ack(&lost.receipt).await.unwrap();
    }
    let event = local::workers::sqs_event(local::workers::DELIVERY_DEAD_LETTER_QUEUE_ARN, &chunks);
    assert!(deliver::handle(&env.ports, env.max_receives, event).await.batch_item_failures.is_empty());
    let n = settle_emails(&env, &answer).await;
    assert_eq!((n.status, n.emails_sent, n.emails_pending), (Status::Delivered, 2, 0), "{n:?}");
    let mut to = recipients(&env.outbox.emails(&subject).await);
    to.sort();
    assert_eq!(to.len(), 2, "u1 and u3, once each: {to:?}");
    to.dedup();
    assert_eq!(to.len(), 2, "once each");
}

end_to_end!(
    dead_lettered_jobs_count_what_they_left_failed,
    a_dead_lettered_recorded_chunk_queues_its_jobs,
    a_push_failure_never_fails_the_chunk,
    bounces_and_complaints_stop_mailing_and_are_counted,
    an_exhausted_ses_quota_costs_no_in_app_delivery,
    throttled_emails_continue_later_and_go_out_once,
    the_largest_email_body_is_stored_and_one_byte_more_is_refused,
    registering_a_disabled_endpoint_again_enables_it,
    ga_emails_two_people_and_pushes_three,
    the_html_body_template_renders_email_body,
    email_mistakes_are_400_at_send_time,
    following_the_unsubscribe_link_stops_the_next_email,
    a_redelivered_chunk_sends_no_duplicate_email_or_push,
    a_deleted_endpoint_removes_the_device,
    device_registration_rules,
);

/// Twelve people on a job, against a mailer that takes four emails a second: the job paced as
/// one of the two consumers of an account sending eight a second is never throttled and
/// finishes in its first round; the same job unpaced is throttled and continues later.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_paced_to_the_account_rate_is_never_throttled() {
    use shared::directory::{DirectorySnapshot, UserRecord};
    use shared::service::emails::{self, EmailOutcome};
    for paced in [true, false] {
        let memory = shared::runtime::MemoryPorts::new(
            std::sync::Arc::new(shared::ports::SystemClock),
            std::sync::Arc::new(shared::ports::RandomIds),
        );
        memory.load_demo_directory().await.unwrap();
        let users: Vec<UserRecord> = (0..12u64)
            .map(|i| UserRecord {
                id: Uuid::from_u128(0xfeed_0000 + u128::from(i)),
                number: 9000 + i,
                company_id: 3,
                email: format!("paced{i}@example.com"),
                first_name: String::new(),
                roles: Vec::new(),
                token_sha256: format!("{i:064}"),
                token_expires_at: None,
            })
            .collect();
        let recipients: Vec<UserId> = users.iter().map(|u| u.id).collect();
        memory.directory_load(&DirectorySnapshot { users, ..DirectorySnapshot::default() }).await;
        let mut ports = memory.ports.clone();
        ports.settings.email_sending = match paced {
            true => shared::settings::EmailSending::for_account_rate(8.0),
            false => shared::settings::EmailSending::unpaced(),
        };
        memory.mailer.limit(4, 1000);

        let mut n = Notification::new(
            Uuid::new_v4(),
            1,
            3,
            Origin::GroupSend,
            BroadcastType::GT,
            Audience::Users { user_ids: recipients.clone() },
            Content { title: "t".into(), body: "b".into(), ..Content::default() },
            "1".into(),
            chrono::Utc::now(),
        );
        n.email = Some(EmailSpec {
            template: shared::email::HTML_BODY_TEMPLATE.into(),
            subject: "Paced".into(),
            params: Vec::new(),
            body: None,
        });
        ports.notifications.insert(&n).await.unwrap();
        let job = EmailJob {
            notification_id: n.id,
            chunk: 0,
            email_part: 0,
            recipients,
            round: 0,
            hand_overs: None,
        };
        let outcome =
            emails::send_job(&ports.email_jobs(), &job, "m1", shared::service::deadline::Deadline::NONE)
                .await
                .unwrap();
        if paced {
            assert_eq!(outcome, EmailOutcome::Recorded { sent: 12, gave_up: false }, "paced: one round");
            assert_eq!(memory.mailer.sent().len(), 12);
        } else {
            assert!(matches!(outcome, EmailOutcome::Continued { round: 1, .. }), "unpaced: {outcome:?}");
            assert_eq!(memory.mailer.sent().len(), 4, "SES took its four; the rest wait for a later round");
        }
    }
}
