//! The notify function's composition: its [`Deps`] from the bag of every port. Only this
//! module, `main.rs` and tests see the bag.

use lambda_http::{Body, Request, Response};
use shared::runtime::Ports;

use super::Deps;

impl<'a> Deps<'a> {
    pub fn new(ports: &'a Ports) -> Deps<'a> {
        Deps {
            accounts: &*ports.directory,
            claims: &*ports.notifications,
            clock: &*ports.clock,
            ids: &*ports.ids,
            notify: ports.notify(),
            cancel: ports.cancel(),
            log: ports.notification_log(),
            recall: ports.recall(),
        }
    }
}

/// A request, served with the ports of `ports` (the local runner, the suites).
pub async fn handle(ports: &Ports, req: Request) -> Response<Body> {
    super::handle_request(&Deps::new(ports), req).await
}
