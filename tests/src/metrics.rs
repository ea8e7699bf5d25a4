//! The metric lines (CloudWatch's embedded metric format) this test binary's code recorded,
//! captured in memory instead of standard output (one sink per process: `shared::metrics`).

use std::sync::{Arc, Mutex, OnceLock};

use serde_json::Value;

static LINES: OnceLock<Arc<Mutex<Vec<String>>>> = OnceLock::new();

/// Starts capturing (once per process; later calls share it).
pub fn capture() -> Capture {
    let lines = LINES
        .get_or_init(|| {
            let lines = Arc::new(Mutex::new(Vec::new()));
            let sink = lines.clone();
            shared::metrics::set_sink(move |line| sink.lock().unwrap().push(line.to_string()));
            lines
        })
        .clone();
    Capture(lines)
}

#[derive(Clone)]
pub struct Capture(Arc<Mutex<Vec<String>>>);

impl Capture {
    /// Every line so far, as written.
    pub fn lines(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }

    /// The sum of `metric`'s values whose dimensions after the stage are `values`.
    pub fn sum(&self, metric: shared::metrics::Metric, values: &[&str]) -> f64 {
        let names = metric.dimensions();
        self.lines()
            .iter()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|doc| doc.get(metric.name()).is_some())
            .filter(|doc| names[1..].iter().zip(values).all(|(n, v)| doc[*n] == *v))
            .filter_map(|doc| doc[metric.name()].as_f64())
            .sum()
    }

    /// How many lines record `metric`.
    pub fn count(&self, metric: shared::metrics::Metric) -> usize {
        self.lines()
            .iter()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|doc| doc.get(metric.name()).is_some())
            .count()
    }
}
