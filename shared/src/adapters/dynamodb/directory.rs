//! Directory table. Single items: `CRED#{sha256}`/`CRED`, `COMPANY#{id}`/`META`,
//! `USER#{id}`/`META`, `EMAIL#{email}`/`EMAIL`, `TEAM#{company}#{team}`/`META`, `EVENT#{id}`/`META`,
//! `SLIB#{id}`/`META`, `ASSET#{id}`/`META`, `DEPT#{id}`/`META`, `SUPPRESS#{email}`/`META` (addresses not
//! mailed again: bounced or complained; not part of a directory snapshot, so a reload keeps them). Memberships are one item each
//! (`.../U#{userId}`), so audiences of any size are read with paged queries; event attendees are
//! `EVENT#{id}`/`T#{team}#U#{user}`, asset preferences `ASSET#{id}`/`X#{user}`.

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use uuid::Uuid;

use super::*;
use crate::directory::DirectorySnapshot;
use crate::model::*;
use crate::ports::*;

const META: &str = "META";

pub struct DynamoDirectory {
    client: Client,
    table: String,
    backoff: Backoff,
}

impl DynamoDirectory {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        DynamoDirectory { client, table: table.into(), backoff: Backoff::default() }
    }

    async fn get<T: DeserializeOwned>(&self, pk: String, sk: &str) -> StoreResult<Option<T>> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(pk, sk)))
            .send()
            .await
            .map_err(classify)?;
        out.item.map(from_item).transpose()
    }

    /// The `META` items of many keys, batched; missing ones are left out.
    async fn get_many<T: DeserializeOwned>(&self, pks: impl Iterator<Item = String>) -> StoreResult<Vec<T>> {
        let keys = pks.map(|pk| key(pk, META)).collect();
        batch_get(&self.client, &self.table, keys, None, false, self.backoff)
            .await?
            .into_iter()
            .map(from_item)
            .collect()
    }

    /// Items of different kinds in one batched read, keyed by their partition key (each key
    /// asked for names a different partition); missing ones are absent from the map.
    async fn get_keyed(&self, keys: Vec<Item>) -> StoreResult<std::collections::HashMap<String, Item>> {
        let items = batch_get(&self.client, &self.table, keys, None, false, self.backoff).await?;
        items.into_iter().map(|item| Ok((get_s(&item, "pk")?.to_string(), item))).collect()
    }

    async fn exists(&self, pk: String, sk: String) -> StoreResult<bool> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(pk, sk)))
            .projection_expression("pk")
            .send()
            .await
            .map_err(classify)?;
        Ok(out.item.is_some())
    }

    /// Items under `pk` whose sort key starts with `prefix`, paged.
    async fn children(&self, pk: String, prefix: String, page: &PageRequest) -> StoreResult<Page<Item>> {
        let build = || {
            self.client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk AND begins_with(sk, :prefix)")
                .expression_attribute_values(":pk", s(pk.clone()))
                .expression_attribute_values(":prefix", s(prefix.clone()))
        };
        let (items, next) = query_page(build, &["pk", "sk"], page.limit, page.after.as_deref()).await?;
        Ok(Page { items, next })
    }

    /// Member user ids under `pk` (sort keys `U#{userId}`).
    async fn members(&self, pk: String, page: &PageRequest) -> StoreResult<Page<UserId>> {
        let p = self.children(pk, "U#".into(), page).await?;
        let items = p
            .items
            .iter()
            .map(|i| {
                get_s(i, "sk")?
                    .strip_prefix("U#")
                    .and_then(|u| u.parse().ok())
                    .ok_or_else(|| StoreError::InvalidData("bad member key".into()))
            })
            .collect::<StoreResult<Vec<UserId>>>()?;
        Ok(Page { items, next: p.next })
    }

    async fn touch(&self, pk: String, at: DateTime<Utc>) -> StoreResult<()> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(pk, META)))
            .update_expression("SET lastModified = :at")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_values(":at", to_attr(&at)?)
            .send()
            .await
            .map_err(classify);
        // A failed condition (the item is gone) is nothing to do.
        applied(result).map(|_| ())
    }
}

fn with_key<T: serde::Serialize>(pk: String, sk: &str, value: &T) -> StoreResult<Item> {
    let mut item = to_item(value)?;
    item.extend(key(pk, sk));
    Ok(item)
}

fn marker(pk: String, sk: String) -> Item {
    key(pk, sk)
}

