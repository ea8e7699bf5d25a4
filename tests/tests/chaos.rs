//! Exactly once under AWS's own failures. Seeded chaos in front of moto (`scripts/moto-serial`,
//! IAM enforced, every function under its own template policy): throttling, 5xx, answers lost
//! after the request took effect (the SDK then retries a write that already happened),
//! UnprocessedItems and UnprocessedKeys, failed SendMessageBatch entries, transactions cancelled
//! for a conflict; and SES's and SNS's: throttled, failing, sent with the answer lost, refused
//! (with AWS's messages, which quote the address or the token). The requests go through the real
//! DynamoDB, SQS, SES and SNS adapters, the SDK's retries, our own retry loops and `classify`:
//! send → fan-out → delivery → email jobs and pushes, with a crowd large enough for several
//! chunks and fan-out batches (each person with an address and a device, the send with a
//! templated email), callers retrying with their Idempotency-Key.
//!
//! The invariants, as in reliability.rs (whose memory schedules reach every fault point and crash
//! step; these reach the AWS error shapes): every request is accepted after its caller's retries;
//! every person meant to get a notification has its inbox item and nobody else does, its
//! delivered count equals those items (a delivery counted twice shows), every chunk recorded
//! once; every request answered 200 names a delivered notification, every stored one answers 200
//! to a retry with its key and sends nothing again. Each crowd member's email and push is counted
//! once, as sent or (only when SES or SNS refused one) failed, and what is counted sent reached
//! its address or device (at least once: neither takes an idempotency key); every queue and
//! dead-letter queue is empty at the end; no log line names an address or a device token.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration as StdDuration;

use chrono::Duration;
use serde_json::{Value, json};
use shared::model::*;
use shared::runtime::Ports;
use shared::service::fanout::LEASE_SECONDS;
use tests::{
    Functions, arm_chaos, chaos_counts, crowd, metered, moto_prefix, provision_moto, table_write_units,
};
use uuid::Uuid;

/// People in the crowd: with 1–3 per chunk, 9–25 chunks, so 1–3 fan-out batches.
const CROWD: usize = 25;
/// A caller's tries of one request (with its key): enough that only a request the service
/// cannot accept under these failure rates is refused every time.
const CALLER_TRIES: usize = 20;
/// DynamoDB's throughput the schedules run under (`scripts/dynamodb_meter.py`): this share of
/// each partition's 1,000 write units a second and of the table's.
const METER_SCALE: f64 = 0.01;

fn user(n: u8) -> Uuid {
    let d = n.to_string();
    format!("{0}-{1}-4{2}-8{2}-{3}", d.repeat(8), d.repeat(4), d.repeat(3), d.repeat(12)).parse().unwrap()
}

/// Requests, who each must reach, and where sent history finds what they stored.
fn requests(subject: &str) -> Vec<(Value, BTreeSet<Uuid>, HistoryScope)> {
    let company = |t| HistoryScope::CompanyType { company_id: 3, broadcast_type: t };
    vec![
        (
            json!({
                "version": 3, "type": "GT", "key": "3", "values": [crowd::TEAM], "message": "crowd",
                "emailTemplate": "Client.Generic.Notification.html", "emailSubject": subject,
                "emailParams": [{"key": "firstName", "value": "Crowd"}]
            }),
            (0..CROWD).map(crowd::person).collect(),
            company(BroadcastType::GT),
        ),
        (
            json!({"version": 3, "type": "GT", "key": "3", "values": ["23", "27"], "message": "gt"}),
            [1, 2, 3, 4].map(user).into(),
            company(BroadcastType::GT),
        ),
        (
            json!({"version": 3, "type": "GE", "key": "ed90fcd2-cbb4-49b8-9be4-a14ccbc2d1e8", "values": ["456", "459"], "message": "ge"}),
            [1, 5, 7].map(user).into(),
            HistoryScope::Event { event_id: "ed90fcd2-cbb4-49b8-9be4-a14ccbc2d1e8".parse().unwrap() },
        ),
        (
            json!({"version": 3, "type": "GA", "key": "3", "brochureId": 4, "message": "ga"}),
            [1, 3, 4].map(user).into(),
            HistoryScope::Asset { brochure_id: 4 },
        ),
        (
            json!({"version": 4, "type": "UN", "key": "3", "values": ["aaron.mcmullen@hypermedia.com.au", "user8@demo.example"], "message": "un"}),
            [1, 8].map(user).into(),
            company(BroadcastType::UN),
        ),
        (
            json!({"version": 3, "type": "SN", "key": "11", "values": ["101"], "message": "sn"}),
            [2, 4].map(user).into(),
            company(BroadcastType::SN),
        ),
        (
            json!({"version": 3, "type": "JN", "key": "3", "values": ["5", "6"], "message": "jn"}),
            [1, 2].map(user).into(),
            company(BroadcastType::JN),
        ),
    ]
}

