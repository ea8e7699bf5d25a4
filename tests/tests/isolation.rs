//! Tenant isolation: every route, called by each principal of the other tenant and by lower
//! roles of company 3, reads, writes and counts nothing of company 3.

use serde_json::{Value, json};
use shared::http::{GatewayRequest, body_text};
use shared::model::PageRequest;
use shared::model::{InboxQuery, ItemState, Marks};
use shared::ports::Clock;
use tests::{Env, end_to_end};

const U1: &str = "11111111-1111-4111-8111-111111111111";
const SECRET_TEXT: &str = "company-3-confidential";

async fn post(env: &Env, path: &str, headers: &[(&str, &str)], body: &Value) -> (u16, String) {
    let mut req = GatewayRequest::new("POST", path, path).body(body.to_string());
    for (k, v) in headers {
        req = req.header(k, v);
    }
    let resp = match path {
        "/rest/notification/send" => send::handle(&env.ports, req.into_request()).await,
        _ => notify::handle(&env.ports, req.into_request()).await,
    };
    (resp.status().as_u16(), body_text(&resp))
}

/// What company 3 and u1 have: (notifications in every history scope of companies 3 and 4, u1's
/// center, u1's devices, asset 4's unsubscribes, company 3's recipients counted today). The queues
/// are left as they are: the test's pending notifications must stay pending for the cancels.
async fn state(env: &Env) -> (usize, usize, usize, usize, u64) {
    use shared::model::{BroadcastType, HistoryScope};
    let mut scopes = vec![
        HistoryScope::Event { event_id: "ed90fcd2-cbb4-49b8-9be4-a14ccbc2d1e8".parse().unwrap() },
        HistoryScope::Asset { brochure_id: 4 },
    ];
    for company_id in [3, 4, 11] {
        for broadcast_type in [
            BroadcastType::GE,
            BroadcastType::GT,
            BroadcastType::SN,
            BroadcastType::JN,
            BroadcastType::GA,
            BroadcastType::UN,
        ] {
            scopes.push(HistoryScope::CompanyType { company_id, broadcast_type });
        }
    }
    let mut notifications = 0;
    for scope in &scopes {
        notifications +=
            env.ports.notifications.history(scope, &PageRequest::first(500)).await.unwrap().items.len();
    }
    let items = env
        .ports
        .inbox
        .list(U1.parse().unwrap(), &InboxQuery::ordered(), env.clock.now(), &PageRequest::first(100))
        .await
        .unwrap();
    let devices = env.ports.devices.devices(U1.parse().unwrap()).await.unwrap().len();
    let unsubscribes = env.ports.directory.asset_unsubscribes(4).await.unwrap().len();
    (notifications, items.items.len(), devices, unsubscribes, counted_today(env, 3).await)
}

/// The recipients counted against `company`'s daily cap today, read through the one operation
/// that reads it: adding none succeeds exactly when the count is within the cap.
async fn counted_today(env: &Env, company: u64) -> u64 {
    let day = env.clock.now().format("%Y-%m-%d").to_string();
    let within = |cap| {
        let day = day.clone();
        async move { env.ports.notifications.consume_quota(company, &day, 0, cap).await.unwrap() }
    };
    let (mut low, mut high) = (0u64, 1u64 << 20);
    assert!(within(high).await, "counted under a million");
    while low < high {
        let mid = (low + high) / 2;
        if within(mid).await { high = mid } else { low = mid + 1 }
    }
    low
}

/// Calls `method template` (a route of the table) at `path` through the function serving it.
async fn route(
    env: &Env,
    covered: &mut std::collections::BTreeSet<(&'static str, &'static str)>,
    method: &'static str,
    template: &'static str,
    req: GatewayRequest,
) -> (u16, String) {
    covered.insert((method, template));
    let function = local::routes::ROUTES
        .iter()
        .find(|r| r.method == method && r.path == template)
        .unwrap_or_else(|| panic!("{method} {template} is not a route"))
        .function();
    let resp = local::routes::call(function, &env.ports, req.into_request()).await;
    (resp.status().as_u16(), body_text(&resp))
}

