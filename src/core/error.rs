//! The SDK's one error type.
//!
//! Every failure a caller can see is a variant here, with a stable lowercase `code()` that JavaScript
//! reads as `ReplikitError.code`. The wasm layer is the only place that turns this into a JS value.

use serde_json::Value;

/// Why an operation failed. `code()` is the stable name JavaScript sees.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Error {
    /// An option or argument was wrong; `what` names it (e.g. `health.intervalMs`, `collection`).
    #[error("invalid {what}: {message}")]
    InvalidArgument { what: String, message: String },
    /// A conditional write (`ifVersion`) lost a race; `current` is the server's document, if any.
    #[error("version conflict")]
    Conflict { current: Option<Value> },
    /// `create` of an id that exists.
    #[error("already exists: {message}")]
    AlreadyExists { message: String },
    /// The document to update or delete does not exist.
    #[error("not found: {message}")]
    NotFound { message: String },
    /// No endpoint could be trusted as the primary within the wait budget.
    #[error("no usable primary within {waited_ms} ms")]
    NoPrimary { waited_ms: u64 },
    /// No endpoint answered the operation.
    #[error("unavailable: {message}")]
    Unavailable { message: String },
    /// An endpoint did not answer within the request timeout.
    #[error("timed out after {after_ms} ms")]
    Timeout { after_ms: u64 },
    /// An endpoint answered something that does not follow the protocol.
    #[error("protocol error: {message}")]
    Protocol { message: String },
    /// The endpoint refused the credentials.
    #[error("unauthorized")]
    Unauthorized,
    /// The caller aborted the operation (an `AbortSignal`) or closed the client.
    #[error("aborted: {message}")]
    Aborted { message: String },
    /// This client's write at (`term`, `position`) is not in the history of the node that was asked: a failover
    /// lost it (an asynchronous tail). Reads cannot show it; the client's session starts afresh.
    #[error("a write of this client (term {term}, position {position}) was lost in a failover: read-your-writes cannot hold for it")]
    SessionLost { term: u64, position: u64 },
    /// The local store failed (blocked, corrupt or missing database).
    #[error("storage error: {message}")]
    Storage { message: String },
    /// The local store is full.
    #[error("storage quota exceeded")]
    Quota,
}

impl Error {
    /// The stable code JavaScript sees as `error.code`.
    pub fn code(&self) -> &'static str {
        match self {
            Error::InvalidArgument { .. } => "invalid_argument",
            Error::Conflict { .. } => "conflict",
            Error::AlreadyExists { .. } => "already_exists",
            Error::NotFound { .. } => "not_found",
            Error::NoPrimary { .. } => "no_primary",
            Error::Unavailable { .. } => "unavailable",
            Error::Timeout { .. } => "timeout",
            Error::Protocol { .. } => "protocol",
            Error::Unauthorized => "unauthorized",
            Error::Aborted { .. } => "aborted",
            Error::SessionLost { .. } => "session_lost",
            Error::Storage { .. } => "storage",
            Error::Quota => "quota",
        }
    }

    /// Whether the same operation may succeed if tried again later.
    pub fn retryable(&self) -> bool {
        matches!(self, Error::NoPrimary { .. } | Error::Unavailable { .. } | Error::Timeout { .. })
    }

    /// Shorthand for [`Error::InvalidArgument`].
    pub fn invalid(what: impl Into<String>, message: impl Into<String>) -> Self {
        Error::InvalidArgument { what: what.into(), message: message.into() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_stable_and_messages_lowercase() {
        let e = Error::invalid("health.intervalMs", "must be at least 100");
        assert_eq!(e.code(), "invalid_argument");
        assert_eq!(e.to_string(), "invalid health.intervalMs: must be at least 100");
        assert!(!e.retryable());
        assert!(Error::NoPrimary { waited_ms: 5000 }.retryable());
        assert_eq!(Error::Quota.code(), "quota");
    }
}
