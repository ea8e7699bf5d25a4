//! What a caller of a cold function waits for: for each function's release binary, the time from
//! exec to the first invocation's answer posted to a fake Lambda runtime API on loopback, where
//! that invocation is one of the function's `events/` samples and makes its AWS requests over
//! TLS; beside a hello-world `lambda_runtime` binary that makes one HTTPS request with the same
//! TLS stack. Each process then answers a second (warm) invocation of the same event, after the
//! terminator closed every connection, so that it too opens a TLS connection: the difference
//! between the two ("1st−warm") is what a cold process pays once at its first TLS request.
//!
//! - **AWS over TLS**: every AWS endpoint points at a TLS terminator of the bench's own, one per
//!   service as each service is a host of its own (certificate made with `openssl` for this run,
//!   trusted through `AWS_CA_BUNDLE` by the functions and `SSL_CERT_FILE` by the hello-world),
//!   answering as AWS does (HTTP/1.1, connections kept open, no Nagle delay), which forwards each request to moto
//!   (provisioned from `template.yaml`, demo directory loaded) and times moto's answer. moto is
//!   Python and takes milliseconds per request where DynamoDB takes a few; so each figure is
//!   also given **net of the backend**: minus the time the terminator waited on moto.
//! - **CPU share**: every start runs once at full CPU and once under a CFS quota equal to the
//!   share of a vCPU Lambda gives the function's `MemorySize` in `template.yaml`
//!   (1,769 MB = 1 vCPU), with a 10 ms period (a 100 ms period lets any start under 14 ms of
//!   CPU run unthrottled, which is not what a share of a vCPU is). The hello-world runs under
//!   each share used. Needs root and a cgroup file system (v1 `cpu` or v2); without them the
//!   quota columns say so.
//! - Starts are interleaved round-robin (each binary and mode once per round), so the drift of
//!   this shared machine's speed weighs on all alike. Medians and the p10–p90 spread.
//!
//! Also: each binary's stripped size, the AWS requests each first invocation made (at least one,
//! or the figure measures nothing) and the TLS connections it opened (one per service called),
//! and the TLS connections any init opened (must stay 0).

use std::collections::VecDeque;
use std::convert::Infallible;
use std::io::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::{Value, json};

const ROUNDS: usize = 30;
/// Lambda's CPU: one vCPU at 1,769 MB, in proportion below.
const MB_PER_VCPU: f64 = 1769.0;
/// CFS period of the quota (µs).
const PERIOD_US: u64 = 10_000;

/// (package, binary, events/ sample of its first invocation).
const FUNCTIONS: [(&str, &str, &str); 6] = [
    ("send", "notifications-send", "send-gt-v2"),
    ("notify", "notifications-notify", "notify-app-notification-welcome"),
    ("sent-history", "notifications-sent-history", "sent-history-gt"),
    ("inbox", "notifications-inbox", "inbox-list"),
    ("fanout", "notifications-fanout", "fanout-schedule"),
    ("deliver", "notifications-deliver", "deliver-queue"),
];

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("repo root").to_path_buf()
}

// --- The TLS terminator in front of moto -------------------------------------------------------

/// What the terminator saw: TLS connections accepted, requests forwarded, time spent waiting on
/// moto.
#[derive(Default)]
struct Traffic {
    connections: AtomicU64,
    requests: AtomicU64,
    backend_ns: AtomicU64,
    /// Closes every open TLS connection: after a process's first answer, so that its warm
    /// invocation opens a TLS connection of its own too, and the difference between the two is
    /// what the first one paid once, not the handshake a pooled connection saves.
    close_all: tokio::sync::Notify,
}

#[derive(Clone, Copy, Default)]
struct TrafficSnapshot {
    connections: u64,
    requests: u64,
    backend_ns: u64,
}

impl Traffic {
    fn snapshot(&self) -> TrafficSnapshot {
        TrafficSnapshot {
            connections: self.connections.load(Ordering::SeqCst),
            requests: self.requests.load(Ordering::SeqCst),
            backend_ns: self.backend_ns.load(Ordering::SeqCst),
        }
    }
}

impl std::ops::Sub for TrafficSnapshot {
    type Output = TrafficSnapshot;
    fn sub(self, before: Self) -> Self {
        TrafficSnapshot {
            connections: self.connections - before.connections,
            requests: self.requests - before.requests,
            backend_ns: self.backend_ns - before.backend_ns,
        }
    }
}

