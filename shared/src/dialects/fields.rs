//! Field-by-field reading of a JSON object, so that every bad input is reported with the name
//! of the field at fault and why (serde's messages say neither in the callers' terms).

use serde_json::{Map, Value};

use crate::error::ApiError;

/// Parses a request body into a JSON object; anything else is a 400 naming `body`.
pub fn object(bytes: &[u8]) -> Result<Map<String, Value>, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::invalid("body", "request body is empty; a JSON object is required"));
    }
    let value: Value = serde_json::from_slice(bytes)
        .map_err(|e| ApiError::invalid("body", format!("request body is not valid JSON: {e}")))?;
    match value {
        Value::Object(map) => Ok(map),
        _ => Err(ApiError::invalid("body", "request body must be a JSON object")),
    }
}

pub struct Fields<'a> {
    map: &'a Map<String, Value>,
    /// Prefix for nested field names (`messageAttributes.`).
    prefix: String,
}

impl<'a> Fields<'a> {
    pub fn new(map: &'a Map<String, Value>) -> Self {
        Fields { map, prefix: String::new() }
    }

    pub fn nested(map: &'a Map<String, Value>, prefix: &str) -> Self {
        Fields { map, prefix: format!("{prefix}.") }
    }

    pub fn name(&self, field: &str) -> String {
        format!("{}{field}", self.prefix)
    }

    fn invalid(&self, field: &str, why: impl std::fmt::Display) -> ApiError {
        ApiError::invalid(self.name(field), format!("{} {why}", self.name(field)))
    }

    /// The raw value, with JSON `null` read as absent.
    pub fn get(&self, field: &str) -> Option<&'a Value> {
        self.map.get(field).filter(|v| !v.is_null())
    }

    pub fn has(&self, field: &str) -> bool {
        self.get(field).is_some()
    }

    /// An optional string of at most `max` characters.
    pub fn opt_str(&self, field: &str, max: usize) -> Result<Option<String>, ApiError> {
        match self.get(field) {
            None => Ok(None),
            Some(Value::String(s)) => {
                let len = s.chars().count();
                if len > max {
                    Err(self.invalid(field, format!("must be at most {max} characters (got {len})")))
                } else {
                    Ok(Some(s.clone()))
                }
            }
            Some(_) => Err(self.invalid(field, "must be a string")),
        }
    }

    /// A required, non-blank string of at most `max` characters.
    pub fn req_str(&self, field: &str, max: usize) -> Result<String, ApiError> {
        match self.opt_str(field, max)? {
            Some(s) if !s.trim().is_empty() => Ok(s),
            Some(_) => Err(self.invalid(field, "must not be blank")),
            None => Err(self.invalid(field, "is required")),
        }
    }

    /// An optional non-negative integer (JSON numbers only: "7" is a string, not a number).
    pub fn opt_u64(&self, field: &str) -> Result<Option<u64>, ApiError> {
        match self.get(field) {
            None => Ok(None),
            Some(Value::Number(n)) => match n.as_u64() {
                Some(v) => Ok(Some(v)),
                None => Err(self.invalid(field, "must be a non-negative integer")),
            },
            Some(_) => Err(self.invalid(field, "must be a number")),
        }
    }

    pub fn opt_i64(&self, field: &str) -> Result<Option<i64>, ApiError> {
        match self.get(field) {
            None => Ok(None),
            Some(Value::Number(n)) => {
                n.as_i64().map(Some).ok_or_else(|| self.invalid(field, "must be an integer"))
            }
            Some(_) => Err(self.invalid(field, "must be a number")),
        }
    }

    pub fn opt_bool(&self, field: &str) -> Result<Option<bool>, ApiError> {
        match self.get(field) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(_) => Err(self.invalid(field, "must be true or false")),
        }
    }

    /// An optional array of strings, each at most `max` characters.
    pub fn opt_str_array(&self, field: &str, max: usize) -> Result<Option<Vec<String>>, ApiError> {
        match self.get(field) {
            None => Ok(None),
            Some(Value::Array(items)) => items
                .iter()
                .enumerate()
                .map(|(i, v)| match v {
                    Value::String(s) if s.chars().count() <= max => Ok(s.clone()),
                    Value::String(_) => {
                        Err(self.invalid(field, format!("[{i}] must be at most {max} characters")))
                    }
                    _ => Err(self.invalid(field, format!("[{i}] must be a string"))),
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Some),
            Some(_) => Err(self.invalid(field, "must be an array of strings")),
        }
    }

    pub fn opt_array(&self, field: &str) -> Result<Option<&'a Vec<Value>>, ApiError> {
        match self.get(field) {
            None => Ok(None),
            Some(Value::Array(a)) => Ok(Some(a)),
            Some(_) => Err(self.invalid(field, "must be an array")),
        }
    }

    pub fn opt_object(&self, field: &str) -> Result<Option<&'a Map<String, Value>>, ApiError> {
        match self.get(field) {
            None => Ok(None),
            Some(Value::Object(o)) => Ok(Some(o)),
            Some(_) => Err(self.invalid(field, "must be an object")),
        }
    }

    /// An error about `field` (for checks done by the caller).
    pub fn error(&self, field: &str, why: impl std::fmt::Display) -> ApiError {
        self.invalid(field, why)
    }
}

