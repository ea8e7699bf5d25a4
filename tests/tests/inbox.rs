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

/// `since` or `deliveredSince` further back than the center catches up (24 hours, the README's
/// promise) answers the view as it is, saying so; within it, what was delivered since.
async fn a_catch_up_from_long_ago_answers_the_view_and_says_resync(env: Env) {
    let a = notify_u1(&env, "a").await;
    env.time_passes(Duration::hours(26)).await;
    let b = notify_u1(&env, "b").await;
    let now = shared::ports::Clock::now(&*env.clock);
    for (param, at, resync, expected) in [
        ("since", now - Duration::hours(25), true, vec![b.clone(), a.clone()]),
        ("deliveredSince", now - Duration::hours(25), true, vec![b.clone(), a.clone()]),
        ("since", now - Duration::hours(23), false, vec![b.clone()]),
        ("deliveredSince", now - Duration::hours(23), false, vec![b.clone()]),
    ] {
        let query = format!("{param}={}", at.timestamp_millis());
        let (status, page) = call(
            &env,
            "GET",
            "/users/{userId}/notifications",
            "/notifications",
            "demo-user-1-token",
            &query,
            "",
        )
        .await;
        assert_eq!(status, 200, "{query}: {page}");
        assert_eq!(page["resync"], json!(resync), "{query}: {page}");
        let ids: Vec<String> = page["notifications"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["id"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(ids, expected, "{query}");
    }
}

end_to_end!(
    states_views_and_the_badge_through_the_routes,
    a_catch_up_from_long_ago_answers_the_view_and_says_resync
);

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

/// Contents stored, eight at a time.
async fn put_contents<'a>(
    store: &shared::adapters::dynamodb::DynamoInboxStore,
    contents: impl Iterator<Item = &'a InboxContent>,
) {
    use futures::StreamExt;
    let puts: Vec<_> =
        futures::stream::iter(contents.map(|c| store.put_content(c))).buffer_unordered(8).collect().await;
    puts.into_iter().collect::<Result<Vec<()>, _>>().unwrap();
}

/// A meter armed on the tables of `table`'s prefix (billing, never throttling): the prefix.
async fn billed(table: &str) -> String {
    let prefix = table[..table.find('-').unwrap() + 1].to_string();
    tests::arm_meter(&prefix, 0.0, 0.0).await;
    prefix
}

/// A read's answer, the DynamoDB requests it made and the read units it was billed.
async fn measured<T>(
    requests: &Requests,
    prefix: &str,
    read: impl std::future::Future<Output = shared::error::StoreResult<T>>,
) -> (T, u64, f64) {
    requests.take();
    let before = tests::metered(prefix).await["read_units"].as_f64().unwrap();
    let answer = read.await.unwrap();
    let units = tests::metered(prefix).await["read_units"].as_f64().unwrap() - before;
    (answer, requests.take().values().sum(), units)
}

/// The markers stored in `user`'s center, as they are.
async fn markers_of(
    raw: &aws_sdk_dynamodb::Client,
    table: &str,
    user: Uuid,
) -> Vec<std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>> {
    use aws_sdk_dynamodb::types::AttributeValue;
    raw.query()
        .table_name(table)
        .key_condition_expression("pk = :pk AND begins_with(sk, :m)")
        .expression_attribute_values(":pk", AttributeValue::S(format!("U#{user}")))
        .expression_attribute_values(":m", AttributeValue::S("M#".into()))
        .send()
        .await
        .unwrap()
        .items
        .unwrap_or_default()
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
    put_contents(&store, contents.iter()).await;
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
    // Marks: the content's key, then one conditional update; a mark a view lists apart (read,
    // unread, archive, unarchive) its marker first; everything: one update.
    assert!(store.mark(user, contents[5].notification_id, Mark::Seen, now).await.unwrap());
    assert_eq!(requests.take(), BTreeMap::from([("GetItem".into(), 1), ("UpdateItem".into(), 1)]));
    assert!(store.mark(user, contents[5].notification_id, Mark::Read, now).await.unwrap());
    assert_eq!(
        requests.take(),
        BTreeMap::from([("GetItem".into(), 1), ("PutItem".into(), 1), ("UpdateItem".into(), 1)])
    );
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
    // An inbox of archived entries: the default view reads its first page of entries, then only
    // what the archive watermark does not cover (delivered after it; unarchived since), not the
    // 1,000 entries it covers.
    // (Delivered within the hour before the watermark, they are read in bounded answers.)
    let mut page = PageRequest::first(50);
    loop {
        let empty = store.list(user, &InboxQuery::ordered(), now, &page).await.unwrap();
        assert!(empty.items.is_empty());
        let got = requests.take();
        assert_eq!(got.get("GetItem"), Some(&1));
        // The first page, then the pointers, a range per rank and the unarchived markers.
        assert!(got.get("Query").is_some_and(|q| *q <= 8), "{got:?}");
        match empty.next {
            Some(next) => page = PageRequest::after(50, Some(next)),
            None => break,
        }
    }
}

/// What the notification center promises each answer costs (docs/api/notification-center.md,
/// "Every view in bounded reads"): at most this many DynamoDB requests, and this many read units
/// plus so many per notification of the page's limit (its content; its entry, when a marker or a
/// pointer names it), whatever the size of the inbox.
const PROMISED_REQUESTS: u64 = 20;
const PROMISED_READ_UNITS: f64 = 60.0;
const PROMISED_READ_UNITS_PER_LIMIT: f64 = 5.0;

fn within_the_promise(units: f64, limit: usize) -> bool {
    units <= PROMISED_READ_UNITS + PROMISED_READ_UNITS_PER_LIMIT * limit as f64
}

#[test]
fn the_promised_bounds_are_the_docs() {
    let doc = std::fs::read_to_string(tests::repo_root().join("docs/api/notification-center.md")).unwrap();
    let doc = doc.split_whitespace().collect::<Vec<_>>().join(" ");
    for promise in [
        format!("at most {PROMISED_REQUESTS} DynamoDB requests and {PROMISED_READ_UNITS} read units"),
        format!("plus {PROMISED_READ_UNITS_PER_LIMIT} per notification of the page's limit"),
    ] {
        assert!(doc.contains(&promise), "docs/notification-center.md promises {promise:?}");
    }
}

/// Every view of a large inbox after "mark all read and archive", with things marked one by one
/// before and after it, answers in a bounded number of requests and read units (the meter bills
/// them as DynamoDB does), its page full where the view has that many; and a view few entries
/// pass without any watermark (the top of the inbox archived one by one) answers short pages
/// with a position, each as bounded, that together are the view.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_view_reads_a_bounded_part_of_a_large_inbox_on_moto() {
    let (store, requests, _, table) = counted_store().await;
    let prefix = billed(&table).await;
    let user = Uuid::new_v4();
    let light = |i: u32, created: chrono::DateTime<chrono::Utc>| InboxContent {
        body: "x".into(),
        data: None,
        created_at: created,
        ..content(i)
    };
    // Four days of notifications, one every five minutes, each delivered five seconds after it
    // was created.
    const OLD: u32 = 1200;
    let old: Vec<InboxContent> =
        (0..OLD).map(|i| light(i, t0() - Duration::minutes(5 * (i as i64 + 1)))).collect();
    let new: Vec<InboxContent> =
        (0..30).map(|i| light(i, t0() + Duration::seconds(5) + Duration::milliseconds(i as i64))).collect();
    put_contents(&store, old.iter().chain(&new)).await;
    let clock = shared::ports::ManualClock::new(t0() - Duration::days(30));
    let entries: Vec<InboxEntry> =
        old.iter().map(|c| c.entry_for(user, c.created_at + Duration::seconds(5))).collect();
    store.put_entries(&entries, &clock).await.unwrap();
    for c in &old[..3] {
        assert!(store.mark(user, c.notification_id, Mark::Archived, t0()).await.unwrap());
    }
    for c in &old[10..13] {
        assert!(store.mark(user, c.notification_id, Mark::Read, t0()).await.unwrap());
    }
    store.mark_all(user, MarkAll::Read { archive: true }, t0() + Duration::seconds(1)).await.unwrap();
    let later = t0() + Duration::seconds(10);
    let entries: Vec<InboxEntry> = new.iter().map(|c| c.entry_for(user, later)).collect();
    store.put_entries(&entries, &shared::ports::ManualClock::new(later)).await.unwrap();
    let now = later + Duration::seconds(10);
    for i in [500, 900] {
        assert!(store.mark(user, old[i].notification_id, Mark::Unarchived, now).await.unwrap());
    }
    assert!(store.mark(user, old[700].notification_id, Mark::Unread, now).await.unwrap());
    assert!(store.mark(user, new[3].notification_id, Mark::Read, now).await.unwrap());

    let ids = |cs: &[&InboxContent]| -> Vec<Uuid> {
        let mut cs: Vec<&&InboxContent> = cs.iter().collect();
        cs.sort_by_key(|c| c.order());
        cs.iter().map(|c| c.notification_id).collect()
    };
    let fresh: Vec<&InboxContent> = new.iter().collect();
    let unarchived = [&old[500], &old[900]];
    let views: Vec<(InboxQuery, Vec<Uuid>)> = vec![
        (InboxQuery::ordered(), ids(&[fresh.clone(), unarchived.to_vec()].concat())),
        (
            InboxQuery { status: StatusFilter::Unread, ..InboxQuery::default() },
            ids(&fresh
                .iter()
                .copied()
                .filter(|c| c.notification_id != new[3].notification_id)
                .collect::<Vec<_>>()),
        ),
        (InboxQuery { status: StatusFilter::Unseen, ..InboxQuery::default() }, ids(&fresh[..])),
        (
            InboxQuery { status: StatusFilter::Read, ..InboxQuery::default() },
            ids(&[&new[3], &old[500], &old[900]]),
        ),
        (
            InboxQuery { status: StatusFilter::Archived, ..InboxQuery::default() },
            ids(&old
                .iter()
                .filter(|c| !unarchived.iter().any(|u| u.notification_id == c.notification_id))
                .collect::<Vec<_>>()),
        ),
        (
            InboxQuery { status: StatusFilter::All, ..InboxQuery::default() },
            ids(&old.iter().chain(&new).collect::<Vec<_>>()),
        ),
        (InboxQuery::since(t0() + Duration::seconds(5)), ids(&fresh[..])),
    ];
    let limit = 20;
    for (query, expected) in &views {
        let (page, made, units) =
            measured(&requests, &prefix, store.list(user, query, now, &PageRequest::first(limit))).await;
        let shown: Vec<Uuid> = page.items.iter().map(|i| i.content.notification_id).collect();
        assert_eq!(shown, expected.iter().copied().take(limit).collect::<Vec<_>>(), "{query:?}");
        assert_eq!(page.next.is_some(), expected.len() > limit, "{query:?}");
        println!("{query:?}: {made} requests, {units} read units ({} shown)", shown.len());
        assert!(made <= PROMISED_REQUESTS, "{query:?}: {made} requests");
        assert!(
            within_the_promise(units, shown.len()),
            "{query:?}: {units} read units for {} shown",
            shown.len()
        );
    }

    // No watermark, the top of the inbox archived one by one: short pages, each bounded.
    let user = Uuid::new_v4();
    let mut entries: Vec<InboxEntry> = old.iter().map(|c| c.entry_for(user, t0())).collect();
    entries.sort_by_key(InboxEntry::order);
    for e in entries.iter_mut().take(900) {
        e.marks.archived_at = Some(t0());
    }
    store.put_entries(&entries, &clock).await.unwrap();
    let expected: Vec<Uuid> = entries[900..].iter().map(|e| e.notification_id).collect();
    let archived: Vec<Uuid> = entries[..900].iter().map(|e| e.notification_id).collect();
    for (query, expected) in [
        (InboxQuery::ordered(), expected),
        (InboxQuery { status: StatusFilter::Archived, ..InboxQuery::default() }, archived),
    ] {
        let mut page = PageRequest::first(limit);
        let (mut got, mut answers, mut short) = (Vec::new(), 0, 0);
        loop {
            let (answer, made, units) =
                measured(&requests, &prefix, store.list(user, &query, now, &page)).await;
            assert!(made <= PROMISED_REQUESTS, "{query:?}: {made} requests");
            assert!(within_the_promise(units, limit), "{query:?}: {units}");
            answers += 1;
            short += usize::from(answer.items.len() < limit && answer.next.is_some());
            got.extend(answer.items.iter().map(|i| i.content.notification_id));
            match answer.next {
                Some(next) => page = PageRequest::after(limit, Some(next)),
                None => break,
            }
        }
        assert_eq!(got, expected, "{query:?}: every page together is the view");
        println!("{query:?} of an inbox archived one by one at its top: {answers} answers, {short} short");
        if query.status == StatusFilter::Inbox {
            assert!(short >= 1, "900 archived entries are more than one answer walks");
        }
    }
}