/// A certificate for 127.0.0.1 and the CA that signed it, made with `openssl` in `dir`:
/// (CA certificate, server certificate, server key) paths. (webpki refuses a self-signed CA
/// certificate presented as the server's own, so there are two.)
fn certificate(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let (ca, ca_key) = (dir.join("ca.pem"), dir.join("ca-key.pem"));
    let (cert, key, csr, ext) =
        (dir.join("cert.pem"), dir.join("key.pem"), dir.join("csr.pem"), dir.join("ext.cnf"));
    std::fs::write(&ext, "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n").expect("ext.cnf");
    let openssl = |args: &[&dyn AsRef<std::ffi::OsStr>]| {
        let status = Command::new("openssl")
            .args(args.iter().map(|a| a.as_ref()))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        if !status.is_ok_and(|s| s.success()) {
            eprintln!("cold-start needs the openssl command to make the TLS terminator's certificate");
            std::process::exit(2);
        }
    };
    let ec: [&dyn AsRef<std::ffi::OsStr>; 5] =
        [&"-newkey", &"ec", &"-pkeyopt", &"ec_paramgen_curve:prime256v1", &"-nodes"];
    let ca_args: [&dyn AsRef<std::ffi::OsStr>; 6] =
        [&"req", &"-x509", &"-days", &"1", &"-subj", &"/CN=cold-start bench CA"];
    openssl(&[&ca_args[..], &ec, &[&"-keyout", &ca_key, &"-out", &ca]].concat());
    let csr_args: [&dyn AsRef<std::ffi::OsStr>; 3] = [&"req", &"-subj", &"/CN=127.0.0.1"];
    openssl(&[&csr_args[..], &ec, &[&"-keyout", &key, &"-out", &csr]].concat());
    openssl(&[
        &"x509",
        &"-req",
        &"-days",
        &"1",
        &"-CAcreateserial",
        &"-in",
        &csr,
        &"-CA",
        &ca,
        &"-CAkey",
        &ca_key,
        &"-extfile",
        &ext,
        &"-out",
        &cert,
    ]);
    (ca, cert, key)
}

async fn terminator(cert: &Path, key: &Path, moto: String, traffic: Arc<Traffic>) -> SocketAddr {
    use tokio_rustls::rustls::pki_types::pem::PemObject;
    use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs: Vec<CertificateDer<'static>> =
        CertificateDer::pem_file_iter(cert).expect("cert.pem").collect::<Result<_, _>>().expect("PEM");
    let key = PrivateKeyDer::from_pem_file(key).expect("key.pem");
    let config = tokio_rustls::rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .expect("a usable certificate");
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a port for the terminator");
    let addr = listener.local_addr().expect("addr");
    let client: Client<HttpConnector, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            traffic.connections.fetch_add(1, Ordering::SeqCst);
            // As AWS's front ends answer: no Nagle delay on a response written in more than one
            // piece (with the client's delayed ACK, 40 ms on a kept-alive connection).
            let _ = tcp.set_nodelay(true);
            let (acceptor, client, moto, traffic) =
                (acceptor.clone(), client.clone(), moto.clone(), traffic.clone());
            tokio::spawn(async move {
                let closed = traffic.close_all.notified();
                tokio::pin!(closed);
                closed.as_mut().enable();
                let Ok(tls) = acceptor.accept(tcp).await else { return };
                let forwarded = traffic.clone();
                let service = hyper::service::service_fn(move |req| {
                    forward(req, client.clone(), moto.clone(), forwarded.clone())
                });
                let connection =
                    hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(tls), service);
                tokio::select! {
                    _ = connection => {}
                    _ = closed => {}
                }
            });
        }
    });
    addr
}

/// Headers that describe one connection, not the message: a proxy answers with its own.
const HOP_BY_HOP: [&str; 8] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "proxy-authenticate",
];

/// Forwards one request to moto and times moto's whole answer.
async fn forward(
    req: Request<Incoming>,
    client: Client<HttpConnector, Full<Bytes>>,
    moto: String,
    traffic: Arc<Traffic>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let (parts, body) = req.into_parts();
    let body = body.collect().await.map(|b| b.to_bytes()).unwrap_or_default();
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let mut out = Request::builder().method(parts.method).uri(format!("{moto}{path}"));
    for (name, value) in parts.headers.iter().filter(|(name, _)| !HOP_BY_HOP.contains(&name.as_str())) {
        out = out.header(name, value);
    }
    let started = Instant::now();
    let answer = match client.request(out.body(Full::new(body)).expect("a request")).await {
        Ok(response) => {
            let (mut parts, body) = response.into_parts();
            let body = body.collect().await.map(|b| b.to_bytes()).unwrap_or_default();
            // moto answers HTTP/1.0 with `Connection: close`; DynamoDB and SQS keep a connection
            // open for the next request. Hop-by-hop headers are the terminator's own (RFC 9110
            // 7.6.1): passed through, every request of a function would open a TLS connection.
            parts.version = hyper::Version::HTTP_11;
            for name in HOP_BY_HOP {
                parts.headers.remove(name);
            }
            Response::from_parts(parts, Full::new(body))
        }
        Err(e) => {
            let mut r = Response::new(Full::new(Bytes::from(format!("moto: {e}"))));
            *r.status_mut() = hyper::StatusCode::BAD_GATEWAY;
            r
        }
    };
    traffic.backend_ns.fetch_add(started.elapsed().as_nanos() as u64, Ordering::SeqCst);
    traffic.requests.fetch_add(1, Ordering::SeqCst);
    Ok(answer)
}

