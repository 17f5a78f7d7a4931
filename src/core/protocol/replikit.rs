//! Protocol v1 of the Replikit gateway (docs/PROTOCOL.md): a primary and replicas, versions as counters,
//! `If-Match`/`If-None-Match` on them, idempotency keys, read-your-writes by replication position.

use serde_json::{Map, Value};

use super::{
    encode_segment, json, protocol_error, Adapter, Attempt, Call, FollowUp, HealthReport, Method, Response, Verdict,
    DURABILITY_HEADER, IDEMPOTENCY_HEADER, MIN_POSITION_HEADER, MIN_TERM_HEADER,
};
use crate::core::action::{Action, Page, Reply};
use crate::core::document::{Doc, Version};
use crate::core::error::Error;
use crate::core::types::{Durability, Role};

/// The version of a queued write's optimistic copy until it syncs (see [`Replikit::predicted_version`]).
pub const PENDING_VERSION: Version = Version::Seq(0);

/// The protocol-v1 adapter.
#[derive(Debug, Default)]
pub struct Replikit;

impl Adapter for Replikit {
    fn health_check(&self) -> Call {
        Call::get("/v1/health".into())
    }

    fn parse_health(&self, url: &str, body: &str) -> Result<HealthReport, Error> {
        parse_health(url, body)
    }

    fn request(&self, action: &Action, attempt: &Attempt) -> Result<Call, Error> {
        let mut headers: Vec<(String, String)> = Vec::new();
        let body = body(action);
        if body.is_some() {
            headers.push(("content-type".into(), "application/json".into()));
        }
        if let Some(key) = attempt.key {
            headers.push((IDEMPOTENCY_HEADER.into(), key.to_string()));
            let durability = match attempt.durability {
                Durability::Local => "local",
                Durability::Quorum => "quorum",
                Durability::Visible => "visible",
            };
            headers.push((DURABILITY_HEADER.into(), durability.into()));
        }
        if let Some(v) = action.if_version() {
            headers.push(("if-match".into(), v.etag()));
        }
        if let Action::Get { if_none_match: Some(v), .. } = action {
            // A pending copy's version is no server's: it is never sent to be matched.
            if *v != PENDING_VERSION {
                headers.push(("if-none-match".into(), v.etag()));
            }
        }
        // Reads wait for the session's position; with its term, any call lets a node of a later term check that the
        // session's last write is in its history (a write is applied either way and told in its answer).
        match (attempt.min_position, attempt.min_term) {
            (Some(p), Some(t)) => {
                headers.push((MIN_POSITION_HEADER.into(), p.to_string()));
                headers.push((MIN_TERM_HEADER.into(), t.to_string()));
            }
            (Some(p), None) if !action.is_write() => headers.push((MIN_POSITION_HEADER.into(), p.to_string())),
            _ => {}
        }
        let method = match action {
            Action::Get { .. } | Action::List { .. } => Method::Get,
            Action::Create { .. } => Method::Post,
            Action::Replace { .. } => Method::Put,
            Action::Update { .. } => Method::Patch,
            Action::Delete { .. } => Method::Delete,
            Action::Revisions { .. } | Action::Resolve { .. } => {
                return Err(Error::invalid(
                    "protocol",
                    "revision conflicts exist only on multi-primary (CouchDB) servers",
                ))
            }
        };
        Ok(Call { method, path: path(action), headers, body })
    }

