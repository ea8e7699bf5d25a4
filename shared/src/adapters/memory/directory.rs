//! The directory in memory: companies, users, teams, events, libraries, assets, departments and
//! email suppressions, loaded from a snapshot.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::*;
use crate::directory::DirectorySnapshot;
use crate::error::{StoreError, StoreResult};
use crate::ports::*;

#[derive(Default)]
struct DirectoryState {
    credentials: HashMap<String, Credential>,
    companies: HashMap<CompanyId, Company>,
    users: HashMap<UserId, User>,
    users_by_email: HashMap<String, UserId>,
    company_members: HashMap<CompanyId, Vec<UserId>>,
    teams: HashMap<(CompanyId, String), Vec<UserId>>,
    events: HashMap<Uuid, Event>,
    attendees: HashMap<(Uuid, String), Vec<Attendee>>,
    smart_libraries: HashMap<u64, (SmartLibrary, Vec<UserId>)>,
    assets: HashMap<u64, (Asset, Vec<UserId>, Vec<Unsubscribe>)>,
    departments: HashMap<Uuid, (Department, HashSet<UserId>)>,
    suppressions: HashMap<String, EmailSuppression>,
}

#[derive(Default)]
pub struct MemoryDirectory {
    state: Mutex<DirectoryState>,
}

impl MemoryDirectory {
    pub fn new() -> Self {
        Self::default()
    }
}

fn page_ids(mut ids: Vec<UserId>, page: &PageRequest) -> StoreResult<Page<UserId>> {
    ids.sort();
    ids.dedup();
    page_by_key(ids, |u| u.to_string(), page)
}

#[async_trait]
impl Accounts for MemoryDirectory {
    async fn credential(&self, digest: &str) -> StoreResult<Option<Credential>> {
        Ok(lock(&self.state).credentials.get(digest).cloned())
    }
    async fn credentials(&self, digests: &[&str]) -> StoreResult<Vec<Option<Credential>>> {
        let s = lock(&self.state);
        Ok(digests.iter().map(|d| s.credentials.get(*d).cloned()).collect())
    }
    async fn company(&self, id: CompanyId) -> StoreResult<Option<Company>> {
        Ok(lock(&self.state).companies.get(&id).cloned())
    }
    async fn user_and_company(
        &self,
        user: UserId,
        company: CompanyId,
    ) -> StoreResult<(Option<User>, Option<Company>)> {
        let s = lock(&self.state);
        Ok((s.users.get(&user).cloned(), s.companies.get(&company).cloned()))
    }
    async fn user(&self, id: UserId) -> StoreResult<Option<User>> {
        Ok(lock(&self.state).users.get(&id).cloned())
    }
    async fn users(&self, ids: &[UserId]) -> StoreResult<Vec<User>> {
        let s = lock(&self.state);
        Ok(ids.iter().filter_map(|id| s.users.get(id).cloned()).collect())
    }
    async fn user_by_email(&self, email: &str) -> StoreResult<Option<User>> {
        let s = lock(&self.state);
        Ok(s.users_by_email.get(&email.to_lowercase()).and_then(|id| s.users.get(id)).cloned())
    }
    async fn department(&self, id: Uuid) -> StoreResult<Option<Department>> {
        Ok(lock(&self.state).departments.get(&id).map(|(d, _)| d.clone()))
    }
    async fn department_has_member(&self, department: Uuid, user: UserId) -> StoreResult<bool> {
        Ok(lock(&self.state).departments.get(&department).is_some_and(|(_, m)| m.contains(&user)))
    }
}

#[async_trait]
impl Audiences for MemoryDirectory {
    async fn company_members(&self, company: CompanyId, page: &PageRequest) -> StoreResult<Page<UserId>> {
        let ids = lock(&self.state).company_members.get(&company).cloned().unwrap_or_default();
        page_ids(ids, page)
    }
    async fn teams(&self, company: CompanyId, team_ids: &[String]) -> StoreResult<Vec<Team>> {
        let s = lock(&self.state);
        let mut unique = team_ids.to_vec();
        unique.sort();
        unique.dedup();
        Ok(unique
            .into_iter()
            .filter(|t| s.teams.contains_key(&(company, t.clone())))
            .map(|id| Team { company_id: company, id })
            .collect())
    }
    async fn team(&self, company: CompanyId, team_id: &str) -> StoreResult<Option<Team>> {
        let s = lock(&self.state);
        Ok(s.teams
            .contains_key(&(company, team_id.to_string()))
            .then(|| Team { company_id: company, id: team_id.to_string() }))
    }
    async fn team_members(
        &self,
        company: CompanyId,
        team_id: &str,
        page: &PageRequest,
    ) -> StoreResult<Page<UserId>> {
        let ids = lock(&self.state).teams.get(&(company, team_id.to_string())).cloned().unwrap_or_default();
        page_ids(ids, page)
    }
    async fn event(&self, id: Uuid) -> StoreResult<Option<Event>> {
        Ok(lock(&self.state).events.get(&id).cloned())
    }
    async fn event_attendees(
        &self,
        event: Uuid,
        team_id: &str,
        page: &PageRequest,
    ) -> StoreResult<Page<Attendee>> {
        let mut list =
            lock(&self.state).attendees.get(&(event, team_id.to_string())).cloned().unwrap_or_default();
        list.sort_by_key(|a| a.user_id);
        page_by_key(list, |a| a.user_id.to_string(), page)
    }
    async fn smart_library(&self, id: u64) -> StoreResult<Option<SmartLibrary>> {
        Ok(lock(&self.state).smart_libraries.get(&id).map(|(l, _)| l.clone()))
    }
    async fn smart_library_subscribers(&self, id: u64, page: &PageRequest) -> StoreResult<Page<UserId>> {
        let ids = lock(&self.state).smart_libraries.get(&id).map(|(_, s)| s.clone()).unwrap_or_default();
        page_ids(ids, page)
    }
    async fn asset(&self, id: u64) -> StoreResult<Option<Asset>> {
        Ok(lock(&self.state).assets.get(&id).map(|(a, _, _)| a.clone()))
    }
    async fn asset_members(&self, id: u64, page: &PageRequest) -> StoreResult<Page<UserId>> {
        let ids = lock(&self.state).assets.get(&id).map(|(_, m, _)| m.clone()).unwrap_or_default();
        page_ids(ids, page)
    }
    async fn asset_unsubscribes(&self, id: u64) -> StoreResult<Vec<Unsubscribe>> {
        Ok(lock(&self.state).assets.get(&id).map(|(_, _, u)| u.clone()).unwrap_or_default())
    }
    async fn touch_asset(&self, id: u64, at: DateTime<Utc>) -> StoreResult<()> {
        if let Some((a, _, _)) = lock(&self.state).assets.get_mut(&id) {
            a.last_modified = Some(at);
        }
        Ok(())
    }
    async fn touch_smart_library(&self, id: u64, at: DateTime<Utc>) -> StoreResult<()> {
        if let Some((l, _)) = lock(&self.state).smart_libraries.get_mut(&id) {
            l.last_modified = Some(at);
        }
        Ok(())
    }
}

