//! The recipient's notification center: who may read it, and what a poll returns.

use crate::error::{ApiError, ErrorKind};
use crate::model::*;
use crate::ports::Ports;

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
) -> Result<Page<InboxItem>, ApiError> {
    let owner = owner(ports, viewer, owner_id).await?;
    let bound = format!("inbox:{}:{query:?}", owner.id);
    let page = super::cursor::open(&bound, page)?;
    Ok(super::cursor::seal(&bound, ports.inbox.list(owner.id, query, ports.clock.now(), &page).await?))
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