/// Pages cut anywhere still make the view: the random history of the conformance suite, read
/// from DynamoDB with a budget of three items a set, so every set of every view is cut, page
/// after page, and sets cut at different places are merged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn views_cut_at_every_step_are_still_the_rule_on_moto() {
    let (store, _, _, _) = counted_store().await;
    let store = store.with_walk_budget(3);
    tests::views::match_the_rule(&store, 10..13).await;
    // And with more late entries than the pointers a read follows: every entry walked instead.
    tests::views::match_the_rule(&store.with_pointers_read(2), 13..15).await;
}

/// A marker goes with a mark that did not apply (the entry dismissed) and with a dismissal
/// (every marker the entry had, those of undone marks too): only markers of marks an entry
/// carries, or carried and undid, remain.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn markers_go_with_marks_that_did_not_apply_and_with_dismissal_on_moto() {
    let (store, _, raw, table) = counted_store().await;
    let user = Uuid::new_v4();
    let markers = || async {
        let mut codes: Vec<String> = markers_of(&raw, &table, user)
            .await
            .iter()
            .map(|i| i["sk"].as_s().unwrap().split('#').nth(1).unwrap().to_string())
            .collect();
        codes.sort();
        codes
    };
    let (a, b) = (content(1), content(2));
    for c in [&a, &b] {
        store.put_content(c).await.unwrap();
    }
    let clock = shared::ports::ManualClock::new(t0());
    store.put_entries(&[a.entry_for(user, t0()), b.entry_for(user, t0())], &clock).await.unwrap();
    for mark in [Mark::Read, Mark::Unread, Mark::Archived] {
        assert!(store.mark(user, a.notification_id, mark, t0()).await.unwrap());
    }
    assert!(store.mark(user, b.notification_id, Mark::Unarchived, t0()).await.unwrap());
    assert_eq!(markers().await, ["A", "N", "R", "U"], "a read undone keeps its marker");
    assert!(store.mark(user, a.notification_id, Mark::Dismissed, t0()).await.unwrap());
    assert_eq!(markers().await, ["N"], "a dismissal takes every marker of its entry");
    assert!(!store.mark(user, a.notification_id, Mark::Archived, t0()).await.unwrap());
    assert_eq!(markers().await, ["N"], "a mark that did not apply leaves no marker");
}

