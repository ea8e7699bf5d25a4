//! The deps of every use case, built from the bag. This is the one place that knows which port
//! of a deployment serves which narrow trait: a use case names the traits it uses
//! (`service::*::*Deps`), and each method here lends it those parts of the bag.

use crate::service::callback::CallbackDeps;
use crate::service::cancel::CancelDeps;
use crate::service::change::ChangeDeps;
use crate::service::channels::{EmailDeps, MarkDeps, PushDeps};
use crate::service::deliver::DeliverDeps;
use crate::service::devices::{DeviceDeps, UnsubscribeDeps};
use crate::service::emails::{EmailJobDeps, FeedbackDeps};
use crate::service::fanout::FanOutDeps;
use crate::service::history::{HistoryDeps, NotificationLogDeps};
use crate::service::inbox::{CenterMarkDeps, CenterReadDeps};
use crate::service::intake::{AcceptDeps, StoreDeps};
use crate::service::notify::NotifyDeps;
use crate::service::realtime::{CatchUpDeps, ConnectionDeps, TicketDeps};
use crate::service::recall::{PlanDeps, RecallDeps, StepDeps};
use crate::service::send::SendDeps;
use crate::service::webhooks::{EmitDeps, HookDeliveryDeps, WebhookAdminDeps};

use super::Ports;

