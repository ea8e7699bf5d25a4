//! Notifying one person, end to end against memory and moto: department notify (sync, delay,
//! signed callbacks with retries), desktop assistant (feature switch), in-app notifications
//! (priority, toast, expiry, override, actions), and the notification center.

use base64::Engine;
use chrono::Duration;
use hmac::Mac;
use serde_json::{Value, json};
use shared::http::{GatewayRequest, body_text};
use shared::model::{BroadcastType, HistoryScope, PageRequest};
use tests::hooks::Receiver;
use tests::{Env, end_to_end};

const U1: &str = "11111111-1111-4111-8111-111111111111";
const U5: &str = "55555555-5555-4555-8555-555555555555";
const DEPT: &str = "d0000000-0000-4000-8000-000000000001";

fn basic(id: &str, secret: &str) -> String {
    format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}")))
}

async fn department_notify(env: &Env, auth: &str, user: &str, body: &Value) -> (u16, Value) {
    department_notify_to(env, DEPT, auth, user, body).await
}

async fn department_notify_to(env: &Env, dept: &str, auth: &str, user: &str, body: &Value) -> (u16, Value) {
    let path = format!("/communications/department/{dept}/user/{user}/notify");
    let req = GatewayRequest::new(
        "POST",
        "/communications/department/{departmentUUID}/user/{userUUID}/notify",
        &path,
    )
    .path_param("departmentUUID", dept)
    .path_param("userUUID", user)
    .header("authorization", auth)
    .body(body.to_string());
    let resp = notify::handle(&env.ports, req.into_request()).await;
    (resp.status().as_u16(), serde_json::from_str(&body_text(&resp)).unwrap_or(Value::Null))
}

async fn post(env: &Env, path: &str, token: &str, body: &Value) -> (u16, Value) {
    let req = GatewayRequest::new("POST", path, path)
        .header("authorization", &format!("Bearer {token}"))
        .body(body.to_string());
    let resp = notify::handle(&env.ports, req.into_request()).await;
    (resp.status().as_u16(), serde_json::from_str(&body_text(&resp)).unwrap_or(Value::Null))
}

async fn center(env: &Env, token: &str, user: &str, query: &str) -> (u16, Value) {
    let path = format!("/users/{user}/notifications");
    let req = GatewayRequest::new("GET", "/users/{userId}/notifications", &path)
        .path_param("userId", user)
        .query(query)
        .header("authorization", &format!("Bearer {token}"));
    let resp = inbox::handle(&env.ports, req.into_request()).await;
    (resp.status().as_u16(), serde_json::from_str(&body_text(&resp)).unwrap_or(Value::Null))
}

async fn dismiss(env: &Env, method: &str, token: &str, user: &str, id: &str) -> u16 {
    let path = format!("/users/{user}/notifications/{id}/dismiss");
    let req = GatewayRequest::new(method, "/users/{userId}/notifications/{id}/dismiss", &path)
        .path_param("userId", user)
        .path_param("id", id)
        .header("authorization", &format!("Bearer {token}"));
    inbox::handle(&env.ports, req.into_request()).await.status().as_u16()
}

async fn settle(env: &Env) {
    local::workers::run_until_idle(&env.ports, env.max_receives).await.unwrap();
}

fn titles(list: &Value) -> Vec<String> {
    list["notifications"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["title"].as_str().unwrap().to_string())
        .collect()
}

/// A callback receiver on loopback that answers with the given statuses in turn (then 200).
async fn receiver(statuses: Vec<u16>) -> Receiver {
    Receiver::start(statuses).await
}

/// What a receiver got: each callback's signature and body.
fn seen(hook: &Receiver) -> Vec<(String, String)> {
    hook.posts().iter().map(|p| (p.header("x-signature-sha256").to_string(), p.body.clone())).collect()
}

fn verify_signature(sig: &str, body: &str) {
    let key = hex::decode(shared::credentials::digest("demo-secret")).unwrap();
    let mut mac = <hmac::Hmac<sha2::Sha256> as Mac>::new_from_slice(&key).unwrap();
    mac.update(body.as_bytes());
    assert_eq!(
        sig,
        format!("sha256={}", hex::encode(mac.finalize().into_bytes())),
        "the department can verify the callback"
    );
}

