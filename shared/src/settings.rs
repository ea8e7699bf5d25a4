//! What the services are tuned with: callback and email retries, the pace of email, the daily
//! recipient cap, the chunk size. Read from the configuration by the AWS composition
//! (`runtime::config`), set to the local defaults by the memory one; each use case is given
//! the ones it reads.

use std::time::Duration;

use crate::backoff::Backoff;

/// The services' tunables.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// Tries and backoff of callbacks.
    pub callback_retry: Backoff,
    /// The pace of email and the waits between an email job's rounds.
    pub email_sending: EmailSending,
    /// The waits between a chunk's push rounds, and how many rounds (`service::pushes`).
    pub push_retry: Backoff,
    /// The waits of a delivery message handed over for throttling, and how many hand-overs.
    pub hand_overs: Backoff,
    /// Recipients a company's group sends may reach per UTC day.
    pub daily_recipient_cap: u64,
    /// Recipients per delivery chunk.
    pub chunk_size: usize,
}

impl Settings {
    /// Recipients a company's group sends may reach per UTC day, unless configured.
    pub const DEFAULT_DAILY_RECIPIENT_CAP: u64 = 5_000_000;
    /// Recipients per delivery chunk, unless configured.
    pub const DEFAULT_CHUNK_SIZE: usize = 2000;

    /// The defaults, with email unpaced (the memory mailer has no rate).
    pub fn local() -> Self {
        Settings {
            callback_retry: CALLBACK_RETRY,
            email_sending: EmailSending::unpaced(),
            push_retry: PUSH_RETRY,
            hand_overs: HAND_OVERS,
            daily_recipient_cap: Self::DEFAULT_DAILY_RECIPIENT_CAP,
            chunk_size: Self::DEFAULT_CHUNK_SIZE,
        }
    }
}

/// How emails go out (`service::emails`).
#[derive(Debug, Clone, Copy)]
pub struct EmailSending {
    /// Emails one email-queue consumer starts per second: the account's SES sending rate shared
    /// by the queue's `EMAIL_CONSUMERS`; `None`: as fast as the mailer answers.
    pub per_consumer: Option<f64>,
    /// Waits before the next round of a job SES throttled (its ceiling grows per round).
    pub retry: Backoff,
    /// Rounds of a job before what is still unsent counts as failed.
    pub max_rounds: u32,
}

/// Waits before a push job's next round, as deployed: up to 10 s, 20 s, 40 s ... 5 min (full jitter); 8
/// rounds (the chunk's own and 7 of its job) wait about 15 minutes in all before what is still
/// unsent counts as failed.
pub const PUSH_RETRY: Backoff = Backoff {
    base: std::time::Duration::from_secs(10),
    cap: std::time::Duration::from_secs(300),
    max_attempts: 8,
};

/// Hand-overs a delivery-queue message may take instead of receives (`service::deliver::attempt`): each waits
/// up to 1 s, 2 s, 4 s ... 1 min (full jitter) when DynamoDB refused for throughput, none when
/// the deadline was near; 20 of them outlast about 15 minutes of throttling before the message's
/// receives count again.
pub const HAND_OVERS: Backoff =
    Backoff { base: Duration::from_secs(1), cap: Duration::from_secs(60), max_attempts: 20 };

/// Concurrent consumers of the email queue: the template's `MaximumConcurrency` of deliver's
/// email-queue event source (the least Lambda allows), so the account's rate is shared by two.
pub const EMAIL_CONSUMERS: u32 = 2;

/// Concurrent consumers of the delivery queue: the template's `MaximumConcurrency` of deliver's
/// chunk event source (a parity test keeps them equal).
pub const CHUNK_CONSUMERS: u32 = 20;

/// Realtime posts (`PostToConnection`) one process makes per second at most. The delivery
/// queue's consumers together post at most `CHUNK_CONSUMERS` times this, 2,000 a second: a fifth
/// of the account's default API Gateway quota (10,000 requests a second per Region, shared by
/// the HTTP API, the WebSocket API and these posts), the figure the README states. A chunk's
/// 2,000 recipients all online are told within 20 s, inside deliver's timeout.
pub const REALTIME_POSTS_PER_SECOND: u32 = 100;

/// The share of the account's rate email is paced to.
pub const PACE_HEADROOM: f64 = 0.9;

/// Waits between rounds of a throttled email job: up to 30 s, 1 min, 2 min ... 15 min (SQS's
/// longest delay); 20 rounds wait about four hours in all, long enough for a daily quota
/// that is near its end to be counted out rather than retried forever.
pub const EMAIL_RETRY: Backoff =
    Backoff { base: Duration::from_secs(30), cap: Duration::from_secs(900), max_attempts: 20 };

impl EmailSending {
    /// Paced for an account sending `rate` emails per second: each consumer starts 90% of its
    /// share, so that timer lateness and SES's own clock never put a second over the rate.
    pub fn for_account_rate(rate: f64) -> Self {
        EmailSending {
            per_consumer: Some(rate * PACE_HEADROOM / f64::from(EMAIL_CONSUMERS)),
            retry: EMAIL_RETRY,
            max_rounds: EMAIL_RETRY.max_attempts,
        }
    }

    /// Unpaced (the memory mailer has no rate).
    pub fn unpaced() -> Self {
        EmailSending { per_consumer: None, retry: EMAIL_RETRY, max_rounds: EMAIL_RETRY.max_attempts }
    }
}

/// Callback tries: five, waiting up to 0.2 s, 0.4 s, 0.8 s, 1.6 s (full jitter), within the
/// deliver function's timeout.
pub const CALLBACK_RETRY: Backoff =
    Backoff { base: Duration::from_millis(200), cap: Duration::from_secs(5), max_attempts: 5 };
