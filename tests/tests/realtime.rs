//! Realtime without gaps, on memory and on moto: a connection hears of deliveries and marks of
//! its own person only; one that drops and comes back with its last cursor is told exactly what it
//! missed (ids it already saw aside); tickets are single-use, short-lived, the person's own.

use std::collections::BTreeSet;
use std::sync::Arc;

use chrono::{DateTime, Duration};
use serde_json::{Value, json};
use shared::adapters::memory::MemoryRealtime;
use shared::http::{GatewayRequest, body_text};
use shared::model::*;
use shared::ports::Clock;
use shared::service::realtime;
use tests::{Env, end_to_end};
use tokio::sync::broadcast::Receiver;
use uuid::Uuid;

const U1: &str = "11111111-1111-4111-8111-111111111111";

fn u1() -> UserId {
    U1.parse().unwrap()
}

/// An app notification to u1, delivered; its id.
async fn notify_u1(env: &Env, title: &str) -> NotificationId {
    tests::notify_app(env, U1, title).await
}

/// Events of `user` received so far.
fn drain(rx: &mut Receiver<Pushed>, user: UserId) -> Vec<Pushed> {
    let mut out = Vec::new();
    while let Ok(p) = rx.try_recv() {
        if p.user == user {
            out.push(p);
        }
    }
    out
}

fn new_ids(events: &[Pushed]) -> BTreeSet<NotificationId> {
    events
        .iter()
        .flat_map(|p| match &p.event {
            InboxEvent::New { ids, .. } => ids.clone(),
            _ => vec![],
        })
        .collect()
}

async fn a_reconnecting_client_misses_nothing(mut env: Env) {
    // The local runner's hub, whatever the storage.
    let hub = Arc::new(MemoryRealtime::new());
    env.ports.realtime = hub.clone();
    let viewer = env.ports.directory.user(u1()).await.unwrap().unwrap();

    // Connected: hears of its own deliveries, not of others'.
    let ticket = realtime::issue(&env.ports.tickets(), &viewer, u1()).unwrap();
    assert_eq!(realtime::redeem(&env.ports.tickets(), &ticket).await.unwrap(), u1());
    let mut rx = hub.subscribe();
    let a = notify_u1(&env, "a").await;
    let seen = drain(&mut rx, u1());
    assert_eq!(new_ids(&seen), BTreeSet::from([a]));
    let cursor = seen.last().unwrap().cursor;
    let mut shown: BTreeSet<NotificationId> = new_ids(&seen);

    // Away: two more arrive, and one is marked read elsewhere.
    drop(rx);
    env.clock.advance(Duration::seconds(2));
    let b = notify_u1(&env, "b").await;
    env.clock.advance(Duration::seconds(2));
    let c = notify_u1(&env, "c").await;

    // Back, with a new ticket and the last cursor: exactly what was missed.
    let again = realtime::issue(&env.ports.tickets(), &viewer, u1()).unwrap();
    assert_eq!(realtime::redeem(&env.ports.tickets(), &again).await.unwrap(), u1());
    let mut rx = hub.subscribe();
    let from = DateTime::from_timestamp_millis(cursor).unwrap();
    let missed =
        realtime::catch_up(&env.ports.catch_up(), u1(), from).await.unwrap().expect("something was missed");
    let told = new_ids(std::slice::from_ref(&missed));
    let fresh: BTreeSet<NotificationId> = told.difference(&shown).copied().collect();
    assert_eq!(fresh, BTreeSet::from([b, c]), "exactly the missed ones, none twice");
    assert!(missed.cursor >= cursor, "the catch-up moves the cursor on");
    shown.extend(fresh);

    // Nothing missed since: nothing told; then live again, marks included.
    let now = DateTime::from_timestamp_millis(missed.cursor + 1).unwrap();
    assert!(realtime::catch_up(&env.ports.catch_up(), u1(), now).await.unwrap().is_none());
    let d = notify_u1(&env, "d").await;
    let live = drain(&mut rx, u1());
    assert_eq!(new_ids(&live), BTreeSet::from([d]));
    assert!(!shown.contains(&d));
    // A delivery carries what the page shows (no read to apply it), a catch-up only ids.
    match &live[0].event {
        InboxEvent::New { content: Some(c), .. } => {
            assert_eq!((c.notification_id, c.title.as_str()), (d, "d"))
        }
        other => panic!("a delivery without its content: {other:?}"),
    }
    assert!(matches!(missed.event, InboxEvent::New { content: None, .. }));
    // Marks carry the person's counts after them: four delivered, b read, then everything seen.
    shared::service::inbox::mark(&env.ports.center_marks(), &viewer, u1(), b, Mark::Read).await.unwrap();
    let seen_at = env.clock.now().timestamp_millis();
    shared::service::inbox::mark_all(&env.ports.center_marks(), &viewer, u1(), MarkAll::Seen).await.unwrap();
    let marks: Vec<InboxEvent> = drain(&mut rx, u1()).into_iter().map(|p| p.event).collect();
    let counts = |unread, unseen| Some(InboxCounts { unread, unseen, exact: true });
    assert_eq!(
        marks,
        vec![
            InboxEvent::Marked { id: b, mark: "read".into(), counts: counts(3, 3) },
            InboxEvent::MarkedAll { mark: "seen".into(), through: seen_at, counts: counts(3, 0) }
        ]
    );
}