fn spec_department_body(callback: &str) -> Value {
    json!({
        "messageAttributes": {
            "body": "Your case 4711 has been updated", "type": "MESSAGE", "protocol": "TEXT", "purpose": "F", "isManual": true,
            "subject": "Case update", "metaData": {"case": 4711}, "tags": ["TRASH"],
            "attachments": [{"fileURL": "https://files.example.com/a.pdf", "attachmentExtension": "pdf", "mimeType": "application/pdf", "originalFileName": "a.pdf", "docSize": "1024", "thumbnailURL": "https://files.example.com/a.png", "mediaPreviewURL": "https://files.example.com/a"}],
            "defaultReplyAction": "REPLY", "updateThreadTimestamp": true, "updateTotalMessageCount": true, "showInCustomerConversation": true
        },
        "notificationAttributes": {
            "internalSubscribersNotifierPop": true, "externalSubscribersNotifierPop": true, "threadOwnerNotifierPop": true, "sendPhoneNotification": true,
            "additionalNotifierNotificationDAUUIDs": [],
            "notificationButtons": [{"buttonTextTranslationWidgetKey": "w", "buttonTextTranslationKey": "k", "buttonDefaultText": "Open case", "buttonTheme": "PRIMARY", "buttonActionEventData": {"case": 4711}, "isPrimaryButton": true}],
            "bodyTagsForSpecialRendering": {}
        },
        "messageSendingAttributesLite": {"delay": 0, "sendSynchronously": true, "callBackUrl": callback, "callBackMetadata": {"ticket": "T-1"}}
    })
}

async fn department_notify_delivers_synchronously_and_calls_back_signed(env: Env) {
    let hook = receiver(vec![500, 503]).await;
    let (status, body) =
        department_notify(&env, &basic("demo-dept", "demo-secret"), U1, &spec_department_body(&hook.url))
            .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "SUCCESS");
    assert!(body["errors"].as_array().unwrap().is_empty());
    assert!(body["requestUUID"].as_str().unwrap().len() == 36);
    let warned: Vec<&str> = body["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["warningDescription"].as_str().unwrap())
        .collect();
    assert!(
        warned.iter().any(|w| w.starts_with("notificationAttributes.sendPhoneNotification")),
        "{warned:?}"
    );
    let id = body["notificationMessageUUID"].as_str().unwrap().to_string();

    // Delivered before the answer: in u1's center at once, fields intact.
    let (_, list) = center(&env, "demo-user-1-token", U1, "").await;
    let item =
        list["notifications"].as_array().unwrap().iter().find(|n| n["id"] == id.as_str()).cloned().unwrap();
    assert_eq!(
        (item["title"].as_str(), item["body"].as_str(), item["source"].as_str()),
        (Some("Case update"), Some("Your case 4711 has been updated"), Some("Support"))
    );
    let data: Value = serde_json::from_str(item["data"].as_str().unwrap()).unwrap();
    assert_eq!(data["notificationButtons"][0]["buttonDefaultText"], "Open case");
    assert_eq!(data["metaData"]["case"], 4711);

    // The answer did not wait for the callback (its tries could outlast the API's 10 s): a
    // fan-out job sends it right after. It failed twice (500, 503) and arrived on the third
    // try, signed.
    assert!(hook.posts().is_empty(), "no callback inside the synchronous request");
    settle(&env).await;
    let seen = seen(&hook);
    assert_eq!(seen.len(), 3, "two failures, then success");
    let (sig, text) = seen.last().unwrap();
    verify_signature(sig, text);
    let cb: Value = serde_json::from_str(text).unwrap();
    assert_eq!(
        (cb["notificationMessageUUID"].as_str(), cb["status"].as_str()),
        (Some(id.as_str()), Some("SUCCESS"))
    );
    assert_eq!(cb["callBackMetadata"], json!({"ticket": "T-1"}));
    assert_eq!(cb["requestUUID"], body["requestUUID"]);
    let n = env.ports.notifications.get(id.parse().unwrap()).await.unwrap().unwrap();
    let result = n.callback_result.unwrap();
    assert_eq!((result.delivered, result.attempts), (true, 3));
}

async fn callbacks_never_reach_internal_addresses(env: Env) {
    for url in ["http://169.254.169.254/latest/meta-data/", "http://10.0.0.1/hook", "http://[fd00::1]/hook"] {
        let (status, body) =
            department_notify(&env, &basic("demo-dept", "demo-secret"), U1, &spec_department_body(url)).await;
        assert_eq!((status, body["status"].as_str()), (200, Some("SUCCESS")), "{body}");
        let id = body["notificationMessageUUID"].as_str().unwrap().parse().unwrap();
        settle(&env).await;
        let result = env.ports.notifications.get(id).await.unwrap().unwrap().callback_result.unwrap();
        assert!(!result.delivered, "{url}");
        assert_eq!(result.attempts, 1, "a refused destination is not retried");
        assert!(result.error.unwrap().contains("not an address callbacks may reach"), "{url}");
    }
}

