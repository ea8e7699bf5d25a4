//! Who is calling: credentials presented in headers, checked against their stored digests.

use chrono::{DateTime, Utc};

use crate::credentials::digest;
use crate::error::{ApiError, ErrorKind};
use crate::model::{Company, Credential, User};
use crate::ports::Directory;

fn invalid_token(message: &str, parameter: &str) -> ApiError {
    ApiError::new(ErrorKind::InvalidAuthToken, message).with_parameter(parameter)
}

/// The user a session token belongs to. Missing, unknown and expired tokens are all 401.
pub async fn user_by_token(
    directory: &dyn Directory,
    token: Option<&str>,
    header_name: &str,
    now: DateTime<Utc>,
) -> Result<User, ApiError> {
    let token = token.ok_or_else(|| invalid_token("missing auth token", header_name))?;
    match directory.credential(&digest(token)).await? {
        Some(Credential::UserToken { user_id, expires_at }) => {
            if expires_at.is_some_and(|e| e <= now) {
                return Err(invalid_token("auth token has expired", header_name));
            }
            directory
                .user(user_id)
                .await?
                .ok_or_else(|| invalid_token("auth token is not valid", header_name))
        }
        _ => Err(invalid_token("auth token is not valid", header_name)),
    }
}

/// The company an API key belongs to.
pub async fn company_by_api_key(
    directory: &dyn Directory,
    key: Option<&str>,
    header_name: &str,
) -> Result<Company, ApiError> {
    let key = key.ok_or_else(|| invalid_token("missing company API key", header_name))?;
    match directory.credential(&digest(key)).await? {
        Some(Credential::CompanyApiKey { company_id }) => directory
            .company(company_id)
            .await?
            .ok_or_else(|| invalid_token("company API key is not valid", header_name)),
        _ => Err(invalid_token("company API key is not valid", header_name)),
    }
}

/// The token of an `Authorization: Bearer <token>` header.
pub fn bearer(value: Option<&str>) -> Option<&str> {
    let v = value?;
    let (scheme, token) = v.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then_some(token.trim()).filter(|t| !t.is_empty())
}
