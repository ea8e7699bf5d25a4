//! Every route of the HTTP API, the function that serves it and the operation it names: the one
//! table the functions dispatch on (by API Gateway's `routeKey`, `"POST /rest/notification/send"`),
//! the local runner routes by, and `template.yaml`'s `HttpApi` events and `openapi.yaml`'s paths
//! are checked against (tests/tests/parity.rs). A new route is a row here, its template event and
//! its OpenAPI path; the function that serves it matches its `Op`.
//!
//! Plain data: this module imports nothing of the crate.

/// The functions that serve the HTTP API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Function {
    Send,
    Notify,
    SentHistory,
    Inbox,
}

impl Function {
    /// The workspace package of the function (its `CodeUri` is `functions/<package>`).
    pub fn package(self) -> &'static str {
        match self {
            Function::Send => "send",
            Function::Notify => "notify",
            Function::SentHistory => "sent-history",
            Function::Inbox => "inbox",
        }
    }
}

/// What a route asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    /// `group-send.txt`: send to a group.
    GroupSend,
    /// `sent-history.txt`.
    SentHistory,
    /// `department-user-notify.txt`.
    DepartmentNotify,
    /// `desktop-assistant.txt`.
    DesktopNotify,
    /// `app-notification.txt`.
    AppNotification,
    /// The center: the list, the badge's count, everything at once, one notification.
    CenterList,
    CenterCount,
    MarkAll,
    Mark,
    /// A ticket to open the realtime channel with.
    RealtimeTicket,
    /// Push devices: list, register, remove.
    ListDevices,
    RegisterDevice,
    RemoveDevice,
    /// The person's email status.
    EmailStatus,
    /// An email's unsubscribe link: the confirmation page (GET), the unsubscribe itself (POST).
    UnsubscribePage,
    Unsubscribe,
    /// The web inbox's page, script and style.
    WebAsset,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    pub method: &'static str,
    /// The template's path, `{name}` for a parameter.
    pub path: &'static str,
    pub function: Function,
    pub op: Op,
}

impl Route {
    /// API Gateway's `routeKey` for it.
    pub fn key(&self) -> String {
        format!("{} {}", self.method, self.path)
    }
}

const fn r(method: &'static str, path: &'static str, function: Function, op: Op) -> Route {
    Route { method, path, function, op }
}

use Function::{Inbox, Notify, Send, SentHistory};

pub const ROUTES: &[Route] = &[
    r("POST", "/rest/notification/send", Send, Op::GroupSend),
    r("GET", "/rest/notification/sent", SentHistory, Op::SentHistory),
    r(
        "POST",
        "/communications/department/{departmentUUID}/user/{userUUID}/notify",
        Notify,
        Op::DepartmentNotify,
    ),
    r("POST", "/desktop-assistant/notifications", Notify, Op::DesktopNotify),
    r("POST", "/api/data/v9.2/SendAppNotification", Notify, Op::AppNotification),
    r("GET", "/users/{userId}/notifications", Inbox, Op::CenterList),
    r("GET", "/users/{userId}/notifications/count", Inbox, Op::CenterCount),
    r("POST", "/users/{userId}/notifications/mark-all-seen", Inbox, Op::MarkAll),
    r("POST", "/users/{userId}/notifications/mark-all-read", Inbox, Op::MarkAll),
    r("POST", "/users/{userId}/notifications/{id}/seen", Inbox, Op::Mark),
    r("POST", "/users/{userId}/notifications/{id}/read", Inbox, Op::Mark),
    r("POST", "/users/{userId}/notifications/{id}/unread", Inbox, Op::Mark),
    r("POST", "/users/{userId}/notifications/{id}/archive", Inbox, Op::Mark),
    r("POST", "/users/{userId}/notifications/{id}/unarchive", Inbox, Op::Mark),
    r("POST", "/users/{userId}/notifications/{id}/dismiss", Inbox, Op::Mark),
    r("DELETE", "/users/{userId}/notifications/{id}/dismiss", Inbox, Op::Mark),
    r("POST", "/users/{userId}/realtime-ticket", Inbox, Op::RealtimeTicket),
    r("GET", "/users/{userId}/devices", Inbox, Op::ListDevices),
    r("POST", "/users/{userId}/devices", Inbox, Op::RegisterDevice),
    r("DELETE", "/users/{userId}/devices/{deviceId}", Inbox, Op::RemoveDevice),
    r("GET", "/users/{userId}/email", Inbox, Op::EmailStatus),
    r("GET", "/unsubscribe", Inbox, Op::UnsubscribePage),
    r("POST", "/unsubscribe", Inbox, Op::Unsubscribe),
    r("GET", "/", Inbox, Op::WebAsset),
    r("GET", "/inbox.js", Inbox, Op::WebAsset),
    r("GET", "/inbox.css", Inbox, Op::WebAsset),
];

/// The route of an API Gateway `routeKey` (`"METHOD /path/{param}"`); `None` for any other
/// (`$default`, a route this table does not have).
pub fn by_key(route_key: &str) -> Option<&'static Route> {
    let (method, path) = route_key.split_once(' ')?;
    ROUTES.iter().find(|r| r.method == method && r.path == path)
}

#[derive(Debug, PartialEq, Eq)]
pub enum Match {
    /// The route, and the path's parameters by name.
    Found(&'static Route, Vec<(String, String)>),
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

/// The route a concrete request path takes, as API Gateway would choose it (a request with no
/// `routeKey`: the local runner's server, and an invocation by hand).
pub fn find(method: &str, path: &str) -> Match {
    let mut allowed = Vec::new();
    for route in ROUTES {
        if let Some(params) = captures(route.path, path) {
            if route.method.eq_ignore_ascii_case(method) {
                return Match::Found(route, params);
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
                assert_eq!((r.function, r.op), (Function::Inbox, Op::Mark));
                assert_eq!(params, vec![("userId".into(), "abc".into()), ("id".into(), "n1".into())]);
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(find("PUT", "/rest/notification/send"), Match::MethodNotAllowed(vec!["POST"]));
        assert_eq!(find("GET", "/nope"), Match::NotFound);
        assert_eq!(find("GET", "/users//notifications"), Match::NotFound);
    }

    #[test]
    fn route_keys_name_one_route_each() {
        for route in ROUTES {
            assert_eq!(by_key(&route.key()), Some(route), "{}", route.key());
        }
        let keys: std::collections::BTreeSet<String> = ROUTES.iter().map(Route::key).collect();
        assert_eq!(keys.len(), ROUTES.len(), "no route twice");
        assert_eq!(by_key("$default"), None);
        assert_eq!(by_key("GET /users/{userId}/notification"), None);
        assert_eq!(by_key("get /rest/notification/sent"), None, "API Gateway's keys are upper case");
    }
}
