//! Every `events/` sample parses into the event type its function's handler takes, and the
//! group-send samples succeed against the demo directory.

use std::path::PathBuf;

use aws_lambda_events::event::apigw::ApiGatewayV2httpRequest;
use aws_lambda_events::event::sqs::SqsEvent;
use shared::model::Audience;

fn samples() -> Vec<(String, String)> {
    let dir = tests::repo_root().join("events");
    let mut out: Vec<(String, String)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .map(|p: PathBuf| {
            (p.file_stem().unwrap().to_string_lossy().into_owned(), std::fs::read_to_string(&p).unwrap())
        })
        .collect();
    out.sort();
    out
}

#[test]
fn every_sample_parses_into_its_handlers_event_type() {
    let all = samples();
    assert!(!all.is_empty());
    for (name, text) in &all {
        let function = ["sent-history", "send", "notify", "inbox", "fanout", "deliver", "realtime"]
            .into_iter()
            .find(|f| name.starts_with(&format!("{f}-")))
            .unwrap_or_else(|| {
                panic!("events/{name}.json: name must start with its function's package name")
            });
        let parsed = match function {
            "fanout" => serde_json::from_str::<fanout::Trigger>(text).map(|_| ()),
            "deliver" => serde_json::from_str::<SqsEvent>(text).map(|_| ()),
            "realtime" => {
                serde_json::from_str::<aws_lambda_events::event::apigw::ApiGatewayWebsocketProxyRequest>(text)
                    .map(|_| ())
            }
            _ => serde_json::from_str::<ApiGatewayV2httpRequest>(text).map(|_| ()),
        };
        parsed.unwrap_or_else(|e| panic!("events/{name}.json does not parse for {function}: {e}"));
    }
    let fanout_kinds: Vec<_> = all
        .iter()
        .filter(|(n, _)| n.starts_with("fanout-"))
        .map(|(_, t)| {
            matches!(serde_json::from_str::<fanout::Trigger>(t).unwrap(), fanout::Trigger::Queue(_))
        })
        .collect();
    assert!(fanout_kinds.contains(&true) && fanout_kinds.contains(&false), "a queue and a scheduler sample");
}

#[tokio::test]
async fn send_samples_succeed_against_the_demo_directory() {
    let env = tests::Env::memory().await;
    let expected = [("send-ge-v2", "3"), ("send-gt-v2", "4")];
    let sends = samples().into_iter().filter(|(n, _)| n.starts_with("send-")).filter(|(n, _)| {
        !["send-cancel", "send-change", "send-retract", "send-correct"].contains(&n.as_str())
            && !n.starts_with("send-webhook-")
    });
    for (name, text) in sends {
        let event: ApiGatewayV2httpRequest = serde_json::from_str(&text).unwrap();
        let req = lambda_http::request::LambdaRequest::ApiGatewayV2(event).into();
        let resp = send::handle(&env.ports, req).await;
        let body = shared::http::body_text(&resp);
        assert_eq!(resp.status(), 200, "events/{name}.json: {body}");
        if let Some((_, answer)) = expected.iter().find(|(n, _)| *n == name) {
            assert_eq!(body, *answer, "events/{name}.json");
        } else {
            assert!(body.contains("notificationScheduleId"), "events/{name}.json: {body}");
        }
    }
}

/// The change and cancel samples, pointed at the scheduled sample's send, change it and cancel it
/// (the cancel sample as it is names the spec's example id 123, which this fresh directory has
/// not reached: 404); cancelled again, it answers the same.
#[tokio::test]
async fn the_cancel_sample_cancels_the_scheduled_sample() {
    let env = tests::Env::memory().await;
    let all = samples();
    let text = |name: &str| all.iter().find(|(n, _)| n == name).map(|(_, t)| t.clone()).unwrap();
    let ports = &env.ports;
    let call = |text: String| async move {
        let event: ApiGatewayV2httpRequest = serde_json::from_str(&text).unwrap();
        let resp = send::handle(ports, lambda_http::request::LambdaRequest::ApiGatewayV2(event).into()).await;
        (
            resp.status().as_u16(),
            serde_json::from_str::<serde_json::Value>(&shared::http::body_text(&resp)).unwrap(),
        )
    };
    let (status, body) = call(text("send-cancel")).await;
    assert_eq!((status, body["exception"].as_str()), (404, Some("WSNotFoundException")), "{body}");
    let (status, sent) = call(text("send-gt-v3-scheduled")).await;
    assert_eq!(status, 200, "{sent}");
    let id = sent["notificationScheduleId"].as_u64().unwrap();
    let point =
        |name: &str| text(name).replace("/123", &format!("/{id}")).replace("\"123\"", &format!("\"{id}\""));
    let (status, changed) = call(point("send-change")).await;
    assert_eq!(status, 200, "{changed}");
    assert_eq!(changed["message"], "Team meeting moved to 4pm");
    assert_eq!(changed["scheduleLocalDateTime"], "2030-01-15T10:00:00");
    let cancel = point("send-cancel");
    for repeated in [false, true] {
        let (status, body) = call(cancel.clone()).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["notificationScheduleId"], id);
        assert_eq!(body["status"], "cancelled");
        assert_eq!(body["peopleReached"], 0, "a scheduled send reached nobody");
        assert_eq!(body["alreadyCancelled"], repeated);
    }
}

