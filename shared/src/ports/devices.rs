//! The devices people registered for push.

use async_trait::async_trait;

use crate::error::StoreResult;
use crate::model::*;

/// The devices people registered for push. A device belongs to one person at a time: registering
/// a token another person had moves it.
#[async_trait]
pub trait DeviceStore: Send + Sync {
    async fn devices(&self, user: UserId) -> StoreResult<Vec<Device>>;
    /// The devices of many people at once (batched by the adapter); people without any are left out.
    async fn devices_of(&self, users: &[UserId]) -> StoreResult<Vec<(UserId, Vec<Device>)>>;
    /// Adds or replaces (same device id) a device, keeping the newest `max` of the person's
    /// devices. Returns the devices this displaced: older ones beyond `max`, and the same device
    /// under its previous owner.
    async fn put_device(&self, user: UserId, device: &Device, max: usize) -> StoreResult<Vec<Device>>;
    /// Removes a device; the removed one, or `None` if the person had no such device.
    async fn remove_device(&self, user: UserId, device_id: &str) -> StoreResult<Option<Device>>;
    /// Records that someone of `company` registered a device (never cleared: a stale mark only
    /// costs the lookups it would have saved).
    async fn mark_company_devices(&self, company: CompanyId) -> StoreResult<()>;
    /// Whether anyone of `company` ever registered a device: delivery skips device lookups for
    /// companies whose people use no phones.
    async fn company_has_devices(&self, company: CompanyId) -> StoreResult<bool>;
}
