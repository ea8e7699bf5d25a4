//! What one receive of a queue message came to, as a use case answers it to its handler (which
//! turns it into the batch's answer for the record).

/// What one receive of a queue message (a delivery chunk, an email job) came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attempt {
    /// Done, or nothing left to do: the message is done.
    Done,
    /// Not done: the queue hands it out again (or, after its last allowed receive, moves it to
    /// its dead-letter queue, whose consumer settles it).
    Again,
}