/// The correct and retract samples, pointed at the UN sample's send once it is delivered,
/// correct it and retract it (as they are, naming the spec's example id 123: 404); retracted
/// again, the answer is the same.
#[tokio::test]
async fn the_retract_and_correct_samples_recall_a_delivered_sample() {
    let env = tests::Env::memory().await;
    let all = samples();
    let text = |name: &str| all.iter().find(|(n, _)| n == name).map(|(_, t)| t.clone()).unwrap();
    let ports = &env.ports;
    let call = |text: String| async move {
        let event: ApiGatewayV2httpRequest = serde_json::from_str(&text).unwrap();
        let resp = send::handle(ports, lambda_http::request::LambdaRequest::ApiGatewayV2(event).into()).await;
        (
            resp.status().as_u16(),
            serde_json::from_str::<serde_json::Value>(&shared::http::body_text(&resp)).unwrap(),
        )
    };
    for name in ["send-retract", "send-correct"] {
        let (status, body) = call(text(name)).await;
        assert_eq!(
            (status, body["exception"].as_str()),
            (404, Some("WSNotFoundException")),
            "{name}: {body}"
        );
    }
    let (status, sent) = call(text("send-un-v4")).await;
    assert_eq!(status, 200, "{sent}");
    local::workers::run_until_idle(&env.ports, env.max_receives).await.unwrap();
    let id = sent["notificationScheduleId"].as_u64().unwrap();
    let point =
        |name: &str| text(name).replace("/123", &format!("/{id}")).replace("\"123\"", &format!("\"{id}\""));
    let (status, corrected) = call(point("send-correct")).await;
    assert_eq!(status, 200, "{corrected}");
    assert_eq!(corrected["message"], "Team meeting is in room 2, not room 1");
    let n = env.ports.notifications.get_by_schedule_id(id).await.unwrap().unwrap();
    let Audience::Users { user_ids } = &n.audience else { panic!("a UN send names its people") };
    let had: Vec<_> = user_ids.clone();
    assert!(!had.is_empty());
    for person in &had {
        assert!(env.ports.inbox.get(*person, n.id).await.unwrap().is_some());
    }
    for repeated in [false, true] {
        let (status, body) = call(point("send-retract")).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(
            (body["status"].as_str(), body["alreadyRetracted"].as_bool()),
            (Some("retracted"), Some(repeated))
        );
        local::workers::run_until_idle(&env.ports, env.max_receives).await.unwrap();
    }
    for person in &had {
        assert!(
            env.ports.inbox.get(*person, n.id).await.unwrap().is_none(),
            "retracted from its named person"
        );
    }
}

/// The webhook samples, as they are, in a tenant's order: the endpoint is created (201, its
/// secret shown) and read (no secret), its secret rotated (shown again), changed when put again
/// (200, no secret); the event samples name an event this tenant never had (404); removed (204),
/// it is gone (404).
#[tokio::test]
async fn the_webhook_samples_configure_the_tenants_endpoint() {
    let env = tests::Env::memory().await;
    let call = |name: &str| {
        let text = samples().into_iter().find(|(n, _)| n == name).unwrap().1;
        let event: ApiGatewayV2httpRequest = serde_json::from_str(&text).unwrap();
        let req: lambda_http::Request = lambda_http::request::LambdaRequest::ApiGatewayV2(event).into();
        let ports = env.ports.clone();
        async move {
            let resp = send::handle(&ports, req).await;
            let text = shared::http::body_text(&resp);
            let body: serde_json::Value =
                serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text));
            (resp.status().as_u16(), body)
        }
    };
    let (status, created) = call("send-webhook-put").await;
    assert_eq!(status, 201, "{created}");
    assert!(created["secret"].as_str().is_some_and(|s| s.starts_with("whsec_")), "{created}");
    assert_eq!(created["events"].as_array().map(Vec::len), Some(3), "{created}");
    let (status, shown) = call("send-webhook-show").await;
    assert_eq!((status, shown.get("secret")), (200, None), "{shown}");
    let (status, rotated) = call("send-webhook-rotate").await;
    assert_eq!(status, 200, "{rotated}");
    assert_ne!(rotated["secret"], created["secret"], "{rotated}");
    assert_eq!(rotated["secrets"].as_array().map(Vec::len), Some(2), "the old one signs a day more");
    let (status, changed) = call("send-webhook-put").await;
    assert_eq!((status, changed.get("secret")), (200, None), "{changed}");
    for name in ["send-webhook-event", "send-webhook-replay"] {
        let (status, missing) = call(name).await;
        assert_eq!(
            (status, missing["exception"].as_str()),
            (404, Some("WSNotFoundException")),
            "{name}: {missing}"
        );
    }
    assert_eq!(call("send-webhook-delete").await.0, 204);
    assert_eq!(call("send-webhook-show").await.0, 404);
}

