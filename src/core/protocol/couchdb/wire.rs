//! CouchDB's answers as typed values and errors: the document shape Replikit stores, a document's leaves,
//! `_bulk_docs` results, and what each status means.
//!
//! Nothing a node says is trusted (see the protocol module): every field is checked, and a malformed answer is
//! an error naming the node. Kept apart from composing requests so that each rule about what CouchDB says
//! lives in one place: a read and a write precheck parse a document the same way.

use std::ops::ControlFlow;

use serde_json::Value;

use super::revision::Leaf;
use crate::core::action::Reply;
use crate::core::document::{CollectionName, Doc, Version};
use crate::core::error::Error;
use crate::core::protocol::{json, protocol_error, HealthReport, Response, Verdict};
use crate::core::types::Role;

/// `c:id`: collections share the database, their ids never collide (collection names cannot contain ':').
pub(super) fn couch_id(collection: &CollectionName, id: &str) -> String {
    format!("{}:{id}", collection.as_str())
}

/// A document as a read gives it, and the revisions in conflict with it.
#[derive(Debug)]
pub(super) struct Stored {
    pub(super) doc: Doc,
    pub(super) conflicts: Vec<Version>,
}

/// The answer to `GET /{db}`: the database exists there; its `update_seq` is the node's position.
pub(super) fn parse_health(url: &str, body: &str) -> Result<HealthReport, Error> {
    let v = json(url, body)?;
    if v.get("db_name").and_then(Value::as_str).is_none() {
        return Err(protocol_error(url, "not a CouchDB database (no db_name)"));
    }
    // CouchDB 2+ says "123-g1AAAA..."; CouchDB 1 and PouchDB Server a number. The number is what counts.
    let position = match v.get("update_seq") {
        Some(Value::Number(n)) => n.as_u64().unwrap_or(0),
        Some(Value::String(s)) => s.split('-').next().and_then(|n| n.parse().ok()).unwrap_or(0),
        _ => 0,
    };
    let node_id = url.split_once("://").map_or(url, |(_, rest)| rest).to_string();
    Ok(HealthReport { node_id, role: Role::Primary, term: 0, position, lag_ms: None, read_only: false })
}

/// A CouchDB document of `collection` as a [`Doc`], and its conflicts.
pub(super) fn stored(url: &str, collection: &CollectionName, id: &str, v: Value) -> Result<Stored, Error> {
    let Value::Object(mut map) = v else {
        return Err(protocol_error(url, "a document must be an object"));
    };
    let bad = |what: &str| protocol_error(url, format!("document {}:{id}: {what}", collection.as_str()));
    let rev = map
        .get("_rev")
        .and_then(Value::as_str)
        .and_then(Version::parse_rev)
        .ok_or_else(|| bad("`_rev` is not a revision"))?;
    if map.get("collection").and_then(Value::as_str) != Some(collection.as_str()) {
        return Err(bad("not a Replikit document of this collection (its `collection` field differs)"));
    }
    let data = match map.remove("data") {
        Some(Value::Object(d)) => d,
        _ => return Err(bad("`data` must be an object")),
    };
    let updated_at = match map.remove("updatedAt") {
        Some(Value::String(s)) => s,
        _ => return Err(bad("`updatedAt` must be a string")),
    };
    let conflicts = map
        .get("_conflicts")
        .and_then(Value::as_array)
        .map(|revs| revs.iter().filter_map(Value::as_str).filter_map(Version::parse_rev).collect())
        .unwrap_or_default();
    Ok(Stored { doc: Doc { id: id.to_string(), version: rev, data, updated_at }, conflicts })
}

/// `open_revs` results: every leaf found (`{"missing": rev}` entries are not on this node yet). A leaf's history
/// has at most one revision per generation below it; more is an error, not a history to build on.
pub(super) fn parse_leaves(url: &str, collection: &CollectionName, id: &str, body: &str) -> Result<Vec<Leaf>, Error> {
    let v = json(url, body)?;
    let items = v.as_array().ok_or_else(|| protocol_error(url, "open_revs must answer an array"))?;
    let mut leaves = Vec::new();
    for item in items {
        let Some(doc) = item.get("ok") else { continue };
        let rev = doc.get("_rev").and_then(Value::as_str).and_then(Version::parse_rev);
        let Some(rev) = rev else {
            return Err(protocol_error(
                url,
                format!("document {}:{id}: `_rev` is not a revision", collection.as_str()),
            ));
        };
        let history: Vec<String> = doc
            .get("_revisions")
            .and_then(|r| r.get("ids"))
            .and_then(Value::as_array)
            .map(|ids| ids.iter().filter_map(Value::as_str).map(String::from).collect())
            .unwrap_or_default();
        let generation = rev.rev_parts().map_or(0, |(g, _)| g);
        if history.len() as u64 > generation {
            let what = format!("`_revisions` lists {} revisions for generation {generation}", history.len());
            return Err(protocol_error(url, format!("document {}:{id}: {what}", collection.as_str())));
        }
        let live = doc.get("_deleted").and_then(Value::as_bool) != Some(true);
        let doc = if live { Some(stored(url, collection, id, doc.clone())?.doc) } else { None };
        leaves.push(Leaf { rev, doc, history });
    }
    Ok(leaves)
}

