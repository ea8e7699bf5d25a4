//! In-process latency of each HTTP handler on the memory adapters, from the API Gateway event
//! through lambda_http's conversion to the response: p50, p99 and max over 100,000 calls after
//! a warm-up.

use std::time::Instant;

use lambda_http::Request;
use serde_json::{Value, json};
use shared::http::GatewayRequest;
use shared::runtime::MemoryPorts;
use shared::runtime::Ports;

use crate::percentile_us;

const CALLS: usize = 100_000;
const WARMUP: usize = 2_000;
const U1: &str = "11111111-1111-4111-8111-111111111111";

type Build = Box<dyn Fn(usize) -> GatewayRequest>;

fn cases() -> Vec<(&'static str, Build)> {
    vec![
        (
            "send v3 GT",
            Box::new(|_| {
                GatewayRequest::new("POST", "/rest/notification/send", "/rest/notification/send")
                    .header("x-nextinteract-authtoken", "demo-admin-token")
                    .header("x-nextinteract-company-api-key", "00000000-0000-4000-8000-000000000003")
                    .body(json!({"version": 3, "type": "GT", "key": "3", "values": ["23", "27"], "message": "bench"}).to_string())
            }),
        ),
        (
            "department notify",
            Box::new(|_| {
                let path = format!(
                    "/communications/department/d0000000-0000-4000-8000-000000000001/user/{U1}/notify"
                );
                GatewayRequest::new(
                    "POST",
                    "/communications/department/{departmentUUID}/user/{userUUID}/notify",
                    &path,
                )
                .path_param("departmentUUID", "d0000000-0000-4000-8000-000000000001")
                .path_param("userUUID", U1)
                .header("authorization", "Basic ZGVtby1kZXB0OmRlbW8tc2VjcmV0")
                .body(json!({"messageAttributes": {"body": "bench", "subject": "s"}}).to_string())
            }),
        ),
        (
            "app notification",
            Box::new(|_| {
                GatewayRequest::new("POST", "/api/data/v9.2/SendAppNotification", "/api/data/v9.2/SendAppNotification")
                    .header("authorization", "Bearer demo-admin-token")
                    .body(json!({"Title": "t", "Body": "b", "Recipient": format!("/systemusers({U1})"), "Priority": 200000001}).to_string())
            }),
        ),
        (
            "desktop assistant",
            Box::new(|_| {
                GatewayRequest::new("POST", "/desktop-assistant/notifications", "/desktop-assistant/notifications")
                    .header("authorization", "Bearer demo-admin-token")
                    .body(json!({"notification_message": "m", "recipient_list": "11111111111141118111111111111111", "source": "mim"}).to_string())
            }),
        ),
        (
            "inbox GET of 50",
            Box::new(|_| {
                GatewayRequest::new(
                    "GET",
                    "/users/{userId}/notifications",
                    &format!("/users/{U1}/notifications"),
                )
                .path_param("userId", U1)
                .query("limit=50")
                .header("authorization", "Bearer demo-user-1-token")
            }),
        ),
        (
            "sent-history of 50",
            Box::new(|_| {
                GatewayRequest::new("GET", "/rest/notification/sent", "/rest/notification/sent")
                    .query("version=1&broadcastType=JN&companyId=3&limit=50")
                    .header("x-nextinteract-authtoken", "demo-admin-token")
            }),
        ),
    ]
}

async fn dispatch(ports: &Ports, name: &str, req: Request) -> u16 {
    let resp = match name {
        "send v3 GT" => send::handle(ports, req).await,
        "inbox GET of 50" => inbox::handle(ports, req).await,
        "sent-history of 50" => sent_history::handle(ports, req).await,
        _ => notify::handle(ports, req).await,
    };
    resp.status().as_u16()
}

/// A fresh memory backend per handler, with what its reads need: 60 items in u1's center and
/// 60 job notifications in history.
async fn backend() -> Ports {
    let memory = MemoryPorts::system();
    memory.load_demo_directory().await.expect("demo directory");
    let ports = memory.ports.clone();
    for i in 0..60 {
        let app = GatewayRequest::new(
            "POST",
            "/api/data/v9.2/SendAppNotification",
            "/api/data/v9.2/SendAppNotification",
        )
        .header("authorization", "Bearer demo-admin-token")
        .body(json!({"Title": format!("t{i}"), "Recipient": format!("/systemusers({U1})")}).to_string());
        notify::handle(&ports, app.into_request()).await;
        let jn = GatewayRequest::new("POST", "/rest/notification/send", "/rest/notification/send")
            .header("x-nextinteract-authtoken", "demo-admin-token")
            .header("x-nextinteract-company-api-key", "00000000-0000-4000-8000-000000000003")
            .body(
                json!({"version": 3, "type": "JN", "key": "3", "values": ["5"], "message": "job"})
                    .to_string(),
            );
        send::handle(&ports, jn.into_request()).await;
    }
    local::workers::run_until_idle(&ports, 5).await.expect("settle");
    ports
}

pub async fn run() -> Value {
    println!(
        "\nhandlers: in-process latency over {CALLS} calls after {WARMUP} warm-up calls (memory adapters)"
    );
    println!("{:<22} {:>10} {:>10} {:>10}", "handler", "p50 µs", "p99 µs", "max µs");
    let mut out = serde_json::Map::new();
    for (name, build) in cases() {
        let ports = backend().await;
        for i in 0..WARMUP {
            assert_eq!(dispatch(&ports, name, build(i).into_request()).await / 100, 2, "{name} must succeed");
        }
        let mut samples = Vec::with_capacity(CALLS);
        let mut failed = 0;
        for i in 0..CALLS {
            let req = build(i);
            let start = Instant::now();
            let status = dispatch(&ports, name, req.into_request()).await;
            samples.push(start.elapsed().as_nanos() as u64);
            failed += usize::from(status >= 300);
        }
        // Checked in release too: a fast error is not a latency.
        assert_eq!(failed, 0, "{name}: {failed} of {CALLS} calls did not succeed");
        samples.sort_unstable();
        let (p50, p99, max) =
            (percentile_us(&samples, 0.5), percentile_us(&samples, 0.99), percentile_us(&samples, 1.0));
        println!("{name:<22} {p50:>10.1} {p99:>10.1} {max:>10.1}");
        out.insert(name.into(), json!({"p50_us": p50, "p99_us": p99, "max_us": max, "calls": CALLS}));
    }
    Value::Object(out)
}
