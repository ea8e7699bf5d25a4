//! The local runner's library: the route table, the HTTP front that turns requests into the
//! same `lambda_http` events API Gateway sends, the background workers (scheduler tick, queue
//! consumers) and provisioning from the template.

pub mod provision;
pub mod routes;
pub mod server;
pub mod workers;
