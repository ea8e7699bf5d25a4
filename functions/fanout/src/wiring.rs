//! The fan-out function's composition: its [`Deps`] from the bag of every port. Only this
//! module, `main.rs` and tests see the bag.

use shared::runtime::Ports;
use shared::service::deadline::Deadline;

use super::{Answer, Deps, Trigger};

impl<'a> Deps<'a> {
    pub fn new(ports: &'a Ports) -> Deps<'a> {
        Deps { fan_out: ports.fan_out(), recall: ports.recall_plan(), clock: &*ports.clock }
    }
}

/// A trigger, served with the ports of `ports` (the local runner, the suites), with no deadline.
pub async fn handle(ports: &Ports, trigger: Trigger) -> Result<Answer, shared::StoreError> {
    handle_within(ports, trigger, Deadline::NONE).await
}

/// A trigger, served with the ports of `ports`, within `deadline`.
pub async fn handle_within(
    ports: &Ports,
    trigger: Trigger,
    deadline: Deadline,
) -> Result<Answer, shared::StoreError> {
    super::handle_trigger(&Deps::new(ports), trigger, deadline).await
}
