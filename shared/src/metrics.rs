//! The service's metrics, in CloudWatch's embedded metric format (EMF): each observation is one
//! JSON line on standard output, which CloudWatch Logs turns into a metric of the `Notifications`
//! namespace as it ingests the function's log (no API call, nothing to wait for, nothing to fail).
//!
//! Invariants:
//! - **Low cardinality.** Every metric has one fixed set of dimensions (`Metric::dimensions`): the
//!   stage, and at most a dialect or a queue. Never a person, a tenant or a notification: those
//!   are in the logs, which carry the notification's id.
//! - **One name, one place.** The template's alarms and dashboard name metrics by
//!   `Metric::name` with exactly its dimensions (`parity.rs` checks both ways); a metric renamed
//!   here fails that test until the template follows.
//! - **Counts of what happened, once each.** A metric is recorded where the fact is decided (the
//!   chunk recorded, the email job recorded, the callback's outcome), so a retried message that
//!   finds its work done records nothing again.
//!
//! Lines go to standard output in a Lambda function (`AWS_LAMBDA_FUNCTION_NAME` set, as in
//! `sam local` too), nowhere in other processes (the local runner, the tests), unless a process
//! installs a sink of its own (`set_sink`: the tests capture them).

use std::sync::OnceLock;

/// The CloudWatch namespace of every metric.
pub const NAMESPACE: &str = "Notifications";

/// What is measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Metric {
    /// Notifications stored for delivery, by dialect (`Dialect`: `groupSend`, …).
    NotificationsAccepted,
    /// People a chunk gave the notification to, by dialect.
    PeopleReached,
    /// From a notification's due time to its chunk's entries written (milliseconds), by dialect:
    /// how long a person waits for what was sent to them.
    ChunkLatency,
    /// Emails SES accepted; emails given up (after SES's refusals and their retries).
    EmailsSent,
    EmailsFailed,
    /// SES's bounce and complaint notifications recorded.
    EmailsBounced,
    EmailsComplained,
    /// Pushes SNS accepted; pushes given up; device endpoints SNS said were gone (removed).
    PushesSent,
    PushesFailed,
    EndpointsPruned,
    /// Department callbacks answered 2xx; callbacks given up.
    CallbacksSent,
    CallbacksFailed,
    /// Status webhook tries the receiver took; events given up after their last try.
    WebhooksDelivered,
    WebhooksFailed,
    /// Messages deliver received from a dead-letter queue, by queue (`Queue`: `delivery`,
    /// `email`): what their queue gave up on, which deliver then settles.
    DeadLetters,
    /// Realtime posts to open pages that failed (not a page gone: that is forgotten).
    RealtimePostFailures,
    /// Queue records a function failed, to be received again (deliver's, fan-out's): what no
    /// Lambda error shows, since the invocation itself answers.
    RecordsFailed,
}

impl Metric {
    /// Every metric.
    pub const ALL: &'static [Metric] = &[
        Metric::NotificationsAccepted,
        Metric::PeopleReached,
        Metric::ChunkLatency,
        Metric::EmailsSent,
        Metric::EmailsFailed,
        Metric::EmailsBounced,
        Metric::EmailsComplained,
        Metric::PushesSent,
        Metric::PushesFailed,
        Metric::EndpointsPruned,
        Metric::CallbacksSent,
        Metric::CallbacksFailed,
        Metric::WebhooksDelivered,
        Metric::WebhooksFailed,
        Metric::DeadLetters,
        Metric::RealtimePostFailures,
        Metric::RecordsFailed,
    ];

    /// Its name in CloudWatch.
    pub fn name(self) -> &'static str {
        match self {
            Metric::NotificationsAccepted => "NotificationsAccepted",
            Metric::PeopleReached => "PeopleReached",
            Metric::ChunkLatency => "ChunkLatency",
            Metric::EmailsSent => "EmailsSent",
            Metric::EmailsFailed => "EmailsFailed",
            Metric::EmailsBounced => "EmailsBounced",
            Metric::EmailsComplained => "EmailsComplained",
            Metric::PushesSent => "PushesSent",
            Metric::PushesFailed => "PushesFailed",
            Metric::EndpointsPruned => "EndpointsPruned",
            Metric::CallbacksSent => "CallbacksSent",
            Metric::CallbacksFailed => "CallbacksFailed",
            Metric::WebhooksDelivered => "WebhooksDelivered",
            Metric::WebhooksFailed => "WebhooksFailed",
            Metric::DeadLetters => "DeadLetters",
            Metric::RealtimePostFailures => "RealtimePostFailures",
            Metric::RecordsFailed => "RecordsFailed",
        }
    }

    /// Its CloudWatch unit.
    pub fn unit(self) -> &'static str {
        match self {
            Metric::ChunkLatency => "Milliseconds",
            _ => "Count",
        }
    }

    /// Its dimensions, `Stage` first; the values after the stage are given to `record`.
    pub fn dimensions(self) -> &'static [&'static str] {
        match self {
            Metric::NotificationsAccepted | Metric::PeopleReached | Metric::ChunkLatency => {
                &["Stage", "Dialect"]
            }
            Metric::DeadLetters => &["Stage", "Queue"],
            _ => &["Stage"],
        }
    }
}

