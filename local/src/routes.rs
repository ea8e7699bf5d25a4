//! Every route of the HTTP API and the function that serves it: the same table as the
//! template's `HttpApi` events (a test checks they are equal).

use lambda_http::{Body, Request, Response};
use shared::runtime::Ports;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Function {
    Send,
    Notify,
    SentHistory,
    Inbox,
}

impl Function {
    /// The workspace package of the function.
    pub fn package(self) -> &'static str {
        match self {
            Function::Send => "send",
            Function::Notify => "notify",
            Function::SentHistory => "sent-history",
            Function::Inbox => "inbox",
        }
    }

    pub async fn call(self, ports: &Ports, req: Request) -> Response<Body> {
        match self {
            Function::Send => send::handle(ports, req).await,
            Function::Notify => notify::handle(ports, req).await,
            Function::SentHistory => sent_history::handle(ports, req).await,
            Function::Inbox => inbox::handle(ports, req).await,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    pub method: &'static str,
    pub path: &'static str,
    pub function: Function,
}

pub const ROUTES: &[Route] = &[
    Route { method: "POST", path: "/rest/notification/send", function: Function::Send },
    Route { method: "GET", path: "/rest/notification/sent", function: Function::SentHistory },
    Route {
        method: "POST",
        path: "/communications/department/{departmentUUID}/user/{userUUID}/notify",
        function: Function::Notify,
    },
    Route { method: "POST", path: "/desktop-assistant/notifications", function: Function::Notify },
    Route { method: "POST", path: "/api/data/v9.2/SendAppNotification", function: Function::Notify },
    Route { method: "GET", path: "/users/{userId}/notifications", function: Function::Inbox },
    Route { method: "GET", path: "/users/{userId}/notifications/count", function: Function::Inbox },
    Route { method: "POST", path: "/users/{userId}/notifications/mark-all-seen", function: Function::Inbox },
    Route { method: "POST", path: "/users/{userId}/notifications/mark-all-read", function: Function::Inbox },
    Route { method: "POST", path: "/users/{userId}/notifications/{id}/seen", function: Function::Inbox },
    Route { method: "POST", path: "/users/{userId}/notifications/{id}/read", function: Function::Inbox },
    Route { method: "POST", path: "/users/{userId}/notifications/{id}/unread", function: Function::Inbox },
    Route { method: "POST", path: "/users/{userId}/notifications/{id}/archive", function: Function::Inbox },
    Route { method: "POST", path: "/users/{userId}/notifications/{id}/unarchive", function: Function::Inbox },
    Route { method: "POST", path: "/users/{userId}/notifications/{id}/dismiss", function: Function::Inbox },
    Route { method: "DELETE", path: "/users/{userId}/notifications/{id}/dismiss", function: Function::Inbox },
    Route { method: "POST", path: "/users/{userId}/realtime-ticket", function: Function::Inbox },
    Route { method: "GET", path: "/users/{userId}/devices", function: Function::Inbox },
    Route { method: "POST", path: "/users/{userId}/devices", function: Function::Inbox },
    Route { method: "DELETE", path: "/users/{userId}/devices/{deviceId}", function: Function::Inbox },
    Route { method: "GET", path: "/users/{userId}/email", function: Function::Inbox },
    Route { method: "GET", path: "/unsubscribe", function: Function::Inbox },
    Route { method: "GET", path: "/", function: Function::Inbox },
    Route { method: "GET", path: "/inbox.js", function: Function::Inbox },
    Route { method: "GET", path: "/inbox.css", function: Function::Inbox },
    Route { method: "POST", path: "/unsubscribe", function: Function::Inbox },
];

#[derive(Debug, PartialEq, Eq)]
pub enum Match {
    Found(Route, Vec<(String, String)>),
    /// The path exists with other methods.
    MethodNotAllowed(Vec<&'static str>),
    NotFound,
}

/// Matches a concrete path against a template (`{name}` segments capture one segment).
fn captures(template: &str, path: &str) -> Option<Vec<(String, String)>> {
    let t: Vec<&str> = template.trim_matches('/').split('/').collect();
    let p: Vec<&str> = path.trim_matches('/').split('/').collect();
    if t.len() != p.len() {
        return None;
    }
    let mut params = Vec::new();
    for (ts, ps) in t.iter().zip(p) {
        match ts.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
            Some(name) if !ps.is_empty() => params.push((name.to_string(), ps.to_string())),
            Some(_) => return None,
            None if *ts == ps => {}
            None => return None,
        }
    }
    Some(params)
}

pub fn find(method: &str, path: &str) -> Match {
    let mut allowed = Vec::new();
    for route in ROUTES {
        if let Some(params) = captures(route.path, path) {
            if route.method.eq_ignore_ascii_case(method) {
                return Match::Found(*route, params);
            }
            allowed.push(route.method);
        }
    }
    if allowed.is_empty() { Match::NotFound } else { Match::MethodNotAllowed(allowed) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_templates_and_methods() {
        match find("POST", "/users/abc/notifications/n1/dismiss") {
            Match::Found(r, params) => {
                assert_eq!(r.function, Function::Inbox);
                assert_eq!(params, vec![("userId".into(), "abc".into()), ("id".into(), "n1".into())]);
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(find("PUT", "/rest/notification/send"), Match::MethodNotAllowed(vec!["POST"]));
        assert_eq!(find("GET", "/nope"), Match::NotFound);
        assert_eq!(find("GET", "/users//notifications"), Match::NotFound);
    }
}
