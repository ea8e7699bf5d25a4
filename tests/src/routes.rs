//! Every route of the API with a valid request for it (company 3's principals, the demo
//! directory), so that the route-wide tests — bad input, oversized bodies — take their list
//! from the route table (`local::routes::ROUTES`, itself equal to `template.yaml`'s) and a route
//! added without a sample here fails `every_route_has_a_sample`.

use serde_json::{Value, json};
use shared::http::GatewayRequest;
use shared::runtime::Ports;

pub const U1: &str = "11111111-1111-4111-8111-111111111111";
pub const DEPT: &str = "d0000000-0000-4000-8000-000000000001";
const NOTIFICATION: &str = "0d3b5a52-7c0e-4d6e-9a59-2f2b8c1e0a11";

/// One route and a valid request for it.
pub struct Sample {
    pub method: &'static str,
    pub path: &'static str,
    /// The request, with `body` as its body and `query` as its query string.
    pub build: fn(&Ports, Vec<u8>, &str) -> GatewayRequest,
    /// A valid body (routes that read one), to mutate.
    pub valid: Option<fn() -> Value>,
    /// A valid query string.
    pub query: &'static str,
}

fn request(method: &str, template: &str, path: &str, body: Vec<u8>, query: &str) -> GatewayRequest {
    GatewayRequest::new(method, template, path).body(body).query(query)
}

fn user_route(method: &str, template: &str, tail: &str, body: Vec<u8>, query: &str) -> GatewayRequest {
    request(method, template, &format!("/users/{U1}{tail}"), body, query)
        .path_param("userId", U1)
        .header("authorization", "Bearer demo-user-1-token")
}

/// A request of the tenant's webhook routes, as company 3's administrator.
fn webhook_route(method: &str, template: &str, path: &str, body: Vec<u8>, query: &str) -> GatewayRequest {
    let mut req = request(method, template, path, body, query)
        .header("x-nextinteract-authtoken", "demo-admin-token")
        .header("x-nextinteract-company-api-key", "00000000-0000-4000-8000-000000000003");
    if template.contains("{eventId}") {
        req = req.path_param("eventId", HOOK_EVENT);
    }
    req
}

/// An event id of the right shape (company 3 has no such event).
const HOOK_EVENT: &str = "msg_0123456789abcdef0123456789";

/// The sample of a webhook route with no body.
macro_rules! webhook_sample {
    ($method:literal, $template:literal, $path:expr) => {
        Sample {
            method: $method,
            path: $template,
            build: |_, body, q| webhook_route($method, $template, &$path, body, q),
            valid: None,
            query: "",
        }
    };
}

/// The sample of `POST /users/{userId}/notifications/{id}/{mark}`.
macro_rules! mark_sample {
    ($mark:literal) => {
        Sample {
            method: "POST",
            path: concat!("/users/{userId}/notifications/{id}/", $mark),
            build: |_, body, q| {
                user_route(
                    "POST",
                    concat!("/users/{userId}/notifications/{id}/", $mark),
                    &format!("/notifications/{NOTIFICATION}/{}", $mark),
                    body,
                    q,
                )
                .path_param("id", NOTIFICATION)
            },
            valid: None,
            query: "",
        }
    };
}

/// The sample of `POST …/notify/{notificationMessageUUID}/{action}` (a department message's
/// retraction or correction), with its valid body if it reads one.
macro_rules! department_message_sample {
    ($action:literal, $valid:expr) => {
        Sample {
            method: "POST",
            path: concat!(
                "/communications/department/{departmentUUID}/user/{userUUID}/notify/{notificationMessageUUID}/",
                $action
            ),
            build: |_, body, q| {
                request(
                    "POST",
                    concat!(
                        "/communications/department/{departmentUUID}/user/{userUUID}/notify/{notificationMessageUUID}/",
                        $action
                    ),
                    &format!("/communications/department/{DEPT}/user/{U1}/notify/{NOTIFICATION}/{}", $action),
                    body,
                    q,
                )
                .path_param("departmentUUID", DEPT)
                .path_param("userUUID", U1)
                .path_param("notificationMessageUUID", NOTIFICATION)
                .header("authorization", "Basic ZGVtby1kZXB0OmRlbW8tc2VjcmV0")
            },
            valid: $valid,
            query: "",
        }
    };
}

