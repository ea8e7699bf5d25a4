//! One id through the pipeline: every log line about a notification carries the notification's
//! id and the id of the request that made it, in every function it passes through (send or
//! notify, fan-out, deliver's chunks, push and email jobs, recall steps, status events, SES's
//! feedback), so that one Logs Insights query finds them all (README, docs/operations.md).
//!
//! A [`Trace`] is the ambient context of a unit of work, as a clock's time is of a step: the HTTP
//! entry opens one per request ([`crate::http::traced`]: a new request id, answered in the
//! `x-request-id` header), intake narrows it to the notification it stores, and the notification
//! keeps its request (`Notification::origin_request`) for the work that starts from the store
//! (the scheduler's tick, a retraction's sweep), which learns it ([`about`]) where it reads the
//! record.
//! Across queues a trace travels as the message attribute [`ATTRIBUTE`] (the SQS adapter writes
//! it from the current trace, every queue consumer restores it per record in
//! `crate::batch::run`), and across SES as the email's `request` tag.
//!
//! Which request: a line about a notification names the request that made it, wherever it is
//! logged; a line of another request about it (its cancel, change, retraction or correction, a
//! retried request) names that request as `by` beside it. A request's lines before it knows its
//! notification name the request alone.
//!
//! Invariants: inside a trace every log line is in the `trace` span, whose fields are `request`,
//! (once known) `notification` and (for another request's work) `by` — in Lambda's JSON logs
//! `span.request`, `span.notification`, `span.by`; the span is at ERROR level, so that no log
//! level the function is given drops it; a scope narrows to its notification and takes its
//! request when it is named; a trace that cannot be read from a message (an earlier version's,
//! one put on the queue by hand) is no trace, never an error.

use std::cell::RefCell;
use std::future::Future;

use serde::{Deserialize, Serialize};
use tracing::Instrument;
use uuid::Uuid;

/// The SQS message attribute (a `String`) that carries a trace.
pub const ATTRIBUTE: &str = "trace";

/// The SES message tag that carries the request an email's notification came from.
pub const REQUEST_TAG: &str = "request";

/// Who asked and what about.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Trace {
    /// The id of the request the work came from (a UUID this service gave it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request: Option<String>,
    /// The notification the work is about.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notification: Option<Uuid>,
}

impl Trace {
    /// A new request's trace.
    pub fn request(id: impl Into<String>) -> Trace {
        Trace { request: Some(id.into()), notification: None }
    }

    /// Work about notification `id`; `request` is the one its record names as having made it
    /// (`None`: not known yet, learnt by [`about`] where the record is read). It becomes the
    /// trace's request; another request the work around it had stays beside it as `by`.
    pub fn notification(id: Uuid, request: Option<&str>) -> Trace {
        Trace { request: request.map(str::to_string), notification: Some(id) }
    }

    /// The attribute's value.
    pub fn encode(&self) -> String {
        serde_json::to_string(self).expect("a trace serialises")
    }

    /// A trace from an attribute's value; `None` for anything else.
    pub fn decode(value: &str) -> Option<Trace> {
        serde_json::from_str::<Trace>(value).ok().filter(|t| t.request.is_some() || t.notification.is_some())
    }

    pub fn is_empty(&self) -> bool {
        self.request.is_none() && self.notification.is_none()
    }
}

/// A trace as a scope holds it: and the other request whose work it is (`by`), if any.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Held {
    trace: Trace,
    by: Option<String>,
}

impl Held {
    /// `trace` inside `self`: the notification narrows to `trace`'s, its request (the
    /// notification's own) replaces the one around it, which stays as `by`.
    fn narrowed(&self, trace: Trace) -> Held {
        let mut held = Held {
            trace: Trace {
                notification: trace.notification.or(self.trace.notification),
                ..self.trace.clone()
            },
            by: self.by.clone(),
        };
        held.name_request(trace.request);
        held
    }

    /// The notification's own request becomes the trace's; another one it held is `by`.
    fn name_request(&mut self, request: Option<String>) {
        let Some(request) = request else { return };
        if self.trace.request.as_ref() != Some(&request) {
            if let Some(other) = self.trace.request.take() {
                self.by.get_or_insert(other);
            }
            self.trace.request = Some(request);
        }
    }

    fn span(&self) -> tracing::Span {
        use tracing::field::Empty;
        let span =
            tracing::span!(tracing::Level::ERROR, "trace", request = Empty, notification = Empty, by = Empty);
        self.record(&span);
        span
    }

    /// Its fields on `span` (a field once recorded is only ever replaced: a trace narrows).
    fn record(&self, span: &tracing::Span) {
        if let Some(notification) = self.trace.notification {
            span.record("notification", tracing::field::display(notification));
        }
        if let Some(request) = &self.trace.request {
            span.record("request", request.as_str());
        }
        if let Some(by) = &self.by {
            span.record("by", by.as_str());
        }
    }
}

