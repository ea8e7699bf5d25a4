//! `POST /api/data/v9.2/SendAppNotification` (app-notification.txt): Title, Body, Recipient,
//! IconType, ToastType, Priority, TTLInSeconds, Data, OverrideContent, Actions. `@odata.type`
//! annotations are accepted and ignored; parameters the message does not have are refused.

use serde_json::{Map, Value};
use uuid::Uuid;

use super::fields::{Fields, object};
use crate::error::ApiError;
use crate::model::*;

pub const MAX_TITLE: usize = 200;
pub const MAX_BODY: usize = 4000;
pub const MAX_DATA: usize = 5000;
pub const MAX_TTL_SECONDS: u64 = 365 * 24 * 3600;
pub const MAX_ACTIONS: usize = 10;
const PARAMETERS: &[&str] = &[
    "Title",
    "Body",
    "Recipient",
    "IconType",
    "ToastType",
    "Priority",
    "TTLInSeconds",
    "Data",
    "OverrideContent",
    "Actions",
];

pub use crate::model::AppNotify;

/// The path's `NotificationId` of a cancel (`DELETE /api/data/v9.2/appnotifications/{NotificationId}`,
/// beyond the spec): a GUID, with or without the braces Dataverse writes some in.
pub fn notification_id(text: Option<&str>) -> Result<Uuid, ApiError> {
    let text = text.unwrap_or_default().trim();
    let bare = text.trim_start_matches('{').trim_end_matches('}');
    bare.parse::<Uuid>()
        .map_err(|_| ApiError::invalid("NotificationId", format!("NotificationId {text:?} is not a GUID")))
}

/// A cancel's answer, in the entity's PascalCase: the notification, `cancelled`, the people it
/// reached (its recipient has it, or is being given it; or nobody, and nobody ever will), when
/// and by whom.
pub fn cancel_answer(c: &crate::service::cancel::Cancelled) -> Value {
    serde_json::json!({
        "NotificationId": c.notification_id,
        "State": Status::Cancelled.word(),
        "PeopleReached": c.reached,
        "CancelledOn": c.cancellation.at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "CancelledBy": c.cancellation.by,
        "AlreadyCancelled": c.repeated,
    })
}

/// A retraction's answer (`POST /api/data/v9.2/appnotifications/{NotificationId}/retract`,
/// beyond the spec), in the entity's PascalCase: `retracted` (removed from its recipient's center
/// in the background, open pages told), the people it reached, when and by whom, and what went
/// out by email or push, which cannot be recalled.
pub fn retract_answer(r: &crate::service::recall::Retracted) -> Value {
    serde_json::json!({
        "NotificationId": r.notification_id,
        "State": "retracted",
        "PeopleReached": r.reached,
        "RetractedOn": r.retraction.at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "RetractedBy": r.retraction.by,
        "AlreadyRetracted": r.repeated,
        "EmailsSent": r.emails_sent,
        "PushesSent": r.pushes_sent,
        "Note": crate::service::recall::NOT_RECALLED,
    })
}

/// A retraction's body: none.
pub fn parse_retraction(body: &[u8]) -> Result<(), ApiError> {
    super::fields::no_body(body, "a retraction")
}

/// The parameters a correction may give.
const CORRECT_PARAMETERS: &[&str] = &["Title", "Body", "OverrideContent"];

