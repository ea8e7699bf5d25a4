//! Write units per delivered person by channel mix, as `scripts/dynamodb_meter.py` bills them
//! (issue #34, item 6): a group send to one chunk's worth of people (2,000, the deployed chunk
//! size, `Settings::DEFAULT_CHUNK_SIZE`) on fresh moto tables, through the real handlers (send,
//! fan-out, deliver for chunks, push jobs and email jobs) over the real adapters, for four
//! mixes: in-app only; in-app + one push; in-app + email; in-app + two pushes + email.
//!
//! The meter is armed with scale 0 (billing only, no throttling) on the mix's tables and
//! re-armed at each phase (send, fan-out, the chunk, push jobs, email jobs), so that each
//! phase's report names its own five hottest partition keys; the mix's figures are the phases'
//! sums. Everything DynamoDB bills is counted: the notification item and its index copies, the
//! schedule id and daily cap, the content, the entries, leases, chunk and job markers, counters,
//! sent marks. (SNS and SES bill per message: not in these figures.)
//!
//! Then what a 1,000,000-person broadcast with one push each writes and how long it takes to
//! reach every inbox, from the one-push trace: the per-chunk phases scaled by the chunks, the
//! send and fan-out once (plus the fan-out's progress saves, one per 10 chunks after the first
//! ten, priced by the meter's rules at the notification item's size), against a table's write
//! rate (4,000 units/s new, a warmed figure given) and 1,000 units/s per partition key, each key
//! taking its per-chunk units once per chunk that writes it.
//!
//! Needs moto (`AWS_ENDPOINT_URL`, or `.venv` from `scripts/test`, from which it starts
//! `scripts/moto-serial`). `bench channel-mix [people]` measures a smaller crowd.

use std::collections::BTreeMap;
use std::time::Instant;

use serde_json::{Value, json};
use shared::directory::{DirectorySnapshot, TeamRecord, UserRecord};
use shared::model::{Device, Platform, Status};
use uuid::Uuid;

use crate::fanout_requests::{PRICES_DATE, WRITE_UNIT, moto, moto_sdk};

/// A new on-demand table's write units per second (and the template's `TableWarmWriteUnits`
/// default), and the warmed figure these figures assume (the template parameter, as a
/// deployment would set it).
const NEW_TABLE_WCU: f64 = 4_000.0;
const WARMED_TABLE_WCU: f64 = 40_000.0;
/// What one partition key takes per second.
const PARTITION_WCU: f64 = 1_000.0;
/// The broadcast the per-chunk figures are scaled to.
const MILLION: u64 = 1_000_000;
/// Counter shards per notification (`N#{id}#K#{chunk % 8}`: docs/data-model.md).
const COUNTER_SHARDS: u64 = 8;
/// Chunks per SendMessageBatch and per fan-out progress save (`service::fanout`).
const CHUNKS_PER_SAVE: u64 = 10;
/// The crowd's team in company 3.
const TEAM: &str = "cm";
/// The mix the 1,000,000-person figures come from.
const ONE_PUSH: &str = "in-app + one push";

struct Mix {
    name: &'static str,
    devices: usize,
    email: bool,
}

const MIXES: [Mix; 4] = [
    Mix { name: "in-app only", devices: 0, email: false },
    Mix { name: ONE_PUSH, devices: 1, email: false },
    Mix { name: "in-app + email", devices: 0, email: true },
    Mix { name: "in-app + two pushes + email", devices: 2, email: true },
];

fn person(i: usize) -> Uuid {
    Uuid::from_u128(0xc4a1_0000_0000_4000_8000_0000_0000_0000 | i as u128)
}

/// The demo directory, and `n` people of company 3 with an address each, all in [`TEAM`].
fn directory(n: usize) -> DirectorySnapshot {
    let mut snapshot = DirectorySnapshot::demo();
    let users: Vec<UserRecord> = (0..n)
        .map(|i| UserRecord {
            id: person(i),
            number: 700_000 + i as u64,
            company_id: 3,
            email: format!("mix{i}@bench.example"),
            first_name: format!("Mix {i}"),
            roles: vec![],
            token_sha256: format!("channel-mix-token-{i}"),
            token_expires_at: None,
        })
        .collect();
    snapshot.teams.push(TeamRecord {
        company_id: 3,
        id: TEAM.into(),
        members: users.iter().map(|u| u.id).collect(),
    });
    snapshot.users.extend(users);
    snapshot
}

