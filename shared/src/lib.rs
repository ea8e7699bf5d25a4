//! The domain crate of the notification service: one model for five API dialects, the services
//! that carry notifications from request to inbox, the ports they need and their adapters.

pub mod adapters;
pub mod auth;
pub mod backoff;
pub mod batch;
pub mod credentials;
pub mod dialects;
pub mod directory;
pub mod email;
pub mod error;
pub mod http;
pub mod metrics;
pub mod model;
pub mod ports;
pub mod redact;
pub mod routes;
pub mod runtime;
pub mod service;
pub mod settings;
pub mod trace;

pub use error::{ApiError, ErrorKind, StoreError};
pub use runtime::config::{self as config, Config};