/// A correction's body (`PATCH /api/data/v9.2/appnotifications/{NotificationId}`, beyond the
/// spec): `Title`, `Body`, and `OverrideContent`'s `title` and `body` (each `null` removes that
/// override; `OverrideContent: null` both), with the send's limits; at least one; anything else
/// (its recipient, its icon, its actions, its expiry) is refused.
pub fn parse_correction(body: &[u8]) -> Result<ContentCorrection, ApiError> {
    let map = object(body)?;
    if let Some(k) = keys(&map).find(|k| !CORRECT_PARAMETERS.contains(&k.as_str())) {
        return Err(ApiError::invalid(
            k.as_str(),
            format!(
                "{k} cannot be corrected after the notification went out (only {})",
                CORRECT_PARAMETERS.join(", ")
            ),
        ));
    }
    let f = Fields::new(&map);
    // `Title` is required of a send: it can be replaced, not removed. `Body: null` empties it, as
    // a send without one.
    let title = match map.get("Title") {
        None => None,
        Some(_) => Some(f.req_str("Title", MAX_TITLE)?),
    };
    let body = match map.get("Body") {
        None => None,
        Some(_) => Some(f.opt_str("Body", MAX_BODY)?.unwrap_or_default()),
    };
    let mut correction = ContentCorrection { title, body, ..Default::default() };
    match map.get("OverrideContent") {
        None => {}
        Some(Value::Null) => {
            correction.override_title = Some(None);
            correction.override_body = Some(None);
        }
        Some(_) => {
            let o = f.opt_object("OverrideContent")?.expect("present and not null");
            if let Some(k) = keys(o).find(|k| !["title", "body"].contains(&k.as_str())) {
                let name = format!("OverrideContent.{k}");
                return Err(ApiError::invalid(
                    &name,
                    format!("{name} cannot be corrected (only title and body)"),
                ));
            }
            let of = Fields::nested(o, "OverrideContent");
            if o.contains_key("title") {
                correction.override_title = Some(of.opt_str("title", MAX_TITLE * 4)?);
            }
            if o.contains_key("body") {
                correction.override_body = Some(of.opt_str("body", MAX_BODY)?);
            }
        }
    }
    if correction.is_empty() {
        return Err(ApiError::invalid(
            "Title",
            format!("a correction gives at least one of {}", CORRECT_PARAMETERS.join(", ")),
        ));
    }
    Ok(correction)
}

/// A correction's answer: the notification as its recipient's center shows it now (its read and
/// dismissed state kept), when and by whom, and what went out by email or push.
pub fn correct_answer(n: &Notification) -> Value {
    let corrected =
        n.corrected.clone().unwrap_or(Cancellation { at: n.modified_at, by: n.modified_by.clone() });
    let mut answer = serde_json::json!({
        "NotificationId": n.id,
        "State": n.status.word(),
        "Title": n.content.title,
        "Body": n.content.body,
        "CorrectedOn": corrected.at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "CorrectedBy": corrected.by,
        "EmailsSent": n.emails_sent,
        "PushesSent": n.pushes_sent,
        "Note": crate::service::recall::NOT_RECALLED,
    });
    if let Some(o) = &n.content.override_content {
        answer["OverrideContent"] = serde_json::json!({"title": o.title, "body": o.body});
    }
    answer
}

/// The OData error body of a domain error: `{"error": {"code", "message", "parameter"}}`, with
/// the Dataverse code of its status.
pub fn error_body(e: &ApiError) -> Value {
    let code = match e.status() {
        400 | 413 => "0x80040203",
        401 => "0x80048306",
        403 => "0x80040220",
        404 => "0x80040217",
        409 => "0x80040237",
        _ => "0x80040216",
    };
    let mut error = serde_json::json!({ "code": code, "message": e.message });
    if let Some(p) = &e.parameter {
        error["parameter"] = Value::String(p.clone());
    }
    if let Some(state) = e.state {
        error["state"] = Value::String(state.into());
    }
    serde_json::json!({ "error": error })
}

/// Keys of an object without the OData annotations (`@odata.type`, `actions@odata.type`).
fn keys(map: &Map<String, Value>) -> impl Iterator<Item = &String> {
    map.keys().filter(|k| !k.contains("@odata."))
}

fn refuse_unknown(map: &Map<String, Value>, known: &[&str], path: &str) -> Result<(), ApiError> {
    match keys(map).find(|k| !known.contains(&k.as_str())) {
        Some(k) => {
            let name = format!("{path}{k}");
            Err(ApiError::invalid(&name, format!("{name} is not a parameter of SendAppNotification")))
        }
        None => Ok(()),
    }
}

