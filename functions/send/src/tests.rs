use std::sync::Arc;

use chrono::{DateTime, Utc};
use lambda_http::{Body, Response};
use serde_json::{Value, json};
use shared::http::{GatewayRequest, body_text};
use shared::model::{Audience, BroadcastType, FanoutJob, Status};
use shared::ports::{ManualClock, Queue, SequentialIds};
use shared::runtime::MemoryPorts;

use super::*;

const ADMIN: &str = "demo-admin-token";
const EVENTS: &str = "demo-event-token";
const SUPER: &str = "demo-super-token";
const KEY3: &str = "00000000-0000-4000-8000-000000000003";
const KEY4: &str = "00000000-0000-4000-8000-000000000004";

fn now() -> DateTime<Utc> {
    "2026-11-22T09:00:00Z".parse().unwrap()
}

async fn ports() -> MemoryPorts {
    let p = MemoryPorts::new(Arc::new(ManualClock::new(now())), Arc::new(SequentialIds::default()));
    p.load_demo_directory().await.unwrap();
    p
}

async fn call(p: &MemoryPorts, token: Option<&str>, key: Option<&str>, body: &Value) -> Response<Body> {
    call_raw(p, token, key, body.to_string().into_bytes(), None).await
}

async fn call_raw(
    p: &MemoryPorts,
    token: Option<&str>,
    key: Option<&str>,
    body: Vec<u8>,
    idem: Option<&str>,
) -> Response<Body> {
    let mut req = GatewayRequest::new("POST", "/rest/notification/send", "/rest/notification/send")
        .header("content-type", "application/json")
        .body(body);
    if let Some(t) = token {
        req = req.header(AUTH_TOKEN, t);
    }
    if let Some(k) = key {
        req = req.header(API_KEY, k);
    }
    if let Some(i) = idem {
        req = req.header("Idempotency-Key", i);
    }
    handle(&p.ports, req.into_request()).await
}

fn json_body(resp: &Response<Body>) -> Value {
    serde_json::from_str(&body_text(resp)).unwrap_or(Value::Null)
}

/// Asserts status, exception and (when given) parameter of an error answer.
fn assert_error(resp: &Response<Body>, status: u16, exception: &str, parameter: Option<&str>) {
    let body = json_body(resp);
    assert_eq!(resp.status(), status, "{body}");
    assert_eq!(body["exception"], exception, "{body}");
    if let Some(p) = parameter {
        assert_eq!(body["parameter"], p, "{body}");
    }
    assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()));
}

fn gt_v2() -> Value {
    json!({ "version": 2, "type": "GT", "key": "3", "values": ["23", "27"], "message": "This is test message for team ids 23 and 27" })
}

fn ge_v2() -> Value {
    json!({ "version": 2, "type": "GE", "key": "ed90fcd2-cbb4-49b8-9be4-a14ccbc2d1e8", "values": ["456", "459"], "message": "This is test message for event team ids 456 and 459" })
}

#[tokio::test]
async fn spec_examples_answer_in_their_version_shape() {
    let p = ports().await;
    let resp = call(&p, Some(ADMIN), Some(KEY3), &gt_v2()).await;
    assert_eq!((resp.status().as_u16(), body_text(&resp)), (200, "4".to_string()), "u3 counted once");
    let resp = call(&p, Some(ADMIN), Some(KEY3), &ge_v2()).await;
    assert_eq!(body_text(&resp), "3", "accepted attendees u1, u5, u7");
    let ga = json!({"version": 3, "type": "GA", "key": "3", "brochureId": 4, "message": "asset"});
    let resp = call(&p, Some(ADMIN), Some(KEY3), &ga).await;
    assert_eq!(resp.status(), 200);
    let id = json_body(&resp)["notificationScheduleId"].as_u64().unwrap();
    assert!(id > 0 && id <= 1 << 53);
    let un = json!({"version": 4, "type": "UN", "key": "3", "values": ["aaron.mcmullen@hypermedia.com.au"],
        "message": "PFIZER ORDER UPDATE - Order 123456 hs SHIPPED", "emailParams": [], "brochureId": 4,
        "updateEntityLastModified": false, "userNotificationTypeId": 7, "userNotificationTypeStatusId": 1});
    let resp = call(&p, Some(ADMIN), Some(KEY3), &un).await;
    assert_eq!(resp.status(), 200, "{}", body_text(&resp));
    let next = json_body(&resp)["notificationScheduleId"].as_u64().unwrap();
    assert!(next > id, "schedule ids increase");

    let stored = p.ports.notifications.get_by_schedule_id(next).await.unwrap().unwrap();
    assert_eq!(stored.broadcast_type, BroadcastType::UN);
    assert_eq!(
        stored.audience,
        Audience::Users { user_ids: vec!["11111111-1111-4111-8111-111111111111".parse().unwrap()] }
    );
    assert_eq!(stored.created_by, "654");
    assert_eq!(stored.status, Status::Pending);
    let data: Value = serde_json::from_str(stored.content.data.as_deref().unwrap()).unwrap();
    assert_eq!(data["userNotificationTypeStatus"], "Available");
    // Ad hoc sends are handed to fan-out at once: one job per send.
    let jobs = p.fanout_queue.receive(10).await.unwrap();
    assert_eq!(jobs.len(), 4);
    let job: FanoutJob = serde_json::from_str(&jobs[3].body).unwrap();
    assert_eq!(job.notification_id, stored.id);
}