// --- The fake Lambda runtime API -----------------------------------------------------------------

/// One process's view of the runtime API: the events still to hand out, and when each thing
/// happened.
#[derive(Default)]
struct Invocations {
    events: VecDeque<Value>,
    first_next: Option<Instant>,
    served: Vec<Instant>,
    answered: Vec<(Instant, Bytes)>,
    traffic_at: Vec<TrafficSnapshot>,
    /// The process's CPU time and page faults at each request to the runtime API: the first
    /// `/next` (init done), then each answer and each following `/next`.
    usage_at: Vec<Option<Usage>>,
    /// The process being measured.
    pid: Option<u32>,
    error: Option<String>,
    done: Option<mpsc::Sender<()>>,
}

/// What a process used so far: CPU time on every thread, live or exited (ns), and page faults.
#[derive(Clone, Copy, Debug, Default)]
struct Usage {
    cpu_ns: u64,
    faults: u64,
}

impl Usage {
    /// From /proc: `schedstat` of every thread (the scheduler's run time, in nanoseconds; the
    /// runtime's threads live as long as the process) and the process's `stat` (minor and
    /// major faults).
    fn of(pid: u32) -> Option<Usage> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        // Fields after the command name (which may hold spaces) start at state, field 3.
        let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
        let field = |n: usize| fields.get(n - 3).and_then(|v| v.parse::<u64>().ok());
        let faults = field(10)? + field(12)?;
        let mut cpu_ns = 0;
        for task in std::fs::read_dir(format!("/proc/{pid}/task")).ok()?.flatten() {
            // A thread that ended meanwhile (a blocking-pool thread) is skipped.
            let Ok(text) = std::fs::read_to_string(task.path().join("schedstat")) else { continue };
            cpu_ns += text.split_whitespace().next().and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
        }
        Some(Usage { cpu_ns, faults })
    }

    fn since(self, before: Usage) -> (f64, u64) {
        ((self.cpu_ns.saturating_sub(before.cpu_ns)) as f64 / 1e9, self.faults.saturating_sub(before.faults))
    }
}

struct RuntimeApi {
    state: Mutex<Invocations>,
    traffic: Arc<Traffic>,
    function_name: Mutex<String>,
}

impl RuntimeApi {
    fn finish(state: &mut Invocations) {
        if let Some(done) = state.done.take() {
            let _ = done.send(());
        }
    }
}

async fn runtime_api(api: Arc<RuntimeApi>) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a port for the runtime API");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let api = api.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req| runtime_request(req, api.clone()));
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tcp), service)
                    .await;
            });
        }
    });
    addr
}

async fn runtime_request(
    req: Request<Incoming>,
    api: Arc<RuntimeApi>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let path = req.uri().path().to_string();
    if path == "/2018-06-01/runtime/invocation/next" {
        let mut arrived = Instant::now();
        // The process may ask before its spawner has noted its pid.
        for _ in 0..1000 {
            if api.state.lock().unwrap().pid.is_some() {
                break;
            }
            tokio::time::sleep(Duration::from_micros(50)).await;
        }
        // Before the warm invocation, the process is given time to see its connections closed
        // (`Traffic::close_all`): otherwise its first request may go out on a connection the
        // terminator has just closed, and fail or be retried. It waits here, not working.
        let warm_next = api.state.lock().unwrap().answered.len() == 1;
        if warm_next {
            tokio::time::sleep(Duration::from_millis(50)).await;
            arrived = Instant::now();
        }
        let event = {
            let mut state = api.state.lock().unwrap();
            let now = arrived;
            state.first_next.get_or_insert(now);
            let event = state.events.pop_front();
            let usage = state.pid.and_then(Usage::of);
            state.usage_at.push(usage);
            if event.is_some() {
                state.served.push(now);
                let traffic = api.traffic.snapshot();
                state.traffic_at.push(traffic);
            }
            event
        };
        let Some(event) = event else {
            // No more invocations for this process: it waits here until it is stopped.
            match std::future::pending::<Infallible>().await {}
        };
        let deadline = chrono::Utc::now().timestamp_millis() + 600_000;
        let name = api.function_name.lock().unwrap().clone();
        let response = Response::builder()
            .header("content-type", "application/json")
            .header("lambda-runtime-aws-request-id", uuid::Uuid::new_v4().to_string())
            .header("lambda-runtime-deadline-ms", deadline.to_string())
            .header(
                "lambda-runtime-invoked-function-arn",
                format!("arn:aws:lambda:us-east-1:123456789012:function:{name}"),
            )
            .header("lambda-runtime-trace-id", "Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=0")
            .body(Full::new(Bytes::from(event.to_string())))
            .expect("a response");
        return Ok(response);
    }
    let body = req.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
    let now = Instant::now();
    {
        let mut state = api.state.lock().unwrap();
        if path.ends_with("/response") {
            let usage = state.pid.and_then(Usage::of);
            state.usage_at.push(usage);
            state.answered.push((now, body));
            if state.answered.len() == 1 {
                api.traffic.close_all.notify_waiters();
            }
            if state.answered.len() == 2 {
                RuntimeApi::finish(&mut state);
            }
        } else {
            state.error = Some(format!("{path}: {}", String::from_utf8_lossy(&body)));
            RuntimeApi::finish(&mut state);
        }
    }
    let mut response = Response::new(Full::new(Bytes::from_static(b"{}")));
    *response.status_mut() = hyper::StatusCode::ACCEPTED;
    Ok(response)
}

