//! Realtime connections to a person's center: who may open one, and what it starts with.
//!
//! A browser cannot set an `Authorization` header on a WebSocket or an EventSource, and a
//! long-lived bearer token in a URL ends up in access logs. So a person exchanges their token
//! over HTTPS for a **ticket**: signed (the deployment's link key, its own purpose), naming them,
//! valid for [`TICKET_SECONDS`], and good for **one** connection (its nonce is claimed once in the
//! idempotency records, which expire with it).
//!
//! A connection starts from a cursor: what was delivered at or after it is told first, then
//! everything new. A client that reconnects with the cursor of the last event it saw misses
//! nothing; ids make repeats harmless.

use chrono::{DateTime, Duration, Utc};

use crate::email::LinkSigner;
use crate::error::{ApiError, ErrorKind};
use crate::model::*;
use crate::ports::{Center, Clock, ConnectionStore, IdGenerator, IdempotencyClaim, IdempotencyStore};

/// What issuing and redeeming tickets uses: the deployment's link key (`None` where it has
/// none: tickets are refused), the clock, ids for nonces, and the claims that make a ticket
/// good for one connection.
pub struct TicketDeps<'a> {
    pub(crate) links: Option<&'a LinkSigner>,
    pub(crate) clock: &'a dyn Clock,
    pub(crate) ids: &'a dyn IdGenerator,
    pub(crate) claims: &'a dyn IdempotencyStore,
}

/// What a connection's catch-up reads.
pub struct CatchUpDeps<'a> {
    pub(crate) center: &'a dyn Center,
    pub(crate) clock: &'a dyn Clock,
}

/// What opening and closing a WebSocket connection uses.
pub struct ConnectionDeps<'a> {
    pub(crate) tickets: TicketDeps<'a>,
    pub(crate) connections: &'a dyn ConnectionStore,
}

/// How long a ticket may wait before it is used.
pub const TICKET_SECONDS: i64 = 60;
const PURPOSE: &str = "realtime-ticket";

fn refused(why: &str) -> ApiError {
    ApiError::new(ErrorKind::InvalidAuthToken, format!("the realtime ticket {why}")).with_parameter("ticket")
}

fn signer<'a>(ports: &TicketDeps<'a>) -> Result<&'a LinkSigner, ApiError> {
    ports
        .links
        .ok_or_else(|| ApiError::new(ErrorKind::Internal, "realtime tickets need the deployment's link key"))
}

/// A ticket for the viewer's own center.
pub fn issue(ports: &TicketDeps<'_>, viewer: &User, owner: UserId) -> Result<String, ApiError> {
    if viewer.id != owner {
        return Err(ApiError::new(
            ErrorKind::InsufficientPermissions,
            "only the recipient may listen to their center",
        ));
    }
    let expires = (ports.clock.now() + Duration::seconds(TICKET_SECONDS)).timestamp_millis();
    let company = viewer.company_id;
    let text = format!("{owner}.{company}.{expires}.{}", ports.ids.new_id().simple());
    Ok(format!("{text}.{}", signer(ports)?.sign_text(PURPOSE, &text)))
}

/// The person a ticket names, if it is genuine, unexpired and unused; it is used from now on.
pub async fn redeem(ports: &TicketDeps<'_>, ticket: &str) -> Result<UserId, ApiError> {
    Ok(redeem_with_company(ports, ticket).await?.0)
}

/// [`redeem`], and the person's company (the ticket carries it: connecting reads no directory).
pub async fn redeem_with_company(
    ports: &TicketDeps<'_>,
    ticket: &str,
) -> Result<(UserId, CompanyId), ApiError> {
    let mut parts = ticket.splitn(5, '.');
    let (Some(user), Some(company), Some(expires), Some(nonce), Some(signature)) =
        (parts.next(), parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(refused("is not one this service issued"));
    };
    let text = format!("{user}.{company}.{expires}.{nonce}");
    if !signer(ports)?.verify_text(PURPOSE, &text, signature) {
        return Err(refused("is not one this service issued"));
    }
    let user: UserId = user.parse().map_err(|_| refused("is not one this service issued"))?;
    let company: CompanyId = company.parse().map_err(|_| refused("is not one this service issued"))?;
    let expires = expires
        .parse::<i64>()
        .ok()
        .and_then(DateTime::from_timestamp_millis)
        .ok_or_else(|| refused("is not one this service issued"))?;
    let now = ports.clock.now();
    if expires <= now {
        return Err(refused("expired: ask for a new one"));
    }
    let scope = format!("{PURPOSE}:{nonce}");
    match ports.claims.claim_idempotency(&scope, "", expires, now).await? {
        IdempotencyClaim::Claimed => Ok((user, company)),
        IdempotencyClaim::Existing { .. } => Err(refused("was used already: ask for a new one")),
    }
}

