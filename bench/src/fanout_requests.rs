//! The fanout-memory broadcast to 10,000 recipients against moto (DynamoDB, SQS), counting every
//! request by operation with an SDK interceptor (each attempt is counted: retries are billed).
//! Prints requests per 1,000 recipients beside the floor (one BatchWriteItem per 25 inbox entries;
//! SendMessageBatch of up to 10 messages of as many recipients as fit in 256 KiB) and a cost per
//! million delivered at list prices. (The broadcast is in-app only: pushes and emails, billed by
//! SNS and SES per message, are not in this figure.)
//!
//! Then what DynamoDB bills, by its rules ([`Indexes`], [`Counter`]): every write sized per 1 KB,
//! every index write of it (an item carrying an index's keys is written there too, at its
//! projected size), transactions at twice; group sends to 1,000 and 2,000 people with a 100-byte
//! message and with a 4,000-character body and 5,000 characters of data, so that the cost of one
//! more recipient is the difference; and the reads of a person's center, polled every minute for
//! an hour.
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

const RECIPIENTS: usize = 10_000;
/// Memory of the deliver function (template Globals) and of fanout.
const DELIVER_GB: f64 = 0.25;
const FANOUT_GB: f64 = 0.5;
/// List prices, us-east-1, on-demand, as published on 2026-11-26 (DynamoDB's on-demand prices
/// since 2024-11-01: $0.625 per million write request units, $0.125 per million read request
/// units; SQS standard $0.40 per million requests; Lambda arm64 $0.0000133334 per GB-second and
/// $0.20 per million requests).
pub const PRICES_DATE: &str = "2026-11-26";
pub(crate) const WRITE_UNIT: f64 = 0.625e-6;
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

/// Every request by (service, operation), and DynamoDB's write units by what they wrote.
#[derive(Debug, Default, Clone)]
struct Counter {
    ops: Arc<Mutex<BTreeMap<(String, String), OpStats>>>,
    indexes: Arc<Indexes>,
    /// Write units by what was written: a table's items (the Inbox's entries and contents
    /// apart), and the indexes' copies of them.
    writes: Arc<Mutex<BTreeMap<String, f64>>>,
    /// Updates of notification items (table, expression, factor), priced at the end by the
    /// item's final size and the indexes holding it.
    meta: Arc<Mutex<Vec<(String, String, f64)>>>,
    /// The largest notification content stored in the Inbox table.
    content_bytes: Arc<Mutex<usize>>,
}

impl Counter {
    fn new(indexes: Indexes) -> Self {
        Counter { indexes: Arc::new(indexes), ..Counter::default() }
    }

    /// Requests so far by "service operation".
    fn totals(&self) -> BTreeMap<String, u64> {
        self.ops.lock().unwrap().iter().map(|((s, o), st)| (format!("{s} {o}"), st.requests)).collect()
    }

    /// An item put in `table` (`factor` 2 in a transaction): its units, and its indexes' copies.
    fn put(&self, table: &str, item: &Value, factor: f64) -> f64 {
        let base = factor * units(item_size(item), 1024);
        let what = self.indexes.what(table, item);
        if what.starts_with("Inbox contents") {
            let mut largest = self.content_bytes.lock().unwrap();
            *largest = (*largest).max(item_size(item));
        }
        let index = self.indexes.copies(table, item);
        let mut writes = self.writes.lock().unwrap();
        *writes.entry(what).or_default() += base;
        if index > 0.0 {
            *writes.entry(format!("{} indexes", self.indexes.logical(table))).or_default() += index;
        }
        base + index
    }

    /// A write whose size is not in the request (an update, a delete, a condition check): one
    /// unit per item at least, times `factor`.
    fn other(&self, table: &str, key: &Value, factor: f64) -> f64 {
        *self.writes.lock().unwrap().entry(self.indexes.what(table, key)).or_default() += factor;
        factor
    }
}

/// The tables' secondary indexes, as the template declares them, by physical table name.
#[derive(Debug, Default, Clone)]
pub(crate) struct Indexes {
    /// Physical name → (logical id, its indexes).
    tables: BTreeMap<String, (String, Vec<Index>)>,
}

#[derive(Debug, Clone)]
struct Index {
    name: String,
    keys: Vec<String>,
    /// `ALL` projection: the index holds the whole item; else keys only (or a few attributes).
    all: bool,
}

