//! Sent history end to end, against memory and moto: the spec's three URLs after the group-send
//! examples, tenant isolation, pending and failed records, and paging.

use std::collections::HashSet;

use serde_json::{Value, json};
use shared::http::{GatewayRequest, body_text};
use shared::model::{BroadcastType, HistoryScope, PageRequest};
use tests::{Env, end_to_end};

async fn send(env: &Env, token: &str, body: Value) -> String {
    let req = GatewayRequest::new("POST", "/rest/notification/send", "/rest/notification/send")
        .header("x-nextinteract-authtoken", token)
        .header("x-nextinteract-company-api-key", "00000000-0000-4000-8000-000000000003")
        .body(body.to_string());
    let resp = send::handle(&env.ports, req.into_request()).await;
    assert_eq!(resp.status(), 200, "{}", body_text(&resp));
    body_text(&resp)
}

async fn sent(env: &Env, token: &str, query: &str) -> (u16, Value, Option<String>) {
    let req = GatewayRequest::new("GET", "/rest/notification/sent", "/rest/notification/sent")
        .header("x-nextinteract-authtoken", token)
        .query(query);
    let resp = sent_history::handle(&env.ports, req.into_request()).await;
    let next = resp.headers().get("x-next-token").map(|v| v.to_str().unwrap().to_string());
    (resp.status().as_u16(), serde_json::from_str(&body_text(&resp)).unwrap(), next)
}

async fn lists_the_spec_examples_with_real_counts(env: Env) {
    send(&env, "demo-admin-token", json!({ "version": 2, "type": "GT", "key": "3", "values": ["23", "27"], "message": "This is test message for team ids 23 and 27" })).await;
    send(&env, "demo-event-token", json!({ "version": 2, "type": "GE", "key": "ed90fcd2-cbb4-49b8-9be4-a14ccbc2d1e8", "values": ["456", "459"], "message": "This is test message for event team ids 456 and 459" })).await;
    let scheduled = send(&env, "demo-admin-token", json!({"version": 3, "type": "GT", "key": "3", "values": ["5", "6", "7"],
        "message": "m".repeat(300), "scheduleTimezoneId": "UTC", "scheduleLocalDateTime": "2030-01-01T00:00:00",
        "emailTemplate": "Client.Generic.HTMLBody.Mandrill.html", "emailSubject": "Hi", "emailParams": [{"key": "userFirstName", "value": "x"}]})).await;

    // Before delivery: listed, not yet successful, nothing sent.
    let (status, before, _) = sent(&env, "demo-admin-token", "version=1&broadcastType=GT&companyId=3").await;
    assert_eq!(status, 200);
    let adhoc = before.as_array().unwrap().iter().find(|r| r["description"] == "23,27").unwrap().clone();
    assert_eq!(
        (adhoc["successful"].clone(), adhoc["totalNotificationsSent"].clone()),
        (json!(false), json!(0))
    );

    local::workers::run_until_idle(&env.ports, env.max_receives).await.unwrap();
    let (_, list, next) = sent(&env, "demo-admin-token", "version=1&broadcastType=GT&companyId=3").await;
    let list = list.as_array().unwrap().clone();
    assert_eq!(list.len(), 2, "ad hoc and scheduled GT");
    assert!(next.is_none());
    // Newest first: the scheduled one was created last.
    let (sched, adhoc) = (&list[0], &list[1]);
    assert_eq!(adhoc["type"], "GT");
    assert_eq!(adhoc["companyId"], 3);
    assert_eq!(adhoc["successful"], true);
    assert_eq!(adhoc["totalNotificationsSent"], 4);
    assert_eq!(adhoc["description"], "23,27", "ad hoc: team ids in the description");
    assert!(adhoc.get("teamIds").is_none());
    assert_eq!(adhoc["notificationCreatedBy"], "654");
    assert_eq!(adhoc["notificationCreated"].as_i64().unwrap(), tests::t0().timestamp_millis());
    assert!(
        adhoc["notificationModified"].as_i64().unwrap() >= adhoc["notificationCreated"].as_i64().unwrap()
    );
    assert_eq!(sched["teamIds"], json!(["5", "6", "7"]), "scheduled: team ids in teamIds");
    assert_eq!(sched["successful"], false, "still pending");
    assert_eq!(sched["message"].as_str().unwrap().chars().count(), 255, "message truncated to 255");
    assert_eq!(sched["emailTemplate"], "Client.Generic.HTMLBody.Mandrill.html");
    assert_eq!(sched["emailSubject"], "Hi");
    assert_eq!(sched["emailParams"], json!([{"key": "userFirstName", "value": "x"}]));
    let sid: Value = serde_json::from_str(&scheduled).unwrap();
    assert_eq!(sched["notificationScheduleId"], sid["notificationScheduleId"]);

    let (_, ge, _) = sent(
        &env,
        "demo-event-token",
        "version=1&broadcastType=ET&eventUUID=ed90fcd2-cbb4-49b8-9be4-a14ccbc2d1e8",
    )
    .await;
    let ge = ge.as_array().unwrap();
    assert_eq!(ge.len(), 1);
    assert_eq!(
        (ge[0]["type"].clone(), ge[0]["eventUUID"].clone(), ge[0]["totalNotificationsSent"].clone()),
        (json!("GE"), json!("ed90fcd2-cbb4-49b8-9be4-a14ccbc2d1e8"), json!(3))
    );

    let one_id = adhoc["notificationScheduleId"].as_u64().unwrap();
    let (_, one, _) =
        sent(&env, "demo-admin-token", &format!("version=1&notificationScheduleId={one_id}")).await;
    assert_eq!(one.as_array().unwrap().len(), 1);
    assert_eq!(one[0]["notificationScheduleId"], one_id);

    // Company 4's admin sees none of it.
    let (status, _, _) = sent(&env, "demo-admin-4-token", "version=1&broadcastType=GT&companyId=3").await;
    assert_eq!(status, 403);
    let (_, own, _) = sent(&env, "demo-admin-4-token", "version=1&broadcastType=GT&companyId=4").await;
    assert_eq!(own, json!([]));
    let (_, single, _) =
        sent(&env, "demo-admin-4-token", &format!("version=1&notificationScheduleId={one_id}")).await;
    assert_eq!(single, json!([]), "another company's record is invisible");
    let (_, superuser, _) =
        sent(&env, "demo-super-token", &format!("version=1&notificationScheduleId={one_id}")).await;
    assert_eq!(superuser.as_array().unwrap().len(), 1);
}