async fn department_notify_async_and_delayed(env: Env) {
    let hook = receiver(vec![]).await;
    let mut body = spec_department_body(&hook.url);
    body["messageSendingAttributesLite"]["sendSynchronously"] = json!(false);
    body["messageSendingAttributesLite"]["delay"] = json!(120);
    let (status, answer) = department_notify(&env, &basic("demo-dept", "demo-secret"), U5, &body).await;
    assert_eq!((status, answer["status"].as_str()), (200, Some("SUCCESS")));
    settle(&env).await;
    let (_, list) = center(&env, "demo-user-5-token", U5, "").await;
    assert!(titles(&list).is_empty(), "not before its delay");
    assert!(hook.posts().is_empty());
    env.clock.set(tests::t0() + Duration::seconds(121));
    local::workers::tick(&env.ports).await.unwrap();
    settle(&env).await;
    let (_, list) = center(&env, "demo-user-5-token", U5, "").await;
    assert_eq!(titles(&list), vec!["Case update"]);
    assert_eq!(hook.posts().len(), 1, "one callback after delivery");
    // Another tick and a redelivery send no second callback.
    local::workers::tick(&env.ports).await.unwrap();
    settle(&env).await;
    assert_eq!(hook.posts().len(), 1);
}

async fn department_errors_keep_the_dialect_shape(env: Env) {
    let ok = json!({"messageAttributes": {"body": "hi"}});
    let good = basic("demo-dept", "demo-secret");
    for (auth, user, body, status) in [
        ("".to_string(), U1, ok.clone(), 401),
        (basic("demo-dept", "wrong"), U1, ok.clone(), 401),
        (basic("other", "demo-secret"), U1, ok.clone(), 401),
        ("Bearer demo-admin-token".to_string(), U1, ok.clone(), 401),
        (good.clone(), "99999999-9999-4999-8999-999999999999", ok.clone(), 404),
        (good.clone(), "not-a-uuid", ok.clone(), 404),
        (good.clone(), U1, json!({"messageAttributes": {"body": "hi", "type": "YELL"}}), 400),
        (good.clone(), U1, json!([1]), 400),
    ] {
        let (got, answer) = department_notify(&env, &auth, user, &body).await;
        assert_eq!(got, status, "{answer}");
        assert_eq!(answer["status"], "FAILURE");
        assert!(answer["notificationMessageUUID"].is_null());
        let errors = answer["errors"].as_array().unwrap();
        assert!(
            !errors.is_empty()
                && errors.iter().all(|e| e["errorCode"].is_string() && e["errorUID"].is_string())
        );
        if status == 400 && body.is_object() {
            assert!(errors[0]["errorDescription"].as_str().unwrap().starts_with("messageAttributes.type"));
        }
    }
    // Credentials first: an unknown department answers exactly as wrong credentials do, so its
    // answer tells nobody which department ids exist.
    let (_, wrong) = department_notify(&env, &basic("demo-dept", "wrong"), U1, &ok).await;
    for dept in ["99999999-9999-4999-8999-999999999999", "not-a-uuid"] {
        for auth in [good.clone(), basic("demo-dept", "wrong")] {
            let (got, answer) = department_notify_to(&env, dept, &auth, U1, &ok).await;
            assert_eq!(got, 401, "{dept}: {answer}");
            assert_eq!(answer["errors"][0]["errorCode"], wrong["errors"][0]["errorCode"]);
            assert_eq!(answer["errors"][0]["errorDescription"], wrong["errors"][0]["errorDescription"]);
        }
    }
}

async fn desktop_assistant_reaches_u1_and_u5_and_respects_the_switch(env: Env) {
    let body = json!({"notification_title": "Incident Assigned to You", "notification_message": "INC0001234 has been assigned to your group. Please review.",
        "recipient_list": "11111111111141118111111111111111, 55555555555545558555555555555555", "referrer_table": "incident", "referrer_id": "a1b2c3", "source": "mim"});
    let (status, answer) = post(&env, "/desktop-assistant/notifications", "demo-admin-token", &body).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["responseCode"], 200);
    assert!(answer["metadata"]["notification_id"].as_str().is_some());
    settle(&env).await;
    for (token, user) in [("demo-user-1-token", U1), ("demo-user-5-token", U5)] {
        let (_, list) = center(&env, token, user, "").await;
        let item = &list["notifications"][0];
        assert_eq!(
            (item["title"].as_str(), item["source"].as_str()),
            (Some("Incident Assigned to You"), Some("mim"))
        );
        assert_eq!(item["id"], answer["metadata"]["notification_id"]);
        let data: Value = serde_json::from_str(item["data"].as_str().unwrap()).unwrap();
        assert_eq!(
            (data["referrer_table"].as_str(), data["referrer_id"].as_str()),
            (Some("incident"), Some("a1b2c3"))
        );
    }

    // Company 4 has the switch off: 400 at once, nothing created.
    let to_u9 = json!({"notification_message": "m", "recipient_list": "99999999999949998999999999999999", "source": "pe"});
    let (status, answer) = post(&env, "/desktop-assistant/notifications", "demo-admin-4-token", &to_u9).await;
    assert_eq!((status, answer["responseCode"].as_u64()), (400, Some(400)));
    assert!(answer["message"].as_str().unwrap().contains("enable_push_notification"));
    let scope = HistoryScope::CompanyType { company_id: 4, broadcast_type: BroadcastType::UN };
    assert!(env.ports.notifications.history(&scope, &PageRequest::first(10)).await.unwrap().items.is_empty());
    assert!(env.ports.fanout_queue.receive(10).await.unwrap().is_empty());

    for (token, body, status) in [
        ("demo-user-1-token", body.clone(), 403),
        ("nope", body.clone(), 401),
        (
            "demo-admin-token",
            json!({"notification_message": "m", "recipient_list": "99999999999949998999999999999999", "source": "pe"}),
            400,
        ),
        (
            "demo-admin-token",
            json!({"notification_message": "m", "recipient_list": "11111111111141118111111111111111", "source": "email"}),
            400,
        ),
    ] {
        let (got, answer) = post(&env, "/desktop-assistant/notifications", token, &body).await;
        assert_eq!((got, answer["responseCode"].as_u64()), (status, Some(status as u64)), "{answer}");
        assert!(!answer["message"].as_str().unwrap().is_empty());
    }
}