async fn tickets_are_single_use_short_lived_and_the_persons_own(env: Env) {
    let viewer = env.ports.directory.user(u1()).await.unwrap().unwrap();
    let ticket = realtime::issue(&env.ports.tickets(), &viewer, u1()).unwrap();
    assert_eq!(realtime::redeem(&env.ports.tickets(), &ticket).await.unwrap(), u1());
    let reused = realtime::redeem(&env.ports.tickets(), &ticket).await.unwrap_err();
    assert_eq!((reused.status(), reused.parameter.as_deref()), (401, Some("ticket")), "{reused:?}");

    let late = realtime::issue(&env.ports.tickets(), &viewer, u1()).unwrap();
    env.clock.advance(Duration::seconds(realtime::TICKET_SECONDS + 1));
    assert_eq!(realtime::redeem(&env.ports.tickets(), &late).await.unwrap_err().status(), 401, "expired");

    let other = Uuid::parse_str("22222222-2222-4222-8222-222222222222").unwrap();
    assert_eq!(
        realtime::issue(&env.ports.tickets(), &viewer, other).unwrap_err().status(),
        403,
        "another's center"
    );

    let good = realtime::issue(&env.ports.tickets(), &viewer, u1()).unwrap();
    let (text, _) = good.rsplit_once('.').unwrap();
    let forged_user = good.replacen(U1, "22222222-2222-4222-8222-222222222222", 1);
    for forged in [format!("{text}.AAAA"), forged_user, "x".into(), String::new(), "a.b.c.d".into()] {
        assert_eq!(
            realtime::redeem(&env.ports.tickets(), &forged).await.unwrap_err().status(),
            401,
            "{forged}"
        );
    }
    assert_eq!(
        realtime::redeem(&env.ports.tickets(), &good).await.unwrap(),
        u1(),
        "forgeries used nothing up"
    );

    // Through the route: `me`, 201, not cached; someone else's id refused.
    let route = |token: &str, user: &str| {
        GatewayRequest::new(
            "POST",
            "/users/{userId}/realtime-ticket",
            &format!("/users/{user}/realtime-ticket"),
        )
        .path_param("userId", user)
        .header("authorization", &format!("Bearer {token}"))
        .into_request()
    };
    let resp = inbox::handle(&env.ports, route("demo-user-1-token", "me")).await;
    assert_eq!(resp.status(), 201, "{}", body_text(&resp));
    assert_eq!(resp.headers()["cache-control"], "no-store");
    let answer: Value = serde_json::from_str(&body_text(&resp)).unwrap();
    assert_eq!(answer["expiresIn"], realtime::TICKET_SECONDS);
    assert_eq!(
        realtime::redeem(&env.ports.tickets(), answer["ticket"].as_str().unwrap()).await.unwrap(),
        u1()
    );
    let resp = inbox::handle(&env.ports, route("demo-admin-token", U1)).await;
    assert_eq!(resp.status(), 403, "{}", body_text(&resp));
}

/// A catch-up is one bounded read: a cursor older than the center catches up (24 hours, the
/// README's promise), or more missed than one event names (100), is told as a resync, which the
/// page answers with one read of its view, not a walk through everything it missed.
async fn a_catch_up_from_long_ago_or_of_too_much_is_a_resync(env: Env) {
    let user = Uuid::new_v4();
    let now = env.clock.now();
    let deliver = |n: usize, at: chrono::DateTime<chrono::Utc>| {
        let inbox = env.ports.inbox.clone();
        async move {
            let mut entries = Vec::new();
            for i in 0..n {
                let content = InboxContent {
                    notification_id: Uuid::new_v4(),
                    origin: Origin::AppNotification,
                    title: format!("n{i}"),
                    body: "b".into(),
                    url: None,
                    override_content: None,
                    icon: IconType::Info,
                    toast: ToastType::Hidden,
                    priority: Priority::Normal,
                    actions: vec![],
                    data: None,
                    source: None,
                    created_at: at,
                    expires_at: at + Duration::days(14),
                };
                inbox.put_content(&content).await.unwrap();
                entries.push(content.entry_for(user, at));
            }
            inbox.put_entries(&entries, &shared::ports::ManualClock::new(at)).await.unwrap();
        }
    };
    let ports = env.ports.catch_up();
    // A day and an hour away, one delivered since: a resync, however little was missed.
    deliver(1, now - Duration::hours(1)).await;
    let long_ago = realtime::catch_up(&ports, user, now - Duration::hours(25)).await.unwrap();
    assert_eq!(long_ago.map(|p| p.event), Some(InboxEvent::Resync));
    // Within the day: the one missed, by id.
    let within = realtime::catch_up(&ports, user, now - Duration::hours(23)).await.unwrap().unwrap();
    assert!(matches!(&within.event, InboxEvent::New { ids, .. } if ids.len() == 1), "{within:?}");
    // A hundred missed are named; a hundred and one are a resync.
    deliver(99, now - Duration::minutes(30)).await;
    let hundred = realtime::catch_up(&ports, user, now - Duration::hours(2)).await.unwrap().unwrap();
    assert!(matches!(&hundred.event, InboxEvent::New { ids, .. } if ids.len() == 100), "{hundred:?}");
    deliver(1, now - Duration::minutes(10)).await;
    let more = realtime::catch_up(&ports, user, now - Duration::hours(2)).await.unwrap().unwrap();
    assert_eq!(more.event, InboxEvent::Resync);
    assert_eq!(
        shared::dialects::inbox::event_json(more.cursor, &more.event, true),
        json!({"type": "resync"}),
        "the page's word for it"
    );
}

