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

/// What a route asks for: the function that serves it, and which of its operations. Each
/// function matches its own operations exhaustively, so a new one does not compile until the
/// function that serves it handles it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    Send(SendOp),
    SentHistory(SentHistoryOp),
    Notify(NotifyOp),
    Inbox(InboxOp),
}

impl Op {
    /// The function that serves it.
    pub fn function(self) -> Function {
        match self {
            Op::Send(_) => Function::Send,
            Op::SentHistory(_) => Function::SentHistory,
            Op::Notify(_) => Function::Notify,
            Op::Inbox(_) => Function::Inbox,
        }
    }
}

/// `group-send.txt`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SendOp {
    GroupSend,
    /// Cancels a group send (beyond the spec: a sender's control).
    Cancel,
    /// Changes a pending group send (beyond the spec).
    Change,
    /// Retracts a group send that went out (beyond the spec).
    Retract,
    /// Corrects a group send that went out (beyond the spec).
    Correct,
    /// The tenant's status webhook endpoint: read, create or change, remove (beyond the spec).
    WebhookShow,
    WebhookPut,
    WebhookDelete,
    /// A new signing secret, the old one valid a day more.
    WebhookRotate,
    /// One status event and its tries; its replay.
    WebhookEvent,
    WebhookReplay,
}

/// `sent-history.txt`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SentHistoryOp {
    List,
    /// A send's delivery log (beyond the spec).
    Log,
}

/// The three dialects that notify named people.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NotifyOp {
    /// `department-user-notify.txt`.
    Department,
    /// `desktop-assistant.txt`.
    Desktop,
    /// `app-notification.txt`.
    App,
    /// Cancels a department notify (beyond the spec: a sender's control).
    DepartmentCancel,
    /// Cancels an in-app notification (beyond the spec).
    AppCancel,
    /// A department message's delivery log (beyond the spec).
    DepartmentLog,
    /// An in-app notification's delivery log (beyond the spec).
    AppLog,
    /// Retracts a department message that went out (beyond the spec).
    DepartmentRetract,
    /// Corrects a department message that went out (beyond the spec).
    DepartmentCorrect,
    /// Retracts an in-app notification that went out (beyond the spec).
    AppRetract,
    /// Corrects an in-app notification that went out (beyond the spec: an OData update).
    AppCorrect,
}

/// What reaches a person.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum InboxOp {
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
    pub op: Op,
}

impl Route {
    /// The function that serves it.
    pub fn function(&self) -> Function {
        self.op.function()
    }

    /// API Gateway's `routeKey` for it.
    pub fn key(&self) -> String {
        format!("{} {}", self.method, self.path)
    }
}

const fn r(method: &'static str, path: &'static str, op: Op) -> Route {
    Route { method, path, op }
}

const fn inbox(method: &'static str, path: &'static str, op: InboxOp) -> Route {
    r(method, path, Op::Inbox(op))
}

