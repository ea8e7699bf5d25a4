//! Exactly once under faults: random fault schedules through send → fanout → deliver, and a
//! crash at every step of a fan-out. The invariants, for every accepted notification: each
//! intended recipient has exactly one inbox item, nobody else has one, the delivered count
//! equals the items written, and nothing is left in flight.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration as StdDuration;

use chrono::Duration;
use serde_json::{Value, json};
use shared::model::*;
use shared::ports::{ManualClock, SequentialIds};
use shared::runtime::MemoryPorts;
use shared::runtime::Ports;
use shared::service::fanout::LEASE_SECONDS;
use tests::faults::{Faults, faulty};
use uuid::Uuid;

fn user(n: u8) -> Uuid {
    let d = n.to_string();
    format!("{0}-{1}-4{2}-8{2}-{3}", d.repeat(8), d.repeat(4), d.repeat(3), d.repeat(12)).parse().unwrap()
}

/// People in the crowd (tests::crowd), each with an address and a device: with 1–3 per chunk,
/// 10–30 chunks, so 1–3 fan-out batches of 10 and progress saves between them.
const CROWD: usize = 30;
/// The subject of the crowd's email.
const CROWD_SUBJECT: &str = "To the crowd";

/// Requests and who each must reach (DEMO-DIRECTORY.md, and the crowd).
fn requests() -> Vec<(Value, BTreeSet<Uuid>)> {
    vec![
        (
            json!({
                "version": 3, "type": "GT", "key": "3", "values": [tests::crowd::TEAM], "message": "crowd",
                "emailTemplate": "Client.Generic.Notification.html", "emailSubject": CROWD_SUBJECT,
                "emailParams": []
            }),
            (0..CROWD).map(tests::crowd::person).collect(),
        ),
        (
            json!({"version": 3, "type": "GT", "key": "3", "values": ["23", "27"], "message": "gt"}),
            [1, 2, 3, 4].map(user).into(),
        ),
        (
            json!({"version": 3, "type": "GE", "key": "ed90fcd2-cbb4-49b8-9be4-a14ccbc2d1e8", "values": ["456", "459"], "message": "ge"}),
            [1, 5, 7].map(user).into(),
        ),
        (
            json!({"version": 3, "type": "GA", "key": "3", "brochureId": 4, "message": "ga"}),
            [1, 3, 4].map(user).into(),
        ),
        (
            json!({"version": 4, "type": "UN", "key": "3", "values": ["aaron.mcmullen@hypermedia.com.au", "user8@demo.example"], "message": "un"}),
            [1, 8].map(user).into(),
        ),
        (
            json!({"version": 2, "type": "JN", "key": "3", "values": ["5", "6"], "message": "jn"}),
            [1, 2].map(user).into(),
        ),
        (
            json!({"version": 3, "type": "SN", "key": "11", "values": ["101"], "message": "sn"}),
            [2, 4].map(user).into(),
        ),
    ]
}

struct World {
    memory: MemoryPorts,
    clock: Arc<ManualClock>,
}

async fn world() -> World {
    world_with_chunks(1).await
}

/// With `chunk_size` recipients per chunk (1: one chunk per recipient, the most steps to fail
/// between; more: batches of several items, partly written when they fail).
async fn world_with_chunks(chunk_size: usize) -> World {
    let clock = Arc::new(ManualClock::new(tests::t0()));
    let mut memory =
        MemoryPorts::with_queues(clock.clone(), Arc::new(SequentialIds::default()), StdDuration::ZERO, 1_000);
    memory.ports.settings.chunk_size = chunk_size;
    // An email job that failed continues in a later round; the memory queue's delays are real
    // time, and the waits between rounds are not what these schedules are about.
    memory.ports.settings.email_sending.retry =
        shared::backoff::Backoff { base: StdDuration::ZERO, cap: StdDuration::ZERO, max_attempts: 20 };
    // So does a chunk's push job, and a chunk handed over for throttling.
    memory.ports.settings.push_retry =
        shared::backoff::Backoff { base: StdDuration::ZERO, cap: StdDuration::ZERO, max_attempts: 8 };
    tests::unwaited_hand_overs(&mut memory.ports.settings);
    memory.load_demo_directory().await.unwrap();
    tests::crowd::load(&memory.ports, CROWD, true).await;
    World { memory, clock }
}