#[async_trait]
impl Accounts for DynamoDirectory {
    async fn credential(&self, digest: &str) -> StoreResult<Option<Credential>> {
        self.get(format!("CRED#{digest}"), "CRED").await
    }
    async fn credentials(&self, digests: &[&str]) -> StoreResult<Vec<Option<Credential>>> {
        let pks: Vec<String> = digests.iter().map(|d| format!("CRED#{d}")).collect();
        let found = self.get_keyed(pks.iter().map(|pk| key(pk.clone(), "CRED")).collect()).await?;
        pks.iter().map(|pk| found.get(pk).cloned().map(from_item).transpose()).collect()
    }
    async fn company(&self, id: CompanyId) -> StoreResult<Option<Company>> {
        self.get(format!("COMPANY#{id}"), META).await
    }
    async fn user_and_company(
        &self,
        user: UserId,
        company: CompanyId,
    ) -> StoreResult<(Option<User>, Option<Company>)> {
        let (user_pk, company_pk) = (format!("USER#{user}"), format!("COMPANY#{company}"));
        let mut found =
            self.get_keyed(vec![key(user_pk.clone(), META), key(company_pk.clone(), META)]).await?;
        Ok((
            found.remove(&user_pk).map(from_item).transpose()?,
            found.remove(&company_pk).map(from_item).transpose()?,
        ))
    }
    async fn user(&self, id: UserId) -> StoreResult<Option<User>> {
        self.get(format!("USER#{id}"), META).await
    }
    async fn users(&self, ids: &[UserId]) -> StoreResult<Vec<User>> {
        self.get_many(ids.iter().map(|id| format!("USER#{id}"))).await
    }
    async fn user_by_email(&self, email: &str) -> StoreResult<Option<User>> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(format!("EMAIL#{}", email.to_lowercase()), "EMAIL")))
            .send()
            .await
            .map_err(classify)?;
        match out.item {
            None => Ok(None),
            Some(item) => {
                let id: UserId = get_s(&item, "userId")?
                    .parse()
                    .map_err(|_| StoreError::InvalidData("bad email pointer".into()))?;
                self.user(id).await
            }
        }
    }
    async fn department(&self, id: Uuid) -> StoreResult<Option<Department>> {
        self.get(format!("DEPT#{id}"), META).await
    }
    async fn department_has_member(&self, department: Uuid, user: UserId) -> StoreResult<bool> {
        self.exists(format!("DEPT#{department}"), format!("U#{user}")).await
    }
}

#[async_trait]
impl Audiences for DynamoDirectory {
    async fn company_members(&self, company: CompanyId, page: &PageRequest) -> StoreResult<Page<UserId>> {
        self.members(format!("COMPANY#{company}"), page).await
    }
    async fn team(&self, company: CompanyId, team_id: &str) -> StoreResult<Option<Team>> {
        self.get(format!("TEAM#{company}#{team_id}"), META).await
    }
    async fn teams(&self, company: CompanyId, team_ids: &[String]) -> StoreResult<Vec<Team>> {
        self.get_many(team_ids.iter().map(|t| format!("TEAM#{company}#{t}"))).await
    }
    async fn team_members(
        &self,
        company: CompanyId,
        team_id: &str,
        page: &PageRequest,
    ) -> StoreResult<Page<UserId>> {
        self.members(format!("TEAM#{company}#{team_id}"), page).await
    }
    async fn event(&self, id: Uuid) -> StoreResult<Option<Event>> {
        self.get(format!("EVENT#{id}"), META).await
    }
    async fn event_attendees(
        &self,
        event: Uuid,
        team_id: &str,
        page: &PageRequest,
    ) -> StoreResult<Page<Attendee>> {
        let p = self.children(format!("EVENT#{event}"), format!("T#{team_id}#U#"), page).await?;
        let items = p.items.into_iter().map(from_item).collect::<StoreResult<Vec<Attendee>>>()?;
        Ok(Page { items, next: p.next })
    }
    async fn smart_library(&self, id: u64) -> StoreResult<Option<SmartLibrary>> {
        self.get(format!("SLIB#{id}"), META).await
    }
    async fn smart_library_subscribers(&self, id: u64, page: &PageRequest) -> StoreResult<Page<UserId>> {
        self.members(format!("SLIB#{id}"), page).await
    }
    async fn asset(&self, id: u64) -> StoreResult<Option<Asset>> {
        self.get(format!("ASSET#{id}"), META).await
    }
    async fn asset_members(&self, id: u64, page: &PageRequest) -> StoreResult<Page<UserId>> {
        self.members(format!("ASSET#{id}"), page).await
    }
    async fn asset_unsubscribes(&self, id: u64) -> StoreResult<Vec<Unsubscribe>> {
        let mut all = Vec::new();
        let mut page = PageRequest::first(1000);
        loop {
            let p = self.children(format!("ASSET#{id}"), "X#".into(), &page).await?;
            for item in p.items {
                all.push(from_item(item)?);
            }
            match p.next {
                Some(t) => page.after = Some(t),
                None => return Ok(all),
            }
        }
    }
    async fn touch_asset(&self, id: u64, at: DateTime<Utc>) -> StoreResult<()> {
        self.touch(format!("ASSET#{id}"), at).await
    }
    async fn touch_smart_library(&self, id: u64, at: DateTime<Utc>) -> StoreResult<()> {
        self.touch(format!("SLIB#{id}"), at).await
    }
}

