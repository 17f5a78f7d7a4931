//! What crosses the wire, as data: the requests the core asks the driver to send, the outcomes it is told, and
//! one adapter per server protocol that turns a CRUD [`Action`] into requests and answers into verdicts.
//!
//! The router knows nothing of any protocol's paths, headers or bodies: it asks the [`Adapter`] for the request of
//! an attempt and acts on the [`Verdict`] it returns (done, send a follow-up to the same endpoint, the endpoint is
//! not the primary, lagging, the endpoint failed, a final error). A third protocol is one more file here.
//!
//! - [`replikit`]: protocol v1 of the Replikit gateway (docs/PROTOCOL.md), primary/replica.
//! - [`couchdb`]: CouchDB's document API (CouchDB, PouchDB Server), multi-primary.
//!
//! Nothing an endpoint says is trusted: bodies are size-bounded, JSON is parsed into typed values, and a
//! malformed answer becomes an error naming the endpoint, never a panic.

use serde_json::Value;

use super::action::{Action, Reply};
use super::document::Version;
use super::error::Error;
pub use super::types::EndpointId;
use super::types::{Durability, Role};

pub mod couchdb;
pub mod replikit;

pub use replikit::{parse_doc, parse_error, parse_health, parse_page, ServerError};

/// Responses larger than this are refused (a hostile or broken endpoint must not exhaust memory).
pub const MAX_BODY_BYTES: usize = 16 * 1024 * 1024;

pub const NODE_HEADER: &str = "x-replikit-node";
pub const POSITION_HEADER: &str = "x-replikit-position";
pub const MIN_POSITION_HEADER: &str = "x-replikit-min-position";
/// The term (timeline) of `X-Replikit-Position` on a response, and of `X-Replikit-Min-Position` on a request.
pub const TERM_HEADER: &str = "x-replikit-term";
pub const MIN_TERM_HEADER: &str = "x-replikit-min-term";
/// On a write's answer: the session's earlier write, named by the request's min term and position, was lost in a
/// failover.
pub const SESSION_LOST_HEADER: &str = "x-replikit-session-lost";
pub const MAX_WAIT_HEADER: &str = "x-replikit-max-wait-ms";
pub const DURABILITY_HEADER: &str = "x-replikit-durability";
pub const IDEMPOTENCY_HEADER: &str = "idempotency-key";

/// HTTP methods the protocols use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Post,
    Put,
    Patch,
    Delete,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Patch => "PATCH",
            Method::Delete => "DELETE",
        }
    }
}

/// A request for the driver to send: where, what, and how long to wait for it.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    pub endpoint: EndpointId,
    pub method: Method,
    /// Path and query, starting with `/`.
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Option<String>,
    pub timeout_ms: u64,
}

/// What came back from one request.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Response(Response),
    /// Connection refused or reset, DNS, CORS: nothing usable arrived.
    NetworkError(String),
    /// No answer within the request's timeout (a hung server).
    Timeout,
}

/// An HTTP response, reduced to what the protocols read.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Response {
    pub status: u16,
    /// `X-Replikit-Node`.
    pub node: Option<String>,
    /// `X-Replikit-Position`, when present and a valid u64.
    pub position: Option<u64>,
    /// `X-Replikit-Term`: the term of `position`.
    pub term: Option<u64>,
    /// `X-Replikit-Session-Lost` was present (a write's answer).
    pub session_lost: bool,
    pub body: String,
}

/// A health check's answer, in the terms of the one topology model (docs/ARCHITECTURE.md).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthReport {
    pub node_id: String,
    pub role: Role,
    pub term: u64,
    pub position: u64,
    pub lag_ms: Option<u64>,
    pub read_only: bool,
}

/// The protocol-specific part of a request (the router adds the endpoint, the configured headers and the
/// timeout).
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    pub method: Method,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Option<String>,
}

impl Call {
    pub fn get(path: String) -> Call {
        Call { method: Method::Get, path, headers: Vec::new(), body: None }
    }
}

