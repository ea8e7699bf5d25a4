//! The use cases, over the ports. Business rules live here and nowhere else.
//!
//! Each use case takes exactly the ports it uses, as a small deps struct of its own
//! (`HistoryDeps`, `DeliverDeps`, ...) whose fields are narrow port traits (`&dyn SentHistory`,
//! `&dyn DeliveryLedger`) or settings it reads; a use case that calls another holds that one's
//! deps. The fields are `pub(crate)`: only `runtime` builds them (from its bag of every port,
//! `runtime::Ports`), and a field no use case reads fails the build (`dead_code` under clippy's
//! `-D warnings`). No service sees the bag (`tests/tests/layers.rs`).

pub mod audience;
pub mod callback;
pub mod cancel;
pub mod change;
pub mod channels;
pub mod cursor;
pub mod deadline;
pub mod deliver;
pub mod delivery_queue;
pub mod devices;
pub mod emails;
pub mod fanout;
pub mod history;
pub mod idempotency;
pub mod inbox;
pub mod intake;
pub mod notify;
pub mod pushes;
pub mod realtime;
pub mod recall;
pub mod receive;
pub mod send;
pub mod webhooks;
