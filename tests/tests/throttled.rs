//! A broadcast under DynamoDB's throughput and billing, on moto. `scripts/dynamodb_meter.py`
//! bills every request as DynamoDB does and throttles as DynamoDB does, scaled so that a crowd of
//! a hundred meets the limits a broadcast of a hundred thousand meets: [`SCALE`] of 1,000 write
//! units a second per partition key and of 4,000 per table (a new on-demand table: the template's
//! `TableWarmWriteUnits` default, [`tests::table_write_units`]). The functions
//! run under their own template policies, with the SDK's retries as deployed; the event source
//! mappings redeliver what they report failed.
//!
//! What must hold when throttling is transient: the notification ends Delivered, every person
//! has exactly one entry and nobody else does, it is counted once, and every device was pushed
//! (counted once). The figures of the run (write units per delivered person, the hottest key)
//! are printed: they are measured, not promised here (docs/benchmarks.md states the targets).

use chrono::Duration;
use serde_json::json;
use shared::model::*;
use tests::{
    Functions, arm_meter, crowd, metered, moto_prefix, provision_moto, send_with_key, table_write_units,
};

/// People in the broadcast, each with one device.
const CROWD: usize = 120;
/// 1,000 x 0.01 = 10 write units a second per partition key; 4,000 x 0.01 = 40 per table;
/// reads likewise (30 read units a second per key, 120 per table or index).
const SCALE: f64 = 0.01;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_throttled_broadcast_reaches_everyone_once() {
    let (sdk, provisioned, config) = provision_moto().await;
    let f = Functions::on(&sdk, &provisioned, &config).await;
    let people = crowd::load(&f.env.ports, CROWD, true).await;
    let prefix = moto_prefix(&provisioned);
    arm_meter(&prefix, SCALE, table_write_units()).await;

    let body =
        json!({"version": 3, "type": "GT", "key": "3", "values": [crowd::TEAM], "message": "throttled"});
    let mut answer = (0, None);
    for _ in 0..5 {
        answer = send_with_key(&f.send, &body, "throttled-1").await;
        if answer.0 == 200 {
            break;
        }
    }
    assert_eq!(answer.0, 200, "the send is accepted (the caller retries a 503)");
    let scope = HistoryScope::CompanyType { company_id: 3, broadcast_type: BroadcastType::GT };
    let stored = || async {
        let page = f.env.ports.notifications.history(&scope, &PageRequest::first(10)).await.expect("history");
        page.items.into_iter().find(|n| n.content.body == "throttled")
    };

    let mut delivered = None;
    for _ in 0..60 {
        let _ = local::workers::tick(&f.fanout).await;
        for _ in 0..200 {
            if f.event_sources_once().await.0 == 0 {
                break;
            }
        }
        if let Some(n) = stored().await
            && n.status == Status::Delivered
        {
            delivered = Some(n);
            break;
        }
        // Time passes: a fan-out that failed midway is taken over when its lease ran out.
        f.env.time_passes(Duration::seconds(shared::service::fanout::LEASE_SECONDS + 1)).await;
    }
    let report = metered(&prefix).await;
    let Some(n) = delivered else {
        panic!("not delivered under throttling: {:?}; {report}", stored().await);
    };
    let mut holders = 0;
    for person in &people {
        if f.env.ports.inbox.get(*person, n.id).await.expect("inbox reads").is_some() {
            holders += 1;
        }
    }
    assert_eq!(holders, CROWD, "everyone has it");
    assert_eq!(n.delivered, CROWD as u64, "counted once per person");
    assert_eq!(n.pushes_sent, CROWD as u64, "every device pushed, counted once: {n:?}");
    let throttled: u64 =
        report["throttled"].as_object().map(|m| m.values().filter_map(|v| v.as_u64()).sum()).unwrap_or(0);
    assert!(throttled > 0, "the model throttled nothing: the test proves nothing at this scale: {report}");
    println!("throttled requests: {}", report["throttled"]);

    let units = report["write_units"].as_f64().unwrap_or_default();
    println!(
        "throttled broadcast: {CROWD} people with one device each at scale {SCALE}: {units} write units \
         ({:.2} per delivered person), {throttled} requests throttled ({}), hottest keys {}, \
         busiest key-second {}",
        units / CROWD as f64,
        report["throttled"],
        report["hottest_keys"],
        report["peak_key_second"]
    );
}

