//! The local runner's library: provisioning from the template, and the HTTP front that turns
//! requests into the same `lambda_http` events API Gateway sends.

pub mod provision;
