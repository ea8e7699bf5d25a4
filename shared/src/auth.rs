//! Who is calling: credentials presented in headers, checked against their stored digests.

use chrono::{DateTime, Utc};

use crate::credentials::digest;
use crate::error::{ApiError, ErrorKind};
use crate::model::{Company, Credential, User, UserId};
use crate::ports::Accounts;

fn invalid_token(message: &str, parameter: &str) -> ApiError {
    ApiError::new(ErrorKind::InvalidAuthToken, message).with_parameter(parameter)
}

/// The user id of a session token's stored credential: unknown tokens, other credentials and
/// expired tokens are 401 naming `header_name`.
fn token_user(
    credential: Option<Credential>,
    header_name: &str,
    now: DateTime<Utc>,
) -> Result<UserId, ApiError> {
    match credential {
        Some(Credential::UserToken { expires_at: Some(e), .. }) if e <= now => {
            Err(invalid_token("auth token has expired", header_name))
        }
        Some(Credential::UserToken { user_id, .. }) => Ok(user_id),
        _ => Err(invalid_token("auth token is not valid", header_name)),
    }
}

/// The user a session token belongs to. Missing, unknown and expired tokens are all 401.
pub async fn user_by_token(
    directory: &dyn Accounts,
    token: Option<&str>,
    header_name: &str,
    now: DateTime<Utc>,
) -> Result<User, ApiError> {
    let token = token.ok_or_else(|| invalid_token("missing auth token", header_name))?;
    let user_id = token_user(directory.credential(&digest(token)).await?, header_name, now)?;
    directory.user(user_id).await?.ok_or_else(|| invalid_token("auth token is not valid", header_name))
}

/// The user and the company of a call made with a session token and a company API key (group
/// send): the two credentials in one read, then the user and the company in one, where reading
/// them one after another took four. Missing, unknown and expired tokens are 401 naming the
/// token's header, checked first; a missing or unknown key is 401 naming the key's header.
pub async fn user_and_company(
    directory: &dyn Accounts,
    (token, token_header): (Option<&str>, &str),
    (key, key_header): (Option<&str>, &str),
    now: DateTime<Utc>,
) -> Result<(User, Company), ApiError> {
    let token = token.ok_or_else(|| invalid_token("missing auth token", token_header))?;
    let Some(key) = key else {
        user_by_token(directory, Some(token), token_header, now).await?;
        return Err(invalid_token("missing company API key", key_header));
    };
    let mut found = directory.credentials(&[&digest(token), &digest(key)]).await?.into_iter();
    let user_id = token_user(found.next().flatten(), token_header, now)?;
    let company_id = match found.next().flatten() {
        Some(Credential::CompanyApiKey { company_id }) => company_id,
        _ => return Err(invalid_token("company API key is not valid", key_header)),
    };
    match directory.user_and_company(user_id, company_id).await? {
        (None, _) => Err(invalid_token("auth token is not valid", token_header)),
        (_, None) => Err(invalid_token("company API key is not valid", key_header)),
        (Some(user), Some(company)) => Ok((user, company)),
    }
}

/// The token of an `Authorization: Bearer <token>` header.
pub fn bearer(value: Option<&str>) -> Option<&str> {
    let v = value?;
    let (scheme, token) = v.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then_some(token.trim()).filter(|t| !t.is_empty())
}
