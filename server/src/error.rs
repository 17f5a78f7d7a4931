//! The gateway's error type: every failure a client can see, with a stable code.
//!
//! Why one enum: the wire format (`{"error": {"code", "message"}}`) and the status code
//! are decided in exactly one place, so docs/PROTOCOL.md can list them from here.
//!
//! Messages are ours and stable: PostgreSQL's own text (which can quote stored data, names
//! of tables and roles) never reaches a client. It goes to stderr through [`log`], with the
//! SQLSTATE, which the client's message also carries.

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::gateway::doc::{json_response, Doc};
use crate::position::POSITION_HEADER;

/// Log one line to the gateway's stderr, ignoring a closed stderr (never panics).
pub fn log(line: std::fmt::Arguments) {
    use std::io::Write as _;
    let _ = writeln!(std::io::stderr(), "replikit-server: {line}");
}

/// A failure answered to an HTTP client.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// Malformed input: invalid JSON, a bad name, a bad header value.
    #[error("{0}")]
    BadRequest(String),
    /// A number in the body that a double does not hold exactly as written (`1e400`,
    /// `123456789012345678901234567890`): see [`crate::json::number`].
    #[error("the number {literal} at {path} does not survive a round trip through an IEEE double; send it as JSON.stringify prints it")]
    InvalidNumber { path: String, literal: String },
    /// The body is over the 1 MiB limit.
    #[error("request body is larger than 1 MiB")]
    PayloadTooLarge,
    /// The bearer token is missing or wrong.
    #[error("missing or wrong bearer token")]
    Unauthorized,
    /// No such document or route.
    #[error("{0}")]
    NotFound(String),
    /// The route exists but not for this method.
    #[error("method not allowed on this route")]
    MethodNotAllowed,
    /// `POST` of an id that already exists.
    #[error("document {0:?} already exists")]
    AlreadyExists(String),
    /// An `If-Match` precondition failed; carries the current document (or null).
    #[error("the document's version does not match If-Match")]
    Conflict { current: Option<Doc> },
    /// A write reached a standby (SQLSTATE 25006).
    #[error("this node is not the primary")]
    NotPrimary,
    /// A replica did not replay `wanted` within the allowed wait.
    #[error("replica is at position {position}, wanted {wanted}")]
    Lagging { wanted: u64, position: u64 },
    /// A primary was asked for a position beyond its own: it cannot arrive there (it came
    /// from another timeline, e.g. a write lost in a failover, or is bogus).
    #[error("this primary is at position {position}, wanted {wanted}: that position cannot arrive here")]
    PositionUnreachable { wanted: u64, position: u64 },
    /// The session's last write (term, position) is not in this node's history: a failover lost it.
    #[error(
        "this session's write at term {term}, position {position} is not in this node's history: a failover lost it"
    )]
    SessionLost { term: u64, position: u64 },
    /// The request body did not arrive within the body timeout.
    #[error("the request body did not arrive in time")]
    RequestTimeout,
    /// A write may or may not have been applied: its COMMIT did not finish within the deadline, or
    /// committed on the primary without the standbys its durability asks for (PostgreSQL's "already
    /// committed locally" WARNING). Retry with the same `Idempotency-Key`: the retry applies it once,
    /// or replays it once the standbys hold it.
    #[error("{0}")]
    OutcomeUnknown(String),
    /// The database is down, too slow, or shutting down. The message is ours, never the driver's.
    #[error("{0}")]
    Unavailable(String),
    /// A bug or an unexpected database error. The message is ours, never PostgreSQL's.
    #[error("{0}")]
    Internal(String),
}

