//! The delivery queue carries two kinds of work: a notification's chunks (and their push jobs,
//! `deliver`), and a recall's steps, one chunk each (`recall`). A message is one or the other by
//! its body (a step names `recall`); each is handled, and settled from the dead-letter queue, by
//! its own rules.

use super::deadline::Deadline;
use super::deliver::{self, DeliverDeps};
use super::recall::{self, StepDeps};
use super::receive::Attempt;

/// One receive of a delivery-queue message (see `deliver::attempt` and `recall::attempt`).
pub async fn attempt(
    (chunks, steps): (&DeliverDeps<'_>, &StepDeps<'_>),
    (message_id, holder): (&str, &str),
    body: &str,
    receives: u32,
    max_receives: u32,
    deadline: Deadline,
) -> Attempt {
    match recall::parse_step(body) {
        Some(step) => recall::attempt(steps, message_id, &step, deadline).await,
        None => deliver::attempt(chunks, (message_id, holder), body, receives, max_receives, deadline).await,
    }
}

/// A message the delivery queue gave up on (see `deliver::settle_dead_letter` and
/// `recall::settle_dead_letter`).
pub async fn settle_dead_letter(
    (chunks, steps): (&DeliverDeps<'_>, &StepDeps<'_>),
    (message_id, holder): (&str, &str),
    body: &str,
    receives: u32,
    max_receives: u32,
) -> Attempt {
    match recall::parse_step(body) {
        Some(step) => recall::settle_dead_letter(steps, message_id, &step, receives, max_receives).await,
        None => deliver::settle_dead_letter(chunks, (message_id, holder), body, receives, max_receives).await,
    }
}