type Sink = Box<dyn Fn(&str) + Send + Sync>;

static SINK: OnceLock<Sink> = OnceLock::new();

/// Where this process's metric lines go instead of standard output (the first call wins: the
/// tests' capture). `false` when a sink was installed already.
pub fn set_sink(sink: impl Fn(&str) + Send + Sync + 'static) -> bool {
    SINK.set(Box::new(sink)).is_ok()
}

/// The deployment's stage (`STAGE`, set by the template), `local` without one.
fn stage() -> &'static str {
    static STAGE: OnceLock<String> = OnceLock::new();
    STAGE.get_or_init(|| {
        std::env::var("STAGE").ok().filter(|s| !s.is_empty()).unwrap_or_else(|| "local".into())
    })
}

/// Whether this process is a Lambda function (the runtime sets `AWS_LAMBDA_FUNCTION_NAME`).
fn in_lambda() -> bool {
    static IN_LAMBDA: OnceLock<bool> = OnceLock::new();
    *IN_LAMBDA.get_or_init(|| std::env::var_os("AWS_LAMBDA_FUNCTION_NAME").is_some())
}

/// The EMF line of `value` of `metric` at `timestamp_ms`, with `values` for its dimensions after
/// the stage (in `Metric::dimensions`' order; missing ones are `unknown`).
pub fn line(metric: Metric, value: f64, values: &[&str], stage: &str, timestamp_ms: i64) -> String {
    let names = metric.dimensions();
    let mut doc = serde_json::Map::new();
    doc.insert(
        "_aws".into(),
        serde_json::json!({
            "Timestamp": timestamp_ms,
            "CloudWatchMetrics": [{
                "Namespace": NAMESPACE,
                "Dimensions": [names],
                "Metrics": [{"Name": metric.name(), "Unit": metric.unit()}],
            }],
        }),
    );
    for (i, name) in names.iter().enumerate() {
        let v = if i == 0 { stage } else { values.get(i - 1).copied().unwrap_or("unknown") };
        doc.insert((*name).into(), serde_json::Value::String(v.into()));
    }
    doc.insert(metric.name().into(), serde_json::json!(value));
    serde_json::Value::Object(doc).to_string()
}

/// Records `value` of `metric` now, `values` naming its dimensions after the stage. A count of
/// zero records nothing.
pub fn record(metric: Metric, value: f64, values: &[&str]) {
    if value == 0.0 && metric.unit() == "Count" {
        return;
    }
    let text = line(metric, value, values, stage(), chrono::Utc::now().timestamp_millis());
    match SINK.get() {
        Some(sink) => sink(&text),
        None if in_lambda() => {
            use std::io::Write;
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{text}");
        }
        None => {}
    }
}

/// Records a count.
pub fn count(metric: Metric, n: u64, values: &[&str]) {
    record(metric, n as f64, values);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_is_an_emf_document_whose_dimensions_and_value_are_members() {
        let text = line(Metric::PeopleReached, 2000.0, &["groupSend"], "prod", 1_795_338_000_000);
        let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
        let directive = &doc["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(doc["_aws"]["Timestamp"], 1_795_338_000_000i64);
        assert_eq!(directive["Namespace"], "Notifications");
        assert_eq!(directive["Dimensions"], serde_json::json!([["Stage", "Dialect"]]));
        assert_eq!(directive["Metrics"], serde_json::json!([{"Name": "PeopleReached", "Unit": "Count"}]));
        assert_eq!((doc["Stage"].as_str(), doc["Dialect"].as_str()), (Some("prod"), Some("groupSend")));
        assert_eq!(doc["PeopleReached"], 2000.0);
        assert!(!text.contains('\n'), "one line");
    }

    #[test]
    fn every_metric_has_a_unique_name_and_the_stage_first() {
        let names: std::collections::HashSet<&str> = Metric::ALL.iter().map(|m| m.name()).collect();
        assert_eq!(names.len(), Metric::ALL.len());
        assert!(Metric::ALL.iter().all(|m| m.dimensions()[0] == "Stage" && m.dimensions().len() <= 2));
    }
}