#[tokio::test]
async fn authentication_errors_are_401() {
    let p = ports().await;
    for (token, key, parameter) in [
        (None, Some(KEY3), AUTH_TOKEN),
        (Some("not-a-token"), Some(KEY3), AUTH_TOKEN),
        (Some(ADMIN), None, API_KEY),
        (Some(ADMIN), Some("00000000-0000-4000-8000-000000000099"), API_KEY),
        // An API key is not a user token, nor the other way round.
        (Some(KEY3), Some(KEY3), AUTH_TOKEN),
        (Some(ADMIN), Some(ADMIN), API_KEY),
        // The token is checked first, whatever the key.
        (Some("not-a-token"), None, AUTH_TOKEN),
        (Some("not-a-token"), Some("not-a-key"), AUTH_TOKEN),
        (None, None, AUTH_TOKEN),
    ] {
        let resp = call(&p, token, key, &gt_v2()).await;
        assert_error(&resp, 401, "WSInvalidAuthTokenException", Some(parameter));
    }
}

#[tokio::test]
async fn expired_tokens_are_401() {
    let p = ports().await;
    let mut snapshot = shared::directory::DirectorySnapshot::default();
    let mut user = shared::directory::DirectorySnapshot::demo().users[0].clone();
    user.token_sha256 = shared::credentials::digest("old-token");
    user.token_expires_at = Some(now() - chrono::Duration::seconds(1));
    snapshot.users.push(user);
    p.ports.directory.load(&snapshot).await.unwrap();
    for key in [Some(KEY3), None, Some("not-a-key")] {
        let resp = call(&p, Some("old-token"), key, &gt_v2()).await;
        assert_error(&resp, 401, "WSInvalidAuthTokenException", Some(AUTH_TOKEN));
        assert!(json_body(&resp)["message"].as_str().unwrap().contains("expired"));
    }
}

#[tokio::test]
async fn roles_are_enforced_with_403() {
    let p = ports().await;
    // u1 has no role at all.
    let resp = call(&p, Some("demo-user-1-token"), Some(KEY3), &gt_v2()).await;
    assert_error(&resp, 403, "WSInsufficientPermissionsException", None);
    // events3 may send GE but not GT.
    let resp = call(&p, Some(EVENTS), Some(KEY3), &gt_v2()).await;
    assert_error(&resp, 403, "WSInsufficientPermissionsException", None);
    assert_eq!(call(&p, Some(EVENTS), Some(KEY3), &ge_v2()).await.status(), 200);
    // admin4 may not send for company 3, with either key.
    let resp = call(&p, Some("demo-admin-4-token"), Some(KEY4), &gt_v2()).await;
    assert_error(&resp, 403, "WSInsufficientPermissionsException", None);
    let resp = call(&p, Some("demo-admin-4-token"), Some(KEY3), &gt_v2()).await;
    assert_error(&resp, 403, "WSInsufficientPermissionsException", Some(API_KEY));
    // The super user may send anywhere (with its own company's key).
    let to_company_4 = json!({"version": 2, "type": "GT", "key": "4", "values": ["40"], "message": "hi"});
    let resp = call(&p, Some(SUPER), Some(KEY3), &to_company_4).await;
    assert_eq!((resp.status().as_u16(), body_text(&resp)), (200, "1".to_string()));
    // Nothing was stored by the refused requests.
    assert_eq!(p.fanout_queue.len(), 2);
}