/// The worst an answer meets stays within the promise, at a page of one and of a hundred: the
/// longest contents the specs allow, hundreds of markers whose entries the view does not show
/// (read one by one, then archived), hundreds of late entries' pointers, views after a mark-all
/// with a busy hour before it (what the watermark does not cover is read from an hour before it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_worst_views_stay_within_the_promise_on_moto() {
    let (store, requests, _, table) = counted_store().await;
    let prefix = billed(&table).await;
    let user = Uuid::new_v4();
    let long = |i: u32, created: chrono::DateTime<chrono::Utc>| {
        let mut c = InboxContent { created_at: created, ..content(i) };
        c.title = "t".repeat(200);
        c.override_content = Some(OverrideContent {
            title: Some("o".repeat(200)),
            body: Some("p".repeat(4000)),
            icon_url: None,
        });
        c
    };
    // 400 read one by one and archived one by one, over the last days; 240 delivered two hours
    // after their creation (late: pointed), in the hour before now.
    let now = t0();
    let old: Vec<InboxContent> =
        (0..400).map(|i| long(i, now - Duration::minutes(10 * (i as i64 + 1)))).collect();
    let late: Vec<InboxContent> =
        (0..240).map(|i| long(1000 + i, now - Duration::hours(2) - Duration::seconds(i as i64))).collect();
    put_contents(&store, old.iter().chain(&late)).await;
    let mut entries: Vec<InboxEntry> =
        old.iter().map(|c| c.entry_for(user, c.created_at + Duration::seconds(5))).collect();
    for e in &mut entries {
        e.marks.seen_at = Some(e.delivered_at);
        e.marks.read_at = Some(e.delivered_at);
        e.marks.archived_at = Some(e.delivered_at);
    }
    store.put_entries(&entries, &shared::ports::ManualClock::new(now - Duration::days(30))).await.unwrap();
    let delivered = now - Duration::minutes(30);
    let entries: Vec<InboxEntry> = late.iter().map(|c| c.entry_for(user, delivered)).collect();
    store.put_entries(&entries, &shared::ports::ManualClock::new(delivered)).await.unwrap();
    // A busy hour (300 more, on time) then everything marked read and archived, then five more.
    let busy: Vec<InboxContent> =
        (0..300).map(|i| long(2000 + i, now - Duration::minutes(25) + Duration::seconds(i as i64))).collect();
    let fresh: Vec<InboxContent> =
        (0..5).map(|i| long(3000 + i, now - Duration::seconds(60 - i as i64))).collect();
    put_contents(&store, busy.iter().chain(&fresh)).await;
    let entries: Vec<InboxEntry> =
        busy.iter().map(|c| c.entry_for(user, c.created_at + Duration::seconds(1))).collect();
    store.put_entries(&entries, &shared::ports::ManualClock::new(now - Duration::hours(1))).await.unwrap();
    store.mark_all(user, MarkAll::Read { archive: true }, now - Duration::minutes(2)).await.unwrap();
    let entries: Vec<InboxEntry> = fresh.iter().map(|c| c.entry_for(user, c.created_at)).collect();
    store.put_entries(&entries, &shared::ports::ManualClock::new(now - Duration::hours(1))).await.unwrap();
    let mut worst = (0u64, 0f64);
    for limit in [1, 100] {
        for query in [
            InboxQuery { status: StatusFilter::Read, ..InboxQuery::default() },
            InboxQuery { status: StatusFilter::Archived, ..InboxQuery::default() },
            InboxQuery { status: StatusFilter::Unread, ..InboxQuery::default() },
            InboxQuery::since(now - Duration::hours(1)),
            InboxQuery { status: StatusFilter::Archived, ..InboxQuery::since(now - Duration::hours(1)) },
            InboxQuery::ordered(),
            InboxQuery { status: StatusFilter::Unseen, ..InboxQuery::default() },
        ] {
            let (page, made, units) =
                measured(&requests, &prefix, store.list(user, &query, now, &PageRequest::first(limit))).await;
            println!(
                "limit {limit}, {query:?}: {made} requests, {units} read units ({} shown)",
                page.items.len()
            );
            worst = (worst.0.max(made), worst.1.max(units - PROMISED_READ_UNITS_PER_LIMIT * limit as f64));
            assert!(made <= PROMISED_REQUESTS, "limit {limit}, {query:?}: {made} requests");
            assert!(within_the_promise(units, limit), "limit {limit}, {query:?}: {units} read units");
        }
    }
    println!("worst: {} requests, {} read units beyond the per-notification part", worst.0, worst.1);
}