impl Indexes {
    pub(crate) fn from_template(provisioned: &local::provision::Provisioned) -> Self {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../template.yaml");
        let template = local::provision::read_template(&path).expect("template");
        let mut tables = BTreeMap::new();
        for (logical, resource) in local::provision::resources_of_type(&template, "AWS::DynamoDB::Table") {
            let mut indexes = Vec::new();
            for kind in ["GlobalSecondaryIndexes", "LocalSecondaryIndexes"] {
                let Some(list) = resource["Properties"].get(kind).and_then(|l| l.as_sequence()) else {
                    continue;
                };
                for index in list {
                    let keys = index["KeySchema"]
                        .as_sequence()
                        .into_iter()
                        .flatten()
                        .filter_map(|k| k["AttributeName"].as_str().map(str::to_string))
                        .collect();
                    indexes.push(Index {
                        name: index["IndexName"].as_str().unwrap_or_default().to_string(),
                        keys,
                        all: index["Projection"]["ProjectionType"].as_str() == Some("ALL"),
                    });
                }
            }
            if let Some(physical) = provisioned.tables.get(&logical) {
                tables.insert(physical.clone(), (logical.clone(), indexes));
            }
        }
        Indexes { tables }
    }

    fn logical(&self, table: &str) -> String {
        self.tables
            .get(table)
            .map_or_else(|| table.to_string(), |(l, _)| l.trim_end_matches("Table").to_string())
    }

    /// What an item is, for the bill's lines: its table, and for the Inbox which of its kinds.
    fn what(&self, table: &str, item: &Value) -> String {
        let logical = self.logical(table);
        let pk = item["pk"]["S"].as_str().unwrap_or_default();
        match logical.as_str() {
            "Inbox" if pk.starts_with("C#") => "Inbox contents (once per notification)".into(),
            "Inbox" if item["sk"]["S"].as_str() == Some("W") => "Inbox watermarks".into(),
            "Inbox" => "Inbox entries (one per recipient)".into(),
            "Notifications" if item["sk"]["S"].as_str() == Some("META") => {
                "Notifications: the notification".into()
            }
            "Notifications" => "Notifications: chunk records, markers, counters".into(),
            _ => logical,
        }
    }

