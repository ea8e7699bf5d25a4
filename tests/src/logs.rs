//! Every log line a test binary writes — `tracing` events and `log` records alike — captured in
//! memory (one subscriber per process), for
//! tests that search what was logged: no secrets in it (`privacy.rs`), the cause of every
//! refused AWS request (`iam.rs`).

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};

#[derive(Clone, Default)]
pub struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Capture {
    type Writer = Capture;
    fn make_writer(&'a self) -> Capture {
        self.clone()
    }
}

impl Capture {
    /// Everything captured so far.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }

    /// The lines that contain any of `needles`.
    pub fn lines_with(&self, needles: &[&str]) -> Vec<String> {
        self.text().lines().filter(|l| needles.iter().any(|n| l.contains(n))).map(str::to_string).collect()
    }

    pub fn clear(&self) {
        self.0.lock().unwrap().clear();
    }
}

/// The process's capture of every log line at `level` and above (`"debug"`, `"info"`, ...),
/// installed at the first call; later calls get the same capture.
pub fn capture(level: &str) -> &'static Capture {
    static LOG: OnceLock<Capture> = OnceLock::new();
    LOG.get_or_init(|| {
        let capture = Capture::default();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(capture.clone())
            .with_ansi(false)
            .with_env_filter(tracing_subscriber::EnvFilter::new(level))
            .finish();
        tracing::subscriber::set_global_default(subscriber).expect("one subscriber per test binary");
        // Records of the `log` crate (the libraries that log through it) are captured too.
        tracing_log::LogTracer::init().expect("one log tracer per test binary");
        capture
    })
}

/// The process's capture of every log line at `level` and above as Lambda writes them with its
/// JSON log format (`lambda_runtime::tracing::init_default_subscriber` under
/// `AWS_LAMBDA_LOG_FORMAT=JSON`, as the template sets it: one JSON object a line, the event's
/// fields under `fields`, its innermost span's under `span`), for tests that read what
/// CloudWatch Logs Insights would (`tracing.rs`). A test binary captures text or JSON, not both.
pub fn capture_json(level: &str) -> &'static Capture {
    static LOG: OnceLock<Capture> = OnceLock::new();
    LOG.get_or_init(|| {
        let capture = Capture::default();
        let subscriber = tracing_subscriber::fmt()
            .with_target(false)
            .without_time()
            .with_writer(capture.clone())
            .with_env_filter(tracing_subscriber::EnvFilter::new(level))
            .json()
            .finish();
        tracing::subscriber::set_global_default(subscriber).expect("one subscriber per test binary");
        capture
    })
}