/// A flush of sent marks is one write unit (README: a write unit per 64 sends, whatever the
/// ids weigh): 64 of the longest marks (a push to a device with a 200-character id, refused for
/// good) in one `add_sent_marks`, billed by the meter as DynamoDB bills it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flush_of_64_marks_is_one_write_unit() {
    let (sdk, provisioned, config) = provision_moto().await;
    let f = Functions::on(&sdk, &provisioned, &config).await;
    let prefix = moto_prefix(&provisioned);
    let n = uuid::Uuid::new_v4();
    let marks: Vec<String> =
        (0..64).map(|i| SentMarks::failed(&SentMarks::push(&format!("{i:0>200}")))).collect();
    arm_meter(&prefix, 0.0, 0.0).await;
    f.env.ports.notifications.add_sent_marks(n, 0, &marks, chrono::Utc::now()).await.expect("marks");
    let report = metered(&prefix).await;
    assert_eq!(report["write_units"].as_f64(), Some(1.0), "{report}");
    let context = f.env.ports.notifications.chunk_context(n, 0).await.expect("context");
    assert!((0..64).all(|i| context.marks.push_failed(&format!("{i:0>200}"))), "all 64 read back");
}

/// An email's body is written once, apart from its notification (README: a status change costs
/// what the notification weighs without its email): the largest body the group-send dialect
/// stores adds its own size to the insert, once, and nothing to any status change, to the
/// history indexes' copies of them, or to a chunk's read of the notification.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_email_body_is_billed_once_whatever_it_weighs() {
    use shared::dialects::group_send::MAX_EMAIL_BODY_BYTES;
    let (sdk, provisioned, config) = provision_moto().await;
    let f = Functions::on(&sdk, &provisioned, &config).await;
    let prefix = moto_prefix(&provisioned);
    let store = &f.env.ports.notifications;
    let now = tests::t0();
    // What a notification's life bills: its insert, then its status changes (claimed, a fan-out's
    // progress, fanned out, given up) and a chunk's read of it.
    let life = |body: String, schedule_id: u64| {
        let prefix = prefix.clone();
        async move {
            let mut n = Notification::new(
                uuid::Uuid::new_v4(),
                schedule_id,
                3,
                Origin::GroupSend,
                BroadcastType::GT,
                Audience::Teams { company_id: 3, team_ids: vec!["23".into()] },
                Content { title: "Title".into(), body: "message".into(), ..Content::default() },
                "654".into(),
                now,
            );
            n.brochure_id = Some(4);
            n.email = Some(EmailSpec {
                template: "Client.Generic.HTMLBody.Mandrill.html".into(),
                subject: "s".into(),
                params: vec![EmailParam { key: "k".into(), value: "v".into() }],
                body: Some(body),
            });
            arm_meter(&prefix, 0.0, 0.0).await;
            store.insert(&n).await.expect("insert");
            let inserted = metered(&prefix).await["write_units"].as_f64().unwrap_or_default();
            arm_meter(&prefix, 0.0, 0.0).await;
            let lease = now + Duration::minutes(5);
            assert!(store.claim(n.id, now, lease).await.expect("claim"));
            let progress = FanoutProgress { chunks_enqueued: 1, recipients_enqueued: 10 };
            let longer = lease + Duration::minutes(5);
            store.save_progress(n.id, &progress, lease, longer).await.expect("progress");
            store.finish_fanout(n.id, 2, 20, longer, now).await.expect("fanned out");
            store.mark_failed(n.id, "given up", now).await.expect("failed");
            let changes = metered(&prefix).await;
            arm_meter(&prefix, 0.0, 0.0).await;
            store.chunk_context(n.id, 0).await.expect("a chunk's context");
            let read = metered(&prefix).await["read_units"].as_f64().unwrap_or_default();
            (inserted, changes, read)
        }
    };
    let (small_insert, small, small_read) = life("<p>x</p>".into(), 900).await;
    let big_body = "<p>".to_string() + &"b".repeat(MAX_EMAIL_BODY_BYTES - 3);
    let (big_insert, big, big_read) = life(big_body, 901).await;
    assert_eq!(
        (big["write_units"].as_f64(), &big["tables"]),
        (small["write_units"].as_f64(), &small["tables"]),
        "status changes (table and index copies) bill the same whatever the body weighs: {big} vs {small}"
    );
    assert_eq!(big_read, small_read, "a chunk reads the notification without its body");
    // The body's item, in the insert's transaction (billed twice), once: its kilobytes and at most
    // one more for its key and attribute name, twice.
    let body_kb = (MAX_EMAIL_BODY_BYTES as f64 / 1024.0).ceil();
    let extra = big_insert - small_insert;
    assert!(
        extra >= 2.0 * (body_kb - 1.0) && extra <= 2.0 * (body_kb + 1.0),
        "the body billed once: {extra} more write units for {body_kb} KB ({big_insert} vs {small_insert})"
    );
}