// --- CPU quota -----------------------------------------------------------------------------------

/// A CFS-quota cgroup a child joins before exec.
struct Quota {
    dir: PathBuf,
    procs: std::fs::File,
}

impl Quota {
    /// A cgroup limited to `share` of one CPU, v1 (`cpu` hierarchy) or v2.
    fn new(share: f64) -> Result<Quota, String> {
        let quota_us = ((PERIOD_US as f64) * share).round().max(1000.0) as u64;
        let name = format!("notifications-bench-{}-{}", std::process::id(), (share * 1e4) as u64);
        let v1 = Path::new("/sys/fs/cgroup/cpu");
        let (dir, files): (PathBuf, Vec<(&str, String)>) = if v1.join("cpu.cfs_quota_us").exists() {
            let dir = v1.join(&name);
            (
                dir,
                vec![
                    ("cpu.cfs_period_us", PERIOD_US.to_string()),
                    ("cpu.cfs_quota_us", quota_us.to_string()),
                ],
            )
        } else if Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
            let root = Path::new("/sys/fs/cgroup");
            let _ = std::fs::write(root.join("cgroup.subtree_control"), "+cpu");
            (root.join(&name), vec![("cpu.max", format!("{quota_us} {PERIOD_US}"))])
        } else {
            return Err("no cgroup file system with the cpu controller".into());
        };
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        for (file, value) in files {
            std::fs::write(dir.join(file), &value).map_err(|e| format!("{}/{file}: {e}", dir.display()))?;
        }
        let procs = std::fs::OpenOptions::new()
            .write(true)
            .open(dir.join("cgroup.procs"))
            .map_err(|e| format!("{}/cgroup.procs: {e}", dir.display()))?;
        Ok(Quota { dir, procs })
    }

    /// Makes the command's process join this cgroup between fork and exec.
    fn apply(&self, command: &mut Command) {
        use std::os::fd::AsRawFd;
        use std::os::unix::process::CommandExt;
        let fd = self.procs.as_raw_fd();
        // SAFETY: only write(2) runs in the child, which is async-signal-safe; "0" moves the
        // writing process.
        unsafe {
            command.pre_exec(move || {
                if libc::write(fd, b"0".as_ptr().cast(), 1) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }
}

impl Drop for Quota {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir(&self.dir);
    }
}

// --- One start -----------------------------------------------------------------------------------

/// One cold start and its warm invocation, in seconds (and what it saw).
#[derive(Clone, Debug, Default)]
struct Start {
    init: f64,
    first_invocation: f64,
    first_backend: f64,
    first_requests: u64,
    /// TLS connections the first invocation opened (one per service on AWS, which keeps them).
    first_connections: u64,
    warm_invocation: f64,
    warm_backend: f64,
    first_answer: f64,
    init_connections: u64,
    answer: String,
    /// CPU time (s) and page faults of the process during init (exec → first `/next`), its
    /// first invocation and its warm one.
    init_cpu: f64,
    init_faults: u64,
    first_cpu: f64,
    first_faults: u64,
    warm_cpu: f64,
    warm_faults: u64,
}

impl Start {
    fn net_first_answer(&self) -> f64 {
        self.first_answer - self.first_backend
    }
    fn warm_net(&self) -> f64 {
        self.warm_invocation - self.warm_backend
    }
    /// What the first invocation paid once: its time net of the backend, minus the warm one's
    /// (which opens a TLS connection of its own too: see `Traffic::close_all`).
    fn first_extra(&self) -> f64 {
        (self.first_invocation - self.first_backend) - (self.warm_invocation - self.warm_backend)
    }
}

struct Binary {
    name: &'static str,
    path: PathBuf,
    env: Vec<(String, String)>,
    event: Value,
    memory_mb: u64,
}

fn one_start(binary: &Binary, api: &RuntimeApi, quota: Option<&Quota>) -> Result<Start, String> {
    let (tx, rx) = mpsc::channel();
    {
        let mut state = api.state.lock().unwrap();
        *state = Invocations {
            events: VecDeque::from([binary.event.clone(), binary.event.clone()]),
            done: Some(tx),
            ..Invocations::default()
        };
        *api.function_name.lock().unwrap() = binary.name.to_string();
    }
    let before = api.traffic.snapshot();
    let mut command = Command::new(&binary.path);
    command
        .env_clear()
        .envs(binary.env.iter().map(|(k, v)| (k, v)))
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    if let Some(quota) = quota {
        quota.apply(&mut command);
    }
    let started = Instant::now();
    api.state.lock().unwrap().pid = None;
    let mut child: Child = command.spawn().map_err(|e| format!("{}: {e}", binary.path.display()))?;
    api.state.lock().unwrap().pid = Some(child.id());
    let waited = rx.recv_timeout(Duration::from_secs(60));
    let _ = child.kill();
    let _ = child.wait();
    let state = std::mem::take(&mut *api.state.lock().unwrap());
    if let Some(error) = state.error {
        return Err(format!("{}: {error}", binary.name));
    }
    waited.map_err(|_| format!("{}: no two answers within 60 s", binary.name))?;
    let secs = |a: Instant, b: Instant| b.duration_since(a).as_secs_f64();
    let end = api.traffic.snapshot();
    let (t0, t1) = (state.traffic_at[0], state.traffic_at[1]);
    let first = t1 - t0;
    let warm = end - t1;
    // /next (init done), answer 1, /next, answer 2.
    let usage = |k: usize| state.usage_at.get(k).copied().flatten();
    let (init_usage, first_usage, warm_usage) = match (usage(0), usage(1), usage(2), usage(3)) {
        (Some(a), Some(b), Some(c), Some(d)) => (a.since(Usage::default()), b.since(a), d.since(c)),
        _ => return Err(format!("{}: its CPU time could not be read from /proc", binary.name)),
    };
    Ok(Start {
        init: secs(started, state.first_next.expect("asked for an event")),
        first_invocation: secs(state.served[0], state.answered[0].0),
        first_backend: first.backend_ns as f64 / 1e9,
        first_requests: first.requests,
        first_connections: first.connections,
        warm_invocation: secs(state.served[1], state.answered[1].0),
        warm_backend: warm.backend_ns as f64 / 1e9,
        first_answer: secs(started, state.answered[0].0),
        init_connections: (t0 - before).connections,
        answer: String::from_utf8_lossy(&state.answered[0].1).into_owned(),
        init_cpu: init_usage.0,
        init_faults: init_usage.1,
        first_cpu: first_usage.0,
        first_faults: first_usage.1,
        warm_cpu: warm_usage.0,
        warm_faults: warm_usage.1,
    })
}

// --- Setup and report ----------------------------------------------------------------------------

fn percentile(v: &[f64], p: f64) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    v[((v.len() - 1) as f64 * p).round() as usize]
}

