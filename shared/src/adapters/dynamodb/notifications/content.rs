//! A notification's email content apart from it: `N#{id}#C`/`BODY` (the body) and
//! `N#{id}#C`/`PARAMS` (the parameters), written once, in the transaction that inserts the
//! notification, under a partition key of their own; `emailParts` on the notification's item
//! names the ones it has. So the notification's item, which every status change rewrites and the
//! history indexes copy, weighs what its message does whatever its email weighs (up to
//! 300 KB: the group-send dialect's `MAX_EMAIL_BODY_BYTES`), and a chunk's read of it is as small
//! (decision 0018).
//!
//! Who reads the content: an email job's context (all of it: it renders the email) and sent
//! history (the parameters: it shows them, not the body); a lookup, a chunk's and a push job's
//! context read none of it. A part the notification's item names and the read does not find is
//! reported (`ChunkContext::email_content_missing`: the email job sends nothing and tries again,
//! never an email without its body; counting what a dead job left needs none of it) or, in
//! history, logged and left out. Items written with the
//! content inside (by earlier versions, or with `EMAIL_CONTENT_APART=false`, the first step of an
//! upgrade: docs/deploy.md) are read as they are, and left without it where the content is not
//! read.

use std::collections::HashMap;

use super::*;

/// On a notification's item: the parts of its email's content kept apart (`BODY`, `PARAMS`).
pub(super) const EMAIL_PARTS: &str = "emailParts";
const BODY: &str = "BODY";
const PARAMS: &str = "PARAMS";

/// What of the content a reader reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Parts {
    /// Body and parameters (an email job).
    All,
    /// The parameters (sent history shows them; the body it does not).
    Params,
}

impl Parts {
    /// Whether a reader of these parts reads `part` (never one this version does not know).
    fn wants(self, part: &str) -> bool {
        (self == Parts::All && part == BODY) || part == PARAMS
    }
}

impl DynamoNotificationStore {
    /// Every part there is: what a reader asks for before it knows which ones a notification has.
    pub(super) fn every_part() -> Vec<String> {
        vec![BODY.to_string(), PARAMS.to_string()]
    }

    fn content_pk(id: NotificationId) -> String {
        format!("{}#C", Self::pk(id))
    }

    /// The parts of its email's content a notification's item says are kept apart.
    pub(super) fn parts_apart(item: &Item) -> Vec<String> {
        match item.get(EMAIL_PARTS) {
            Some(AttributeValue::Ss(parts)) => parts.clone(),
            _ => Vec::new(),
        }
    }

    /// The notification's item and its email's content items: with `apart`, the item without
    /// the content, naming the parts kept apart, and an item per part (none when the email has no
    /// body and no parameters); without, the item with the content inside (as earlier versions
    /// wrote it) and no content items.
    pub(super) fn split_content(notification: &Notification, apart: bool) -> StoreResult<(Item, Vec<Item>)> {
        let email = notification.email.as_ref().filter(|e| apart && e.has_content());
        let Some(email) = email else { return Ok((to_item(notification)?, Vec::new())) };
        let mut item = to_item(&notification.clone().without_email_content())?;
        let mut content = Vec::new();
        if let Some(body) = &email.body {
            let mut body_item = key(Self::content_pk(notification.id), BODY);
            body_item.insert("body".into(), s(body.clone()));
            content.push(body_item);
        }
        if !email.params.is_empty() {
            let mut params_item = key(Self::content_pk(notification.id), PARAMS);
            params_item.insert("params".into(), to_attr(&email.params)?);
            content.push(params_item);
        }
        let parts = content.iter().map(|c| get_s(c, "sk").map(str::to_string)).collect::<StoreResult<_>>()?;
        item.insert(EMAIL_PARTS.into(), AttributeValue::Ss(parts));
        Ok((item, content))
    }

    /// The keys of the content items of notification `id` a reader of `parts` reads, of those
    /// its item names (`named`).
    pub(super) fn content_keys(id: NotificationId, named: &[String], parts: Parts) -> Vec<Item> {
        named.iter().filter(|p| parts.wants(p)).map(|p| key(Self::content_pk(id), p.as_str())).collect()
    }

    /// Whether `item` is one of a content's items: its notification and its part.
    pub(super) fn content_of(item: &Item) -> StoreResult<Option<(NotificationId, String)>> {
        let Some(id) = get_s(item, "pk")?.strip_suffix("#C") else { return Ok(None) };
        Ok(Some((id_from_pk(id)?, get_s(item, "sk")?.to_string())))
    }

    /// Puts the content items `found` of a notification into its email; `named` are the parts
    /// its item names and `parts` what the reader wanted: those of them not found are returned
    /// (the reader decides: an email job does not send, history shows what it has). A part this
    /// version does not know (a later version's) is neither read nor missed.
    pub(super) fn fill(
        n: &mut Notification,
        named: &[String],
        parts: Parts,
        found: &HashMap<String, Item>,
    ) -> StoreResult<Vec<String>> {
        let Some(email) = n.email.as_mut() else { return Ok(Vec::new()) };
        let mut missing = Vec::new();
        for part in named.iter().filter(|p| parts.wants(p)) {
            let Some(item) = found.get(part) else {
                missing.push(part.clone());
                continue;
            };
            match part.as_str() {
                BODY => email.body = Some(get_s(item, "body")?.to_string()),
                _ => {
                    let params = item.get("params").cloned().unwrap_or(AttributeValue::L(Vec::new()));
                    email.params = serde_dynamo::from_attribute_value(params)
                        .map_err(|e| StoreError::InvalidData(e.to_string()))?;
                }
            }
        }
        Ok(missing)
    }

    /// Reads the `parts` of the content of the `apart` notifications (each with the parts its
    /// item names; BatchGetItem, 100 keys a request, strongly consistent: the items were written
    /// with the notification) and puts it into theirs. For sent history: a part not found is
    /// logged and the notification shown without it (one lost item does not fail a page).
    pub(super) async fn fill_content(
        &self,
        notifications: &mut [Notification],
        apart: &HashMap<NotificationId, Vec<String>>,
        parts: Parts,
    ) -> StoreResult<()> {
        let keys: Vec<Item> =
            apart.iter().flat_map(|(id, named)| Self::content_keys(*id, named, parts)).collect();
        if keys.is_empty() {
            return Ok(());
        }
        let found = batch_get(&self.client, &self.table, keys, None, true, Backoff::default()).await?;
        let mut by_id: HashMap<NotificationId, HashMap<String, Item>> = HashMap::new();
        for item in found {
            if let Some((id, part)) = Self::content_of(&item)? {
                by_id.entry(id).or_default().insert(part, item);
            }
        }
        for n in notifications {
            if let Some(named) = apart.get(&n.id) {
                let missing = Self::fill(n, named, parts, by_id.get(&n.id).unwrap_or(&HashMap::new()))?;
                if !missing.is_empty() {
                    tracing::error!(notification = %n.id, ?missing, "parts of an email's content not found");
                }
            }
        }
        Ok(())
    }
}