/// The upgrade to markers loses nothing: entries archived and read one by one by a version that
/// wrote no markers are missing from the archived and read views of a large inbox until the
/// backfill runs, then listed; running it again writes the same.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_markers_backfill_brings_back_what_was_marked_before_them_on_moto() {
    let (store, _, raw, table) = counted_store().await;
    let user = Uuid::new_v4();
    let contents: Vec<InboxContent> =
        (0..60).map(|i| InboxContent { body: "x".into(), data: None, ..content(i) }).collect();
    put_contents(&store, contents.iter()).await;
    let mut entries: Vec<InboxEntry> = contents.iter().map(|c| c.entry_for(user, t0())).collect();
    entries.sort_by_key(InboxEntry::order);
    // Deep in the inbox, past a page's first query: archived (40th) and read (50th) one by one.
    entries[40].marks.archived_at = Some(t0());
    entries[50].marks.read_at = Some(t0());
    entries[50].marks.seen_at = Some(t0());
    store.put_entries(&entries, &shared::ports::ManualClock::new(t0())).await.unwrap();
    // As an earlier version left them: no markers.
    let markers = markers_of(&raw, &table, user).await;
    assert_eq!(markers.len(), 2, "entries written with marks get their markers");
    for m in markers {
        let key: std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue> =
            m.into_iter().filter(|(k, _)| k == "pk" || k == "sk").collect();
        raw.delete_item().table_name(&table).set_key(Some(key)).send().await.unwrap();
    }
    let view = |status: StatusFilter| {
        let store = &store;
        async move {
            let query = InboxQuery { status, ..InboxQuery::default() };
            let page = store.list(user, &query, t0(), &PageRequest::first(10)).await.unwrap();
            page.items.iter().map(|i| i.content.notification_id).collect::<Vec<_>>()
        }
    };
    assert!(view(StatusFilter::Archived).await.is_empty(), "without its marker, not found");
    assert!(view(StatusFilter::Read).await.is_empty());
    for _ in 0..2 {
        let (found, written) = store.backfill_markers().await.unwrap();
        assert_eq!((found, written), (2, 2));
        assert_eq!(view(StatusFilter::Archived).await, vec![entries[40].notification_id]);
        assert_eq!(view(StatusFilter::Read).await, vec![entries[50].notification_id]);
    }
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