/// GCM and APNS platform applications on moto (a deployment passes their ARNs as parameters).
async fn push_parameters(sdk: &aws_config::SdkConfig, prefix: &str) -> BTreeMap<String, String> {
    let sns = aws_sdk_sns::Client::new(sdk);
    let mut parameters: BTreeMap<String, String> =
        local::provision::LOCAL_PARAMETERS.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    for (platform, parameter) in [("APNS", "ApnsApplicationArn"), ("GCM", "GcmApplicationArn")] {
        let arn = sns
            .create_platform_application()
            .name(format!("{prefix}{platform}").replace('-', ""))
            .platform(platform)
            .attributes("PlatformCredential", "bench-credential")
            .send()
            .await
            .unwrap_or_else(|e| panic!("creating the {platform} application on moto: {e:?}"))
            .platform_application_arn
            .expect("an application ARN");
        parameters.insert(parameter.to_string(), arn);
    }
    parameters
}

/// `per_person` devices for each of the `n` people (GCM, then APNS), registered as the inbox
/// registers them (an SNS endpoint, the person's device list); the devices.
async fn load_devices(ports: &shared::runtime::Ports, n: usize, per_person: usize) -> usize {
    use futures::StreamExt;
    if per_person == 0 {
        return 0;
    }
    let registrations = (0..n).flat_map(|i| (0..per_person).map(move |d| (i, d)));
    let done: Vec<()> = futures::stream::iter(registrations)
        .map(|(i, d)| async move {
            let (platform, token) = match d {
                0 => (Platform::Gcm, format!("fcm-channel-mix-{i}")),
                _ => (Platform::Apns, format!("{:064x}", 0xa115_0000_0000u128 + i as u128)),
            };
            let user = person(i);
            let endpoint_arn = ports.push.create_endpoint(platform, &token, user).await.expect("an endpoint");
            let device = Device {
                device_id: Device::id_for(platform, &token),
                platform,
                token,
                endpoint_arn,
                registered_at: chrono::Utc::now(),
            };
            ports.devices.put_device(user, &device, 10).await.expect("a device");
        })
        .buffer_unordered(8)
        .collect()
        .await;
    ports.devices.mark_company_devices(3).await.expect("company 3 has devices");
    done.len()
}

async fn http(method: &str, uri: String, body: Option<Value>) -> Value {
    use http_body_util::{BodyExt, Full};
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<Full<bytes::Bytes>>();
    let request = hyper::Request::builder()
        .method(method)
        .uri(&uri)
        .header("content-type", "application/json")
        .body(Full::new(bytes::Bytes::from(body.map(|b| b.to_string()).unwrap_or_default())))
        .expect("a request");
    let response = client.request(request).await.unwrap_or_else(|e| panic!("{method} {uri}: {e}"));
    let status = response.status();
    let text = response.into_body().collect().await.expect("a body").to_bytes();
    assert!(status.is_success(), "{method} {uri}: {status} {}", String::from_utf8_lossy(&text));
    serde_json::from_slice(&text).expect("JSON")
}

/// Arms (or re-arms, from nothing billed) the meter on every table under `prefix`: billing only.
async fn arm_meter(endpoint: &str, prefix: &str) {
    let body = json!({"prefix": prefix, "scale": 0, "table_wcu": NEW_TABLE_WCU});
    http("POST", format!("{endpoint}/moto-serial/meter"), Some(body)).await;
}

/// What the meter billed since it was armed.
async fn metered(endpoint: &str, prefix: &str) -> Value {
    http("GET", format!("{endpoint}/moto-serial/meter/{prefix}"), None).await
}

/// DynamoDB's size of an item, by the meter's rules (`dynamodb_meter.py`: `item_size`).
fn billed_size(item: &std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>) -> usize {
    item.iter().map(|(k, v)| k.len() + billed_value_size(v)).sum()
}

fn number_size(text: &str) -> usize {
    let text = text.trim_start_matches(['-', '+']).to_ascii_lowercase();
    let mantissa = text.split('e').next().unwrap_or_default().replace('.', "");
    mantissa.trim_matches('0').len().div_ceil(2).max(1) + 1
}

