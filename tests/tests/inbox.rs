//! The notification center through its routes, on memory and on moto: states one at a time,
//! everything at once, the views and the badge, who may do what, and bad input. And on moto,
//! what a read and a mark cost in requests: constant in the page size and the inbox size.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use aws_sdk_dynamodb::config::interceptors::BeforeTransmitInterceptorContextRef;
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use chrono::Duration;
use serde_json::{Value, json};
use shared::http::{GatewayRequest, body_text};
use shared::model::*;
use shared::ports::{Center, InboxDelivery};
use tests::{Env, end_to_end, t0};
use uuid::Uuid;

const U1: &str = "11111111-1111-4111-8111-111111111111";

async fn call(
    env: &Env,
    method: &str,
    template: &str,
    tail: &str,
    token: &str,
    query: &str,
    body: &str,
) -> (u16, Value) {
    let mut req = GatewayRequest::new(method, template, &format!("/users/{U1}{tail}"))
        .path_param("userId", U1)
        .header("authorization", &format!("Bearer {token}"))
        .query(query);
    if let Some(id) = tail.split('/').nth(2) {
        req = req.path_param("id", id);
    }
    if !body.is_empty() {
        req = req.body(body.to_string());
    }
    let resp = inbox::handle(&env.ports, req.into_request()).await;
    let text = body_text(&resp);
    (resp.status().as_u16(), serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

async fn list(env: &Env, query: &str) -> Vec<Value> {
    let (status, body) =
        call(env, "GET", "/users/{userId}/notifications", "/notifications", "demo-user-1-token", query, "")
            .await;
    assert_eq!(status, 200, "{body}");
    body["notifications"].as_array().unwrap().clone()
}

fn titles(items: &[Value]) -> Vec<String> {
    items.iter().map(|i| i["title"].as_str().unwrap().to_string()).collect()
}

async fn count(env: &Env, token: &str) -> (u16, Value) {
    call(env, "GET", "/users/{userId}/notifications/count", "/notifications/count", token, "", "").await
}

async fn mark(env: &Env, id: &str, mark: &str, token: &str) -> u16 {
    let template = format!("/users/{{userId}}/notifications/{{id}}/{mark}");
    call(env, "POST", &template, &format!("/notifications/{id}/{mark}"), token, "", "").await.0
}

async fn mark_all(env: &Env, which: &str, body: &str) -> (u16, Value) {
    let template = format!("/users/{{userId}}/notifications/{which}");
    call(env, "POST", &template, &format!("/notifications/{which}"), "demo-user-1-token", "", body).await
}

/// An app notification to u1, delivered; its id.
async fn notify_u1(env: &Env, title: &str) -> String {
    tests::notify_app(env, U1, title).await.to_string()
}

async fn states_views_and_the_badge_through_the_routes(env: Env) {
    let mut ids = Vec::new();
    for title in ["one", "two", "three", "four"] {
        env.clock.advance(Duration::seconds(1));
        ids.push(notify_u1(&env, title).await);
    }
    assert_eq!(titles(&list(&env, "").await), ["four", "three", "two", "one"]);
    let (status, badge) = count(&env, "demo-user-1-token").await;
    assert_eq!((status, badge.clone()), (200, json!({"unread": 4, "unseen": 4, "exact": true})));
    let first = &list(&env, "").await[0];
    assert_eq!(
        (first["seen"].clone(), first["read"].clone(), first["archived"].clone()),
        (json!(false), json!(false), json!(false))
    );

    // One at a time; each twice (idempotent).
    for _ in 0..2 {
        assert_eq!(mark(&env, &ids[0], "read", "demo-user-1-token").await, 204);
        assert_eq!(mark(&env, &ids[1], "seen", "demo-user-1-token").await, 204);
        assert_eq!(mark(&env, &ids[2], "archive", "demo-user-1-token").await, 204);
    }
    assert_eq!(titles(&list(&env, "").await), ["four", "two", "one"]);
    assert_eq!(titles(&list(&env, "status=unread").await), ["four", "two"]);
    assert_eq!(titles(&list(&env, "status=unseen").await), ["four"]);
    assert_eq!(titles(&list(&env, "status=read").await), ["one"]);
    assert_eq!(titles(&list(&env, "status=archived").await), ["three"]);
    assert_eq!(titles(&list(&env, "status=all").await), ["four", "three", "two", "one"]);
    assert_eq!(count(&env, "demo-user-1-token").await.1, json!({"unread": 2, "unseen": 1, "exact": true}));
    assert_eq!(mark(&env, &ids[2], "unarchive", "demo-user-1-token").await, 204);
    assert_eq!(mark(&env, &ids[0], "unread", "demo-user-1-token").await, 204);
    assert_eq!(titles(&list(&env, "status=unread").await), ["four", "three", "two", "one"]);

    // An admin of the company may look (support), never mark.
    assert_eq!(count(&env, "demo-admin-token").await.0, 200);
    assert_eq!(mark(&env, &ids[3], "read", "demo-admin-token").await, 403);
    let (status, _) = call(
        &env,
        "POST",
        "/users/{userId}/notifications/mark-all-read",
        "/notifications/mark-all-read",
        "demo-admin-token",
        "",
        "",
    )
    .await;
    assert_eq!(status, 403);
    // Unknown, dismissed: not found.
    assert_eq!(mark(&env, &Uuid::new_v4().to_string(), "read", "demo-user-1-token").await, 404);
    assert_eq!(mark(&env, &ids[3], "dismiss", "demo-user-1-token").await, 204);
    assert_eq!(mark(&env, &ids[3], "read", "demo-user-1-token").await, 404);
    assert_eq!(mark(&env, &ids[3], "dismiss", "demo-user-1-token").await, 204, "dismissing twice is fine");
    assert_eq!(titles(&list(&env, "status=all").await), ["three", "two", "one"]);

    // Everything at once; what comes after is new.
    assert_eq!(mark_all(&env, "mark-all-seen", "").await.0, 204);
    assert_eq!(count(&env, "demo-user-1-token").await.1, json!({"unread": 3, "unseen": 0, "exact": true}));
    assert_eq!(mark_all(&env, "mark-all-read", "").await.0, 204);
    assert_eq!(count(&env, "demo-user-1-token").await.1, json!({"unread": 0, "unseen": 0, "exact": true}));
    env.clock.advance(Duration::seconds(1));
    notify_u1(&env, "five").await;
    assert_eq!(count(&env, "demo-user-1-token").await.1, json!({"unread": 1, "unseen": 1, "exact": true}));
    assert_eq!(mark_all(&env, "mark-all-read", r#"{"archive": true}"#).await.0, 204);
    assert!(list(&env, "").await.is_empty(), "everything archived");
    assert_eq!(titles(&list(&env, "status=archived").await), ["five", "three", "two", "one"]);

    // Bad input names its field.
    for (query, field) in [("status=new", "status"), ("limit=0", "limit"), ("since=yesterday", "since")] {
        let (status, body) = call(
            &env,
            "GET",
            "/users/{userId}/notifications",
            "/notifications",
            "demo-user-1-token",
            query,
            "",
        )
        .await;
        assert_eq!(status, 400, "{query}: {body}");
        assert_eq!(body["parameter"], field, "{query}: {body}");
    }
    for (body, field) in [("{", "body"), (r#"{"archive": 1}"#, "archive"), (r#"{"all": true}"#, "all")] {
        let (status, answer) = mark_all(&env, "mark-all-read", body).await;
        assert_eq!((status, answer["parameter"].clone()), (400, json!(field)), "{body}: {answer}");
    }
    let (status, answer) = mark_all(&env, "mark-all-seen", r#"{"archive": true}"#).await;
    assert_eq!((status, answer["parameter"].clone()), (400, json!("archive")), "{answer}");
    let (status, answer) = call(
        &env,
        "POST",
        "/users/{userId}/notifications/{id}/read",
        "/notifications/not-a-uuid/read",
        "demo-user-1-token",
        "",
        "",
    )
    .await;
    assert_eq!((status, answer["parameter"].clone()), (400, json!("id")), "{answer}");
}

end_to_end!(states_views_and_the_badge_through_the_routes);

/// DynamoDB requests by operation (`X-Amz-Target`), every attempt counted.
#[derive(Debug, Default, Clone)]
struct Requests(Arc<Mutex<BTreeMap<String, u64>>>);

impl Intercept for Requests {
    fn name(&self) -> &'static str {
        "requests"
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        let target = context.request().headers().get("x-amz-target").unwrap_or_default();
        let op = target.rsplit('.').next().unwrap_or_default().to_string();
        *self.0.lock().unwrap().entry(op).or_default() += 1;
        Ok(())
    }
}

impl Requests {
    fn take(&self) -> BTreeMap<String, u64> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

/// The Inbox table's store on moto, its requests counted; and a client and the table's name to
/// look at what it stored.
async fn counted_store()
-> (shared::adapters::dynamodb::DynamoInboxStore, Requests, aws_sdk_dynamodb::Client, String) {
    let (sdk, _, config) = tests::provision_moto().await;
    let requests = Requests::default();
    let client = aws_sdk_dynamodb::Client::from_conf(
        aws_sdk_dynamodb::config::Builder::from(&sdk).interceptor(requests.clone()).build(),
    );
    let store = shared::adapters::dynamodb::DynamoInboxStore::new(client, &config.inbox_table);
    (store, requests, aws_sdk_dynamodb::Client::new(&sdk), config.inbox_table)
}

fn content(i: u32) -> InboxContent {
    InboxContent {
        notification_id: Uuid::new_v4(),
        origin: Origin::AppNotification,
        title: format!("n{i}"),
        body: "x".repeat(4000),
        url: None,
        override_content: None,
        icon: IconType::Info,
        toast: ToastType::Timed,
        priority: if i.is_multiple_of(7) { Priority::High } else { Priority::Normal },
        actions: vec![],
        data: Some("d".repeat(5000)),
        source: None,
        created_at: t0() - Duration::seconds(i as i64),
        expires_at: t0() + Duration::days(14),
    }
}

/// A page of the center is the watermarks, one query and one batch read, whatever its size; a
/// mark is a read of the content's key and one update; everything at once is one update, whatever
/// the size of the inbox. Entries are one write unit however long the content.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_and_marks_cost_a_constant_number_of_requests_on_moto() {
    let (store, requests, _, _) = counted_store().await;
    let user = Uuid::new_v4();
    let contents: Vec<InboxContent> = (0..1000).map(content).collect();
    use futures::StreamExt;
    let puts: Vec<_> = futures::stream::iter(contents.iter().map(|c| store.put_content(c)))
        .buffer_unordered(8)
        .collect()
        .await;
    puts.into_iter().collect::<Result<Vec<()>, _>>().unwrap();
    requests.take();
    let entries: Vec<InboxEntry> = contents.iter().map(|c| c.entry_for(user, t0())).collect();
    store.put_entries(&entries, &shared::ports::ManualClock::new(t0())).await.unwrap();
    let written = requests.take();
    assert_eq!(written.get("BatchWriteItem"), Some(&40), "1,000 entries in batches of 25: {written:?}");

    let now = t0();
    for limit in [10, 50, 100] {
        let page = store.list(user, &InboxQuery::ordered(), now, &PageRequest::first(limit)).await.unwrap();
        assert_eq!(page.items.len(), limit);
        assert!(page.items.iter().all(|i| i.content.body.len() == 4000), "content joined");
        let got = requests.take();
        assert_eq!(
            got,
            BTreeMap::from([("GetItem".into(), 1), ("Query".into(), 1), ("BatchGetItem".into(), 1)]),
            "limit {limit}"
        );
    }
    // Marks: the content's key, then one conditional update; everything: one update.
    assert!(store.mark(user, contents[5].notification_id, Mark::Read, now).await.unwrap());
    assert_eq!(requests.take(), BTreeMap::from([("GetItem".into(), 1), ("UpdateItem".into(), 1)]));
    store.mark_all(user, MarkAll::Read { archive: true }, now).await.unwrap();
    assert_eq!(requests.take(), BTreeMap::from([("UpdateItem".into(), 1)]), "one write for 1,000 entries");
    let badge = store.count(user, now, COUNT_WINDOW).await.unwrap();
    assert_eq!(badge, InboxCounts { unread: 0, unseen: 0, exact: false });
    assert_eq!(requests.take(), BTreeMap::from([("GetItem".into(), 1), ("Query".into(), 1)]));
    let archived = store
        .list(
            user,
            &InboxQuery { status: StatusFilter::Archived, ..InboxQuery::default() },
            now,
            &PageRequest::first(50),
        )
        .await
        .unwrap();
    assert_eq!(archived.items.len(), 50);
    requests.take();
    // An inbox of archived entries: the default view reads through them (DynamoDB bills what a
    // query reads, filtered or not), in pages of up to 1 MB.
    let empty = store.list(user, &InboxQuery::ordered(), now, &PageRequest::first(50)).await.unwrap();
    assert!(empty.items.is_empty() && empty.next.is_none());
    let got = requests.take();
    assert_eq!(got.get("GetItem"), Some(&1));
    // Queries that double from the page (51, 102, 204, 408, then the rest): 1,000 entries in 5,
    // where queries of a page each took 20.
    assert!(got.get("Query").is_some_and(|q| *q <= 5), "{got:?}");
}

/// An entry is delivered when its write goes out: one DynamoDB refused for throughput is dated by
/// the attempt that wrote it, so everything marked read in between does not cover it (dated when
/// its chunk began, it would be read before anyone could see it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_entry_held_up_by_throttling_is_dated_when_it_is_written_on_moto() {
    /// A clock that moves on a second each time it is read, keeping what it said.
    struct Ticking(shared::ports::ManualClock, Mutex<Vec<chrono::DateTime<chrono::Utc>>>);
    impl shared::ports::Clock for Ticking {
        fn now(&self) -> chrono::DateTime<chrono::Utc> {
            let t = self.0.now();
            self.0.advance(Duration::seconds(1));
            self.1.lock().unwrap().push(t);
            t
        }
    }
    let (store, requests, _, table) = counted_store().await;
    let user = Uuid::new_v4();
    let c = content(1);
    store.put_content(&c).await.unwrap();
    tests::arm_fault(&table, "BatchWriteItem", 1, "ProvisionedThroughputExceededException").await;
    requests.take();
    let stamp = Ticking(shared::ports::ManualClock::new(t0()), Mutex::default());
    store.put_entries(&[c.entry_for(user, t0())], &stamp).await.unwrap();
    assert_eq!(requests.take().get("BatchWriteItem"), Some(&2), "refused once, then written");
    let last = *stamp.1.lock().unwrap().last().unwrap();
    assert!(last >= t0() + Duration::seconds(1), "read again for the second attempt");
    let got = store.get(user, c.notification_id).await.unwrap().unwrap();
    assert_eq!(got.entry.delivered_at, last, "dated by the attempt that wrote it");
    store.mark_all(user, MarkAll::Read { archive: false }, last - Duration::milliseconds(500)).await.unwrap();
    let got = store.get(user, c.notification_id).await.unwrap().unwrap();
    assert_eq!(got.state, ItemState::default(), "written after everything was marked: new to its person");
}

/// The entry DynamoDB stores for a recipient is under 1 KB for the longest content the specs
/// allow: one write unit per delivered person.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_entry_is_one_write_unit_whatever_the_content_on_moto() {
    let (store, _, raw, table) = counted_store().await;
    let user = Uuid::new_v4();
    let mut c = content(1);
    c.title = "t".repeat(200);
    c.override_content =
        Some(OverrideContent { title: Some("o".repeat(200)), body: Some("p".repeat(4000)), icon_url: None });
    store.put_content(&c).await.unwrap();
    let mut entry = c.entry_for(user, t0());
    for m in Mark::ALL {
        m.apply(&mut entry.marks, t0());
    }
    entry.marks.read_at = Some(t0());
    entry.marks.archived_at = Some(t0());
    store.put_entries(&[entry], &shared::ports::ManualClock::new(t0())).await.unwrap();
    let raw = raw
        .query()
        .table_name(&table)
        .key_condition_expression("pk = :pk")
        .expression_attribute_values(":pk", aws_sdk_dynamodb::types::AttributeValue::S(format!("U#{user}")))
        .send()
        .await
        .unwrap();
    let item = &raw.items.unwrap()[0];
    // DynamoDB's item size: attribute names plus values (numbers at most 21 bytes).
    let size: usize = item
        .iter()
        .map(|(k, v)| {
            k.len()
                + match v {
                    aws_sdk_dynamodb::types::AttributeValue::S(s) => s.len(),
                    aws_sdk_dynamodb::types::AttributeValue::N(n) => n.len().div_ceil(2) + 1,
                    other => panic!("an entry holds strings and numbers only: {other:?}"),
                }
        })
        .sum();
    assert!(size <= 1024, "an entry with every mark is {size} bytes");
    println!("a recipient's entry with every mark: {size} bytes (one write unit)");
    let now = t0();
    let got = store.get(user, c.notification_id).await.unwrap().expect("joined");
    assert_eq!(got.content, c);
    assert!(got.entry.expires_at > now);
}

#[test]
fn the_count_window_is_what_the_readme_says() {
    let readme = std::fs::read_to_string(tests::repo_root().join("README.md")).unwrap();
    assert!(
        readme.contains(&format!("first {COUNT_WINDOW} entries")),
        "README states the badge's bounded read ({COUNT_WINDOW})"
    );
}
