//! The use cases, over the ports. Business rules live here and nowhere else.

pub mod audience;
pub mod callback;
pub mod channels;
pub mod cursor;
pub mod deadline;
pub mod deliver;
pub mod devices;
pub mod emails;
pub mod fanout;
pub mod history;
pub mod idempotency;
pub mod inbox;
pub mod notify;
pub mod realtime;
pub mod send;