fn billed_value_size(v: &aws_sdk_dynamodb::types::AttributeValue) -> usize {
    use aws_sdk_dynamodb::types::AttributeValue as A;
    match v {
        A::S(s) => s.len(),
        A::N(n) => number_size(n),
        A::B(b) => b.as_ref().len(),
        A::Bool(_) | A::Null(_) => 1,
        A::Ss(v) => v.iter().map(String::len).sum(),
        A::Ns(v) => v.iter().map(|n| number_size(n)).sum(),
        A::Bs(v) => v.iter().map(|b| b.as_ref().len()).sum(),
        A::L(l) => 3 + l.iter().map(|e| billed_value_size(e) + 1).sum::<usize>(),
        A::M(m) => 3 + m.iter().map(|(k, v)| k.len() + billed_value_size(v) + 1).sum::<usize>(),
        _ => 0,
    }
}

/// What a partition key is, by the key layout (docs/data-model.md), for the notification `id`.
fn family(table: &str, key: &str, id: Uuid) -> &'static str {
    let n = format!("N#{id}");
    match table.split_once('/').map(|(_, index)| index) {
        Some("history") => return HISTORY,
        Some("pending") => return PENDING,
        Some("scope") => return "scope index",
        Some(_) => return "other index",
        None => {}
    }
    if table.starts_with("Inbox") {
        return match key {
            k if k.starts_with("U#") => INBOX_ENTRIES,
            k if k.starts_with("C#") => "content (C#{id})",
            _ => "other Inbox",
        };
    }
    if table.starts_with("Notifications") {
        return match key {
            k if k == n => "notification partition (N#{id}: META, C#/L#/E# records)",
            k if k.starts_with(&format!("{n}#K#")) => {
                "counter shards (N#{id}#K#{chunk % 8}: counts, P#, push leases)"
            }
            k if k.starts_with(&format!("{n}#M#")) => "sent marks (N#{id}#M#{chunk})",
            "COUNTER" => "schedule-id counter",
            k if k.starts_with("Q#") => "daily recipient cap",
            k if k.starts_with("S#") => "schedule-id pointer",
            k if k.starts_with("I#") => "idempotency record",
            _ => "other Notifications",
        };
    }
    if table.starts_with("Directory") { "Directory" } else { "other" }
}

/// A hottest-key entry's partition key value (the meter names it as DynamoDB JSON).
fn key_text(entry: &Value) -> String {
    let raw = entry["key"].as_str().unwrap_or_default();
    serde_json::from_str::<Value>(raw)
        .ok()
        .and_then(|v| v.get("S").and_then(Value::as_str).map(str::to_string))
        .unwrap_or_else(|| raw.to_string())
}

const WRITE_OPERATIONS: [&str; 5] =
    ["PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"];

/// The phases of a broadcast: once per notification, or once per chunk.
const ONCE: [&str; 2] = ["send", "fan-out"];