#[tokio::test]
async fn directory_errors_name_their_parameter() {
    let p = ports().await;
    let cases = [
        (
            json!({"version": 2, "type": "GE", "key": "11111111-0000-4000-8000-000000000000", "values": ["456"], "message": "m"}),
            404,
            "WSEventNotFoundException",
            "key",
        ),
        (
            json!({"version": 2, "type": "GE", "key": "0c0c0c0c-0000-4000-8000-00000000000c", "values": ["460"], "message": "m"}),
            400,
            "WSEventCancelledException",
            "key",
        ),
        (
            json!({"version": 2, "type": "GE", "key": "not-a-uuid", "values": ["456"], "message": "m"}),
            400,
            "WSInvalidParameterException",
            "key",
        ),
        (
            json!({"version": 2, "type": "GE", "key": "ed90fcd2-cbb4-49b8-9be4-a14ccbc2d1e8", "values": ["999"], "message": "m"}),
            400,
            "WSInvalidParameterException",
            "values",
        ),
        (
            json!({"version": 2, "type": "GT", "key": "3", "values": ["23", "99"], "message": "m"}),
            400,
            "WSInvalidParameterException",
            "values",
        ),
        (
            json!({"version": 2, "type": "GT", "key": "3", "values": ["40"], "message": "m"}),
            400,
            "WSInvalidParameterException",
            "values",
        ),
        (
            json!({"version": 2, "type": "GT", "key": "3", "values": [], "message": "m"}),
            400,
            "WSInvalidParameterException",
            "values",
        ),
        (
            json!({"version": 2, "type": "GT", "key": "three", "values": ["23"], "message": "m"}),
            400,
            "WSInvalidParameterException",
            "key",
        ),
        (
            json!({"version": 2, "type": "GT", "key": "77", "values": ["23"], "message": "m"}),
            400,
            "WSInvalidParameterException",
            "key",
        ),
        (
            json!({"version": 2, "type": "SN", "key": "12", "values": ["101"], "message": "m"}),
            404,
            "WSSmartLibNotFoundException",
            "key",
        ),
        (
            json!({"version": 2, "type": "SN", "key": "11", "values": ["103"], "message": "m"}),
            400,
            "WSInvalidParameterException",
            "values",
        ),
        (
            json!({"version": 3, "type": "GA", "key": "3", "brochureId": 5, "message": "m"}),
            400,
            "WSInvalidParameterException",
            "brochureId",
        ),
        (
            json!({"version": 3, "type": "GT", "key": "3", "values": ["23"], "brochureId": 5, "message": "m"}),
            400,
            "WSInvalidParameterException",
            "brochureId",
        ),
        (
            json!({"version": 4, "type": "UN", "key": "3", "values": ["nobody@demo.example"], "message": "m"}),
            400,
            "WSInvalidParameterException",
            "values",
        ),
        (
            json!({"version": 4, "type": "UN", "key": "3", "values": ["user9@demo.example"], "message": "m"}),
            400,
            "WSInvalidParameterException",
            "values",
        ),
        (
            json!({"version": 1, "type": "GT", "key": "3", "values": ["23"], "message": "m"}),
            400,
            "WSUnsupportedVersionException",
            "version",
        ),
    ];
    for (body, status, exception, parameter) in cases {
        let resp = call(&p, Some(ADMIN), Some(KEY3), &body).await;
        assert_error(&resp, status, exception, Some(parameter));
    }
    assert!(p.fanout_queue.is_empty(), "no refused request was stored or queued");
}

#[tokio::test]
async fn malformed_and_oversized_bodies_are_4xx() {
    let p = ports().await;
    for body in [
        b"{".to_vec(),
        b"".to_vec(),
        b"[1,2]".to_vec(),
        vec![0xff, 0xfe, 0x00],
        b"{\"version\": 2, \"type\": 7}".to_vec(),
    ] {
        let resp = call_raw(&p, Some(ADMIN), Some(KEY3), body, None).await;
        assert_eq!(resp.status(), 400, "{}", body_text(&resp));
        assert_eq!(json_body(&resp)["exception"], "WSInvalidParameterException");
    }
    let huge = vec![b' '; shared::http::MAX_BODY_BYTES + 1];
    let resp = call_raw(&p, Some(ADMIN), Some(KEY3), huge, None).await;
    assert_error(&resp, 413, "WSPayloadTooLargeException", None);
}