struct Scope {
    held: Held,
    span: tracing::Span,
}

tokio::task_local! {
    static CURRENT: RefCell<Scope>;
}

/// The trace of the work under way (empty outside any).
pub fn current() -> Trace {
    CURRENT.try_with(|scope| scope.borrow().held.trace.clone()).unwrap_or_default()
}

fn held() -> Option<Held> {
    CURRENT.try_with(|scope| scope.borrow().held.clone()).ok()
}

/// Runs `work` inside `trace`, narrowing the current one (`Held::narrowed`): its log lines in a
/// `trace` span with the trace's fields, its messages carrying it. Inside the same trace, the
/// work runs in it as it is (no second span).
pub async fn within<F: Future>(trace: Trace, work: F) -> F::Output {
    let outer = held();
    let held = outer.clone().unwrap_or_default().narrowed(trace);
    if outer.as_ref() == Some(&held) {
        return work.await;
    }
    let span = held.span();
    let scope = RefCell::new(Scope { held, span: span.clone() });
    CURRENT.scope(scope, work.instrument(span)).await
}

/// The current trace is about notification `id`, whose record names `request` as the one that
/// made it (`origin_request`): a request's or a message's trace learns both where it reads the
/// record, and the lines and messages that follow carry them. A trace about another
/// notification is left as it is.
pub fn about(id: Uuid, request: Option<&str>) {
    let _ = CURRENT.try_with(|scope| {
        let mut scope = scope.borrow_mut();
        if scope.held.trace.notification.is_some_and(|n| n != id) {
            return;
        }
        let before = scope.held.clone();
        scope.held.trace.notification = Some(id);
        scope.held.name_request(request.map(str::to_string));
        if scope.held != before {
            scope.held.record(&scope.span);
        }
    });
}

/// Whether `value` may be an SES message tag's value (SESv2 `MessageTag`: ASCII letters and
/// digits, `_` and `-`; at most 256 characters). A UUID is.
pub fn is_tag_value(value: &str) -> bool {
    !value.is_empty()
        && value.len() <= 256
        && value.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn scopes_nest_and_inherit_what_they_do_not_name() {
        assert!(current().is_empty(), "outside any work: no trace");
        let id = Uuid::from_u128(7);
        let seen = within(Trace::request("r-1"), async {
            let outer = current();
            let inner = within(Trace::notification(id, None), async { current() }).await;
            let named = within(Trace::notification(id, Some("origin")), async { current() }).await;
            (outer, inner, current(), named)
        })
        .await;
        assert_eq!(seen.0, Trace::request("r-1"));
        assert_eq!(seen.1, Trace::notification(id, Some("r-1")), "the request is inherited");
        assert_eq!(seen.3, Trace::notification(id, Some("origin")), "the notification's request is named");
        assert_eq!(seen.2, Trace::request("r-1"), "the inner scope ends with its work");
        assert!(current().is_empty());
    }

    #[tokio::test]
    async fn a_trace_learns_its_notification_and_its_request() {
        let id = Uuid::from_u128(9);
        let learnt = within(Trace::notification(id, None), async {
            about(id, None);
            let before = current();
            about(id, Some("origin"));
            (before, current(), held().unwrap().by)
        })
        .await;
        assert_eq!(learnt.0.request, None);
        assert_eq!((learnt.1, learnt.2), (Trace::notification(id, Some("origin")), None));
        // A cancel's request reads the record: the notification's request, the cancel's as `by`.
        let cancel = within(Trace::request("cancel"), async {
            about(id, Some("origin"));
            about(Uuid::from_u128(10), Some("other"));
            (current(), held().unwrap().by)
        })
        .await;
        assert_eq!(cancel, (Trace::notification(id, Some("origin")), Some("cancel".to_string())));
        about(id, Some("nowhere"));
        assert!(current().is_empty(), "outside any work, learning changes nothing");
    }

    #[test]
    fn an_attribute_round_trips_and_anything_else_is_no_trace() {
        let t = Trace::notification(Uuid::from_u128(3), Some("r"));
        assert_eq!(Trace::decode(&t.encode()), Some(t));
        for other in ["", "{}", "not json", "[1]", "{\"request\": 5}"] {
            assert_eq!(Trace::decode(other), None, "{other}");
        }
    }

    #[test]
    fn tag_values_keep_to_ses_alphabet() {
        assert!(is_tag_value(&Uuid::from_u128(1).to_string()));
        for bad in ["", "a=b", "a b", "a/b", "a.b", "a@b", &"x".repeat(257)] {
            assert!(!is_tag_value(bad), "{bad}");
        }
    }
}
