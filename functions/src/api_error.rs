//! The contract's error body: `{"error":{"code":"snake_case_code","message":"..."}}` with the
//! HTTP status that goes with it (DESIGN.md, API contract).

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    BadRequest = 400,
    Unauthorized = 401,
    Forbidden = 403,
    NotFound = 404,
    Conflict = 409,
    PayloadTooLarge = 413,
    UnsupportedMediaType = 415,
    TooManyRequests = 429,
    Internal = 500,
    Unavailable = 503,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ApiError {
    #[serde(skip)]
    pub status: Status,
    pub code: String,
    pub message: String,
}

#[derive(Serialize)]
struct Body<'a> {
    error: &'a ApiError,
}

impl ApiError {
    /// `code` must be snake_case: clients match on it.
    pub fn new(status: Status, code: &str, message: impl Into<String>) -> Self {
        debug_assert!(code.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'), "error codes are snake_case");
        ApiError { status, code: code.to_string(), message: message.into() }
    }

    /// Absent and other-tenant resources answer alike, so existence never leaks.
    pub fn not_found(what: &str) -> Self {
        ApiError::new(Status::NotFound, "not_found", format!("{what} does not exist"))
    }

    /// Maps a core error by its class: the caller's fault, a retryable hiccup, or ours.
    pub fn from_core(err: &vaultstream::Error) -> Self {
        match err.class() {
            vaultstream::ErrorClass::Client => ApiError::new(Status::BadRequest, "invalid_request", err.to_string()),
            vaultstream::ErrorClass::Retryable => {
                ApiError::new(Status::Unavailable, "try_again", "a dependency is unavailable; retry shortly")
            }
            vaultstream::ErrorClass::Fatal => ApiError::new(Status::Internal, "internal_error", "something went wrong on our side"),
        }
    }

    /// The access path's refusals carry their own status and code.
    pub fn from_access(err: &vaultstream::access::AccessError) -> Self {
        let status = match err.status() {
            400 => Status::BadRequest,
            401 => Status::Unauthorized,
            403 => Status::Forbidden,
            404 => Status::NotFound,
            409 => Status::Conflict,
            413 => Status::PayloadTooLarge,
            415 => Status::UnsupportedMediaType,
            503 => Status::Unavailable,
            _ => Status::Internal,
        };
        ApiError::new(status, err.code(), err.public_message())
    }

    pub fn status_code(&self) -> u16 {
        self.status as u16
    }

    pub fn body(&self) -> String {
        serde_json::to_string(&Body { error: self }).unwrap_or_else(|_| r#"{"error":{"code":"internal_error","message":"error"}}"#.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_has_the_contract_shape() {
        let e = ApiError::not_found("content c1");
        assert_eq!(e.status_code(), 404);
        assert_eq!(e.body(), r#"{"error":{"code":"not_found","message":"content c1 does not exist"}}"#);
    }

    #[test]
    fn fatal_core_errors_do_not_leak_details() {
        let e = ApiError::from_core(&vaultstream::Error::Random("getrandom: EAGAIN on /dev/urandom".into()));
        assert_eq!(e.status_code(), 500);
        assert!(!e.body().contains("urandom"));
    }

    #[test]
    fn client_errors_say_what_was_wrong() {
        let e = ApiError::from_core(&vaultstream::Error::InvalidKey("expected 32 hex digits".into()));
        assert_eq!(e.status_code(), 400);
        assert!(e.body().contains("32 hex digits"));
    }
}
