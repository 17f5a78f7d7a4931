//! Protocol v1 as data: the requests the core asks the driver to send, the outcomes it is told, and
//! defensive parsing of what endpoints answer (docs/PROTOCOL.md).
//!
//! Nothing an endpoint says is trusted: bodies are size-bounded, JSON is parsed into typed values, and a
//! malformed answer becomes [`Error::Protocol`] naming the endpoint, never a panic.

use serde::Deserialize;
use serde_json::Value;

use super::document::Doc;
use super::error::Error;
use super::options::Role;

/// Responses larger than this are refused (a hostile or broken endpoint must not exhaust memory).
pub const MAX_BODY_BYTES: usize = 16 * 1024 * 1024;

pub const NODE_HEADER: &str = "x-replikit-node";
pub const POSITION_HEADER: &str = "x-replikit-position";
pub const MIN_POSITION_HEADER: &str = "x-replikit-min-position";
pub const MAX_WAIT_HEADER: &str = "x-replikit-max-wait-ms";
pub const DURABILITY_HEADER: &str = "x-replikit-durability";
pub const IDEMPOTENCY_HEADER: &str = "idempotency-key";

/// Index of an endpoint in the client's configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EndpointId(pub usize);

/// HTTP methods the protocol uses.
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
    /// Path and query, starting with `/v1/`.
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

/// An HTTP response, reduced to what the protocol reads.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Response {
    pub status: u16,
    /// `X-Replikit-Node`.
    pub node: Option<String>,
    /// `X-Replikit-Position`, when present and a valid u64.
    pub position: Option<u64>,
    pub body: String,
}

/// `GET /v1/health`'s answer.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HealthReport {
    pub node_id: String,
    pub role: Role,
    pub term: u64,
    pub position: u64,
    pub lag_ms: Option<u64>,
    #[serde(default)]
    pub read_only: bool,
}

#[derive(Deserialize)]
struct ErrorBody {
    error: ErrorDetail,
}

#[derive(Deserialize)]
struct ErrorDetail {
    code: String,
    #[serde(default)]
    message: String,
    current: Option<Value>,
}

/// The `{"error": {...}}` body of a failed response, if it has one.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerError {
    pub code: String,
    pub message: String,
    /// The current document, on a 412 `conflict` (the body's `error.current` or top-level `current`).
    pub current: Option<Value>,
}

fn protocol(endpoint: &str, what: impl std::fmt::Display) -> Error {
    Error::Protocol { message: format!("{endpoint}: {what}") }
}

/// Parses a health report; `endpoint` names the source in errors.
pub fn parse_health(endpoint: &str, body: &str) -> Result<HealthReport, Error> {
    check_size(endpoint, body)?;
    let report: HealthReport =
        serde_json::from_str(body).map_err(|e| protocol(endpoint, format!("bad health report: {e}")))?;
    if report.node_id.is_empty() || report.node_id.len() > 256 {
        return Err(protocol(endpoint, "bad health report: nodeId must be 1 to 256 bytes"));
    }
    Ok(report)
}

/// Parses a document body.
pub fn parse_doc(endpoint: &str, body: &str) -> Result<Doc, Error> {
    check_size(endpoint, body)?;
    serde_json::from_str(body).map_err(|e| protocol(endpoint, format!("bad document: {e}")))
}

/// A page of `GET /v1/c/{collection}`.
#[derive(Debug, Clone, PartialEq, Deserialize, serde::Serialize)]
pub struct Page {
    pub items: Vec<Doc>,
    pub next: Option<String>,
}

/// Parses a list page.
pub fn parse_page(endpoint: &str, body: &str) -> Result<Page, Error> {
    check_size(endpoint, body)?;
    serde_json::from_str(body).map_err(|e| protocol(endpoint, format!("bad list page: {e}")))
}

/// Parses an error body; `None` when the body is not a protocol error (a proxy's HTML page, say).
pub fn parse_error(body: &str) -> Option<ServerError> {
    if body.len() > MAX_BODY_BYTES {
        return None;
    }
    let value: Value = serde_json::from_str(body).ok()?;
    let current_top = value.get("current").cloned();
    let parsed: ErrorBody = serde_json::from_value(value).ok()?;
    Some(ServerError {
        code: parsed.error.code,
        message: parsed.error.message,
        current: parsed.error.current.or(current_top),
    })
}

fn check_size(endpoint: &str, body: &str) -> Result<(), Error> {
    if body.len() > MAX_BODY_BYTES {
        return Err(protocol(endpoint, format!("response of {} bytes is over the limit", body.len())));
    }
    Ok(())
}

/// Percent-encodes a path segment (RFC 3986 unreserved characters pass through).
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
    fn health_reports_are_parsed_strictly() {
        let ok = r#"{"nodeId":"n1","role":"replica","term":2,"position":123,"lagMs":4,"readOnly":true}"#;
        let r = parse_health("http://a", ok).unwrap();
        assert_eq!((r.role, r.term, r.position, r.lag_ms), (Role::Replica, 2, 123, Some(4)));
        for bad in [
            "",
            "[]",
            r#"{"nodeId":"n1","role":"leader","term":1,"position":1,"lagMs":null}"#,
            r#"{"nodeId":"n1","role":"primary","term":-1,"position":1,"lagMs":null}"#,
            r#"{"nodeId":"","role":"primary","term":1,"position":1,"lagMs":null}"#,
        ] {
            assert_eq!(parse_health("http://a", bad).unwrap_err().code(), "protocol", "{bad}");
        }
    }

    #[test]
    fn error_bodies_carry_code_and_current() {
        let e = parse_error(r#"{"error":{"code":"conflict","message":"m"},"current":{"id":"a"}}"#).unwrap();
        assert_eq!(e.code, "conflict");
        assert_eq!(e.current.unwrap()["id"], "a");
        assert!(parse_error("<html>bad gateway</html>").is_none());
    }

    #[test]
    fn segments_are_percent_encoded() {
        assert_eq!(encode_segment("a b/ü?#"), "a%20b%2F%C3%BC%3F%23");
        assert_eq!(encode_segment("..x"), "..x");
    }
}