#[async_trait]
impl EmailPreferences for DynamoDirectory {
    async fn unsubscribe_emails(&self, asset: u64, user: UserId) -> StoreResult<()> {
        if !self.exists(format!("ASSET#{asset}"), META.into()).await? {
            return Err(StoreError::Conflict(format!("asset {asset} does not exist")));
        }
        // Keeps an ALP-NUN already recorded for the same user.
        self.client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(format!("ASSET#{asset}"), format!("X#{user}"))))
            .update_expression(
                "SET userId = :u, emails = :t, notifications = if_not_exists(notifications, :f)",
            )
            .expression_attribute_values(":u", s(user.to_string()))
            .expression_attribute_values(":t", AttributeValue::Bool(true))
            .expression_attribute_values(":f", AttributeValue::Bool(false))
            .send()
            .await
            .map_err(classify)?;
        Ok(())
    }
    async fn suppress_email(&self, suppression: &EmailSuppression) -> StoreResult<()> {
        let mut item = to_item(suppression)?;
        item.extend(key(format!("SUPPRESS#{}", suppression.address.to_ascii_lowercase()), META));
        let put = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await
            .map_err(classify);
        match put {
            // Suppressed before: the first reason stays.
            Ok(_) | Err(StoreError::Conflict(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }
    async fn email_suppressions(&self, addresses: &[String]) -> StoreResult<Vec<EmailSuppression>> {
        let pks = addresses.iter().map(|a| format!("SUPPRESS#{}", a.to_ascii_lowercase()));
        match addresses {
            // One address (a person asking about theirs): GetItem, which the inbox's policy grants.
            [_] => {
                Ok(self.get(pks.into_iter().next().unwrap_or_default(), META).await?.into_iter().collect())
            }
            _ => self.get_many(pks).await,
        }
    }
}

#[async_trait]
impl DirectoryLoad for DynamoDirectory {
    async fn load(&self, d: &DirectorySnapshot) -> StoreResult<()> {
        let mut items = Vec::new();
        for c in &d.companies {
            items.push(with_key(
                format!("CRED#{}", c.api_key_sha256),
                "CRED",
                &Credential::CompanyApiKey { company_id: c.id },
            )?);
            let company = Company::from(c);
            items.push(with_key(format!("COMPANY#{}", c.id), META, &company)?);
        }
        for u in &d.users {
            let cred = Credential::UserToken { user_id: u.id, expires_at: u.token_expires_at };
            items.push(with_key(format!("CRED#{}", u.token_sha256), "CRED", &cred)?);
            let user = User {
                id: u.id,
                number: u.number,
                company_id: u.company_id,
                email: u.email.clone(),
                first_name: u.first_name.clone(),
                roles: u.roles.clone(),
            };
            items.push(with_key(format!("USER#{}", u.id), META, &user)?);
            let mut email = key(format!("EMAIL#{}", u.email.to_lowercase()), "EMAIL");
            email.insert("userId".into(), s(u.id.to_string()));
            items.push(email);
            items.push(marker(format!("COMPANY#{}", u.company_id), format!("U#{}", u.id)));
        }
        for t in &d.teams {
            let pk = format!("TEAM#{}#{}", t.company_id, t.id);
            items.push(with_key(pk.clone(), META, &Team { company_id: t.company_id, id: t.id.clone() })?);
            items.extend(t.members.iter().map(|m| marker(pk.clone(), format!("U#{m}"))));
        }
        for e in &d.events {
            let pk = format!("EVENT#{}", e.id);
            let event = Event {
                id: e.id,
                company_id: e.company_id,
                cancelled: e.cancelled,
                team_ids: e.teams.iter().map(|t| t.id.clone()).collect(),
            };
            items.push(with_key(pk.clone(), META, &event)?);
            for t in &e.teams {
                for a in &t.attendees {
                    let attendee = Attendee { user_id: a.user_id, status: a.status };
                    let sk = format!("T#{}#U#{}", t.id, a.user_id);
                    items.push(with_key(pk.clone(), &sk, &attendee)?);
                }
            }
        }
        for l in &d.smart_libraries {
            let pk = format!("SLIB#{}", l.id);
            let lib = SmartLibrary {
                id: l.id,
                company_id: l.company_id,
                entry_ids: l.entries.clone(),
                last_modified: None,
            };
            items.push(with_key(pk.clone(), META, &lib)?);
            items.extend(l.subscribers.iter().map(|m| marker(pk.clone(), format!("U#{m}"))));
        }
        for a in &d.assets {
            let pk = format!("ASSET#{}", a.id);
            items.push(with_key(
                pk.clone(),
                META,
                &Asset { id: a.id, company_id: a.company_id, last_modified: None },
            )?);
            items.extend(a.members.iter().map(|m| marker(pk.clone(), format!("U#{m}"))));
            for u in &a.unsubscribes {
                items.push(with_key(pk.clone(), &format!("X#{}", u.user_id), u)?);
            }
        }
        for dep in &d.departments {
            let pk = format!("DEPT#{}", dep.id);
            let department = Department {
                id: dep.id,
                company_id: dep.company_id,
                name: dep.name.clone(),
                client_id: dep.client_id.clone(),
                secret_sha256: dep.secret_sha256.clone(),
            };
            items.push(with_key(pk.clone(), META, &department)?);
            items.extend(dep.members.iter().map(|m| marker(pk.clone(), format!("U#{m}"))));
        }
        batch_put(&self.client, &self.table, items, self.backoff).await
    }
}