impl ApiError {
    /// The stable, lowercase code clients switch on.
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::BadRequest(_) => "bad_request",
            ApiError::InvalidNumber { .. } => "invalid_number",
            ApiError::PayloadTooLarge => "payload_too_large",
            ApiError::Unauthorized => "unauthorized",
            ApiError::NotFound(_) => "not_found",
            ApiError::MethodNotAllowed => "method_not_allowed",
            ApiError::AlreadyExists(_) => "already_exists",
            ApiError::Conflict { .. } => "conflict",
            ApiError::NotPrimary => "not_primary",
            ApiError::Lagging { .. } => "lagging",
            ApiError::PositionUnreachable { .. } => "position_unreachable",
            ApiError::SessionLost { .. } => "session_lost",
            ApiError::RequestTimeout => "request_timeout",
            ApiError::OutcomeUnknown(_) => "outcome_unknown",
            ApiError::Unavailable(_) => "unavailable",
            ApiError::Internal(_) => "internal",
        }
    }

    /// The HTTP status for this error.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) | ApiError::InvalidNumber { .. } => StatusCode::BAD_REQUEST,
            ApiError::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::AlreadyExists(_) => StatusCode::CONFLICT,
            ApiError::Conflict { .. } => StatusCode::PRECONDITION_FAILED,
            ApiError::NotPrimary => StatusCode::MISDIRECTED_REQUEST,
            ApiError::Lagging { .. } => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::PositionUnreachable { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::SessionLost { .. } => StatusCode::CONFLICT,
            ApiError::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            ApiError::OutcomeUnknown(_) | ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The JSON body: the error envelope, plus `current` for conflicts (the document's text
    /// spliced in as stored, see [`Doc`]), `position` for `lagging` and `position_unreachable`, and `path` for
    /// `invalid_number`.
    pub fn body(&self) -> String {
        let mut body = json!({ "error": { "code": self.code(), "message": self.to_string() } });
        match self {
            ApiError::Conflict { current } => {
                let current = current.as_ref().map(Doc::to_json).unwrap_or_else(|| "null".into());
                return format!(r#"{{"error":{},"current":{current}}}"#, body["error"]);
            }
            ApiError::Lagging { position, .. } | ApiError::PositionUnreachable { position, .. } => {
                body["position"] = json!(position)
            }
            ApiError::InvalidNumber { path, .. } => body["path"] = json!(path),
            ApiError::SessionLost { term, position } => {
                body["lost"] = json!({ "term": term, "position": position });
            }
            _ => {}
        }
        body.to_string()
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = json_response(self.status(), self.body());
        if let ApiError::Lagging { position, .. } | ApiError::PositionUnreachable { position, .. } = &self {
            response.headers_mut().insert(POSITION_HEADER, HeaderValue::from(*position));
        }
        if let ApiError::Conflict { current: Some(doc) } = &self {
            if let Ok(etag) = HeaderValue::from_str(&format!("\"{}\"", doc.version)) {
                response.headers_mut().insert(axum::http::header::ETAG, etag);
            }
        }
        response
    }
}

impl From<tokio_postgres::Error> for ApiError {
    /// SQLSTATE 25006 means a write reached a standby: `not_primary`, never a 500.
    /// Lost connections, shutdowns and statement timeouts mean `unavailable`. The client gets
    /// a stable message with the SQLSTATE; PostgreSQL's message (without its DETAIL, which can
    /// quote row values) is logged.
    fn from(err: tokio_postgres::Error) -> Self {
        use tokio_postgres::error::SqlState;
        let Some(code) = err.code() else {
            // No SQLSTATE: the connection failed or closed. Its text is the driver's (an io
            // error, "connection closed"), never a password: tokio-postgres does not print its config.
            log(format_args!("database connection: {err}"));
            return ApiError::Unavailable("the database is unreachable or closed the connection".into());
        };
        if *code == SqlState::READ_ONLY_SQL_TRANSACTION {
            return ApiError::NotPrimary;
        }
        let sqlstate = code.code();
        log(format_args!("database error {sqlstate}: {}", err.as_db_error().map(|d| d.message()).unwrap_or("")));
        if sqlstate == "2200H" {
            // sequence_generator_limit_exceeded: only replikit_version_seq has a limit (2^40 values).
            ApiError::Internal(
                "the version sequence is exhausted (SQLSTATE 2200H): see docs/PROTOCOL.md, Versions".into(),
            )
        } else if sqlstate.starts_with("22") {
            // Class 22, data exception: the request carried data PostgreSQL cannot store (a NUL in a
            // string, \u0000 in JSON text): the client's fault, not a server error.
            let what = match sqlstate {
                "22P05" | "22021" => "a string holds \\u0000 (NUL), which PostgreSQL text cannot hold",
                "22003" => "a value is out of the range PostgreSQL can store",
                _ => "PostgreSQL cannot store this data",
            };
            ApiError::BadRequest(format!("{what} (SQLSTATE {sqlstate})"))
        } else if sqlstate.starts_with("57")
            || sqlstate.starts_with("08")
            || *code == SqlState::T_R_SERIALIZATION_FAILURE
        {
            // 57xxx: operator intervention (query_canceled by statement_timeout, admin_shutdown,
            // cannot_connect_now); 08xxx: connection exceptions; 40001: recovery conflict on a standby.
            ApiError::Unavailable(format!("the database cannot answer now (SQLSTATE {sqlstate})"))
        } else {
            ApiError::Internal(format!("unexpected database error (SQLSTATE {sqlstate})"))
        }
    }
}

impl From<deadpool_postgres::PoolError> for ApiError {
    fn from(err: deadpool_postgres::PoolError) -> Self {
        match err {
            deadpool_postgres::PoolError::Backend(e) => e.into(),
            deadpool_postgres::PoolError::Timeout(_) => {
                ApiError::Unavailable("no database connection became available in time".into())
            }
            other => {
                log(format_args!("connection pool: {other}"));
                ApiError::Unavailable("no database connection is available".into())
            }
        }
    }
}
