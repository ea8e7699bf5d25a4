//! A notification's delivery log, read from what its ledger records in the notification's own
//! partition: the chunk markers (`C#{chunk}`: `delivered`, `recordedAt`), the email-job markers
//! (`E#{chunk}#{part}`: `settled`, `recordedAt`) and SES's bounce and complaint markers
//! (`F#{kind}#{message}`: `recordedAt`, kept 30 days) and a retraction's chunk markers
//! (`D#{chunk}`: `people`, `recordedAt`, `recall.rs`), in key order: one key range, `C#` to
//! `F$` (`$` sorts right after `#`), which nothing else of the partition falls in (its leases
//! `L#`, earlier versions' marks `M#` and the notification's `META` sort after it), so a page is
//! one Query reading only what it answers. Nothing is written for the log.

use super::*;

/// The key range of the log's markers: chunks `C#`, email jobs `E#`, feedback `F#`.
const FIRST: &str = "C#";
const PAST_LAST: &str = "F$";

#[async_trait]
impl DeliveryLog for DynamoNotificationStore {
    async fn log(&self, id: NotificationId, page: &PageRequest) -> StoreResult<Page<LogEntry>> {
        let build = || {
            self.client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk AND sk BETWEEN :first AND :past")
                .expression_attribute_values(":pk", s(Self::pk(id)))
                .expression_attribute_values(":first", s(FIRST))
                .expression_attribute_values(":past", s(PAST_LAST))
        };
        let (items, next) = query_page(build, &["pk", "sk"], page.limit, page.after.as_deref()).await?;
        let items = items.iter().map(entry_of).collect::<StoreResult<Vec<_>>>()?;
        Ok(Page { items, next })
    }
}

fn entry_of(item: &Item) -> StoreResult<LogEntry> {
    let sk = get_s(item, "sk")?;
    let bad = || StoreError::InvalidData(format!("unexpected log item {sk}"));
    let number = |name: &str| -> u64 {
        item.get(name).and_then(|v| v.as_n().ok()).and_then(|v| v.parse().ok()).unwrap_or(0)
    };
    let at = get_s(item, "recordedAt").ok().and_then(|t| t.parse::<DateTime<Utc>>().ok());
    let mut parts = sk.split('#');
    let event = match (parts.next(), parts.next(), parts.next()) {
        (Some("C"), Some(chunk), None) => {
            LogEvent::ChunkDelivered { chunk: chunk.parse().map_err(|_| bad())?, people: number("delivered") }
        }
        (Some("D"), Some(chunk), None) => {
            LogEvent::ChunkRetracted { chunk: chunk.parse().map_err(|_| bad())?, people: number("people") }
        }
        (Some("E"), Some(chunk), Some(part)) => LogEvent::EmailsSettled {
            chunk: chunk.parse().map_err(|_| bad())?,
            part: part.parse().map_err(|_| bad())?,
            people: number("settled"),
        },
        (Some("F"), Some(kind), Some(_)) => {
            let kind = match kind {
                "bounce" => FeedbackKind::Bounce,
                "complaint" => FeedbackKind::Complaint,
                _ => return Err(bad()),
            };
            let message_id = sk.splitn(3, '#').nth(2).unwrap_or_default().to_string();
            LogEvent::Feedback { kind, message_id }
        }
        _ => return Err(bad()),
    };
    Ok(LogEntry { at, event })
}
