//! Handler of GET /users/{userId}/notifications and POST|DELETE /users/{userId}/notifications/{id}/dismiss.
//! Not built yet: answers 501 with the error envelope until its issue lands.

use lambda_http::{Body, Request, Response};
use shared::runtime::Ports;

pub async fn handle(_ports: &Ports, req: Request) -> Response<Body> {
    shared::http::not_implemented(&format!("{} {}", req.method(), req.uri().path()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn answers_501_with_the_envelope() {
        let ports = shared::runtime::MemoryPorts::system().ports;
        let resp = handle(&ports, Request::default()).await;
        assert_eq!(resp.status(), 501);
        let body: serde_json::Value = serde_json::from_str(&shared::http::body_text(&resp)).unwrap();
        assert_eq!(body["exception"], "WSNotImplementedException");
    }
}