#[tokio::test]
async fn scheduled_sends_wait_and_past_times_go_now() {
    let p = ports().await;
    let body = json!({"version": 3, "type": "GT", "key": "3", "values": ["23"], "message": "later",
        "scheduleTimezoneId": "Australia/Sydney", "scheduleLocalDateTime": "2026-11-22T20:01:00", "scheduleJobName": "evening"});
    let resp = call(&p, Some(ADMIN), Some(KEY3), &body).await;
    assert_eq!(resp.status(), 200);
    let sid = json_body(&resp)["notificationScheduleId"].as_u64().unwrap();
    let stored = p.ports.notifications.get_by_schedule_id(sid).await.unwrap().unwrap();
    assert_eq!(
        stored.due_at,
        "2026-11-22T09:01:00Z".parse::<DateTime<Utc>>().unwrap(),
        "20:01 AEDT is 09:01 UTC"
    );
    assert_eq!(stored.team_ids, vec!["23".to_string()], "scheduled: team ids in teamIds");
    assert_eq!(stored.description, "evening");
    assert!(p.fanout_queue.is_empty(), "scheduled: waits for the tick");

    let past = json!({"version": 3, "type": "GT", "key": "3", "values": ["23", "27"], "message": "past",
        "scheduleTimezoneId": "UTC", "scheduleLocalDateTime": "2020-01-01T00:00:00"});
    let resp = call(&p, Some(ADMIN), Some(KEY3), &past).await;
    let stored = p
        .ports
        .notifications
        .get_by_schedule_id(json_body(&resp)["notificationScheduleId"].as_u64().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.due_at, now(), "a past time is sent now");
    assert_eq!(p.fanout_queue.len(), 1);

    let gap = json!({"version": 3, "type": "GT", "key": "3", "values": ["23"], "message": "m",
        "scheduleTimezoneId": "Australia/Sydney", "scheduleLocalDateTime": "2027-10-03T02:30:00"});
    assert_error(
        &call(&p, Some(ADMIN), Some(KEY3), &gap).await,
        400,
        "WSInvalidParameterException",
        Some("scheduleLocalDateTime"),
    );
}

#[tokio::test]
async fn idempotency_key_replays_and_conflicts() {
    let p = ports().await;
    let body = gt_v2().to_string().into_bytes();
    let first = call_raw(&p, Some(ADMIN), Some(KEY3), body.clone(), Some("order-1")).await;
    let again = call_raw(&p, Some(ADMIN), Some(KEY3), body.clone(), Some("order-1")).await;
    assert_eq!((first.status(), body_text(&first)), (again.status(), body_text(&again)));
    assert_eq!(again.headers().get("idempotent-replayed").unwrap(), "true");
    assert_eq!(p.fanout_queue.len(), 1, "sent once");
    let other = json!({"version": 2, "type": "GT", "key": "3", "values": ["23"], "message": "other"});
    let resp = call_raw(&p, Some(ADMIN), Some(KEY3), other.to_string().into_bytes(), Some("order-1")).await;
    assert_error(&resp, 409, "WSConflictException", Some("Idempotency-Key"));
    // Another caller's identical key is another key.
    let resp = call_raw(&p, Some(SUPER), Some(KEY3), body.clone(), Some("order-1")).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(p.fanout_queue.len(), 2);
    // A failed request does not burn its key.
    let bad = json!({"version": 2, "type": "GT", "key": "3", "values": ["99"], "message": "m"});
    assert_eq!(
        call_raw(&p, Some(ADMIN), Some(KEY3), bad.to_string().into_bytes(), Some("k2")).await.status(),
        400
    );
    assert_eq!(call_raw(&p, Some(ADMIN), Some(KEY3), body, Some("k2")).await.status(), 200);
    let long = "k".repeat(300);
    let resp = call_raw(&p, Some(ADMIN), Some(KEY3), gt_v2().to_string().into_bytes(), Some(&long)).await;
    assert_error(&resp, 400, "WSInvalidParameterException", Some("Idempotency-Key"));
}

#[tokio::test]
async fn the_daily_recipient_cap_answers_429_with_retry_after() {
    let mut p = ports().await;
    p.ports.settings.daily_recipient_cap = 5;
    assert_eq!(call(&p, Some(ADMIN), Some(KEY3), &gt_v2()).await.status(), 200, "4 of 5");
    let resp = call(
        &p,
        Some(ADMIN),
        Some(KEY3),
        &json!({"version": 2, "type": "GT", "key": "3", "values": ["23"], "message": "m"}),
    )
    .await;
    assert_error(&resp, 429, "WSTooManyRequestsException", None);
    // 09:00 UTC: the cap resets at midnight, 15 hours on.
    assert_eq!(resp.headers().get("retry-after").unwrap(), "54000");
    assert_eq!(p.fanout_queue.len(), 1, "the refused send was not stored");
    // Company 4's cap is its own.
    let c4 = json!({"version": 2, "type": "GT", "key": "4", "values": ["40"], "message": "m"});
    assert_eq!(call(&p, Some(SUPER), Some(KEY3), &c4).await.status(), 200);
}

#[tokio::test]
async fn update_entity_last_modified_touches_the_asset() {
    let p = ports().await;
    let ga = json!({"version": 3, "type": "GA", "key": "3", "brochureId": 4, "message": "m", "updateEntityLastModified": true});
    assert_eq!(call(&p, Some(ADMIN), Some(KEY3), &ga).await.status(), 200);
    assert_eq!(p.ports.directory.asset(4).await.unwrap().unwrap().last_modified, Some(now()));
}
