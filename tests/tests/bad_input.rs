//! Bad input never panics and never answers 5xx, on any route: arbitrary bytes, arbitrary
//! JSON, and valid requests with one field replaced by arbitrary JSON. Bodies over Lambda's
//! 6 MB synchronous payload cap answer 413 before they are parsed.

use proptest::prelude::*;
use serde_json::{Value, json};
use shared::http::GatewayRequest;
use shared::ports::Ports;

const U1: &str = "11111111-1111-4111-8111-111111111111";
const DEPT: &str = "d0000000-0000-4000-8000-000000000001";

/// A POST route: how to build its request, and a valid body to mutate.
struct Route {
    name: &'static str,
    build: fn(Vec<u8>) -> GatewayRequest,
    valid: fn() -> Value,
}

fn routes() -> Vec<Route> {
    vec![
        Route {
            name: "send",
            build: |b| {
                GatewayRequest::new("POST", "/rest/notification/send", "/rest/notification/send")
                    .header("x-nextinteract-authtoken", "demo-admin-token")
                    .header("x-nextinteract-company-api-key", "00000000-0000-4000-8000-000000000003")
                    .body(b)
            },
            valid: || {
                json!({"version": 3, "type": "GT", "key": "3", "values": ["23"], "message": "m", "url": "https://x.example",
                "scheduleTimezoneId": "UTC", "scheduleLocalDateTime": "2030-01-01T00:00:00", "brochureId": 4,
                "emailTemplate": "Client.Generic.Notification.html", "emailSubject": "s", "emailParams": [{"key": "k", "value": "v"}]})
            },
        },
        Route {
            name: "department",
            build: |b| {
                GatewayRequest::new(
                    "POST",
                    "/communications/department/{departmentUUID}/user/{userUUID}/notify",
                    &format!("/communications/department/{DEPT}/user/{U1}/notify"),
                )
                .path_param("departmentUUID", DEPT)
                .path_param("userUUID", U1)
                .header("authorization", "Basic ZGVtby1kZXB0OmRlbW8tc2VjcmV0")
                .body(b)
            },
            valid: || {
                json!({"messageAttributes": {"body": "b", "type": "MESSAGE", "subject": "s", "draftAttributes": {"draftStatus": "DRAFT"}},
                "notificationAttributes": {"notificationButtons": [{"buttonTheme": "PRIMARY"}]},
                "messageSendingAttributesLite": {"delay": 0, "sendSynchronously": true, "callBackMetadata": {}}})
            },
        },
        Route {
            name: "desktop",
            build: |b| {
                GatewayRequest::new(
                    "POST",
                    "/desktop-assistant/notifications",
                    "/desktop-assistant/notifications",
                )
                .header("authorization", "Bearer demo-admin-token")
                .body(b)
            },
            valid: || {
                json!({"notification_title": "t", "notification_message": "m", "recipient_list": "11111111111141118111111111111111",
                "referrer_table": "incident", "referrer_id": "x", "source": "mim"})
            },
        },
        Route {
            name: "app",
            build: |b| {
                GatewayRequest::new(
                    "POST",
                    "/api/data/v9.2/SendAppNotification",
                    "/api/data/v9.2/SendAppNotification",
                )
                .header("authorization", "Bearer demo-admin-token")
                .body(b)
            },
            valid: || {
                json!({"Title": "t", "Body": "b", "Recipient": format!("/systemusers({U1})"), "IconType": 100000000, "ToastType": 200000000,
                "Priority": 200000001, "TTLInSeconds": 60, "Data": "{}", "OverrideContent": {"title": "**t**"},
                "Actions": {"actions": [{"title": "a", "data": {"type": "url", "url": "https://x.example"}}]}})
            },
        },
    ]
}