#[async_trait]
impl EmailPreferences for MemoryDirectory {
    async fn unsubscribe_emails(&self, asset: u64, user: UserId) -> StoreResult<()> {
        let mut s = lock(&self.state);
        let Some((_, _, prefs)) = s.assets.get_mut(&asset) else {
            return Err(StoreError::Conflict(format!("asset {asset} does not exist")));
        };
        match prefs.iter_mut().find(|p| p.user_id == user) {
            Some(p) => p.emails = true,
            None => prefs.push(Unsubscribe { user_id: user, notifications: false, emails: true }),
        }
        Ok(())
    }
    async fn suppress_email(&self, suppression: &EmailSuppression) -> StoreResult<()> {
        lock(&self.state)
            .suppressions
            .entry(suppression.address.to_ascii_lowercase())
            .or_insert_with(|| suppression.clone());
        Ok(())
    }
    async fn email_suppressions(&self, addresses: &[String]) -> StoreResult<Vec<EmailSuppression>> {
        let s = lock(&self.state);
        let wanted: HashSet<String> = addresses.iter().map(|a| a.to_ascii_lowercase()).collect();
        Ok(wanted.iter().filter_map(|a| s.suppressions.get(a).cloned()).collect())
    }
}

#[async_trait]
impl DirectoryLoad for MemoryDirectory {
    async fn load(&self, d: &DirectorySnapshot) -> StoreResult<()> {
        let mut s = lock(&self.state);
        for c in &d.companies {
            s.credentials.insert(c.api_key_sha256.clone(), Credential::CompanyApiKey { company_id: c.id });
            s.companies.insert(c.id, Company::from(c));
        }
        for u in &d.users {
            s.credentials.insert(
                u.token_sha256.clone(),
                Credential::UserToken { user_id: u.id, expires_at: u.token_expires_at },
            );
            s.users_by_email.insert(u.email.to_lowercase(), u.id);
            s.company_members.entry(u.company_id).or_default().push(u.id);
            s.users.insert(
                u.id,
                User {
                    id: u.id,
                    number: u.number,
                    company_id: u.company_id,
                    email: u.email.clone(),
                    first_name: u.first_name.clone(),
                    roles: u.roles.clone(),
                },
            );
        }
        for t in &d.teams {
            s.teams.insert((t.company_id, t.id.clone()), t.members.clone());
        }
        for e in &d.events {
            let team_ids = e.teams.iter().map(|t| t.id.clone()).collect();
            s.events
                .insert(e.id, Event { id: e.id, company_id: e.company_id, cancelled: e.cancelled, team_ids });
            for t in &e.teams {
                let list =
                    t.attendees.iter().map(|a| Attendee { user_id: a.user_id, status: a.status }).collect();
                s.attendees.insert((e.id, t.id.clone()), list);
            }
        }
        for l in &d.smart_libraries {
            let lib = SmartLibrary {
                id: l.id,
                company_id: l.company_id,
                entry_ids: l.entries.clone(),
                last_modified: None,
            };
            s.smart_libraries.insert(l.id, (lib, l.subscribers.clone()));
        }
        for a in &d.assets {
            let asset = Asset { id: a.id, company_id: a.company_id, last_modified: None };
            s.assets.insert(a.id, (asset, a.members.clone(), a.unsubscribes.clone()));
        }
        for dep in &d.departments {
            let department = Department {
                id: dep.id,
                company_id: dep.company_id,
                name: dep.name.clone(),
                client_id: dep.client_id.clone(),
                secret_sha256: dep.secret_sha256.clone(),
            };
            s.departments.insert(dep.id, (department, dep.members.iter().copied().collect()));
        }
        Ok(())
    }
}
