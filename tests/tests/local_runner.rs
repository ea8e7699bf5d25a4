//! The local runner over real HTTP on loopback: health, routing, the 6 MB cap, and a spec
//! example all the way to the recipient's inbox with the background workers running.

use std::time::Duration;

use shared::model::{InboxQuery, PageRequest};

async fn start() -> (String, shared::runtime::Ports) {
    let memory = shared::runtime::MemoryPorts::system();
    memory.load_demo_directory().await.unwrap();
    let ports = memory.ports.clone();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(local::server::run(ports.clone(), memory.realtime.clone(), listener));
    tokio::spawn(local::workers::run_forever(
        ports.clone(),
        shared::runtime::MAX_RECEIVES,
        Duration::from_millis(200),
    ));
    (base, ports)
}

/// A minimal HTTP/1.1 client over a TCP stream (no extra dependencies for one test).
async fn http(base: &str, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = base.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\ncontent-length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).await.unwrap();
    // A server may answer (413) before reading a large body; a write error then is expected.
    let _ = stream.write_all(body).await;
    let mut raw = Vec::new();
    let _ = stream.read_to_end(&mut raw).await;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let status = text.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
    (status, body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_routes_and_delivers_through_the_workers() {
    let (base, ports) = start().await;
    assert_eq!(http(&base, "GET", "/health", &[], b"").await.0, 200);
    assert_eq!(http(&base, "GET", "/nowhere", &[], b"").await.0, 404);
    assert_eq!(http(&base, "PUT", "/rest/notification/send", &[], b"").await.0, 405);

    let headers = [
        ("x-nextinteract-authtoken", "demo-admin-token"),
        ("x-nextinteract-company-api-key", "00000000-0000-4000-8000-000000000003"),
        ("content-type", "application/json"),
    ];
    let body = br#"{ "version": 2, "type": "GT", "key": "3", "values": ["23", "27"], "message": "This is test message for team ids 23 and 27" }"#;
    assert_eq!(http(&base, "POST", "/rest/notification/send", &headers, body).await, (200, "4".to_string()));

    let oversized = vec![b' '; shared::http::MAX_BODY_BYTES + 10];
    let (status, answer) = http(&base, "POST", "/rest/notification/send", &headers, &oversized).await;
    assert_eq!(status, 413, "{answer}");

    // The workers fan out and deliver in the background.
    let u4 = "44444444-4444-4444-8444-444444444444".parse().unwrap();
    let mut delivered = false;
    for _ in 0..50 {
        let page = ports
            .inbox
            .list(u4, &InboxQuery::ordered(), ports.clock.now(), &PageRequest::first(10))
            .await
            .unwrap();
        if page.items.iter().any(|i| i.content.body == "This is test message for team ids 23 and 27") {
            delivered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(delivered, "u4 (team 27) received the message");
}

/// The web inbox and its realtime channel over HTTP: the page with its security policy, the
/// Server-Sent Events stream (hello, then the person's deliveries as they happen; with `after`,
/// what was missed first), and the ticket it needs (once).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_the_web_inbox_and_its_event_stream() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (base, _) = start().await;
    let addr = base.trim_start_matches("http://").to_string();
    for path in ["/", "/inbox.js", "/inbox.css"] {
        let mut stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
        let head = format!("GET {path} HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\n\r\n");
        stream.write_all(head.as_bytes()).await.unwrap();
        let mut raw = String::new();
        stream.read_to_string(&mut raw).await.unwrap();
        assert!(raw.starts_with("HTTP/1.1 200"), "{path}: {raw}");
        assert!(
            raw.to_lowercase().contains("content-security-policy: default-src 'none'; script-src 'self'"),
            "{path}"
        );
    }
    let ticket = || async {
        let (status, body) = http(
            &base,
            "POST",
            "/users/me/realtime-ticket",
            &[("authorization", "Bearer demo-user-1-token")],
            b"",
        )
        .await;
        assert_eq!(status, 201, "{body}");
        serde_json::from_str::<serde_json::Value>(&body).unwrap()["ticket"].as_str().unwrap().to_string()
    };
    assert_eq!(http(&base, "GET", "/realtime", &[], b"").await.0, 400, "no ticket");

    // A stream: its head and hello, then an app notification to u1 arrives on it.
    let open = |query: String| {
        let addr = addr.clone();
        async move {
            let mut stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
            let head = format!(
                "GET /realtime?{query} HTTP/1.1\r\nhost: {addr}\r\naccept: text/event-stream\r\n\r\n"
            );
            stream.write_all(head.as_bytes()).await.unwrap();
            stream
        }
    };
    let read_until = |mut stream: tokio::net::TcpStream, needle: String| async move {
        let mut seen = String::new();
        let mut buf = [0u8; 4096];
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while !seen.contains(&needle) {
            let n = tokio::time::timeout_at(deadline, stream.read(&mut buf)).await.expect("in time").unwrap();
            assert!(n > 0, "the stream ended: {seen}");
            seen.push_str(&String::from_utf8_lossy(&buf[..n]));
        }
        (stream, seen)
    };
    let t = ticket().await;
    let stream = open(format!("ticket={t}")).await;
    let (stream, head) = read_until(stream, "event: hello".into()).await;
    assert!(head.starts_with("HTTP/1.1 200") && head.contains("text/event-stream"), "{head}");
    let send = |title: &'static str| {
        let base = base.clone();
        async move {
            let body = serde_json::json!({"Title": title, "Body": "b",
                "Recipient": "/systemusers(11111111-1111-4111-8111-111111111111)"});
            let (status, answer) = http(
                &base,
                "POST",
                "/api/data/v9.2/SendAppNotification",
                &[("authorization", "Bearer demo-admin-token"), ("content-type", "application/json")],
                body.to_string().as_bytes(),
            )
            .await;
            assert_eq!(status, 200, "{answer}");
            serde_json::from_str::<serde_json::Value>(&answer).unwrap()["NotificationId"]
                .as_str()
                .unwrap()
                .to_string()
        }
    };
    let first = send("first").await;
    let (stream, events) = read_until(stream, "event: new".into()).await;
    assert!(events.contains(&first), "{events}");
    let cursor: String =
        events.split("id: ").last().and_then(|rest| rest.split('\n').next()).unwrap().to_string();
    drop(stream);

    // The same ticket is spent; a new one with the cursor is told what came meanwhile.
    assert_eq!(http(&base, "GET", &format!("/realtime?ticket={t}"), &[], b"").await.0, 401);
    let missed = send("while away").await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    let t = ticket().await;
    let stream = open(format!("ticket={t}&after={cursor}")).await;
    let (_, events) = read_until(stream, missed.clone()).await;
    assert!(events.contains("event: new"), "{events}");
}
