//! Registered devices in memory.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use async_trait::async_trait;

use super::*;
use crate::error::StoreResult;
use crate::ports::*;

#[derive(Default)]
pub struct MemoryDeviceStore {
    state: Mutex<HashMap<UserId, Vec<Device>>>,
    companies: Mutex<HashSet<CompanyId>>,
}

impl MemoryDeviceStore {
    pub fn new() -> Self {
        Self::default()
    }
}

#[async_trait]
impl DeviceStore for MemoryDeviceStore {
    async fn devices(&self, user: UserId) -> StoreResult<Vec<Device>> {
        Ok(lock(&self.state).get(&user).cloned().unwrap_or_default())
    }

    async fn devices_of(&self, users: &[UserId]) -> StoreResult<Vec<(UserId, Vec<Device>)>> {
        let s = lock(&self.state);
        Ok(users.iter().filter_map(|u| s.get(u).filter(|d| !d.is_empty()).map(|d| (*u, d.clone()))).collect())
    }

    async fn put_device(&self, user: UserId, device: &Device, max: usize) -> StoreResult<Vec<Device>> {
        let mut s = lock(&self.state);
        let mut displaced = Vec::new();
        for (owner, devices) in s.iter_mut().filter(|(owner, _)| **owner != user) {
            if let Some(i) = devices.iter().position(|d| d.device_id == device.device_id) {
                tracing::info!(device = %device.device_id, from = %owner, to = %user, "device changed hands");
                displaced.push(devices.remove(i));
            }
        }
        let mine = s.entry(user).or_default();
        mine.retain(|d| d.device_id != device.device_id);
        mine.push(device.clone());
        mine.sort_by_key(|d| std::cmp::Reverse(d.registered_at));
        if mine.len() > max.max(1) {
            displaced.extend(mine.split_off(max.max(1)));
        }
        Ok(displaced)
    }

    async fn remove_device(&self, user: UserId, device_id: &str) -> StoreResult<Option<Device>> {
        let mut s = lock(&self.state);
        let Some(devices) = s.get_mut(&user) else { return Ok(None) };
        Ok(devices.iter().position(|d| d.device_id == device_id).map(|i| devices.remove(i)))
    }

    async fn mark_company_devices(&self, company: CompanyId) -> StoreResult<()> {
        lock(&self.companies).insert(company);
        Ok(())
    }

    async fn company_has_devices(&self, company: CompanyId) -> StoreResult<bool> {
        Ok(lock(&self.companies).contains(&company))
    }
}
