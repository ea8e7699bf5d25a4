//! What a kill costs: Lambda stops a function at its timeout wherever it is, and neither SES nor
//! SNS takes an idempotency key. Every send is marked on its chunk as it succeeds, in batches of
//! `MARK_BATCH`; a killed invocation's unmarked sends go out again when SQS redelivers. This
//! measures, for a kill after every possible number of sends, how many a redelivery repeats.
//!
//! The kill is modelled as the process freezing: the first `k` sends reach the provider, every
//! later one never returns, and the invocation is dropped (nothing after it runs, as when Lambda
//! kills it); the memory stores commit each write as it is made, as DynamoDB does.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use shared::directory::{DirectorySnapshot, UserRecord};
use shared::model::*;
use shared::ports::{Mailer, OutgoingEmail, PushGateway, SendError};
use shared::runtime::MemoryPorts;
use shared::runtime::Ports;
use shared::service::channels::MARK_BATCH;
use uuid::Uuid;

/// More than two batches of marks, so that kills fall inside, at and after a flush.
const PEOPLE: usize = 150;
/// README: a killed invocation that dies between sends sends at most 63 emails or pushes again.
const PROMISED: usize = 63;

/// Delivers the first `limit` sends, then hangs every later one forever.
struct Freezing {
    limit: usize,
    delivered: Mutex<Vec<String>>,
}

impl Freezing {
    fn new(limit: usize) -> Arc<Self> {
        Arc::new(Freezing { limit, delivered: Mutex::new(Vec::new()) })
    }
    async fn deliver(&self, to: &str) -> Result<String, SendError> {
        let accepted = {
            let mut delivered = self.delivered.lock().unwrap();
            if delivered.len() < self.limit {
                delivered.push(to.to_string());
                true
            } else {
                false
            }
        };
        if !accepted {
            std::future::pending::<()>().await;
        }
        Ok(format!("id-{to}"))
    }
    fn delivered(&self) -> Vec<String> {
        self.delivered.lock().unwrap().clone()
    }
}

#[async_trait]
impl Mailer for Freezing {
    async fn send(&self, email: &OutgoingEmail) -> Result<String, SendError> {
        self.deliver(&email.to).await
    }
}

#[async_trait]
impl PushGateway for Freezing {
    fn supports(&self, _: Platform) -> bool {
        true
    }
    async fn create_endpoint(&self, _: Platform, _: &str, _: UserId) -> Result<String, SendError> {
        Err(SendError::Rejected("not in this test".into()))
    }
    async fn delete_endpoint(&self, _: &str) -> Result<(), SendError> {
        Ok(())
    }
    async fn publish(&self, endpoint: &str, _: Platform, _: &PushMessage) -> Result<String, SendError> {
        self.deliver(endpoint).await
    }
}

/// A company of `PEOPLE` people with an address and a device each, and a group send to them
/// with email.
async fn world() -> (MemoryPorts, Notification, Vec<UserId>) {
    let memory = MemoryPorts::new(Arc::new(shared::ports::SystemClock), Arc::new(shared::ports::RandomIds));
    memory.load_demo_directory().await.unwrap();
    let users: Vec<UserRecord> = (0..PEOPLE as u64)
        .map(|i| UserRecord {
            id: Uuid::from_u128(0xdead_0000 + u128::from(i)),
            number: 7000 + i,
            company_id: 3,
            email: format!("killed{i}@example.com"),
            first_name: String::new(),
            roles: Vec::new(),
            token_sha256: format!("{:064}", 7000 + i),
            token_expires_at: None,
        })
        .collect();
    let people: Vec<UserId> = users.iter().map(|u| u.id).collect();
    memory.directory_load(&DirectorySnapshot { users, ..DirectorySnapshot::default() }).await;
    for (i, person) in people.iter().enumerate() {
        let token = format!("token-{i}");
        let device = Device {
            device_id: Device::id_for(Platform::Gcm, &token),
            platform: Platform::Gcm,
            token,
            endpoint_arn: format!("arn:aws:sns:us-east-1:123456789012:endpoint/GCM/app/{i}"),
            registered_at: chrono::Utc::now(),
        };
        memory.ports.devices.put_device(*person, &device, 10).await.unwrap();
    }
    memory.ports.devices.mark_company_devices(3).await.unwrap();
    let mut n = Notification::new(
        Uuid::new_v4(),
        1,
        3,
        Origin::GroupSend,
        BroadcastType::GT,
        Audience::Users { user_ids: people.clone() },
        Content { title: "t".into(), body: "b".into(), ..Content::default() },
        "1".into(),
        chrono::Utc::now(),
    );
    n.email = Some(EmailSpec {
        template: shared::email::HTML_BODY_TEMPLATE.into(),
        subject: "Killed".into(),
        params: Vec::new(),
        body: None,
    });
    memory.ports.notifications.insert(&n).await.unwrap();
    (memory, n, people)
}