fn app(title: &str, extra: Value) -> Value {
    let mut body =
        json!({"Title": title, "Body": format!("{title} body"), "Recipient": format!("/systemusers({U1})")});
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    body
}

async fn app_notifications_land_with_their_fields(env: Env) {
    let examples = [
        app("Welcome", json!({"IconType": 100000000, "ToastType": 200000000})),
        app(
            "SLA critical",
            json!({"IconType": 100000003, "ToastType": 200000000, "OverrideContent": {"@odata.type": "#Microsoft.Dynamics.CRM.expando", "title": "**SLA critical**", "body": "Case record [Complete overhaul required (sample)](?pagetype=entityrecord&etn=incident&id=0a9f62a8-90df-e311-9565-a45d36fc5fe8) assigned is critically past SLA and has been escalated to your manager."}}),
        ),
        app(
            "Congratulations",
            json!({"IconType": 100000001, "ToastType": 200000000, "Actions": {"@odata.type": "Microsoft.Dynamics.CRM.expando", "actions@odata.type": "#Collection(Microsoft.Dynamics.CRM.expando)", "actions": [{"title": "View cases", "data": {"@odata.type": "#Microsoft.Dynamics.CRM.expando", "type": "url", "url": "?pagetype=entitylist&etn=incident&viewid=00000000-0000-0000-00aa-000010001028&viewType=1039", "navigationTarget": "newWindow"}}]}}),
        ),
        app(
            "New task",
            json!({"IconType": 100000000, "ToastType": 200000000, "Actions": {"actions": [
            {"title": "View task", "data": {"type": "sidepane", "paneOptions": {"title": "Task Record", "width": 400}, "navigationTarget": {"pageType": "entityrecord", "entityName": "task", "entityId": "t-1"}}},
            {"title": "View account", "data": {"type": "sidepane", "paneOptions": {"title": "Account Record", "width": 400}, "navigationTarget": {"pageType": "entityrecord", "entityName": "account", "entityId": "a-1"}}}]}}),
        ),
        app(
            "New order posted",
            json!({"IconType": 100000000, "ToastType": 200000000, "Actions": {"actions": [{"title": "Chat with sales rep", "data": {"type": "teamsChat", "memberIds@odata.type": "#Collection(String)", "memberIds": ["m-1", "m-2"], "entityContext": {"entityName": "account", "recordId": "a-1"}}}]}}),
        ),
    ];
    let mut ids = Vec::new();
    for (i, body) in examples.iter().enumerate() {
        env.clock.set(tests::t0() + Duration::seconds(i as i64));
        let (status, answer) =
            post(&env, "/api/data/v9.2/SendAppNotification", "demo-admin-token", body).await;
        assert_eq!(status, 200, "{answer}");
        ids.push(answer["NotificationId"].as_str().unwrap().to_string());
    }
    settle(&env).await;
    let (status, list) = center(&env, "demo-user-1-token", U1, "").await;
    assert_eq!(status, 200);
    assert_eq!(
        titles(&list),
        vec!["New order posted", "New task", "Congratulations", "SLA critical", "Welcome"],
        "newest first"
    );
    let find =
        |id: &str| list["notifications"].as_array().unwrap().iter().find(|n| n["id"] == id).cloned().unwrap();
    let sla = find(&ids[1]);
    assert_eq!(
        (sla["icon"].as_str(), sla["overrideContent"]["title"].as_str()),
        (Some("Warning"), Some("**SLA critical**"))
    );
    let url = find(&ids[2]);
    assert_eq!(
        url["actions"][0],
        json!({"title": "View cases", "data": {"type": "url", "url": "?pagetype=entitylist&etn=incident&viewid=00000000-0000-0000-00aa-000010001028&viewType=1039", "navigationTarget": "newWindow"}})
    );
    let pane = find(&ids[3]);
    assert_eq!(
        pane["actions"][1]["data"]["navigationTarget"],
        json!({"pageType": "entityrecord", "entityName": "account", "entityId": "a-1"})
    );
    let chat = find(&ids[4]);
    assert_eq!(chat["actions"][0]["data"]["memberIds"], json!(["m-1", "m-2"]));
    assert_eq!(chat["toast"], "Timed");
    let welcome = find(&ids[0]);
    assert_eq!(
        chrono::DateTime::parse_from_rfc3339(welcome["expiresOn"].as_str().unwrap()).unwrap()
            - chrono::DateTime::parse_from_rfc3339(welcome["createdOn"].as_str().unwrap()).unwrap(),
        Duration::days(14)
    );

    // Refusals, each with the OData error shape and the parameter.
    for (body, status, parameter) in [
        (app("Team", json!({"Recipient": "/teams(11111111-1111-4111-8111-111111111111)"})), 400, "Recipient"),
        (app("Big", json!({"Data": "x".repeat(5001)})), 400, "Data"),
        (
            app("Elsewhere", json!({"Recipient": "/systemusers(99999999-9999-4999-8999-999999999999)"})),
            404,
            "Recipient",
        ),
    ] {
        let (got, answer) = post(&env, "/api/data/v9.2/SendAppNotification", "demo-admin-token", &body).await;
        assert_eq!((got, answer["error"]["parameter"].as_str()), (status, Some(parameter)), "{answer}");
        assert!(answer["error"]["code"].as_str().unwrap().starts_with("0x"));
    }
    // u1 holds no privilege; admin4 cannot reach company 3.
    let (got, _) = post(&env, "/api/data/v9.2/SendAppNotification", "demo-user-1-token", &examples[0]).await;
    assert_eq!(got, 403);
    let (got, _) = post(&env, "/api/data/v9.2/SendAppNotification", "demo-admin-4-token", &examples[0]).await;
    assert_eq!(got, 404);
    // Errors speak OData 4.0 as the successes do.
    for (token, body) in [
        ("demo-admin-token", examples[0].clone()),
        ("demo-user-1-token", examples[0].clone()),
        ("nope", json!({})),
    ] {
        let req = GatewayRequest::new(
            "POST",
            "/api/data/v9.2/SendAppNotification",
            "/api/data/v9.2/SendAppNotification",
        )
        .header("authorization", &format!("Bearer {token}"))
        .body(body.to_string());
        let resp = notify::handle(&env.ports, req.into_request()).await;
        assert_eq!(
            resp.headers().get("odata-version").and_then(|v| v.to_str().ok()),
            Some("4.0"),
            "{token}: {}",
            resp.status()
        );
    }
}