pub const ROUTES: &[Route] = &[
    r("POST", "/rest/notification/send", Op::Send(SendOp::GroupSend)),
    r("DELETE", "/rest/notification/send/{notificationScheduleId}", Op::Send(SendOp::Cancel)),
    r("PATCH", "/rest/notification/send/{notificationScheduleId}", Op::Send(SendOp::Change)),
    r("POST", "/rest/notification/send/{notificationScheduleId}/retract", Op::Send(SendOp::Retract)),
    r("POST", "/rest/notification/send/{notificationScheduleId}/correct", Op::Send(SendOp::Correct)),
    r("GET", "/rest/notification/webhook", Op::Send(SendOp::WebhookShow)),
    r("PUT", "/rest/notification/webhook", Op::Send(SendOp::WebhookPut)),
    r("DELETE", "/rest/notification/webhook", Op::Send(SendOp::WebhookDelete)),
    r("POST", "/rest/notification/webhook/rotate", Op::Send(SendOp::WebhookRotate)),
    r("GET", "/rest/notification/webhook/events/{eventId}", Op::Send(SendOp::WebhookEvent)),
    r("POST", "/rest/notification/webhook/events/{eventId}/replay", Op::Send(SendOp::WebhookReplay)),
    r("GET", "/rest/notification/sent", Op::SentHistory(SentHistoryOp::List)),
    r("GET", "/rest/notification/sent/{notificationScheduleId}/log", Op::SentHistory(SentHistoryOp::Log)),
    r(
        "POST",
        "/communications/department/{departmentUUID}/user/{userUUID}/notify",
        Op::Notify(NotifyOp::Department),
    ),
    r(
        "DELETE",
        "/communications/department/{departmentUUID}/user/{userUUID}/notify/{notificationMessageUUID}",
        Op::Notify(NotifyOp::DepartmentCancel),
    ),
    r("POST", "/desktop-assistant/notifications", Op::Notify(NotifyOp::Desktop)),
    r("POST", "/api/data/v9.2/SendAppNotification", Op::Notify(NotifyOp::App)),
    r("DELETE", "/api/data/v9.2/appnotifications/{NotificationId}", Op::Notify(NotifyOp::AppCancel)),
    r(
        "GET",
        "/communications/department/{departmentUUID}/user/{userUUID}/notify/{notificationMessageUUID}/log",
        Op::Notify(NotifyOp::DepartmentLog),
    ),
    r("GET", "/api/data/v9.2/appnotifications/{NotificationId}/log", Op::Notify(NotifyOp::AppLog)),
    r(
        "POST",
        "/communications/department/{departmentUUID}/user/{userUUID}/notify/{notificationMessageUUID}/retract",
        Op::Notify(NotifyOp::DepartmentRetract),
    ),
    r(
        "POST",
        "/communications/department/{departmentUUID}/user/{userUUID}/notify/{notificationMessageUUID}/correct",
        Op::Notify(NotifyOp::DepartmentCorrect),
    ),
    r("POST", "/api/data/v9.2/appnotifications/{NotificationId}/retract", Op::Notify(NotifyOp::AppRetract)),
    r("PATCH", "/api/data/v9.2/appnotifications/{NotificationId}", Op::Notify(NotifyOp::AppCorrect)),
    inbox("GET", "/users/{userId}/notifications", InboxOp::CenterList),
    inbox("GET", "/users/{userId}/notifications/count", InboxOp::CenterCount),
    inbox("POST", "/users/{userId}/notifications/mark-all-seen", InboxOp::MarkAll),
    inbox("POST", "/users/{userId}/notifications/mark-all-read", InboxOp::MarkAll),
    inbox("POST", "/users/{userId}/notifications/{id}/seen", InboxOp::Mark),
    inbox("POST", "/users/{userId}/notifications/{id}/read", InboxOp::Mark),
    inbox("POST", "/users/{userId}/notifications/{id}/unread", InboxOp::Mark),
    inbox("POST", "/users/{userId}/notifications/{id}/archive", InboxOp::Mark),
    inbox("POST", "/users/{userId}/notifications/{id}/unarchive", InboxOp::Mark),
    inbox("POST", "/users/{userId}/notifications/{id}/dismiss", InboxOp::Mark),
    inbox("DELETE", "/users/{userId}/notifications/{id}/dismiss", InboxOp::Mark),
    inbox("POST", "/users/{userId}/realtime-ticket", InboxOp::RealtimeTicket),
    inbox("GET", "/users/{userId}/devices", InboxOp::ListDevices),
    inbox("POST", "/users/{userId}/devices", InboxOp::RegisterDevice),
    inbox("DELETE", "/users/{userId}/devices/{deviceId}", InboxOp::RemoveDevice),
    inbox("GET", "/users/{userId}/email", InboxOp::EmailStatus),
    inbox("GET", "/unsubscribe", InboxOp::UnsubscribePage),
    inbox("POST", "/unsubscribe", InboxOp::Unsubscribe),
    inbox("GET", "/", InboxOp::WebAsset),
    inbox("GET", "/inbox.js", InboxOp::WebAsset),
    inbox("GET", "/inbox.css", InboxOp::WebAsset),
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
                assert_eq!((r.function(), r.op), (Function::Inbox, Op::Inbox(InboxOp::Mark)));
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
