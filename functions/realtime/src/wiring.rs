//! The realtime function's composition: its [`Deps`] from the bag of every port. Only this
//! module, `main.rs` and tests see the bag.

use aws_lambda_events::event::apigw::{ApiGatewayProxyResponse, ApiGatewayWebsocketProxyRequest};
use shared::runtime::Ports;

use super::Deps;

impl<'a> Deps<'a> {
    pub fn new(ports: &'a Ports) -> Deps<'a> {
        Deps { connections: ports.connections() }
    }
}

/// An event, served with the ports of `ports` (the local runner, the suites).
pub async fn handle(ports: &Ports, event: ApiGatewayWebsocketProxyRequest) -> ApiGatewayProxyResponse {
    super::handle_event(&Deps::new(ports), event).await
}