async fn the_center_sorts_expires_and_dismisses(env: Env) {
    let high = app("Urgent", json!({"Priority": 200000001}));
    post(&env, "/api/data/v9.2/SendAppNotification", "demo-admin-token", &high).await;
    env.clock.set(tests::t0() + Duration::seconds(10));
    post(&env, "/api/data/v9.2/SendAppNotification", "demo-admin-token", &app("Newer normal", json!({})))
        .await;
    env.clock.set(tests::t0() + Duration::seconds(11));
    let (_, short) = post(
        &env,
        "/api/data/v9.2/SendAppNotification",
        "demo-admin-token",
        &app("Fleeting", json!({"TTLInSeconds": 1})),
    )
    .await;
    assert!(short["NotificationId"].is_string());
    settle(&env).await;
    let (_, list) = center(&env, "demo-user-1-token", U1, "").await;
    assert_eq!(
        titles(&list),
        vec!["Urgent", "Fleeting", "Newer normal"],
        "High above newer Normal ones, then newest first"
    );
    // Two seconds later the one-second notification has expired from view.
    env.clock.set(tests::t0() + Duration::seconds(13));
    let (_, list) = center(&env, "demo-user-1-token", U1, "").await;
    assert_eq!(titles(&list), vec!["Urgent", "Newer normal"]);

    // Dismiss: gone from the list, idempotent, by POST or DELETE; unknown ids 404; others 403.
    let urgent = list["notifications"][0]["id"].as_str().unwrap().to_string();
    assert_eq!(dismiss(&env, "POST", "demo-user-1-token", U1, &urgent).await, 204);
    assert_eq!(dismiss(&env, "DELETE", "demo-user-1-token", U1, &urgent).await, 204);
    assert_eq!(
        dismiss(&env, "POST", "demo-user-1-token", U1, "00000000-0000-4000-8000-00000000dead").await,
        404
    );
    assert_eq!(dismiss(&env, "POST", "demo-user-2-token", U1, &urgent).await, 403);
    assert_eq!(dismiss(&env, "POST", "demo-user-1-token", U1, "nope").await, 400);
    let (_, list) = center(&env, "demo-user-1-token", U1, "").await;
    assert_eq!(titles(&list), vec!["Newer normal"]);

    // Who may read: the owner, admins of the tenant (support); not other users or tenants.
    assert_eq!(center(&env, "demo-user-2-token", U1, "").await.0, 403);
    assert_eq!(center(&env, "demo-admin-token", U1, "").await.0, 200);
    assert_eq!(center(&env, "demo-admin-4-token", U1, "").await.0, 403);
    assert_eq!(center(&env, "nope", U1, "").await.0, 401);
    assert_eq!(center(&env, "demo-user-1-token", U1, "limit=0").await.0, 400);
    assert_eq!(center(&env, "demo-user-1-token", U1, "since=yesterday").await.0, 400);
    assert_eq!(center(&env, "demo-user-1-token", U1, "nextToken=forged").await.0, 400);
    // Cheap polling: only what is newer than `since`.
    let since = (tests::t0() + Duration::seconds(5)).to_rfc3339();
    let (_, newer) =
        center(&env, "demo-user-1-token", U1, &format!("since={}", since.replace('+', "%2B"))).await;
    assert_eq!(titles(&newer), vec!["Newer normal"]);
    // Each answer says what to poll with next: the server's time a minute back.
    let next = chrono::DateTime::parse_from_rfc3339(newer["nextSince"].as_str().unwrap()).unwrap();
    assert_eq!(next, shared::ports::Clock::now(&*env.clock) - Duration::seconds(60));
    let (_, next) =
        center(&env, "demo-user-1-token", U1, &format!("since={}", next.timestamp_millis())).await;
    assert_eq!(titles(&next), vec!["Newer normal"], "the minute's overlap repeats it: ids make it harmless");
}