use tests::send_with_key as send;

/// What a request stored (sent history of its scope, by its message).
async fn stored(ports: &Ports, body: &Value, scope: &HistoryScope) -> Vec<Notification> {
    let message = body["message"].as_str().unwrap();
    let page = ports.notifications.history(scope, &PageRequest::first(100)).await.expect("history reads");
    page.items.into_iter().filter(|n| n.content.body == message).collect()
}

/// Ticks and drains, as the scheduler and the event source mappings do (a failed record is
/// redelivered), until every stored notification is delivered and the queues are empty.
async fn drive(f: &Functions, wanted: &[(Value, BTreeSet<Uuid>, HistoryScope)], rounds: usize) -> bool {
    for _ in 0..rounds {
        let _ = local::workers::tick(&f.fanout).await;
        for _ in 0..100 {
            if f.event_sources_once().await.0 == 0 {
                break;
            }
        }
        // Delivered, and its channels settled: the crowd's email jobs and push jobs run under the
        // same chaos as its chunks.
        let mut settled = true;
        for (body, _, scope) in wanted {
            let open = |n: &Notification| {
                n.status != Status::Delivered
                    || n.emails_pending > 0
                    || (body["message"] == "crowd" && n.pushes_sent + n.pushes_failed < CROWD as u64)
            };
            if stored(&f.env.ports, body, scope).await.iter().any(open) {
                settled = false;
            }
        }
        if settled {
            return true;
        }
        // Time passes: leases of fan-outs that failed midway run out.
        f.env.time_passes(Duration::seconds(LEASE_SECONDS + 1)).await;
    }
    false
}

/// Checks the invariants for every stored notification; returns how many are stored.
async fn check(
    f: &Functions,
    wanted: &[(Value, BTreeSet<Uuid>, HistoryScope)],
    chunk_size: usize,
    context: &str,
) -> usize {
    let ports = &f.env.ports;
    let everyone: Vec<Uuid> = (1..=8).map(user).chain((0..CROWD).map(crowd::person)).collect();
    let mut count = 0;
    for (body, want, scope) in wanted {
        let found = stored(ports, body, scope).await;
        assert!(found.len() <= 1, "{context}: {} stored {} times", body["message"], found.len());
        let Some(n) = found.first() else { continue };
        count += 1;
        let mut holders = BTreeSet::new();
        for person in &everyone {
            if ports.inbox.get(*person, n.id).await.expect("inbox reads").is_some() {
                holders.insert(*person);
            }
        }
        assert_eq!(&holders, want, "{context}: {} reached the wrong people", n.content.body);
        assert_eq!(n.status, Status::Delivered, "{context}: {} not delivered", n.content.body);
        assert_eq!(
            n.delivered,
            holders.len() as u64,
            "{context}: {} counted {} deliveries",
            n.content.body,
            n.delivered
        );
        let chunks = want.len().div_ceil(chunk_size) as u32;
        assert_eq!((n.chunks_done, n.chunks_total), (chunks, Some(chunks)), "{context}: {}", n.content.body);
    }
    count
}

