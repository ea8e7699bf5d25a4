//! A notification's email content apart from it: `N#{id}#C`/`BODY` (the body) and
//! `N#{id}#C`/`PARAMS` (the parameters), written once, in the transaction that inserts the
//! notification, under a partition key of their own; `emailApart` on the notification's item
//! says they exist. So the notification's item, which every status change rewrites and the
//! history indexes copy, weighs what its message does whatever its email weighs (up to
//! 300 KB: the group-send dialect's `MAX_EMAIL_BODY_BYTES`), and a chunk's read of it is as small (decision 0018).
//!
//! Who reads the content: `get` (all of it, for the one notification), an email job's context
//! (all of it: it renders the email), sent history (the parameters only: it shows them, not the
//! body). A chunk's and a push job's contexts leave it out. Items earlier versions wrote with the
//! content inside are read as they are, and left without it where the content is not read.

use std::collections::HashMap;

use super::*;

/// On a notification's item: its email's body and parameters are in the content items.
pub(super) const EMAIL_APART: &str = "emailApart";
const BODY_SK: &str = "BODY";
const PARAMS_SK: &str = "PARAMS";

/// What of the content a reader reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Parts {
    /// Body and parameters.
    All,
    /// The parameters (sent history shows them; the body it does not).
    Params,
}

/// An email's content as read from its items.
#[derive(Debug, Default)]
pub(super) struct EmailContent {
    body: Option<String>,
    params: Option<Vec<EmailParam>>,
}

impl EmailContent {
    /// Puts the content into the notification's email (which its item left without it).
    pub(super) fn fill(self, n: &mut Notification) {
        if let Some(email) = n.email.as_mut() {
            if let Some(body) = self.body {
                email.body = Some(body);
            }
            if let Some(params) = self.params {
                email.params = params;
            }
        }
    }
}

impl DynamoNotificationStore {
    fn content_pk(id: NotificationId) -> String {
        format!("{}#C", Self::pk(id))
    }

    /// Whether a notification's item keeps its email's content apart.
    pub(super) fn keeps_content_apart(item: &Item) -> bool {
        matches!(item.get(EMAIL_APART), Some(AttributeValue::Bool(true)))
    }

    /// The notification's item without its email's content, marked when the content is apart,
    /// and the content's items (none when the email has no body and no parameters).
    pub(super) fn split_content(notification: &Notification) -> StoreResult<(Item, Vec<Item>)> {
        let apart = notification.email.as_ref().is_some_and(EmailSpec::has_content);
        let mut item = to_item(&notification.clone().without_email_content())?;
        let mut content = Vec::new();
        let Some(email) = notification.email.as_ref().filter(|_| apart) else {
            return Ok((item, content));
        };
        item.insert(EMAIL_APART.into(), AttributeValue::Bool(true));
        if let Some(body) = &email.body {
            let mut body_item = key(Self::content_pk(notification.id), BODY_SK);
            body_item.insert("body".into(), s(body.clone()));
            content.push(body_item);
        }
        if !email.params.is_empty() {
            let mut params_item = key(Self::content_pk(notification.id), PARAMS_SK);
            params_item.insert("params".into(), to_attr(&email.params)?);
            content.push(params_item);
        }
        Ok((item, content))
    }

    /// The keys of a notification's content items a reader of `parts` reads.
    pub(super) fn content_keys(id: NotificationId, parts: Parts) -> Vec<Item> {
        let mut keys = vec![key(Self::content_pk(id), PARAMS_SK)];
        if parts == Parts::All {
            keys.push(key(Self::content_pk(id), BODY_SK));
        }
        keys
    }

    /// Whether `item` is one of a content's items; its notification and what it holds, if so.
    pub(super) fn content_of(item: &Item) -> StoreResult<Option<(NotificationId, EmailContent)>> {
        let Some(id) = get_s(item, "pk")?.strip_suffix("#C") else { return Ok(None) };
        let id = id_from_pk(id)?;
        let mut content = EmailContent::default();
        match get_s(item, "sk")? {
            BODY_SK => content.body = Some(get_s(item, "body")?.to_string()),
            PARAMS_SK => {
                let params = item.get("params").cloned().unwrap_or(AttributeValue::L(Vec::new()));
                content.params = Some(
                    serde_dynamo::from_attribute_value(params)
                        .map_err(|e| StoreError::InvalidData(e.to_string()))?,
                );
            }
            _ => return Ok(None),
        }
        Ok(Some((id, content)))
    }

    /// Reads the `parts` of the content of the notifications `apart` names (BatchGetItem, 100
    /// keys a request) and puts it into theirs.
    pub(super) async fn fill_content(
        &self,
        notifications: &mut [Notification],
        apart: &[NotificationId],
        parts: Parts,
        consistent: bool,
    ) -> StoreResult<()> {
        if apart.is_empty() {
            return Ok(());
        }
        let keys = apart.iter().flat_map(|id| Self::content_keys(*id, parts)).collect();
        let found = batch_get(&self.client, &self.table, keys, None, consistent, Backoff::default()).await?;
        let mut contents: HashMap<NotificationId, Vec<EmailContent>> = HashMap::new();
        for item in found {
            if let Some((id, content)) = Self::content_of(&item)? {
                contents.entry(id).or_default().push(content);
            }
        }
        for n in notifications {
            for content in contents.remove(&n.id).unwrap_or_default() {
                content.fill(n);
            }
        }
        Ok(())
    }
}
