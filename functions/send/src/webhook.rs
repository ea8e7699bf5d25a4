//! The tenant's status webhooks, under `/rest/notification/webhook`: group send's credentials
//! (a COMPANY_ADMIN of the tenant, or SUPER_USER, with the company's API key), the body parsed
//! by `dialects::webhooks`, the rules in `service::webhooks`, the answer in the dialect's shape.

use lambda_http::{Body, Request, Response};
use shared::ApiError;
use shared::dialects::webhooks::{self as wire, EndpointAnswer, EventAnswer};
use shared::http::{self, header};
use shared::service::webhooks;

use super::{API_KEY, AUTH_TOKEN, Deps};

pub async fn show(deps: &Deps<'_>, req: &Request) -> Result<Response<Body>, ApiError> {
    // An oversized body is refused whatever the route (413), before anything is read.
    http::body(req)?;
    let user = administrator(deps, req).await?;
    let view = webhooks::show(&deps.webhooks, &user).await?;
    Ok(http::json(200, &EndpointAnswer::from(&view)))
}

/// Creates the endpoint (201, with its secret, shown this once) or changes it (200).
pub async fn put(deps: &Deps<'_>, req: &Request) -> Result<Response<Body>, ApiError> {
    let body = http::body(req)?;
    let user = administrator(deps, req).await?;
    let request = wire::parse_endpoint(body)?;
    let (view, created) = webhooks::configure(&deps.webhooks, &user, request).await?;
    Ok(http::json(if created { 201 } else { 200 }, &EndpointAnswer::from(&view)))
}

pub async fn delete(deps: &Deps<'_>, req: &Request) -> Result<Response<Body>, ApiError> {
    let body = http::body(req)?;
    let user = administrator(deps, req).await?;
    wire::parse_no_body(body, "removing the endpoint")?;
    webhooks::remove(&deps.webhooks, &user).await?;
    Ok(http::respond(204, "application/json", String::new()))
}

pub async fn rotate(deps: &Deps<'_>, req: &Request) -> Result<Response<Body>, ApiError> {
    let body = http::body(req)?;
    let user = administrator(deps, req).await?;
    wire::parse_no_body(body, "a rotation")?;
    let view = webhooks::rotate(&deps.webhooks, &user).await?;
    Ok(http::json(200, &EndpointAnswer::from(&view)))
}

pub async fn event(deps: &Deps<'_>, req: &Request) -> Result<Response<Body>, ApiError> {
    http::body(req)?;
    let user = administrator(deps, req).await?;
    let id = wire::event_id(http::path_param(req, "eventId").as_deref())?;
    let event = webhooks::event(&deps.webhooks, &user, &id).await?;
    Ok(http::json(200, &EventAnswer::from(&event)))
}

/// Queues the event again (202): a new series of tries, with its `webhook-id`.
pub async fn replay(deps: &Deps<'_>, req: &Request) -> Result<Response<Body>, ApiError> {
    let body = http::body(req)?;
    let user = administrator(deps, req).await?;
    let id = wire::event_id(http::path_param(req, "eventId").as_deref())?;
    wire::parse_no_body(body, "a replay")?;
    let event = webhooks::replay(&deps.webhooks, &user, &id).await?;
    Ok(http::json(202, &EventAnswer::from(&event)))
}

/// The caller: group send's two credentials, and a role that administers the tenant.
async fn administrator(deps: &Deps<'_>, req: &Request) -> Result<webhooks::Administrator, ApiError> {
    let (user, company) = shared::auth::user_and_company(
        deps.accounts,
        (header(req, AUTH_TOKEN), AUTH_TOKEN),
        (header(req, API_KEY), API_KEY),
        deps.clock.now(),
    )
    .await?;
    webhooks::administrator(user, &company)
}