async fn idempotency_keys_hold_on_every_route(env: Env) {
    let body = app("Once", json!({}));
    let keyed = |body: &Value, path: &str| {
        GatewayRequest::new("POST", path, path)
            .header("authorization", "Bearer demo-admin-token")
            .header("idempotency-key", "k-1")
            .body(body.to_string())
            .into_request()
    };
    let first = notify::handle(&env.ports, keyed(&body, "/api/data/v9.2/SendAppNotification")).await;
    let again = notify::handle(&env.ports, keyed(&body, "/api/data/v9.2/SendAppNotification")).await;
    assert_eq!((first.status().as_u16(), body_text(&first)), (again.status().as_u16(), body_text(&again)));
    let other =
        notify::handle(&env.ports, keyed(&app("Other", json!({})), "/api/data/v9.2/SendAppNotification"))
            .await;
    assert_eq!(other.status(), 409);
    let other: Value = serde_json::from_str(&body_text(&other)).unwrap();
    assert_eq!(other["error"]["parameter"], "Idempotency-Key");
    settle(&env).await;
    let (_, list) = center(&env, "demo-user-1-token", U1, "").await;
    assert_eq!(titles(&list), vec!["Once"], "sent once");

    // The same key on another route is another key: dismissing with it works, twice.
    let id = list["notifications"][0]["id"].as_str().unwrap().to_string();
    for _ in 0..2 {
        let path = format!("/users/{U1}/notifications/{id}/dismiss");
        let req = GatewayRequest::new("POST", "/users/{userId}/notifications/{id}/dismiss", &path)
            .path_param("userId", U1)
            .path_param("id", &id)
            .header("authorization", "Bearer demo-user-1-token")
            .header("idempotency-key", "k-1");
        assert_eq!(inbox::handle(&env.ports, req.into_request()).await.status(), 204);
    }
    assert!(titles(&center(&env, "demo-user-1-token", U1, "").await.1).is_empty());
}

