//! Concurrency, against memory and moto: concurrent fan-out runs claim each due notification
//! exactly once; concurrent identical idempotent requests create one notification.

use std::collections::BTreeSet;

use chrono::Duration;
use serde_json::json;
use shared::http::{GatewayRequest, body_text};
use shared::model::{BroadcastType, HistoryScope, PageRequest, Status};
use tests::{Env, end_to_end};

async fn eight_fanout_runs_claim_each_of_fifty_due_notifications_once(env: Env) {
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
    assert_eq!(claimed, 50, "each notification claimed by exactly one of the 8 runs");
    local::workers::run_until_idle(&env.ports, env.max_receives).await.unwrap();
    let scope = HistoryScope::CompanyType { company_id: 3, broadcast_type: BroadcastType::GT };
    let all = env.ports.notifications.history(&scope, &PageRequest::first(100)).await.unwrap().items;
    assert_eq!(all.len(), 50);
    assert!(all.iter().all(|n| n.status == Status::Delivered && n.delivered == 2 && n.chunks_done == 1));
}

async fn fifty_identical_idempotent_requests_make_one_notification(env: Env) {
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
    let answers = futures::future::join_all((0..50).map(|_| tokio::spawn(call()))).await;
    let answers: Vec<(u16, String)> = answers.into_iter().map(Result::unwrap).collect();
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
}

end_to_end!(
    eight_fanout_runs_claim_each_of_fifty_due_notifications_once,
    fifty_identical_idempotent_requests_make_one_notification
);