/// Every API sample is answered by its function against the demo directory without an error
/// (the expected status of each is below).
#[tokio::test]
async fn api_samples_are_answered_without_errors() {
    let env = tests::Env::memory().await;
    for (name, text) in samples() {
        let function = name.split('-').next().unwrap_or_default();
        if !["notify", "sent", "inbox"].contains(&function) {
            continue;
        }
        let event: ApiGatewayV2httpRequest = serde_json::from_str(&text).unwrap();
        let req: lambda_http::Request = lambda_http::request::LambdaRequest::ApiGatewayV2(event).into();
        let resp = match function {
            "notify" => notify::handle(&env.ports, req).await,
            "sent" => sent_history::handle(&env.ports, req).await,
            _ => inbox::handle(&env.ports, req).await,
        };
        let body = shared::http::body_text(&resp);
        // The dismiss, mark, cancel, log, retract and correct samples name a notification that does not exist; the unsubscribe sample's
        // signature is not one of this process's key (each deployment has its own).
        let expected = match name.as_str() {
            "inbox-dismiss"
            | "inbox-mark-read"
            | "notify-department-cancel"
            | "notify-app-cancel"
            | "notify-department-log"
            | "notify-app-log"
            | "notify-department-retract"
            | "notify-department-correct"
            | "notify-app-retract"
            | "notify-app-correct" => 404,
            // A send's log, of a send this fresh directory has not made.
            "sent-history-log" => 404,
            "inbox-mark-all-read" => 204,
            "inbox-unsubscribe" => 403,
            "inbox-register-device" => 201,
            _ => 200,
        };
        assert_eq!(resp.status(), expected, "events/{name}.json: {body}");
        assert!(
            !body.contains("no route") && !body.contains("not served"),
            "events/{name}.json: routed: {body}"
        );
    }
}

/// Deliver's samples, each from the queue its `eventSourceARN` names (a dev stage's), take that
/// queue's path: the chunk and the email job name a notification this deployment never had and
/// are failed for retry; the bounce is of an email it never sent, so nothing is counted and the
/// record is done; their dead letters are settled (nothing to give up) and done.
#[tokio::test]
async fn deliver_samples_take_their_queues_path() {
    let env = tests::Env::memory().await;
    let dev = |name: &str| format!("notifications-dev-{name}");
    let sources = deliver::Sources {
        chunks: dev("delivery"),
        email_jobs: dev("email"),
        email_events: dev("email-events"),
        dead_chunks: dev("delivery-dlq"),
        dead_email_jobs: dev("email-dlq"),
        hooks: dev("webhooks"),
    };
    let deps = deliver::Deps::new(&env.ports, sources, env.max_receives);
    let mut outcomes = Vec::new();
    for (name, text) in samples().into_iter().filter(|(n, _)| n.starts_with("deliver-")) {
        let event: SqsEvent = serde_json::from_str(&text).unwrap();
        let answer = deliver::handle_batch(&deps, event, shared::service::deadline::Deadline::NONE).await;
        outcomes.push((name, answer.batch_item_failures.len()));
    }
    assert_eq!(
        outcomes,
        [
            ("deliver-dead-chunk".to_string(), 0),
            ("deliver-dead-email-job".to_string(), 0),
            ("deliver-email-job".to_string(), 1),
            ("deliver-queue".to_string(), 1),
            ("deliver-ses-bounce".to_string(), 0),
            ("deliver-webhook".to_string(), 0)
        ]
    );
}

/// A queue record's trace as Lambda's event source mapping delivers it (the sample's
/// `messageAttributes`, in the event's own JSON shape): restored for the record's step, so its
/// lines name the sample's notification and request (`shared::trace`).
#[tokio::test]
async fn a_queue_records_trace_is_restored_for_its_step() {
    let text = std::fs::read_to_string(tests::repo_root().join("events/deliver-queue.json")).unwrap();
    let event: SqsEvent = serde_json::from_str(&text).unwrap();
    let seen = std::sync::Mutex::new(Vec::new());
    let seen = &seen;
    shared::batch::run(event, 1, |_| async move {
        seen.lock().unwrap().push(shared::trace::current());
        shared::batch::Step::Done
    })
    .await;
    let notification = "0d3b5a52-7c0e-4d6e-9a59-2f2b8c1e0a11".parse().unwrap();
    let expected =
        shared::trace::Trace::notification(notification, Some("5f0c2d9e-3b7a-4c1e-9f4d-8a6b2c0e1d37"));
    assert_eq!(*seen.lock().unwrap(), vec![expected]);
}