/// What an attempt's request depends on besides the action.
#[derive(Debug, Clone, Copy)]
pub struct Attempt<'a> {
    /// A write's idempotency key (the same on every attempt).
    pub key: Option<&'a str>,
    pub durability: Durability,
    /// Read-your-writes: the session's highest written position (protocol v1).
    pub min_position: Option<u64>,
    /// The term of `min_position`, when the server said it.
    pub min_term: Option<u64>,
    /// When the write was made: the same on every attempt (and for a queued write, its edit time), so a retry
    /// that writes again writes the same bytes.
    pub written_at_ms: u64,
    /// Whether an earlier attempt of this call may have reached a server.
    pub retried: bool,
}

/// A second request of the same attempt, to the same endpoint (CouchDB: the write after the read that found the
/// revision to build on), and what its success means.
#[derive(Debug, Clone, PartialEq)]
pub struct FollowUp {
    pub call: Call,
    pub reply: Reply,
}

/// What an answer means, as an adapter reads it.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// The call succeeded. `raw`: the body when it is the protocol-v1 JSON of the document replied;
    /// `conflicts`: revisions in conflict with the one replied (multi-primary).
    Done { reply: Reply, raw: Option<String>, conflicts: Vec<Version> },
    /// Send this next, to the same endpoint.
    FollowUp(FollowUp),
    /// The endpoint is not the primary (any more).
    NotPrimary,
    /// A replica is behind the session's writes: not a failure, the read goes elsewhere.
    Lagging,
    /// The endpoint failed (a 5xx, a malformed answer): suspect it and try elsewhere.
    Failed(Error),
    /// A write's outcome is unknown at a healthy endpoint (protocol v1's 503 `outcome_unknown`: its commit did
    /// not reach the durability asked for in time). Not the endpoint's failure: retry with the same key.
    OutcomeUnknown(Error),
    /// The call failed for a reason another endpoint would not change.
    Final(Error),
}

impl Verdict {
    pub fn done(reply: Reply) -> Verdict {
        Verdict::Done { reply, raw: None, conflicts: Vec::new() }
    }
}

/// One server protocol. See the module docs.
pub trait Adapter: std::fmt::Debug {
    /// The periodic health check.
    fn health_check(&self) -> Call;
    /// A `200` answer to the health check; `url` names the endpoint in errors.
    fn parse_health(&self, url: &str, body: &str) -> Result<HealthReport, Error>;
    /// The first request of an attempt at `action`.
    fn request(&self, action: &Action, attempt: &Attempt) -> Result<Call, Error>;
    /// What `response` (to the attempt's first request, or to `follow_up`) means.
    fn interpret(
        &self,
        url: &str,
        action: &Action,
        attempt: &Attempt,
        follow_up: Option<&FollowUp>,
        response: Response,
    ) -> Verdict;
    /// The version a write made with `key` over `base` will have, for the optimistic copy of a queued write.
    fn predicted_version(&self, base: Option<&Version>, key: &str) -> Version;
}

pub(crate) fn protocol_error(endpoint: &str, what: impl std::fmt::Display) -> Error {
    Error::Protocol { message: format!("{endpoint}: {what}") }
}

/// Parses a body as JSON, within the size limit. Every parser goes through here: one `Value` deserializer
/// instead of a serde visitor per type keeps the wasm small.
pub(crate) fn json(endpoint: &str, body: &str) -> Result<Value, Error> {
    if body.len() > MAX_BODY_BYTES {
        return Err(protocol_error(endpoint, format!("response of {} bytes is over the limit", body.len())));
    }
    serde_json::from_str(body).map_err(|e| protocol_error(endpoint, format!("invalid JSON: {e}")))
}

/// Percent-encodes a path segment or query value (RFC 3986 unreserved characters pass through).
pub fn encode_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_are_percent_encoded() {
        assert_eq!(encode_segment("a b/ü?#"), "a%20b%2F%C3%BC%3F%23");
        assert_eq!(encode_segment("..x"), "..x");
    }
}
