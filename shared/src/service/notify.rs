//! Notifications to named people — department notify, desktop assistant, in-app — with their
//! rules: who may send (credentials, roles, privileges), whom to (the sender's tenant only),
//! the desktop switch, delay and schedule. Stored like any other, then delivered through the
//! same fan-out and delivery path: queued, scheduled, or synchronously in process.

use super::deadline::Deadline;
use super::intake::{self, AcceptDeps};
pub use super::intake::{Delivery, SYNC_MARGIN};
use crate::credentials;
use crate::error::{ApiError, ErrorKind, StoreError};
use crate::model::*;
use crate::ports::{Accounts, Clock};

/// What notifying named people uses: the directory's people, companies and departments, the
/// clock, and intake (store, then queue, schedule or deliver).
pub struct NotifyDeps<'a> {
    pub(crate) accounts: &'a dyn Accounts,
    pub(crate) clock: &'a dyn Clock,
    pub(crate) accept: AcceptDeps<'a>,
}

// ---------------------------------------------------------------------------------------------
// Desktop assistant

/// Whether `user` may send desktop-assistant notifications now: the role, and the tenant's
/// `enable_push_notification` switch (off: the call fails at once and nothing is created).
pub async fn desktop_sender(ports: &NotifyDeps<'_>, user: &User) -> Result<(), ApiError> {
    if !(user.has(Role::DesktopAdmin) || user.has(Role::Admin)) {
        return Err(ApiError::new(
            ErrorKind::InsufficientPermissions,
            "role sn_dex_desktop.admin or admin is required",
        ));
    }
    let company = ports
        .accounts
        .company(user.company_id)
        .await?
        .ok_or_else(|| ApiError::new(ErrorKind::InsufficientPermissions, "your company is not known"))?;
    if !company.desktop_push_enabled {
        return Err(ApiError::new(
            ErrorKind::FeatureDisabled,
            "sn_dex_desktop.enable_push_notification is false: desktop assistant notifications are disabled",
        ));
    }
    Ok(())
}

/// Queues a desktop-assistant notification `id` to the recipients, every one a user of the
/// sender's instance. The number of recipients.
pub async fn desktop(
    ports: &NotifyDeps<'_>,
    user: &User,
    cmd: &DesktopNotify,
    id: NotificationId,
) -> Result<usize, ApiError> {
    let mut user_ids = Vec::with_capacity(cmd.recipients.len());
    for sys_id in &cmd.recipients {
        let recipient = uuid::Uuid::parse_str(sys_id)
            .map_err(|_| ApiError::invalid("recipient_list", format!("{sys_id} is not a sys_id")))?;
        match ports.accounts.user(recipient).await? {
            Some(u) if u.company_id == user.company_id => user_ids.push(u.id),
            _ => {
                return Err(ApiError::invalid(
                    "recipient_list",
                    format!("{sys_id} is not a user of this instance"),
                ));
            }
        }
    }
    let data = serde_json::json!({
        "referrer_table": cmd.referrer_table,
        "referrer_id": cmd.referrer_id,
        "source": cmd.source,
    });
    let content = Content {
        title: cmd.title.clone().unwrap_or_else(|| "Desktop Assistant".to_string()),
        body: cmd.message.clone(),
        data: Some(data.to_string()),
        source: Some(cmd.source.clone()),
        ..Content::default()
    };
    let count = user_ids.len();
    let n = Notification::draft(
        id,
        user.company_id,
        Origin::DesktopAssistant,
        BroadcastType::UN,
        Audience::Users { user_ids },
        content,
        user.number.to_string(),
        ports.clock.now(),
    )
    .description(format!("desktop assistant ({})", cmd.source))
    .build();
    intake::accept(&ports.accept, n, false, Deadline::NONE).await?;
    Ok(count)
}

// ---------------------------------------------------------------------------------------------
// In-app (SendAppNotification)

/// Whether `sender` may send in-app notifications at all.
pub fn app_sender(sender: &User) -> Result<(), ApiError> {
    if sender.has(Role::SendAppNotification) {
        Ok(())
    } else {
        Err(ApiError::new(
            ErrorKind::InsufficientPrivileges,
            "the Send In-App Notification privilege (prvSendAppNotification) is required",
        ))
    }
}

