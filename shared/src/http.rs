//! HTTP plumbing shared by the API handlers: reading requests the way API Gateway delivers them,
//! and answering in JSON.

use lambda_http::http::{HeaderValue, StatusCode, header};
use lambda_http::{Body, Request, RequestExt, Response};
use serde::Serialize;

use crate::error::{ApiError, ErrorKind};

/// Lambda's synchronous invocation payload cap. Larger bodies answer 413 before any parsing.
pub const MAX_BODY_BYTES: usize = 6 * 1024 * 1024;

pub fn header<'a>(req: &'a Request, name: &str) -> Option<&'a str> {
    req.headers().get(name).and_then(|v| v.to_str().ok()).map(str::trim).filter(|v| !v.is_empty())
}

pub fn query(req: &Request, name: &str) -> Option<String> {
    req.query_string_parameters_ref().and_then(|q| q.first(name)).map(str::to_string)
}

pub fn path_param(req: &Request, name: &str) -> Option<String> {
    req.path_parameters_ref().and_then(|p| p.first(name)).map(str::to_string)
}

/// The route a request to `function` takes (`crate::routes`), and the request with the route's
/// path parameters: by API Gateway's `routeKey` (its parameters are API Gateway's), or, for a
/// request without one (`$default`, an invocation by hand), by its method and path against the
/// same table, the parameters taken from the path. A route the table does not have is 404, a
/// method it does not have there 405, a route another function serves 404.
pub fn routed(
    req: Request,
    function: crate::routes::Function,
) -> Result<(&'static crate::routes::Route, Request), ApiError> {
    use crate::routes::{self, Match};
    let key = match req.request_context_ref() {
        Some(lambda_http::request::RequestContext::ApiGatewayV2(ctx)) => ctx.route_key.as_deref(),
        _ => None,
    };
    let (route, req) = match key.and_then(routes::by_key) {
        Some(route) => (route, req),
        None => {
            let (method, path) = (req.method().as_str().to_string(), req.uri().path().to_string());
            match routes::find(&method, &path) {
                Match::Found(route, params) => {
                    let given = req.path_parameters_ref().is_some_and(|p| !p.is_empty());
                    let req = if given || params.is_empty() {
                        req
                    } else {
                        let params: std::collections::HashMap<String, String> = params.into_iter().collect();
                        req.with_path_parameters(params)
                    };
                    (route, req)
                }
                Match::MethodNotAllowed(allowed) => {
                    return Err(ApiError::new(
                        ErrorKind::MethodNotAllowed,
                        format!("{method} is not allowed on {path} (allowed: {})", allowed.join(", ")),
                    ));
                }
                Match::NotFound => {
                    return Err(ApiError::new(ErrorKind::NotFound, format!("no route for {method} {path}")));
                }
            }
        }
    };
    if route.function() != function {
        return Err(not_served(route));
    }
    Ok((route, req))
}

/// A route this function does not serve (API Gateway sends it elsewhere).
pub fn not_served(route: &crate::routes::Route) -> ApiError {
    ApiError::new(ErrorKind::NotFound, format!("{} is not served here", route.key()))
}

/// The request body, refusing anything over the payload cap.
pub fn body(req: &Request) -> Result<&[u8], ApiError> {
    let bytes: &[u8] = match req.body() {
        Body::Empty => &[],
        Body::Text(t) => t.as_bytes(),
        Body::Binary(b) => b,
        _ => &[],
    };
    if bytes.len() > MAX_BODY_BYTES {
        return Err(ApiError::new(
            ErrorKind::PayloadTooLarge,
            format!("request body is {} bytes; the limit is {MAX_BODY_BYTES}", bytes.len()),
        ));
    }
    Ok(bytes)
}

pub fn respond(status: u16, content_type: &str, body: String) -> Response<Body> {
    let mut resp = Response::new(Body::Text(body));
    *resp.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_str(content_type).unwrap_or(HeaderValue::from_static("application/json")),
    );
    resp
}

pub fn json<T: Serialize>(status: u16, value: &T) -> Response<Body> {
    let body = serde_json::to_string(value).unwrap_or_else(|_| "null".into());
    respond(status, "application/json", body)
}

/// Adds `Retry-After` where the error carries one.
pub fn with_retry_after(mut resp: Response<Body>, err: &ApiError) -> Response<Body> {
    if let Some(secs) = err.retry_after
        && let Ok(v) = HeaderValue::from_str(&secs.to_string())
    {
        resp.headers_mut().insert(header::RETRY_AFTER, v);
    }
    resp
}

/// An error in the envelope of the group-send / sent-history dialects (`dialects::ws`).
pub fn error(err: &ApiError) -> Response<Body> {
    with_retry_after(json(err.status(), &crate::dialects::ws::envelope(err)), err)
}

/// Response body as text (for tests and the local runner).
pub fn body_text(resp: &Response<Body>) -> String {
    match resp.body() {
        Body::Text(t) => t.clone(),
        Body::Binary(b) => String::from_utf8_lossy(b).into_owned(),
        _ => String::new(),
    }
}

