//! The local runner over real HTTP on loopback: health, routing, the 6 MB cap, and a spec
//! example all the way to the recipient's inbox with the background workers running.

use std::time::Duration;

use shared::model::{InboxQuery, PageRequest};

async fn start() -> (String, shared::ports::Ports) {
    let memory = shared::runtime::MemoryPorts::system();
    memory.load_demo_directory().await.unwrap();
    let ports = memory.ports.clone();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(local::server::run(ports.clone(), listener));
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