async fn failed_notifications_are_listed_as_unsuccessful(env: Env) {
    send(
        &env,
        "demo-admin-token",
        json!({"version": 3, "type": "JN", "key": "3", "values": [], "message": "job"}),
    )
    .await;
    let scope = HistoryScope::CompanyType { company_id: 3, broadcast_type: BroadcastType::JN };
    let n = env.ports.notifications.history(&scope, &PageRequest::first(1)).await.unwrap().items.remove(0);
    env.ports.notifications.mark_failed(n.id, "delivery failed after 5 attempts", tests::t0()).await.unwrap();
    let (_, list, _) = sent(&env, "demo-admin-token", "version=1&broadcastType=JN").await;
    assert_eq!(list[0]["successful"], false);
    assert_eq!(list[0]["failureReason"], "delivery failed after 5 attempts");
}

async fn pages_through_120_records_each_once(env: Env) {
    for i in 0..120 {
        send(
            &env,
            "demo-admin-token",
            json!({"version": 3, "type": "GT", "key": "3", "values": ["5"], "message": format!("n{i}")}),
        )
        .await;
    }
    let mut seen = Vec::new();
    let mut query = "version=1&broadcastType=GT&companyId=3&limit=50".to_string();
    let mut pages = 0;
    loop {
        let (status, page, next) = sent(&env, "demo-admin-token", &query).await;
        assert_eq!(status, 200);
        let page = page.as_array().unwrap();
        assert!(page.len() <= 50);
        seen.extend(page.iter().map(|r| r["notificationScheduleId"].as_u64().unwrap()));
        pages += 1;
        match next {
            Some(t) => query = format!("version=1&broadcastType=GT&companyId=3&limit=50&nextToken={t}"),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(seen.len(), 120);
    assert_eq!(seen.iter().collect::<HashSet<_>>().len(), 120, "each exactly once");
    assert!(seen.windows(2).all(|w| w[0] > w[1]), "newest first");

    // A client written from the spec never pages: without `limit` it gets every record.
    let (status, all, next) = sent(&env, "demo-admin-token", "version=1&broadcastType=GT&companyId=3").await;
    assert_eq!(status, 200);
    let all: Vec<u64> =
        all.as_array().unwrap().iter().map(|r| r["notificationScheduleId"].as_u64().unwrap()).collect();
    assert_eq!((all, next), (seen, None), "all 120, newest first, no token");
}

/// Sent history is the group-send API's record: the spec's first URL (a company's GE history,
/// no event named) answers, and notifications sent through the other dialects (department,
/// desktop assistant, in-app) are not listed as UN group sends, nor found by their id.
async fn lists_group_sends_only_and_a_company_s_ge_history(env: Env) {
    send(&env, "demo-event-token", json!({ "version": 2, "type": "GE", "key": "ed90fcd2-cbb4-49b8-9be4-a14ccbc2d1e8", "values": ["456", "459"], "message": "event news" })).await;
    let un = send(
        &env,
        "demo-admin-token",
        json!({"version": 4, "type": "UN", "key": "3",
        "values": ["aaron.mcmullen@hypermedia.com.au"], "message": "order shipped"}),
    )
    .await;
    let app = GatewayRequest::new("POST", "/api/data/v9.2/SendAppNotification", "/api/data/v9.2/SendAppNotification")
        .header("authorization", "Bearer demo-admin-token")
        .body(json!({"Title": "in-app", "Recipient": "/systemusers(55555555-5555-4555-8555-555555555555)", "Body": "b",
            "IconType": 100000000, "ToastType": 200000000}).to_string());
    let resp = notify::handle(&env.ports, app.into_request()).await;
    assert!(resp.status().is_success(), "{}", body_text(&resp));
    local::workers::run_until_idle(&env.ports, env.max_receives).await.unwrap();

    let (status, ge, _) = sent(&env, "demo-admin-token", "version=1&broadcastType=GE&companyId=3").await;
    assert_eq!(status, 200, "{ge}");
    let ge = ge.as_array().unwrap();
    assert_eq!(ge.len(), 1, "{ge:?}");
    assert_eq!((ge[0]["type"].as_str(), ge[0]["message"].as_str()), (Some("GE"), Some("event news")));

    let (_, un_list, _) = sent(&env, "demo-admin-token", "version=1&broadcastType=UN&companyId=3").await;
    let messages: Vec<&str> =
        un_list.as_array().unwrap().iter().map(|r| r["message"].as_str().unwrap()).collect();
    assert_eq!(messages, vec!["order shipped"], "the in-app notification is not a UN group send");
    let in_app = env
        .ports
        .notifications
        .history(
            &HistoryScope::CompanyType { company_id: 3, broadcast_type: BroadcastType::UN },
            &PageRequest::first(50),
        )
        .await
        .unwrap();
    assert_eq!(in_app.items.len(), 1, "the store's history holds group sends only");
    let un: Value = serde_json::from_str(&un).unwrap();
    let all_ids = env.ports.notifications.next_schedule_id().await.unwrap();
    let un_id = un["notificationScheduleId"].as_u64().unwrap();
    for id in (1..all_ids).filter(|id| *id != un_id) {
        let (_, found, _) =
            sent(&env, "demo-super-token", &format!("version=1&notificationScheduleId={id}")).await;
        for record in found.as_array().unwrap() {
            assert_ne!(record["message"], "b", "the in-app notification is not found by its id either");
        }
    }
}

/// A nextToken works for the query that issued it only: another type, company or scope is a
/// 400 naming nextToken (on DynamoDB it would be a start key from another partition), never a
/// 500, and a forged one too.
async fn a_token_of_another_query_is_refused_naming_next_token(env: Env) {
    for i in 0..3 {
        send(
            &env,
            "demo-admin-token",
            json!({"version": 3, "type": "GT", "key": "3", "values": ["5"], "message": format!("t{i}")}),
        )
        .await;
        send(
            &env,
            "demo-admin-token",
            json!({"version": 3, "type": "JN", "key": "3", "values": [], "message": format!("j{i}")}),
        )
        .await;
    }
    let (status, _, next) =
        sent(&env, "demo-admin-token", "version=1&broadcastType=GT&companyId=3&limit=1").await;
    assert_eq!(status, 200);
    let token = next.expect("more than one GT record");
    for other in [
        format!("version=1&broadcastType=JN&limit=1&nextToken={token}"),
        format!("version=1&broadcastType=GT&companyId=4&limit=1&nextToken={token}"),
        format!(
            "version=1&broadcastType=ET&eventUUID=ed90fcd2-cbb4-49b8-9be4-a14ccbc2d1e8&nextToken={token}"
        ),
        "version=1&broadcastType=GT&companyId=3&nextToken=forged".to_string(),
        format!("version=1&broadcastType=GT&companyId=3&nextToken={}", token.split_once('.').unwrap().1),
    ] {
        let caller = if other.contains("companyId=4") { "demo-super-token" } else { "demo-admin-token" };
        let (status, body, _) = sent(&env, caller, &other).await;
        assert_eq!((status, body["parameter"].as_str()), (400, Some("nextToken")), "{other}: {body}");
    }
    let (status, page, _) = sent(
        &env,
        "demo-admin-token",
        &format!("version=1&broadcastType=GT&companyId=3&limit=1&nextToken={token}"),
    )
    .await;
    assert_eq!((status, page.as_array().unwrap().len()), (200, 1), "its own query continues");
}

end_to_end!(
    lists_group_sends_only_and_a_company_s_ge_history,
    a_token_of_another_query_is_refused_naming_next_token,
    lists_the_spec_examples_with_real_counts,
    failed_notifications_are_listed_as_unsuccessful,
    pages_through_120_records_each_once,
);