fn median(v: &[f64]) -> f64 {
    percentile(v, 0.5)
}

/// The status an answer reports (HTTP statusCode, the hello-world's status, or batch failures).
fn outcome(answer: &str) -> String {
    match serde_json::from_str::<Value>(answer) {
        Ok(v) if v.get("statusCode").is_some() => format!("HTTP {}", v["statusCode"]),
        Ok(v) if v.get("status").is_some() => format!("HTTPS GET {}", v["status"]),
        Ok(v) if v.get("batchItemFailures").is_some() => {
            format!("{} batch item failures", v["batchItemFailures"].as_array().map_or(0, Vec::len))
        }
        _ => answer.chars().take(60).collect(),
    }
}

pub fn run() -> Value {
    // COLD_START_ROUNDS=n for a quicker look (profiling one binary, say); the README's figures
    // are from the default.
    let rounds = std::env::var("COLD_START_ROUNDS").ok().and_then(|r| r.parse().ok()).unwrap_or(ROUNDS);
    println!(
        "\ncold-start: exec to the first invocation's answer (its AWS requests over TLS), {rounds} rounds \
         round-robin, release binaries, at full CPU and at the template MemorySize's share of a vCPU"
    );
    // COLD_START_PROFILE=profiling: binaries with symbols (for perf), otherwise as shipped.
    let profile = std::env::var("COLD_START_PROFILE").unwrap_or_else(|_| "release".into());
    let only = std::env::var("COLD_START_ONLY").ok();
    let chosen = |package: &str| only.as_ref().is_none_or(|only| only.split(',').any(|o| o == package));
    let cargo = || {
        let mut c = Command::new(env!("CARGO"));
        c.current_dir(repo()).args(["build", "--profile", &profile, "--quiet"]);
        c
    };
    let mut functions = cargo();
    for (package, _, _) in FUNCTIONS {
        if chosen(package) {
            functions.args(["-p", package]);
        }
    }
    assert!(functions.arg("--bins").status().expect("cargo").success(), "release build failed");
    let hello = cargo().args(["-p", "bench", "--bin", "hello-lambda"]).status().expect("cargo");
    assert!(hello.success(), "release build of hello-lambda failed");
    let target =
        std::env::var("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|_| repo().join("target"));
    let release = target.join(&profile);

    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("rt");
    let (moto_endpoint, mut moto_process) = crate::fanout_requests::moto();
    let dir = std::env::temp_dir().join(format!("cold-start-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a temporary directory");
    let (ca, cert, key) = certificate(&dir);
    let traffic = Arc::new(Traffic::default());
    let api = Arc::new(RuntimeApi {
        state: Mutex::new(Invocations::default()),
        traffic: traffic.clone(),
        function_name: Mutex::new(String::new()),
    });
    // One terminator per service, as each AWS service is a host of its own: a function keeps one
    // connection to each service it calls (DynamoDB, SQS, ...), none shared between them.
    // (`AWS_ENDPOINT_URL_<SERVICE>` for each; the hello-world's GET goes to DynamoDB's.)
    let (endpoints, runtime_addr) = rt.block_on(async {
        let mut endpoints = Vec::new();
        for service in ["DYNAMODB", "SQS", "SESV2", "SNS"] {
            let tls = terminator(&cert, &key, moto_endpoint.clone(), traffic.clone()).await;
            endpoints.push((format!("AWS_ENDPOINT_URL_{service}"), format!("https://{tls}")));
        }
        (endpoints, runtime_api(api.clone()).await)
    });
    let hello_url = format!("{}/", endpoints[0].1);

    let template = local::provision::read_template(&repo().join("template.yaml")).expect("template.yaml");
    let global_memory = template["Globals"]["Function"]["MemorySize"].as_u64().expect("Globals MemorySize");
    let memory_of = |binary: &str| {
        local::provision::resources_of_type(&template, "AWS::Serverless::Function")
            .into_iter()
            .find(|(_, r)| r["Metadata"]["BuildProperties"]["Binary"].as_str() == Some(binary))
            .and_then(|(_, r)| r["Properties"]["MemorySize"].as_u64())
            .unwrap_or(global_memory)
    };
    // Each binary on tables and queues of its own, so that what one leaves (a send's pending
    // notifications) is not work for another (the fan-out tick).
    let base_env = |name: &str| -> Vec<(String, String)> {
        let provisioned = rt.block_on(provision(&moto_endpoint));
        let mut env: Vec<(String, String)> = provisioned.env.into_iter().collect();
        env.extend(
            [
                ("AWS_LAMBDA_RUNTIME_API", runtime_addr.to_string()),
                ("AWS_LAMBDA_FUNCTION_NAME", name.to_string()),
                ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", memory_of(name).to_string()),
                ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".into()),
                ("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/bench".into()),
                ("AWS_LAMBDA_LOG_STREAM_NAME", "bench".into()),
                ("AWS_LAMBDA_LOG_FORMAT", "JSON".into()),
                ("AWS_REGION", "us-east-1".into()),
                ("AWS_DEFAULT_REGION", "us-east-1".into()),
                ("AWS_ACCESS_KEY_ID", "test".into()),
                ("AWS_SECRET_ACCESS_KEY", "test".into()),
                ("AWS_SESSION_TOKEN", "bench-session".into()),
                ("AWS_CA_BUNDLE", ca.display().to_string()),
                ("SSL_CERT_FILE", ca.display().to_string()),
                ("HELLO_URL", hello_url.clone()),
            ]
            .map(|(k, v)| (k.to_string(), v)),
        );
        env.extend(endpoints.iter().cloned());
        env
    };
    let sample = |name: &str| -> Value {
        let path = repo().join("events").join(format!("{name}.json"));
        serde_json::from_str(&std::fs::read_to_string(&path).expect("events sample")).expect("JSON sample")
    };
    let mut binaries = vec![Binary {
        name: "hello-world",
        path: release.join("hello-lambda"),
        env: base_env("hello-world"),
        event: json!({"hello": "world"}),
        memory_mb: global_memory,
    }];
    // COLD_START_ONLY=send,deliver: those functions only (and the hello-world).
    for (package, binary, event) in FUNCTIONS {
        if !chosen(package) {
            continue;
        }
        let env = base_env(binary);
        let mut event = sample(event);
        if package == "deliver" {
            // Deliver tells its queues apart by the record's queue: this one's delivery queue.
            let url =
                env.iter().find(|(k, _)| k == "DELIVERY_QUEUE_URL").map(|(_, v)| v.clone()).expect("queue");
            let name = url.rsplit('/').next().unwrap_or_default();
            for record in event["Records"].as_array_mut().expect("an SQS event") {
                record["eventSourceARN"] = json!(format!("arn:aws:sqs:us-east-1:000000000000:{name}"));
            }
        }
        binaries.push(Binary {
            name: package,
            path: release.join(binary),
            env,
            event,
            memory_mb: memory_of(binary),
        });
    }

    // One quota per memory size in use; the hello-world runs under each.
    let mut sizes: Vec<u64> = binaries.iter().map(|b| b.memory_mb).collect();
    sizes.sort();
    sizes.dedup();
    let quotas: Vec<(u64, Result<Quota, String>)> =
        sizes.iter().map(|&mb| (mb, Quota::new(mb as f64 / MB_PER_VCPU))).collect();
    // (binary index, memory size of the quota or None for full CPU).
    let mut plan: Vec<(usize, Option<u64>)> = Vec::new();
    for (i, b) in binaries.iter().enumerate() {
        plan.push((i, None));
        if i == 0 {
            plan.extend(sizes.iter().map(|&mb| (0, Some(mb))));
        } else {
            plan.push((i, Some(b.memory_mb)));
        }
    }
    let quota_of = |mb: u64| quotas.iter().find(|(m, _)| *m == mb).and_then(|(_, q)| q.as_ref().ok());
    let runnable: Vec<(usize, Option<u64>)> =
        plan.into_iter().filter(|(_, mb)| mb.is_none_or(|mb| quota_of(mb).is_some())).collect();
    for (mb, q) in &quotas {
        if let Err(e) = q {
            println!("no CPU quota for {mb} MB: {e} (run as root on a machine with cgroups)");
        }
    }

    let mut starts: Vec<Vec<Start>> = vec![Vec::new(); runnable.len()];
    for (i, mb) in &runnable {
        // Warm the page cache and moto's code paths; not counted.
        if let Err(e) = one_start(&binaries[*i], &api, mb.and_then(quota_of)) {
            panic!("{e}");
        }
    }
    for _ in 0..rounds {
        for ((i, mb), out) in runnable.iter().zip(&mut starts) {
            match one_start(&binaries[*i], &api, mb.and_then(quota_of)) {
                Ok(start) => out.push(start),
                Err(e) => panic!("{e}"),
            }
        }
        print!(".");
        let _ = std::io::stdout().flush();
    }
    println!();
    drop(quotas);
    if let Some(child) = moto_process.as_mut() {
        let _ = child.kill();
        let _ = child.wait();
    }
    let _ = std::fs::remove_dir_all(&dir);

    report(&binaries, &runnable, &starts)
}

/// Fresh tables and queues from template.yaml, and the demo directory, on moto.
async fn provision(endpoint: &str) -> local::provision::Provisioned {
    let sdk = crate::fanout_requests::moto_sdk(endpoint).await;
    let prefix = format!("c{}-", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let parameters =
        local::provision::LOCAL_PARAMETERS.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    let provisioned = local::provision::provision(&sdk, &repo().join("template.yaml"), &prefix, &parameters)
        .await
        .expect("provision moto");
    let config = provisioned.config().expect("config");
    let ports = shared::runtime::aws_ports(&sdk, &config, shared::runtime::Services::TABLES)
        .await
        .expect("the template configures the tables");
    ports.directory.load(&shared::directory::DirectorySnapshot::demo()).await.expect("demo directory");
    provisioned
}

fn report(binaries: &[Binary], runnable: &[(usize, Option<u64>)], starts: &[Vec<Start>]) -> Value {
    let ms = |v: f64| v * 1e3;
    let hello_net = |mb: Option<u64>| -> f64 {
        let k =
            runnable.iter().position(|&(i, m)| i == 0 && m == mb).expect("hello-world runs in every mode");
        median(&starts[k].iter().map(Start::net_first_answer).collect::<Vec<_>>())
    };
    let mut rows = serde_json::Map::new();
    let mut init_connections = 0;
    for mode in [None, Some(())] {
        match mode {
            None => println!("\nfull CPU (this machine's core)"),
            Some(()) => println!(
                "\nunder a CPU quota: MemorySize / {MB_PER_VCPU} MB of a vCPU, {} ms period",
                PERIOD_US / 1000
            ),
        }
        println!(
            "{:<12} {:>5} {:>7} {:>8} {:>7} {:>8} {:>9} {:>15} {:>7} {:>8} {:>9}  first answer",
            "binary",
            "MB",
            "init",
            "1st inv",
            "moto",
            "answer",
            "net",
            "net p10–p90",
            "× hello",
            "warm net",
            "1st−warm"
        );
        for ((i, mb), starts) in runnable.iter().zip(starts) {
            if mb.is_some() != mode.is_some() {
                continue;
            }
            let b = &binaries[*i];
            let col = |f: fn(&Start) -> f64| starts.iter().map(f).collect::<Vec<_>>();
            let net = col(Start::net_first_answer);
            let ratio = median(&net) / hello_net(*mb);
            let requests = starts.iter().map(|s| s.first_requests).min().unwrap_or(0);
            let connections = starts.iter().map(|s| s.first_connections).max().unwrap_or(0);
            init_connections += starts.iter().map(|s| s.init_connections).sum::<u64>();
            let label = match mb {
                Some(mb) => format!("{mb}"),
                None => "-".into(),
            };
            println!(
                "{:<12} {:>5} {:>7.2} {:>8.2} {:>7.2} {:>8.2} {:>9.2} {:>7.2}–{:<7.2} {:>7.2} {:>8.2} {:>9.2}  {} ({} AWS requests, {} connections)",
                b.name,
                label,
                ms(median(&col(|s| s.init))),
                ms(median(&col(|s| s.first_invocation))),
                ms(median(&col(|s| s.first_backend))),
                ms(median(&col(|s| s.first_answer))),
                ms(median(&net)),
                ms(percentile(&net, 0.1)),
                ms(percentile(&net, 0.9)),
                ratio,
                ms(median(&col(Start::warm_net))),
                ms(median(&col(Start::first_extra))),
                outcome(&starts[0].answer),
                requests,
                connections,
            );
            assert!(requests >= 1, "{}: its first invocation made no AWS request", b.name);
            let key = match mb {
                Some(mb) => format!("{}@{mb}MB", b.name),
                None => format!("{}@full", b.name),
            };
            let size = std::fs::metadata(&b.path).map_or(0, |m| m.len());
            rows.insert(
                key,
                json!({
                    "memory_mb": mb,
                    "cpu_share": mb.map(|mb| mb as f64 / MB_PER_VCPU),
                    "init_ms": ms(median(&col(|s| s.init))),
                    "first_invocation_ms": ms(median(&col(|s| s.first_invocation))),
                    "warm_invocation_ms": ms(median(&col(|s| s.warm_invocation))),
                    "warm_invocation_net_ms": ms(median(&col(Start::warm_net))),
                    "first_invocation_backend_ms": ms(median(&col(|s| s.first_backend))),
                    "first_answer_ms": ms(median(&col(|s| s.first_answer))),
                    "net_first_answer_ms": ms(median(&net)),
                    "net_first_answer_p10_ms": ms(percentile(&net, 0.1)),
                    "net_first_answer_p90_ms": ms(percentile(&net, 0.9)),
                    "ratio_to_hello_net": ratio,
                    "first_minus_warm_ms": ms(median(&col(Start::first_extra))),
                    "first_invocation_aws_requests": requests,
                    "first_invocation_tls_connections": connections,
                    "answer": outcome(&starts[0].answer),
                    "size_bytes": size,
                }),
            );
        }
    }
    // Where the CPU time of a cold first answer goes, at full CPU (under the quota the same work
    // takes about 1/share as long): the process start and init, what the first invocation pays
    // once (first invocation minus the warm one, which also opens its own TLS connection), and
    // the invocation's own work (the warm invocation).
    println!(
        "\nCPU time of the cold first answer, full CPU (ms, medians; page faults in parentheses)\n{:<12} {:>16} {:>18} {:>16} {:>12} {:>14}  shares: init / once / work",
        "binary", "init", "1st invocation", "warm invocation", "once (1st−warm)", "per request"
    );
    for ((i, mb), starts) in runnable.iter().zip(starts) {
        if mb.is_some() {
            continue;
        }
        let b = &binaries[*i];
        let col = |f: fn(&Start) -> f64| median(&starts.iter().map(f).collect::<Vec<_>>()) * 1e3;
        let faults = |f: fn(&Start) -> u64| {
            let mut v: Vec<u64> = starts.iter().map(f).collect();
            v.sort();
            v[v.len() / 2]
        };
        let (init, first, warm) = (col(|s| s.init_cpu), col(|s| s.first_cpu), col(|s| s.warm_cpu));
        let once = (first - warm).max(0.0);
        let requests = starts.iter().map(|s| s.first_requests).min().unwrap_or(1).max(1);
        let total = init + first;
        println!(
            "{:<12} {:>8.2} ({:>5}) {:>10.2} ({:>5}) {:>8.2} ({:>5}) {:>12.2} {:>14.3}  {:.0}% / {:.0}% / {:.0}%",
            b.name,
            init,
            faults(|s| s.init_faults),
            first,
            faults(|s| s.first_faults),
            warm,
            faults(|s| s.warm_faults),
            once,
            warm / requests as f64,
            100.0 * init / total,
            100.0 * once / total,
            100.0 * warm.min(first) / total,
        );
        let key = format!("{}@full", b.name);
        if let Some(Value::Object(row)) = rows.get_mut(&key) {
            row.insert(
                "cpu".into(),
                json!({
                    "init_ms": init, "init_faults": faults(|s| s.init_faults),
                    "first_invocation_ms": first, "first_invocation_faults": faults(|s| s.first_faults),
                    "warm_invocation_ms": warm, "warm_invocation_faults": faults(|s| s.warm_faults),
                    "once_ms": once, "per_request_ms": warm / requests as f64,
                }),
            );
        }
    }
    println!("\nsizes (stripped, x86_64):");
    for b in binaries {
        println!(
            "  {:<12} {:>6.2} MiB",
            b.name,
            std::fs::metadata(&b.path).map_or(0, |m| m.len()) as f64 / 1048576.0
        );
    }
    println!("TLS connections to the AWS endpoint during init: {init_connections}");
    rows.insert("aws_connections_during_init".into(), json!(init_connections));
    rows.insert("rounds".into(), json!(starts.first().map_or(0, Vec::len)));
    rows.insert("quota_period_ms".into(), json!(PERIOD_US as f64 / 1000.0));
    Value::Object(rows)
}
