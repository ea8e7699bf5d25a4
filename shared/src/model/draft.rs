//! Building a new notification: what it is, then what it has beyond that, instead of
//! `Notification::new` followed by field assignments.

use chrono::{DateTime, Utc};

use super::*;

impl Notification {
    /// A new notification, built: what it is, then what it has beyond
    /// that, instead of `new` followed by field assignments.
    #[allow(clippy::too_many_arguments)]
    pub fn draft(
        id: NotificationId,
        company_id: CompanyId,
        origin: Origin,
        broadcast_type: BroadcastType,
        audience: Audience,
        content: Content,
        created_by: String,
        now: DateTime<Utc>,
    ) -> NotificationDraft {
        NotificationDraft(Notification::new(
            id,
            0,
            company_id,
            origin,
            broadcast_type,
            audience,
            content,
            created_by,
            now,
        ))
    }
}

/// A notification being built (`Notification::draft`): due now, kept for the default TTL, no
/// schedule id (stores assign it when it is accepted) until set.
#[derive(Debug, Clone)]
pub struct NotificationDraft(Notification);

impl NotificationDraft {
    pub fn description(mut self, description: impl Into<String>) -> Self {
        self.0.description = description.into();
        self
    }
    pub fn due_at(mut self, at: DateTime<Utc>) -> Self {
        self.0.due_at = at;
        self
    }
    pub fn callback(mut self, callback: Option<Callback>) -> Self {
        self.0.callback = callback;
        self
    }
    pub fn ttl_seconds(mut self, ttl: u64) -> Self {
        self.0.ttl_seconds = ttl;
        self
    }
    pub fn schedule_id(mut self, schedule_id: u64) -> Self {
        self.0.schedule_id = schedule_id;
        self
    }
    pub fn email(mut self, email: Option<EmailSpec>, brochure_id: Option<u64>) -> Self {
        self.0.email = email;
        self.0.brochure_id = brochure_id;
        self
    }
    pub fn schedule(mut self, schedule: Option<Schedule>, team_ids: Vec<String>) -> Self {
        self.0.schedule = schedule;
        self.0.team_ids = team_ids;
        self
    }
    pub fn campaign_tag(mut self, tag: Option<u64>) -> Self {
        self.0.campaign_tag_id = tag;
        self
    }
    pub fn department(mut self, department: uuid::Uuid) -> Self {
        self.0.department_id = Some(department);
        self
    }
    pub fn build(self) -> Notification {
        self.0
    }
}