/// An item as serde_dynamo writes a JSON value (strings, numbers, lists, maps; nulls left out).
fn attribute(v: &Value) -> Option<aws_sdk_dynamodb::types::AttributeValue> {
    use aws_sdk_dynamodb::types::AttributeValue as A;
    Some(match v {
        Value::Null => return None,
        Value::Bool(b) => A::Bool(*b),
        Value::Number(n) => A::N(n.to_string()),
        Value::String(s) => A::S(s.clone()),
        Value::Array(a) => A::L(a.iter().filter_map(attribute).collect()),
        Value::Object(o) => A::M(o.iter().filter_map(|(k, v)| Some((k.clone(), attribute(v)?))).collect()),
    })
}

/// The Inbox table of a version before issue #17 (`notifications-<stage>-inbox`, as its template
/// made it: two local indexes) on moto, and a writer of its items as that version wrote them.
async fn earlier_table(raw: &aws_sdk_dynamodb::Client, name: &str) {
    use aws_sdk_dynamodb::types::*;
    let attr =
        |n: &str, t| AttributeDefinition::builder().attribute_name(n).attribute_type(t).build().unwrap();
    let key = |n: &str, t| KeySchemaElement::builder().attribute_name(n).key_type(t).build().unwrap();
    let index = |name: &str, range: &str| {
        LocalSecondaryIndex::builder()
            .index_name(name)
            .key_schema(key("pk", KeyType::Hash))
            .key_schema(key(range, KeyType::Range))
            .projection(Projection::builder().projection_type(ProjectionType::All).build())
            .build()
            .unwrap()
    };
    raw.create_table()
        .table_name(name)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(attr("pk", ScalarAttributeType::S))
        .attribute_definitions(attr("sk", ScalarAttributeType::S))
        .attribute_definitions(attr("orderKey", ScalarAttributeType::S))
        .attribute_definitions(attr("createdMs", ScalarAttributeType::N))
        .key_schema(key("pk", KeyType::Hash))
        .key_schema(key("sk", KeyType::Range))
        .local_secondary_indexes(index("byOrder", "orderKey"))
        .local_secondary_indexes(index("byCreated", "createdMs"))
        .send()
        .await
        .unwrap();
}

