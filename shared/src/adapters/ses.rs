//! Email through Amazon SES v2 (`SendEmail`, simple content: we render the templates ourselves so
//! that escaping and personalisation are ours and tested).

use async_trait::async_trait;
use aws_sdk_sesv2::Client;
use aws_sdk_sesv2::types::{Body, Content, Destination, EmailContent, Message, MessageHeader, MessageTag};

use super::send_error;
use crate::model::{EmailFeedback, FeedbackKind};
use crate::ports::{Mailer, OutgoingEmail, SendError};

pub struct SesMailer {
    client: Client,
    from: String,
    configuration_set: Option<String>,
}

impl SesMailer {
    pub fn new(client: Client, from: impl Into<String>, configuration_set: Option<String>) -> Self {
        SesMailer { client, from: from.into(), configuration_set }
    }
}

fn utf8(data: &str) -> Result<Content, SendError> {
    Content::builder().data(data).charset("UTF-8").build().map_err(|e| SendError::Rejected(e.to_string()))
}

/// The message tag that carries the notification an email is about.
pub const NOTIFICATION_TAG: &str = "notification";

#[async_trait]
impl Mailer for SesMailer {
    async fn send(&self, email: &OutgoingEmail) -> Result<String, SendError> {
        let mut headers = Vec::with_capacity(email.headers.len());
        for (name, value) in &email.headers {
            headers.push(
                MessageHeader::builder()
                    .name(name)
                    .value(value)
                    .build()
                    .map_err(|e| SendError::Rejected(e.to_string()))?,
            );
        }
        let message = Message::builder()
            .subject(utf8(&email.subject)?)
            .body(Body::builder().html(utf8(&email.html)?).text(utf8(&email.text)?).build())
            .set_headers((!headers.is_empty()).then_some(headers))
            .build();
        // SES publishes the email's tags with its events: the notification comes back with a
        // bounce or complaint (a UUID is within the tag value alphabet), and so does the request
        // it came from (the trace the email job runs in).
        let tag = |name: &str, value: String| {
            MessageTag::builder()
                .name(name)
                .value(value)
                .build()
                .map_err(|e| SendError::Rejected(e.to_string()))
        };
        let mut tags = Vec::new();
        if let Some(id) = email.notification {
            tags.push(tag(NOTIFICATION_TAG, id.to_string())?);
        }
        if let Some(request) = crate::trace::current().request.filter(|r| crate::trace::is_tag_value(r)) {
            tags.push(tag(crate::trace::REQUEST_TAG, request)?);
        }
        let tags = (!tags.is_empty()).then_some(tags);
        let out = self
            .client
            .send_email()
            .from_email_address(&self.from)
            .destination(Destination::builder().to_addresses(&email.to).build())
            .content(EmailContent::builder().simple(message).build())
            .set_email_tags(tags)
            .set_configuration_set_name(self.configuration_set.clone())
            .send()
            .await
            .map_err(|e| send_error(e, &["MessageRejected", "BadRequestException"], &[]))?;
        Ok(out.message_id.unwrap_or_default())
    }
}

/// Reads an SES event record ("Contents of event data that Amazon SES publishes to Amazon SNS"):
/// a permanent bounce or a complaint, with the email's id, its recipients and the notification
/// it was about (its tag); `None` for other events (sends, deliveries, transient bounces, which
/// SES retries itself). SNS's envelope (a subscription without raw delivery) is unwrapped.
pub fn parse_event(body: &str) -> Result<Option<EmailFeedback>, String> {
    let mut event: serde_json::Value = serde_json::from_str(body).map_err(|e| format!("not JSON: {e}"))?;
    if event.get("Type").and_then(|t| t.as_str()) == Some("Notification") {
        let message =
            event.get("Message").and_then(|m| m.as_str()).ok_or("an SNS notification without Message")?;
        event = serde_json::from_str(message).map_err(|e| format!("SNS Message is not JSON: {e}"))?;
    }
    let kind = event
        .get("eventType")
        .or_else(|| event.get("notificationType"))
        .and_then(|t| t.as_str())
        .ok_or("no eventType")?;
    let (kind, detail, recipients) = match kind {
        "Bounce" => {
            let bounce = event.get("bounce").ok_or("a Bounce without bounce")?;
            if bounce.get("bounceType").and_then(|t| t.as_str()) != Some("Permanent") {
                return Ok(None);
            }
            (FeedbackKind::Bounce, bounce, "bouncedRecipients")
        }
        "Complaint" => (
            FeedbackKind::Complaint,
            event.get("complaint").ok_or("a Complaint without complaint")?,
            "complainedRecipients",
        ),
        _ => return Ok(None),
    };
    let addresses: Vec<String> = detail
        .get(recipients)
        .and_then(|r| r.as_array())
        .ok_or_else(|| format!("no {recipients}"))?
        .iter()
        .filter_map(|r| r.get("emailAddress").and_then(|a| a.as_str()))
        .map(|a| a.trim().to_ascii_lowercase())
        .collect();
    let mail = event.get("mail").ok_or("no mail")?;
    let message_id = mail.get("messageId").and_then(|m| m.as_str()).ok_or("no mail.messageId")?.to_string();
    let tag = |name: &str| {
        mail.get("tags").and_then(|t| t.get(name)).and_then(|v| v.get(0)).and_then(|v| v.as_str())
    };
    let notification = tag(NOTIFICATION_TAG).and_then(|v| v.parse().ok());
    let request =
        tag(crate::trace::REQUEST_TAG).filter(|r| crate::trace::is_tag_value(r)).map(str::to_string);
    let at = detail
        .get("timestamp")
        .or_else(|| mail.get("timestamp"))
        .and_then(|t| t.as_str())
        .and_then(|t| t.parse().ok())
        .ok_or("no timestamp")?;
    Ok(Some(EmailFeedback { kind, message_id, addresses, notification, request, at }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bounce(tags: serde_json::Value) -> String {
        serde_json::json!({"eventType": "Bounce", "mail": {"timestamp": "2026-11-22T09:00:00.000Z",
            "messageId": "m-1", "destination": ["a@example.com"], "tags": tags},
            "bounce": {"bounceType": "Permanent", "timestamp": "2026-11-22T09:00:05.000Z",
            "bouncedRecipients": [{"emailAddress": "a@example.com"}]}})
        .to_string()
    }

    #[test]
    fn feedback_names_the_notification_and_request_its_tags_carry() {
        let id = uuid::Uuid::from_u128(4);
        let request = uuid::Uuid::from_u128(5).to_string();
        let read =
            parse_event(&bounce(serde_json::json!({"notification": [id.to_string()], "request": [request]})))
                .unwrap()
                .unwrap();
        assert_eq!((read.notification, read.request), (Some(id), Some(request)));
        // An email of an earlier version has no request tag; a value SES would not take is none.
        let read =
            parse_event(&bounce(serde_json::json!({"notification": [id.to_string()]}))).unwrap().unwrap();
        assert_eq!((read.notification, read.request), (Some(id), None));
        let read = parse_event(&bounce(serde_json::json!({"request": ["a=b"]}))).unwrap().unwrap();
        assert_eq!((read.notification, read.request), (None, None));
    }
}
