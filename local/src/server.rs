//! The HTTP front of the local runner: each request becomes the API Gateway v2 event Lambda
//! would receive (converted by `lambda_http` as in Lambda) and goes to the same handler.

use std::convert::Infallible;
use std::net::SocketAddr;

use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use shared::adapters::memory::MemoryRealtime;
use shared::error::{ApiError, ErrorKind};
use shared::http::{GatewayRequest, MAX_BODY_BYTES};
use shared::runtime::Ports;
use std::sync::Arc;

use crate::response::{HyperResponse, error, to_hyper};
use crate::routes::{self, Match};

/// A query parameter, percent-decoded.
fn query_param(query: &str, name: &str) -> Option<String> {
    let req = GatewayRequest::new("GET", "/", "/").query(query).into_request();
    shared::http::query(&req, name)
}

/// Serves one request.
pub async fn serve(ports: &Ports, hub: &MemoryRealtime, req: hyper::Request<Incoming>) -> HyperResponse {
    let method = req.method().as_str().to_string();
    let path = req.uri().path().to_string();
    let query = req.uri().query().unwrap_or_default().to_string();
    if method == "GET" && path == "/health" {
        return to_hyper(shared::http::json(200, &serde_json::json!({ "status": "ok" })));
    }
    if method == "GET" && path == "/realtime" {
        let last_event = req.headers().get("last-event-id").and_then(|v| v.to_str().ok()).map(str::to_string);
        let after = query_param(&query, "after").or(last_event);
        let ticket = query_param(&query, "ticket");
        return crate::realtime::stream(ports, hub, ticket.as_deref(), after.as_deref()).await;
    }

    let (route, params) = match routes::find(&method, &path) {
        Match::Found(route, params) => (route, params),
        Match::MethodNotAllowed(allowed) => {
            let mut resp = error(ApiError::new(
                ErrorKind::MethodNotAllowed,
                format!("{method} is not allowed on {path}"),
            ));
            if let Ok(v) = hyper::header::HeaderValue::from_str(&allowed.join(", ")) {
                resp.headers_mut().insert(hyper::header::ALLOW, v);
            }
            return resp;
        }
        Match::NotFound => {
            return error(ApiError::new(ErrorKind::NotFound, format!("no route for {method} {path}")));
        }
    };
    let headers: Vec<(String, String)> = req
        .headers()
        .iter()
        .filter_map(|(k, v)| Some((k.as_str().to_string(), v.to_str().ok()?.to_string())))
        .collect();
    // The same cap as Lambda's synchronous payload limit, enforced before reading it all.
    let body = match Limited::new(req.into_body(), MAX_BODY_BYTES).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e) if e.downcast_ref::<http_body_util::LengthLimitError>().is_some() => {
            return error(ApiError::new(
                ErrorKind::PayloadTooLarge,
                format!("request body is over the {MAX_BODY_BYTES}-byte limit"),
            ));
        }
        Err(e) => return error(ApiError::invalid("body", format!("could not read the request body: {e}"))),
    };
    let mut gateway = GatewayRequest::new(&method, route.path, &path).query(&query);
    gateway.headers = headers;
    gateway.path_parameters = params;
    if !body.is_empty() {
        gateway = gateway.body(body.to_vec());
    }
    to_hyper(routes::call(route.function(), ports, gateway.into_request()).await)
}

/// Accepts connections until the process ends.
pub async fn listen(ports: Ports, hub: Arc<MemoryRealtime>, addr: SocketAddr) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let at = listener.local_addr()?;
    tracing::info!("listening on http://{at}");
    tracing::info!("web inbox: http://{at}/ (sign in with demo-user-1-token … demo-user-9-token)");
    run(ports, hub, listener).await
}

/// Serves on an already bound listener (tests bind port 0). `hub` is the realtime hub the ports
/// publish to.
pub async fn run(
    ports: Ports,
    hub: Arc<MemoryRealtime>,
    listener: tokio::net::TcpListener,
) -> std::io::Result<()> {
    loop {
        let (stream, _) = listener.accept().await?;
        let ports = ports.clone();
        let hub = hub.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| {
                let ports = ports.clone();
                let hub = hub.clone();
                async move { Ok::<_, Infallible>(serve(&ports, &hub, req).await) }
            });
            if let Err(e) = http1::Builder::new().serve_connection(TokioIo::new(stream), service).await {
                tracing::debug!(error = %e, "connection closed with an error");
            }
        });
    }
}