end_to_end!(
    a_reconnecting_client_misses_nothing,
    tickets_are_single_use_short_lived_and_the_persons_own,
    a_catch_up_from_long_ago_or_of_too_much_is_a_resync
);

/// On AWS's shape (moto): the WebSocket API's `$connect` with a ticket makes a connection the
/// person's; a delivery and a mark are posted to it with their cursors; a connection API Gateway
/// closed answers 410 and is forgotten; `$disconnect` forgets; a bad ticket is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_connections_hear_their_persons_events_on_moto() {
    use aws_lambda_events::event::apigw::ApiGatewayWebsocketProxyRequest;
    let env = Env::moto().await;
    let viewer = env.ports.directory.user(u1()).await.unwrap().unwrap();
    let event = |route: &str, connection: &str, ticket: Option<&str>| {
        let mut e = ApiGatewayWebsocketProxyRequest::default();
        e.request_context.route_key = Some(route.into());
        e.request_context.connection_id = Some(connection.into());
        if let Some(t) = ticket {
            e.query_string_parameters =
                std::collections::HashMap::from([("ticket".to_string(), t.to_string())]).into();
        }
        e
    };
    let connection = format!("conn{}", Uuid::new_v4().simple());
    let other = format!("conn{}", Uuid::new_v4().simple());

    let refused = ::realtime::handle(&env.ports, event("$connect", &other, Some("forged.ticket.x.y"))).await;
    assert_eq!(refused.status_code, 401);
    let missing = ::realtime::handle(&env.ports, event("$connect", &other, None)).await;
    assert_eq!(missing.status_code, 400);
    let ticket = shared::service::realtime::issue(&env.ports.tickets(), &viewer, u1()).unwrap();
    let opened = ::realtime::handle(&env.ports, event("$connect", &connection, Some(&ticket))).await;
    assert_eq!(opened.status_code, 200, "{:?}", opened.body);
    let reused = ::realtime::handle(&env.ports, event("$connect", &other, Some(&ticket))).await;
    assert_eq!(reused.status_code, 401, "a ticket opens one connection");

    let a = notify_u1(&env, "a").await;
    shared::service::inbox::mark(&env.ports.center_marks(), &viewer, u1(), a, Mark::Read).await.unwrap();
    let posted = tests::posted_to(&connection).await;
    let messages: Vec<Value> = posted.iter().map(|m| serde_json::from_str(m).unwrap()).collect();
    assert_eq!(messages.len(), 2, "{posted:?}");
    let new = &messages[0]["event"];
    assert_eq!((&new["type"], &new["ids"]), (&json!("new"), &json!([a.to_string()])));
    let shown = &new["notification"];
    assert_eq!((&shown["id"], &shown["title"]), (&json!(a.to_string()), &json!("a")), "{new}");
    assert_eq!(
        (&shown["read"], &shown["seen"], &shown["archived"]),
        (&json!(false), &json!(false), &json!(false))
    );
    assert_eq!(shown["deliveredOn"], json!(env.clock.now()), "delivered at the event's cursor");
    assert_eq!(
        messages[1]["event"],
        json!({"type": "marked", "id": a.to_string(), "mark": "read", "counts": {"unread": 0, "unseen": 0, "exact": true}})
    );
    assert!(messages[0]["id"].as_str().unwrap().parse::<i64>().is_ok(), "each carries its cursor");
    assert!(tests::posted_to(&other).await.is_empty(), "a refused connection hears nothing");

    // API Gateway closed it (the client went away): the next post answers 410, it is forgotten.
    tests::close_connection(&connection).await;
    notify_u1(&env, "b").await;
    assert!(env.ports.connections.of(&[u1()], env.clock.now()).await.unwrap().is_empty(), "gone: forgotten");

    // $disconnect forgets too.
    let again = format!("conn{}", Uuid::new_v4().simple());
    let ticket = shared::service::realtime::issue(&env.ports.tickets(), &viewer, u1()).unwrap();
    assert_eq!(
        ::realtime::handle(&env.ports, event("$connect", &again, Some(&ticket))).await.status_code,
        200
    );
    assert_eq!(env.ports.connections.of(&[u1()], env.clock.now()).await.unwrap().len(), 1);
    assert_eq!(::realtime::handle(&env.ports, event("$disconnect", &again, None)).await.status_code, 200);
    assert!(env.ports.connections.of(&[u1()], env.clock.now()).await.unwrap().is_empty());
}
