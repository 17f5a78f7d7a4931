//! Protocol v1 as data: the requests the core asks the driver to send, the outcomes it is told, and
//! defensive parsing of what endpoints answer (docs/PROTOCOL.md).
//!
//! Nothing an endpoint says is trusted: bodies are size-bounded, JSON is parsed into typed values, and a
//! malformed answer becomes [`Error::Protocol`] naming the endpoint, never a panic.

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
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthReport {
    pub node_id: String,
    pub role: Role,
    pub term: u64,
    pub position: u64,
    pub lag_ms: Option<u64>,
    pub read_only: bool,
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

/// Parses a body as JSON, within the size limit. Every parser goes through here: one `Value` deserializer
/// instead of a serde visitor per type keeps the wasm small.
fn json(endpoint: &str, body: &str) -> Result<Value, Error> {
    if body.len() > MAX_BODY_BYTES {
        return Err(protocol(endpoint, format!("response of {} bytes is over the limit", body.len())));
    }
    serde_json::from_str(body).map_err(|e| protocol(endpoint, format!("invalid JSON: {e}")))
}

/// Parses a health report; `endpoint` names the source in errors.
pub fn parse_health(endpoint: &str, body: &str) -> Result<HealthReport, Error> {
    let v = json(endpoint, body)?;
    let bad = |what: &str| protocol(endpoint, format!("bad health report: {what}"));
    let node_id = v.get("nodeId").and_then(Value::as_str).ok_or_else(|| bad("nodeId must be a string"))?;
    if node_id.is_empty() || node_id.len() > 256 {
        return Err(bad("nodeId must be 1 to 256 bytes"));
    }
    let role = match v.get("role").and_then(Value::as_str) {
        Some("primary") => Role::Primary,
        Some("replica") => Role::Replica,
        _ => return Err(bad("role must be \"primary\" or \"replica\"")),
    };
    let term = v.get("term").and_then(Value::as_u64).ok_or_else(|| bad("term must be a whole number"))?;
    let position = v.get("position").and_then(Value::as_u64).ok_or_else(|| bad("position must be a whole number"))?;
    let lag_ms = match v.get("lagMs") {
        None | Some(Value::Null) => None,
        Some(l) => Some(l.as_u64().ok_or_else(|| bad("lagMs must be a whole number or null"))?),
    };
    let read_only = v.get("readOnly").and_then(Value::as_bool).unwrap_or(false);
    Ok(HealthReport { node_id: node_id.to_string(), role, term, position, lag_ms, read_only })
}

/// Parses a document body.
pub fn parse_doc(endpoint: &str, body: &str) -> Result<Doc, Error> {
    Doc::from_value(json(endpoint, body)?).map_err(|e| protocol(endpoint, e))
}

/// A page of `GET /v1/c/{collection}`.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Page {
    pub items: Vec<Doc>,
    pub next: Option<String>,
}

/// Parses a list page.
pub fn parse_page(endpoint: &str, body: &str) -> Result<Page, Error> {
    let v = json(endpoint, body)?;
    let Value::Object(mut map) = v else { return Err(protocol(endpoint, "a list page must be an object")) };
    let items = match map.remove("items") {
        Some(Value::Array(items)) => items
            .into_iter()
            .map(Doc::from_value)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| protocol(endpoint, e))?,
        _ => return Err(protocol(endpoint, "a list page needs an `items` array")),
    };
    let next = match map.remove("next") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s),
        Some(_) => return Err(protocol(endpoint, "`next` must be a string or null")),
    };
    Ok(Page { items, next })
}

/// Parses an error body; `None` when the body is not a protocol error (a proxy's HTML page, say).
pub fn parse_error(body: &str) -> Option<ServerError> {
    let v = json("", body).ok()?;
    let e = v.get("error")?;
    let code = e.get("code")?.as_str()?.to_string();
    let message = e.get("message").and_then(Value::as_str).unwrap_or_default().to_string();
    let current = e.get("current").or_else(|| v.get("current")).cloned();
    Some(ServerError { code, message, current })
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
