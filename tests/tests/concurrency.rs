//! Concurrency, against memory and moto: concurrent fan-out runs claim each due notification
//! exactly once; concurrent identical idempotent requests create one notification; concurrent
//! deliveries of one chunk count it once. On memory the calls interleave at random
//! (`Env::interleaved`; the seed is printed, `CONCURRENCY_SEED` replays it): the memory adapters
//! never wait, so without it the "concurrent" calls would run one after another.

use std::collections::BTreeSet;

use chrono::Duration;
use serde_json::json;
use shared::http::{GatewayRequest, body_text};
use shared::model::{BroadcastType, HistoryScope, PageRequest, Status};
use tests::{Env, end_to_end};

/// The backend with its calls interleaving (memory: under a fresh seed, printed, or
/// `CONCURRENCY_SEED`; moto: as they are), and what happened: asserted at the end that calls
/// overlapped, and how many claims were won.
fn interleaved(env: Env, test: &'static str) -> (Env, impl Fn() -> u64) {
    let seed = std::env::var("CONCURRENCY_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| u64::from(rand::random::<u32>()));
    let memory = matches!(env.outbox, tests::outbox::Outbox::Memory { .. });
    let (env, schedule) = env.interleaved(seed);
    if memory {
        println!("{test}: interleaving seed {seed} (CONCURRENCY_SEED={seed} replays it)");
    }
    let overlapped = move || {
        let most = schedule.most_in_flight();
        assert!(most > 1, "{test}: the calls overlapped (at most {most} at once)");
        println!("{test}: up to {most} calls under way at once");
        schedule.reached().get("claim won").copied().unwrap_or(0)
    };
    (env, overlapped)
}

async fn eight_fanout_runs_claim_each_of_fifty_due_notifications_once(env: Env) {
    let (env, overlapped) = interleaved(env, "eight fan-out runs");
    // 50 notifications scheduled a minute ahead (so no ad hoc job races the ticks).
    for i in 0..50 {
        let body = json!({"version": 3, "type": "GT", "key": "3", "values": ["27"], "message": format!("n{i}"),
            "scheduleTimezoneId": "UTC", "scheduleLocalDateTime": "2026-11-22T09:01:00"});
        let req = GatewayRequest::new("POST", "/rest/notification/send", "/rest/notification/send")
            .header("x-nextinteract-authtoken", "demo-admin-token")
            .header("x-nextinteract-company-api-key", "00000000-0000-4000-8000-000000000003")
            .body(body.to_string());
        assert_eq!(send::handle(&env.ports, req.into_request()).await.status(), 200);
    }
    env.clock.set(tests::t0() + Duration::minutes(2));
    let runs = futures::future::join_all((0..8).map(|_| local::workers::tick(&env.ports))).await;
    let claimed: usize = runs
        .into_iter()
        .map(|r| match r.unwrap() {
            fanout::Answer::Tick { fanned_out, .. } => fanned_out,
            other => panic!("{other:?}"),
        })
        .sum();
    assert_eq!(claimed, 50, "each notification fanned out by exactly one of the 8 runs");
    local::workers::run_until_idle(&env.ports, env.max_receives).await.unwrap();
    let scope = HistoryScope::CompanyType { company_id: 3, broadcast_type: BroadcastType::GT };
    let all = env.ports.notifications.history(&scope, &PageRequest::first(100)).await.unwrap().items;
    assert_eq!(all.len(), 50);
    assert!(all.iter().all(|n| n.status == Status::Delivered && n.delivered == 2 && n.chunks_done == 1));
    let claims = overlapped();
    assert_eq!(claims, 50, "each notification claimed once, by one of the 8 runs");
}

async fn fifty_identical_idempotent_requests_make_one_notification(env: Env) {
    let (env, overlapped) = interleaved(env, "fifty identical requests");
    let body =
        json!({"version": 3, "type": "GT", "key": "3", "values": ["23", "27"], "message": "once only"})
            .to_string();
    let call = || {
        let req = GatewayRequest::new("POST", "/rest/notification/send", "/rest/notification/send")
            .header("x-nextinteract-authtoken", "demo-admin-token")
            .header("x-nextinteract-company-api-key", "00000000-0000-4000-8000-000000000003")
            .header("Idempotency-Key", "order-42")
            .body(body.clone());
        let ports = env.ports.clone();
        async move {
            let resp = send::handle(&ports, req.into_request()).await;
            (resp.status().as_u16(), body_text(&resp))
        }
    };
    let answers: Vec<(u16, String)> = futures::future::join_all((0..50).map(|_| call())).await;
    // The winner answers 200; the others replay its answer or, while it is still working, 409.
    let ok: BTreeSet<&String> = answers.iter().filter(|(s, _)| *s == 200).map(|(_, b)| b).collect();
    assert_eq!(ok.len(), 1, "every 200 carries the same schedule id: {ok:?}");
    assert!(answers.iter().all(|(s, _)| *s == 200 || *s == 409), "{answers:?}");
    // After the dust settles, a retry replays the same answer.
    let (status, replay) = call().await;
    assert_eq!((status, Some(&replay)), (200, ok.into_iter().next()));
    local::workers::run_until_idle(&env.ports, env.max_receives).await.unwrap();
    let scope = HistoryScope::CompanyType { company_id: 3, broadcast_type: BroadcastType::GT };
    let all = env.ports.notifications.history(&scope, &PageRequest::first(100)).await.unwrap().items;
    assert_eq!(all.len(), 1, "one notification");
    assert_eq!(all[0].delivered, 4, "sent once to each of the four");
    overlapped();
}

/// SQS delivers a message at least once: the same chunk handed to eight invocations at once is
/// delivered to its people once, counted once, and its notification completes once.
async fn eight_concurrent_deliveries_of_one_chunk_count_once(env: Env) {
    let (env, overlapped) = interleaved(env, "eight concurrent deliveries");
    let body =
        json!({"version": 3, "type": "GT", "key": "3", "values": ["23", "27"], "message": "eight at once"});
    let req = GatewayRequest::new("POST", "/rest/notification/send", "/rest/notification/send")
        .header("x-nextinteract-authtoken", "demo-admin-token")
        .header("x-nextinteract-company-api-key", "00000000-0000-4000-8000-000000000003")
        .body(body.to_string());
    let resp = send::handle(&env.ports, req.into_request()).await;
    assert_eq!(resp.status(), 200, "{}", body_text(&resp));
    local::workers::drain_fanout_once(&env.ports).await.unwrap();
    let chunks = env.ports.delivery_queue.receive(10).await.unwrap();
    assert_eq!(chunks.len(), 1, "four people: one chunk");
    // One task polling all eight (futures::join_all), so that each gives way to the others
    // whenever it waits, whatever the runtime's threads are doing.
    let event = || local::workers::sqs_event(local::workers::DELIVERY_QUEUE_ARN, &chunks);
    let deliveries = (0..8).map(|_| deliver::handle(&env.ports, shared::runtime::MAX_RECEIVES, event()));
    for answer in futures::future::join_all(deliveries).await {
        assert!(answer.batch_item_failures.is_empty(), "every delivery answers success");
    }
    local::workers::settle(env.ports.delivery_queue.as_ref(), &chunks, &[]).await.unwrap();
    local::workers::run_until_idle(&env.ports, env.max_receives).await.unwrap();
    let scope = HistoryScope::CompanyType { company_id: 3, broadcast_type: BroadcastType::GT };
    let all = env.ports.notifications.history(&scope, &PageRequest::first(100)).await.unwrap().items;
    let n = all.iter().find(|n| n.content.body == "eight at once").expect("stored");
    assert_eq!((n.status, n.delivered, n.chunks_done, n.chunks_total), (Status::Delivered, 4, 1, Some(1)));
    for u in ["11111111-1111-4111-8111-111111111111", "22222222-2222-4222-8222-222222222222"] {
        assert!(env.ports.inbox.get(u.parse().unwrap(), n.id).await.unwrap().is_some(), "{u} has it");
    }
    overlapped();
}

/// A cancel races the fan-out and the deliveries of a send to fifteen people in five chunks,
/// round after round, landing wherever the interleaving (memory) or the network (moto) puts it:
/// every answer is exact. Cancelled (200): exactly the people it counted have the notification
/// (none, when it came before any chunk started), and the delivered count agrees; too late
/// (409): it was delivered, to everyone. Never a count that disagrees with the centers.
async fn a_cancel_racing_fan_out_and_delivery_counts_the_people_who_have_it(env: Env) {
    let (mut env, overlapped) = interleaved(env, "a cancel racing delivery");
    let memory = matches!(env.outbox, tests::outbox::Outbox::Memory { .. });
    env.ports.settings.chunk_size = 3;
    let people = tests::crowd::load(&env.ports, 15, false).await;
    let rounds = if memory { 24 } else { 8 };
    let mut outcomes: std::collections::BTreeMap<&str, usize> = Default::default();
    for round in 0..rounds {
        let body = json!({"version": 3, "type": "GT", "key": "3", "values": [tests::crowd::TEAM], "message": format!("race {round}")});
        let req = GatewayRequest::new("POST", "/rest/notification/send", "/rest/notification/send")
            .header("x-nextinteract-authtoken", "demo-admin-token")
            .header("x-nextinteract-company-api-key", "00000000-0000-4000-8000-000000000003")
            .body(body.to_string());
        let resp = send::handle(&env.ports, req.into_request()).await;
        let text = body_text(&resp);
        assert_eq!(resp.status(), 200, "{text}");
        let sid =
            serde_json::from_str::<serde_json::Value>(&text).unwrap()["notificationScheduleId"].to_string();
        let id = env.ports.notifications.get_by_schedule_id(sid.parse().unwrap()).await.unwrap().unwrap().id;
        let pipeline = local::workers::run_until_idle(&env.ports, env.max_receives);
        let cancel = async {
            // Later each round: from before the fan-out to after the last chunk.
            if memory {
                for _ in 0..round * 3 {
                    tokio::task::yield_now().await;
                }
            } else {
                tokio::time::sleep(std::time::Duration::from_millis(60 * round as u64)).await;
            }
            let req = GatewayRequest::new(
                "DELETE",
                "/rest/notification/send/{notificationScheduleId}",
                &format!("/rest/notification/send/{sid}"),
            )
            .path_param("notificationScheduleId", &sid)
            .header("x-nextinteract-authtoken", "demo-admin-token")
            .header("x-nextinteract-company-api-key", "00000000-0000-4000-8000-000000000003");
            let resp = send::handle(&env.ports, req.into_request()).await;
            (resp.status().as_u16(), serde_json::from_str::<serde_json::Value>(&body_text(&resp)).unwrap())
        };
        let (drained, (status, answer)) = tokio::join!(pipeline, cancel);
        drained.unwrap();
        local::workers::run_until_idle(&env.ports, env.max_receives).await.unwrap();
        let mut holders = 0u64;
        for p in &people {
            holders += u64::from(env.ports.inbox.get(*p, id).await.unwrap().is_some());
        }
        let n = env.ports.notifications.get(id).await.unwrap().unwrap();
        match status {
            200 => {
                let reached = answer["peopleReached"].as_u64().unwrap();
                assert_eq!(
                    holders, reached,
                    "round {round}: the answer counts the people who have it: {answer}"
                );
                assert_eq!((n.status, n.delivered), (Status::Cancelled, reached), "round {round}: {answer}");
                let outcome = match reached {
                    0 => "cancelled before anyone had it",
                    15 => "cancelled once every chunk had started",
                    _ => "cancelled part-way",
                };
                *outcomes.entry(outcome).or_default() += 1;
            }
            409 => {
                assert_eq!(answer["state"], "delivered", "round {round}: {answer}");
                assert_eq!((holders, n.status, n.delivered), (15, Status::Delivered, 15), "round {round}");
                *outcomes.entry("too late: delivered").or_default() += 1;
            }
            other => panic!("round {round}: {other} {answer}"),
        }
    }
    println!("a cancel racing delivery, {rounds} rounds: {outcomes:?}");
    assert_eq!(outcomes.values().sum::<usize>(), rounds);
    overlapped();
}

end_to_end!(
    eight_fanout_runs_claim_each_of_fifty_due_notifications_once,
    fifty_identical_idempotent_requests_make_one_notification,
    eight_concurrent_deliveries_of_one_chunk_count_once,
    a_cancel_racing_fan_out_and_delivery_counts_the_people_who_have_it,
);
