//! The recipient's notification center: who may read it, and what a poll returns.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::error::{ApiError, ErrorKind};
use crate::model::*;
use crate::runtime::Ports;

pub const DEFAULT_LIMIT: usize = 50;
pub const MAX_LIMIT: usize = 100;

/// One notification as every client sees it, whatever dialect sent it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InboxView {
    pub id: NotificationId,
    pub title: String,
    pub body: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub override_content: Option<OverrideContent>,
    pub icon: IconType,
    pub toast: ToastType,
    pub priority: Priority,
    pub actions: Vec<Action>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    pub origin: Origin,
    pub created_on: DateTime<Utc>,
    pub expires_on: DateTime<Utc>,
}

impl From<InboxItem> for InboxView {
    fn from(i: InboxItem) -> Self {
        InboxView {
            id: i.notification_id,
            title: i.title,
            body: i.body,
            override_content: i.override_content,
            icon: i.icon,
            toast: i.toast,
            priority: i.priority,
            actions: i.actions,
            data: i.data,
            url: i.url,
            source: i.source,
            origin: i.origin,
            created_on: i.created_at,
            expires_on: i.expires_at,
        }
    }
}

/// Owners read their own center; admins of the same tenant (and SUPER_USER) may read it for
/// support. Nobody else.
fn may_read(viewer: &User, owner: &User) -> bool {
    viewer.id == owner.id
        || viewer.has(Role::SuperUser)
        || (viewer.company_id == owner.company_id && viewer.has(Role::CompanyAdmin))
}

async fn owner(ports: &Ports, viewer: &User, owner_id: UserId) -> Result<User, ApiError> {
    let forbidden =
        || ApiError::new(ErrorKind::InsufficientPermissions, "this is another user's notification center");
    if viewer.id == owner_id {
        return Ok(viewer.clone());
    }
    match ports.directory.user(owner_id).await? {
        Some(owner) if may_read(viewer, &owner) => Ok(owner),
        Some(_) => Err(forbidden()),
        // Only someone who could read it learns that it does not exist.
        None if viewer.has(Role::SuperUser) || viewer.has(Role::CompanyAdmin) => {
            Err(ApiError::new(ErrorKind::NotFound, format!("user {owner_id} does not exist"))
                .with_parameter("userId"))
        }
        None => Err(forbidden()),
    }
}

pub async fn list(
    ports: &Ports,
    viewer: &User,
    owner_id: UserId,
    query: &InboxQuery,
    page: &PageRequest,
) -> Result<Page<InboxView>, ApiError> {
    let owner = owner(ports, viewer, owner_id).await?;
    let bound = format!("inbox:{}:{query:?}", owner.id);
    let page = super::cursor::open(&bound, page)?;
    let got = super::cursor::seal(&bound, ports.inbox.list(owner.id, query, ports.clock.now(), &page).await?);
    Ok(Page { items: got.items.into_iter().map(InboxView::from).collect(), next: got.next })
}

/// Dismisses one of the viewer's own notifications; dismissing twice is fine.
pub async fn dismiss(
    ports: &Ports,
    viewer: &User,
    owner_id: UserId,
    id: NotificationId,
) -> Result<(), ApiError> {
    if viewer.id != owner_id {
        return Err(ApiError::new(
            ErrorKind::InsufficientPermissions,
            "only the recipient may dismiss a notification",
        ));
    }
    if ports.inbox.dismiss(owner_id, id, ports.clock.now()).await? {
        Ok(())
    } else {
        Err(ApiError::new(
            ErrorKind::NotFound,
            format!("notification {id} is not in your notification center"),
        )
        .with_parameter("id"))
    }
}
