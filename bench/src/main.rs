//! `cargo run --release -p bench -- <scenario>|all`: prints a table and writes the same figures
//! to `bench/results.json`. Scenarios: `fanout-memory` (1,000 / 100,000 / 1,000,000 recipients
//! through fan-out and delivery on the memory adapters) and `handlers` (in-process latency of
//! each HTTP handler, lambda_http conversion included). Benchmarks print figures; no test
//! asserts on time. `channel-mix [people]` (write units per delivered person by channel mix, on
//! moto) run alone writes only its own key, which records its own date and machine.

mod channel_mix;
mod cold_start;
mod fanout_memory;
mod fanout_requests;
mod handlers;

use std::time::Instant;

use serde_json::{Value, json};

/// A version-3 group send as the demo company's admin, through the send handler: the schedule id
/// it answers (200 asserted).
pub async fn group_send(ports: &shared::runtime::Ports, body: &Value) -> u64 {
    let req = shared::http::GatewayRequest::new("POST", "/rest/notification/send", "/rest/notification/send")
        .header("x-nextinteract-authtoken", "demo-admin-token")
        .header("x-nextinteract-company-api-key", "00000000-0000-4000-8000-000000000003")
        .body(body.to_string());
    let resp = send::handle(ports, req.into_request()).await;
    let text = shared::http::body_text(&resp);
    assert_eq!(resp.status(), 200, "{text}");
    let answer: Value = serde_json::from_str(&text).expect("json");
    answer["notificationScheduleId"].as_u64().expect("schedule id")
}

/// Peak resident set size of this process so far, in MiB (Linux `VmHWM`); each fan-out size
/// runs in a process of its own, so this is that size's peak.
pub fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmHWM:")).map(str::to_string))
        .and_then(|l| l.split_whitespace().nth(1).and_then(|kb| kb.parse::<f64>().ok()))
        .map_or(0.0, |kb| kb / 1024.0)
}

/// Percentile of sorted nanosecond samples, in microseconds.
pub fn percentile_us(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx] as f64 / 1000.0
}

fn main() {
    let scenario = std::env::args().nth(1).unwrap_or_else(|| "all".into());
    if scenario == fanout_memory::ONE {
        let n: usize = std::env::args().nth(2).and_then(|n| n.parse().ok()).expect("a size");
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(fanout_memory::run_one(n));
        return;
    }
    let known = ["fanout-memory", "fanout-requests", "handlers", "cold-start", "channel-mix", "all"];
    if !known.contains(&scenario.as_str()) {
        eprintln!("usage: bench <{}>", known.join("|"));
        std::process::exit(2);
    }
    let started = Instant::now();
    let rt =
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    // Scenarios run alone update their figures and keep the others'.
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("results.json");
    let mut results = std::fs::read_to_string(&path)
        .ok()
        .and_then(|t| serde_json::from_str::<Value>(&t).ok())
        .and_then(|v| v.as_object().cloned())
        .unwrap_or_default();
    if scenario == "channel-mix" {
        // Its own key only: the file's date, machine and wall time are the other scenarios'.
        let people = std::env::args().nth(2).map(|n| n.parse().expect("a number of people"));
        results.insert("channel_mix".into(), rt.block_on(channel_mix::run(people)));
        let text = serde_json::to_string_pretty(&Value::Object(results)).expect("json");
        std::fs::write(&path, text + "\n").expect("write bench/results.json");
        println!("\nfigures written to {} (channel_mix)", path.display());
        return;
    }
    results.insert(
        "machine".into(),
        json!(format!("{} cores", std::thread::available_parallelism().map_or(0, |n| n.get()))),
    );
    // When and on what the figures were measured: docs/benchmarks.md states both with them.
    results.insert("date".into(), json!(chrono::Utc::now().format("%Y-%m-%d").to_string()));
    results.insert("arch".into(), json!(std::env::consts::ARCH));
    if scenario == "handlers" || scenario == "all" {
        results.insert("handlers".into(), rt.block_on(handlers::run()));
    }
    if scenario == "fanout-memory" || scenario == "all" {
        results.insert("fanout_memory".into(), rt.block_on(fanout_memory::run()));
    }
    if scenario == "cold-start" || scenario == "all" {
        results.insert("cold_start".into(), cold_start::run());
    }
    if scenario == "fanout-requests" || scenario == "all" {
        results.insert("fanout_requests".into(), rt.block_on(fanout_requests::run()));
    }
    if scenario == "all" {
        results.insert("channel_mix".into(), rt.block_on(channel_mix::run(None)));
    }
    results.insert("seconds".into(), json!(started.elapsed().as_secs_f64()));
    let text = serde_json::to_string_pretty(&Value::Object(results)).expect("json");
    std::fs::write(&path, text + "\n").expect("write bench/results.json");
    println!("\nfigures written to {}", path.display());
}
