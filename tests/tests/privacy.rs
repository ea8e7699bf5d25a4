//! No secrets or personal data in logs: every log line of end-to-end runs on memory and moto
//! (ours and the AWS SDK's, at debug level) is captured and searched for tokens, secrets,
//! API keys, email addresses and message bodies.

use serde_json::json;
use shared::http::{GatewayRequest, body_text};
use tests::Env;

const BODY_MARK: &str = "body-marker-7f3a";
const SUBJECT_MARK: &str = "subject-marker-91c2";

/// A device token as FCM's look (about 160 characters), which SNS's refusals quote.
const DEVICE_TOKEN: &str =
    "fcm-privacy-3b1:APA91bPrivacyMarkerPrivacyMarkerPrivacyMarkerPrivacyMarkerPrivacyMarker";

/// Every kind of request, carrying credentials, emails and bodies that must not be logged; and
/// the error paths whose texts quote personal data: a mail server refusing an address (memory:
/// the mailer quotes it as SES does; moto: SES's MessageRejected quoting it), a push service
/// refusing a device (moto: SNS's InvalidParameter quoting its token), DynamoDB refusing a
/// device's item (moto: a ValidationException quoting its values), a callback URL carrying an
/// address that cannot be reached.
async fn run(env: &Env) {
    if let tests::outbox::Outbox::Memory { mailer, .. } = &env.outbox {
        mailer.reject("aaron.mcmullen@hypermedia.com.au");
    }
    let user_1 = "11111111-1111-4111-8111-111111111111";
    let register = || {
        GatewayRequest::new("POST", "/users/{userId}/devices", &format!("/users/{user_1}/devices"))
            .header("authorization", "Bearer demo-user-1-token")
            .path_param("userId", user_1)
            .body(json!({ "platform": "GCM", "token": DEVICE_TOKEN }).to_string())
            .into_request()
    };
    if let Some(prefix) = &env.moto_prefix {
        let set = env.configuration_set.as_deref().expect("a configuration set on moto");
        tests::arm_ses_refusal(set, &["aaron.mcmullen@hypermedia.com.au"]).await;
        tests::arm_sns_refusal(&format!("{prefix}GCM"), 100).await;
        tests::arm_fault(&format!("{prefix}DirectoryTable"), "PutItem", 1, "ValidationException").await;
        let refused = inbox::handle(&env.ports, register()).await;
        assert!(refused.status().as_u16() >= 500, "DynamoDB refused the device: {}", body_text(&refused));
    }
    let registered = inbox::handle(&env.ports, register()).await;
    assert!(registered.status().is_success(), "{}", body_text(&registered));
    let ni = |body: serde_json::Value, key: usize| {
        GatewayRequest::new("POST", "/rest/notification/send", "/rest/notification/send")
            .header("x-nextinteract-authtoken", "demo-admin-token")
            .header("x-nextinteract-company-api-key", "00000000-0000-4000-8000-000000000003")
            .header("Idempotency-Key", &format!("privacy-{key}"))
            .body(body.to_string())
            .into_request()
    };
    let sends = [
        json!({"version": 4, "type": "UN", "key": "3", "values": ["aaron.mcmullen@hypermedia.com.au"], "message": BODY_MARK}),
        json!({"version": 4, "type": "UN", "key": "3", "values": ["nobody@private.example"], "message": BODY_MARK}),
        json!({"version": 3, "type": "GT", "key": "3", "values": ["23"], "message": BODY_MARK, "emailTemplate": "Client.Generic.Notification.html", "emailSubject": SUBJECT_MARK}),
    ];
    for (key, body) in sends.into_iter().enumerate() {
        let resp = send::handle(&env.ports, ni(body, key)).await;
        assert!(resp.status().as_u16() < 500, "{}", body_text(&resp));
    }
    let dept = GatewayRequest::new("POST", "/communications/department/{departmentUUID}/user/{userUUID}/notify",
        "/communications/department/d0000000-0000-4000-8000-000000000001/user/11111111-1111-4111-8111-111111111111/notify")
        .path_param("departmentUUID", "d0000000-0000-4000-8000-000000000001")
        .path_param("userUUID", "11111111-1111-4111-8111-111111111111")
        .header("authorization", "Basic ZGVtby1kZXB0OmRlbW8tc2VjcmV0")
        .body(json!({"messageAttributes": {"body": BODY_MARK, "subject": SUBJECT_MARK}, "messageSendingAttributesLite": {"sendSynchronously": true}}).to_string());
    assert_eq!(notify::handle(&env.ports, dept.into_request()).await.status(), 200);
    let wrong = GatewayRequest::new("POST", "/communications/department/{departmentUUID}/user/{userUUID}/notify",
        "/communications/department/d0000000-0000-4000-8000-000000000001/user/11111111-1111-4111-8111-111111111111/notify")
        .path_param("departmentUUID", "d0000000-0000-4000-8000-000000000001")
        .path_param("userUUID", "11111111-1111-4111-8111-111111111111")
        .header("authorization", "Basic ZGVtby1kZXB0Ondyb25nLXNlY3JldA==")
        .body("{}");
    assert_eq!(notify::handle(&env.ports, wrong.into_request()).await.status(), 401);
    let unreachable = GatewayRequest::new("POST", "/communications/department/{departmentUUID}/user/{userUUID}/notify",
        "/communications/department/d0000000-0000-4000-8000-000000000001/user/11111111-1111-4111-8111-111111111111/notify")
        .path_param("departmentUUID", "d0000000-0000-4000-8000-000000000001")
        .path_param("userUUID", "11111111-1111-4111-8111-111111111111")
        .header("authorization", "Basic ZGVtby1kZXB0OmRlbW8tc2VjcmV0")
        .body(json!({"messageAttributes": {"body": BODY_MARK}, "messageSendingAttributesLite": {
            "callBackUrl": "http://127.0.0.1:9/cb?who=callback.person@private.example"}}).to_string());
    assert_eq!(notify::handle(&env.ports, unreachable.into_request()).await.status(), 200);
    let app = GatewayRequest::new("POST", "/api/data/v9.2/SendAppNotification", "/api/data/v9.2/SendAppNotification")
        .header("authorization", "Bearer demo-admin-token")
        .body(json!({"Title": SUBJECT_MARK, "Body": BODY_MARK, "Recipient": "/systemusers(11111111-1111-4111-8111-111111111111)", "Data": "{\"x\":1}"}).to_string());
    assert_eq!(notify::handle(&env.ports, app.into_request()).await.status(), 200);
    let bad_token =
        GatewayRequest::new("POST", "/desktop-assistant/notifications", "/desktop-assistant/notifications")
            .header("authorization", "Bearer not-a-real-token-5521")
            .body("{}");
    assert_eq!(notify::handle(&env.ports, bad_token.into_request()).await.status(), 401);
    local::workers::run_until_idle(&env.ports, env.max_receives).await.unwrap();
    let list = GatewayRequest::new(
        "GET",
        "/users/{userId}/notifications",
        "/users/11111111-1111-4111-8111-111111111111/notifications",
    )
    .path_param("userId", "11111111-1111-4111-8111-111111111111")
    .header("authorization", "Bearer demo-user-1-token");
    let resp = inbox::handle(&env.ports, list.into_request()).await;
    assert!(body_text(&resp).contains(BODY_MARK), "the run delivered");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_hold_no_credentials_emails_or_message_bodies() {
    let capture = tests::logs::capture("debug");

    run(&Env::memory().await).await;
    run(&Env::moto().await).await;

    // A record of the `log` crate lands in the capture as our own lines do.
    log::warn!("log-crate record {}", "captured");
    let logs = capture.text();
    assert!(logs.contains("log-crate record captured"), "log records are captured");
    assert!(logs.lines().count() > 20, "logs were captured:\n{logs}");
    assert!(
        logs.contains("notification accepted") && logs.contains("fan-out finished"),
        "our own lines are in"
    );
    assert!(logs.matches("email refused").count() >= 2, "the refused address ran, on memory and on moto");
    assert!(logs.contains("push refused"), "SNS's refusal of the device ran");
    assert!(logs.contains("One or more parameter values were invalid"), "DynamoDB's refusal ran");
    assert!(logs.contains("callback given up"), "the unreachable callback ran");
    for secret in [
        "demo-admin-token",
        "demo-user-1-token",
        "not-a-real-token-5521",
        "demo-secret",
        "wrong-secret",
        "ZGVtby1kZXB0",
        "00000000-0000-4000-8000-000000000003",
        "aaron.mcmullen",
        "@demo.example",
        "@private.example",
        DEVICE_TOKEN,
        "PrivacyMarker",
        BODY_MARK,
        SUBJECT_MARK,
    ] {
        let hits: Vec<&str> = logs.lines().filter(|l| l.contains(secret)).take(3).collect();
        assert!(hits.is_empty(), "{secret:?} appears in the logs:\n{}", hits.join("\n"));
    }
    println!("privacy: {} log lines captured, no credential, email or body in them", logs.lines().count());
}