/// The ports as the message's next receive finds them: SQS hands a killed attempt's message out
/// again after its visibility timeout, when the lease the attempt held has run out (parity.rs
/// pins the lease under every queue's visibility timeout).
fn after_the_lease(ports: &Ports) -> Ports {
    let later = chrono::Utc::now() + tests::past_a_work_lease();
    Ports { clock: Arc::new(shared::ports::ManualClock::new(later)), ..ports.clone() }
}

/// The world's chunk: its people, each with a device.
fn chunk_of(n: &Notification, people: Vec<UserId>) -> DeliveryChunk {
    DeliveryChunk {
        notification_id: n.id,
        chunk: 0,
        recipients: people,
        devices: Some(true),
        push_round: None,
        hand_overs: None,
        revived: None,
    }
}

/// Runs `work` until it freezes, then drops it (the kill).
async fn killed<F: std::future::Future>(work: F) {
    let _ = tokio::time::timeout(std::time::Duration::from_millis(30), work).await;
}

fn repeated(first: &[String], second: &[String]) -> usize {
    second.iter().filter(|s| first.contains(s)).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_repeats_at_most_one_unmarked_batch_of_emails_or_pushes() {
    let (mut worst_emails, mut worst_pushes) = (0, 0);
    for k in 0..=PEOPLE {
        // Emails: one job of the chunk's people, killed after k sends, then redelivered.
        let (memory, n, people) = world().await;
        let job = EmailJob {
            notification_id: n.id,
            chunk: 0,
            email_part: 0,
            recipients: people.clone(),
            round: 0,
            hand_overs: None,
        };
        let freezing = Freezing::new(k);
        let mut first: Ports = memory.ports.clone();
        first.mailer = freezing.clone();
        killed(shared::service::emails::send_job(
            &first.email_jobs(),
            &job,
            "m1",
            shared::service::deadline::Deadline::NONE,
        ))
        .await;
        let again = Freezing::new(usize::MAX);
        let mut second = after_the_lease(&memory.ports);
        second.mailer = again.clone();
        shared::service::emails::send_job(
            &second.email_jobs(),
            &job,
            "m1#2",
            shared::service::deadline::Deadline::NONE,
        )
        .await
        .unwrap();
        let (a, b) = (freezing.delivered(), again.delivered());
        let mut everyone: Vec<&String> = a.iter().chain(b.iter()).collect();
        everyone.sort();
        everyone.dedup();
        assert_eq!(everyone.len(), PEOPLE, "after k={k}: everyone emailed");
        worst_emails = worst_emails.max(repeated(&a, &b));

        // Pushes: the chunk killed after k publishes, then redelivered.
        let (memory, n, people) = world().await;
        let chunk = chunk_of(&n, people);
        let freezing = Freezing::new(k);
        let mut first = memory.ports.clone();
        first.push = freezing.clone();
        killed(shared::service::deliver::deliver(&first.deliver(), &chunk, "m1")).await;
        let again = Freezing::new(usize::MAX);
        let mut second = after_the_lease(&memory.ports);
        second.push = again.clone();
        shared::service::deliver::deliver(&second.deliver(), &chunk, "m1#2").await.unwrap();
        let (a, b) = (freezing.delivered(), again.delivered());
        assert_eq!(a.len() + b.len() - repeated(&a, &b), PEOPLE, "after k={k}: every device pushed");
        worst_pushes = worst_pushes.max(repeated(&a, &b));
    }
    println!(
        "kill after each of 0..={PEOPLE} sends, then redelivery: worst repeated emails {worst_emails}, \
         pushes {worst_pushes} (marks written every {MARK_BATCH})"
    );
    assert!(worst_emails <= PROMISED && worst_pushes <= PROMISED, "{worst_emails} / {worst_pushes}");
    assert!(worst_emails > 0, "the model kills between a send and its mark");
}

/// An attempt that read the chunk's marks and then waited for its claim, while another attempt
/// sent and marked every push and handed the chunk back (its record failed), reads the marks
/// again once it holds the chunk: nothing is pushed twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_attempt_that_waited_for_its_claim_reads_the_marks_again() {
    use shared::service::deliver::{Delivered, deliver};
    use tests::faults::{Faults, faulty};
    let (memory, n, people) = world().await;
    let chunk = chunk_of(&n, people);

    // B reads the chunk (call 0), then stalls before its claim (call 1).
    let waits = Faults::none();
    waits.stall_at(1);
    let b_pushes = Freezing::new(usize::MAX);
    let mut b = faulty(&memory.ports, &waits);
    b.push = b_pushes.clone();
    let b_chunk = chunk.clone();
    let b_run = tokio::spawn(async move { deliver(&b.deliver(), &b_chunk, "receive-b").await });
    for _ in 0..1_000 {
        if waits.stalled() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(1)).await;
    }
    assert!(waits.stalled(), "B waits at its claim");

    // A claims the chunk, pushes and marks every device, fails to record it and hands it back.
    let fails = Faults::none();
    fails.fail_next("record_chunk");
    let a_pushes = Freezing::new(usize::MAX);
    let mut a = faulty(&memory.ports, &fails);
    a.push = a_pushes.clone();
    assert!(deliver(&a.deliver(), &chunk, "receive-a").await.is_err(), "A's record fails");
    assert_eq!(a_pushes.delivered().len(), PEOPLE, "A pushed every device");

    waits.resume();
    let outcome = b_run.await.expect("B runs").expect("B delivers");
    assert_eq!(outcome, Delivered::Written(PEOPLE as u64));
    assert!(b_pushes.delivered().is_empty(), "B pushed again what A had marked: {:?}", b_pushes.delivered());
}

