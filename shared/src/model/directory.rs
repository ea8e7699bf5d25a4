//! Tenants, people, audiences and credentials: what the directory knows.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub type CompanyId = u64;
pub type UserId = Uuid;

/// A role or privilege a user holds. The wire names are those of the specs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Role {
    #[serde(rename = "SUPER_USER")]
    SuperUser,
    #[serde(rename = "COMPANY_ADMIN")]
    CompanyAdmin,
    #[serde(rename = "EVENT_PUSH_NOTIFICATION_ROLE")]
    EventPushNotification,
    /// Desktop assistant administrator.
    #[serde(rename = "sn_dex_desktop.admin")]
    DesktopAdmin,
    /// The desktop-assistant platform's general `admin` role.
    #[serde(rename = "admin")]
    Admin,
    /// Send In-App Notification privilege (needed to execute SendAppNotification).
    #[serde(rename = "prvSendAppNotification")]
    SendAppNotification,
    /// Create privilege on the app notification table, Basic access: self only.
    #[serde(rename = "prvCreateAppNotification:Basic")]
    CreateAppNotificationBasic,
    /// Create privilege with Global access: may notify anyone of the tenant.
    #[serde(rename = "prvCreateAppNotification:Global")]
    CreateAppNotificationGlobal,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Company {
    pub id: CompanyId,
    pub name: String,
    /// Tenant switch `sn_dex_desktop.enable_push_notification`.
    pub desktop_push_enabled: bool,
    /// The tenant's desktop app: emails' personalised `desktopURL` links into it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub desktop_url: Option<String>,
    /// The tenant's Interact app: emails' personalised `interactURL` links into it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interact_url: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct User {
    pub id: UserId,
    /// Short numeric user number: what sent history's created/modified-by fields carry.
    pub number: u64,
    pub company_id: CompanyId,
    pub email: String,
    #[serde(default)]
    pub first_name: String,
    #[serde(default)]
    pub roles: Vec<Role>,
}

impl User {
    pub fn has(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }

    /// The desktop-assistant `sys_id`: the UUID without dashes.
    pub fn sys_id(&self) -> String {
        self.id.simple().to_string()
    }
}

/// What a presented credential proves, as stored under its SHA-256 digest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum Credential {
    /// A user's session token (`x-nextinteract-authtoken` or `Authorization: Bearer`).
    #[serde(rename_all = "camelCase")]
    UserToken { user_id: UserId, expires_at: Option<DateTime<Utc>> },
    /// A company's API key (`x-nextinteract-company-api-key`).
    #[serde(rename_all = "camelCase")]
    CompanyApiKey { company_id: CompanyId },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Team {
    pub company_id: CompanyId,
    pub id: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum AttendeeStatus {
    Accepted,
    Declined,
    Invited,
    Tentative,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Event {
    pub id: Uuid,
    pub company_id: CompanyId,
    pub cancelled: bool,
    pub team_ids: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Attendee {
    pub user_id: UserId,
    pub status: AttendeeStatus,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SmartLibrary {
    pub id: u64,
    pub company_id: CompanyId,
    pub entry_ids: Vec<String>,
    pub last_modified: Option<DateTime<Utc>>,
}

/// An asset (brochure): its audience and its per-user preferences (ALP).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Asset {
    pub id: u64,
    pub company_id: CompanyId,
    pub last_modified: Option<DateTime<Utc>>,
}

/// A user's asset-level preference: ALP-NUN (no notifications) and/or ALP-EUN (no emails).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Unsubscribe {
    pub user_id: UserId,
    pub notifications: bool,
    pub emails: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Department {
    pub id: Uuid,
    pub company_id: CompanyId,
    pub name: String,
    pub client_id: String,
    /// SHA-256 of the client secret; also the key callbacks are signed with, so that the
    /// department (which knows the secret) can verify them while we never store the secret.
    pub secret_sha256: String,
}

/// A plausible email address (one `@`, something either side, no spaces, ≤ 254 characters).
pub fn is_plausible_email(s: &str) -> bool {
    let Some((local, domain)) = s.split_once('@') else { return false };
    s.len() <= 254
        && !local.is_empty()
        && domain.contains('.')
        && !domain.contains('@')
        && !s.chars().any(|c| c.is_whitespace() || c.is_control())
}
