//! For each function's release binary: the time from exec to its first
//! `GET /2018-06-01/runtime/invocation/next` against a fake Lambda runtime API on loopback
//! (median of 30 starts), beside a hello-world `lambda_runtime` binary built and measured in the
//! same run; each binary's stripped size; and the connections any init made to the AWS endpoint
//! (pointed at a loopback listener that counts them: it must stay 0).

use std::io::Read;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const STARTS: usize = 30;

/// A process environment, name and value.
type Env = Vec<(String, String)>;
const FUNCTIONS: [(&str, &str); 6] = [
    ("send", "notifications-send"),
    ("notify", "notifications-notify"),
    ("sent-history", "notifications-sent-history"),
    ("inbox", "notifications-inbox"),
    ("fanout", "notifications-fanout"),
    ("deliver", "notifications-deliver"),
];

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("repo root").to_path_buf()
}

/// The environment Lambda gives a function, and the service's configuration (as the template
/// sets it), with credentials and region from the environment as in Lambda.
fn lambda_env(runtime_api: &str, aws_endpoint: &str, name: &str) -> Vec<(String, String)> {
    [
        ("AWS_LAMBDA_RUNTIME_API", runtime_api),
        ("AWS_LAMBDA_FUNCTION_NAME", name),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256"),
        ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST"),
        ("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/bench"),
        ("AWS_LAMBDA_LOG_STREAM_NAME", "bench"),
        ("AWS_LAMBDA_LOG_FORMAT", "JSON"),
        ("AWS_REGION", "us-east-1"),
        ("AWS_DEFAULT_REGION", "us-east-1"),
        ("AWS_ACCESS_KEY_ID", "AKIDBENCH"),
        ("AWS_SECRET_ACCESS_KEY", "bench-secret"),
        ("AWS_SESSION_TOKEN", "bench-session"),
        // Service by service (the global AWS_ENDPOINT_URL means "local development" to us).
        ("AWS_ENDPOINT_URL_DYNAMODB", aws_endpoint),
        ("AWS_ENDPOINT_URL_SQS", aws_endpoint),
        ("AWS_ENDPOINT_URL_SESV2", aws_endpoint),
        ("AWS_ENDPOINT_URL_SNS", aws_endpoint),
        ("NOTIFICATIONS_TABLE", "n"),
        ("INBOX_TABLE", "i"),
        ("DIRECTORY_TABLE", "d"),
        ("FANOUT_QUEUE_URL", "https://sqs.us-east-1.amazonaws.com/123456789012/f"),
        ("DELIVERY_QUEUE_URL", "https://sqs.us-east-1.amazonaws.com/123456789012/d"),
        ("CHUNK_SIZE", "2000"),
        ("PUBLIC_API_URL", "https://api.example.com"),
        ("LINK_SIGNING_KEY", "0123456789abcdef0123456789abcdef0123456789abcdef"),
        ("EMAIL_FROM", "notifications@example.com"),
        ("SES_CONFIGURATION_SET", "notifications"),
        ("PUSH_GCM_APPLICATION_ARN", "arn:aws:sns:us-east-1:123456789012:app/GCM/bench"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

/// Seconds from spawn to the first `/runtime/invocation/next` request.
fn one_start(binary: &Path, runtime: &TcpListener, env: &[(String, String)]) -> f64 {
    let started = Instant::now();
    let mut child = Command::new(binary)
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("{}: {e}", binary.display()));
    let (mut stream, _) = runtime.accept().expect("the runtime client connects");
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut buf).expect("read the request");
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
    }
    let elapsed = started.elapsed().as_secs_f64();
    let line = String::from_utf8_lossy(&head);
    assert!(line.contains("/2018-06-01/runtime/invocation/next"), "unexpected first request: {line}");
    let _ = child.kill();
    let _ = child.wait();
    elapsed
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

pub fn run() -> Value {
    println!("\ncold-start: exec to first /runtime/invocation/next (median of {STARTS}), release binaries");
    let cargo = || {
        let mut c = Command::new(env!("CARGO"));
        c.current_dir(repo()).args(["build", "--release", "--quiet"]);
        c
    };
    let mut functions = cargo();
    for (package, _) in FUNCTIONS {
        functions.args(["-p", package]);
    }
    assert!(functions.arg("--bins").status().expect("cargo").success(), "release build failed");
    let hello = cargo().args(["-p", "bench", "--bin", "hello-lambda"]).status().expect("cargo");
    assert!(hello.success(), "release build of hello-lambda failed");
    let target =
        std::env::var("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|_| repo().join("target"));
    let release = target.join("release");

    let runtime = TcpListener::bind("127.0.0.1:0").expect("a port for the runtime API");
    let runtime_api = runtime.local_addr().expect("addr").to_string();
    // Anything an init sends to AWS arrives here and is counted.
    let aws = TcpListener::bind("127.0.0.1:0").expect("a port for the AWS endpoint");
    let aws_endpoint = format!("http://{}", aws.local_addr().expect("addr"));
    let init_connections = Arc::new(AtomicU64::new(0));
    {
        let counter = init_connections.clone();
        std::thread::spawn(move || {
            for stream in aws.incoming().flatten() {
                counter.fetch_add(1, Ordering::SeqCst);
                drop(stream);
            }
        });
    }

    // Round-robin: every round starts each binary once, so that drift in the machine's speed
    // over the run (it is shared, and varies by ±20% over minutes) weighs on all of them alike
    // instead of on whichever binary was measured at that moment.
    let binaries: Vec<(&str, PathBuf, Env)> = std::iter::once(("hello-world", "hello-lambda"))
        .chain(FUNCTIONS)
        .map(|(name, binary)| (name, release.join(binary), lambda_env(&runtime_api, &aws_endpoint, name)))
        .collect();
    for (_, path, env) in &binaries {
        one_start(path, &runtime, env); // warm the page cache
    }
    let mut times = vec![Vec::with_capacity(STARTS); binaries.len()];
    for _ in 0..STARTS {
        for ((_, path, env), times) in binaries.iter().zip(&mut times) {
            times.push(one_start(path, &runtime, env));
        }
    }
    let size = |path: &Path| std::fs::metadata(path).map_or(0, |m| m.len());
    let hello = median(times[0].clone());
    println!("{:<14} {:>10} {:>12} {:>8}", "binary", "size MiB", "median ms", "× hello");
    println!(
        "{:<14} {:>10.2} {:>12.2} {:>8.2}",
        "hello-world",
        size(&binaries[0].1) as f64 / 1048576.0,
        hello * 1e3,
        1.0
    );
    let mut rows = serde_json::Map::new();
    rows.insert("hello-world".into(), json!({"median_ms": hello * 1e3, "size_bytes": size(&binaries[0].1)}));
    for ((package, path, _), times) in binaries.iter().zip(times).skip(1) {
        let (t, size) = (median(times), size(path));
        println!("{:<14} {:>10.2} {:>12.2} {:>8.2}", package, size as f64 / 1048576.0, t * 1e3, t / hello);
        rows.insert(
            package.to_string(),
            json!({"median_ms": t * 1e3, "ratio_to_hello": t / hello, "size_bytes": size, "size_mib": size as f64 / 1048576.0}),
        );
    }
    std::thread::sleep(Duration::from_millis(100));
    let connections = init_connections.load(Ordering::SeqCst);
    println!("connections to the AWS endpoint during init: {connections}");
    rows.insert("aws_connections_during_init".into(), json!(connections));
    Value::Object(rows)
}
