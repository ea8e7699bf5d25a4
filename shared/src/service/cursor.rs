//! Continuation tokens bound to the query that issued them.
//!
//! A store's token is the key where its page stopped; on its own it would be accepted by any
//! other query, and DynamoDB refuses a start key from another partition or index with a
//! ValidationException (a 500 to the caller). So every token a service hands out is sealed with
//! a digest of its query (kind, company, type, owner, filter, index), and a token presented to
//! another query is refused, naming `nextToken`, before any store is asked.
//!
//! Invariant: `open(scope, seal(scope, t)) == t`; `open(other, seal(scope, t))` is a 400.

use sha2::{Digest, Sha256};

use crate::error::ApiError;
use crate::model::{Page, PageRequest};

fn digest(scope: &str) -> String {
    hex::encode(&Sha256::digest(scope.as_bytes())[..8])
}

/// The page with its next token sealed to `scope`.
pub fn seal<T>(scope: &str, mut page: Page<T>) -> Page<T> {
    page.next = page.next.map(|token| format!("{}.{token}", digest(scope)));
    page
}

/// The request with its token unsealed for the store, or a 400 naming `nextToken` when the
/// token was issued to another query (or by no query of ours).
pub fn open(scope: &str, page: &PageRequest) -> Result<PageRequest, ApiError> {
    let Some(token) = page.after.as_deref() else { return Ok(page.clone()) };
    let Some((sealed, inner)) = token.split_once('.') else {
        return Err(ApiError::invalid("nextToken", "nextToken is not a token this service issued"));
    };
    if sealed != digest(scope) {
        return Err(ApiError::invalid(
            "nextToken",
            "nextToken belongs to another query (another type, company, filter or list): start again without it",
        ));
    }
    Ok(PageRequest::after(page.limit, Some(inner.to_string())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_opens_for_its_own_query_only() {
        let page = seal("history:GT:3", Page { items: vec![1], next: Some("abc".into()) });
        let token = page.next.clone().unwrap();
        let asked = PageRequest::after(10, Some(token.clone()));
        assert_eq!(open("history:GT:3", &asked).unwrap(), PageRequest::after(10, Some("abc".into())));
        let e = open("history:JN:3", &asked).unwrap_err();
        assert_eq!((e.status(), e.parameter.as_deref()), (400, Some("nextToken")));
        let e = open("history:GT:3", &PageRequest::after(10, Some("abc".into()))).unwrap_err();
        assert_eq!(e.parameter.as_deref(), Some("nextToken"), "an unsealed token");
        assert_eq!(open("x", &PageRequest::first(5)).unwrap(), PageRequest::first(5));
        assert!(seal::<u8>("x", Page::empty()).next.is_none());
    }
}