/// An item of the earlier table as that version wrote it (`git show 037332b^`: its `InboxItem`,
/// serialized by serde_dynamo beside its keys and its indexes' attributes), written out field by
/// field rather than from today's types, so that a change of today's serialization cannot pass
/// for the earlier one. `extra` adds the optional fields.
async fn put_earlier(
    raw: &aws_sdk_dynamodb::Client,
    table: &str,
    (user, id): (Uuid, Uuid),
    (title, high): (&str, bool),
    (created, expires): (&str, &str),
    extra: Value,
) {
    let ms = |t: &str| chrono::DateTime::parse_from_rfc3339(t).unwrap().timestamp_millis();
    let mut v = json!({
        "pk": format!("U#{user}"),
        "sk": format!("N#{id}"),
        "orderKey": format!("{}#{:013}#{id}", if high { 0 } else { 1 }, 9_999_999_999_999 - ms(created)),
        "createdMs": ms(created),
        "expiresMs": ms(expires),
        "ttl": ms(expires) / 1000,
        "userId": user,
        "notificationId": id,
        "origin": "appNotification",
        "title": title,
        "body": format!("the body of {title}"),
        "icon": "Info",
        "toast": "Timed",
        "priority": if high { "High" } else { "Normal" },
        "createdAt": created,
        "expiresAt": expires,
    });
    v.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
    let Some(aws_sdk_dynamodb::types::AttributeValue::M(item)) = attribute(&v) else { unreachable!() };
    raw.put_item().table_name(table).set_item(Some(item)).send().await.unwrap();
}

