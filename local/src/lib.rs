//! The local runner's library: the route table, the HTTP front that turns requests into the
//! same `lambda_http` events API Gateway sends, the background workers (scheduler tick, queue
//! consumers), provisioning from the template, and the realtime channel (Server-Sent Events).

pub mod provision;
pub mod realtime;
mod response;
pub mod routes;
pub mod server;
pub mod workers;