/// Queues in-app notification `id` to one user of the sender's tenant: to themself with the
/// Create privilege at Basic level, to others at Global level.
pub async fn app(
    ports: &NotifyDeps<'_>,
    sender: &User,
    cmd: AppNotify,
    id: NotificationId,
) -> Result<NotificationId, ApiError> {
    let recipient = match ports.accounts.user(cmd.recipient).await? {
        Some(u) if u.company_id == sender.company_id => u,
        _ => {
            return Err(ApiError::new(
                ErrorKind::NotFound,
                format!("systemuser {} does not exist", cmd.recipient),
            )
            .with_parameter("Recipient"));
        }
    };
    let to_self = recipient.id == sender.id;
    let may = sender.has(Role::CreateAppNotificationGlobal)
        || (to_self && sender.has(Role::CreateAppNotificationBasic));
    if !may {
        let why = if to_self {
            "the Create privilege on app notifications is required"
        } else {
            "notifying other users needs the Create privilege on app notifications at Global level"
        };
        return Err(ApiError::new(ErrorKind::InsufficientPrivileges, why).with_parameter("Recipient"));
    }
    let n = Notification::draft(
        id,
        sender.company_id,
        Origin::AppNotification,
        BroadcastType::UN,
        Audience::Users { user_ids: vec![recipient.id] },
        cmd.content,
        sender.number.to_string(),
        ports.clock.now(),
    )
    .ttl_seconds(cmd.ttl_seconds)
    .description("in-app notification")
    .build();
    let id = n.id;
    intake::accept(&ports.accept, n, false, Deadline::NONE).await?;
    Ok(id)
}

// ---------------------------------------------------------------------------------------------
// Department

/// What an unknown department's secret is compared with (a digest no secret has), so that it
/// costs what a known one does.
const UNKNOWN_DEPARTMENT_SECRET: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The department whose client id and secret these are, checked before anything else: an
/// unknown department is answered as wrong credentials are (`None` either way, after the same
/// comparisons), so that nobody learns which department ids exist.
pub async fn department_by_credentials(
    ports: &NotifyDeps<'_>,
    department: Option<uuid::Uuid>,
    client_id: &str,
    secret: &str,
) -> Result<Option<Department>, StoreError> {
    let found = match department {
        Some(id) => ports.accounts.department(id).await?,
        None => None,
    };
    let (known_id, known_secret) = match &found {
        Some(dep) => (dep.client_id.as_str(), dep.secret_sha256.as_str()),
        None => ("", UNKNOWN_DEPARTMENT_SECRET),
    };
    // Both compared in constant time; one answer for either mismatch.
    let id_ok = credentials::matches(&credentials::digest(client_id), &credentials::digest(known_id));
    let secret_ok = credentials::verify(secret, known_secret);
    Ok(found.filter(|_| id_ok & secret_ok))
}

/// Whether `user` is a user of `department` (a department notifies its own users only).
pub async fn department_member(
    ports: &NotifyDeps<'_>,
    department: &Department,
    user: Option<UserId>,
) -> Result<Option<UserId>, StoreError> {
    match user {
        Some(u) if ports.accounts.department_has_member(department.id, u).await? => Ok(Some(u)),
        _ => Ok(None),
    }
}

/// What a department notify came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DepartmentOutcome {
    pub id: NotificationId,
    pub delivery: Delivery,
    /// `sendSynchronously` asked of a delayed or scheduled message, where it has no effect.
    pub sync_ignored: bool,
}

/// Notification `id` from `department` to its user: now, after `delaySeconds`, or at its
/// scheduled time (never in the past); synchronously when asked and due now; with the
/// department's callback when it gave a URL (`request_id` is echoed in it).
pub async fn department(
    ports: &NotifyDeps<'_>,
    department: &Department,
    user: UserId,
    msg: DepartmentMessage,
    request_id: uuid::Uuid,
    id: NotificationId,
    deadline: Deadline,
) -> Result<DepartmentOutcome, ApiError> {
    let now = ports.clock.now();
    let content = Content {
        title: msg.subject.clone().unwrap_or_else(|| format!("Message from {}", department.name)),
        body: msg.body,
        data: msg.data,
        source: Some(department.name.clone()),
        ..Content::default()
    };
    let due_at = match msg.scheduled_on {
        Some(at) => at.max(now),
        None => now + chrono::Duration::seconds(msg.delay_seconds.min(i64::MAX as u64) as i64),
    };
    let callback = msg.callback_url.map(|url| Callback {
        url,
        metadata: msg.callback_metadata,
        department_id: department.id,
        user_id: user,
        request_id,
    });
    let n = Notification::draft(
        id,
        department.company_id,
        Origin::DepartmentNotify,
        BroadcastType::UN,
        Audience::Users { user_ids: vec![user] },
        content,
        department.client_id.chars().take(15).collect(),
        now,
    )
    .description(format!("department {}", department.name))
    .department(department.id)
    .due_at(due_at)
    .callback(callback)
    .build();
    let sync_ignored = msg.send_synchronously && due_at > now;
    let delivery = intake::accept(&ports.accept, n, msg.send_synchronously, deadline).await?;
    Ok(DepartmentOutcome { id, delivery, sync_ignored })
}