async fn send(ports: &Ports, body: &Value, key: &str) -> u16 {
    send_answer(ports, body, key).await.0
}

use tests::send_with_key as send_answer;

/// Ticks and drains (tolerating failures, as Lambda retries) until nothing is in flight.
async fn drive(w: &World, ports: &Ports, rounds: usize) -> usize {
    for round in 0..rounds {
        let _ = local::workers::tick(ports).await;
        for _ in 0..50 {
            match local::workers::run_until_idle(ports, 1_000).await {
                Ok(0) => break,
                Ok(_) | Err(_) => continue,
            }
        }
        let settled = w.memory.notifications.all().iter().all(|n| n.status == Status::Delivered)
            && w.memory.fanout_queue.is_empty()
            && w.memory.delivery_queue.is_empty()
            && w.memory.email_queue.is_empty();
        if settled {
            return round;
        }
        // Time passes: leases of crashed fan-outs run out.
        w.clock.advance(Duration::seconds(LEASE_SECONDS + 1));
    }
    rounds
}

/// Checks the invariants; returns the number of accepted notifications.
fn check(w: &World, expected: &BTreeMap<String, BTreeSet<Uuid>>, context: &str) -> usize {
    let notifications = w.memory.notifications.all();
    let items = w.memory.inbox.all_items();
    for n in &notifications {
        let want = &expected[&n.content.body];
        let holders: Vec<Uuid> =
            items.iter().filter(|i| i.entry.notification_id == n.id).map(|i| i.entry.user_id).collect();
        let unique: BTreeSet<Uuid> = holders.iter().copied().collect();
        assert_eq!(holders.len(), unique.len(), "{context}: a duplicate inbox item");
        assert_eq!(&unique, want, "{context}: {} reached the wrong people", n.content.body);
        assert_eq!(n.status, Status::Delivered, "{context}: {} not delivered", n.content.body);
        assert_eq!(n.delivered, holders.len() as u64, "{context}: count != items for {}", n.content.body);
        let chunks = want.len().div_ceil(w.memory.ports.settings.chunk_size) as u32;
        assert_eq!((n.chunks_done, n.chunks_total), (chunks, Some(chunks)), "{context}");
    }
    // At most one notification per request: idempotent retries never sent twice.
    let bodies: Vec<&String> = notifications.iter().map(|n| &n.content.body).collect();
    assert_eq!(
        bodies.iter().collect::<BTreeSet<_>>().len(),
        bodies.len(),
        "{context}: a request was accepted twice"
    );
    assert!(
        w.memory.fanout_queue.is_empty()
            && w.memory.delivery_queue.is_empty()
            && w.memory.email_queue.is_empty(),
        "{context}: left in flight"
    );
    // Email and push reach everyone they are for, at least once (neither SES nor SNS takes an
    // idempotency key: a send whose answer was lost is sent again, docs/reliability.md "a kill at any
    // point"), and nothing is left pending or given up.
    if let Some(n) = notifications.iter().find(|n| n.content.body == "crowd") {
        let emailed: BTreeSet<String> =
            w.memory.mailer.sent().into_iter().filter(|e| e.subject == CROWD_SUBJECT).map(|e| e.to).collect();
        let addresses: BTreeSet<String> = (0..CROWD).map(tests::crowd::address).collect();
        assert_eq!(emailed, addresses, "{context}: the crowd's emails");
        assert_eq!((n.emails_pending, n.emails_failed), (0, 0), "{context}: emails pending or failed");
        assert_eq!(n.emails_sent, CROWD as u64, "{context}: each address counted sent once");
        let pushed: BTreeSet<String> =
            w.memory.push.published().into_iter().map(|(endpoint, _)| endpoint).collect();
        assert_eq!(pushed.len(), CROWD, "{context}: the crowd's devices pushed");
        assert_eq!(
            (n.pushes_sent, n.pushes_failed),
            (CROWD as u64, 0),
            "{context}: each device counted sent once"
        );
    }
    let dlqs = [
        w.memory.fanout_queue.dead_letters(),
        w.memory.delivery_queue.dead_letters(),
        w.memory.email_queue.dead_letters(),
    ];
    assert!(dlqs.iter().all(|d| d.is_some_and(|q| q.is_empty())), "{context}: dead-lettered");
    notifications.len()
}