/// One seeded chaos schedule on fresh tables and queues. Returns what was stored, and the
/// failures injected by kind (and `Operation:kind`).
async fn schedule(seed: u64) -> (usize, BTreeMap<String, u64>) {
    use rand::{Rng, SeedableRng};
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let (sdk, provisioned, config) = provision_moto().await;
    // The SDK's standard retries, as deployed, with short waits so that a schedule takes seconds.
    let retry = aws_config::retry::RetryConfig::standard()
        .with_initial_backoff(StdDuration::from_millis(2))
        .with_max_backoff(StdDuration::from_millis(20));
    let sdk = sdk.to_builder().retry_config(retry).build();
    let mut f = Functions::on(&sdk, &provisioned, &config).await;
    let people = crowd::load(&f.env.ports, CROWD, true).await;
    let chunk_size = rng.random_range(1..=3);
    f.fanout.settings.chunk_size = chunk_size;
    // An email job or a push job SES or SNS held up continues in a later round, on the queue
    // after a delay SQS keeps in real time: not what these schedules are about (the rounds'
    // count, as deployed, is).
    let now = StdDuration::ZERO;
    f.deliver.settings.email_sending.retry.base = now;
    f.deliver.settings.email_sending.retry.cap = now;
    f.deliver.settings.push_retry.base = now;
    f.deliver.settings.push_retry.cap = now;
    // Nor is the account's sending rate (channels.rs paces to it): SES's throttling here is the
    // chaos's, at its rate.
    f.deliver.settings.email_sending.per_consumer = None;
    let set = f.env.configuration_set.clone().expect("a configuration set on moto");
    tests::arm_ses_limits(&set, 1_000, 1_000_000).await;
    let rate = rng.random_range(0.05..0.25);
    let prefix = moto_prefix(&provisioned);
    arm_chaos(&prefix, seed, rate).await;
    // DynamoDB's write throughput too, at a hundredth (10 write units a second per partition
    // key, 40 per table): the throttling a broadcast of thousands meets, met by a crowd of 25.
    // Reads are billed, not throttled here: a chunk's reads are the same few dozen units at 1 or
    // at 2,000 people, so with 1–3 people a chunk they would be a thousand times a person's share
    // (`throttled.rs` throttles reads too, in one chunk of its crowd).
    tests::arm_meter_with_reads(&prefix, METER_SCALE, table_write_units(), 0.0, 0.0).await;
    let context = format!("seed {seed}, rate {rate:.2}, {chunk_size} per chunk");

    let subject = format!("chaos {prefix}");
    let all = requests(&subject);
    let count = rng.random_range(1..=all.len());
    let wanted: Vec<_> = all.into_iter().take(count).collect();
    let mut answers = Vec::new();
    for (i, (body, _, _)) in wanted.iter().enumerate() {
        // The caller retries on 503 with the same key, and on 409 "in progress" once the claim
        // of a request that died has run out.
        let key = format!("req-{seed}-{i}");
        let mut last = (0, None);
        for _ in 0..CALLER_TRIES {
            last = send(&f.send, body, &key).await;
            if last.0 == 200 {
                break;
            }
            if last.0 == 409 {
                let lease = shared::service::idempotency::IN_PROGRESS_SECONDS;
                f.env.time_passes(Duration::seconds(lease + 1)).await;
            }
        }
        answers.push((key, last));
    }
    if !drive(&f, &wanted, 40).await {
        let mut states = Vec::new();
        for (body, _, scope) in &wanted {
            for n in stored(&f.env.ports, body, scope).await {
                states.push(format!(
                    "{}: {:?} chunks {}/{:?} delivered {} lease {:?} progress {:?}",
                    n.content.body,
                    n.status,
                    n.chunks_done,
                    n.chunks_total,
                    n.delivered,
                    n.lease_until,
                    n.fanout
                ));
            }
        }
        let dlq =
            f.env.delivery_dlq.receive(10).await.map(|m| m.into_iter().map(|m| m.body).collect::<Vec<_>>());
        let failures = tests::logs::capture("info").lines_with(&["delivery failed", "could not record"]);
        panic!(
            "{context}: did not settle: {states:#?}, delivery DLQ {dlq:?}, injected {:?}, failures logged: {failures:#?}",
            chaos_counts(&prefix).await
        );
    }
    let mut injected = chaos_counts(&prefix).await;
    let throttled = metered(&prefix).await["throttled"]
        .as_object()
        .map_or(0, |t| t.values().filter_map(|v| v.as_u64()).sum::<u64>());
    *injected.entry("metered:throttled".into()).or_default() += throttled;
    arm_chaos(&prefix, seed, 0.0).await;
    let accepted = check(&f, &wanted, chunk_size, &context).await;
    assert_eq!(accepted, wanted.len(), "{context}: every request is accepted after its caller's retries");
    crowd_reached(&f, &people, &subject, &injected, &context).await;

    // Acknowledged versus stored; then every stored notification answers its retry.
    for ((body, _, scope), (key, (status, id))) in wanted.iter().zip(&answers) {
        let message = body["message"].as_str().unwrap();
        let found = stored(&f.env.ports, body, scope).await;
        if *status == 200 {
            assert_eq!(found.len(), 1, "{context}: {message} was answered 200 and is not stored");
            assert_eq!(*id, Some(found[0].schedule_id), "{context}: {message} answered another id");
        }
        if let Some(n) = found.first() {
            let (mut retry, mut retry_id) = send(&f.send, body, key).await;
            if retry == 409 {
                // A claim whose request died holds its key for its lease, then frees it.
                let lease = shared::service::idempotency::IN_PROGRESS_SECONDS;
                f.env.clock.advance(Duration::seconds(lease + 1));
                (retry, retry_id) = send(&f.send, body, key).await;
            }
            assert_eq!(retry, 200, "{context}: {message}'s retry");
            assert_eq!(retry_id, Some(n.schedule_id), "{context}: {message}'s retry answered another id");
        }
    }
    // The retries sent nothing again.
    assert!(drive(&f, &wanted, 3).await, "{context}: did not settle after the retries");
    assert_eq!(check(&f, &wanted, chunk_size, &format!("{context}, after the retries")).await, accepted);
    crowd_reached(&f, &people, &subject, &injected, &format!("{context}, after the retries")).await;
    queues_empty(&prefix, &context).await;
    (accepted, injected)
}

