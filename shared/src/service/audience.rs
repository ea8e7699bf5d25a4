//! From an audience to people: resolves groups through the directory, removes duplicates and
//! people who unsubscribed, and returns a sorted list (sorted, so that a resumed fan-out cuts
//! the same chunks as the run it replaces).

use std::collections::HashSet;
use std::future::Future;

use crate::error::StoreResult;
use crate::model::*;
use crate::ports::Audiences;

/// Page size of directory reads during resolution: large, so that DynamoDB's own 1 MB page cap
/// (about 12,000 membership keys) decides, not us; every page is a request.
const PAGE: usize = 20_000;

/// Why an audience cannot be resolved any more (it could when the notification was accepted).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AudienceGone {
    #[error("event {0} no longer exists")]
    EventNotFound(uuid::Uuid),
    #[error("event {0} was cancelled")]
    EventCancelled(uuid::Uuid),
    #[error("smart library {0} no longer exists")]
    SmartLibraryNotFound(u64),
    #[error("asset {0} no longer exists")]
    AssetNotFound(u64),
}

#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    #[error(transparent)]
    Gone(#[from] AudienceGone),
    #[error(transparent)]
    Store(#[from] crate::error::StoreError),
}

/// Every item of a paged listing.
pub async fn all_pages<T, F, Fut>(mut fetch: F) -> StoreResult<Vec<T>>
where
    F: FnMut(PageRequest) -> Fut,
    Fut: Future<Output = StoreResult<Page<T>>>,
{
    let mut all = Vec::new();
    let mut page = PageRequest::first(PAGE);
    loop {
        let got = fetch(page.clone()).await?;
        all.extend(got.items);
        match got.next {
            Some(t) => page.after = Some(t),
            None => return Ok(all),
        }
    }
}

/// Whether resolving reads the audience's event, smart library or asset again to check that it
/// still exists (and that the event is not cancelled).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupCheck {
    /// The caller has just read and checked it (a send, answering the request that names it):
    /// one read of it per send, not two.
    JustChecked,
    /// It may be gone since the notification was accepted (fan-out, at its time).
    Recheck,
}

/// Who receives the in-app / push notification: the audience, deduplicated, minus people who
/// unsubscribed from the asset's notifications (ALP-NUN) when a brochure is given.
pub async fn recipients(
    directory: &dyn Audiences,
    audience: &Audience,
    brochure_id: Option<u64>,
    check: GroupCheck,
) -> Result<Vec<UserId>, ResolveError> {
    let recheck = check == GroupCheck::Recheck;
    let mut people: Vec<UserId> = match audience {
        Audience::Teams { company_id, team_ids } | Audience::Company { company_id, team_ids }
            if !team_ids.is_empty() =>
        {
            let mut all = Vec::new();
            for team in team_ids {
                all.extend(
                    all_pages(|p| async move { directory.team_members(*company_id, team, &p).await }).await?,
                );
            }
            all
        }
        Audience::Teams { .. } => Vec::new(),
        Audience::Company { company_id, .. } => {
            all_pages(|p| async move { directory.company_members(*company_id, &p).await }).await?
        }
        Audience::EventTeams { event_id, team_ids } => {
            if recheck {
                let event =
                    directory.event(*event_id).await?.ok_or(AudienceGone::EventNotFound(*event_id))?;
                if event.cancelled {
                    return Err(AudienceGone::EventCancelled(*event_id).into());
                }
            }
            let mut all = Vec::new();
            for team in team_ids {
                let attendees =
                    all_pages(|p| async move { directory.event_attendees(*event_id, team, &p).await })
                        .await?;
                all.extend(
                    attendees.into_iter().filter(|a| a.status == AttendeeStatus::Accepted).map(|a| a.user_id),
                );
            }
            all
        }
        Audience::SmartLibrary { library_id, .. } => {
            if recheck {
                directory
                    .smart_library(*library_id)
                    .await?
                    .ok_or(AudienceGone::SmartLibraryNotFound(*library_id))?;
            }
            all_pages(|p| async move { directory.smart_library_subscribers(*library_id, &p).await }).await?
        }
        Audience::Asset { brochure_id } => {
            if recheck {
                directory.asset(*brochure_id).await?.ok_or(AudienceGone::AssetNotFound(*brochure_id))?;
            }
            all_pages(|p| async move { directory.asset_members(*brochure_id, &p).await }).await?
        }
        Audience::Users { user_ids } => user_ids.clone(),
    };
    people.sort_unstable();
    people.dedup();
    if let Some(brochure) = brochure_id {
        let muted: HashSet<UserId> = directory
            .asset_unsubscribes(brochure)
            .await?
            .into_iter()
            .filter(|u| u.notifications)
            .map(|u| u.user_id)
            .collect();
        if !muted.is_empty() {
            people.retain(|p| !muted.contains(p));
        }
    }
    Ok(people)
}