/// `/systemusers(<guid>)`: the only kind of recipient.
pub fn parse_recipient(text: &str) -> Result<Uuid, ApiError> {
    let t = text.trim().trim_start_matches('/');
    if t.starts_with("teams(") {
        return Err(ApiError::invalid(
            "Recipient",
            "sending a notification to a team is not supported; send one to each user",
        ));
    }
    t.strip_prefix("systemusers(")
        .and_then(|r| r.strip_suffix(')'))
        .and_then(|g| g.trim_matches(|c| c == '{' || c == '}').parse::<Uuid>().ok())
        .ok_or_else(|| {
            ApiError::invalid("Recipient", format!("Recipient {text:?} must be /systemusers(<user GUID>)"))
        })
}

fn option(f: &Fields, name: &str, values: &[(u64, &'static str)]) -> Result<Option<&'static str>, ApiError> {
    match f.opt_u64(name)? {
        None => Ok(None),
        Some(v) => values.iter().find(|(n, _)| *n == v).map(|(_, s)| Some(*s)).ok_or_else(|| {
            let allowed: Vec<String> = values.iter().map(|(n, s)| format!("{n} ({s})")).collect();
            ApiError::invalid(name, format!("{name} {v} is not one of {}", allowed.join(", ")))
        }),
    }
}

fn parse_action(i: usize, v: &Value) -> Result<Action, ApiError> {
    let path = format!("Actions.actions[{i}]");
    let obj = v.as_object().ok_or_else(|| ApiError::invalid(&path, format!("{path} must be an object")))?;
    refuse_unknown(obj, &["title", "data"], &format!("{path}."))?;
    let f = Fields::nested(obj, &path);
    let title = f.req_str("title", 100)?;
    let data = f.opt_object("data")?.ok_or_else(|| f.error("data", "is required"))?;
    let dpath = format!("{path}.data");
    let d = Fields::nested(data, &dpath);
    let kind = d.req_str("type", 20)?;
    let data = match kind.as_str() {
        "url" => {
            refuse_unknown(data, &["type", "url", "navigationTarget"], &format!("{dpath}."))?;
            let url = d.req_str("url", 2048)?;
            let navigation_target = match d.opt_str("navigationTarget", 20)?.as_deref() {
                None => None,
                Some("dialog") => Some(NavigationTarget::Dialog),
                Some("inline") => Some(NavigationTarget::Inline),
                Some("newWindow") => Some(NavigationTarget::NewWindow),
                Some(other) => {
                    return Err(
                        d.error("navigationTarget", format!("{other:?} is not dialog, inline or newWindow"))
                    );
                }
            };
            ActionData::Url { url, navigation_target }
        }
        "sidepane" => {
            refuse_unknown(data, &["type", "paneOptions", "navigationTarget"], &format!("{dpath}."))?;
            let pane_options = d.opt_object("paneOptions")?.map(|o| Value::Object(strip_annotations(o)));
            let target = d
                .opt_object("navigationTarget")?
                .ok_or_else(|| d.error("navigationTarget", "is required"))?;
            let t = Fields::nested(target, &format!("{dpath}.navigationTarget"));
            t.req_str("pageType", 50)?;
            for key in ["entityName", "entityId"] {
                t.opt_str(key, 100)?;
            }
            ActionData::Sidepane { pane_options, navigation_target: Value::Object(strip_annotations(target)) }
        }
        "teamsChat" => {
            refuse_unknown(
                data,
                &["type", "chatId", "memberIds", "entityContext", "chatTitle", "initialMessage"],
                &format!("{dpath}."),
            )?;
            let chat_id = d.opt_str("chatId", 200)?.filter(|c| !c.is_empty());
            let member_ids = d.opt_str_array("memberIds", 64)?.unwrap_or_default();
            let entity_context = d.opt_object("entityContext")?;
            if chat_id.is_some() && (!member_ids.is_empty() || entity_context.is_some()) {
                return Err(d.error(
                    "chatId",
                    "opens an existing chat: give either chatId, or memberIds/entityContext for a new chat",
                ));
            }
            if let Some(ctx) = entity_context {
                let c = Fields::nested(ctx, &format!("{dpath}.entityContext"));
                c.req_str("entityName", 100)?;
                c.req_str("recordId", 64)?;
            }
            ActionData::TeamsChat {
                chat_id,
                member_ids,
                entity_context: entity_context.map(|c| Value::Object(strip_annotations(c))),
                chat_title: d.opt_str("chatTitle", 200)?,
                initial_message: d.opt_str("initialMessage", 2000)?,
            }
        }
        other => return Err(d.error("type", format!("{other:?} is not url, sidepane or teamsChat"))),
    };
    Ok(Action { title, data })
}

fn strip_annotations(map: &Map<String, Value>) -> Map<String, Value> {
    map.iter().filter(|(k, _)| !k.contains("@odata.")).map(|(k, v)| (k.clone(), v.clone())).collect()
}

pub fn parse(body: &[u8]) -> Result<AppNotify, ApiError> {
    let map = object(body)?;
    refuse_unknown(&map, PARAMETERS, "")?;
    let f = Fields::new(&map);
    let title = f.req_str("Title", MAX_TITLE)?;
    let body_text = f.opt_str("Body", MAX_BODY)?.unwrap_or_default();
    let recipient = parse_recipient(&f.req_str("Recipient", 200)?)?;
    let icon = match option(
        &f,
        "IconType",
        &[
            (100000000, "Info"),
            (100000001, "Success"),
            (100000002, "Failure"),
            (100000003, "Warning"),
            (100000004, "Mention"),
            (100000005, "Custom"),
        ],
    )? {
        None | Some("Info") => IconType::Info,
        Some("Success") => IconType::Success,
        Some("Failure") => IconType::Failure,
        Some("Warning") => IconType::Warning,
        Some("Mention") => IconType::Mention,
        Some(_) => IconType::Custom,
    };
    let toast = match option(&f, "ToastType", &[(200000000, "Timed"), (200000001, "Hidden")])? {
        Some("Hidden") => ToastType::Hidden,
        _ => ToastType::Timed,
    };
    let priority = match option(&f, "Priority", &[(200000000, "Normal"), (200000001, "High")])? {
        Some("High") => Priority::High,
        _ => Priority::Normal,
    };
    let ttl_seconds = match f.opt_u64("TTLInSeconds")? {
        None => DEFAULT_TTL_SECONDS,
        Some(t @ 1..=MAX_TTL_SECONDS) => t,
        Some(_) => {
            return Err(ApiError::invalid(
                "TTLInSeconds",
                format!("TTLInSeconds must be 1 to {MAX_TTL_SECONDS}"),
            ));
        }
    };
    // Data is JSON for the client: given as a string (as the Web API sends it) or inline.
    let data = match f.get("Data") {
        None => None,
        Some(Value::String(s)) => {
            if serde_json::from_str::<Value>(s).is_err() {
                return Err(ApiError::invalid("Data", "Data must be JSON text"));
            }
            Some(s.clone())
        }
        Some(v @ (Value::Object(_) | Value::Array(_))) => Some(v.to_string()),
        Some(_) => {
            return Err(ApiError::invalid("Data", "Data must be JSON (a string of JSON, or an object)"));
        }
    };
    if let Some(d) = &data {
        let len = d.chars().count();
        if len > MAX_DATA {
            return Err(ApiError::invalid(
                "Data",
                format!("Data must be at most {MAX_DATA} characters (got {len})"),
            ));
        }
    }
    let override_content = match f.opt_object("OverrideContent")? {
        None => None,
        Some(o) => {
            refuse_unknown(o, &["title", "body", "iconUrl"], "OverrideContent.")?;
            let of = Fields::nested(o, "OverrideContent");
            Some(OverrideContent {
                title: of.opt_str("title", MAX_TITLE * 4)?,
                body: of.opt_str("body", MAX_BODY)?,
                icon_url: of.opt_str("iconUrl", 2048)?.filter(|u| !u.trim().is_empty()),
            })
        }
    };
    if icon == IconType::Custom && override_content.as_ref().and_then(|o| o.icon_url.as_ref()).is_none() {
        return Err(ApiError::invalid(
            "OverrideContent.iconUrl",
            "IconType Custom (100000005) needs OverrideContent.iconUrl",
        ));
    }
    let actions = match f.opt_object("Actions")? {
        None => Vec::new(),
        Some(a) => {
            refuse_unknown(a, &["actions"], "Actions.")?;
            let list = Fields::nested(a, "Actions").opt_array("actions")?.cloned().unwrap_or_default();
            if list.len() > MAX_ACTIONS {
                return Err(ApiError::invalid("Actions.actions", format!("at most {MAX_ACTIONS} actions")));
            }
            list.iter().enumerate().map(|(i, v)| parse_action(i, v)).collect::<Result<Vec<_>, _>>()?
        }
    };
    Ok(AppNotify {
        recipient,
        content: Content {
            title,
            body: body_text,
            url: None,
            override_content,
            icon,
            toast,
            priority,
            actions,
            data,
            source: None,
        },
        ttl_seconds,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const R: &str = "/systemusers(11111111-1111-4111-8111-111111111111)";

    fn param(v: Value) -> Option<String> {
        parse(v.to_string().as_bytes()).unwrap_err().parameter
    }

    #[test]
    fn spec_examples_parse() {
        let welcome = parse(json!({"Title": "Welcome", "Body": "Welcome to the world of app notifications!", "Recipient": R, "IconType": 100000000, "ToastType": 200000000}).to_string().as_bytes()).unwrap();
        assert_eq!(
            (welcome.content.icon, welcome.content.toast, welcome.content.priority, welcome.ttl_seconds),
            (IconType::Info, ToastType::Timed, Priority::Normal, 1_209_600)
        );
        let sla = parse(json!({"Title": "SLA critical", "Body": "Record assigned to you is critically past SLA.", "Recipient": R, "IconType": 100000003, "ToastType": 200000000,
            "OverrideContent": {"@odata.type": "#Microsoft.Dynamics.CRM.expando", "title": "**SLA critical**", "body": "Case record [Complete overhaul required (sample)](?pagetype=entityrecord&etn=incident&id=0a9f62a8-90df-e311-9565-a45d36fc5fe8) assigned is critically past SLA and has been escalated to your manager."}}).to_string().as_bytes()).unwrap();
        assert_eq!(sla.content.override_content.unwrap().title.as_deref(), Some("**SLA critical**"));
        let custom = parse(json!({"Title": "Welcome", "Body": "b", "Recipient": R, "IconType": 100000005, "OverrideContent": {"@odata.type": "#Microsoft.Dynamics.CRM.expando", "iconUrl": "/WebResources/cr245_AlertOn"}}).to_string().as_bytes()).unwrap();
        assert_eq!(custom.content.icon, IconType::Custom);
        let url = parse(json!({"Title": "Congratulations", "Body": "b", "Recipient": R, "IconType": 100000001, "ToastType": 200000000,
            "Actions": {"@odata.type": "Microsoft.Dynamics.CRM.expando", "actions@odata.type": "#Collection(Microsoft.Dynamics.CRM.expando)",
                "actions": [{"title": "View cases", "data": {"@odata.type": "#Microsoft.Dynamics.CRM.expando", "type": "url", "url": "?pagetype=entitylist&etn=incident&viewid=00000000-0000-0000-00aa-000010001028&viewType=1039", "navigationTarget": "newWindow"}}]}}).to_string().as_bytes()).unwrap();
        assert!(matches!(
            &url.content.actions[0].data,
            ActionData::Url { navigation_target: Some(NavigationTarget::NewWindow), .. }
        ));
        let pane = parse(json!({"Title": "New task", "Body": "b", "Recipient": R, "Actions": {"actions": [
            {"title": "View task", "data": {"@odata.type": "#x", "type": "sidepane", "paneOptions": {"@odata.type": "#x", "title": "Task Record", "width": 400}, "navigationTarget": {"@odata.type": "#x", "pageType": "entityrecord", "entityName": "task", "entityId": "<Task ID>"}}},
            {"title": "View account", "data": {"type": "sidepane", "paneOptions": {"title": "Account Record", "width": 400}, "navigationTarget": {"pageType": "entityrecord", "entityName": "account", "entityId": "<Account ID>"}}}]}}).to_string().as_bytes()).unwrap();
        assert_eq!(pane.content.actions.len(), 2);
        match &pane.content.actions[0].data {
            ActionData::Sidepane { pane_options, navigation_target } => {
                assert_eq!(pane_options.as_ref().unwrap()["width"], 400);
                assert!(navigation_target.get("@odata.type").is_none(), "annotations dropped");
            }
            other => panic!("{other:?}"),
        }
        let chat = parse(json!({"Title": "New order posted", "Body": "b", "Recipient": R, "Actions": {"actions": [{"title": "Chat with sales rep", "data": {"type": "teamsChat", "memberIds@odata.type": "#Collection(String)", "memberIds": ["a", "b"], "entityContext": {"@odata.type": "#x", "entityName": "account", "recordId": "r1"}}}]}}).to_string().as_bytes()).unwrap();
        assert!(
            matches!(&chat.content.actions[0].data, ActionData::TeamsChat { member_ids, .. } if member_ids.len() == 2)
        );
    }

    #[test]
    fn bad_input_names_the_parameter() {
        let base = json!({"Title": "t", "Recipient": R});
        let with = |k: &str, v: Value| {
            let mut b = base.clone();
            b[k] = v;
            b
        };
        assert_eq!(
            param(with("Recipient", json!("/teams(11111111-1111-4111-8111-111111111111)"))).as_deref(),
            Some("Recipient")
        );
        assert_eq!(param(with("Recipient", json!("bob"))).as_deref(), Some("Recipient"));
        assert_eq!(param(with("Data", json!("x".repeat(5001)))).as_deref(), Some("Data"));
        assert!(
            parse(with("Data", json!(format!("\"{}\"", "x".repeat(4998)))).to_string().as_bytes()).is_ok(),
            "5,000 characters is allowed"
        );
        assert_eq!(param(with("Data", json!("{not json"))).as_deref(), Some("Data"));
        assert_eq!(param(with("IconType", json!(100000009))).as_deref(), Some("IconType"));
        assert_eq!(param(with("IconType", json!(100000005))).as_deref(), Some("OverrideContent.iconUrl"));
        assert_eq!(param(with("ToastType", json!(1))).as_deref(), Some("ToastType"));
        assert_eq!(param(with("Priority", json!("High"))).as_deref(), Some("Priority"));
        assert_eq!(param(with("TTLInSeconds", json!(0))).as_deref(), Some("TTLInSeconds"));
        assert_eq!(param(with("Title", json!(""))).as_deref(), Some("Title"));
        assert_eq!(param(with("Title", json!("t".repeat(201)))).as_deref(), Some("Title"));
        assert_eq!(param(with("Colour", json!("red"))).as_deref(), Some("Colour"));
        assert_eq!(
            param(with("Actions", json!({"actions": [{"title": "x", "data": {"type": "url"}}]}))).as_deref(),
            Some("Actions.actions[0].data.url")
        );
        assert_eq!(param(with("Actions", json!({"actions": [{"title": "x", "data": {"type": "url", "url": "u", "navigationTarget": "tab"}}]}))).as_deref(), Some("Actions.actions[0].data.navigationTarget"));
        assert_eq!(
            param(with("Actions", json!({"actions": [{"title": "x", "data": {"type": "popup"}}]})))
                .as_deref(),
            Some("Actions.actions[0].data.type")
        );
        assert_eq!(
            param(with("Actions", json!({"actions": [{"title": "x", "data": {"type": "sidepane"}}]})))
                .as_deref(),
            Some("Actions.actions[0].data.navigationTarget")
        );
        assert_eq!(param(with("Actions", json!({"actions": [{"title": "x", "data": {"type": "teamsChat", "chatId": "c", "memberIds": ["m"]}}]}))).as_deref(), Some("Actions.actions[0].data.chatId"));
        assert_eq!(param(with("Actions", json!({"actions": [{"title": "x", "data": {"type": "teamsChat", "entityContext": {"entityName": "a"}}}]}))).as_deref(), Some("Actions.actions[0].data.entityContext.recordId"));
        let mut no_title = base.clone();
        no_title.as_object_mut().unwrap().remove("Title");
        assert_eq!(param(no_title).as_deref(), Some("Title"));
    }
}
