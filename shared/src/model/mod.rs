//! The one domain model every dialect is translated into.

mod channels;
mod commands;
mod directory;
mod draft;
mod inbox;
mod notification;
mod webhooks;

pub use channels::*;
pub use commands::*;
pub use directory::*;
pub use draft::*;
pub use inbox::*;
pub use notification::*;
pub use webhooks::*;

use serde::{Deserialize, Serialize};

/// A page of results and the opaque token that continues it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next: Option<String>,
}

impl<T> Page<T> {
    pub fn empty() -> Self {
        Page { items: Vec::new(), next: None }
    }
}

/// Where a paged read starts and how much it returns.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PageRequest {
    pub limit: usize,
    pub after: Option<String>,
}

impl PageRequest {
    pub fn first(limit: usize) -> Self {
        PageRequest { limit, after: None }
    }
    pub fn after(limit: usize, token: Option<String>) -> Self {
        PageRequest { limit, after: token }
    }
}