/// The upgrade from the Inbox table of a version before issue #17 loses nothing (docs/deploy.md):
/// every item still shown there is in its person's center afterwards with the content it showed,
/// in display order, delivered when it was created (a mark-all made since the upgrade covers it);
/// what a person has in the new table already is left as they left it; a dismissed item comes
/// over dismissed (a chunk of its notification delivered again does not bring it back), an
/// expired one not at all; running the copy again writes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_earlier_inbox_table_is_copied_into_the_new_one_on_moto() {
    let (store, _, raw, table) = counted_store().await;
    let earlier = format!("{table}-earlier");
    earlier_table(&raw, &earlier).await;
    let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
    let [both, high, dismissed, expired, had] = [(); 5].map(|_| Uuid::new_v4());
    let (created, expires) = ("2026-11-22T08:59:59Z", "2026-12-06T08:59:59Z");
    let full = json!({
        "url": "https://example.com/n1",
        "overrideContent": {"title": "**Bold** title", "body": "- Item 1\r- Item 2"},
        "actions": [{"title": "Open", "data": {"type": "url", "url": "https://example.com", "navigationTarget": "dialog"}}],
        "data": "{\"k\":1}",
        "source": "pe",
    });
    put_earlier(&raw, &earlier, (a, both), ("both", false), (created, expires), full.clone()).await;
    put_earlier(&raw, &earlier, (b, both), ("both", false), (created, expires), full).await;
    put_earlier(&raw, &earlier, (a, high), ("high", true), ("2026-11-22T08:00:00Z", expires), json!({}))
        .await;
    let gone = json!({"dismissedAt": "2026-11-22T08:30:00Z"});
    put_earlier(&raw, &earlier, (a, dismissed), ("dismissed", false), (created, expires), gone).await;
    let old = ("2026-11-01T09:00:00Z", "2026-11-15T09:00:00Z");
    put_earlier(&raw, &earlier, (b, expired), ("expired", false), old, json!({})).await;
    put_earlier(&raw, &earlier, (a, had), ("had", false), ("2026-11-22T07:00:00Z", expires), json!({})).await;
    // Since the upgrade: `had` delivered again into the new table and read by `a`; `b` marked
    // everything read.
    let had_content = InboxContent {
        notification_id: had,
        created_at: chrono::DateTime::parse_from_rfc3339("2026-11-22T07:00:00Z").unwrap().to_utc(),
        title: "had".into(),
        body: "the body of had".into(),
        data: None,
        priority: Priority::Normal,
        ..content(1)
    };
    store.put_content(&had_content).await.unwrap();
    store
        .put_entries(&[had_content.entry_for(a, t0())], &shared::ports::ManualClock::new(t0()))
        .await
        .unwrap();
    store.mark(a, had, Mark::Read, t0() + Duration::minutes(1)).await.unwrap();
    store.mark_all(b, MarkAll::Read { archive: false }, t0() + Duration::minutes(2)).await.unwrap();

    let now = t0() + Duration::minutes(5);
    let report = store.copy_from_earlier_table(&earlier, now, 3).await.unwrap();
    use shared::adapters::dynamodb::EarlierCopy;
    assert_eq!(report, EarlierCopy { found: 6, copied: 4, had: 1, dismissed: 1, expired: 1, contents: 3 });
    let expected = InboxContent {
        notification_id: both,
        origin: Origin::AppNotification,
        title: "both".into(),
        body: "the body of both".into(),
        url: Some("https://example.com/n1".into()),
        override_content: Some(OverrideContent {
            title: Some("**Bold** title".into()),
            body: Some("- Item 1\r- Item 2".into()),
            icon_url: None,
        }),
        icon: IconType::Info,
        toast: ToastType::Timed,
        priority: Priority::Normal,
        actions: vec![Action {
            title: "Open".into(),
            data: ActionData::Url {
                url: "https://example.com".into(),
                navigation_target: Some(NavigationTarget::Dialog),
            },
        }],
        data: Some("{\"k\":1}".into()),
        source: Some("pe".into()),
        created_at: chrono::DateTime::parse_from_rfc3339(created).unwrap().to_utc(),
        expires_at: chrono::DateTime::parse_from_rfc3339(expires).unwrap().to_utc(),
    };
    for round in 0..2 {
        let list = |user| {
            let store = &store;
            async move {
                let page =
                    store.list(user, &InboxQuery::default(), now, &PageRequest::first(10)).await.unwrap();
                page.items
            }
        };
        let of_a = list(a).await;
        let ids: Vec<_> = of_a.iter().map(|i| i.content.notification_id).collect();
        assert_eq!(
            ids,
            vec![high, both, had],
            "round {round}: in display order, the dismissed one not shown"
        );
        assert_eq!(of_a[1].content, expected, "the content it showed, every field");
        assert_eq!(of_a[1].entry.delivered_at, expected.created_at, "delivered when it was created");
        assert!(!of_a[1].state.read && !of_a[0].state.read, "new to a: nothing marked them");
        assert!(of_a[2].state.read, "what a did in the new table stays");
        let counts = store.count(a, now, COUNT_WINDOW).await.unwrap();
        assert_eq!((counts.unread, counts.exact), (2, true));
        let of_b = list(b).await;
        assert_eq!(of_b.len(), 1, "b's expired item is not copied");
        assert_eq!(of_b[0].content, InboxContent { ..expected.clone() });
        assert!(of_b[0].state.read, "b's mark-all since the upgrade covers what was delivered before it");
        // A chunk of the dismissed notification delivered again finds its entry there.
        let copied = store.get(a, dismissed).await.unwrap().expect("copied, dismissed");
        assert!(copied.state.dismissed);
        let clock = shared::ports::ManualClock::new(now);
        assert!(store.put_new_entries(&[copied.content.entry_for(a, now)], &clock).await.unwrap().is_empty());
        assert!(store.get(a, dismissed).await.unwrap().unwrap().state.dismissed, "still dismissed");
        let again = store.copy_from_earlier_table(&earlier, now, 1).await.unwrap();
        assert_eq!(
            again,
            EarlierCopy { found: 6, copied: 0, had: 5, dismissed: 1, expired: 1, contents: 0 },
            "run again, it writes nothing"
        );
    }
}