async fn call(ports: &Ports, route: &Route, body: Vec<u8>) -> u16 {
    let req = (route.build)(body).into_request();
    let resp = match route.name {
        "send" => send::handle(ports, req).await,
        _ => notify::handle(ports, req).await,
    };
    resp.status().as_u16()
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<u64>().prop_map(|n| json!(n)),
        (-1e300f64..1e300).prop_map(|f| json!(f)),
        ".{0,40}".prop_map(Value::String),
        Just(Value::String("x".repeat(3000))),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(".{0,12}", inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A valid body with the value at one (possibly nested, possibly new) key replaced.
fn mutate(mut body: Value, path: &[usize], replacement: Value, new_key: Option<String>) -> Value {
    let mut cursor = &mut body;
    for (depth, &i) in path.iter().enumerate() {
        let Value::Object(map) = cursor else { break };
        if map.is_empty() {
            break;
        }
        let key = map.keys().nth(i % map.len()).cloned().expect("non-empty");
        let last = depth + 1 == path.len() || !map[&key].is_object();
        if last {
            match &new_key {
                Some(k) => map.insert(k.clone(), replacement),
                None => map.insert(key, replacement),
            };
            return body;
        }
        cursor = map.get_mut(&key).expect("present");
    }
    body
}

fn runtime_and_ports() -> (tokio::runtime::Runtime, Ports) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let ports = rt.block_on(async { tests::Env::memory().await.ports });
    (rt, ports)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_5xx(bytes in prop::collection::vec(any::<u8>(), 0..512), which in 0usize..4) {
        let (rt, ports) = runtime_and_ports();
        let routes = routes();
        let status = rt.block_on(call(&ports, &routes[which], bytes));
        prop_assert!(status < 500, "{} answered {status}", routes[which].name);
    }

    #[test]
    fn arbitrary_json_never_5xx(value in json_value(), which in 0usize..4) {
        let (rt, ports) = runtime_and_ports();
        let routes = routes();
        let status = rt.block_on(call(&ports, &routes[which], value.to_string().into_bytes()));
        prop_assert!(status < 500, "{} answered {status} to {value}", routes[which].name);
    }

    #[test]
    fn one_bad_field_never_5xx(
        which in 0usize..4,
        path in prop::collection::vec(any::<usize>(), 1..4),
        replacement in json_value(),
        new_key in prop::option::of("[a-zA-Z@.]{1,12}"),
    ) {
        let (rt, ports) = runtime_and_ports();
        let routes = routes();
        let body = mutate((routes[which].valid)(), &path, replacement, new_key);
        let status = rt.block_on(call(&ports, &routes[which], body.to_string().into_bytes()));
        prop_assert!(status < 500, "{} answered {status} to {body}", routes[which].name);
    }

    #[test]
    fn query_strings_never_5xx(query in "[a-zA-Z=&%0-9._~-]{0,80}", token in prop_oneof![Just("demo-admin-token"), Just("demo-user-1-token"), Just("x")]) {
        let (rt, ports) = runtime_and_ports();
        let history = GatewayRequest::new("GET", "/rest/notification/sent", "/rest/notification/sent")
            .header("x-nextinteract-authtoken", token).query(&query).into_request();
        let inbox_req = GatewayRequest::new("GET", "/users/{userId}/notifications", &format!("/users/{U1}/notifications"))
            .path_param("userId", U1).header("authorization", &format!("Bearer {token}")).query(&query).into_request();
        let (a, b) = rt.block_on(async { (sent_history::handle(&ports, history).await.status(), inbox::handle(&ports, inbox_req).await.status()) });
        prop_assert!(a.as_u16() < 500 && b.as_u16() < 500, "{a} {b} for {query}");
    }
}

#[tokio::test]
async fn the_valid_bodies_are_valid() {
    let env = tests::Env::memory().await;
    for route in routes() {
        assert_eq!(
            call(&env.ports, &route, (route.valid)().to_string().into_bytes()).await,
            200,
            "{}",
            route.name
        );
    }
}

#[tokio::test]
async fn oversized_bodies_answer_413_on_every_route() {
    let env = tests::Env::memory().await;
    let huge = vec![b'{'; shared::http::MAX_BODY_BYTES + 1];
    for route in routes() {
        assert_eq!(call(&env.ports, &route, huge.clone()).await, 413, "{}", route.name);
    }
}
