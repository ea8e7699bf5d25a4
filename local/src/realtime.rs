//! The local runner's realtime channel: Server-Sent Events at `GET /realtime?ticket=..&after=..`.
//!
//! Why SSE here and not a WebSocket: events only go one way (marks go over the HTTP routes, as
//! they do from any client), SSE is plain HTTP through any proxy, and a browser's `EventSource`
//! resends the last event's id (`Last-Event-ID`) when it reconnects: the cursor this channel is
//! built on. A ticket is single-use, so a client reconnects with a fresh ticket and `after`
//! (the header is honoured too).
//!
//! A stream subscribes to the process's hub **before** it reads what was missed, so that nothing
//! delivered in between is lost (a repeat is harmless: events name ids). It opens with `hello`
//! (the cursor it starts from), then `new` for what was delivered at or after the cursor, then
//! every event of the person as it happens, and a comment every 15 s to keep proxies from closing
//! it. A subscriber that falls behind the hub's backlog is ended; its client reconnects from its
//! cursor.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use shared::adapters::memory::MemoryRealtime;
use shared::error::ApiError;
use shared::model::{Pushed, UserId};
use shared::runtime::Ports;
use tokio::sync::broadcast::{self, error::RecvError};

use crate::response::{HyperResponse, error};

const HEARTBEAT: Duration = Duration::from_secs(15);

/// One event in SSE's text format.
pub fn frame(p: &Pushed) -> String {
    let data = shared::dialects::inbox::realtime_data(p.cursor, &p.event, false);
    format!("id: {}\nevent: {}\ndata: {data}\n\n", p.cursor, p.event.kind())
}

/// `GET /realtime`.
pub async fn stream(
    ports: &Ports,
    hub: &MemoryRealtime,
    ticket: Option<&str>,
    after: Option<&str>,
) -> HyperResponse {
    let Some(ticket) = ticket.filter(|t| !t.is_empty()) else {
        return error(ApiError::invalid("ticket", "ticket is required: POST /users/me/realtime-ticket"));
    };
    let cursor = match after.filter(|a| !a.is_empty()) {
        None => None,
        Some(a) => match shared::dialects::inbox::parse_cursor(a) {
            Some(c) => Some(c),
            None => return error(ApiError::invalid("after", "after must be the id of an event")),
        },
    };
    let user = match shared::service::realtime::redeem(&ports.tickets(), ticket).await {
        Ok(user) => user,
        Err(e) => return error(e),
    };
    let rx = hub.subscribe();
    let start = ports.clock.now();
    let mut first = VecDeque::new();
    first.push_back(format!("id: {}\nevent: hello\ndata: {{}}\n\n", start.timestamp_millis()));
    if let Some(cursor) = cursor {
        match shared::service::realtime::catch_up(&ports.catch_up(), user, cursor).await {
            Ok(Some(missed)) => first.push_back(frame(&missed)),
            Ok(None) => {}
            Err(e) => return error(e),
        }
    }
    let body = StreamBody::new(events(user, rx, first)).boxed();
    hyper::Response::builder()
        .status(200)
        .header("content-type", "text/event-stream")
        .header("cache-control", "no-store")
        .header("x-accel-buffering", "no")
        .body(body)
        .expect("a valid response")
}

fn events(
    user: UserId,
    rx: broadcast::Receiver<Pushed>,
    first: VecDeque<String>,
) -> impl futures::Stream<Item = Result<Frame<Bytes>, Infallible>> + Send {
    futures::stream::unfold(Some((rx, first)), move |state| async move {
        let (mut rx, mut pending) = state?;
        loop {
            if let Some(text) = pending.pop_front() {
                return Some((Ok(Frame::data(Bytes::from(text))), Some((rx, pending))));
            }
            match tokio::time::timeout(HEARTBEAT, rx.recv()).await {
                Err(_) => pending.push_back(": keep-alive\n\n".into()),
                Ok(Ok(p)) if p.user == user => pending.push_back(frame(&p)),
                Ok(Ok(_)) => {}
                // Behind the backlog, or the hub is gone: end; the client resumes from its cursor.
                Ok(Err(RecvError::Lagged(_))) | Ok(Err(RecvError::Closed)) => return None,
            }
        }
    })
}
