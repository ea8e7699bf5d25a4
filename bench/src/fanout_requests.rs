//! The fanout-memory broadcast to 10,000 recipients against moto (DynamoDB, SQS), counting every
//! request by operation with an SDK interceptor (each attempt is counted: retries are billed).
//! Prints requests per 1,000 recipients beside the floor (one BatchWriteItem per 25 inbox items;
//! SendMessageBatch of up to 10 messages of as many recipients as fit in 256 KiB) and a cost per
//! million delivered at list prices. (The broadcast is in-app only: pushes and emails, billed by
//! SNS and SES per message, are not in this figure.)
//!
//! Needs moto: `AWS_ENDPOINT_URL`, or `.venv` (from `scripts/test`), from which it starts one.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::config::interceptors::{
    AfterDeserializationInterceptorContextRef, BeforeTransmitInterceptorContextRef,
};
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use serde_json::{Value, json};
use shared::http::GatewayRequest;

const RECIPIENTS: usize = 10_000;
/// Memory of the deliver function (template Globals) and of fanout.
const DELIVER_GB: f64 = 0.25;
const FANOUT_GB: f64 = 0.5;
/// List prices (us-east-1).
const WRITE_UNIT: f64 = 0.625e-6;
const READ_UNIT: f64 = 0.125e-6;
const SQS_REQUEST: f64 = 0.40e-6;
const LAMBDA_GB_S: f64 = 0.000_013_333_4;
const LAMBDA_INVOCATION: f64 = 0.20e-6;
/// The largest SQS message.
const SQS_MAX_MESSAGE: usize = 256 * 1024;
/// Operations Lambda's SQS event source mapping makes in production (the local workers stand in
/// for it here): billed, but not requests of ours.
const EVENT_SOURCE_OPS: [&str; 4] =
    ["ReceiveMessage", "DeleteMessage", "DeleteMessageBatch", "ChangeMessageVisibility"];

#[derive(Debug, Default, Clone)]
struct OpStats {
    requests: u64,
    /// DynamoDB write units, or items for updates (sized later), by the request body.
    write_units: f64,
    /// DynamoDB read units as DynamoDB bills them: per item rounded up to 4 KB for GetItem and
    /// BatchGetItem, the page's items together rounded up for a Query; half for eventually
    /// consistent reads.
    read_units: f64,
    /// SQS billed requests (each 64 KiB of payload is one).
    sqs_billed: u64,
    /// Updates of the notification item, whose size is known at the end.
    meta_updates: u64,
}

#[derive(Debug, Default, Clone)]
struct Counter(Arc<Mutex<BTreeMap<(String, String), OpStats>>>);

impl Counter {
    /// Requests so far by "service operation".
    fn totals(&self) -> BTreeMap<String, u64> {
        self.0.lock().unwrap().iter().map(|((s, o), st)| (format!("{s} {o}"), st.requests)).collect()
    }
}

/// DynamoDB's item size: attribute names plus values (strings by bytes, numbers ~ digits/2+1,
/// maps and lists 3 bytes plus 1 per element).
fn attribute_size(v: &Value) -> usize {
    let Some(obj) = v.as_object() else { return 0 };
    let Some((kind, inner)) = obj.iter().next() else { return 0 };
    match kind.as_str() {
        "S" | "B" => inner.as_str().map_or(0, str::len),
        "N" => inner.as_str().map_or(1, |n| n.len() / 2 + 1),
        "BOOL" | "NULL" => 1,
        "SS" | "NS" | "BS" => {
            inner.as_array().map_or(0, |a| a.iter().filter_map(Value::as_str).map(str::len).sum())
        }
        "L" => 3 + inner.as_array().map_or(0, |a| a.iter().map(|e| 1 + attribute_size(e)).sum()),
        "M" => 3 + item_size(inner) + inner.as_object().map_or(0, |m| m.len()),
        _ => 0,
    }
}

fn item_size(item: &Value) -> usize {
    item.as_object().map_or(0, |m| m.iter().map(|(k, v)| k.len() + attribute_size(v)).sum())
}

fn units(bytes: usize, unit: usize) -> f64 {
    bytes.div_ceil(unit).max(1) as f64
}

