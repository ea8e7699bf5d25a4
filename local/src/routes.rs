//! The HTTP API's one route table (`shared::routes`, equal to the template's `HttpApi` events: a
//! test checks it) and the handler each function serves it with.

use lambda_http::{Body, Request, Response};
use shared::runtime::Ports;

pub use shared::routes::{Function, Match, Op, ROUTES, Route, by_key, find};

/// `function`'s handler, as Lambda would invoke it.
pub async fn call(function: Function, ports: &Ports, req: Request) -> Response<Body> {
    match function {
        Function::Send => send::handle(ports, req).await,
        Function::Notify => notify::handle(ports, req).await,
        Function::SentHistory => sent_history::handle(ports, req).await,
        Function::Inbox => inbox::handle(ports, req).await,
    }
}
