//! The devices people register for mobile push, and the unsubscribe links of emails.

use crate::email::LinkSigner;
use crate::error::{ApiError, ErrorKind};
use crate::model::*;
use crate::ports::{Clock, DeviceStore, EmailPreferences, PushGateway, SendError};

/// What managing a person's devices uses.
pub struct DeviceDeps<'a> {
    pub(crate) devices: &'a dyn DeviceStore,
    pub(crate) push: &'a dyn PushGateway,
    pub(crate) clock: &'a dyn Clock,
}

/// What following an unsubscribe link uses: the link key (`None`: links are not configured)
/// and the ALP-EUN record.
pub struct UnsubscribeDeps<'a> {
    pub(crate) links: Option<&'a LinkSigner>,
    pub(crate) email_prefs: &'a dyn EmailPreferences,
}

/// Devices kept per person: registering another displaces the oldest.
pub const MAX_DEVICES_PER_USER: usize = 10;

fn only_self(viewer: &User, owner: UserId) -> Result<(), ApiError> {
    if viewer.id == owner {
        Ok(())
    } else {
        Err(ApiError::new(ErrorKind::InsufficientPermissions, "you may only manage your own devices"))
    }
}

fn push_failure(e: SendError) -> ApiError {
    match e {
        SendError::Rejected(why) | SendError::Gone(why) => {
            ApiError::invalid("token", format!("the push service refused the token: {why}"))
        }
        SendError::Transient(why) => {
            ApiError::new(ErrorKind::Unavailable, format!("the push service is unavailable: {why}"))
        }
    }
}

/// Registers (or refreshes) a device of `owner`; `true` when it is new. Registering the same
/// token again is the same device, re-enabled.
pub async fn register(
    ports: &DeviceDeps<'_>,
    viewer: &User,
    owner: UserId,
    platform: Platform,
    token: &str,
) -> Result<(Device, bool), ApiError> {
    only_self(viewer, owner)?;
    if !ports.push.supports(platform) {
        return Err(ApiError::invalid(
            "platform",
            format!("push to {} is not configured in this deployment", platform.as_str()),
        ));
    }
    let device_id = Device::id_for(platform, token);
    let known = ports.devices.devices(owner).await?.iter().any(|d| d.device_id == device_id);
    let endpoint_arn = ports.push.create_endpoint(platform, token, owner).await.map_err(push_failure)?;
    let device = Device {
        device_id,
        platform,
        token: token.to_string(),
        endpoint_arn,
        registered_at: ports.clock.now(),
    };
    ports.devices.mark_company_devices(viewer.company_id).await?;
    let displaced = ports.devices.put_device(owner, &device, MAX_DEVICES_PER_USER).await?;
    for old in displaced.iter().filter(|d| d.endpoint_arn != device.endpoint_arn) {
        if let Err(e) = ports.push.delete_endpoint(&old.endpoint_arn).await {
            tracing::warn!(endpoint = %old.endpoint_arn, error = %e, "displaced endpoint not deleted");
        }
    }
    tracing::info!(user = %owner, device = %device.device_id, platform = platform.as_str(), new = !known, "device registered");
    Ok((device, !known))
}

pub async fn list(ports: &DeviceDeps<'_>, viewer: &User, owner: UserId) -> Result<Vec<Device>, ApiError> {
    only_self(viewer, owner)?;
    Ok(ports.devices.devices(owner).await?)
}

/// Removes a device and its endpoint.
pub async fn unregister(
    ports: &DeviceDeps<'_>,
    viewer: &User,
    owner: UserId,
    device_id: &str,
) -> Result<(), ApiError> {
    only_self(viewer, owner)?;
    let removed = ports
        .devices
        .remove_device(owner, device_id)
        .await?
        .ok_or_else(|| ApiError::new(ErrorKind::NotFound, format!("you have no device {device_id}")))?;
    if let Err(e) = ports.push.delete_endpoint(&removed.endpoint_arn).await {
        tracing::warn!(endpoint = %removed.endpoint_arn, error = %e, "endpoint not deleted");
    }
    Ok(())
}

/// Checks an unsubscribe link without acting on it (what a person sees before confirming; mail
/// scanners that fetch every link change nothing): its user and asset when it is ours.
pub fn check_unsubscribe_link(
    ports: &UnsubscribeDeps<'_>,
    user: Option<&str>,
    brochure: Option<&str>,
    signature: Option<&str>,
) -> Result<(UserId, u64), ApiError> {
    let user: UserId = user
        .and_then(|u| u.parse().ok())
        .ok_or_else(|| ApiError::invalid("user", "the link has no valid user"))?;
    let brochure: u64 = brochure
        .and_then(|b| b.parse().ok())
        .ok_or_else(|| ApiError::invalid("brochure", "the link has no valid brochure"))?;
    let signature = signature.ok_or_else(|| ApiError::invalid("sig", "the link is not signed"))?;
    let links = ports
        .links
        .ok_or_else(|| ApiError::new(ErrorKind::Unavailable, "unsubscribe links are not configured"))?;
    if !links.verify(user, brochure, signature) {
        return Err(ApiError::new(ErrorKind::InsufficientPermissions, "this unsubscribe link is not valid")
            .with_parameter("sig"));
    }
    Ok((user, brochure))
}

/// Follows a confirmed unsubscribe link (a POST): records ALP-EUN for the link's user and asset.
pub async fn unsubscribe(
    ports: &UnsubscribeDeps<'_>,
    user: Option<&str>,
    brochure: Option<&str>,
    signature: Option<&str>,
) -> Result<(UserId, u64), ApiError> {
    let (user, brochure) = check_unsubscribe_link(ports, user, brochure, signature)?;
    match ports.email_prefs.unsubscribe_emails(brochure, user).await {
        Ok(()) => {
            tracing::info!(%user, brochure, "unsubscribed from emails (ALP-EUN)");
            Ok((user, brochure))
        }
        Err(crate::StoreError::Conflict(_)) => {
            Err(ApiError::new(ErrorKind::NotFound, format!("asset {brochure} no longer exists")))
        }
        Err(e) => Err(e.into()),
    }
}