    /// The indexes holding an item: those whose key attributes it carries.
    fn holding<'a>(&'a self, table: &str, item: &'a Value) -> impl Iterator<Item = &'a Index> + 'a {
        self.tables
            .get(table)
            .map(|(_, i)| i.as_slice())
            .unwrap_or_default()
            .iter()
            .filter(move |index| index.keys.iter().all(|k| item.get(k).is_some()))
    }

    /// Write units of an item's copies in its indexes (a new item: one write each, of the
    /// projected size; keys only is under 1 KB).
    fn copies(&self, table: &str, item: &Value) -> f64 {
        self.holding(table, item).map(|i| if i.all { units(item_size(item), 1024) } else { 1.0 }).sum()
    }

    /// Index writes of an update of `item` (its final state) that `expression` makes: one write
    /// of the item's size to each ALL index holding it (a projected attribute changed), and one to
    /// each keys-only index whose key the expression sets or removes (its entry added or removed;
    /// two if replaced, counted as one here).
    fn update_copies(&self, table: &str, item: &Value, expression: &str) -> f64 {
        let size = units(item_size(item), 1024);
        let mut total = 0.0;
        if let Some((_, indexes)) = self.tables.get(table) {
            for index in indexes {
                let touched = index.keys.iter().any(|k| expression.contains(k.as_str()));
                let held = index.keys.iter().all(|k| item.get(k).is_some());
                total += match (index.all, held, touched) {
                    (true, true, _) => size,
                    (_, _, true) => 1.0,
                    _ => 0.0,
                };
            }
        }
        total
    }

    fn names(&self) -> Vec<String> {
        self.tables.values().flat_map(|(l, i)| i.iter().map(move |x| format!("{l}/{}", x.name))).collect()
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
        let is_sqs = service.eq_ignore_ascii_case("sqs");
        let table = body["TableName"].as_str().unwrap_or_default().to_string();
        let mut write_units = 0.0;
        let mut meta_updates = 0;
        let mut sqs_billed = 0;
        match op.as_str() {
            "BatchWriteItem" => {
                for (table, writes) in body["RequestItems"].as_object().into_iter().flatten() {
                    for w in writes.as_array().into_iter().flatten() {
                        write_units += match w.get("PutRequest") {
                            Some(put) => self.put(table, &put["Item"], 1.0),
                            None => self.other(table, &w["DeleteRequest"]["Key"], 1.0),
                        };
                    }
                }
            }
            "PutItem" => write_units += self.put(&table, &body["Item"], 1.0),
            "DeleteItem" => write_units += self.other(&table, &body["Key"], 1.0),
            "UpdateItem" => {
                if body["Key"]["sk"]["S"] == "META" {
                    meta_updates += 1;
                    self.meta.lock().unwrap().push((
                        table,
                        body["UpdateExpression"].as_str().unwrap_or_default().into(),
                        1.0,
                    ));
                } else {
                    write_units += self.other(&table, &body["Key"], 1.0);
                }
            }
            "TransactWriteItems" => {
                // Transactions cost two units per unit of each item (condition checks too).
                for t in body["TransactItems"].as_array().into_iter().flatten() {
                    if let Some(put) = t.get("Put") {
                        write_units +=
                            self.put(put["TableName"].as_str().unwrap_or_default(), &put["Item"], 2.0);
                    } else if let Some(update) = t.get("Update") {
                        let table = update["TableName"].as_str().unwrap_or_default().to_string();
                        if update["Key"]["sk"]["S"] == "META" {
                            meta_updates += 2;
                            let expression =
                                update["UpdateExpression"].as_str().unwrap_or_default().to_string();
                            self.meta.lock().unwrap().push((table, expression, 2.0));
                        } else {
                            write_units += self.other(&table, &update["Key"], 2.0);
                        }
                    } else if let Some(other) = t.get("Delete").or_else(|| t.get("ConditionCheck")) {
                        write_units +=
                            self.other(other["TableName"].as_str().unwrap_or_default(), &other["Key"], 2.0);
                    }
                }
            }
            "SendMessageBatch" => {
                let payload: usize = body["Entries"]
                    .as_array()
                    .map_or(0, |e| e.iter().filter_map(|m| m["MessageBody"].as_str()).map(str::len).sum());
                sqs_billed += payload.div_ceil(64 * 1024).max(1) as u64;
            }
            "SendMessage" => {
                sqs_billed +=
                    body["MessageBody"].as_str().map_or(0, str::len).div_ceil(64 * 1024).max(1) as u64
            }
            _ if is_sqs => sqs_billed += 1,
            _ => {}
        }
        let mut all = self.ops.lock().unwrap();
        let stats = all.entry((service, op.clone())).or_default();
        stats.requests += 1;
        stats.write_units += write_units;
        stats.meta_updates += meta_updates;
        stats.sqs_billed += sqs_billed;
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
        let mut all = self.ops.lock().unwrap();
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

/// What a broadcast's content is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Size {
    /// A group send of a message of this many bytes, through the route.
    Message(usize),
    /// A 4,000-character body and 5,000 characters of data (the app notification's limits),
    /// accepted by the same service without the group-send dialect (whose message is 2,048 at
    /// most and has no data).
    Long,
}

/// One broadcast on tables of its own: what it asked for and what DynamoDB bills for it.
struct Measured {
    delivered: f64,
    ops: BTreeMap<(String, String), OpStats>,
    /// Write units by what was written (notification updates priced).
    writes: BTreeMap<String, f64>,
    meta_bytes: usize,
    phases: BTreeMap<String, (u64, u64)>,
    times: (Duration, Duration, Duration),
    invocations: (u64, u64),
    /// A recipient, and the ports (counted) to read their center with.
    reader: (uuid::Uuid, shared::runtime::Ports, Counter),
}

impl Measured {
    fn write_units(&self) -> f64 {
        self.writes.values().sum()
    }
    fn read_units(&self) -> f64 {
        self.ops.values().map(|s| s.read_units).sum()
    }
}

