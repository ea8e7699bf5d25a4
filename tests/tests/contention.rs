//! What DynamoDB does under contention and moto never does, armed in `scripts/moto-serial` on
//! this test's own tables: transactions cancelled for a conflict with another transaction (many
//! deliverers finishing chunks of one notification) or for throttling, and a crash between
//! recording a notification's last chunk and completing it. Delivery stays exactly once.

use serde_json::json;
use shared::http::{GatewayRequest, body_text};
use shared::model::Status;

struct Setup {
    env: tests::Env,
    table: String,
}

async fn setup() -> Setup {
    let (sdk, provisioned, config) = tests::provision_moto().await;
    let env = tests::Env::moto_on(&sdk, &provisioned, &config).await;
    Setup { env, table: provisioned.tables["NotificationsTable"].clone() }
}

/// A GT send to teams 23 and 27 (4 people), fanned out: its one delivery chunk, not yet handled.
async fn one_chunk(env: &tests::Env) -> (u64, Vec<shared::ports::ReceivedMessage>) {
    let req = GatewayRequest::new("POST", "/rest/notification/send", "/rest/notification/send")
        .header("x-nextinteract-authtoken", "demo-admin-token")
        .header("x-nextinteract-company-api-key", "00000000-0000-4000-8000-000000000003")
        .body(
            json!({"version": 3, "type": "GT", "key": "3", "values": ["23", "27"], "message": "contended"})
                .to_string(),
        );
    let resp = send::handle(&env.ports, req.into_request()).await;
    let answer: serde_json::Value = serde_json::from_str(&body_text(&resp)).unwrap();
    assert_eq!(resp.status(), 200, "{answer}");
    local::workers::drain_fanout_once(&env.ports).await.unwrap();
    let chunks = env.ports.delivery_queue.receive(10).await.unwrap();
    assert_eq!(chunks.len(), 1);
    (answer["notificationScheduleId"].as_u64().unwrap(), chunks)
}

async fn deliver(env: &tests::Env, chunks: &[shared::ports::ReceivedMessage]) -> usize {
    deliver::handle(
        &env.ports,
        env.max_receives,
        local::workers::sqs_event(local::workers::DELIVERY_QUEUE_ARN, chunks),
    )
    .await
    .batch_item_failures
    .len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transactions_cancelled_for_contention_are_retried_in_process_and_count_once() {
    let Setup { env, table } = setup().await;
    let (schedule_id, chunks) = one_chunk(&env).await;
    tests::arm_fault(&table, "TransactWriteItems", 2, "TransactionConflict").await;
    tests::arm_fault(&table, "TransactWriteItems", 1, "ThrottlingError").await;
    assert_eq!(deliver(&env, &chunks).await, 0, "three cancellations, then recorded: the chunk did not fail");
    let n = env.ports.notifications.get_by_schedule_id(schedule_id).await.unwrap().unwrap();
    assert_eq!((n.status, n.delivered, n.chunks_done), (Status::Delivered, 4, 1));

    // Contention that outlasts the retries hands the chunk to a new message (visible after a
    // backoff as deployed; at once here, `tests::unwaited_hand_overs`), without spending a
    // receive; that message's attempt counts it once.
    let (schedule_id, chunks) = one_chunk(&env).await;
    tests::arm_fault(&table, "TransactWriteItems", 6, "TransactionConflict").await;
    assert_eq!(deliver(&env, &chunks).await, 0, "handed over, not failed back to SQS");
    env.ports.delivery_queue.ack(&chunks[0].receipt).await.unwrap();
    let n = env.ports.notifications.get_by_schedule_id(schedule_id).await.unwrap().unwrap();
    assert_eq!((n.status, n.delivered), (Status::Delivering, 0), "nothing counted");
    let handed = env.ports.delivery_queue.receive(10).await.unwrap();
    assert_eq!(handed.len(), 1, "the chunk waits in a new message");
    let chunk = shared::service::deliver::parse_chunk(&handed[0].body).unwrap();
    assert_eq!((chunk.hand_overs, handed[0].receive_count), (Some(1), 1), "its receives all ahead of it");
    assert_eq!(deliver(&env, &handed).await, 0);
    assert_eq!(deliver(&env, &handed).await, 0, "a third receive changes nothing");
    let n = env.ports.notifications.get_by_schedule_id(schedule_id).await.unwrap().unwrap();
    assert_eq!((n.status, n.delivered, n.chunks_done), (Status::Delivered, 4, 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_between_the_last_chunk_and_completion_is_finished_by_redelivery() {
    let Setup { env, table } = setup().await;
    let (schedule_id, chunks) = one_chunk(&env).await;
    // The chunk's transaction commits; completing the notification then fails every try the SDK
    // makes (3), as if the process died there.
    tests::arm_fault(&table, "UpdateItem", 3, "InternalServerError").await;
    assert_eq!(deliver(&env, &chunks).await, 1, "the chunk reports failure");
    let n = env.ports.notifications.get_by_schedule_id(schedule_id).await.unwrap().unwrap();
    assert_eq!((n.status, n.delivered, n.chunks_done), (Status::Delivering, 4, 1), "recorded, not completed");
    // SQS delivers the chunk again: it is not delivered twice, and the notification completes.
    assert_eq!(deliver(&env, &chunks).await, 0);
    let n = env.ports.notifications.get_by_schedule_id(schedule_id).await.unwrap().unwrap();
    assert_eq!((n.status, n.delivered, n.chunks_done), (Status::Delivered, 4, 1));
}
