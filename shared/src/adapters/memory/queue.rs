//! A queue in memory with SQS's at-least-once semantics: visibility timeout, delays, a DLQ after
//! the configured receives.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;

use super::*;
use crate::error::StoreResult;
use crate::ports::*;

struct Message {
    id: String,
    body: String,
    /// The trace it was sent in (as SQS keeps a message's attributes, into its DLQ too).
    trace: Option<String>,
    receive_count: u32,
    visible_at: Instant,
}

/// The current trace, as a message's attribute.
fn current_trace() -> Option<String> {
    let trace = crate::trace::current();
    (!trace.is_empty()).then(|| trace.encode())
}

/// SQS's longest message delay (DelaySeconds), 15 minutes.
pub const MAX_DELAY_SECONDS: u64 = 900;

/// A queue with SQS's at-least-once semantics: a received message is hidden for the visibility
/// timeout and comes back unless acknowledged; after `max_receives` receives it moves to the DLQ.
pub struct MemoryQueue {
    messages: Mutex<VecDeque<Message>>,
    visibility: Duration,
    max_receives: u32,
    dead_letters: Option<Arc<MemoryQueue>>,
    sequence: std::sync::atomic::AtomicU64,
}

impl MemoryQueue {
    /// A queue without a DLQ (messages are retried forever).
    pub fn new(visibility: Duration) -> Self {
        MemoryQueue {
            messages: Mutex::new(VecDeque::new()),
            visibility,
            max_receives: u32::MAX,
            dead_letters: None,
            sequence: Default::default(),
        }
    }

    /// A queue whose messages go to `dlq` after `max_receives` receives (SQS redrive policy).
    pub fn with_dead_letters(visibility: Duration, max_receives: u32, dlq: Arc<MemoryQueue>) -> Self {
        MemoryQueue { max_receives, dead_letters: Some(dlq), ..Self::new(visibility) }
    }

    /// Messages in the queue, visible or in flight.
    pub fn len(&self) -> usize {
        lock(&self.messages).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn dead_letters(&self) -> Option<&Arc<MemoryQueue>> {
        self.dead_letters.as_ref()
    }

    fn receipt(m: &Message) -> String {
        format!("{}#{}", m.id, m.receive_count)
    }

    /// Appends messages (body, trace) that become visible at `visible_at`.
    fn enqueue(&self, messages: impl IntoIterator<Item = (String, Option<String>)>, visible_at: Instant) {
        let mut q = lock(&self.messages);
        for (body, trace) in messages {
            let n = self.sequence.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            q.push_back(Message { id: format!("m-{n}"), body, trace, receive_count: 0, visible_at });
        }
    }
}

#[async_trait]
impl Queue for MemoryQueue {
    async fn send_all(&self, bodies: &[String]) -> StoreResult<()> {
        let trace = current_trace();
        self.enqueue(bodies.iter().map(|body| (body.clone(), trace.clone())), Instant::now());
        Ok(())
    }

    async fn send_later(&self, body: &str, delay: Duration) -> StoreResult<()> {
        let seconds = delay.as_secs() + u64::from(delay.subsec_nanos() > 0);
        let visible_at = Instant::now() + Duration::from_secs(seconds.min(MAX_DELAY_SECONDS));
        self.enqueue([(body.to_string(), current_trace())], visible_at);
        Ok(())
    }

    async fn receive(&self, max: usize) -> StoreResult<Vec<ReceivedMessage>> {
        let now = Instant::now();
        let mut out = Vec::new();
        let mut dead = Vec::new();
        {
            let mut q = lock(&self.messages);
            let mut i = 0;
            while i < q.len() && out.len() < max {
                if q[i].visible_at > now {
                    i += 1;
                    continue;
                }
                if q[i].receive_count >= self.max_receives && self.dead_letters.is_some() {
                    let gone = q.remove(i).expect("index checked");
                    dead.push((gone.body, gone.trace));
                    continue;
                }
                let m = &mut q[i];
                m.receive_count += 1;
                m.visible_at = now + self.visibility;
                out.push(ReceivedMessage {
                    message_id: m.id.clone(),
                    receipt: Self::receipt(m),
                    body: m.body.clone(),
                    receive_count: m.receive_count,
                    trace: m.trace.clone(),
                });
                i += 1;
            }
        }
        if let (Some(dlq), false) = (&self.dead_letters, dead.is_empty()) {
            dlq.enqueue(dead, now);
        }
        Ok(out)
    }

    async fn ack(&self, receipt: &str) -> StoreResult<()> {
        lock(&self.messages).retain(|m| Self::receipt(m) != receipt);
        Ok(())
    }

    async fn nack(&self, receipt: &str) -> StoreResult<()> {
        let now = Instant::now();
        for m in lock(&self.messages).iter_mut() {
            if Self::receipt(m) == receipt {
                m.visible_at = now;
            }
        }
        Ok(())
    }
}