async fn broadcast(sdk: &aws_config::SdkConfig, recipients: usize, size: Size) -> Measured {
    let prefix = format!("b{}-", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let parameters =
        local::provision::LOCAL_PARAMETERS.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    let template = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../template.yaml");
    let provisioned =
        local::provision::provision(sdk, &template, &prefix, &parameters).await.expect("provision moto");
    let config = provisioned.config().expect("config");

    // The directory is loaded with uncounted clients: it is not part of a broadcast.
    let (snapshot, team_ids) = crate::fanout_memory::directory(recipients);
    let loader = shared::runtime::aws_ports(sdk, &config, shared::runtime::Services::QUEUES)
        .await
        .expect("the template configures the tables and queues");
    loader.directory.load(&snapshot).await.expect("load the directory");
    let reader = snapshot.users.last().expect("a recipient").id;
    drop(snapshot);

    let counter = Counter::new(Indexes::from_template(&provisioned));
    let dynamo = aws_sdk_dynamodb::Client::from_conf(
        aws_sdk_dynamodb::config::Builder::from(sdk).interceptor(counter.clone()).build(),
    );
    let sqs = aws_sdk_sqs::Client::from_conf(
        aws_sdk_sqs::config::Builder::from(sdk).interceptor(counter.clone()).build(),
    );
    let ports = shared::runtime::aws_ports_from(dynamo, sqs, &config);

    let started = Instant::now();
    let id = match size {
        Size::Message(length) => {
            let message = "Bench broadcast: the quarterly results are in; open the report for the figures";
            let message = format!("{message}{}", ".".repeat(length.saturating_sub(message.len())));
            let body = json!({"version": 3, "type": "GT", "key": "3", "values": team_ids, "message": message, "brochureId": crate::fanout_memory::BROCHURE});
            let sid = crate::group_send(&ports, &body).await;
            ports.notifications.get_by_schedule_id(sid).await.expect("read").expect("stored").id
        }
        Size::Long => {
            use shared::model::*;
            let content = Content {
                title: "Quarterly results".into(),
                body: "b".repeat(4000),
                data: Some(format!("\"{}\"", "d".repeat(4998))),
                ..Content::default()
            };
            let audience = Audience::Teams { company_id: 3, team_ids: team_ids.clone() };
            let schedule_id = ports.notifications.next_schedule_id().await.expect("schedule id");
            let n = Notification::draft(
                uuid::Uuid::new_v4(),
                3,
                Origin::GroupSend,
                BroadcastType::GT,
                audience,
                content,
                "bench".into(),
                ports.clock.now(),
            )
            .schedule_id(schedule_id)
            .email(None, Some(crate::fanout_memory::BROCHURE))
            .build();
            let n = shared::service::intake::insert_once(&ports.store(), n).await.expect("stored");
            shared::service::intake::enqueue_fanout(&ports.store(), n.id).await;
            n.id
        }
    };
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
        let response = deliver::handle(
            &ports,
            5,
            local::workers::sqs_event(local::workers::DELIVERY_QUEUE_ARN, &messages),
        )
        .await;
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
    let n = ports.notifications.get(id).await.expect("read").expect("stored");
    assert_eq!(n.status, shared::model::Status::Delivered);

    // The notification item's final state prices its updates, and the indexes they write.
    let meta = aws_sdk_dynamodb::Client::new(sdk)
        .get_item()
        .table_name(&config.notifications_table)
        .key("pk", aws_sdk_dynamodb::types::AttributeValue::S(format!("N#{}", n.id)))
        .key("sk", aws_sdk_dynamodb::types::AttributeValue::S("META".into()))
        .send()
        .await
        .expect("get");
    let meta_item: Value = Value::Object(
        meta.item
            .unwrap_or_default()
            .iter()
            .map(|(k, v)| (k.clone(), shared_value(v)))
            .collect::<serde_json::Map<String, Value>>(),
    );
    let meta_bytes = item_size(&meta_item);
    let mut writes = counter.writes.lock().unwrap().clone();
    for (table, expression, factor) in counter.meta.lock().unwrap().iter() {
        *writes.entry("Notifications: the notification".into()).or_default() +=
            factor * units(meta_bytes, 1024);
        let copies = counter.indexes.update_copies(table, &meta_item, expression);
        if copies > 0.0 {
            *writes.entry(format!("{} indexes", counter.indexes.logical(table))).or_default() += copies;
        }
    }
    let mut ops = counter.ops.lock().unwrap().clone();
    let meta_units = units(meta_bytes, 1024);
    for s in ops.values_mut() {
        s.write_units += s.meta_updates as f64 * meta_units;
    }
    Measured {
        delivered: n.delivered as f64,
        ops,
        writes,
        meta_bytes,
        phases,
        times: (send_time, fanout_time, deliver_time),
        invocations: (fanout_invocations, deliver_invocations),
        reader: (reader, ports, counter),
    }
}

/// Read units of a person's center polled every minute for an hour: the first page (50) and the
/// badge each minute, or `since` the last poll and the badge; with no new notification, or one
/// new each minute.
async fn center_hour(m: &Measured, new_each_minute: bool, since_polling: bool) -> f64 {
    let (user, ports, counter) = &m.reader;
    let read_units = || counter.ops.lock().unwrap().values().map(|s| s.read_units).sum::<f64>();
    let before = read_units();
    let mut extra = 0.0;
    let mut last_poll = chrono::Utc::now() - chrono::Duration::seconds(1);
    for minute in 0..60 {
        if new_each_minute {
            // Delivered as the deliver function does; its reads (none) and writes are not the
            // reader's.
            let content = shared::model::InboxContent {
                notification_id: uuid::Uuid::new_v4(),
                origin: shared::model::Origin::AppNotification,
                title: format!("minute {minute}"),
                body: "A new notification".into(),
                url: None,
                override_content: None,
                icon: shared::model::IconType::Info,
                toast: shared::model::ToastType::Timed,
                priority: shared::model::Priority::Normal,
                actions: vec![],
                data: None,
                source: None,
                created_at: chrono::Utc::now(),
                expires_at: chrono::Utc::now() + chrono::Duration::days(14),
            };
            let at_write = read_units();
            ports.inbox.put_content(&content).await.expect("content");
            let now = chrono::Utc::now();
            let stamp = shared::ports::ManualClock::new(now);
            ports.inbox.put_entries(&[content.entry_for(*user, now)], &stamp).await.expect("entry");
            extra += read_units() - at_write;
        }
        let query = match since_polling {
            true => shared::model::InboxQuery::since(last_poll),
            false => shared::model::InboxQuery::ordered(),
        };
        last_poll = chrono::Utc::now();
        let page = shared::model::PageRequest::first(50);
        ports.inbox.list(*user, &query, chrono::Utc::now(), &page).await.expect("list");
        ports.inbox.count(*user, chrono::Utc::now(), shared::model::COUNT_WINDOW).await.expect("count");
    }
    read_units() - before - extra
}

pub async fn run() -> Value {
    println!(
        "\nfanout-requests: GT broadcast to {RECIPIENTS} recipients against moto, every request counted"
    );
    let (endpoint, mut moto_process) = moto();
    let sdk = moto_sdk(&endpoint).await;
    let m = broadcast(&sdk, RECIPIENTS, Size::Message(100)).await;
    println!("requests by phase (send | fan-out and delivery):");
    for (op, (send, rest)) in &m.phases {
        println!("  {op:<32} {send:>6} | {rest:>6}");
    }
    let delivered = m.delivered;
    let (mut ours, mut event_source, mut sqs_billed) = (0u64, 0u64, 0u64);
    println!(
        "{:<9} {:<22} {:>9} {:>10} {:>9} {:>9}",
        "service", "operation", "requests", "per 1k", "WCU", "RCU"
    );
    let mut rows = serde_json::Map::new();
    for ((service, op), s) in &m.ops {
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
            s.write_units,
            s.read_units
        );
        rows.insert(format!("{service} {op}"), json!({"requests": s.requests, "write_units": s.write_units, "read_units": s.read_units, "sqs_billed": s.sqs_billed}));
    }
    let (write_units, read_units) = (m.write_units(), m.read_units());

    // The floor: one BatchWriteItem per 25 entries; SendMessageBatch of 10 messages of as many
    // recipients as fit (a recipient is a quoted UUID and a comma in the chunk's JSON).
    // A batch carries at most 10 messages and 256 KiB in all.
    let per_message = (SQS_MAX_MESSAGE - 200) / 39;
    let floor_writes = (delivered as usize).div_ceil(25);
    let messages = (delivered as usize).div_ceil(per_message);
    let floor_sends = messages.div_ceil(10).max((delivered as usize * 39).div_ceil(SQS_MAX_MESSAGE));
    let floor = (floor_writes + floor_sends) as f64;
    let ratio = ours as f64 / floor;

    let (send_time, fanout_time, deliver_time) = m.times;
    let lambda_gb_s = deliver_time.as_secs_f64() * DELIVER_GB
        + fanout_time.as_secs_f64() * FANOUT_GB
        + send_time.as_secs_f64() * DELIVER_GB;
    let invocations = (m.invocations.0 + m.invocations.1 + 1) as f64;
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
        "cost per million delivered: ${cost:.3} = writes ${cost_writes:.3} ({write_units:.0} units) + reads ${cost_reads:.3} + SQS ${cost_sqs:.3} + Lambda ${cost_lambda:.3} (handler time against moto: deliver {:.2}s, fanout {:.2}s); in-app only, no push or email",
        deliver_time.as_secs_f64(),
        fanout_time.as_secs_f64()
    );
    println!("indexes counted: {}", m.reader.2.indexes.names().join(", "));

    // What one more recipient costs, and a 1,000-person send with everything counted, for the
    // shortest and the longest content.
    let mut sizes = serde_json::Map::new();
    for (label, size) in [
        ("100-byte message (group send)", Size::Message(100)),
        ("2,048-character message (group send's largest)", Size::Message(2048)),
        ("4,000-character body + 5,000 of data (app notification's largest)", Size::Long),
    ] {
        let one = broadcast(&sdk, 1000, size).await;
        let two = broadcast(&sdk, 2000, size).await;
        let marginal = (two.write_units() - one.write_units()) / (two.delivered - one.delivered);
        // The previous layout, by the same rules: the content in every recipient's item (it
        // also held the user id and two sort attributes, about 60 bytes more), written to the
        // table and to two local indexes projecting ALL.
        let content_bytes = *one.reader.2.content_bytes.lock().unwrap();
        let before = 3.0 * units(content_bytes + 60, 1024);
        let per_million_writes = one.write_units() * WRITE_UNIT * 1e6 / one.delivered;
        println!(
            "\n{label} content, group send to {} people: {:.0} write units = ${per_million_writes:.3} per million delivered (writes only, everything counted); one more recipient: {marginal:.3} write units (previous layout: {before:.0}, the content being {content_bytes} bytes)",
            one.delivered,
            one.write_units()
        );
        let mut lines = serde_json::Map::new();
        for (what, units) in &one.writes {
            println!("  {what:<48} {units:>8.0}  ({:.3} per recipient)", units / one.delivered);
            lines.insert(what.clone(), json!(units));
        }
        let hour = |new: bool, since: bool| center_hour(&one, new, since);
        let (page_quiet, page_busy, since_quiet, since_busy) = (
            hour(false, false).await,
            hour(true, false).await,
            hour(false, true).await,
            hour(true, true).await,
        );
        println!(
            "  a person's center polled every minute for an hour (page of 50 + badge): {page_quiet:.0} read units with nothing new, {page_busy:.0} with one new each minute; `since` + badge: {since_quiet:.0} / {since_busy:.0} (${:.6} per person-hour at most)",
            page_busy.max(since_busy) * READ_UNIT
        );
        sizes.insert(label.into(), json!({
            "recipients": one.delivered,
            "write_units": one.write_units(),
            "writes_per_million": per_million_writes,
            "marginal_write_units_per_recipient": marginal,
            "previous_layout_write_units_per_recipient": before,
            "content_item_bytes": content_bytes,
            "write_units_by_item": lines,
            "notification_item_bytes": one.meta_bytes,
            "center_hour_read_units": {"page_and_badge": {"quiet": page_quiet, "one_new_each_minute": page_busy},
                "since_and_badge": {"quiet": since_quiet, "one_new_each_minute": since_busy}},
        }));
    }
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
        "notification_item_bytes": m.meta_bytes,
        "write_units": write_units,
        "write_units_by_item": m.writes,
        "prices_date": PRICES_DATE,
        "cost_per_million": {
            "total": cost, "dynamodb_writes": cost_writes, "dynamodb_reads": cost_reads, "sqs": cost_sqs, "lambda": cost_lambda,
            "channels": "in-app only: no push or email in this figure"
        },
        "handler_seconds": {"send": send_time.as_secs_f64(), "fanout": fanout_time.as_secs_f64(), "deliver": deliver_time.as_secs_f64()},
        "deliver_invocations": m.invocations.1,
        "by_content_size": sizes,
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