/// Runs one seeded fault schedule. Returns (accepted, faults injected, paths reached).
async fn schedule(seed: u64) -> (usize, u64, BTreeMap<String, u64>) {
    use rand::{Rng, SeedableRng};
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let w = world_with_chunks(rng.random_range(1..=3)).await;
    let rate = rng.random_range(0.02..0.15);
    let faults = Faults::random(seed, rate);
    let ports = faulty(&w.memory.ports, &faults);
    let all = requests();
    let count = rng.random_range(1..=all.len());
    let mut expected = BTreeMap::new();
    // Each request's final answer: 200 with its schedule id, or the last failure.
    let mut answers = Vec::new();
    for (i, (body, want)) in all.into_iter().take(count).enumerate() {
        expected.insert(body["message"].as_str().unwrap().to_string(), want);
        // The caller retries on 503 (and on 409 "in progress") with the same key, a few times.
        let mut last = (0, None);
        for _ in 0..10 {
            last = send_answer(&ports, &body, &format!("req-{i}")).await;
            if last.0 == 200 {
                break;
            }
        }
        answers.push((body, format!("req-{i}"), last));
    }
    let rounds = drive(&w, &ports, 300).await;
    let context = format!("seed {seed}, rate {rate:.2}");
    if rounds >= 300 {
        let states: Vec<String> = w
            .memory
            .notifications
            .all()
            .iter()
            .map(|n| {
                format!(
                    "{} {:?} {}/{:?} emails pending {}",
                    n.content.body, n.status, n.chunks_done, n.chunks_total, n.emails_pending
                )
            })
            .collect();
        panic!(
            "{context}: did not settle: {states:?}; queued: fan-out {}, delivery {}, email {}",
            w.memory.fanout_queue.len(),
            w.memory.delivery_queue.len(),
            w.memory.email_queue.len()
        );
    }
    let accepted = check(&w, &expected, &context);
    // Acknowledged versus stored: every 200 names the notification that was delivered; every
    // stored notification answers 200 with its id to a retry with the same key (no key is left
    // "in progress" behind a notification that went out); nothing unanswered was stored twice.
    let stored = w.memory.notifications.all();
    for (body, key, (status, id)) in answers {
        let message = body["message"].as_str().unwrap();
        let found: Vec<&Notification> = stored.iter().filter(|n| n.content.body == message).collect();
        assert!(found.len() <= 1, "{context}: {message} stored {} times", found.len());
        if status == 200 {
            assert_eq!(found.len(), 1, "{context}: {message} was answered 200 and is not stored");
            // Version 2 answers the recipients, not the id.
            if let Some(id) = id {
                assert_eq!(id, found[0].schedule_id, "{context}: {message} answered another id");
            }
        }
        if let Some(n) = found.first() {
            let (mut retry, mut retry_id) = send_answer(&w.memory.ports, &body, &key).await;
            if retry == 409 {
                // A claim whose request died holds its key for its lease, then frees it.
                let lease = shared::service::idempotency::IN_PROGRESS_SECONDS;
                w.clock.advance(Duration::seconds(lease + 1));
                (retry, retry_id) = send_answer(&w.memory.ports, &body, &key).await;
            }
            assert_eq!(retry, 200, "{context}: {message}'s retry");
            assert!(
                retry_id.is_none_or(|id| id == n.schedule_id),
                "{context}: {message}'s retry answered another id"
            );
        }
    }
    // The retries sent nothing again.
    drive(&w, &w.memory.ports, 5).await;
    assert_eq!(check(&w, &expected, &format!("{context}, after the retries")), accepted);
    (accepted, faults.injected.load(std::sync::atomic::Ordering::SeqCst), faults.reached())
}