    fn interpret(&self, url: &str, action: &Action, _: &Attempt, _: Option<&FollowUp>, response: Response) -> Verdict {
        // Only a failure's body is looked at for an error (a document is parsed once, below).
        let server = match response.status {
            200..=299 => None,
            _ => parse_error(&response.body),
        };
        let code = server.as_ref().map(|s| s.code.as_str()).unwrap_or("");
        match response.status {
            200..=299 => {
                let reply = match action {
                    Action::Delete { .. } => Ok(Reply::Deleted),
                    Action::List { .. } => parse_page(url, &response.body).map(Reply::Page),
                    _ => parse_doc(url, &response.body).map(Reply::Doc),
                };
                match reply {
                    // The body just parsed is a valid document: the driver may hand it to JS as it is.
                    Ok(reply @ Reply::Doc(_)) => {
                        Verdict::Done { reply, raw: Some(response.body), conflicts: Vec::new() }
                    }
                    Ok(reply) => Verdict::done(reply),
                    Err(err) => Verdict::Failed(err),
                }
            }
            304 if matches!(action, Action::Get { if_none_match: Some(_), .. }) => Verdict::done(Reply::NotModified),
            // Every 404 of a gateway carries its error body: one without is another server, or a wrong URL path.
            404 if server.is_none() => Verdict::Failed(Error::Protocol {
                message: format!(
                    "{url} answered HTTP 404 with no Replikit error: not a Replikit gateway, or a wrong URL path"
                ),
            }),
            404 if matches!(action, Action::Get { .. }) && code == "not_found" => Verdict::done(Reply::Missing),
            421 => Verdict::NotPrimary,
            409 if code == "session_lost" => Verdict::Final(session_lost(&response.body)),
            503 if code == "lagging" && !action.is_write() => Verdict::Lagging,
            // The primary answered, but cannot tell whether the write counts (its standbys did not confirm it in
            // time): the same key again applies it once or replays it once the standbys hold it.
            503 if code == "outcome_unknown" && action.is_write() => {
                let message = server.map(|s| s.message).unwrap_or_default();
                Verdict::OutcomeUnknown(Error::Unavailable { message: format!("{url}: outcome unknown: {message}") })
            }
            // A primary that has not reached the session's position never will (another timeline): like a lagging
            // replica, the read goes elsewhere, not to the app as a final error.
            422 if code == "position_unreachable" && !action.is_write() => Verdict::Lagging,
            // The gateway gave up waiting for the request's body: the endpoint's trouble, not the call's.
            408 => {
                Verdict::Failed(Error::Unavailable { message: format!("{url}: the request timed out at the server") })
            }
            500..=599 => {
                let message = server.map(|s| s.message).unwrap_or_else(|| format!("HTTP {}", response.status));
                Verdict::Failed(Error::Unavailable { message: format!("{url}: {message}") })
            }
            status => Verdict::Final(final_error(status, url, server)),
        }
    }

    /// Version 0, which no server version is: the gateway's versions carry its term and a sequence (docs/PROTOCOL.md,
    /// "Versions"), so the next one cannot be predicted, and a guess could be another content's version.
    fn predicted_version(&self, _base: Option<&Version>, _key: &str) -> Version {
        PENDING_VERSION
    }
}

fn path(action: &Action) -> String {
    match action {
        Action::Create { collection, .. } => format!("/v1/c/{}", collection.as_str()),
        Action::List { collection, limit, after } => {
            let mut path = format!("/v1/c/{}", collection.as_str());
            let mut sep = '?';
            if let Some(limit) = limit {
                path.push_str(&format!("{sep}limit={limit}"));
                sep = '&';
            }
            if let Some(after) = after {
                path.push_str(&format!("{sep}after={}", encode_segment(after)));
            }
            path
        }
        Action::Get { collection, id, .. }
        | Action::Replace { collection, id, .. }
        | Action::Update { collection, id, .. }
        | Action::Delete { collection, id, .. }
        | Action::Revisions { collection, id, .. }
        | Action::Resolve { collection, id, .. } => {
            format!("/v1/c/{}/{}", collection.as_str(), encode_segment(id))
        }
    }
}

/// The request body, serialized straight from the borrowed data (building a `json!` value would deep-copy
/// the document first: npm run bench measured that as a quarter of a 100 KB create).
fn body(action: &Action) -> Option<String> {
    let text = |v: &Map<String, Value>| serde_json::to_string(v).unwrap_or_else(|_| "{}".into());
    match action {
        Action::Create { id, data, .. } => {
            let id = serde_json::to_string(id).unwrap_or_default();
            Some(format!("{{\"id\":{id},\"data\":{}}}", text(data)))
        }
        Action::Replace { data, .. } => Some(format!("{{\"data\":{}}}", text(data))),
        Action::Update { patch, .. } => Some(text(patch)),
        _ => None,
    }
}

