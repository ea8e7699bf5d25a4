use super::*;
use serde_json::json;

/// The spec's example body, with `"string"` placeholders made meaningful.
pub fn spec_example() -> Value {
    json!({
        "messageAttributes": {
            "body": "Your case has been updated", "type": "DRAFT", "protocol": "TEXT", "purpose": "F", "isManual": true,
            "subject": "Case update", "metaData": {}, "tags": ["TRASH"],
            "draftAttributes": {"draftStatus": "SCHEDULED", "scheduledOn": "2026-11-22T10:00:00Z", "draftFailureReason": "MDL_EVENT_UNDER_TIME_LIMIT_REASON"},
            "attachments": [{"fileURL": "https://files.example.com/a.pdf", "attachmentExtension": "pdf", "mimeType": "application/pdf", "originalFileName": "a.pdf", "docSize": "1024", "thumbnailURL": "https://files.example.com/a.png", "mediaPreviewURL": "https://files.example.com/a"}],
            "defaultReplyAction": "REPLY", "updateThreadTimestamp": true, "updateTotalMessageCount": true, "showInCustomerConversation": true,
            "messageTags": [{"tagTypeUuid": "t", "referenceIdentifier": "r", "value": {}, "primaryAttribute": {"value": "p"}, "secondaryAttributes": [{"value": "s"}], "parentTags": [{"tagTypeUuid": "t", "referenceIdentifier": "r"}]}]
        },
        "notificationAttributes": {
            "internalSubscribersNotifierPop": true, "externalSubscribersNotifierPop": true, "threadOwnerNotifierPop": true, "sendPhoneNotification": true,
            "additionalNotifierNotificationDAUUIDs": ["x"],
            "notificationButtons": [{"buttonTextTranslationWidgetKey": "k", "buttonTextTranslationKey": "k", "buttonDefaultText": "Open", "buttonTheme": "PRIMARY", "buttonActionEventData": {}, "isPrimaryButton": true}],
            "bodyTagsForSpecialRendering": {}
        },
        "messageSendingAttributesLite": {"delay": 0, "sendSynchronously": true, "callBackUrl": "https://hooks.example.com/cb", "callBackMetadata": {"ticket": 42}}
    })
}

fn fields_of(errors: &[ErrorEntry]) -> Vec<String> {
    errors.iter().map(|e| e.error_description.split(':').next().unwrap_or_default().to_string()).collect()
}

#[test]
fn the_spec_example_parses_with_warnings_for_what_has_no_effect() {
    let n = parse(spec_example().to_string().as_bytes()).unwrap();
    assert_eq!(n.body, "Your case has been updated");
    assert_eq!(n.scheduled_on, Some("2026-11-22T10:00:00Z".parse().unwrap()));
    assert_eq!(n.callback_metadata, Some(json!({"ticket": 42})));
    let warned: Vec<&str> = n.warnings.iter().map(|w| w.warning_description.as_str()).collect();
    for field in [
        "messageAttributes.purpose",
        "messageAttributes.isManual",
        "messageAttributes.tags",
        "notificationAttributes.sendPhoneNotification",
        "messageAttributes.draftAttributes.draftFailureReason",
    ] {
        assert!(warned.iter().any(|w| w.starts_with(field)), "no warning for {field}: {warned:?}");
    }
    let data: Value = serde_json::from_str(n.data.as_deref().unwrap()).unwrap();
    assert_eq!(data["notificationButtons"][0]["buttonDefaultText"], "Open");
}

