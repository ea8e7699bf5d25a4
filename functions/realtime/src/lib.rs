//! Handler of the realtime function: API Gateway's WebSocket routes.
//! - `$connect?ticket=…`: the ticket (single-use, a minute, from `POST /users/me/realtime-ticket`)
//!   makes the connection its person's; refused (401, 400) otherwise, and API Gateway closes it.
//! - `$disconnect`: the connection is forgotten.
//! - `$default`: clients send nothing; answered so that a stray message is not an error.
//!
//! Events reach connections from the functions that deliver and mark (`adapters::websocket`).
//! A client that reconnects asks the center for what was delivered since its last event's id
//! (`deliveredSince`).
//!
//! It takes [`Deps`], the ports it uses; `wiring.rs` builds them from the bag.

mod wiring;

use aws_lambda_events::encodings::Body;
use aws_lambda_events::event::apigw::{ApiGatewayProxyResponse, ApiGatewayWebsocketProxyRequest};
use shared::service::realtime::ConnectionDeps;

pub use wiring::handle;

/// What the realtime function uses.
pub struct Deps<'a> {
    pub connections: ConnectionDeps<'a>,
}

fn answer(status: i64, body: String) -> ApiGatewayProxyResponse {
    let mut resp = ApiGatewayProxyResponse::default();
    resp.status_code = status;
    resp.body = Some(Body::Text(body));
    resp
}

pub async fn handle_event(
    deps: &Deps<'_>,
    event: ApiGatewayWebsocketProxyRequest,
) -> ApiGatewayProxyResponse {
    let context = &event.request_context;
    let route = context.route_key.as_deref().unwrap_or_default();
    let Some(connection) = context.connection_id.as_deref() else {
        return answer(400, "not a WebSocket event: no connection id".into());
    };
    let outcome = match route {
        "$connect" => {
            let ticket = event.query_string_parameters.first("ticket");
            shared::service::realtime::connect(&deps.connections, ticket, connection).await.map(|user| {
                tracing::info!(%user, connection, "realtime connection opened");
            })
        }
        "$disconnect" => shared::service::realtime::disconnect(&deps.connections, connection).await,
        _ => Ok(()),
    };
    match outcome {
        Ok(()) => answer(200, String::new()),
        Err(e) => {
            tracing::info!(connection, route, error = %e.message, "realtime connection refused");
            answer(
                i64::from(e.status()),
                serde_json::json!({"message": e.message, "parameter": e.parameter}).to_string(),
            )
        }
    }
}
