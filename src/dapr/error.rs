//! How a request to the sidecar failed, and what that says about a write's outcome.

/// Failure of one request to the sidecar.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DaprError {
    /// Nothing was sent: the sidecar could not be reached (connection refused, no such host,
    /// unreachable, or the host denied the request).
    Unreachable(String),
    /// No complete answer within the timeout: a write may have been applied.
    Timeout,
    /// The connection broke after the request was sent: a write may have been applied.
    Interrupted(String),
    /// The sidecar answered 401: wrong or missing API token.
    Unauthorized,
    /// The sidecar answered, but not in Dapr's format, or with more bytes than allowed.
    Protocol(String),
    /// The sidecar answered with an error status.
    Status {
        /// HTTP status.
        status: u16,
        /// Dapr `errorCode`, empty if the body had none.
        code: String,
        /// Dapr `message`, or the start of the body.
        message: String,
    },
}

/// What a failed request says about whether it took effect: the retry class of the error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// It did not: retrying cannot apply it twice.
    NotApplied,
    /// It may have: only something that recognises the write (an operation id) may retry it.
    Unknown,
    /// The sidecar refused it, with a reason: retrying the same request fails the same way,
    /// except a lost race (409), which a new attempt on fresh state may win.
    Refused,
}

impl DaprError {
    /// The HTTP status, if the sidecar answered with an error status.
    pub fn status(&self) -> Option<u16> {
        match self {
            DaprError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// What this failure says about the request's effect.
    pub fn outcome(&self) -> Outcome {
        match self {
            DaprError::Unreachable(_) => Outcome::NotApplied,
            DaprError::Timeout | DaprError::Interrupted(_) | DaprError::Protocol(_) => {
                Outcome::Unknown
            }
            DaprError::Unauthorized | DaprError::Status { .. } => Outcome::Refused,
        }
    }

    /// True when a write may or may not have been applied.
    pub fn is_ambiguous(&self) -> bool {
        self.outcome() == Outcome::Unknown
    }

    /// True for an etag conflict: another writer changed the key first.
    pub fn is_conflict(&self) -> bool {
        self.status() == Some(409)
    }
}

impl std::fmt::Display for DaprError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DaprError::Unreachable(m) => write!(f, "sidecar unreachable: {m}"),
            DaprError::Timeout => f.write_str("request to the sidecar timed out"),
            DaprError::Interrupted(m) => write!(f, "connection to the sidecar broke: {m}"),
            DaprError::Unauthorized => f.write_str("the sidecar refused the API token"),
            DaprError::Protocol(m) => write!(f, "unexpected answer from the sidecar: {m}"),
            DaprError::Status {
                status,
                code,
                message,
            } => write!(f, "sidecar answered {status} {code}: {message}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_failures_after_sending_are_ambiguous() {
        assert!(!DaprError::Unreachable("refused".into()).is_ambiguous());
        assert!(DaprError::Timeout.is_ambiguous());
        assert!(DaprError::Interrupted("reset".into()).is_ambiguous());
        assert!(DaprError::Protocol("garbled".into()).is_ambiguous());
        let conflict = DaprError::Status {
            status: 409,
            code: "ERR_STATE_SAVE".into(),
            message: String::new(),
        };
        assert!(!conflict.is_ambiguous() && conflict.is_conflict());
        assert_eq!(DaprError::Unauthorized.outcome(), Outcome::Refused);
    }
}