/// The crowd's email and pushes: each person counted once, as sent or, only where SES or SNS
/// refused, failed; nothing pending; what is counted sent reached its address or device.
async fn crowd_reached(
    f: &Functions,
    people: &[Uuid],
    subject: &str,
    injected: &BTreeMap<String, u64>,
    context: &str,
) {
    let (body, _, scope) = &requests(subject)[0];
    let n = stored(&f.env.ports, body, scope).await.pop().expect("the crowd's send is stored");
    let refused = |op: &str| injected.get(&format!("{op}:refused")).copied().unwrap_or(0);
    assert_eq!(n.emails_pending, 0, "{context}: emails pending");
    assert_eq!(
        (n.emails_sent + n.emails_failed, n.emails_opted_out, n.emails_no_address),
        (CROWD as u64, 0, 0),
        "{context}: every crowd address counted once"
    );
    assert!(
        n.emails_failed <= refused("SendEmail"),
        "{context}: {} emails failed, {} refused",
        n.emails_failed,
        refused("SendEmail")
    );
    let emailed: BTreeSet<String> =
        f.env.outbox.emails(subject).await.into_iter().flat_map(|e| e.to).collect();
    assert!(
        emailed.len() as u64 >= n.emails_sent
            && emailed.iter().all(|a| (0..CROWD).any(|i| crowd::address(i) == *a)),
        "{context}: {} counted sent, {} addresses emailed",
        n.emails_sent,
        emailed.len()
    );
    let endpoints: Vec<String> = {
        let mut all = Vec::new();
        for p in people {
            all.extend(
                f.env
                    .ports
                    .devices
                    .devices(*p)
                    .await
                    .expect("devices read")
                    .into_iter()
                    .map(|d| d.endpoint_arn),
            );
        }
        all
    };
    assert_eq!(endpoints.len(), CROWD, "{context}: a device each, none pruned");
    assert_eq!(
        (n.pushes_sent + n.pushes_failed, n.pushes_removed),
        (CROWD as u64, 0),
        "{context}: every crowd device counted once"
    );
    assert!(
        n.pushes_failed <= refused("Publish"),
        "{context}: {} pushes failed, {} refused",
        n.pushes_failed,
        refused("Publish")
    );
    let pushed: BTreeSet<String> =
        f.env.outbox.pushes(&endpoints).await.into_iter().map(|p| p.endpoint).collect();
    assert!(
        pushed.len() as u64 >= n.pushes_sent,
        "{context}: {} counted sent, {} devices pushed",
        n.pushes_sent,
        pushed.len()
    );
}

