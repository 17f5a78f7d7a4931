//! Input validation: names, bodies and protocol headers, each failure a 400 that names the
//! problem (or 413 for an oversized body). Nothing here panics on client input.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{HeaderMap, StatusCode};
use serde_json::{Map, Value};

use crate::error::ApiError;
use crate::json::{self, Numbers, ParseError};
use crate::position::{
    Position, DEFAULT_MAX_WAIT_MS, DURABILITY_HEADER, MAX_MAX_WAIT_MS, MAX_WAIT_HEADER, MIN_POSITION_HEADER,
    MIN_TERM_HEADER,
};

/// Longest document id, in bytes.
pub const MAX_ID_BYTES: usize = 256;

/// A collection name is `[A-Za-z0-9_-]{1,64}`.
pub fn collection(name: &str) -> Result<(), ApiError> {
    let ok =
        (1..=64).contains(&name.len()) && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(ApiError::BadRequest(format!("collection {name:?} must match [A-Za-z0-9_-]{{1,64}}")))
    }
}

/// An id is 1..=256 bytes of UTF-8 without NUL (PostgreSQL text cannot hold it), and neither `.` nor `..`.
pub fn id(id: &str) -> Result<(), ApiError> {
    if id.contains('\0') {
        Err(ApiError::BadRequest("id must not contain NUL".into()))
    } else if id.is_empty() {
        Err(ApiError::BadRequest("id is empty".into()))
    } else if id.len() > MAX_ID_BYTES {
        Err(ApiError::BadRequest(format!("id is {} bytes, over the limit of {MAX_ID_BYTES}", id.len())))
    } else if id == "." || id == ".." {
        Err(ApiError::BadRequest(format!("id {id:?} is not allowed")))
    } else {
        Ok(())
    }
}

/// A JSON request body: 413 over 1 MiB, 400 `bad_request` when it is not JSON, 400
/// `invalid_number` when a number would not survive a double (see [`crate::json::number`]).
pub struct JsonBody(pub Value);

impl<S: Send + Sync> FromRequest<S> for JsonBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        body(req, state, "").await.map(JsonBody)
    }
}

/// A merge patch body: as [`JsonBody`], with number errors named from `data`, which it patches.
pub struct PatchBody(pub Value);

impl<S: Send + Sync> FromRequest<S> for PatchBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        body(req, state, "data").await.map(PatchBody)
    }
}

async fn body<S: Send + Sync>(req: Request, state: &S, root: &str) -> Result<Value, ApiError> {
    // A total deadline, not one per chunk: a body dripped a byte at a time must end too.
    let read = tokio::time::timeout(super::conn::BODY_TIMEOUT, Bytes::from_request(req, state));
    let bytes = read.await.map_err(|_| ApiError::RequestTimeout)?.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::PayloadTooLarge
        } else {
            ApiError::BadRequest(format!("could not read body: {rejection}"))
        }
    })?;
    json::parse(&bytes, Numbers::Exact, json::REQUEST_MAX_DEPTH, root).map_err(|e| match e {
        ParseError::Number { path, literal } => ApiError::InvalidNumber { path, literal },
        other => ApiError::BadRequest(format!("invalid JSON: {other}")),
    })
}

/// The body's `data` member, which must be a JSON object.
pub fn data_member(body: &Value) -> Result<Map<String, Value>, ApiError> {
    let Some(object) = body.as_object() else {
        return Err(ApiError::BadRequest("body must be a JSON object".into()));
    };
    match object.get("data") {
        Some(Value::Object(data)) => Ok(data.clone()),
        Some(_) => Err(ApiError::BadRequest("data must be a JSON object".into())),
        None => Err(ApiError::BadRequest("data is required".into())),
    }
}