/// Builds the request API Gateway (HTTP API, payload 2.0) would hand the function, converted by
/// `lambda_http` exactly as in Lambda. The local runner and the handler tests use it, so both
/// exercise the same conversion as production.
#[derive(Debug, Clone, Default)]
pub struct GatewayRequest {
    pub method: String,
    /// Route template, e.g. `/users/{userId}/notifications`.
    pub route: String,
    /// Concrete path, e.g. `/users/1111.../notifications`.
    pub path: String,
    /// Raw query string without `?`.
    pub query: String,
    pub headers: Vec<(String, String)>,
    pub path_parameters: Vec<(String, String)>,
    pub body: Option<Vec<u8>>,
}

impl GatewayRequest {
    pub fn new(method: &str, route: &str, path: &str) -> Self {
        GatewayRequest { method: method.into(), route: route.into(), path: path.into(), ..Default::default() }
    }

    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_ascii_lowercase(), value.into()));
        self
    }

    pub fn query(mut self, query: &str) -> Self {
        self.query = query.into();
        self
    }

    pub fn path_param(mut self, name: &str, value: &str) -> Self {
        // One value a name, as API Gateway gives them: a second call replaces the first.
        self.path_parameters.retain(|(n, _)| n != name);
        self.path_parameters.push((name.into(), value.into()));
        self
    }

    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = Some(body.into());
        self
    }

    /// The API Gateway v2 event.
    pub fn event(&self) -> aws_lambda_events::event::apigw::ApiGatewayV2httpRequest {
        use aws_lambda_events::event::apigw::ApiGatewayV2httpRequest;
        use base64::Engine;
        use lambda_http::http::{HeaderMap, HeaderName, Method};

        let mut headers = HeaderMap::new();
        for (k, v) in &self.headers {
            if let (Ok(name), Ok(value)) = (HeaderName::from_bytes(k.as_bytes()), HeaderValue::from_str(v)) {
                headers.append(name, value);
            }
        }
        let mut ev = ApiGatewayV2httpRequest::default();
        ev.version = Some("2.0".into());
        ev.route_key = Some(format!("{} {}", self.method, self.route));
        ev.raw_path = Some(self.path.clone());
        ev.raw_query_string = Some(self.query.clone());
        ev.headers = headers;
        ev.path_parameters = self.path_parameters.iter().cloned().collect();
        ev.request_context.http.method = Method::from_bytes(self.method.as_bytes()).unwrap_or(Method::GET);
        ev.request_context.http.path = Some(self.path.clone());
        ev.request_context.route_key = ev.route_key.clone();
        ev.request_context.stage = Some("$default".into());
        if let Some(body) = &self.body {
            match std::str::from_utf8(body) {
                Ok(text) => ev.body = Some(text.to_string()),
                Err(_) => {
                    ev.body = Some(base64::engine::general_purpose::STANDARD.encode(body));
                    ev.is_base64_encoded = true;
                }
            }
        }
        ev
    }

    /// The `lambda_http` request the handler receives.
    pub fn into_request(self) -> Request {
        lambda_http::request::LambdaRequest::ApiGatewayV2(self.event()).into()
    }
}

/// The header of every answer that names its request: the id every log line of its work
/// carries, into the functions that deliver what it asked for (`crate::trace`).
pub const REQUEST_ID: &str = "x-request-id";

/// Serves `req` with `serve` inside a new request's trace (a new id, given in [`REQUEST_ID`]).
pub async fn traced<F, Fut>(req: Request, serve: F) -> Response<Body>
where
    F: FnOnce(Request) -> Fut,
    Fut: std::future::Future<Output = Response<Body>>,
{
    let id = uuid::Uuid::new_v4().to_string();
    let mut resp = crate::trace::within(crate::trace::Trace::request(id.clone()), serve(req)).await;
    if let Ok(value) = HeaderValue::from_str(&id) {
        resp.headers_mut().insert(REQUEST_ID, value);
    }
    resp
}

/// A handler's answer: its response, or its error in the group-send envelope, logged when it is
/// the service's fault (5xx) rather than the caller's.
pub fn answer(result: Result<Response<Body>, ApiError>, what: &str) -> Response<Body> {
    match result {
        Ok(resp) => resp,
        Err(e) => {
            log_failure(&e, what);
            error(&e)
        }
    }
}

/// Logs an error that is the service's fault (5xx) with its cause, which the answer never
/// carries; the caller's mistakes (4xx) are not logged. Every dialect's error path calls it.
pub fn log_failure(e: &ApiError, what: &str) {
    if e.status() >= 500 {
        let cause = e.cause.as_deref().unwrap_or("-");
        tracing::error!(status = e.status(), error = %e, cause, "{what} failed");
    }
}

/// The idempotency scope of a request: its caller and its route (`service::idempotency::scope`).
pub fn idempotency_scope(caller: &str, req: &Request) -> String {
    crate::service::idempotency::scope(caller, req.method().as_str(), req.uri().path())
}

/// The raw `Idempotency-Key` of a request: present but empty or not text is still a key (and
/// is refused as malformed), never silently "no key".
pub fn idempotency_key(req: &Request) -> Option<&str> {
    req.headers().get(crate::service::idempotency::HEADER).map(|v| v.to_str().unwrap_or("\u{0}"))
}