/// Whether the read being made is strongly consistent (kept from the request to its response).
#[derive(Debug, Clone, Copy)]
struct ConsistentRead(bool);

impl aws_smithy_types::config_bag::Storable for ConsistentRead {
    type Storer = aws_smithy_types::config_bag::StoreReplace<Self>;
}

/// DynamoDB's size of an item read back (the same rules as `item_size`, on typed values).
fn typed_item_size(
    item: &std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>,
) -> usize {
    item.iter().map(|(k, v)| k.len() + typed_attribute_size(v)).sum()
}

fn typed_attribute_size(v: &aws_sdk_dynamodb::types::AttributeValue) -> usize {
    use aws_sdk_dynamodb::types::AttributeValue as A;
    match v {
        A::S(s) => s.len(),
        A::N(n) => n.len() / 2 + 1,
        A::B(b) => b.as_ref().len(),
        A::Bool(_) | A::Null(_) => 1,
        A::Ss(v) | A::Ns(v) => v.iter().map(String::len).sum(),
        A::Bs(v) => v.iter().map(|b| b.as_ref().len()).sum(),
        A::L(l) => 3 + l.iter().map(|e| 1 + typed_attribute_size(e)).sum::<usize>(),
        A::M(m) => 3 + m.len() + typed_item_size(m),
        _ => 0,
    }
}

impl Intercept for Counter {
    fn name(&self) -> &'static str {
        "request-counter"
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let (service, op) = cfg
            .load::<Metadata>()
            .map_or(("?".into(), "?".into()), |m| (m.service().to_string(), m.name().to_string()));
        let body: Value = context
            .request()
            .body()
            .bytes()
            .and_then(|b| serde_json::from_slice(b).ok())
            .unwrap_or(Value::Null);
        if ["GetItem", "Query", "BatchGetItem", "Scan"].contains(&op.as_str()) {
            let consistent = body["ConsistentRead"].as_bool().unwrap_or(false)
                || body["RequestItems"]
                    .as_object()
                    .is_some_and(|t| t.values().any(|k| k["ConsistentRead"] == true));
            cfg.interceptor_state().store_put(ConsistentRead(consistent));
        }
        let mut all = self.0.lock().unwrap();
        let is_sqs = service.eq_ignore_ascii_case("sqs");
        let stats = all.entry((service, op.clone())).or_default();
        stats.requests += 1;
        match op.as_str() {
            "BatchWriteItem" => {
                for writes in body["RequestItems"].as_object().into_iter().flat_map(|m| m.values()) {
                    for w in writes.as_array().into_iter().flatten() {
                        stats.write_units += units(item_size(&w["PutRequest"]["Item"]), 1024);
                    }
                }
            }
            "PutItem" => stats.write_units += units(item_size(&body["Item"]), 1024),
            "DeleteItem" => stats.write_units += 1.0,
            "UpdateItem" => {
                if body["Key"]["sk"]["S"] == "META" {
                    stats.meta_updates += 1;
                } else {
                    stats.write_units += 1.0;
                }
            }
            "TransactWriteItems" => {
                // Transactions cost two units per unit of each item.
                for t in body["TransactItems"].as_array().into_iter().flatten() {
                    if let Some(put) = t.get("Put") {
                        stats.write_units += 2.0 * units(item_size(&put["Item"]), 1024);
                    } else if t["Update"]["Key"]["sk"]["S"] == "META" {
                        stats.meta_updates += 2;
                    } else {
                        stats.write_units += 2.0;
                    }
                }
            }
            "SendMessageBatch" => {
                let payload: usize = body["Entries"]
                    .as_array()
                    .map_or(0, |e| e.iter().filter_map(|m| m["MessageBody"].as_str()).map(str::len).sum());
                stats.sqs_billed += payload.div_ceil(64 * 1024).max(1) as u64;
            }
            "SendMessage" => {
                stats.sqs_billed +=
                    body["MessageBody"].as_str().map_or(0, str::len).div_ceil(64 * 1024).max(1) as u64
            }
            _ if is_sqs => stats.sqs_billed += 1,
            _ => {}
        }
        Ok(())
    }

    fn read_after_deserialization(
        &self,
        context: &AfterDeserializationInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let Some(meta) = cfg.load::<Metadata>() else { return Ok(()) };
        let Ok(output) = context.output_or_error() else { return Ok(()) };
        use aws_sdk_dynamodb::operation::{
            batch_get_item::BatchGetItemOutput, get_item::GetItemOutput, query::QueryOutput,
        };
        let per_4kb = |bytes: usize| bytes.div_ceil(4096).max(1) as f64;
        // As DynamoDB bills reads: per item for GetItem and BatchGetItem, the page together for
        // a Query (at least one unit each).
        let units = if let Some(o) = output.downcast_ref::<GetItemOutput>() {
            o.item.as_ref().map_or(1.0, |i| per_4kb(typed_item_size(i)))
        } else if let Some(o) = output.downcast_ref::<BatchGetItemOutput>() {
            o.responses.iter().flat_map(|t| t.values()).flatten().map(|i| per_4kb(typed_item_size(i))).sum()
        } else if let Some(o) = output.downcast_ref::<QueryOutput>() {
            per_4kb(o.items.iter().flatten().map(typed_item_size).sum())
        } else {
            return Ok(());
        };
        let consistent = cfg.load::<ConsistentRead>().is_none_or(|c| c.0);
        let mut all = self.0.lock().unwrap();
        let stats = all.entry((meta.service().to_string(), meta.name().to_string())).or_default();
        stats.read_units += if consistent { units } else { units / 2.0 };
        Ok(())
    }
}

