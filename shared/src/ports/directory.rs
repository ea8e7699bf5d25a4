//! The people and groups notifications are addressed to, and the credentials of callers.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::error::StoreResult;
use crate::model::*;

/// Who calls and who is addressed: credentials, people, companies, departments.
#[async_trait]
pub trait Accounts: Send + Sync {
    /// Looks up a credential by the SHA-256 digest of what was presented.
    async fn credential(&self, digest: &str) -> StoreResult<Option<Credential>>;
    /// Several credentials at once, in the order asked (a caller presenting a session token and
    /// an API key): one read where the adapter can batch. A digest asked twice is answered twice.
    async fn credentials(&self, digests: &[&str]) -> StoreResult<Vec<Option<Credential>>>;
    async fn company(&self, id: CompanyId) -> StoreResult<Option<Company>>;
    async fn user(&self, id: UserId) -> StoreResult<Option<User>>;
    /// A user and a company at once (the two principals of a call made with a session token and
    /// an API key): one read where the adapter can batch.
    async fn user_and_company(
        &self,
        user: UserId,
        company: CompanyId,
    ) -> StoreResult<(Option<User>, Option<Company>)>;
    /// Several users at once (batched by the adapter); unknown ids are left out.
    async fn users(&self, ids: &[UserId]) -> StoreResult<Vec<User>>;
    async fn user_by_email(&self, email: &str) -> StoreResult<Option<User>>;
    async fn department(&self, id: Uuid) -> StoreResult<Option<Department>>;
    async fn department_has_member(&self, department: Uuid, user: UserId) -> StoreResult<bool>;
}

/// The groups a notification is addressed to (teams, events, smart libraries, assets) and
/// their members, paged; the ALP preferences of an asset; `updateEntityLastModified`.
#[async_trait]
pub trait Audiences: Send + Sync {
    /// All members of a company, paged.
    async fn company_members(&self, company: CompanyId, page: &PageRequest) -> StoreResult<Page<UserId>>;
    async fn team(&self, company: CompanyId, team_id: &str) -> StoreResult<Option<Team>>;
    /// Several teams of a company at once (batched by the adapter); unknown ids are left out.
    async fn teams(&self, company: CompanyId, team_ids: &[String]) -> StoreResult<Vec<Team>>;
    async fn team_members(
        &self,
        company: CompanyId,
        team_id: &str,
        page: &PageRequest,
    ) -> StoreResult<Page<UserId>>;
    async fn event(&self, id: Uuid) -> StoreResult<Option<Event>>;
    async fn event_attendees(
        &self,
        event: Uuid,
        team_id: &str,
        page: &PageRequest,
    ) -> StoreResult<Page<Attendee>>;
    async fn smart_library(&self, id: u64) -> StoreResult<Option<SmartLibrary>>;
    async fn smart_library_subscribers(&self, id: u64, page: &PageRequest) -> StoreResult<Page<UserId>>;
    async fn asset(&self, id: u64) -> StoreResult<Option<Asset>>;
    async fn asset_members(&self, id: u64, page: &PageRequest) -> StoreResult<Page<UserId>>;
    /// Every ALP preference recorded for an asset (few; read once per fan-out).
    async fn asset_unsubscribes(&self, id: u64) -> StoreResult<Vec<Unsubscribe>>;
    /// `updateEntityLastModified`: touches an asset's last-modified time.
    async fn touch_asset(&self, id: u64, at: DateTime<Utc>) -> StoreResult<()>;
    /// `updateEntityLastModified` for smart entries: touches the library's last-modified time.
    async fn touch_smart_library(&self, id: u64, at: DateTime<Utc>) -> StoreResult<()>;
}

/// What people and mail servers said about email: ALP-EUN unsubscribes and suppressed addresses.
#[async_trait]
pub trait EmailPreferences: Send + Sync {
    /// Records ALP-EUN: the user wants no more emails about the asset (notifications unchanged).
    async fn unsubscribe_emails(&self, asset: u64, user: UserId) -> StoreResult<()>;
    /// Stops mailing an address (kept apart from the person's record, so that a directory
    /// reload does not lift it); the first reason recorded stays.
    async fn suppress_email(&self, suppression: &EmailSuppression) -> StoreResult<()>;
    /// The suppressions among `addresses` (at most 100, one batch read).
    async fn email_suppressions(&self, addresses: &[String]) -> StoreResult<Vec<EmailSuppression>>;
}

/// Loading a whole directory (demo data, test fixtures, migrations).
#[async_trait]
pub trait DirectoryLoad: Send + Sync {
    /// Loads a whole directory (demo data, test fixtures, migrations).
    async fn load(&self, snapshot: &crate::directory::DirectorySnapshot) -> StoreResult<()>;
}

/// The whole directory: what an adapter of the Directory table implements, and what the
/// composition roots hold. A use case names only the part it reads.
pub trait Directory: Accounts + Audiences + EmailPreferences + DirectoryLoad {}
impl<T: Accounts + Audiences + EmailPreferences + DirectoryLoad + ?Sized> Directory for T {}