async fn no_principal_of_another_tenant_or_lower_role_touches_company_3(env: Env) {
    // Company 3 has a webhook endpoint, told of what follows.
    let receiver = tests::hooks::Receiver::start(vec![]).await;
    let hook = GatewayRequest::new("PUT", "/rest/notification/webhook", "/rest/notification/webhook")
        .header("x-nextinteract-authtoken", "demo-admin-token")
        .header("x-nextinteract-company-api-key", "00000000-0000-4000-8000-000000000003")
        .body(json!({"url": receiver.url}).to_string());
    assert_eq!(send::handle(&env.ports, hook.into_request()).await.status(), 201);
    // Company 3 data: a delivered team notification in u1's center.
    let (status, _) = post(
        &env,
        "/rest/notification/send",
        &[
            ("x-nextinteract-authtoken", "demo-admin-token"),
            ("x-nextinteract-company-api-key", "00000000-0000-4000-8000-000000000003"),
        ],
        &json!({"version": 3, "type": "GT", "key": "3", "values": ["23"], "message": SECRET_TEXT}),
    )
    .await;
    assert_eq!(status, 200);
    local::workers::run_until_idle(&env.ports, env.max_receives).await.unwrap();
    // And a device of u1's.
    let register = GatewayRequest::new("POST", "/users/{userId}/devices", &format!("/users/{U1}/devices"))
        .path_param("userId", U1)
        .header("authorization", "Bearer demo-user-1-token")
        .body(json!({"platform": "GCM", "token": "isolation-device-token"}).to_string());
    let registered = inbox::handle(&env.ports, register.into_request()).await;
    assert_eq!(registered.status(), 201, "{}", body_text(&registered));
    let device: Value = serde_json::from_str(&body_text(&registered)).unwrap();
    let device_id = device["deviceId"].as_str().unwrap().to_string();
    // And three notifications of company 3 still to go out, one per dialect that cancels: a
    // scheduled group send, a delayed department message, an in-app notification not fanned out.
    let (status, scheduled) = post(
        &env,
        "/rest/notification/send",
        &[
            ("x-nextinteract-authtoken", "demo-admin-token"),
            ("x-nextinteract-company-api-key", "00000000-0000-4000-8000-000000000003"),
        ],
        &json!({"version": 3, "type": "GT", "key": "3", "values": ["23"], "message": SECRET_TEXT,
            "scheduleTimezoneId": "UTC", "scheduleLocalDateTime": "2026-11-23T09:00:00"}),
    )
    .await;
    assert_eq!(status, 200, "{scheduled}");
    let scheduled_sid =
        serde_json::from_str::<Value>(&scheduled).unwrap()["notificationScheduleId"].to_string();
    let support = {
        use base64::Engine;
        format!("Basic {}", base64::engine::general_purpose::STANDARD.encode("demo-dept:demo-secret"))
    };
    let dept_path =
        format!("/communications/department/d0000000-0000-4000-8000-000000000001/user/{U1}/notify");
    let req = GatewayRequest::new(
        "POST",
        "/communications/department/{departmentUUID}/user/{userUUID}/notify",
        &dept_path,
    )
    .path_param("departmentUUID", "d0000000-0000-4000-8000-000000000001")
    .path_param("userUUID", U1)
    .header("authorization", &support)
    .body(
        json!({"messageAttributes": {"body": SECRET_TEXT}, "messageSendingAttributesLite": {"delay": 3600}})
            .to_string(),
    );
    let resp = notify::handle(&env.ports, req.into_request()).await;
    let delayed: Value = serde_json::from_str(&body_text(&resp)).unwrap();
    let delayed = delayed["notificationMessageUUID"].as_str().expect("a delayed message").to_string();
    // And two of company 3's that went out to u1: a department message (synchronous) and an
    // in-app notification; and a department of company 4, whose own credentials try them.
    let (other_dept, other_dept_auth) = {
        use base64::Engine;
        let id = "d0000000-0000-4000-8000-000000000004";
        let mut snapshot = shared::directory::DirectorySnapshot::demo();
        snapshot.departments.push(shared::directory::DepartmentRecord {
            id: id.parse().unwrap(),
            company_id: 4,
            name: "Intruders".into(),
            client_id: "dept-4".into(),
            secret_sha256: shared::credentials::digest("dept-4-secret"),
            members: vec![U1.parse().unwrap()],
        });
        env.ports.directory.load(&snapshot).await.unwrap();
        (id, format!("Basic {}", base64::engine::general_purpose::STANDARD.encode("dept-4:dept-4-secret")))
    };
    let req = GatewayRequest::new(
        "POST",
        "/communications/department/{departmentUUID}/user/{userUUID}/notify",
        &dept_path,
    )
    .path_param("departmentUUID", "d0000000-0000-4000-8000-000000000001")
    .path_param("userUUID", U1)
    .header("authorization", &support)
    .body(
        json!({"messageAttributes": {"body": SECRET_TEXT}, "messageSendingAttributesLite": {"sendSynchronously": true}})
            .to_string(),
    );
    let resp = notify::handle(&env.ports, req.into_request()).await;
    let went_out: Value = serde_json::from_str(&body_text(&resp)).unwrap();
    let went_out = went_out["notificationMessageUUID"].as_str().expect("a delivered message").to_string();
    let (status, app_out) = post(
        &env,
        "/api/data/v9.2/SendAppNotification",
        &[("authorization", "Bearer demo-admin-token")],
        &json!({"Title": SECRET_TEXT, "Recipient": format!("/systemusers({U1})")}),
    )
    .await;
    assert_eq!(status, 200, "{app_out}");
    let app_out =
        serde_json::from_str::<Value>(&app_out).unwrap()["NotificationId"].as_str().unwrap().to_string();
    local::workers::run_until_idle(&env.ports, env.max_receives).await.unwrap();
    let (status, app) = post(
        &env,
        "/api/data/v9.2/SendAppNotification",
        &[("authorization", "Bearer demo-admin-token")],
        &json!({"Title": SECRET_TEXT, "Recipient": format!("/systemusers({U1})")}),
    )
    .await;
    assert_eq!(status, 200, "{app}");
    let app = serde_json::from_str::<Value>(&app).unwrap()["NotificationId"].as_str().unwrap().to_string();
    let pending: Vec<shared::model::NotificationId> = vec![
        env.ports.notifications.get_by_schedule_id(scheduled_sid.parse().unwrap()).await.unwrap().unwrap().id,
        delayed.parse().unwrap(),
        app.parse().unwrap(),
    ];
    let out: Vec<shared::model::NotificationId> = vec![went_out.parse().unwrap(), app_out.parse().unwrap()];
    let before = state(&env).await;
    assert_eq!((before.1, before.2), (3, 1));
    assert!(before.0 >= 2 && before.4 >= 1, "company 3's sends are counted: {before:?}");
    // The team notification's item (u1's center holds the two that went out too).
    let item = env
        .ports
        .inbox
        .list(U1.parse().unwrap(), &InboxQuery::ordered(), env.clock.now(), &PageRequest::first(10))
        .await
        .unwrap()
        .items
        .iter()
        .find(|i| i.content.origin == shared::model::Origin::GroupSend)
        .expect("the team notification")
        .content
        .notification_id;
    let sid = env.ports.notifications.get(item).await.unwrap().unwrap().schedule_id;
    let hook_event =
        shared::model::HookEvent::id_for(shared::model::HookEventType::Accepted, &item.to_string());
    let hooks_before =
        (env.ports.webhooks.endpoint(3).await.unwrap(), env.ports.webhooks.event(&hook_event).await.unwrap());
    assert!(hooks_before.0.is_some() && hooks_before.1.is_some(), "company 3's endpoint and an event of it");

    let outsiders = [
        ("demo-admin-4-token", "00000000-0000-4000-8000-000000000004"),
        ("demo-user-9-token", "00000000-0000-4000-8000-000000000004"),
        ("demo-admin-4-token", "00000000-0000-4000-8000-000000000003"),
        ("demo-user-2-token", "00000000-0000-4000-8000-000000000003"),
        ("demo-event-token", "00000000-0000-4000-8000-000000000003"),
    ];
    let mut calls = 0;
    let mut covered = std::collections::BTreeSet::new();
    for (token, key) in outsiders {
        let bearer = format!("Bearer {token}");
        let ni = [("x-nextinteract-authtoken", token), ("x-nextinteract-company-api-key", key)];
        let mut answers = Vec::new();
        // Write: group send to company 3 (every type that names company 3).
        for body in [
            json!({"version": 3, "type": "GT", "key": "3", "values": ["23"], "message": "intrusion"}),
            json!({"version": 3, "type": "JN", "key": "3", "values": [], "message": "intrusion"}),
            json!({"version": 3, "type": "GA", "key": "3", "brochureId": 4, "message": "intrusion"}),
            json!({"version": 4, "type": "UN", "key": "3", "values": ["aaron.mcmullen@hypermedia.com.au"], "message": "intrusion"}),
            json!({"version": 3, "type": "SN", "key": "11", "values": ["101"], "message": "intrusion"}),
            json!({"version": 3, "type": "GT", "key": "4", "values": ["23"], "message": "intrusion"}),
        ] {
            answers.push(post(&env, "/rest/notification/send", &ni, &body).await);
        }
        // Write: the other dialects, aimed at u1 of company 3.
        answers.push(post(&env, "/desktop-assistant/notifications", &[("authorization", &bearer)],
            &json!({"notification_message": "intrusion", "recipient_list": "11111111111141118111111111111111", "source": "mim"})).await);
        answers.push(
            post(
                &env,
                "/api/data/v9.2/SendAppNotification",
                &[("authorization", &bearer)],
                &json!({"Title": "intrusion", "Recipient": format!("/systemusers({U1})")}),
            )
            .await,
        );
        let dept_path =
            format!("/communications/department/d0000000-0000-4000-8000-000000000001/user/{U1}/notify");
        let req = GatewayRequest::new(
            "POST",
            "/communications/department/{departmentUUID}/user/{userUUID}/notify",
            &dept_path,
        )
        .path_param("departmentUUID", "d0000000-0000-4000-8000-000000000001")
        .path_param("userUUID", U1)
        .header("authorization", &bearer)
        .body(json!({"messageAttributes": {"body": "intrusion"}}).to_string());
        let resp = notify::handle(&env.ports, req.into_request()).await;
        answers.push((resp.status().as_u16(), body_text(&resp)));
        // Read: sent history of company 3, its event, its asset, its record by id.
        for query in [
            "version=1&broadcastType=GT&companyId=3".to_string(),
            "version=1&broadcastType=ET&eventUUID=ed90fcd2-cbb4-49b8-9be4-a14ccbc2d1e8".to_string(),
            "version=1&broadcastType=GA&brochureId=4".to_string(),
            format!("version=1&notificationScheduleId={sid}"),
        ] {
            let req = GatewayRequest::new("GET", "/rest/notification/sent", "/rest/notification/sent")
                .header("x-nextinteract-authtoken", token)
                .query(&query);
            let resp = sent_history::handle(&env.ports, req.into_request()).await;
            answers.push((resp.status().as_u16(), body_text(&resp)));
        }
        // Read and write: u1's notification center.
        let list = GatewayRequest::new(
            "GET",
            "/users/{userId}/notifications",
            &format!("/users/{U1}/notifications"),
        )
        .path_param("userId", U1)
        .header("authorization", &bearer);
        let resp = inbox::handle(&env.ports, list.into_request()).await;
        answers.push((resp.status().as_u16(), body_text(&resp)));
        let dismiss = GatewayRequest::new(
            "POST",
            "/users/{userId}/notifications/{id}/dismiss",
            &format!("/users/{U1}/notifications/{item}/dismiss"),
        )
        .path_param("userId", U1)
        .path_param("id", &item.to_string())
        .header("authorization", &bearer);
        let resp = inbox::handle(&env.ports, dismiss.into_request()).await;
        answers.push((resp.status().as_u16(), body_text(&resp)));
        let user = |method: &str, template: &str, tail: &str| {
            GatewayRequest::new(method, template, &format!("/users/{U1}{tail}"))
                .path_param("userId", U1)
                .header("authorization", &bearer)
        };
        let dismiss_path = format!("/notifications/{item}/dismiss");
        let dismiss_template = "/users/{userId}/notifications/{id}/dismiss";
        let delete = user("DELETE", dismiss_template, &dismiss_path).path_param("id", &item.to_string());
        answers.push(route(&env, &mut covered, "DELETE", dismiss_template, delete).await);
        // u1's badge, marks and mark-alls: nobody but u1 reads the one or changes the others.
        let count = user("GET", "/users/{userId}/notifications/count", "/notifications/count");
        answers.push(route(&env, &mut covered, "GET", "/users/{userId}/notifications/count", count).await);
        for (template, tail) in [
            ("/users/{userId}/notifications/mark-all-seen", "/notifications/mark-all-seen"),
            ("/users/{userId}/notifications/mark-all-read", "/notifications/mark-all-read"),
        ] {
            let req = user("POST", template, tail).body(json!({"archive": true}).to_string());
            answers.push(route(&env, &mut covered, "POST", template, req).await);
        }
        for (template, mark) in [
            ("/users/{userId}/notifications/{id}/seen", "seen"),
            ("/users/{userId}/notifications/{id}/read", "read"),
            ("/users/{userId}/notifications/{id}/unread", "unread"),
            ("/users/{userId}/notifications/{id}/archive", "archive"),
            ("/users/{userId}/notifications/{id}/unarchive", "unarchive"),
        ] {
            let req = user("POST", template, &format!("/notifications/{item}/{mark}"))
                .path_param("id", &item.to_string());
            answers.push(route(&env, &mut covered, "POST", template, req).await);
        }
        // Nobody but u1 listens to u1's center.
        let ticket = user("POST", "/users/{userId}/realtime-ticket", "/realtime-ticket");
        answers.push(route(&env, &mut covered, "POST", "/users/{userId}/realtime-ticket", ticket).await);
        // u1's devices, email status and unsubscribe links.
        let devices = user("GET", "/users/{userId}/devices", "/devices");
        answers.push(route(&env, &mut covered, "GET", "/users/{userId}/devices", devices).await);
        let add = user("POST", "/users/{userId}/devices", "/devices")
            .body(json!({"platform": "GCM", "token": "intruder-device-token"}).to_string());
        answers.push(route(&env, &mut covered, "POST", "/users/{userId}/devices", add).await);
        let remove_template = "/users/{userId}/devices/{deviceId}";
        let remove = user("DELETE", remove_template, &format!("/devices/{device_id}"))
            .path_param("deviceId", &device_id);
        answers.push(route(&env, &mut covered, "DELETE", remove_template, remove).await);
        let email = user("GET", "/users/{userId}/email", "/email");
        answers.push(route(&env, &mut covered, "GET", "/users/{userId}/email", email).await);
        // An unsubscribe link is a signature: without u1's, nobody unsubscribes u1.
        let forged = format!("user={U1}&brochure=4&sig={}", "0".repeat(64));
        for method in ["GET", "POST"] {
            let req = GatewayRequest::new(method, "/unsubscribe", "/unsubscribe")
                .query(&forged)
                .header("authorization", &bearer);
            answers.push(route(&env, &mut covered, method, "/unsubscribe", req).await);
        }

        // Cancel what company 3 has not sent yet, in each dialect (the department's with the
        // principal's own credentials: nobody but the department holds its secret).
        let cancel = GatewayRequest::new(
            "DELETE",
            "/rest/notification/send/{notificationScheduleId}",
            &format!("/rest/notification/send/{scheduled_sid}"),
        )
        .path_param("notificationScheduleId", &scheduled_sid)
        .header("x-nextinteract-authtoken", token)
        .header("x-nextinteract-company-api-key", key);
        answers.push(
            route(&env, &mut covered, "DELETE", "/rest/notification/send/{notificationScheduleId}", cancel)
                .await,
        );
        let template = "/rest/notification/sent/{notificationScheduleId}/log";
        let read_log = GatewayRequest::new("GET", template, &format!("/rest/notification/sent/{sid}/log"))
            .path_param("notificationScheduleId", &sid.to_string())
            .header("x-nextinteract-authtoken", token);
        answers.push(route(&env, &mut covered, "GET", template, read_log).await);
        let change = GatewayRequest::new(
            "PATCH",
            "/rest/notification/send/{notificationScheduleId}",
            &format!("/rest/notification/send/{scheduled_sid}"),
        )
        .path_param("notificationScheduleId", &scheduled_sid)
        .header("x-nextinteract-authtoken", token)
        .header("x-nextinteract-company-api-key", key)
        .body(json!({"message": "intrusion"}).to_string());
        answers.push(
            route(&env, &mut covered, "PATCH", "/rest/notification/send/{notificationScheduleId}", change)
                .await,
        );
        // Retract and correct company 3's delivered send.
        for (template, action, body) in [
            ("/rest/notification/send/{notificationScheduleId}/retract", "retract", None),
            (
                "/rest/notification/send/{notificationScheduleId}/correct",
                "correct",
                Some(json!({"message": "intrusion"})),
            ),
        ] {
            let mut req =
                GatewayRequest::new("POST", template, &format!("/rest/notification/send/{sid}/{action}"))
                    .path_param("notificationScheduleId", &sid.to_string())
                    .header("x-nextinteract-authtoken", token)
                    .header("x-nextinteract-company-api-key", key);
            if let Some(body) = body {
                req = req.body(body.to_string());
            }
            answers.push(route(&env, &mut covered, "POST", template, req).await);
        }
        let sent = env.ports.notifications.get(item).await.unwrap().unwrap();
        assert!(
            sent.retracted.is_none() && sent.corrected.is_none(),
            "{token}: retracted or corrected company 3's send"
        );
        let kept = env.ports.inbox.get(U1.parse().unwrap(), item).await.unwrap();
        assert_eq!(kept.map(|i| i.content.body), Some(SECRET_TEXT.to_string()), "{token}: u1's item changed");
        let template =
            "/communications/department/{departmentUUID}/user/{userUUID}/notify/{notificationMessageUUID}";
        let cancel = GatewayRequest::new("DELETE", template, &format!("{dept_path}/{delayed}"))
            .path_param("departmentUUID", "d0000000-0000-4000-8000-000000000001")
            .path_param("userUUID", U1)
            .path_param("notificationMessageUUID", &delayed)
            .header("authorization", &bearer);
        answers.push(route(&env, &mut covered, "DELETE", template, cancel).await);
        let template = "/api/data/v9.2/appnotifications/{NotificationId}";
        let cancel =
            GatewayRequest::new("DELETE", template, &format!("/api/data/v9.2/appnotifications/{app}"))
                .path_param("NotificationId", &app)
                .header("authorization", &bearer);
        answers.push(route(&env, &mut covered, "DELETE", template, cancel).await);
        // Retract and correct the two that went out: the department's with company 4's
        // department's own credentials, the in-app one as the principal. Refused as someone
        // else's (401, 403, 404), never as a state (409: a check passed that should not have).
        for (action, body) in
            [("retract", None), ("correct", Some(json!({"messageAttributes": {"body": "intrusion"}})))]
        {
            let template: &'static str = match action {
                "retract" => {
                    "/communications/department/{departmentUUID}/user/{userUUID}/notify/{notificationMessageUUID}/retract"
                }
                _ => {
                    "/communications/department/{departmentUUID}/user/{userUUID}/notify/{notificationMessageUUID}/correct"
                }
            };
            let path =
                format!("/communications/department/{other_dept}/user/{U1}/notify/{went_out}/{action}");
            let mut req = GatewayRequest::new("POST", template, &path)
                .path_param("departmentUUID", other_dept)
                .path_param("userUUID", U1)
                .path_param("notificationMessageUUID", &went_out)
                .header("authorization", &other_dept_auth);
            if let Some(body) = body {
                req = req.body(body.to_string());
            }
            let (status, body) = route(&env, &mut covered, "POST", template, req).await;
            assert_eq!(status, 404, "{token}: {action} of company 3's message: {body}");
            answers.push((status, body));
        }
        let template = "/api/data/v9.2/appnotifications/{NotificationId}/retract";
        let retract = GatewayRequest::new(
            "POST",
            template,
            &format!("/api/data/v9.2/appnotifications/{app_out}/retract"),
        )
        .path_param("NotificationId", &app_out)
        .header("authorization", &bearer);
        let refused = route(&env, &mut covered, "POST", template, retract).await;
        assert!(refused.0 != 409, "{token}: retract of company 3's in-app notification: {refused:?}");
        answers.push(refused);
        let template = "/api/data/v9.2/appnotifications/{NotificationId}";
        let correct =
            GatewayRequest::new("PATCH", template, &format!("/api/data/v9.2/appnotifications/{app_out}"))
                .path_param("NotificationId", &app_out)
                .header("authorization", &bearer)
                .body(json!({"Title": "intrusion"}).to_string());
        let refused = route(&env, &mut covered, "PATCH", template, correct).await;
        assert!(refused.0 != 409, "{token}: correction of company 3's in-app notification: {refused:?}");
        answers.push(refused);
        for id in &out {
            let n = env.ports.notifications.get(*id).await.unwrap().unwrap();
            assert!(
                n.retracted.is_none() && n.corrected.is_none(),
                "{token}: retracted or corrected company 3's {:?}",
                n.origin
            );
            let kept = env.ports.inbox.get(U1.parse().unwrap(), *id).await.unwrap().expect("u1 keeps it");
            assert!(
                kept.content.title.contains(SECRET_TEXT) || kept.content.body == SECRET_TEXT,
                "{token}: u1's item changed"
            );
        }
        // Read their delivery logs (the department's with the principal's own credentials).
        let template = "/communications/department/{departmentUUID}/user/{userUUID}/notify/{notificationMessageUUID}/log";
        let read = GatewayRequest::new("GET", template, &format!("{dept_path}/{delayed}/log"))
            .path_param("departmentUUID", "d0000000-0000-4000-8000-000000000001")
            .path_param("userUUID", U1)
            .path_param("notificationMessageUUID", &delayed)
            .header("authorization", &bearer);
        answers.push(route(&env, &mut covered, "GET", template, read).await);
        let template = "/api/data/v9.2/appnotifications/{NotificationId}/log";
        let read =
            GatewayRequest::new("GET", template, &format!("/api/data/v9.2/appnotifications/{app}/log"))
                .path_param("NotificationId", &app)
                .header("authorization", &bearer);
        answers.push(route(&env, &mut covered, "GET", template, read).await);
        // Company 3's webhooks: its endpoint read, its event read or replayed by nobody else. The
        // writes (put, rotate, remove) touch only the caller's own tenant's: company 4's
        // administrator may make, rotate and remove its own, and nothing of company 3's changes.
        let hook_route = |method: &'static str, template: &'static str, path: String, body: Option<Value>| {
            let mut req = GatewayRequest::new(method, template, &path)
                .header("x-nextinteract-authtoken", token)
                .header("x-nextinteract-company-api-key", key);
            if template.contains("{eventId}") {
                req = req.path_param("eventId", &hook_event);
            }
            if let Some(body) = body {
                req = req.body(body.to_string());
            }
            req
        };
        let endpoint = "/rest/notification/webhook";
        let events = "/rest/notification/webhook/events/{eventId}";
        let replay = "/rest/notification/webhook/events/{eventId}/replay";
        let read = hook_route("GET", endpoint, endpoint.into(), None);
        answers.push(route(&env, &mut covered, "GET", endpoint, read).await);
        let read = hook_route("GET", events, format!("/rest/notification/webhook/events/{hook_event}"), None);
        answers.push(route(&env, &mut covered, "GET", events, read).await);
        let again = hook_route(
            "POST",
            replay,
            format!("/rest/notification/webhook/events/{hook_event}/replay"),
            None,
        );
        answers.push(route(&env, &mut covered, "POST", replay, again).await);
        let own_admin = token == "demo-admin-4-token" && key.ends_with("4");
        let intruder = json!({"url": "https://intruder.example.com/hooks"});
        for (method, template, body) in [
            ("PUT", endpoint, Some(intruder)),
            ("POST", "/rest/notification/webhook/rotate", None),
            ("DELETE", endpoint, None),
        ] {
            let req = hook_route(method, template, template.into(), body);
            let (status, body) = route(&env, &mut covered, method, template, req).await;
            assert!(
                own_admin || (400..500).contains(&status),
                "{token}: {method} {template} answered {status}: {body}"
            );
            assert!(!body.contains(SECRET_TEXT), "{token}: {body}");
        }
        let hooks_now = (
            env.ports.webhooks.endpoint(3).await.unwrap(),
            env.ports.webhooks.event(&hook_event).await.unwrap(),
        );
        assert_eq!(hooks_now, hooks_before, "{token}: changed company 3's webhooks");
        for id in &pending {
            let n = env.ports.notifications.get(*id).await.unwrap().unwrap();
            assert_eq!(
                n.status,
                shared::model::Status::Pending,
                "{token}: cancelled company 3's {:?}",
                n.origin
            );
            assert_eq!(n.revision, 0, "{token}: changed company 3's {:?}", n.origin);
            assert!(
                n.retracted.is_none() && n.corrected.is_none(),
                "{token}: retracted or corrected company 3's {:?}",
                n.origin
            );
        }

        // The web inbox's files are public and hold no one's data.
        for path in ["/", "/inbox.js", "/inbox.css"] {
            let req = GatewayRequest::new("GET", path, path).header("authorization", &bearer);
            let (status, body) = route(&env, &mut covered, "GET", path, req).await;
            assert_eq!(status, 200, "{path}");
            assert!(!body.contains(SECRET_TEXT), "{path}");
        }
        for (status, body) in &answers {
            calls += 1;
            assert!(!body.contains(SECRET_TEXT), "{token}: company 3's data leaked: {body}");
            // An empty history is the answer "nothing you may see" (events3 reading its own
            // company's event history, which holds no event notification, gets it too).
            let empty_history = *status == 200 && body == "[]";
            assert!((400..500).contains(status) || empty_history, "{token}: answered {status}: {body}");
        }
        assert_eq!(state(&env).await, before, "{token}: wrote or counted something of company 3");
    }
    let untouched = env.ports.inbox.get(U1.parse().unwrap(), item).await.unwrap().unwrap();
    assert_eq!(untouched.entry.marks, Marks::default(), "no mark on u1's notification");
    assert_eq!(untouched.state, ItemState::default(), "nor a watermark over it");
    assert_eq!(calls, 5 * 47, "every route for every principal");
    // The routes called above directly, and those called through `route`.
    for r in [
        ("POST", "/rest/notification/send"),
        ("POST", "/desktop-assistant/notifications"),
        ("POST", "/api/data/v9.2/SendAppNotification"),
        ("POST", "/communications/department/{departmentUUID}/user/{userUUID}/notify"),
        ("GET", "/rest/notification/sent"),
        ("GET", "/users/{userId}/notifications"),
        ("POST", "/users/{userId}/notifications/{id}/dismiss"),
    ] {
        covered.insert(r);
    }
    let routes: std::collections::BTreeSet<(&str, &str)> =
        local::routes::ROUTES.iter().map(|r| (r.method, r.path)).collect();
    assert_eq!(covered, routes, "every route of the table is tried by every outsider");
}

end_to_end!(no_principal_of_another_tenant_or_lower_role_touches_company_3);
