//! The inbox function's composition: its [`Deps`] from the bag of every port. Only this module,
//! `main.rs` and tests see the bag.

use lambda_http::{Body, Request, Response};
use shared::runtime::Ports;

use super::Deps;

impl<'a> Deps<'a> {
    pub fn new(ports: &'a Ports) -> Deps<'a> {
        Deps {
            accounts: &*ports.directory,
            email_prefs: &*ports.directory,
            claims: &*ports.notifications,
            clock: &*ports.clock,
            center_reads: ports.center_reads(),
            center_marks: ports.center_marks(),
            tickets: ports.tickets(),
            devices: ports.devices(),
            unsubscribes: ports.unsubscribes(),
            realtime_url: ports.channels.as_ref().and_then(|c| c.realtime_url.as_deref()),
        }
    }
}

/// A request, served with the ports of `ports` (the local runner, the suites).
pub async fn handle(ports: &Ports, req: Request) -> Response<Body> {
    super::handle_request(&Deps::new(ports), req).await
}