/// Notifications a connection's catch-up names at most: one page of the center. More, and the
/// page is told to read its view again (one read, not a walk through everything it missed).
pub const CATCH_UP_IDS: usize = 100;

/// What a connection opened at `cursor` is told first: the notifications delivered to `user`
/// at or after it (one `New` event, at the latest delivery's cursor), or nothing; a `Resync`
/// when the cursor is older than the center catches up ([`InboxQuery::at`]) or more than
/// [`CATCH_UP_IDS`] were delivered since. One bounded read of the center, whatever was missed.
pub async fn catch_up(
    ports: &CatchUpDeps<'_>,
    user: UserId,
    cursor: DateTime<Utc>,
) -> Result<Option<Pushed>, ApiError> {
    let query =
        InboxQuery { status: StatusFilter::All, delivered_since: Some(cursor), ..InboxQuery::default() };
    let now = ports.clock.now();
    let resync = Some(Pushed { user, cursor: now.timestamp_millis(), event: InboxEvent::Resync });
    if query.at(now).1 {
        return Ok(resync);
    }
    let mut latest = cursor.timestamp_millis();
    let mut ids = Vec::new();
    // A page of the center may come short (each answer reads a bounded part): a few are read
    // to name what was missed; beyond them, or beyond the ids an event names, a resync.
    let mut page = PageRequest::first(CATCH_UP_IDS);
    for _ in 0..CATCH_UP_READS {
        let got = ports.center.list(user, &query, now, &page).await?;
        for item in got.items {
            latest = latest.max(item.entry.delivered_at.timestamp_millis());
            ids.push(item.content.notification_id);
        }
        match got.next {
            Some(_) if ids.len() >= CATCH_UP_IDS => return Ok(resync),
            Some(next) => page = PageRequest::after(CATCH_UP_IDS - ids.len(), Some(next)),
            None => {
                return Ok((!ids.is_empty()).then_some(Pushed {
                    user,
                    cursor: latest,
                    event: InboxEvent::New { ids, content: None },
                }));
            }
        }
    }
    Ok(resync)
}

/// Reads of the center a catch-up makes at most (a page, and short pages' continuations).
const CATCH_UP_READS: usize = 3;

/// How long API Gateway keeps a WebSocket connection open at most: connections are forgotten
/// after it even if no disconnect was heard.
pub const CONNECTION_HOURS: i64 = 2;

/// A WebSocket connection opening with a ticket (`$connect`): it becomes the ticket's person's.
pub async fn connect(
    ports: &ConnectionDeps<'_>,
    ticket: Option<&str>,
    connection: &str,
) -> Result<UserId, ApiError> {
    let ticket = ticket.filter(|t| !t.is_empty()).ok_or_else(|| {
        ApiError::invalid(
            "ticket",
            "ticket is required: POST /users/me/realtime-ticket, then connect with ?ticket=",
        )
    })?;
    let (user, company) = redeem_with_company(&ports.tickets, ticket).await?;
    let until = ports.tickets.clock.now() + Duration::hours(CONNECTION_HOURS);
    ports.connections.add(user, company, connection, until).await?;
    Ok(user)
}

/// A WebSocket connection closing (`$disconnect`): forgotten.
pub async fn disconnect(ports: &ConnectionDeps<'_>, connection: &str) -> Result<(), ApiError> {
    ports.connections.remove(connection).await?;
    Ok(())
}
