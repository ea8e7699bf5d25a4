//! One id through the pipeline: every log line about a notification carries the notification's
//! id and the id of the request that made it, in every function it passes through (send or
//! notify, fan-out, deliver's chunks, push and email jobs, recall steps, status events, SES's
//! feedback), so that one Logs Insights query finds them all (README, docs/operations.md).
//!
//! A [`Trace`] is the ambient context of a unit of work, as a clock's time is of a step: the HTTP
//! entry opens one per request ([`crate::http::traced`]: a new request id, answered in the
//! `x-request-id` header), intake narrows it to the notification it stores, and the notification
//! keeps its request (`Notification::origin_request`) for the work that starts from the store
//! (the scheduler's tick, a retraction's sweep), which [`adopt`]s it when it reads the record.
//! Across queues a trace travels as the message attribute [`ATTRIBUTE`] (the SQS adapter writes
//! it from the current trace, every queue consumer restores it per record in
//! `crate::batch::run`), and across SES as the email's `request` tag.
//!
//! Which request: the one whose work a line is part of. A send's request for its delivery; a
//! retraction's request for the removal it plans, and a cancel's for its own lines; work nobody
//! asked for right then (the scheduler's tick, a sweep) names the request that made the
//! notification.
//!
//! Invariants: inside a trace every log line is in the `trace` span, whose fields are
//! `request` and (once known) `notification` — in Lambda's JSON logs `span.request` and
//! `span.notification`; a scope keeps the request of the work around it and narrows to its own
//! notification; a trace that cannot be read from a message (an earlier version's, one put on
//! the queue by hand) is no trace, never an error.

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

    /// Work about notification `id`; `origin` is the request its record names (`None`: not
    /// known yet, [`adopt`]ed when read), which counts only where the work around it has none.
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

    /// `self` inside `outer`: the request of the work around it stays (`self`'s fills in where
    /// there is none), the notification narrows to `self`'s.
    fn within(self, outer: &Trace) -> Trace {
        Trace {
            request: outer.request.clone().or(self.request),
            notification: self.notification.or(outer.notification),
        }
    }
}

struct Scope {
    trace: Trace,
    span: tracing::Span,
}

tokio::task_local! {
    static CURRENT: RefCell<Scope>;
}

/// The trace of the work under way (empty outside any).
pub fn current() -> Trace {
    CURRENT.try_with(|scope| scope.borrow().trace.clone()).unwrap_or_default()
}

/// Runs `work` inside `trace` (what it does not name inherited from the current trace): its log
/// lines in a `trace` span with the trace's fields, its messages carrying it.
pub async fn within<F: Future>(trace: Trace, work: F) -> F::Output {
    let trace = trace.within(&current());
    let span =
        tracing::info_span!("trace", request = tracing::field::Empty, notification = tracing::field::Empty);
    if let Some(request) = &trace.request {
        span.record("request", request.as_str());
    }
    if let Some(notification) = trace.notification {
        span.record("notification", tracing::field::display(notification));
    }
    let scope = RefCell::new(Scope { trace, span: span.clone() });
    CURRENT.scope(scope, work.instrument(span)).await
}

/// The current trace learns its request from the record of its notification (`request`: its
/// `origin_request`), when it has none yet: the lines and messages that follow carry it.
pub fn adopt(request: Option<&str>) {
    let Some(request) = request else { return };
    let _ = CURRENT.try_with(|scope| {
        let mut scope = scope.borrow_mut();
        if scope.trace.request.is_none() {
            scope.trace.request = Some(request.to_string());
            scope.span.record("request", request);
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
        assert_eq!(seen.3, Trace::notification(id, Some("r-1")), "the work's request before the record's");
        let alone = within(Trace::notification(id, Some("origin")), async { current() }).await;
        assert_eq!(alone, Trace::notification(id, Some("origin")), "the record's, where no work has one");
        assert_eq!(seen.2, Trace::request("r-1"), "the inner scope ends with its work");
        assert!(current().is_empty());
    }

    #[tokio::test]
    async fn a_trace_adopts_its_notifications_request_once() {
        let id = Uuid::from_u128(9);
        let learnt = within(Trace::notification(id, None), async {
            adopt(None);
            let before = current();
            adopt(Some("origin"));
            adopt(Some("another"));
            (before, current())
        })
        .await;
        assert_eq!(learnt.0.request, None);
        assert_eq!(learnt.1, Trace::notification(id, Some("origin")), "the first request learnt stays");
        adopt(Some("nowhere"));
        assert!(current().is_empty(), "outside any work, adopting changes nothing");
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