#[test]
fn every_bad_field_is_an_error_entry_naming_it() {
    let mut body = spec_example();
    body["messageAttributes"]["type"] = json!("SHOUT");
    body["messageAttributes"]["protocol"] = json!(7);
    body["messageAttributes"]["draftAttributes"]["draftStatus"] = json!("LATER");
    body["notificationAttributes"]["notificationButtons"][0]["buttonTheme"] = json!("NEON");
    body["messageSendingAttributesLite"]["delay"] = json!(-5);
    body["messageSendingAttributesLite"]["callBackUrl"] = json!("ftp://x.example.com");
    body["messageSendingAttributesLite"]["sendSynchronously"] = json!("yes");
    let errors = parse(body.to_string().as_bytes()).unwrap_err();
    let fields = fields_of(&errors);
    for f in [
        "messageAttributes.type",
        "messageAttributes.protocol",
        "messageAttributes.draftAttributes.draftStatus",
        "notificationAttributes.notificationButtons[0].buttonTheme",
        "messageSendingAttributesLite.delay",
        "messageSendingAttributesLite.callBackUrl",
        "messageSendingAttributesLite.sendSynchronously",
    ] {
        assert!(fields.contains(&f.to_string()), "{f} missing from {fields:?}");
    }
    assert!(errors.iter().all(|e| e.error_code == "INVALID_FIELD" && !e.error_uid.is_empty()));
}

#[test]
fn required_and_shape_errors() {
    assert_eq!(fields_of(&parse(b"{}").unwrap_err()), vec!["messageAttributes"]);
    assert_eq!(
        fields_of(&parse(br#"{"messageAttributes": {}}"#).unwrap_err()),
        vec!["messageAttributes.body"]
    );
    assert_eq!(
        fields_of(&parse(br#"{"messageAttributes": {"body": "  "}}"#).unwrap_err()),
        vec!["messageAttributes.body"]
    );
    assert_eq!(parse(b"[").unwrap_err()[0].error_code, "INVALID_BODY");
    let both = json!({"messageAttributes": {"body": "b", "draftAttributes": {"draftStatus": "SCHEDULED", "scheduledOn": "2030-01-01T00:00:00Z"}}, "messageSendingAttributesLite": {"delay": 5}});
    assert_eq!(
        fields_of(&parse(both.to_string().as_bytes()).unwrap_err()),
        vec!["messageSendingAttributesLite.delay"]
    );
    let no_time =
        json!({"messageAttributes": {"body": "b", "draftAttributes": {"draftStatus": "SCHEDULED"}}});
    assert_eq!(
        fields_of(&parse(no_time.to_string().as_bytes()).unwrap_err()),
        vec!["messageAttributes.draftAttributes.scheduledOn"]
    );
    let minimal = parse(br#"{"messageAttributes": {"body": "hi"}, "extra": 1}"#).unwrap();
    assert_eq!(
        (minimal.delay_seconds, minimal.send_synchronously, minimal.protocol.as_str()),
        (0, false, "TEXT")
    );
    assert_eq!(minimal.warnings[0].warning_code, "UNKNOWN_FIELD");
    let epoch = json!({"messageAttributes": {"body": "b", "draftAttributes": {"draftStatus": "SCHEDULED", "scheduledOn": "1795338000000"}}});
    assert!(parse(epoch.to_string().as_bytes()).unwrap().scheduled_on.is_some());
}

#[test]
fn domain_errors_take_the_dialect_s_own_codes() {
    use crate::error::{ApiError, ErrorKind};
    let e = error_of(&ApiError::invalid("messageAttributes.body", "is required"));
    assert_eq!(
        (e.error_code.as_str(), e.error_description.as_str()),
        ("INVALID_PARAMETER", "messageAttributes.body: is required")
    );
    assert_eq!(error_of(&ApiError::new(ErrorKind::Conflict, "key reused")).error_code, "CONFLICT");
    assert_eq!(error_of(&ApiError::new(ErrorKind::Unavailable, "retry")).error_code, "SERVICE_UNAVAILABLE");
    assert_eq!(error_of(&ApiError::new(ErrorKind::Internal, "internal error")).error_code, "INTERNAL_ERROR");
    assert!(!error_of(&ApiError::new(ErrorKind::PayloadTooLarge, "big")).error_code.starts_with("WS"));
}
