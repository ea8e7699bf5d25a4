//! The directory as a data file: the format of `data/demo-directory.json`, loadable into either
//! backend through [`crate::ports::Directory::load`].

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::model::{AttendeeStatus, CompanyId, Role, UserId};

/// The demo directory every local run starts with (DEMO-DIRECTORY.md).
pub const DEMO_DIRECTORY_JSON: &str = include_str!("../data/demo-directory.json");

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DirectorySnapshot {
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub companies: Vec<CompanyRecord>,
    #[serde(default)]
    pub users: Vec<UserRecord>,
    #[serde(default)]
    pub teams: Vec<TeamRecord>,
    #[serde(default)]
    pub events: Vec<EventRecord>,
    #[serde(default)]
    pub smart_libraries: Vec<SmartLibraryRecord>,
    #[serde(default)]
    pub assets: Vec<AssetRecord>,
    #[serde(default)]
    pub departments: Vec<DepartmentRecord>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CompanyRecord {
    pub id: CompanyId,
    pub name: String,
    pub api_key_sha256: String,
    pub desktop_push_enabled: bool,
    #[serde(default)]
    pub desktop_url: Option<String>,
    #[serde(default)]
    pub interact_url: Option<String>,
}

impl From<&CompanyRecord> for crate::model::Company {
    fn from(c: &CompanyRecord) -> Self {
        crate::model::Company {
            id: c.id,
            name: c.name.clone(),
            desktop_push_enabled: c.desktop_push_enabled,
            desktop_url: c.desktop_url.clone(),
            interact_url: c.interact_url.clone(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UserRecord {
    pub id: UserId,
    pub number: u64,
    pub company_id: CompanyId,
    pub email: String,
    #[serde(default)]
    pub first_name: String,
    #[serde(default)]
    pub roles: Vec<Role>,
    pub token_sha256: String,
    #[serde(default)]
    pub token_expires_at: Option<chrono::DateTime<chrono::Utc>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TeamRecord {
    pub company_id: CompanyId,
    pub id: String,
    pub members: Vec<UserId>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EventRecord {
    pub id: Uuid,
    pub company_id: CompanyId,
    #[serde(default)]
    pub cancelled: bool,
    pub teams: Vec<EventTeamRecord>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EventTeamRecord {
    pub id: String,
    pub attendees: Vec<AttendeeRecord>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AttendeeRecord {
    pub user_id: UserId,
    pub status: AttendeeStatus,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SmartLibraryRecord {
    pub id: u64,
    pub company_id: CompanyId,
    pub entries: Vec<String>,
    pub subscribers: Vec<UserId>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AssetRecord {
    pub id: u64,
    pub company_id: CompanyId,
    pub members: Vec<UserId>,
    #[serde(default)]
    pub unsubscribes: Vec<crate::model::Unsubscribe>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DepartmentRecord {
    pub id: Uuid,
    pub company_id: CompanyId,
    pub name: String,
    pub client_id: String,
    pub secret_sha256: String,
    pub members: Vec<UserId>,
}

impl DirectorySnapshot {
    /// The demo directory shipped with the project.
    pub fn demo() -> Self {
        serde_json::from_str(DEMO_DIRECTORY_JSON).expect("data/demo-directory.json is valid (tested)")
    }

    pub fn from_json(text: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(text)
    }

    /// One line for the start-up log.
    pub fn summary(&self) -> String {
        format!(
            "{} companies, {} users, {} teams, {} events, {} smart libraries, {} assets, {} departments",
            self.companies.len(),
            self.users.len(),
            self.teams.len(),
            self.events.len(),
            self.smart_libraries.len(),
            self.assets.len(),
            self.departments.len()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::credentials::digest;

    #[test]
    fn demo_directory_matches_the_demo_document() {
        let d = DirectorySnapshot::demo();
        assert_eq!(d.companies.len(), 2);
        assert_eq!(d.users.len(), 13);
        let admin3 = d.users.iter().find(|u| u.number == 654).unwrap();
        assert_eq!(admin3.token_sha256, digest("demo-admin-token"));
        assert!(admin3.roles.contains(&Role::CompanyAdmin));
        let u1 = d.users.iter().find(|u| u.number == 1001).unwrap();
        assert_eq!(u1.email, "aaron.mcmullen@hypermedia.com.au");
        assert_eq!(u1.id.to_string(), "11111111-1111-4111-8111-111111111111");
        for n in 2..=8u64 {
            let u = d.users.iter().find(|u| u.number == 1000 + n).unwrap();
            let digit = n.to_string();
            assert_eq!(
                u.id.to_string(),
                format!(
                    "{0}-{1}-4{2}-8{2}-{3}",
                    digit.repeat(8),
                    digit.repeat(4),
                    digit.repeat(3),
                    digit.repeat(12)
                )
            );
            assert_eq!(u.token_sha256, digest(&format!("demo-user-{n}-token")));
        }
        let c3 = d.companies.iter().find(|c| c.id == 3).unwrap();
        assert_eq!(c3.api_key_sha256, digest("00000000-0000-4000-8000-000000000003"));
        assert!(c3.desktop_push_enabled);
        assert!(!d.companies.iter().find(|c| c.id == 4).unwrap().desktop_push_enabled);
        assert_eq!(d.departments[0].secret_sha256, digest("demo-secret"));
        assert_eq!(d.departments[0].members.len(), 8);
    }

    #[test]
    fn demo_file_holds_no_plain_credentials() {
        for secret in ["demo-admin-token", "demo-secret", "00000000-0000-4000-8000-000000000003"] {
            assert!(!DEMO_DIRECTORY_JSON.contains(secret), "{secret} stored in plain text");
        }
    }
}