/// The sample of a web inbox file (no credentials: the page signs in itself).
macro_rules! web_sample {
    ($path:literal) => {
        Sample {
            method: "GET",
            path: $path,
            build: |_, body, q| request("GET", $path, $path, body, q),
            valid: None,
            query: "",
        }
    };
}

/// Every route's sample.
pub fn samples() -> Vec<Sample> {
    vec![
        web_sample!("/"),
        web_sample!("/inbox.js"),
        web_sample!("/inbox.css"),
        Sample {
            method: "POST",
            path: "/rest/notification/send",
            build: |_, body, q| {
                request("POST", "/rest/notification/send", "/rest/notification/send", body, q)
                    .header("x-nextinteract-authtoken", "demo-admin-token")
                    .header("x-nextinteract-company-api-key", "00000000-0000-4000-8000-000000000003")
            },
            valid: Some(|| json!({"version": 3, "type": "GT", "key": "3", "values": ["23"], "message": "m"})),
            query: "",
        },
        Sample {
            method: "DELETE",
            path: "/rest/notification/send/{notificationScheduleId}",
            build: |_, body, q| {
                request(
                    "DELETE",
                    "/rest/notification/send/{notificationScheduleId}",
                    "/rest/notification/send/1",
                    body,
                    q,
                )
                .path_param("notificationScheduleId", "1")
                .header("x-nextinteract-authtoken", "demo-admin-token")
                .header("x-nextinteract-company-api-key", "00000000-0000-4000-8000-000000000003")
            },
            valid: None,
            query: "",
        },
        Sample {
            method: "GET",
            path: "/rest/notification/sent/{notificationScheduleId}/log",
            build: |_, body, q| {
                request(
                    "GET",
                    "/rest/notification/sent/{notificationScheduleId}/log",
                    "/rest/notification/sent/1/log",
                    body,
                    q,
                )
                .path_param("notificationScheduleId", "1")
                .header("x-nextinteract-authtoken", "demo-admin-token")
            },
            valid: None,
            query: "limit=10",
        },
        Sample {
            method: "PATCH",
            path: "/rest/notification/send/{notificationScheduleId}",
            build: |_, body, q| {
                request(
                    "PATCH",
                    "/rest/notification/send/{notificationScheduleId}",
                    "/rest/notification/send/1",
                    body,
                    q,
                )
                .path_param("notificationScheduleId", "1")
                .header("x-nextinteract-authtoken", "demo-admin-token")
                .header("x-nextinteract-company-api-key", "00000000-0000-4000-8000-000000000003")
            },
            valid: Some(|| json!({"message": "moved", "url": "https://example.com/m"})),
            query: "",
        },
        Sample {
            method: "POST",
            path: "/rest/notification/send/{notificationScheduleId}/retract",
            build: |_, body, q| {
                request(
                    "POST",
                    "/rest/notification/send/{notificationScheduleId}/retract",
                    "/rest/notification/send/1/retract",
                    body,
                    q,
                )
                .path_param("notificationScheduleId", "1")
                .header("x-nextinteract-authtoken", "demo-admin-token")
                .header("x-nextinteract-company-api-key", "00000000-0000-4000-8000-000000000003")
            },
            valid: None,
            query: "",
        },
        Sample {
            method: "POST",
            path: "/rest/notification/send/{notificationScheduleId}/correct",
            build: |_, body, q| {
                request(
                    "POST",
                    "/rest/notification/send/{notificationScheduleId}/correct",
                    "/rest/notification/send/1/correct",
                    body,
                    q,
                )
                .path_param("notificationScheduleId", "1")
                .header("x-nextinteract-authtoken", "demo-admin-token")
                .header("x-nextinteract-company-api-key", "00000000-0000-4000-8000-000000000003")
            },
            valid: Some(|| json!({"message": "corrected", "url": "https://example.com/c"})),
            query: "",
        },
        webhook_sample!("GET", "/rest/notification/webhook", "/rest/notification/webhook"),
        Sample {
            method: "PUT",
            path: "/rest/notification/webhook",
            build: |_, body, q| {
                webhook_route("PUT", "/rest/notification/webhook", "/rest/notification/webhook", body, q)
            },
            valid: Some(
                || json!({"url": "https://hooks.example.com/n", "events": ["notification.delivered"], "enabled": true}),
            ),
            query: "",
        },
        webhook_sample!("DELETE", "/rest/notification/webhook", "/rest/notification/webhook"),
        webhook_sample!("POST", "/rest/notification/webhook/rotate", "/rest/notification/webhook/rotate"),
        webhook_sample!(
            "GET",
            "/rest/notification/webhook/events/{eventId}",
            format!("/rest/notification/webhook/events/{HOOK_EVENT}")
        ),
        webhook_sample!(
            "POST",
            "/rest/notification/webhook/events/{eventId}/replay",
            format!("/rest/notification/webhook/events/{HOOK_EVENT}/replay")
        ),
        Sample {
            method: "DELETE",
            path: "/communications/department/{departmentUUID}/user/{userUUID}/notify/{notificationMessageUUID}",
            build: |_, body, q| {
                request(
                    "DELETE",
                    "/communications/department/{departmentUUID}/user/{userUUID}/notify/{notificationMessageUUID}",
                    &format!("/communications/department/{DEPT}/user/{U1}/notify/{NOTIFICATION}"),
                    body,
                    q,
                )
                .path_param("departmentUUID", DEPT)
                .path_param("userUUID", U1)
                .path_param("notificationMessageUUID", NOTIFICATION)
                .header("authorization", "Basic ZGVtby1kZXB0OmRlbW8tc2VjcmV0")
            },
            valid: None,
            query: "",
        },
        Sample {
            method: "DELETE",
            path: "/api/data/v9.2/appnotifications/{NotificationId}",
            build: |_, body, q| {
                request(
                    "DELETE",
                    "/api/data/v9.2/appnotifications/{NotificationId}",
                    &format!("/api/data/v9.2/appnotifications/{NOTIFICATION}"),
                    body,
                    q,
                )
                .path_param("NotificationId", NOTIFICATION)
                .header("authorization", "Bearer demo-admin-token")
            },
            valid: None,
            query: "",
        },
        Sample {
            method: "GET",
            path: "/communications/department/{departmentUUID}/user/{userUUID}/notify/{notificationMessageUUID}/log",
            build: |_, body, q| {
                request(
                    "GET",
                    "/communications/department/{departmentUUID}/user/{userUUID}/notify/{notificationMessageUUID}/log",
                    &format!("/communications/department/{DEPT}/user/{U1}/notify/{NOTIFICATION}/log"),
                    body,
                    q,
                )
                .path_param("departmentUUID", DEPT)
                .path_param("userUUID", U1)
                .path_param("notificationMessageUUID", NOTIFICATION)
                .header("authorization", "Basic ZGVtby1kZXB0OmRlbW8tc2VjcmV0")
            },
            valid: None,
            query: "limit=10",
        },
        Sample {
            method: "GET",
            path: "/api/data/v9.2/appnotifications/{NotificationId}/log",
            build: |_, body, q| {
                request(
                    "GET",
                    "/api/data/v9.2/appnotifications/{NotificationId}/log",
                    &format!("/api/data/v9.2/appnotifications/{NOTIFICATION}/log"),
                    body,
                    q,
                )
                .path_param("NotificationId", NOTIFICATION)
                .header("authorization", "Bearer demo-admin-token")
            },
            valid: None,
            query: "limit=10",
        },
        department_message_sample!("retract", None),
        department_message_sample!(
            "correct",
            Some(|| json!({"messageAttributes": {"subject": "s, corrected", "body": "hi, corrected"}}))
        ),
        Sample {
            method: "POST",
            path: "/api/data/v9.2/appnotifications/{NotificationId}/retract",
            build: |_, body, q| {
                request(
                    "POST",
                    "/api/data/v9.2/appnotifications/{NotificationId}/retract",
                    &format!("/api/data/v9.2/appnotifications/{NOTIFICATION}/retract"),
                    body,
                    q,
                )
                .path_param("NotificationId", NOTIFICATION)
                .header("authorization", "Bearer demo-admin-token")
            },
            valid: None,
            query: "",
        },
        Sample {
            method: "PATCH",
            path: "/api/data/v9.2/appnotifications/{NotificationId}",
            build: |_, body, q| {
                request(
                    "PATCH",
                    "/api/data/v9.2/appnotifications/{NotificationId}",
                    &format!("/api/data/v9.2/appnotifications/{NOTIFICATION}"),
                    body,
                    q,
                )
                .path_param("NotificationId", NOTIFICATION)
                .header("authorization", "Bearer demo-admin-token")
            },
            valid: Some(
                || json!({"Title": "t, corrected", "Body": "b, corrected", "OverrideContent": {"title": "**t**"}}),
            ),
            query: "",
        },
        Sample {
            method: "GET",
            path: "/rest/notification/sent",
            build: |_, body, q| {
                request("GET", "/rest/notification/sent", "/rest/notification/sent", body, q)
                    .header("x-nextinteract-authtoken", "demo-admin-token")
            },
            valid: None,
            query: "version=1&broadcastType=GT&companyId=3",
        },
        Sample {
            method: "POST",
            path: "/communications/department/{departmentUUID}/user/{userUUID}/notify",
            build: |_, body, q| {
                request(
                    "POST",
                    "/communications/department/{departmentUUID}/user/{userUUID}/notify",
                    &format!("/communications/department/{DEPT}/user/{U1}/notify"),
                    body,
                    q,
                )
                .path_param("departmentUUID", DEPT)
                .path_param("userUUID", U1)
                .header("authorization", "Basic ZGVtby1kZXB0OmRlbW8tc2VjcmV0")
            },
            valid: Some(|| json!({"messageAttributes": {"body": "hi", "subject": "s"}})),
            query: "",
        },
        Sample {
            method: "POST",
            path: "/desktop-assistant/notifications",
            build: |_, body, q| {
                request(
                    "POST",
                    "/desktop-assistant/notifications",
                    "/desktop-assistant/notifications",
                    body,
                    q,
                )
                .header("authorization", "Bearer demo-admin-token")
            },
            valid: Some(
                || json!({"notification_message": "m", "recipient_list": U1.replace('-', ""), "source": "mim"}),
            ),
            query: "",
        },
        Sample {
            method: "POST",
            path: "/api/data/v9.2/SendAppNotification",
            build: |_, body, q| {
                request(
                    "POST",
                    "/api/data/v9.2/SendAppNotification",
                    "/api/data/v9.2/SendAppNotification",
                    body,
                    q,
                )
                .header("authorization", "Bearer demo-admin-token")
            },
            valid: Some(|| {
                json!({"Title": "t", "Body": "b", "Recipient": format!("/systemusers({U1})"),
                    "IconType": 100000000, "ToastType": 200000000})
            }),
            query: "",
        },
        Sample {
            method: "GET",
            path: "/users/{userId}/notifications",
            build: |_, body, q| user_route("GET", "/users/{userId}/notifications", "/notifications", body, q),
            valid: None,
            query: "limit=10",
        },
        Sample {
            method: "GET",
            path: "/users/{userId}/notifications/count",
            build: |_, body, q| {
                user_route("GET", "/users/{userId}/notifications/count", "/notifications/count", body, q)
            },
            valid: None,
            query: "",
        },
        Sample {
            method: "POST",
            path: "/users/{userId}/notifications/mark-all-seen",
            build: |_, body, q| {
                user_route(
                    "POST",
                    "/users/{userId}/notifications/mark-all-seen",
                    "/notifications/mark-all-seen",
                    body,
                    q,
                )
            },
            valid: None,
            query: "",
        },
        Sample {
            method: "POST",
            path: "/users/{userId}/notifications/mark-all-read",
            build: |_, body, q| {
                user_route(
                    "POST",
                    "/users/{userId}/notifications/mark-all-read",
                    "/notifications/mark-all-read",
                    body,
                    q,
                )
            },
            valid: Some(|| json!({"archive": true})),
            query: "",
        },
        mark_sample!("seen"),
        mark_sample!("read"),
        mark_sample!("unread"),
        mark_sample!("archive"),
        mark_sample!("unarchive"),
        Sample {
            method: "POST",
            path: "/users/{userId}/notifications/{id}/dismiss",
            build: |_, body, q| {
                user_route(
                    "POST",
                    "/users/{userId}/notifications/{id}/dismiss",
                    &format!("/notifications/{NOTIFICATION}/dismiss"),
                    body,
                    q,
                )
                .path_param("id", NOTIFICATION)
            },
            valid: None,
            query: "",
        },
        Sample {
            method: "DELETE",
            path: "/users/{userId}/notifications/{id}/dismiss",
            build: |_, body, q| {
                user_route(
                    "DELETE",
                    "/users/{userId}/notifications/{id}/dismiss",
                    &format!("/notifications/{NOTIFICATION}/dismiss"),
                    body,
                    q,
                )
                .path_param("id", NOTIFICATION)
            },
            valid: None,
            query: "",
        },
        Sample {
            method: "POST",
            path: "/users/{userId}/realtime-ticket",
            build: |_, body, q| {
                user_route("POST", "/users/{userId}/realtime-ticket", "/realtime-ticket", body, q)
            },
            valid: None,
            query: "",
        },
        Sample {
            method: "GET",
            path: "/users/{userId}/devices",
            build: |_, body, q| user_route("GET", "/users/{userId}/devices", "/devices", body, q),
            valid: None,
            query: "",
        },
        Sample {
            method: "POST",
            path: "/users/{userId}/devices",
            build: |_, body, q| user_route("POST", "/users/{userId}/devices", "/devices", body, q),
            valid: Some(|| json!({"platform": "GCM", "token": "fcm-token-for-bad-input"})),
            query: "",
        },
        Sample {
            method: "DELETE",
            path: "/users/{userId}/devices/{deviceId}",
            build: |_, body, q| {
                user_route("DELETE", "/users/{userId}/devices/{deviceId}", "/devices/nope", body, q)
                    .path_param("deviceId", "nope")
            },
            valid: None,
            query: "",
        },
        Sample {
            method: "GET",
            path: "/users/{userId}/email",
            build: |_, body, q| user_route("GET", "/users/{userId}/email", "/email", body, q),
            valid: None,
            query: "",
        },
        Sample {
            method: "GET",
            path: "/unsubscribe",
            build: |_, body, q| request("GET", "/unsubscribe", "/unsubscribe", body, q),
            valid: None,
            query: "user=11111111-1111-4111-8111-111111111111&brochure=4&sig=00",
        },
        Sample {
            method: "POST",
            path: "/unsubscribe",
            build: |_, body, q| {
                request("POST", "/unsubscribe", "/unsubscribe", body, q)
                    .header("content-type", "application/x-www-form-urlencoded")
            },
            valid: None,
            query: "user=11111111-1111-4111-8111-111111111111&brochure=4&sig=00",
        },
    ]
}

