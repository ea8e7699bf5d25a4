//! The domain crate of the notification service: one model for five API dialects, the services
//! that carry notifications from request to inbox, the ports they need and their adapters.

pub mod adapters;
pub mod config;
pub mod credentials;
pub mod directory;
pub mod error;
pub mod model;
pub mod ports;
pub mod runtime;

pub use config::Config;
pub use error::{ApiError, ErrorKind, StoreError};