/// README: a kill while the marks are written repeats at most 79 pushes (a batch of 64 not yet
/// marked and the 15 other publishes in flight).
const PROMISED_AT_A_MARK_WRITE: usize = 79;

/// A kill at every call a chunk's delivery makes — its reads, its entries, each publish, each
/// write of its marks, its record — then the redelivery: each device pushed, and never more
/// pushed twice than the README states for a kill while the marks are written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_at_any_call_repeats_at_most_a_batch_and_the_pushes_in_flight() {
    use shared::service::deliver::deliver;
    use tests::faults::{Faults, faulty};
    // The calls of a run that is not killed.
    let (memory, n, people) = world().await;
    let counted = Faults::none();
    let mut clean = memory.ports.clone();
    clean.push = Freezing::new(usize::MAX);
    let clean = faulty(&clean, &counted);
    deliver(&clean.deliver(), &chunk_of(&n, people), "m0").await.expect("delivered");
    let calls = counted.calls();
    assert!(calls > PEOPLE as u64, "{calls} calls: every publish among them");

    let mut worst = 0;
    for k in 0..calls {
        let (memory, n, people) = world().await;
        let chunk = chunk_of(&n, people);
        let kill = Faults::none();
        let first_pushes = Freezing::new(usize::MAX);
        let mut first = memory.ports.clone();
        first.push = first_pushes.clone();
        let first = faulty(&first, &kill);
        kill.stall_at(k);
        killed(deliver(&first.deliver(), &chunk, "m1")).await;
        let again = Freezing::new(usize::MAX);
        let mut second = after_the_lease(&memory.ports);
        second.push = again.clone();
        deliver(&second.deliver(), &chunk, "m1#2").await.expect("the redelivery delivers");
        let (a, b) = (first_pushes.delivered(), again.delivered());
        assert_eq!(a.len() + b.len() - repeated(&a, &b), PEOPLE, "killed at call {k}: every device pushed");
        worst = worst.max(repeated(&a, &b));
    }
    println!(
        "a kill at each of {calls} calls of a chunk's delivery, then redelivery: worst repeated pushes {worst}"
    );
    assert!(worst <= PROMISED_AT_A_MARK_WRITE, "{worst}");
    assert!(worst > PROMISED, "a kill during a mark write is among them: {worst}");
}