fn final_error(status: u16, url: &str, server: Option<ServerError>) -> Error {
    let (code, message) = match &server {
        Some(s) => (s.code.as_str(), s.message.clone()),
        None => ("", format!("HTTP {status}")),
    };
    match (status, code) {
        (412, _) => Error::Conflict { current: server.and_then(|s| s.current).filter(|c| !c.is_null()) },
        (409, _) => Error::AlreadyExists { message },
        (404, _) => Error::NotFound { message },
        (401 | 403, _) => Error::Unauthorized,
        (413, _) => Error::invalid("data", format!("rejected by {url} as too large: {message}")),
        (400 | 422, _) => Error::invalid("request", format!("rejected by {url}: {message}")),
        _ => Error::Protocol { message: format!("{url}: unexpected HTTP {status} {code} {message}") },
    }
}

/// The lost write a 409 `session_lost` names (`lost: {term, position}`); zeros when the body does not say.
fn session_lost(body: &str) -> Error {
    let lost = serde_json::from_str::<Value>(body).ok().and_then(|v| v.get("lost").cloned()).unwrap_or(Value::Null);
    let number = |name: &str| lost.get(name).and_then(Value::as_u64).unwrap_or(0);
    Error::SessionLost { term: number("term"), position: number("position") }
}

/// The `{"error": {...}}` body of a failed response, if it has one.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerError {
    pub code: String,
    pub message: String,
    /// The current document, on a 412 `conflict` (the body's `error.current` or top-level `current`).
    pub current: Option<Value>,
}

/// Parses a health report; `endpoint` names the source in errors.
pub fn parse_health(endpoint: &str, body: &str) -> Result<HealthReport, Error> {
    let v = json(endpoint, body)?;
    let bad = |what: &str| protocol_error(endpoint, format!("bad health report: {what}"));
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
    Doc::from_value(json(endpoint, body)?).map_err(|e| protocol_error(endpoint, e))
}