/// Every queue and dead-letter queue of the test is empty: nothing in flight, nothing given up.
async fn queues_empty(prefix: &str, context: &str) {
    use aws_sdk_sqs::types::QueueAttributeName as A;
    let sqs = aws_sdk_sqs::Client::new(&shared::runtime::aws_sdk_config().await);
    let urls = sqs
        .list_queues()
        .queue_name_prefix(prefix)
        .send()
        .await
        .expect("queues listed")
        .queue_urls
        .unwrap_or_default();
    let template = local::provision::read_template(&tests::template_path()).expect("the template reads");
    let queues = local::provision::resources_of_type(&template, "AWS::SQS::Queue").len();
    assert_eq!(urls.len(), queues, "{context}: the template's queues under {prefix}");
    for url in urls {
        let attributes = sqs
            .get_queue_attributes()
            .queue_url(&url)
            .attribute_names(A::All)
            .send()
            .await
            .expect("attributes read")
            .attributes
            .unwrap_or_default();
        for name in [
            A::ApproximateNumberOfMessages,
            A::ApproximateNumberOfMessagesNotVisible,
            A::ApproximateNumberOfMessagesDelayed,
        ] {
            let count = attributes.get(&name).map_or("0", String::as_str);
            assert_eq!(count, "0", "{context}: {url} holds {count} ({name:?})");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaos_schedules_on_moto_deliver_exactly_once() {
    let logs = tests::logs::capture("info");
    const FIXED: u64 = 12;
    const FRESH: u64 = 12;
    let base: u64 = std::env::var("CHAOS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| rand::random::<u32>() as u64 + 1_000);
    println!("chaos: fresh seeds {base}..{} (CHAOS_SEED={base} replays them)", base + FRESH);
    let mut accepted = 0;
    let mut kinds: BTreeMap<String, u64> = BTreeMap::new();
    for seed in (0..FIXED).chain(base..base + FRESH) {
        let (a, injected) = schedule(seed).await;
        accepted += a;
        for (kind, n) in injected {
            *kinds.entry(kind).or_default() += n;
        }
    }
    let (by_kind, by_operation): (BTreeMap<_, _>, BTreeMap<_, _>) =
        kinds.into_iter().partition(|(k, _)| !k.contains(':'));
    let injected: u64 = by_kind.values().sum();
    println!(
        "chaos: {} schedules on moto, {injected} AWS failures injected {by_kind:?}, {accepted} notifications stored: 0 duplicates, 0 losses, every 200 delivered, every stored notification answering its retry",
        FIXED + FRESH
    );
    println!("chaos: by operation {by_operation:?}");
    // SES's and SNS's refusals quote the address and the token: no log line does.
    let text = logs.text();
    assert!(!text.is_empty(), "the functions' lines are captured");
    for i in 0..CROWD {
        for personal in [crowd::address(i), crowd::token(i)] {
            assert!(!text.contains(&personal), "a log line names {personal}");
        }
    }
    // Every schedule's crowd was emailed and pushed under chaos: each address and device asked
    // at least once while it was armed.
    for op in ["SendEmail", "Publish"] {
        let asked = by_operation.get(&format!("{op}:requests")).copied().unwrap_or(0);
        assert!(asked >= (FIXED + FRESH) * CROWD as u64, "{op}: {asked} requests under chaos");
    }
    // Every kind of failure happened, on the operations that have it.
    for kind in [
        "throttle",
        "internal",
        "lost",
        "BatchWriteItem:unprocessed",
        "BatchGetItem:unprocessed",
        "SendMessageBatch:failed_entries",
        "TransactWriteItems:conflict",
        "SendMessageBatch:lost",
        "metered:throttled",
        "SendEmail:throttle",
        "SendEmail:lost",
        "SendEmail:refused",
        "Publish:throttle",
        "Publish:lost",
        "Publish:refused",
    ] {
        let n = by_kind.get(kind).or_else(|| by_operation.get(kind)).copied().unwrap_or(0);
        assert!(n > 0, "no {kind} was injected: {by_kind:?} {by_operation:?}");
    }
}