/// Calls a route as API Gateway would, through the function that serves it.
/// `sample`'s request with its notification (a path's `{notificationMessageUUID}` or
/// `{NotificationId}`) replaced by `notification`: one that exists, for a test that needs the
/// request to go past the lookup.
pub async fn call_on(
    ports: &Ports,
    sample: &Sample,
    body: Vec<u8>,
    notification: &str,
) -> lambda_http::Response<lambda_http::Body> {
    let function = local::routes::ROUTES
        .iter()
        .find(|r| r.method == sample.method && r.path == sample.path)
        .unwrap_or_else(|| panic!("{} {} is not a route", sample.method, sample.path))
        .function();
    let mut req = (sample.build)(ports, body, sample.query);
    for name in ["notificationMessageUUID", "NotificationId"] {
        if sample.path.contains(&format!("{{{name}}}")) {
            req = req.path_param(name, notification);
        }
    }
    local::routes::call(function, ports, req.into_request()).await
}

pub async fn call(
    ports: &Ports,
    sample: &Sample,
    body: Vec<u8>,
    query: &str,
) -> lambda_http::Response<lambda_http::Body> {
    let function = local::routes::ROUTES
        .iter()
        .find(|r| r.method == sample.method && r.path == sample.path)
        .unwrap_or_else(|| panic!("{} {} is not a route", sample.method, sample.path))
        .function();
    local::routes::call(function, ports, (sample.build)(ports, body, query).into_request()).await
}
