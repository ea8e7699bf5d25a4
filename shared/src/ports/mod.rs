//! The ports: what the services need from the outside world, one file per lifecycle. Each has
//! an in-memory adapter (local runner, fast tests) and an AWS adapter (DynamoDB, SQS, SES, SNS,
//! API Gateway); one conformance suite runs against both (`tests/tests/conformance.rs`).
//!
//! A trait here is as narrow as its users: a use case names exactly the traits it calls
//! (`service::*` deps), so that a new port, or a new method of one, touches only what uses it.
//! Where one table serves several lifecycles, its adapter implements each trait, and an
//! umbrella trait (`NotificationStore`, `InboxStore`, `Directory`), blanket-implemented, lets
//! the composition roots (`runtime::Ports`) hold it once.
//!
//! | file | lifecycle | traits |
//! |---|---|---|
//! | `intake.rs` | a notification is accepted and read back | `NotificationLookup`, `NotificationIntake` |
//! | `ledger.rs` | fan-out, chunks, sent marks, email jobs, give-up | `FanoutLedger`, `DeliveryLedger`, `EmailLedger` |
//! | `control.rs` | a sender stops, changes, retracts or corrects what it sent | `SendControl`, `RecallLedger` |
//! | `history.rs` | sent history, delivery logs | `SentHistory`, `DeliveryLog` |
//! | `claims.rs` | idempotency keys | `IdempotencyStore` |
//! | `inbox.rs` | a person's center, realtime, connections | `InboxDelivery`, `Center`, `Realtime`, `ConnectionStore` |
//! | `directory.rs` | people, groups, credentials | `Accounts`, `Audiences`, `EmailPreferences`, `DirectoryLoad` |
//! | `devices.rs` | push devices | `DeviceStore` |
//! | `outbound.rs` | email, push, callbacks | `Mailer`, `PushGateway`, `Webhook` |
//! | `queue.rs` | SQS | `Queue` |
//! | `clock.rs` | time and ids | `Clock`, `IdGenerator` |
//! | `webhooks.rs` | a tenant's status webhooks | `WebhookEndpoints`, `HookEvents` |

pub mod claims;
pub mod clock;
pub mod control;
pub mod devices;
pub mod directory;
pub mod history;
pub mod inbox;
pub mod intake;
pub mod ledger;
pub mod outbound;
pub mod queue;
pub mod webhooks;

pub use claims::*;
pub use clock::*;
pub use control::*;
pub use devices::*;
pub use directory::*;
pub use history::*;
pub use inbox::*;
pub use intake::*;
pub use ledger::*;
pub use outbound::*;
pub use queue::*;
pub use webhooks::*;

/// Everything the Notifications table answers: what its adapters implement and the composition
/// roots hold. A use case names only the part it uses.
pub trait NotificationStore:
    NotificationLookup
    + NotificationIntake
    + FanoutLedger
    + DeliveryLedger
    + EmailLedger
    + SentHistory
    + DeliveryLog
    + SendControl
    + RecallLedger
    + IdempotencyStore
{
}
impl<T> NotificationStore for T where
    T: NotificationLookup
        + NotificationIntake
        + FanoutLedger
        + DeliveryLedger
        + EmailLedger
        + SentHistory
        + DeliveryLog
        + SendControl
        + RecallLedger
        + IdempotencyStore
        + ?Sized
{
}