struct Measured {
    name: &'static str,
    people: usize,
    devices: usize,
    delivered: u64,
    pushes_sent: u64,
    emails_sent: u64,
    id: Uuid,
    /// (phase, the meter's report for it).
    phases: Vec<(&'static str, Value)>,
    /// The notification item's size at the end, by the meter's rules.
    meta_bytes: usize,
    seconds: f64,
}

impl Measured {
    fn write_units(&self) -> f64 {
        self.phases.iter().map(|(_, r)| r["write_units"].as_f64().unwrap_or(0.0)).sum()
    }
    fn read_units(&self) -> f64 {
        self.phases.iter().map(|(_, r)| r["read_units"].as_f64().unwrap_or(0.0)).sum()
    }
    /// Write (and read) units by table and index, summed over the phases.
    fn tables(&self) -> BTreeMap<String, (f64, f64)> {
        let mut out: BTreeMap<String, (f64, f64)> = BTreeMap::new();
        for (_, report) in &self.phases {
            for (table, v) in report["tables"].as_object().into_iter().flatten() {
                let e = out.entry(table.clone()).or_default();
                e.0 += v["write_units"].as_f64().unwrap_or(0.0);
                e.1 += v["read_units"].as_f64().unwrap_or(0.0);
            }
        }
        out
    }
    /// Units by operation (write units for writes, read units for reads).
    fn operations(&self) -> BTreeMap<String, f64> {
        let mut out: BTreeMap<String, f64> = BTreeMap::new();
        for (_, report) in &self.phases {
            for (op, v) in report["operations"].as_object().into_iter().flatten() {
                *out.entry(op.clone()).or_default() += v.as_f64().unwrap_or(0.0);
            }
        }
        out
    }
    /// The phases' hottest keys, summed per key over the phases that list it (a key a phase did
    /// not list took at most that phase's fifth key's units there).
    fn hottest(&self) -> Vec<(String, String, f64)> {
        let mut keys: BTreeMap<(String, String), f64> = BTreeMap::new();
        for (_, report) in &self.phases {
            for entry in report["hottest_keys"].as_array().into_iter().flatten() {
                let table = entry["table"].as_str().unwrap_or_default().to_string();
                *keys.entry((table, key_text(entry))).or_default() +=
                    entry["write_units"].as_f64().unwrap_or(0.0);
            }
        }
        let mut out: Vec<(String, String, f64)> = keys.into_iter().map(|((t, k), u)| (t, k, u)).collect();
        out.sort_by(|a, b| b.2.total_cmp(&a.2).then(a.1.cmp(&b.1)));
        out
    }
    /// The busiest key-second of any phase (moto's seconds: how long moto took, not DynamoDB).
    fn peak(&self) -> Value {
        let best = self.phases.iter().map(|(phase, r)| (phase, &r["peak_key_second"])).max_by(|a, b| {
            a.1["write_units"].as_f64().unwrap_or(0.0).total_cmp(&b.1["write_units"].as_f64().unwrap_or(0.0))
        });
        match best {
            Some((phase, p)) => json!({"phase": phase, "table": p["table"], "key": key_text(p),
                "write_units": p["write_units"]}),
            None => Value::Null,
        }
    }
    /// Write units by key family, from each phase's listed keys; what a phase did not list is
    /// its table's units less the listed keys': on the Inbox table the entries (a broadcast
    /// writes no other Inbox item but the content, which its phase lists), on the history and
    /// pending indexes their one key of this notification (`C#{company}#{type}`, `P#{shard}`),
    /// elsewhere "unlisted".
    fn families(&self) -> BTreeMap<String, f64> {
        let mut out: BTreeMap<String, f64> = BTreeMap::new();
        for (_, report) in &self.phases {
            let mut listed: BTreeMap<String, f64> = BTreeMap::new();
            for entry in report["hottest_keys"].as_array().into_iter().flatten() {
                let units = entry["write_units"].as_f64().unwrap_or(0.0);
                let table = entry["table"].as_str().unwrap_or_default();
                *out.entry(family(table, &key_text(entry), self.id).into()).or_default() += units;
                *listed.entry(table.to_string()).or_default() += units;
            }
            for (table, v) in report["tables"].as_object().into_iter().flatten() {
                let rest =
                    v["write_units"].as_f64().unwrap_or(0.0) - listed.get(table).copied().unwrap_or(0.0);
                if rest <= 0.0 {
                    continue;
                }
                let what = match table.as_str() {
                    "InboxTable" => INBOX_ENTRIES.to_string(),
                    "NotificationsTable/history" => HISTORY.to_string(),
                    "NotificationsTable/pending" => PENDING.to_string(),
                    other => format!("unlisted keys of {other}"),
                };
                *out.entry(what).or_default() += rest;
            }
        }
        out
    }
}

const INBOX_ENTRIES: &str = "inbox entries (U#{user})";
const HISTORY: &str = "history index (C#{company}#{type})";
const PENDING: &str = "pending index (P#{shard})";

fn is_push_job(body: &str) -> bool {
    serde_json::from_str::<Value>(body).is_ok_and(|v| v.get("pushRound").is_some_and(|r| !r.is_null()))
}

async fn broadcast(endpoint: &str, sdk: &aws_config::SdkConfig, mix: &Mix, people: usize) -> Measured {
    let started = Instant::now();
    let prefix = format!("m{}-", &Uuid::new_v4().simple().to_string()[..8]);
    let parameters = push_parameters(sdk, &prefix).await;
    let template = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../template.yaml");
    let provisioned =
        local::provision::provision(sdk, &template, &prefix, &parameters).await.expect("provision moto");
    let config = provisioned.config().expect("config");
    let mut ports = shared::runtime::aws_ports(sdk, &config, shared::runtime::Services::ALL)
        .await
        .expect("the template configures every service");
    assert_eq!(
        ports.settings.chunk_size,
        shared::settings::Settings::DEFAULT_CHUNK_SIZE,
        "the deployed chunk size"
    );
    assert!(people <= ports.settings.chunk_size, "one chunk's worth at most");
    // The pace only spaces the sends out in time (SES's rate): the same writes, without waiting.
    ports.settings.email_sending = shared::settings::EmailSending::unpaced();

    // The people and their devices are there before the broadcast: not billed to it.
    ports.directory.load(&directory(people)).await.expect("load the directory");
    let devices = load_devices(&ports, people, mix.devices).await;
    arm_meter(endpoint, &prefix).await;
    let mut phases = Vec::new();
    let phase = |name: &'static str| {
        let prefix = prefix.clone();
        async move {
            let report = metered(endpoint, &prefix).await;
            arm_meter(endpoint, &prefix).await;
            (name, report)
        }
    };

