//! The error envelope of the NextInteract-style dialects — group send and sent history, and the
//! recipient's own routes, which speak the same way: `{"exception", "message", "parameter"}`
//! with a `WS…Exception` name per kind.

use crate::error::{ApiError, ErrorKind};

/// The exception name of a kind.
pub fn exception(kind: ErrorKind) -> &'static str {
    match kind {
        ErrorKind::InvalidParameter => "WSInvalidParameterException",
        ErrorKind::InvalidAuthToken => "WSInvalidAuthTokenException",
        ErrorKind::InsufficientPermissions => "WSInsufficientPermissionsException",
        ErrorKind::InsufficientPrivileges => "WSInsufficientPrivilegesException",
        ErrorKind::UnsupportedVersion => "WSUnsupportedVersionException",
        ErrorKind::EventNotFound => "WSEventNotFoundException",
        ErrorKind::EventCancelled => "WSEventCancelledException",
        ErrorKind::SmartLibNotFound => "WSSmartLibNotFoundException",
        ErrorKind::NotFound => "WSNotFoundException",
        ErrorKind::MethodNotAllowed => "WSMethodNotAllowedException",
        ErrorKind::Conflict => "WSConflictException",
        ErrorKind::PayloadTooLarge => "WSPayloadTooLargeException",
        ErrorKind::TooManyRequests => "WSTooManyRequestsException",
        ErrorKind::FeatureDisabled => "WSFeatureDisabledException",
        ErrorKind::Unavailable => "WSServiceUnavailableException",
        ErrorKind::Internal => "WSInternalException",
    }
}

/// The envelope of an error.
pub fn envelope(e: &ApiError) -> serde_json::Value {
    let mut body = serde_json::json!({
        "exception": exception(e.kind),
        "message": e.message,
    });
    if let Some(p) = &e.parameter {
        body["parameter"] = serde_json::Value::String(p.clone());
    }
    if let Some(state) = e.state {
        body["state"] = serde_json::Value::String(state.into());
    }
    body
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelope_names_exception_and_parameter() {
        let e = ApiError::invalid("message", "message must be 1..2048 characters");
        assert_eq!(e.status(), 400);
        let body = envelope(&e);
        assert_eq!(body["exception"], "WSInvalidParameterException");
        assert_eq!(body["parameter"], "message");
    }

    #[test]
    fn envelope_omits_parameter_when_none() {
        let e = ApiError::new(ErrorKind::InvalidAuthToken, "missing x-nextinteract-authtoken");
        assert_eq!(e.status(), 401);
        assert!(envelope(&e).get("parameter").is_none());
    }
}
