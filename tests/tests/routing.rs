//! The functions dispatch on API Gateway's `routeKey` against the one route table
//! (`shared::routes`): each route reaches the operation its row names, whatever the concrete
//! path looks like; a function asked for a route it does not serve answers 404; a request with no
//! `routeKey` is routed by its method and path against the same table.

use serde_json::Value;
use shared::http::{GatewayRequest, body_text};
use shared::routes::{Function, ROUTES};
use tests::Env;

const U1: &str = "11111111-1111-4111-8111-111111111111";

/// A concrete path for a route template.
fn concrete(path: &str) -> String {
    path.replace("{userId}", U1)
        .replace("{id}", "0d3b5a52-7c0e-4d6e-9a59-2f2b8c1e0a11")
        .replace("{deviceId}", "device-1")
        .replace("{departmentUUID}", "0d3b5a52-7c0e-4d6e-9a59-2f2b8c1e0a12")
        .replace("{userUUID}", U1)
}

#[tokio::test]
async fn every_route_reaches_its_function_and_no_other() {
    let env = Env::memory().await;
    for route in ROUTES {
        let req = || GatewayRequest::new(route.method, route.path, &concrete(route.path));
        let resp = local::routes::call(route.function(), &env.ports, req().into_request()).await;
        let text = body_text(&resp);
        assert!(
            !matches!(resp.status().as_u16(), 404 | 405),
            "{}: served by its function, got {} {text}",
            route.key(),
            resp.status()
        );
        for other in [Function::Send, Function::Notify, Function::SentHistory, Function::Inbox] {
            if other == route.function() {
                continue;
            }
            let resp = local::routes::call(other, &env.ports, req().into_request()).await;
            assert_eq!(resp.status(), 404, "{} is not {other:?}'s: {}", route.key(), body_text(&resp));
        }
    }
}

/// The route key decides, not the path: API Gateway has matched the path already.
#[tokio::test]
async fn the_route_key_decides_not_the_path() {
    let env = Env::memory().await;
    let count = GatewayRequest::new(
        "GET",
        "/users/{userId}/notifications/count",
        &format!("/users/{U1}/notifications"),
    )
    .path_param("userId", U1)
    .header("authorization", "Bearer demo-user-1-token");
    let resp = inbox::handle(&env.ports, count.into_request()).await;
    let answer: Value = serde_json::from_str(&body_text(&resp)).unwrap();
    assert_eq!(resp.status(), 200, "{answer}");
    assert!(answer.get("unread").is_some() && answer.get("notifications").is_none(), "the count: {answer}");

    // No route key (`$default`): the method and path against the same table, the path's
    // parameters taken from it.
    let mut list = GatewayRequest::new("GET", "", &format!("/users/{U1}/notifications"))
        .header("authorization", "Bearer demo-user-1-token")
        .event();
    list.route_key = Some("$default".into());
    list.request_context.route_key = Some("$default".into());
    let resp =
        inbox::handle(&env.ports, lambda_http::request::LambdaRequest::ApiGatewayV2(list).into()).await;
    let answer: Value = serde_json::from_str(&body_text(&resp)).unwrap();
    assert_eq!(resp.status(), 200, "{answer}");
    assert!(answer.get("notifications").is_some(), "the list: {answer}");

    // A route key of no route, and no path of one: 404; a method the path does not have: 405.
    let resp = inbox::handle(&env.ports, GatewayRequest::new("GET", "/nope", "/nope").into_request()).await;
    assert_eq!(resp.status(), 404, "{}", body_text(&resp));
    let resp = inbox::handle(
        &env.ports,
        GatewayRequest::new("PUT", "/users/{userId}/email", &format!("/users/{U1}/email")).into_request(),
    )
    .await;
    assert_eq!(resp.status(), 405, "{}", body_text(&resp));
}