/// The optional `id` member of a POST body.
pub fn id_member(body: &Value) -> Result<Option<String>, ApiError> {
    match body.get("id") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => id(s).map(|_| Some(s.clone())),
        Some(_) => Err(ApiError::BadRequest("id must be a string".into())),
    }
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Result<Option<&'a str>, ApiError> {
    match headers.get(name) {
        None => Ok(None),
        Some(v) => v
            .to_str()
            .map(|s| Some(s.trim()))
            .map_err(|_| ApiError::BadRequest(format!("header {name} is not visible ASCII"))),
    }
}

/// `X-Replikit-Min-Position` and `X-Replikit-Max-Wait-Ms` (default 200, clamped to 2000).
pub fn min_position(headers: &HeaderMap) -> Result<Option<(u64, u64)>, ApiError> {
    let Some(min) = header(headers, MIN_POSITION_HEADER)? else {
        return Ok(None);
    };
    let min: u64 =
        min.parse().map_err(|_| ApiError::BadRequest(format!("{MIN_POSITION_HEADER} must be a decimal u64")))?;
    let wait = match header(headers, MAX_WAIT_HEADER)? {
        None => DEFAULT_MAX_WAIT_MS,
        Some(w) => w
            .parse::<u64>()
            .map_err(|_| ApiError::BadRequest(format!("{MAX_WAIT_HEADER} must be a decimal number of ms")))?
            .min(MAX_MAX_WAIT_MS),
    };
    Ok(Some((min, wait)))
}

/// The session mark of a request: `X-Replikit-Min-Term` with `X-Replikit-Min-Position` (the
/// term and position of the session's last write). `None` without a term (an older client:
/// positions are compared as bare LSNs); a term without a position is a 400.
pub fn session_mark(headers: &HeaderMap) -> Result<Option<Position>, ApiError> {
    let Some(term) = header(headers, MIN_TERM_HEADER)? else {
        return Ok(None);
    };
    let term: u64 =
        term.parse().map_err(|_| ApiError::BadRequest(format!("{MIN_TERM_HEADER} must be a decimal u64")))?;
    let Some((lsn, _)) = min_position(headers)? else {
        return Err(ApiError::BadRequest(format!("{MIN_TERM_HEADER} needs {MIN_POSITION_HEADER}")));
    };
    Ok(Some(Position { term, lsn }))
}

/// A version from `If-Match`: `"<n>"`, `W/"<n>"` or a bare `<n>`.
pub fn if_match(headers: &HeaderMap) -> Result<Option<i64>, ApiError> {
    match header(headers, "if-match")? {
        None => Ok(None),
        Some(v) => parse_etag(v)
            .map(Some)
            .ok_or_else(|| ApiError::BadRequest(format!("If-Match {v:?} is not a version like \"3\""))),
    }
}

/// Whether `If-None-Match` names `version` (or is `*`).
pub fn if_none_match_hits(headers: &HeaderMap, version: i64) -> bool {
    let Some(value) = headers.get("if-none-match").and_then(|v| v.to_str().ok()) else {
        return false;
    };
    value.split(',').map(str::trim).any(|tag| tag == "*" || parse_etag(tag) == Some(version))
}

fn parse_etag(tag: &str) -> Option<i64> {
    let tag = tag.strip_prefix("W/").unwrap_or(tag);
    let tag = tag.strip_prefix('"').and_then(|t| t.strip_suffix('"')).unwrap_or(tag);
    tag.parse().ok()
}

/// The `Idempotency-Key` header (1..=256 bytes).
pub fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    match header(headers, "idempotency-key")? {
        None => Ok(None),
        Some(k) if k.is_empty() || k.len() > 256 => {
            Err(ApiError::BadRequest("Idempotency-Key must be 1..=256 bytes".into()))
        }
        Some(k) => Ok(Some(k.to_string())),
    }
}

/// Per-write durability, mapped to a `synchronous_commit` value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    Local,
    Quorum,
    Visible,
}

impl Durability {
    pub fn synchronous_commit(self) -> &'static str {
        match self {
            Durability::Local => "local",
            Durability::Quorum => "on",
            Durability::Visible => "remote_apply",
        }
    }
}