    let mut body = json!({"version": 3, "type": "GT", "key": "3", "values": [TEAM],
        "message": "Bench channel mix: the quarterly results are in; open the report for the figures"});
    if mix.email {
        body["emailTemplate"] = json!("Client.Generic.Notification.html");
        body["emailSubject"] = json!("Quarterly results");
    }
    let sid = crate::group_send(&ports, &body).await;
    phases.push(phase("send").await);

    while local::workers::drain_fanout_once(&ports).await.expect("fan-out") > 0 {}
    phases.push(phase("fan-out").await);

    let max_receives = config.max_receive_count;
    let mut in_chunks = true;
    loop {
        let messages = ports.delivery_queue.receive(10).await.expect("receive");
        if messages.is_empty() {
            break;
        }
        if in_chunks && messages.iter().all(|m| is_push_job(&m.body)) {
            phases.push(phase("chunk").await);
            in_chunks = false;
        }
        let event = local::workers::sqs_event(local::workers::DELIVERY_QUEUE_ARN, &messages);
        let response = deliver::handle(&ports, max_receives, event).await;
        let failed: Vec<String> =
            response.batch_item_failures.into_iter().map(|f| f.item_identifier).collect();
        assert!(failed.is_empty(), "deliveries failed: {failed:?}");
        local::workers::settle(ports.delivery_queue.as_ref(), &messages, &failed).await.expect("ack");
    }
    phases.push(phase(if in_chunks { "chunk" } else { "push jobs" }).await);
    if in_chunks {
        phases.push(("push jobs", json!({"write_units": 0.0, "read_units": 0.0})));
    }

    // Email jobs one per invocation, as the template's event source hands them out.
    loop {
        let messages = ports.email_queue.receive(1).await.expect("receive");
        if messages.is_empty() {
            break;
        }
        let event = local::workers::sqs_event(local::workers::EMAIL_QUEUE_ARN, &messages);
        let response = deliver::handle(&ports, max_receives, event).await;
        let failed: Vec<String> =
            response.batch_item_failures.into_iter().map(|f| f.item_identifier).collect();
        assert!(failed.is_empty(), "email jobs failed: {failed:?}");
        local::workers::settle(ports.email_queue.as_ref(), &messages, &failed).await.expect("ack");
    }
    phases.push(phase("email jobs").await);

    let n = ports.notifications.get_by_schedule_id(sid).await.expect("read").expect("stored");
    assert_eq!(n.status, Status::Delivered, "{n:?}");
    assert_eq!(n.delivered, people as u64, "everyone delivered");
    assert_eq!(n.pushes_sent, devices as u64, "every device pushed");
    assert_eq!(n.emails_sent, if mix.email { people as u64 } else { 0 }, "everyone emailed: {n:?}");
    let meta = aws_sdk_dynamodb::Client::new(sdk)
        .get_item()
        .table_name(&config.notifications_table)
        .key("pk", aws_sdk_dynamodb::types::AttributeValue::S(format!("N#{}", n.id)))
        .key("sk", aws_sdk_dynamodb::types::AttributeValue::S("META".into()))
        .consistent_read(true)
        .send()
        .await
        .expect("get")
        .item
        .expect("the notification item");
    Measured {
        name: mix.name,
        people,
        devices,
        delivered: n.delivered,
        pushes_sent: n.pushes_sent,
        emails_sent: n.emails_sent,
        id: n.id,
        phases,
        meta_bytes: billed_size(&meta),
        seconds: started.elapsed().as_secs_f64(),
    }
}

/// The most write units one key of a family took in a phase, of the keys its report lists (a
/// family's key is one per notification, chunk, shard or person).
fn listed(report: &Value, id: Uuid, wanted: &str) -> f64 {
    report["hottest_keys"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| family(e["table"].as_str().unwrap_or_default(), &key_text(e), id) == wanted)
        .map(|e| e["write_units"].as_f64().unwrap_or(0.0))
        .fold(0.0, f64::max)
}

