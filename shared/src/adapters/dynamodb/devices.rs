//! Devices, in the directory table: `USER#{id}`/`DEVICES` holds a person's devices as one list
//! (so delivery reads a whole chunk's devices with a few BatchGetItem calls), versioned for
//! optimistic concurrency; `DEVICE#{deviceId}`/`OWNER` names the device's current owner, so a
//! token registered by someone else is taken away from its previous owner; `COMPANY#{id}`/`PUSH`
//! exists once anyone of the company registered a device.

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;

use super::*;
use crate::model::*;
use crate::ports::*;

const DEVICES: &str = "DEVICES";
const OWNER: &str = "OWNER";
/// Tries of a read-modify-write before giving up to the caller (who may retry).
const MAX_TRIES: u32 = 8;

pub struct DynamoDeviceStore {
    client: Client,
    table: String,
    backoff: Backoff,
}

#[derive(serde::Serialize, serde::Deserialize, Default)]
struct DeviceList {
    #[serde(default)]
    devices: Vec<Device>,
    #[serde(default)]
    version: u64,
}

impl DynamoDeviceStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        DynamoDeviceStore { client, table: table.into(), backoff: Backoff::default() }
    }

    fn pk(user: UserId) -> String {
        format!("USER#{user}")
    }

    async fn read(&self, user: UserId) -> StoreResult<DeviceList> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(Self::pk(user), DEVICES)))
            .consistent_read(true)
            .send()
            .await
            .map_err(classify)?;
        out.item.map(from_item).transpose().map(Option::unwrap_or_default)
    }

    /// Writes the list if nobody changed it since `read_version`; `false` on a lost race.
    async fn write(&self, user: UserId, devices: Vec<Device>, read_version: u64) -> StoreResult<bool> {
        let mut item = to_item(&DeviceList { devices, version: read_version + 1 })?;
        item.extend(key(Self::pk(user), DEVICES));
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk) OR version = :v")
            .expression_attribute_values(":v", n(read_version))
            .send()
            .await
            .map_err(classify);
        applied(result)
    }

    /// Applies `change` to a person's list with optimistic concurrency; returns what it returned.
    async fn update<T>(&self, user: UserId, mut change: impl FnMut(&mut Vec<Device>) -> T) -> StoreResult<T> {
        for attempt in 1..=MAX_TRIES {
            let DeviceList { mut devices, version } = self.read(user).await?;
            let before = devices.clone();
            let out = change(&mut devices);
            // Nothing changed (removing a device the person does not have): nothing to write.
            if devices == before || self.write(user, devices, version).await? {
                return Ok(out);
            }
            tokio::time::sleep(self.backoff.delay(attempt)).await;
        }
        Err(StoreError::Transient(format!("devices of {user} kept changing; try again")))
    }

    async fn owner(&self, device_id: &str) -> StoreResult<Option<UserId>> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(format!("DEVICE#{device_id}"), OWNER)))
            .consistent_read(true)
            .send()
            .await
            .map_err(classify)?;
        Ok(out.item.as_ref().and_then(|i| get_s(i, "userId").ok()).and_then(|u| u.parse().ok()))
    }

    async fn set_owner(&self, device_id: &str, user: Option<UserId>) -> StoreResult<()> {
        let key = key(format!("DEVICE#{device_id}"), OWNER);
        match user {
            Some(user) => {
                let mut item = key;
                item.insert("userId".into(), s(user.to_string()));
                self.client
                    .put_item()
                    .table_name(&self.table)
                    .set_item(Some(item))
                    .send()
                    .await
                    .map_err(classify)?;
            }
            None => {
                self.client
                    .delete_item()
                    .table_name(&self.table)
                    .set_key(Some(key))
                    .send()
                    .await
                    .map_err(classify)?;
            }
        }
        Ok(())
    }
}

#[async_trait]
impl DeviceStore for DynamoDeviceStore {
    async fn devices(&self, user: UserId) -> StoreResult<Vec<Device>> {
        Ok(self.read(user).await?.devices)
    }

    async fn devices_of(&self, users: &[UserId]) -> StoreResult<Vec<(UserId, Vec<Device>)>> {
        let keys = users.iter().map(|u| key(Self::pk(*u), DEVICES)).collect();
        let items = batch_get(&self.client, &self.table, keys, None, false, self.backoff).await?;
        let mut found = Vec::with_capacity(items.len());
        for item in items {
            let user: UserId = get_s(&item, "pk")?
                .strip_prefix("USER#")
                .and_then(|u| u.parse().ok())
                .ok_or_else(|| StoreError::InvalidData("bad devices key".into()))?;
            let list: DeviceList = from_item(item)?;
            if !list.devices.is_empty() {
                found.push((user, list.devices));
            }
        }
        Ok(found)
    }

    async fn put_device(&self, user: UserId, device: &Device, max: usize) -> StoreResult<Vec<Device>> {
        let mut displaced = Vec::new();
        if let Some(previous) = self.owner(&device.device_id).await?.filter(|o| *o != user) {
            let id = device.device_id.clone();
            if let Some(d) = self
                .update(previous, |list| list.iter().position(|d| d.device_id == id).map(|i| list.remove(i)))
                .await?
            {
                tracing::info!(device = %id, from = %previous, to = %user, "device changed hands");
                displaced.push(d);
            }
        }
        let max = max.max(1);
        let evicted = self
            .update(user, |list| {
                list.retain(|d| d.device_id != device.device_id);
                list.push(device.clone());
                list.sort_by_key(|d| std::cmp::Reverse(d.registered_at));
                if list.len() > max { list.split_off(max) } else { Vec::new() }
            })
            .await?;
        self.set_owner(&device.device_id, Some(user)).await?;
        for d in &evicted {
            self.set_owner(&d.device_id, None).await?;
        }
        displaced.extend(evicted);
        Ok(displaced)
    }

    async fn remove_device(&self, user: UserId, device_id: &str) -> StoreResult<Option<Device>> {
        let removed = self
            .update(user, |list| list.iter().position(|d| d.device_id == device_id).map(|i| list.remove(i)))
            .await?;
        if removed.is_some() && self.owner(device_id).await? == Some(user) {
            self.set_owner(device_id, None).await?;
        }
        Ok(removed)
    }

    async fn mark_company_devices(&self, company: CompanyId) -> StoreResult<()> {
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(key(format!("COMPANY#{company}"), "PUSH")))
            .send()
            .await
            .map_err(classify)?;
        Ok(())
    }

    async fn company_has_devices(&self, company: CompanyId) -> StoreResult<bool> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(format!("COMPANY#{company}"), "PUSH")))
            .projection_expression("pk")
            .send()
            .await
            .map_err(classify)?;
        Ok(out.item.is_some())
    }
}
