use std::sync::Arc;

use lambda_http::{Body, Response};
use serde_json::Value;
use shared::http::{GatewayRequest, body_text};
use shared::ports::{ManualClock, SequentialIds};
use shared::runtime::MemoryPorts;

use super::*;

async fn ports() -> MemoryPorts {
    let p = MemoryPorts::new(
        Arc::new(ManualClock::new("2026-11-22T09:00:00Z".parse().unwrap())),
        Arc::new(SequentialIds::default()),
    );
    p.load_demo_directory().await.unwrap();
    p
}

async fn get(p: &MemoryPorts, token: Option<&str>, query: &str) -> Response<Body> {
    let mut req =
        GatewayRequest::new("GET", "/rest/notification/sent", "/rest/notification/sent").query(query);
    if let Some(t) = token {
        req = req.header(AUTH_TOKEN, t);
    }
    handle(&p.ports, req.into_request()).await
}

fn error_of(resp: &Response<Body>) -> (u16, String, Option<String>) {
    let body: Value = serde_json::from_str(&body_text(resp)).unwrap();
    (
        resp.status().as_u16(),
        body["exception"].as_str().unwrap_or_default().to_string(),
        body["parameter"].as_str().map(str::to_string),
    )
}

/// Status, exception and parameter of an error answer.
type Expected<'a> = (u16, &'a str, Option<String>);

#[tokio::test]
async fn errors_have_status_exception_and_parameter() {
    let p = ports().await;
    let s = |x: &str| Some(x.to_string());
    let cases: Vec<(Option<&str>, &str, Expected)> = vec![
        (None, "version=1&broadcastType=GT&companyId=3", (401, "WSInvalidAuthTokenException", s(AUTH_TOKEN))),
        (
            Some("bogus"),
            "version=1&broadcastType=GT&companyId=3",
            (401, "WSInvalidAuthTokenException", s(AUTH_TOKEN)),
        ),
        (
            Some("demo-admin-token"),
            "version=2&broadcastType=GT&companyId=3",
            (400, "WSUnsupportedVersionException", s("version")),
        ),
        (
            Some("demo-admin-token"),
            "version=1&broadcastType=GT",
            (400, "WSInvalidParameterException", s("companyId")),
        ),
        (Some("demo-admin-token"), "version=1", (400, "WSInvalidParameterException", s("broadcastType"))),
        (
            Some("demo-admin-token"),
            "version=1&broadcastType=GE&eventUUID=11111111-0000-4000-8000-000000000000",
            (404, "WSEventNotFoundException", s("eventUUID")),
        ),
        (
            Some("demo-admin-token"),
            "version=1&broadcastType=GT&companyId=3&nextToken=forged",
            (400, "WSInvalidParameterException", s("nextToken")),
        ),
        (
            Some("demo-admin-4-token"),
            "version=1&broadcastType=GT&companyId=3",
            (403, "WSInsufficientPrivilegesException", s("companyId")),
        ),
        (
            Some("demo-admin-4-token"),
            "version=1&broadcastType=GE&eventUUID=ed90fcd2-cbb4-49b8-9be4-a14ccbc2d1e8",
            (403, "WSInsufficientPrivilegesException", s("eventUUID")),
        ),
        (
            Some("demo-admin-4-token"),
            "version=1&broadcastType=GA&brochureId=4",
            (403, "WSInsufficientPrivilegesException", s("brochureId")),
        ),
        (
            Some("demo-user-1-token"),
            "version=1&broadcastType=GT&companyId=3",
            (403, "WSInsufficientPrivilegesException", None),
        ),
        (
            Some("demo-event-token"),
            "version=1&broadcastType=GT&companyId=3",
            (403, "WSInsufficientPrivilegesException", None),
        ),
    ];
    for (token, query, (status, exception, parameter)) in cases {
        assert_eq!(
            error_of(&get(&p, token, query).await),
            (status, exception.to_string(), parameter),
            "{query}"
        );
    }
}

#[tokio::test]
async fn an_empty_history_is_an_empty_array() {
    let p = ports().await;
    let resp = get(&p, Some("demo-admin-token"), "version=1&broadcastType=GT&companyId=3").await;
    assert_eq!((resp.status().as_u16(), body_text(&resp)), (200, "[]".to_string()));
    assert!(resp.headers().get(NEXT_TOKEN_HEADER).is_none());
    // The spec's first example: a company's GE history, no event named.
    let resp = get(&p, Some("demo-admin-token"), "version=1&broadcastType=GE&companyId=3").await;
    assert_eq!((resp.status().as_u16(), body_text(&resp)), (200, "[]".to_string()));
    // Cancelled events still answer (with their history).
    let resp = get(
        &p,
        Some("demo-event-token"),
        "version=1&broadcastType=ET&eventUUID=0c0c0c0c-0000-4000-8000-00000000000c",
    )
    .await;
    assert_eq!(resp.status(), 200);
}