/// Parses a list page.
pub fn parse_page(endpoint: &str, body: &str) -> Result<Page, Error> {
    let v = json(endpoint, body)?;
    let Value::Object(mut map) = v else {
        return Err(protocol_error(endpoint, "a list page must be an object"));
    };
    let items = match map.remove("items") {
        Some(Value::Array(items)) => items
            .into_iter()
            .map(Doc::from_value)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| protocol_error(endpoint, e))?,
        _ => return Err(protocol_error(endpoint, "a list page needs an `items` array")),
    };
    let next = match map.remove("next") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s),
        Some(_) => return Err(protocol_error(endpoint, "`next` must be a string or null")),
    };
    Ok(Page { items, next, conflicted: Vec::new() })
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::document::CollectionName;
    use serde_json::json;

    #[test]
    fn bodies_are_the_protocols_json() {
        let c = CollectionName::parse("c").unwrap();
        let data = json!({"a": [1, {"b": "\"q\""}], "é": null}).as_object().unwrap().clone();
        let create = Action::Create { collection: c.clone(), id: "x\"y".into(), data: data.clone() };
        let parsed: Value = serde_json::from_str(&body(&create).unwrap()).unwrap();
        assert_eq!(parsed, json!({"id": "x\"y", "data": data}));
        let replace = Action::Replace { collection: c.clone(), id: "x".into(), data: data.clone(), if_version: None };
        assert_eq!(serde_json::from_str::<Value>(&body(&replace).unwrap()).unwrap(), json!({"data": data}));
        let update = Action::Update { collection: c.clone(), id: "x".into(), patch: data.clone(), if_version: None };
        assert_eq!(serde_json::from_str::<Value>(&body(&update).unwrap()).unwrap(), Value::Object(data));
        assert_eq!(body(&Action::Delete { collection: c, id: "x".into(), if_version: None }), None);
    }

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
    fn an_unreachable_position_moves_a_read_and_a_server_timeout_is_the_endpoints_failure() {
        let c = CollectionName::parse("c").unwrap();
        let get = Action::Get { collection: c.clone(), id: "a".into(), if_none_match: None };
        let attempt = Attempt {
            key: None,
            durability: Durability::Quorum,
            min_position: Some(9),
            min_term: None,
            written_at_ms: 0,
            retried: false,
        };
        let answer = |status: u16, code: &str| Response {
            status,
            node: None,
            position: None,
            body: json!({"error": {"code": code, "message": "m"}, "lost": {"term": 1, "position": 77}}).to_string(),
            ..Default::default()
        };
        let verdict = Replikit.interpret("http://p", &get, &attempt, None, answer(422, "position_unreachable"));
        assert!(matches!(verdict, Verdict::Lagging), "{verdict:?}");
        let verdict = Replikit.interpret("http://p", &get, &attempt, None, answer(408, "request_timeout"));
        assert!(matches!(verdict, Verdict::Failed(_)), "{verdict:?}");
        let verdict = Replikit.interpret("http://p", &get, &attempt, None, answer(422, "invalid_number"));
        assert!(matches!(verdict, Verdict::Final(_)), "other 422s stay final: {verdict:?}");
        let verdict = Replikit.interpret("http://p", &get, &attempt, None, answer(409, "session_lost"));
        assert!(matches!(verdict, Verdict::Final(Error::SessionLost { term: 1, position: 77 })), "{verdict:?}");
        let verdict = Replikit.interpret("http://p", &get, &attempt, None, answer(409, "already_exists"));
        assert!(matches!(verdict, Verdict::Final(Error::AlreadyExists { .. })), "{verdict:?}");
    }

    #[test]
    fn a_session_with_a_term_is_sent_on_every_call_and_a_bare_position_only_on_reads() {
        let get = Action::Get { collection: CollectionName::parse("c").unwrap(), id: "d".into(), if_none_match: None };
        let delete =
            Action::Delete { collection: CollectionName::parse("c").unwrap(), id: "d".into(), if_version: None };
        let header = |call: &Call, name: &str| call.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
        let mut attempt = Attempt {
            key: None,
            durability: Durability::Quorum,
            min_position: Some(9),
            min_term: Some(2),
            written_at_ms: 0,
            retried: false,
        };
        for action in [&get, &delete] {
            let call = Replikit.request(action, &attempt).unwrap();
            assert_eq!(header(&call, MIN_POSITION_HEADER).as_deref(), Some("9"));
            assert_eq!(header(&call, MIN_TERM_HEADER).as_deref(), Some("2"));
        }
        attempt.min_term = None;
        assert_eq!(header(&Replikit.request(&get, &attempt).unwrap(), MIN_POSITION_HEADER).as_deref(), Some("9"));
        assert_eq!(header(&Replikit.request(&delete, &attempt).unwrap(), MIN_POSITION_HEADER), None);
    }

    #[test]
    fn a_predicted_version_is_no_server_version_and_is_never_sent_to_be_matched() {
        for base in [None, Some(Version::Seq(1)), Some(Version::Seq((1 << 40) + 7))] {
            assert_eq!(Replikit.predicted_version(base.as_ref(), "k"), PENDING_VERSION);
        }
        let attempt = Attempt {
            key: None,
            durability: Durability::Quorum,
            min_position: None,
            min_term: None,
            written_at_ms: 0,
            retried: false,
        };
        let get = |v: Version| Action::Get {
            collection: CollectionName::parse("c").unwrap(),
            id: "d".into(),
            if_none_match: Some(v),
        };
        let header = |call: Call| call.headers.iter().any(|(k, _)| k == "if-none-match");
        assert!(!header(Replikit.request(&get(PENDING_VERSION), &attempt).unwrap()));
        assert!(header(Replikit.request(&get(Version::Seq((1 << 40) + 7)), &attempt).unwrap()));
    }

    #[test]
    fn error_bodies_carry_code_and_current() {
        let e = parse_error(r#"{"error":{"code":"conflict","message":"m"},"current":{"id":"a"}}"#).unwrap();
        assert_eq!(e.code, "conflict");
        assert_eq!(e.current.unwrap()["id"], "a");
        assert!(parse_error("<html>bad gateway</html>").is_none());
    }
}
