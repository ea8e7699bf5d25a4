//! Answers of the local runner's HTTP front as hyper responses: a handler's `lambda_http`
//! response converted, and an error in the service's envelope. Shared by the request path
//! (`server`) and the realtime stream (`realtime`), which do not import each other.

use std::convert::Infallible;

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use lambda_http::Body;
use shared::error::ApiError;

pub(crate) type HyperResponse = hyper::Response<BoxBody<Bytes, Infallible>>;

pub(crate) fn to_hyper(resp: lambda_http::Response<Body>) -> HyperResponse {
    let (parts, body) = resp.into_parts();
    let bytes = match body {
        Body::Text(t) => Bytes::from(t),
        Body::Binary(b) => Bytes::from(b),
        _ => Bytes::new(),
    };
    hyper::Response::from_parts(parts, Full::new(bytes).boxed())
}

pub(crate) fn error(e: ApiError) -> HyperResponse {
    to_hyper(shared::http::error(&e))
}