/// A 5xx (the node failed: try another) or a 401/403 (no other node will say otherwise); None for the rest.
pub(super) fn refused(url: &str, response: &Response) -> Option<Verdict> {
    match response.status {
        500..=599 => Some(Verdict::Failed(Error::Unavailable {
            message: format!("{url}: {}", describe(response.status, &response.body)),
        })),
        401 | 403 => Some(Verdict::Final(Error::Unauthorized)),
        _ => None,
    }
}

/// The answer to a request about one document: go on with its body (a 200) or with None (the document is missing
/// or deleted), or break off with the verdict any other status comes to.
pub(super) fn document_answer<'r>(
    url: &str,
    database: &str,
    response: &'r Response,
) -> ControlFlow<Verdict, Option<&'r str>> {
    match response.status {
        404 if is_missing_document(&response.body) => ControlFlow::Continue(None),
        404 => ControlFlow::Break(missing_database(url, database)),
        304 => ControlFlow::Break(Verdict::done(Reply::NotModified)),
        200 => ControlFlow::Continue(Some(&response.body)),
        _ => ControlFlow::Break(Verdict::Final(unexpected(url, response))),
    }
}

/// Whether a 404 is about the document (it is missing or deleted) rather than the database.
fn is_missing_document(body: &str) -> bool {
    let reason = serde_json::from_str::<Value>(body)
        .ok()
        .and_then(|v| v.get("reason").and_then(Value::as_str).map(String::from));
    matches!(reason.as_deref(), Some("missing" | "deleted"))
}

pub(super) fn missing_database(url: &str, database: &str) -> Verdict {
    // This node lacks the database; another may serve it. Its health check will fail too.
    Verdict::Failed(Error::Unavailable { message: format!("{url}: database {database:?} does not exist there") })
}

fn describe(status: u16, body: &str) -> String {
    match serde_json::from_str::<Value>(body) {
        Ok(v) => format!(
            "HTTP {status} {}: {}",
            v.get("error").and_then(Value::as_str).unwrap_or(""),
            v.get("reason").and_then(Value::as_str).unwrap_or("")
        ),
        Err(_) => format!("HTTP {status}"),
    }
}

/// A status no rule expects: a rejected request, a conflict, or a protocol error.
pub(super) fn unexpected(url: &str, response: &Response) -> Error {
    match response.status {
        400 | 413 | 415 => {
            Error::invalid("request", format!("rejected by {url}: {}", describe(response.status, &response.body)))
        }
        409 => Error::Conflict { current: None },
        s => Error::Protocol { message: format!("{url}: unexpected {}", describe(s, &response.body)) },
    }
}

/// The answer to a `_bulk_docs` write: `[]` (CouchDB) or per-document results; any `error` in them fails it.
pub(super) fn written(url: &str, response: &Response, reply: Reply) -> Verdict {
    if !(200..=299).contains(&response.status) {
        return match response.status {
            404 => Verdict::Failed(Error::Unavailable { message: format!("{url}: {}", describe(404, &response.body)) }),
            _ => Verdict::Final(unexpected(url, response)),
        };
    }
    let results = match json(url, &response.body) {
        Ok(Value::Array(items)) => items,
        Ok(_) => return Verdict::Failed(protocol_error(url, "a _bulk_docs answer must be an array")),
        Err(e) => return Verdict::Failed(e),
    };
    for r in &results {
        if let Some(error) = r.get("error").and_then(Value::as_str) {
            let reason = r.get("reason").and_then(Value::as_str).unwrap_or("");
            return match error {
                "forbidden" | "unauthorized" => Verdict::Final(Error::Unauthorized),
                _ => Verdict::Failed(Error::Unavailable { message: format!("{url}: write failed: {error}: {reason}") }),
            };
        }
    }
    Verdict::done(reply)
}
