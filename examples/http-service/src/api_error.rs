//! Errors as the service answers them: an HTTP status and a JSON body
//! `{"error": kind, "message": text}` (plus `item_index` when an item is at fault).

use serde_json::json;
use wstd::http::StatusCode;

use crate::bindings::agentmem::session::session::Error as SessionError;

/// An error answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Machine-readable kind, e.g. `invalid_input`.
    pub kind: &'static str,
    /// What went wrong.
    pub message: String,
    /// Index of the offending item of a batch, when one is at fault.
    pub item_index: Option<u32>,
    /// For a 405: the methods the path takes (the `allow` header).
    pub allow: Option<&'static str>,
}

impl ApiError {
    /// An error of `kind` with `status`.
    pub fn new(status: StatusCode, kind: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            kind,
            message: message.into(),
            item_index: None,
            allow: None,
        }
    }

    /// 400: the request itself is malformed.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    /// The JSON body.
    pub fn body(&self) -> String {
        match self.item_index {
            Some(i) => json!({"error": self.kind, "message": self.message, "item_index": i}),
            None => json!({"error": self.kind, "message": self.message}),
        }
        .to_string()
    }
}

impl From<SessionError> for ApiError {
    fn from(e: SessionError) -> Self {
        match e {
            SessionError::InvalidInput(i) => ApiError {
                status: StatusCode::BAD_REQUEST,
                kind: "invalid_input",
                message: i.message,
                item_index: i.item_index,
                allow: None,
            },
            SessionError::Conflict(n) => ApiError::new(
                StatusCode::CONFLICT,
                "conflict",
                format!("other writers kept changing the session; gave up after {n} attempts"),
            ),
            SessionError::Unavailable(m) => {
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", m)
            }
            SessionError::Timeout => ApiError::new(
                StatusCode::GATEWAY_TIMEOUT,
                "timeout",
                "the Dapr sidecar did not answer in time",
            ),
            // The service's own credentials to its sidecar are wrong: not the client's fault.
            SessionError::Unauthorized => ApiError::new(
                StatusCode::BAD_GATEWAY,
                "sidecar_unauthorized",
                "the Dapr sidecar refused this service's API token",
            ),
            SessionError::StoreNotFound(m) => {
                ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "store_not_found", m)
            }
            SessionError::Corrupt(m) => {
                ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "corrupt", m)
            }
            SessionError::Changed => ApiError::new(
                StatusCode::PRECONDITION_FAILED,
                "changed",
                "the session changed since the expected version",
            ),
            SessionError::Interrupted(m) => {
                ApiError::new(StatusCode::BAD_GATEWAY, "interrupted", m)
            }
            SessionError::Unsupported(m) => {
                ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "unsupported", m)
            }
            SessionError::TooManyItems(n) => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "too_many_items",
                format!("the session holds {n} items, more than one read returns: pass limit"),
            ),
            SessionError::Protocol(m) => ApiError::new(StatusCode::BAD_GATEWAY, "protocol", m),
            SessionError::Internal(m) => {
                ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", m)
            }
            SessionError::Store(s) => ApiError::new(
                StatusCode::BAD_GATEWAY,
                "store",
                if s.error_code.is_empty() {
                    format!("the sidecar answered {}: {}", s.status, s.message)
                } else {
                    format!(
                        "the sidecar answered {} ({}): {}",
                        s.status, s.error_code, s.message
                    )
                },
            ),
        }
    }
}