impl Ports {
    /// Status events emitted where a notification changes (`service::webhooks`).
    pub fn hooks(&self) -> EmitDeps<'_> {
        EmitDeps { hooks: &*self.webhooks, queue: &*self.webhook_queue, clock: &*self.clock }
    }

    /// One try of a status event's delivery (the deliver function's webhook queue).
    pub fn hook_deliveries(&self) -> HookDeliveryDeps<'_> {
        HookDeliveryDeps {
            hooks: &*self.webhooks,
            queue: &*self.webhook_queue,
            webhook: &*self.webhook,
            clock: &*self.clock,
        }
    }

    /// A tenant administering its webhook endpoint.
    pub fn webhook_admin(&self) -> WebhookAdminDeps<'_> {
        WebhookAdminDeps { hooks: &*self.webhooks, queue: &*self.webhook_queue, clock: &*self.clock }
    }

    /// Sent history.
    pub fn history(&self) -> HistoryDeps<'_> {
        HistoryDeps { history: &*self.notifications, audiences: &*self.directory, log: &*self.notifications }
    }

    /// A department message's or an in-app notification's delivery log.
    pub fn notification_log(&self) -> NotificationLogDeps<'_> {
        NotificationLogDeps { lookup: &*self.notifications, log: &*self.notifications }
    }

    /// Reading a person's center.
    pub fn center_reads(&self) -> CenterReadDeps<'_> {
        CenterReadDeps { accounts: &*self.directory, center: &*self.inbox, clock: &*self.clock }
    }

    /// Marking a person's center.
    pub fn center_marks(&self) -> CenterMarkDeps<'_> {
        CenterMarkDeps { center: &*self.inbox, realtime: &*self.realtime, clock: &*self.clock }
    }

    /// Realtime tickets.
    pub fn tickets(&self) -> TicketDeps<'_> {
        TicketDeps {
            links: self.channels.as_ref().map(|c| &c.links),
            clock: &*self.clock,
            ids: &*self.ids,
            claims: &*self.notifications,
        }
    }

    /// A realtime connection's catch-up.
    pub fn catch_up(&self) -> CatchUpDeps<'_> {
        CatchUpDeps { center: &*self.inbox, clock: &*self.clock }
    }

    /// WebSocket connections opening and closing.
    pub fn connections(&self) -> ConnectionDeps<'_> {
        ConnectionDeps { tickets: self.tickets(), connections: &*self.connections }
    }

    /// A person's push devices.
    pub fn devices(&self) -> DeviceDeps<'_> {
        DeviceDeps { devices: &*self.devices, push: &*self.push, clock: &*self.clock }
    }

    /// Unsubscribe links.
    pub fn unsubscribes(&self) -> UnsubscribeDeps<'_> {
        UnsubscribeDeps { links: self.channels.as_ref().map(|c| &c.links), email_prefs: &*self.directory }
    }

    /// Callbacks and giving up.
    pub fn callbacks(&self) -> CallbackDeps<'_> {
        CallbackDeps {
            lookup: &*self.notifications,
            ledger: &*self.notifications,
            accounts: &*self.directory,
            webhook: &*self.webhook,
            clock: &*self.clock,
            retry: self.settings.callback_retry,
            hooks: self.hooks(),
        }
    }

    fn marks(&self) -> MarkDeps<'_> {
        MarkDeps { ledger: &*self.notifications, clock: &*self.clock }
    }

    /// A chunk's pushes.
    pub fn pushes(&self) -> PushDeps<'_> {
        PushDeps { devices: &*self.devices, push: &*self.push, marks: self.marks() }
    }

    /// An email job's emails.
    pub fn emails(&self) -> EmailDeps<'_> {
        EmailDeps {
            accounts: &*self.directory,
            audiences: &*self.directory,
            email_prefs: &*self.directory,
            mailer: &*self.mailer,
            marks: self.marks(),
            channels: self.channels.as_ref(),
            pace: self.settings.email_sending.per_consumer,
        }
    }

    /// A round of an email job.
    pub fn email_jobs(&self) -> EmailJobDeps<'_> {
        EmailJobDeps {
            ledger: &*self.notifications,
            email_queue: &*self.email_queue,
            clock: &*self.clock,
            emails: self.emails(),
            sending: self.settings.email_sending,
            hand_overs: self.settings.hand_overs.max_attempts,
        }
    }

    /// SES's bounces and complaints.
    pub fn feedback(&self) -> FeedbackDeps<'_> {
        FeedbackDeps {
            email_prefs: &*self.directory,
            ledger: &*self.notifications,
            clock: &*self.clock,
            lookup: &*self.notifications,
            hooks: self.hooks(),
        }
    }

    /// Delivering a chunk.
    pub fn deliver(&self) -> DeliverDeps<'_> {
        DeliverDeps {
            chunks: &*self.delivery_queue,
            lookup: &*self.notifications,
            ledger: &*self.notifications,
            inbox: &*self.inbox,
            realtime: &*self.realtime,
            email_queue: &*self.email_queue,
            clock: &*self.clock,
            pushes: self.pushes(),
            push_retry: self.settings.push_retry,
            hand_overs: self.settings.hand_overs,
            callbacks: self.callbacks(),
        }
    }

    /// Fan-out (queued, or inline for a synchronous request).
    pub fn fan_out(&self) -> FanOutDeps<'_> {
        FanOutDeps {
            ledger: &*self.notifications,
            lookup: &*self.notifications,
            audiences: &*self.directory,
            inbox: &*self.inbox,
            devices: &*self.devices,
            delivery_queue: &*self.delivery_queue,
            fanout_queue: &*self.fanout_queue,
            clock: &*self.clock,
            chunk_size: self.settings.chunk_size,
            deliver: self.deliver(),
        }
    }

    /// Storing a notification once and queueing its fan-out.
    pub fn store(&self) -> StoreDeps<'_> {
        StoreDeps {
            lookup: &*self.notifications,
            intake: &*self.notifications,
            fanout_queue: &*self.fanout_queue,
            hooks: self.hooks(),
        }
    }

    /// Accepting a notification (store, then queue, schedule or deliver).
    pub fn accept(&self) -> AcceptDeps<'_> {
        AcceptDeps { store: self.store(), clock: &*self.clock, fanout: self.fan_out() }
    }

    /// A group send.
    pub fn send(&self) -> SendDeps<'_> {
        SendDeps {
            accounts: &*self.directory,
            audiences: &*self.directory,
            store: self.store(),
            daily_recipient_cap: self.settings.daily_recipient_cap,
        }
    }

    /// A sender changing a pending group send.
    pub fn change(&self) -> ChangeDeps<'_> {
        ChangeDeps {
            lookup: &*self.notifications,
            control: &*self.notifications,
            clock: &*self.clock,
            store: self.store(),
        }
    }

    /// A sender retracting or correcting what went out.
    pub fn recall(&self) -> RecallDeps<'_> {
        RecallDeps {
            lookup: &*self.notifications,
            control: &*self.notifications,
            inbox: &*self.inbox,
            fanout_queue: &*self.fanout_queue,
            clock: &*self.clock,
            hooks: self.hooks(),
        }
    }

    /// A recall's plan (the fan-out function).
    pub fn recall_plan(&self) -> PlanDeps<'_> {
        PlanDeps {
            lookup: &*self.notifications,
            recall: &*self.notifications,
            inbox: &*self.inbox,
            delivery_queue: &*self.delivery_queue,
            clock: &*self.clock,
            hooks: self.hooks(),
        }
    }

    /// A recall's steps, one chunk each (the deliver function).
    pub fn recall_steps(&self) -> StepDeps<'_> {
        StepDeps {
            lookup: &*self.notifications,
            recall: &*self.notifications,
            inbox: &*self.inbox,
            realtime: &*self.realtime,
            clock: &*self.clock,
            chunks: &*self.delivery_queue,
            hand_overs: self.settings.hand_overs,
        }
    }

    /// A sender cancelling what it sent (every dialect's cancel).
    pub fn cancel(&self) -> CancelDeps<'_> {
        CancelDeps {
            lookup: &*self.notifications,
            control: &*self.notifications,
            clock: &*self.clock,
            hooks: self.hooks(),
        }
    }

    /// Notifying named people (department, desktop assistant, in-app).
    pub fn notify(&self) -> NotifyDeps<'_> {
        NotifyDeps { accounts: &*self.directory, clock: &*self.clock, accept: self.accept() }
    }
}