async fn the_center_pages_with_a_cursor(env: Env) {
    for i in 0..7 {
        env.clock.set(tests::t0() + Duration::seconds(i));
        post(
            &env,
            "/api/data/v9.2/SendAppNotification",
            "demo-admin-token",
            &app(&format!("n{i}"), json!({})),
        )
        .await;
    }
    settle(&env).await;
    let (_, first) = center(&env, "demo-user-1-token", U1, "limit=3").await;
    let mut seen = titles(&first);
    let mut token = first["nextToken"].as_str().map(str::to_string);
    while let Some(t) = token {
        let (status, page) = center(&env, "demo-user-1-token", U1, &format!("limit=3&nextToken={t}")).await;
        assert_eq!(status, 200);
        seen.extend(titles(&page));
        token = page["nextToken"].as_str().map(str::to_string);
    }
    assert_eq!(seen, vec!["n6", "n5", "n4", "n3", "n2", "n1", "n0"]);

    // A token of the ordered list is not one of a `since` poll, nor of another person's list.
    let token = first["nextToken"].as_str().unwrap();
    for (token_holder, user, query) in [
        ("demo-user-1-token", U1, format!("since=2026-11-22T08:00:00Z&nextToken={token}")),
        ("demo-admin-token", U5, format!("nextToken={token}")),
    ] {
        let (status, body) = center(&env, token_holder, user, &query).await;
        assert_eq!((status, body["parameter"].as_str()), (400, Some("nextToken")), "{query}: {body}");
    }
}

/// A delivery that fails for good (its last allowed receive) gives the notification up the one
/// way there is: Failed with the reason, and the department hears FAILURE, signed.
async fn a_delivery_given_up_calls_back_failure(env: Env) {
    let hook = receiver(vec![]).await;
    let mut body = spec_department_body(&hook.url);
    body["messageSendingAttributesLite"]["sendSynchronously"] = json!(false);
    let (status, answer) = department_notify(&env, &basic("demo-dept", "demo-secret"), U1, &body).await;
    assert_eq!((status, answer["status"].as_str()), (200, Some("SUCCESS")), "{answer}");
    let id: uuid::Uuid = answer["notificationMessageUUID"].as_str().unwrap().parse().unwrap();
    local::workers::drain_fanout_once(&env.ports).await.unwrap();
    let chunks = env.ports.delivery_queue.receive(10).await.unwrap();
    assert_eq!(chunks.len(), 1);
    let faults = tests::faults::Faults::none();
    faults.fail_next("record_chunk");
    let failing = tests::faults::faulty(&env.ports, &faults);
    let mut event = local::workers::sqs_event(local::workers::DELIVERY_QUEUE_ARN, &chunks);
    event.records[0].attributes.insert("ApproximateReceiveCount".into(), env.max_receives.to_string());
    let response = deliver::handle(&failing, env.max_receives, event).await;
    assert_eq!(response.batch_item_failures.len(), 1, "the record fails (to the DLQ)");
    let n = env.ports.notifications.get(id).await.unwrap().unwrap();
    assert_eq!(n.status, shared::model::Status::Failed);
    let seen = seen(&hook);
    assert_eq!(seen.len(), 1, "one FAILURE callback");
    let (sig, text) = &seen[0];
    verify_signature(sig, text);
    let cb: Value = serde_json::from_str(text).unwrap();
    assert_eq!((cb["status"].as_str(), cb["delivered"].as_u64()), (Some("FAILURE"), Some(0)), "{cb}");
    assert!(cb["errors"][0]["errorDescription"].as_str().unwrap().contains("delivery failed"), "{cb}");
    assert!(n.callback_result.is_some_and(|r| r.delivered), "the callback's result is recorded");
}

/// A synchronous department notify that arrives too close to its invocation's deadline answers
/// at once — SUCCESS with a DELIVERY_PENDING warning, not FAILURE, which would invite the caller
/// to send it again — and is delivered in the background; with time to spare it is delivered
/// before answering.
async fn synchronous_notify_near_its_deadline_answers_and_delivers_in_the_background(env: Env) {
    use lambda_http::RequestExt;
    let request = |deadline_ms: u64| {
        let path = format!("/communications/department/{DEPT}/user/{U1}/notify");
        let body = json!({"messageAttributes": {"body": "late", "subject": "Near the deadline"},
            "messageSendingAttributesLite": {"sendSynchronously": true}});
        let mut context = lambda_http::Context::default();
        context.deadline = deadline_ms;
        GatewayRequest::new(
            "POST",
            "/communications/department/{departmentUUID}/user/{userUUID}/notify",
            &path,
        )
        .path_param("departmentUUID", DEPT)
        .path_param("userUUID", U1)
        .header("authorization", &basic("demo-dept", "demo-secret"))
        .body(body.to_string())
        .into_request()
        .with_lambda_context(context)
    };
    let now_ms = shared::ports::Clock::now(env.clock.as_ref()).timestamp_millis() as u64;
    let resp = notify::handle(&env.ports, request(now_ms + 2_000)).await;
    let answer: Value = serde_json::from_str(&body_text(&resp)).unwrap();
    assert_eq!((resp.status().as_u16(), answer["status"].as_str()), (200, Some("SUCCESS")), "{answer}");
    assert!(answer["errors"].as_array().unwrap().is_empty(), "{answer}");
    assert_eq!(answer["warnings"][0]["warningCode"], "DELIVERY_PENDING", "{answer}");
    assert!(answer["notificationMessageUUID"].is_string(), "{answer}");
    let (_, list) = center(&env, "demo-user-1-token", U1, "").await;
    assert!(titles(&list).is_empty(), "not delivered inside the request");
    settle(&env).await;
    let (_, list) = center(&env, "demo-user-1-token", U1, "").await;
    assert_eq!(titles(&list), vec!["Near the deadline"], "delivered in the background");

    let resp = notify::handle(&env.ports, request(now_ms + 10_000)).await;
    let answer: Value = serde_json::from_str(&body_text(&resp)).unwrap();
    assert_eq!(answer["status"], "SUCCESS", "with time to spare: {answer}");
}

