//! Email through Amazon SES v2 (`SendEmail`, simple content: we render the templates ourselves so
//! that escaping and personalisation are ours and tested).

use async_trait::async_trait;
use aws_sdk_sesv2::Client;
use aws_sdk_sesv2::types::{Body, Content, Destination, EmailContent, Message, MessageHeader};

use super::send_error;
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
        let out = self
            .client
            .send_email()
            .from_email_address(&self.from)
            .destination(Destination::builder().to_addresses(&email.to).build())
            .content(EmailContent::builder().simple(message).build())
            .set_configuration_set_name(self.configuration_set.clone())
            .send()
            .await
            .map_err(|e| send_error(e, &["MessageRejected", "BadRequestException"], &[]))?;
        Ok(out.message_id.unwrap_or_default())
    }
}