/// A phase's fifth hottest key's units when it listed five: what any key it did not list took
/// at most.
fn fifth(report: &Value) -> f64 {
    let keys = report["hottest_keys"].as_array().cloned().unwrap_or_default();
    match keys.len() {
        5.. => keys[4]["write_units"].as_f64().unwrap_or(0.0),
        _ => 0.0,
    }
}

/// The 1,000,000-person broadcast, one push each, from the one-push trace.
fn million(m: &Measured) -> Value {
    let chunk_size = m.people as u64;
    let chunks = MILLION.div_ceil(chunk_size);
    let units = |r: &Value| r["write_units"].as_f64().unwrap_or(0.0);
    let table_units = |r: &Value, t: &str| r["tables"][t]["write_units"].as_f64().unwrap_or(0.0);
    let (once, per_chunk): (Vec<_>, Vec<_>) = m.phases.iter().partition(|(p, _)| ONCE.contains(p));
    // The completion (Delivering → Delivered) is in the chunk phase, but happens once: the only
    // update of the notification item a chunk makes, so the history index's units in the
    // per-chunk phases are its copy there, and the table's write is as large (projection ALL).
    let completion: f64 = per_chunk.iter().map(|(_, r)| table_units(r, "NotificationsTable/history")).sum();
    let fixed = once.iter().map(|(_, r)| units(r)).sum::<f64>() + 2.0 * completion;
    let chunk = per_chunk.iter().map(|(_, r)| units(r)).sum::<f64>() - 2.0 * completion;
    // The fan-out saves its progress after every batch of 10 chunks but the last: an update of
    // the notification item (its size, rounded up per KB), its copy in the history index
    // (projection ALL) and the pending index's entry moved (dueMs is its sort key: two writes of
    // a keys-only entry, one unit each).
    let meta_units = m.meta_bytes.div_ceil(1024).max(1) as f64;
    let saves = chunks.div_ceil(CHUNKS_PER_SAVE).saturating_sub(1) as f64;
    let save_units = 2.0 * meta_units + 2.0;
    let total = fixed + saves * save_units + chunks as f64 * chunk;

    // Each partition key: its once-only units, plus its per-chunk units times the chunks that
    // write it.
    let fam =
        |phases: &[&(&str, Value)], f: &str| phases.iter().map(|(_, r)| listed(r, m.id, f)).sum::<f64>();
    let shard_chunks = chunks.div_ceil(COUNTER_SHARDS) as f64;
    let n_family = "notification partition (N#{id}: META, C#/L#/E# records)";
    let mut keys = vec![
        (
            format!("N#{}", m.id),
            "every chunk: its lease and marker; once: the notification's writes; the progress saves",
            fam(&once, n_family) + completion + saves * meta_units,
            chunks as f64,
            fam(&per_chunk, n_family) - completion,
        ),
        (
            format!("N#{}#K#0..7", m.id),
            "the counter shard of chunk % 8 (counts, push marker, push lease)",
            0.0,
            shard_chunks,
            fam(&per_chunk, "counter shards (N#{id}#K#{chunk % 8}: counts, P#, push leases)"),
        ),
        (
            format!("N#{}#M#{{chunk}}", m.id),
            "one chunk's sent marks",
            0.0,
            1.0,
            fam(&per_chunk, "sent marks (N#{id}#M#{chunk})"),
        ),
        (
            "C#3#GT (history index)".into(),
            "the notification's copy: once, the completion, the progress saves",
            fam(&once, HISTORY) + completion + saves * meta_units,
            0.0,
            0.0,
        ),
        (
            "P#{shard} (pending index)".into(),
            "once, and two per progress save",
            fam(&once, PENDING) + saves * 2.0,
            0.0,
            0.0,
        ),
        ("C#{id} (Inbox)".into(), "the content, once", fam(&once, "content (C#{id})"), 0.0, 0.0),
        ("U#{user} (Inbox)".into(), "one person's entry", 0.0, 1.0, fam(&per_chunk, INBOX_ENTRIES)),
        (
            "any key no phase listed".into(),
            "at most the fifth hottest key's units of each per-chunk phase, in every chunk",
            once.iter().map(|(_, r)| fifth(r)).sum(),
            chunks as f64,
            per_chunk.iter().map(|(_, r)| fifth(r)).sum(),
        ),
    ];
    keys.retain(|k| k.2 + k.3 * k.4 > 0.0);
    let key_rows: Vec<Value> = keys
        .iter()
        .map(|(key, what, fixed, hits, per)| {
            let units = fixed + hits * per;
            json!({"key": key, "what": what, "once_units": fixed, "chunks_writing_it": hits,
                "units_per_chunk": per, "write_units": units, "seconds_at_partition_limit": units / PARTITION_WCU})
        })
        .collect();
    let (hottest_key, hottest_units) = keys
        .iter()
        .map(|k| (k.0.clone(), k.2 + k.3 * k.4))
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .unwrap_or_default();
    let key_seconds = hottest_units / PARTITION_WCU;

    // Each table and index on its own: what reaching every inbox needs of the Inbox table.
    let mut per_table: BTreeMap<String, f64> = BTreeMap::new();
    for (phase, report) in &m.phases {
        let times = if ONCE.contains(phase) { 1.0 } else { chunks as f64 };
        for (t, v) in report["tables"].as_object().into_iter().flatten() {
            *per_table.entry(t.clone()).or_default() += times * v["write_units"].as_f64().unwrap_or(0.0);
        }
    }
    for (t, add) in [
        ("NotificationsTable", saves * meta_units - (chunks as f64 - 1.0) * completion),
        ("NotificationsTable/history", saves * meta_units - (chunks as f64 - 1.0) * completion),
        ("NotificationsTable/pending", saves * 2.0),
    ] {
        *per_table.entry(t.into()).or_default() += add;
    }
    per_table.retain(|_, u| *u > 0.0);

    let limits: Vec<Value> =
        [("new on-demand table", NEW_TABLE_WCU), ("warmed table (TableWarmWriteUnits)", WARMED_TABLE_WCU)]
            .iter()
            .map(|(label, wcu)| {
                let table_seconds = total / wcu;
                let (time, binds) = match key_seconds > table_seconds {
                    true => (key_seconds, format!("partition key {hottest_key}")),
                    false => (table_seconds, "table".to_string()),
                };
                let inbox = per_table.get("InboxTable").copied().unwrap_or(0.0) / wcu;
                json!({"label": label, "table_wcu": wcu, "table_seconds": table_seconds,
                "key_seconds": key_seconds, "seconds": time, "binds": binds,
                "ratio_to_table_bound": time / table_seconds,
                "inbox_table_alone_seconds": inbox,
                // What the hottest key is asked for when the table's rate is all that limits.
                "hottest_key_demand_per_second": hottest_units / table_seconds})
            })
            .collect();
    json!({
        "people": MILLION, "chunk_size": chunk_size, "chunks": chunks, "from_mix": m.name,
        "once_write_units": fixed, "per_chunk_write_units": chunk, "completion_write_units": 2.0 * completion,
        "progress_saves": saves, "progress_save_write_units": save_units,
        "notification_item_bytes": m.meta_bytes,
        "write_units": total, "per_person": total / MILLION as f64,
        "cost_writes": total * WRITE_UNIT,
        "keys": key_rows, "hottest_key": hottest_key, "hottest_key_units": hottest_units,
        "per_table_write_units": per_table,
        "limits": limits,
        "partition_wcu": PARTITION_WCU,
    })
}