/// moto: the given endpoint, or one started from `.venv` for this run.
pub(crate) fn moto() -> (String, Option<std::process::Child>) {
    if let Ok(url) = std::env::var("AWS_ENDPOINT_URL") {
        return (url, None);
    }
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("repo root").to_path_buf();
    let python = root.join(".venv/bin/python");
    if !python.exists() {
        eprintln!("this scenario needs moto: set AWS_ENDPOINT_URL, or run scripts/test once to create .venv");
        std::process::exit(2);
    }
    let port =
        std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port").port();
    let child = std::process::Command::new(python)
        .arg(root.join("scripts/moto-serial"))
        .args(["127.0.0.1", &port.to_string()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start moto");
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    (format!("http://127.0.0.1:{port}"), Some(child))
}

/// The SDK configuration for moto at `endpoint` (no IAM there: moto's default credentials).
pub(crate) async fn moto_sdk(endpoint: &str) -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new("test", "test", None, None, "bench"))
        .load()
        .await
}

pub async fn run() -> Value {
    println!(
        "\nfanout-requests: GT broadcast to {RECIPIENTS} recipients against moto, every request counted"
    );
    let (endpoint, mut moto_process) = moto();
    let sdk = moto_sdk(&endpoint).await;
    let prefix = format!("b{}-", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let parameters =
        local::provision::LOCAL_PARAMETERS.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    let template = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../template.yaml");
    let provisioned =
        local::provision::provision(&sdk, &template, &prefix, &parameters).await.expect("provision moto");
    let config = provisioned.config().expect("config");

    // The directory is loaded with uncounted clients: it is not part of a broadcast.
    let (snapshot, team_ids) = crate::fanout_memory::directory(RECIPIENTS);
    let loader = shared::runtime::aws_ports(&sdk, &config, shared::runtime::Services::QUEUES)
        .await
        .expect("the template configures the tables and queues");
    loader.directory.load(&snapshot).await.expect("load the directory");
    drop(snapshot);

    let counter = Counter::default();
    let dynamo = aws_sdk_dynamodb::Client::from_conf(
        aws_sdk_dynamodb::config::Builder::from(&sdk).interceptor(counter.clone()).build(),
    );
    let sqs = aws_sdk_sqs::Client::from_conf(
        aws_sdk_sqs::config::Builder::from(&sdk).interceptor(counter.clone()).build(),
    );
    let ports = shared::runtime::aws_ports_from(dynamo, sqs, &config);

    let body = json!({"version": 3, "type": "GT", "key": "3", "values": team_ids, "message": "bench broadcast", "brochureId": crate::fanout_memory::BROCHURE});
    let req = GatewayRequest::new("POST", "/rest/notification/send", "/rest/notification/send")
        .header("x-nextinteract-authtoken", "demo-admin-token")
        .header("x-nextinteract-company-api-key", "00000000-0000-4000-8000-000000000003")
        .body(body.to_string());
    let started = Instant::now();
    let resp = send::handle(&ports, req.into_request()).await;
    assert_eq!(resp.status(), 200, "{}", shared::http::body_text(&resp));
    let answer: Value = serde_json::from_str(&shared::http::body_text(&resp)).expect("json");
    let send_time = started.elapsed();
    let after_send = counter.totals();

    // Fan-out and delivery, timing the handlers (not the stand-in event source mapping).
    let (mut fanout_time, mut deliver_time, mut deliver_invocations, mut fanout_invocations) =
        (Duration::ZERO, Duration::ZERO, 0u64, 0u64);
    loop {
        let t = Instant::now();
        let fanned = local::workers::drain_fanout_once(&ports).await.expect("fanout");
        if fanned > 0 {
            fanout_time += t.elapsed();
            fanout_invocations += 1;
        }
        let messages = ports.delivery_queue.receive(10).await.expect("receive");
        if messages.is_empty() && fanned == 0 {
            break;
        }
        if messages.is_empty() {
            continue;
        }
        let t = Instant::now();
        let response = deliver::handle(&ports, 5, local::workers::sqs_event(&messages)).await;
        deliver_time += t.elapsed();
        deliver_invocations += 1;
        let failed: Vec<String> =
            response.batch_item_failures.into_iter().map(|f| f.item_identifier).collect();
        assert!(failed.is_empty(), "deliveries failed: {failed:?}");
        local::workers::settle(ports.delivery_queue.as_ref(), &messages, &failed).await.expect("ack");
    }
    let after_delivery = counter.totals();
    let phases: BTreeMap<String, (u64, u64)> = after_delivery
        .iter()
        .map(|(op, total)| {
            let at_send = after_send.get(op).copied().unwrap_or(0);
            (op.clone(), (at_send, total - at_send))
        })
        .collect();
    println!("requests by phase (send | fan-out and delivery):");
    for (op, (send, rest)) in &phases {
        println!("  {op:<32} {send:>6} | {rest:>6}");
    }
    let n = ports
        .notifications
        .get_by_schedule_id(answer["notificationScheduleId"].as_u64().expect("schedule id"))
        .await
        .expect("read")
        .expect("stored");
    let delivered = n.delivered as f64;
    assert_eq!(n.status, shared::model::Status::Delivered);

    // The notification item's size prices its updates.
    let meta = aws_sdk_dynamodb::Client::new(&sdk)
        .get_item()
        .table_name(&config.notifications_table)
        .key("pk", aws_sdk_dynamodb::types::AttributeValue::S(format!("N#{}", n.id)))
        .key("sk", aws_sdk_dynamodb::types::AttributeValue::S("META".into()))
        .send()
        .await
        .expect("get");
    let meta_bytes: usize = meta.item.map_or(0, |i| {
        let as_json: serde_json::Map<String, Value> = i
            .iter()
            .map(|(k, v)| (k.clone(), serde_json::to_value(shared_value(v)).unwrap_or(Value::Null)))
            .collect();
        item_size(&Value::Object(as_json))
    });
    let meta_units = units(meta_bytes, 1024);

    let all = counter.0.lock().unwrap().clone();
    let (mut ours, mut event_source, mut write_units, mut read_units, mut sqs_billed) =
        (0u64, 0u64, 0.0, 0.0, 0u64);
    println!(
        "{:<9} {:<22} {:>9} {:>10} {:>9} {:>9}",
        "service", "operation", "requests", "per 1k", "WCU", "RCU"
    );
    let mut rows = serde_json::Map::new();
    for ((service, op), s) in &all {
        let wcu = s.write_units + s.meta_updates as f64 * meta_units;
        write_units += wcu;
        read_units += s.read_units;
        sqs_billed += s.sqs_billed;
        if EVENT_SOURCE_OPS.contains(&op.as_str()) {
            event_source += s.requests;
        } else {
            ours += s.requests;
        }
        println!(
            "{service:<9} {op:<22} {:>9} {:>10.2} {:>9.0} {:>9.0}",
            s.requests,
            s.requests as f64 * 1000.0 / delivered,
            wcu,
            s.read_units
        );
        rows.insert(format!("{service} {op}"), json!({"requests": s.requests, "write_units": wcu, "read_units": s.read_units, "sqs_billed": s.sqs_billed}));
    }

    // The floor: one BatchWriteItem per 25 items; SendMessageBatch of 10 messages of as many
    // recipients as fit (a recipient is a quoted UUID and a comma in the chunk's JSON).
    // A batch carries at most 10 messages and 256 KiB in all.
    let per_message = (SQS_MAX_MESSAGE - 200) / 39;
    let floor_writes = (delivered as usize).div_ceil(25);
    let messages = (delivered as usize).div_ceil(per_message);
    let floor_sends = messages.div_ceil(10).max((delivered as usize * 39).div_ceil(SQS_MAX_MESSAGE));
    let floor = (floor_writes + floor_sends) as f64;
    let ratio = ours as f64 / floor;

    let lambda_gb_s = deliver_time.as_secs_f64() * DELIVER_GB
        + fanout_time.as_secs_f64() * FANOUT_GB
        + send_time.as_secs_f64() * DELIVER_GB;
    let invocations = (deliver_invocations + fanout_invocations + 1) as f64;
    let per_million = 1e6 / delivered;
    let cost_writes = write_units * WRITE_UNIT * per_million;
    let cost_reads = read_units * READ_UNIT * per_million;
    let cost_sqs = sqs_billed as f64 * SQS_REQUEST * per_million;
    let cost_lambda = (lambda_gb_s * LAMBDA_GB_S + invocations * LAMBDA_INVOCATION) * per_million;
    let cost = cost_writes + cost_reads + cost_sqs + cost_lambda;
    println!(
        "\nours: {ours} requests = {:.1} per 1k recipients; floor {floor} ({floor_writes} BatchWriteItem + {floor_sends} SendMessageBatch) = {:.1} per 1k; ratio {ratio:.3}",
        ours as f64 * 1000.0 / delivered,
        floor * 1000.0 / delivered
    );
    println!("event source mapping stand-in (receive/delete): {event_source} requests");
    println!(
        "cost per million delivered: ${cost:.3} = writes ${cost_writes:.3} + reads ${cost_reads:.3} + SQS ${cost_sqs:.3} + Lambda ${cost_lambda:.3} (handler time against moto: deliver {:.2}s, fanout {:.2}s); in-app only, no push or email",
        deliver_time.as_secs_f64(),
        fanout_time.as_secs_f64()
    );
    if let Some(child) = moto_process.as_mut() {
        let _ = child.kill();
    }
    json!({
        "recipients": delivered,
        "operations": rows,
        "requests": ours,
        "requests_per_1k": ours as f64 * 1000.0 / delivered,
        "floor": floor,
        "floor_per_1k": floor * 1000.0 / delivered,
        "ratio_to_floor": ratio,
        "event_source_requests": event_source,
        "notification_item_bytes": meta_bytes,
        "cost_per_million": {
            "total": cost, "dynamodb_writes": cost_writes, "dynamodb_reads": cost_reads, "sqs": cost_sqs, "lambda": cost_lambda,
            "channels": "in-app only: no push or email in this figure"
        },
        "handler_seconds": {"send": send_time.as_secs_f64(), "fanout": fanout_time.as_secs_f64(), "deliver": deliver_time.as_secs_f64()},
        "deliver_invocations": deliver_invocations,
    })
}

/// An SDK attribute value as DynamoDB's JSON (for sizing).
fn shared_value(v: &aws_sdk_dynamodb::types::AttributeValue) -> Value {
    use aws_sdk_dynamodb::types::AttributeValue as A;
    match v {
        A::S(s) => json!({"S": s}),
        A::N(n) => json!({"N": n}),
        A::Bool(b) => json!({"BOOL": b}),
        A::Null(_) => json!({"NULL": true}),
        A::Ss(ss) => json!({"SS": ss}),
        A::L(l) => json!({"L": l.iter().map(shared_value).collect::<Vec<_>>()}),
        A::M(m) => {
            json!({"M": m.iter().map(|(k, v)| (k.clone(), shared_value(v))).collect::<serde_json::Map<_, _>>()})
        }
        _ => json!({"S": ""}),
    }
}