/// The body of a request that takes none (`what`: "a retraction"): nothing, or an empty object;
/// anything else is refused rather than ignored (a reason or a filter a caller meant is not
/// applied), naming the first field given.
pub fn no_body(bytes: &[u8], what: &str) -> Result<(), ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(());
    }
    let map = object(bytes)?;
    match map.keys().next() {
        None => Ok(()),
        Some(field) => {
            Err(ApiError::invalid(field.as_str(), format!("{what} takes no body ({field} given)")))
        }
    }
}

/// Whether `url` is an absolute http(s) URL or an app deep link (`scheme://...`), with no
/// whitespace or control characters and no script-capable scheme.
pub fn is_valid_link(url: &str) -> bool {
    let Some((scheme, rest)) = url.split_once("://") else { return false };
    let scheme_ok = scheme.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && scheme.chars().all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c));
    let blocked = ["javascript", "data", "vbscript", "file"].contains(&scheme.to_ascii_lowercase().as_str());
    let clean = !url.chars().any(|c| c.is_whitespace() || c.is_control());
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host_ok = if scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https") {
        !host.is_empty() && !host.starts_with('.') && !host.starts_with(':')
    } else {
        !rest.is_empty()
    };
    scheme_ok && !blocked && clean && host_ok
}

pub use crate::model::is_plausible_email;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links() {
        for ok in ["https://example.com", "http://a.b/c?d#e", "myapp://event/123", "nextinteract://x"] {
            assert!(is_valid_link(ok), "{ok}");
        }
        for bad in [
            "",
            "example.com",
            "https://",
            "https:// x.com",
            "javascript://x",
            "ftp:/x",
            "1app://x",
            "http://\u{0}",
        ] {
            assert!(!is_valid_link(bad), "{bad}");
        }
    }

    #[test]
    fn emails() {
        assert!(is_plausible_email("aaron.mcmullen@hypermedia.com.au"));
        for bad in ["", "a", "@b.c", "a@b", "a b@c.d", "a@b@c.d"] {
            assert!(!is_plausible_email(bad), "{bad}");
        }
    }

    #[test]
    fn fields_name_what_is_wrong() {
        let map = object(br#"{"a": 1, "b": "xx", "c": [1], "n": null}"#).unwrap();
        let f = Fields::new(&map);
        assert_eq!(f.opt_str("a", 5).unwrap_err().parameter.as_deref(), Some("a"));
        assert_eq!(f.opt_str("b", 1).unwrap_err().parameter.as_deref(), Some("b"));
        assert_eq!(f.opt_str_array("c", 5).unwrap_err().parameter.as_deref(), Some("c"));
        assert_eq!(f.opt_str("n", 5).unwrap(), None, "null reads as absent");
        assert!(f.req_str("missing", 5).unwrap_err().message.contains("is required"));
        assert_eq!(object(b"[1]").unwrap_err().parameter.as_deref(), Some("body"));
        assert_eq!(object(b"{").unwrap_err().parameter.as_deref(), Some("body"));
        assert_eq!(object(b"  ").unwrap_err().parameter.as_deref(), Some("body"));
    }
}