/// A phase's report, compact: its units, its write units by table and index, its hottest keys.
fn phase_json(phase: &str, report: &Value) -> Value {
    let tables: BTreeMap<&String, f64> = report["tables"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(t, v)| (t, v["write_units"].as_f64().unwrap_or(0.0)))
        .filter(|(_, u)| *u > 0.0)
        .collect();
    let hottest: Vec<String> = report["hottest_keys"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| format!("{} {}: {}", e["table"].as_str().unwrap_or_default(), key_text(e), e["write_units"]))
        .collect();
    json!({"phase": phase, "write_units": report["write_units"], "read_units": report["read_units"],
        "write_units_by_table": tables, "hottest_keys": hottest})
}

pub async fn run(people: Option<usize>) -> Value {
    let started = Instant::now();
    let people = people.unwrap_or(shared::settings::Settings::DEFAULT_CHUNK_SIZE);
    println!("\nchannel-mix: a group send to {people} people (one chunk) per channel mix, metered on moto");
    let (endpoint, mut moto_process) = moto();
    let sdk = moto_sdk(&endpoint).await;
    let mut measured = Vec::new();
    for mix in &MIXES {
        let m = broadcast(&endpoint, &sdk, mix, people).await;
        let units = m.write_units();
        println!(
            "\n{:<30} {} people, {} devices, {} pushed, {} emailed: {units:.0} write units = {:.3} per delivered person ({:.0} read units; {:.0} s on moto)",
            m.name,
            m.people,
            m.devices,
            m.pushes_sent,
            m.emails_sent,
            units / m.delivered as f64,
            m.read_units(),
            m.seconds
        );
        for (phase, report) in &m.phases {
            println!(
                "  {phase:<10} {:>7.0} write units; hottest: {}",
                report["write_units"].as_f64().unwrap_or(0.0),
                report["hottest_keys"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|e| format!(
                        "{} {} {}",
                        e["table"].as_str().unwrap_or_default(),
                        key_text(e),
                        e["write_units"]
                    ))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        for (what, units) in m.families() {
            println!("  {what:<72} {units:>7.0}");
        }
        measured.push(m);
    }
    if let Some(child) = moto_process.as_mut() {
        let _ = child.kill();
        let _ = child.wait();
    }
    let one_push = measured.iter().find(|m| m.name == ONE_PUSH).expect("the one-push mix");
    let million = million(one_push);
    println!(
        "\n1,000,000 people, one push each ({} chunks): {:.0} write units = {:.4} per person",
        million["chunks"],
        million["write_units"].as_f64().unwrap_or(0.0),
        million["per_person"].as_f64().unwrap_or(0.0)
    );
    for l in million["limits"].as_array().into_iter().flatten() {
        println!(
            "  {}: {:.1} s (table {:.1} s, hottest key {:.1} s): {} binds",
            l["label"].as_str().unwrap_or_default(),
            l["seconds"].as_f64().unwrap_or(0.0),
            l["table_seconds"].as_f64().unwrap_or(0.0),
            l["key_seconds"].as_f64().unwrap_or(0.0),
            l["binds"].as_str().unwrap_or_default()
        );
    }
    let mixes: Vec<Value> = measured
        .iter()
        .map(|m| {
            let units = m.write_units();
            let tables: serde_json::Map<String, Value> = m
                .tables()
                .into_iter()
                .map(|(t, (w, r))| (t, json!({"write_units": w, "read_units": r})))
                .collect();
            let operations = m.operations();
            json!({
                "mix": m.name, "people": m.people, "devices": m.devices,
                "emails": m.emails_sent, "delivered": m.delivered, "pushes_sent": m.pushes_sent,
                "write_units": units, "per_person": units / m.delivered as f64,
                "read_units": m.read_units(),
                "tables": tables,
                "write_operations": operations.iter().filter(|(o, _)| WRITE_OPERATIONS.contains(&o.as_str())).collect::<BTreeMap<_, _>>(),
                "read_operations": operations.iter().filter(|(o, _)| !WRITE_OPERATIONS.contains(&o.as_str())).collect::<BTreeMap<_, _>>(),
                "by_key_family": m.families(),
                "hottest_keys": m.hottest().iter().take(5).map(|(t, k, u)| json!({"table": t, "key": k, "write_units": u})).collect::<Vec<_>>(),
                "peak_key_second": m.peak(),
                "phases": m.phases.iter().map(|(p, r)| phase_json(p, r)).collect::<Vec<_>>(),
                "throttled": m.phases.iter().filter_map(|(_, r)| r["throttled"].as_object()).flat_map(|t| t.values()).filter_map(Value::as_u64).sum::<u64>(),
                "notification_item_bytes": m.meta_bytes,
                "seconds_on_moto": m.seconds,
            })
        })
        .collect();
    json!({
        "date": chrono::Utc::now().format("%Y-%m-%d").to_string(),
        "machine": format!("{} cores", std::thread::available_parallelism().map_or(0, |n| n.get())),
        "arch": std::env::consts::ARCH,
        "seconds": started.elapsed().as_secs_f64(),
        "people_per_mix": people,
        "chunk_size": shared::settings::Settings::DEFAULT_CHUNK_SIZE,
        "meter": "scripts/dynamodb_meter.py",
        "meter_scale": 0,
        "prices_date": PRICES_DATE,
        "write_unit_price": WRITE_UNIT,
        "mixes": mixes,
        "million": million,
    })
}
