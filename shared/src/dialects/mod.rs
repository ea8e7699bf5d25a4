//! One module per public API: exact wire names, limits, and translation into domain commands.

pub mod app_notification;
pub mod department;
pub mod desktop;
pub mod fields;
pub mod group_send;
pub mod inbox;
pub mod sent_history;
pub mod webhooks;
pub mod ws;