/// `X-Replikit-Durability: local | quorum | visible`.
pub fn durability(headers: &HeaderMap) -> Result<Option<Durability>, ApiError> {
    match header(headers, DURABILITY_HEADER)? {
        None => Ok(None),
        Some("local") => Ok(Some(Durability::Local)),
        Some("quorum") => Ok(Some(Durability::Quorum)),
        Some("visible") => Ok(Some(Durability::Visible)),
        Some(other) => {
            Err(ApiError::BadRequest(format!("{DURABILITY_HEADER} {other:?} is not one of local, quorum, visible")))
        }
    }
}

/// `{collection}` from the path, validated.
pub struct CollectionPath(pub String);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for CollectionPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut axum::http::request::Parts, state: &S) -> Result<Self, ApiError> {
        let axum::extract::Path(name) = axum::extract::Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|e| ApiError::BadRequest(format!("bad path: {e}")))?;
        collection(&name)?;
        Ok(CollectionPath(name))
    }
}

/// `{collection}/{id}` from the path, validated.
pub struct DocPath(pub String, pub String);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for DocPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut axum::http::request::Parts, state: &S) -> Result<Self, ApiError> {
        let axum::extract::Path((name, doc_id)) =
            axum::extract::Path::<(String, String)>::from_request_parts(parts, state)
                .await
                .map_err(|e| ApiError::BadRequest(format!("bad path: {e}")))?;
        collection(&name)?;
        id(&doc_id)?;
        Ok(DocPath(name, doc_id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collection_names_outside_the_alphabet_or_length_are_refused() {
        assert!(collection("todos_2024-v1").is_ok());
        assert!(collection(&"a".repeat(64)).is_ok());
        for bad in ["", "a b", "a/b", "é", &"a".repeat(65)] {
            assert!(matches!(collection(bad), Err(ApiError::BadRequest(_))), "{bad:?}");
        }
    }

    #[test]
    fn ids_must_be_1_to_256_bytes_and_not_dot_segments() {
        assert!(id("ü/any thing").is_ok());
        assert!(id(&"x".repeat(256)).is_ok());
        for bad in ["", ".", "..", &"x".repeat(257), "a\0b"] {
            assert!(id(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn etags_parse_quoted_weak_and_bare_versions() {
        let mut headers = HeaderMap::new();
        for (value, want) in [("\"3\"", 3), ("W/\"4\"", 4), ("5", 5)] {
            headers.insert("if-match", value.parse().unwrap());
            assert_eq!(if_match(&headers).unwrap(), Some(want));
        }
        headers.insert("if-match", "*".parse().unwrap());
        assert!(if_match(&headers).is_err());
        headers.insert("if-none-match", "\"1\", \"2\"".parse().unwrap());
        assert!(if_none_match_hits(&headers, 2));
        assert!(!if_none_match_hits(&headers, 3));
    }

    #[test]
    fn max_wait_defaults_to_200_ms_and_is_capped_at_2000() {
        let mut headers = HeaderMap::new();
        assert_eq!(min_position(&headers).unwrap(), None);
        headers.insert(MIN_POSITION_HEADER, "42".parse().unwrap());
        assert_eq!(min_position(&headers).unwrap(), Some((42, 200)));
        headers.insert(MAX_WAIT_HEADER, "99999".parse().unwrap());
        assert_eq!(min_position(&headers).unwrap(), Some((42, 2000)));
    }

    #[test]
    fn a_session_mark_needs_a_decimal_term_and_a_position() {
        let mut headers = HeaderMap::new();
        assert_eq!(session_mark(&headers).unwrap(), None);
        headers.insert(MIN_TERM_HEADER, "3".parse().unwrap());
        assert!(session_mark(&headers).is_err(), "a term without a position");
        headers.insert(MIN_POSITION_HEADER, "42".parse().unwrap());
        assert_eq!(session_mark(&headers).unwrap(), Some(Position { term: 3, lsn: 42 }));
        headers.insert(MIN_TERM_HEADER, "-1".parse().unwrap());
        assert!(session_mark(&headers).is_err());
    }
}