/// The notify use cases without HTTP: the service holds their rules (credentials, tenancy,
/// privileges, the desktop switch), whatever dialect calls it.
async fn notify_rules_hold_without_http(env: Env) {
    use shared::service::notify;
    let p = &env.ports;
    let user = |n: u8| async move {
        let id: uuid::Uuid = format!(
            "{n}{n}{n}{n}{n}{n}{n}{n}-{n}{n}{n}{n}-4{n}{n}{n}-8{n}{n}{n}-{n}{n}{n}{n}{n}{n}{n}{n}{n}{n}{n}{n}"
        )
        .parse()
        .unwrap();
        p.directory.user(id).await.unwrap().unwrap()
    };
    let dept: uuid::Uuid = DEPT.parse().unwrap();
    let found =
        notify::department_by_credentials(&p.notify(), Some(dept), "demo-dept", "demo-secret").await.unwrap();
    let department = found.expect("the demo department's credentials");
    assert!(
        notify::department_by_credentials(&p.notify(), Some(dept), "demo-dept", "nope")
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        notify::department_by_credentials(
            &p.notify(),
            Some(uuid::Uuid::new_v4()),
            "demo-dept",
            "demo-secret"
        )
        .await
        .unwrap()
        .is_none()
    );
    let u1 = user(1).await;
    assert_eq!(notify::department_member(&p.notify(), &department, Some(u1.id)).await.unwrap(), Some(u1.id));
    assert_eq!(
        notify::department_member(&p.notify(), &department, Some(uuid::Uuid::new_v4())).await.unwrap(),
        None
    );

    // In-app: u1 holds no send privilege; the admin may notify others of its tenant only.
    assert_eq!(notify::app_sender(&u1).unwrap_err().status(), 403);
    let admin = shared::auth::user_by_token(
        p.directory.as_ref(),
        Some("demo-admin-token"),
        "Authorization",
        tests::t0(),
    )
    .await
    .unwrap();
    notify::app_sender(&admin).unwrap();
    let content = shared::model::Content { title: "t".into(), ..Default::default() };
    let other_tenant = shared::model::AppNotify {
        recipient: uuid::Uuid::new_v4(),
        content: content.clone(),
        ttl_seconds: 60,
    };
    let e = notify::app(&p.notify(), &admin, other_tenant, uuid::Uuid::new_v4()).await.unwrap_err();
    assert_eq!((e.status(), e.parameter.as_deref()), (404, Some("Recipient")));
    let to_u1 = shared::model::AppNotify { recipient: u1.id, content, ttl_seconds: 60 };
    let id = notify::app(&p.notify(), &admin, to_u1, uuid::Uuid::new_v4()).await.unwrap();
    assert_eq!(p.notifications.get(id).await.unwrap().unwrap().ttl_seconds, 60);

    // Desktop: the role and the switch first; recipients of the sender's instance only.
    assert_eq!(notify::desktop_sender(&p.notify(), &u1).await.unwrap_err().status(), 403);
    notify::desktop_sender(&p.notify(), &admin).await.unwrap();
    let cmd = shared::model::DesktopNotify {
        title: None,
        message: "m".into(),
        recipients: vec![uuid::Uuid::new_v4().to_string()],
        referrer_table: None,
        referrer_id: None,
        source: "mim".into(),
    };
    let e = notify::desktop(&p.notify(), &admin, &cmd, uuid::Uuid::new_v4()).await.unwrap_err();
    assert_eq!(e.parameter.as_deref(), Some("recipient_list"));
}

end_to_end!(
    notify_rules_hold_without_http,
    synchronous_notify_near_its_deadline_answers_and_delivers_in_the_background,
    a_delivery_given_up_calls_back_failure,
    department_notify_delivers_synchronously_and_calls_back_signed,
    department_notify_async_and_delayed,
    callbacks_never_reach_internal_addresses,
    department_errors_keep_the_dialect_shape,
    desktop_assistant_reaches_u1_and_u5_and_respects_the_switch,
    app_notifications_land_with_their_fields,
    the_center_sorts_expires_and_dismisses,
    the_center_pages_with_a_cursor,
    idempotency_keys_hold_on_every_route,
);