#[tokio::test]
async fn random_fault_schedules_deliver_exactly_once() {
    const SCHEDULES: u64 = 250;
    const FRESH: u64 = 50;
    // The fixed seeds, and fresh ones each run (printed, so a failure can be replayed with
    // RELIABILITY_SEED=<base>).
    let base: u64 = std::env::var("RELIABILITY_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| rand::random::<u32>() as u64 + 1_000);
    println!("reliability: fresh seeds {base}..{} (RELIABILITY_SEED={base} replays them)", base + FRESH);
    let (mut accepted, mut injected) = (0, 0);
    let mut reached: BTreeMap<String, u64> = BTreeMap::new();
    for seed in (0..SCHEDULES).chain(base..base + FRESH) {
        let (a, i, r) = schedule(seed).await;
        accepted += a;
        injected += i;
        for (path, n) in r {
            *reached.entry(path).or_default() += n;
        }
    }
    let total = SCHEDULES + FRESH;
    println!(
        "reliability: {total} fault schedules, {injected} faults injected, {accepted} notifications accepted, 0 duplicates, 0 losses, every 200 delivered, every stored notification answering its retry"
    );
    println!("reliability: paths reached {reached:?}");
    // The schedules reach every path they claim to: batches failing after writing none, some or
    // all of their items, progress saved between fan-out batches (and failing), fan-outs going
    // on from saved progress, email and push failing, each step of send failing.
    for path in [
        "put_entries partial: none",
        "put_entries partial: some",
        "put_entries partial: all",
        "send_all partial: none",
        "send_all partial: some",
        "send_all partial: all",
        "save_progress called",
        "save_progress failed",
        "fan-out read back saved progress",
        "send_email failed",
        "publish failed",
        "claim_idempotency failed",
        "insert failed",
        "record_chunk failed",
        "record_emails failed",
    ] {
        assert!(reached.get(path).is_some_and(|n| *n > 0), "no schedule reached {path:?}: {reached:?}");
    }
    assert!(injected > 1_000, "the schedules injected faults ({injected})");
    assert!(accepted >= SCHEDULES as usize, "every schedule accepted notifications");
}

#[tokio::test]
async fn a_crash_at_any_step_of_fan_out_and_delivery_ends_in_the_same_state() {
    // The crowd, two per chunk: 15 chunks in two fan-out batches (a crash after the first
    // batch's progress save resumes from it), with email jobs and pushes.
    let (body, who) = requests()[0].clone();
    let want: BTreeMap<String, BTreeSet<Uuid>> =
        [(body["message"].as_str().unwrap().to_string(), who)].into();
    let world = || world_with_chunks(2);

    // A clean run, counting the calls fan-out and delivery make.
    let clean = world().await;
    let counter = Faults::none();
    let ports = faulty(&clean.memory.ports, &counter);
    assert_eq!(send(&clean.memory.ports, &body, "k").await, 200);
    let before = counter.calls();
    drive(&clean, &ports, 5).await;
    let steps = counter.calls() - before;
    check(&clean, &want, "clean run");
    let clean_items: BTreeSet<(Uuid, String)> =
        clean.memory.inbox.all_items().iter().map(|i| (i.entry.user_id, i.content.body.clone())).collect();
    assert!(steps > 20, "fan-out and delivery take {steps} calls");

    // Crash before each of those calls in turn; restart; the scheduler takes over.
    let mut resumed = 0;
    for k in 0..steps {
        let w = world().await;
        let faults = Faults::none();
        let ports = faulty(&w.memory.ports, &faults);
        assert_eq!(send(&w.memory.ports, &body, "k").await, 200);
        faults.crash_at(k);
        // The same first round as the clean run, dying at call k.
        drive(&w, &ports, 1).await;
        assert!(faults.crashed(), "crash point {k} was reached");
        faults.restart();
        w.clock.advance(Duration::seconds(LEASE_SECONDS + 1));
        let rounds = drive(&w, &ports, 10).await;
        assert!(rounds < 10, "crash at step {k}: did not settle");
        check(&w, &want, &format!("crash at step {k}"));
        let items: BTreeSet<(Uuid, String)> =
            w.memory.inbox.all_items().iter().map(|i| (i.entry.user_id, i.content.body.clone())).collect();
        assert_eq!(items, clean_items, "crash at step {k}: another end state");
        resumed += u64::from(faults.reached().contains_key("fan-out read back saved progress"));
    }
    assert!(resumed > 0, "some crash left a fan-out to resume from its saved progress");
    println!(
        "reliability: {steps} crash points tried ({resumed} resuming a fan-out from its saved progress), each ending in the clean run's state"
    );

    // And inside `send` itself: the process dies before each of its calls; the caller, who got
    // no answer, retries with the same key once the process is back (and a dead request's
    // in-progress claim has run out); the end state is the clean run's.
    let probe = world().await;
    let counter = Faults::none();
    assert_eq!(send(&faulty(&probe.memory.ports, &counter), &body, "k").await, 200);
    let send_steps = counter.calls();
    assert!(send_steps > 5, "send takes {send_steps} calls");
    for k in 0..send_steps {
        let w = world().await;
        let faults = Faults::none();
        let ports = faulty(&w.memory.ports, &faults);
        faults.crash_at(k);
        let died = send(&ports, &body, "k").await;
        assert_ne!(died, 200, "crash at send step {k} answered 200");
        faults.restart();
        let mut answered = send(&ports, &body, "k").await;
        if answered == 409 {
            w.clock.advance(Duration::seconds(shared::service::idempotency::IN_PROGRESS_SECONDS + 1));
            answered = send(&ports, &body, "k").await;
        }
        assert_eq!(answered, 200, "send step {k}: the retry is answered");
        w.clock.advance(Duration::seconds(LEASE_SECONDS + 1));
        let rounds = drive(&w, &ports, 10).await;
        assert!(rounds < 10, "crash at send step {k}: did not settle");
        check(&w, &want, &format!("crash at send step {k}"));
        let items: BTreeSet<(Uuid, String)> =
            w.memory.inbox.all_items().iter().map(|i| (i.entry.user_id, i.content.body.clone())).collect();
        assert_eq!(items, clean_items, "crash at send step {k}: another end state");
    }
    println!("reliability: {send_steps} crash points inside send, each retried to the clean run's state");
}

/// A fan-out that stalls (a slow invocation, not a dead one) past its lease: another run claims
/// the notification and finishes it; then the stalled run wakes and carries on with its old
/// lease. Its writes are refused, its chunks are duplicates delivery recognises, and the end state
/// is the clean run's, for a stall before every call of the fan-out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_fan_out_that_carries_on_after_another_took_over_changes_nothing() {
    let (body, who) = requests()[1].clone();
    let want: BTreeMap<String, BTreeSet<Uuid>> =
        [(body["message"].as_str().unwrap().to_string(), who)].into();
    // The clean run's end state, and how many calls its fan-out makes.
    let clean = world().await;
    assert_eq!(send(&clean.memory.ports, &body, "k").await, 200);
    let counter = Faults::none();
    local::workers::drain_fanout_once(&faulty(&clean.memory.ports, &counter)).await.unwrap();
    let steps = counter.calls();
    drive(&clean, &clean.memory.ports, 5).await;
    let clean_items: BTreeSet<(Uuid, String)> =
        clean.memory.inbox.all_items().iter().map(|i| (i.entry.user_id, i.content.body.clone())).collect();
    assert!(steps > 3, "fan-out takes {steps} calls");

    let mut stalls = 0;
    for k in 1..steps {
        let w = world().await;
        assert_eq!(send(&w.memory.ports, &body, "k").await, 200);
        let faults = Faults::none();
        let slow = faulty(&w.memory.ports, &faults);
        faults.stall_at(k);
        let stalled = tokio::spawn(async move { local::workers::drain_fanout_once(&slow).await });
        for _ in 0..200 {
            if faults.stalled() {
                break;
            }
            tokio::time::sleep(StdDuration::from_millis(5)).await;
        }
        if !faults.stalled() {
            // This call index is not one the fan-out reaches through a stallable port.
            faults.resume();
            let _ = stalled.await;
            continue;
        }
        stalls += 1;
        // Its lease runs out; the scheduler's next run takes over and finishes.
        w.clock.advance(Duration::seconds(LEASE_SECONDS + 1));
        drive(&w, &w.memory.ports, 5).await;
        // The stalled run wakes and carries on.
        faults.resume();
        let _ = stalled.await.expect("the stalled run ends");
        drive(&w, &w.memory.ports, 5).await;
        check(&w, &want, &format!("stall at fan-out step {k}"));
        let items: BTreeSet<(Uuid, String)> =
            w.memory.inbox.all_items().iter().map(|i| (i.entry.user_id, i.content.body.clone())).collect();
        assert_eq!(items, clean_items, "stall at fan-out step {k}: another end state");
    }
    assert!(stalls > 0, "some fan-out step stalled");
    println!(
        "reliability: {stalls} stalls past the lease, each carried on after another run finished, clean end state"
    );
}
