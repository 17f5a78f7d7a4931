//! CouchDB's document API (CouchDB 2/3, PouchDB Server): multi-primary, versions are revisions.
//!
//! Mapping (docs/PROTOCOL.md, "CouchDB"): all collections live in one database; document `id` of collection `c` is
//! the CouchDB `_id` `"c:id"`, stored as `{ "collection": "c", "data": {...}, "updatedAt": "<RFC 3339>" }` (the
//! app's data is nested, so its field names never clash with CouchDB's `_` fields). `version` is `_rev`.
//!
//! Writes are two requests to one node. The first reads every leaf revision with its history
//! (`GET ?open_revs=all&revs=true`); the second writes the child of the winning revision with `_bulk_docs` and
//! `new_edits: false`, with a revision id the client derives from the write's idempotency key and the parent
//! (`N+1-hash(key, parent)`) and a body that is the same on every attempt. Writing a revision that exists is a
//! no-op in CouchDB and replication carries revisions unchanged, so a write retried on a node that is in the same
//! state (the node its answer was lost on is tried again first, see the router) lands as the same revision, and a
//! retry that finds its revision in any leaf's history knows the first attempt landed. `ifVersion`, "create only
//! if absent" and merge patches are checked against the winner read first.
//!
//! Conflicts (two nodes took writes to one document before replicating) show up as `_conflicts` on reads
//! (`conflicts=true`). Settling one writes tombstones under every losing leaf, and a merged child when a merge
//! was chosen; their revision ids are derived from the conflict, so two clients settling it alike write the
//! same revisions and converge instead of conflicting again.

use serde_json::{Map, Value};

use super::{
    encode_segment, json, protocol_error, Adapter, Attempt, Call, FollowUp, HealthReport, Method, Response, Verdict,
};
use crate::core::action::{Action, Page, Reply};
use crate::core::document::{CollectionName, Doc, Version};
use crate::core::error::Error;
use crate::core::merge_patch;
use crate::core::time::format_rfc3339_ms;
use crate::core::types::Role;

/// The CouchDB-protocol adapter for one database.
#[derive(Debug)]
pub struct CouchDb {
    database: String,
}

/// A document as a read gives it, and the revisions in conflict with it.
#[derive(Debug)]
struct Stored {
    doc: Doc,
    conflicts: Vec<Version>,
}

/// One leaf of a document's revision tree, as `open_revs=all&revs=true` gives it: what writes build on.
#[derive(Debug)]
struct Leaf {
    rev: Version,
    /// None for a tombstone.
    doc: Option<Doc>,
    /// `_revisions.ids`: this revision's hash, then its ancestors' (newest first).
    history: Vec<String>,
}

impl Leaf {
    fn generation(&self) -> u64 {
        self.rev.rev_parts().map_or(0, |(g, _)| g)
    }

    /// Whether a revision in this leaf's history was written with `key` (its hash is `hash(key, parent)`).
    fn written_with(&self, key: &str) -> bool {
        let top = self.generation();
        self.history.iter().enumerate().any(|(i, hash)| {
            let generation = top.saturating_sub(i as u64);
            let parent = match self.history.get(i + 1) {
                Some(p) => format!("{}-{p}", generation - 1),
                None if generation == 1 => String::new(),
                None => return false, // the history was stemmed here
            };
            *hash == rev_hash(&[key, &parent])
        })
    }
}

/// CouchDB's winner: among live leaves the highest generation, then the highest revision id.
fn winner(leaves: &[Leaf]) -> Option<&Leaf> {
    leaves.iter().filter(|l| l.doc.is_some()).max_by(|a, b| {
        let key = |l: &Leaf| (l.generation(), l.rev.rev_parts().map(|(_, h)| h.to_string()).unwrap_or_default());
        key(a).cmp(&key(b))
    })
}

impl CouchDb {
    pub fn new(database: &str) -> CouchDb {
        CouchDb { database: database.to_string() }
    }

    fn db(&self) -> String {
        encode_segment(&self.database)
    }

    fn doc_path(&self, collection: &CollectionName, id: &str) -> String {
        format!("/{}/{}", self.db(), encode_segment(&couch_id(collection, id)))
    }

    fn bulk(&self, docs: Vec<Value>) -> Call {
        let body = serde_json::json!({ "new_edits": false, "docs": docs }).to_string();
        Call {
            method: Method::Post,
            path: format!("/{}/_bulk_docs", self.db()),
            headers: vec![("content-type".into(), "application/json".into())],
            body: Some(body),
        }
    }

    /// The follow-up write of a create, replace, update or delete, given the document's leaves.
    fn write(&self, url: &str, action: &Action, attempt: &Attempt, leaves: Vec<Leaf>) -> Verdict {
        let Some(key) = attempt.key else {
            return Verdict::Final(Error::Protocol { message: "a write needs an idempotency key".into() });
        };
        let (collection, id) = match action {
            Action::Create { collection, id, .. }
            | Action::Replace { collection, id, .. }
            | Action::Update { collection, id, .. }
            | Action::Delete { collection, id, .. } => (collection, id),
            _ => return Verdict::Final(Error::Protocol { message: format!("{url}: not a write") }),
        };
        let name = || format!("{}/{id}", collection.as_str());
        if let Some(mine) = leaves.iter().find(|l| l.written_with(key)) {
            // An earlier attempt of this very write landed (here, or on a node that replicated it here).
            return match (action, &mine.doc, winner(&leaves)) {
                (Action::Delete { .. }, _, _) => Verdict::done(Reply::Deleted),
                (_, Some(d), _) => Verdict::done(Reply::Doc(d.clone())),
                (_, None, Some(w)) => Verdict::done(Reply::Doc(w.doc.clone().expect("a winner is live"))),
                (_, None, None) => {
                    Verdict::Final(Error::NotFound { message: format!("{} was deleted after this write", name()) })
                }
            };
        }
        let current = winner(&leaves);
        let current_doc = current.and_then(|l| l.doc.as_ref());
        if let Some(expected) = action.if_version() {
            if current_doc.map(|d| &d.version) != Some(expected) {
                return Verdict::Final(Error::Conflict { current: current_doc.map(Doc::to_value) });
            }
        }
        let data = match (action, current_doc) {
            (Action::Create { .. }, Some(_)) => {
                return Verdict::Final(Error::AlreadyExists { message: format!("{} exists", name()) })
            }
            // A retried delete that finds only tombstones: the document is gone, as asked.
            (Action::Delete { .. }, None) if attempt.retried && !leaves.is_empty() => {
                return Verdict::done(Reply::Deleted)
            }
            (Action::Update { .. } | Action::Delete { .. }, None) => {
                return Verdict::Final(Error::NotFound { message: format!("{} does not exist on {url}", name()) })
            }
            (Action::Create { data, .. }, None) | (Action::Replace { data, .. }, _) => Some(data.clone()),
            (Action::Update { patch, .. }, Some(c)) => {
                let mut merged = c.data.clone();
                merge_patch::apply(&mut merged, patch);
                Some(merged)
            }
            _ => None, // delete
        };
        let (generation, parent, parents) = match current {
            Some(c) => (c.rev.rev_parts().map_or(1, |(g, _)| g + 1), c.rev.to_string(), c.history.clone()),
            None => (1, String::new(), Vec::new()),
        };
        let hash = rev_hash(&[key, &parent]);
        let rev = format!("{generation}-{hash}");
        let mut ids = vec![hash];
        ids.extend(parents);
        let updated_at = format_rfc3339_ms(attempt.written_at_ms as i64);
        let mut body = Map::new();
        body.insert("_id".into(), Value::String(couch_id(collection, id)));
        body.insert("_rev".into(), Value::String(rev.clone()));
        body.insert("_revisions".into(), serde_json::json!({ "start": generation, "ids": ids }));
        let reply = match data {
            Some(data) => {
                body.insert("collection".into(), Value::String(collection.as_str().into()));
                body.insert("data".into(), Value::Object(data.clone()));
                body.insert("updatedAt".into(), Value::String(updated_at.clone()));
                Reply::Doc(Doc { id: id.clone(), version: Version::Rev(rev), data, updated_at })
            }
            None => {
                body.insert("_deleted".into(), Value::Bool(true));
                Reply::Deleted
            }
        };
        Verdict::FollowUp(FollowUp { call: self.bulk(vec![Value::Object(body)]), reply })
    }

    /// The `_bulk_docs` that settles a revision conflict.
    fn resolve(&self, action: &Action) -> Result<(Call, Reply), Error> {
        let Action::Resolve { collection, id, keep, merged, losers, updated_at } = action else {
            return Err(Error::Protocol { message: "not a resolution".into() });
        };
        let cid = couch_id(collection, id);
        let mut docs = Vec::new();
        for loser in losers {
            let Some((generation, parent)) = loser.rev_parts() else {
                continue;
            };
            let hash = rev_hash(&["replikit:resolve:delete", &loser.to_string()]);
            docs.push(serde_json::json!({
                "_id": cid, "_rev": format!("{}-{hash}", generation + 1), "_deleted": true,
                "_revisions": { "start": generation + 1, "ids": [hash, parent] },
            }));
        }
        let reply = match (merged, keep.version.rev_parts()) {
            (Some(data), Some((generation, parent))) => {
                let text = serde_json::to_string(data).unwrap_or_default();
                let hash = rev_hash(&["replikit:resolve:merge", &keep.version.to_string(), &text]);
                let rev = format!("{}-{hash}", generation + 1);
                let updated_at = updated_at.clone();
                docs.push(serde_json::json!({
                    "_id": cid, "_rev": rev, "_revisions": { "start": generation + 1, "ids": [hash, parent] },
                    "collection": collection.as_str(), "data": data, "updatedAt": updated_at,
                }));
                Doc { id: id.clone(), version: Version::Rev(rev), data: data.clone(), updated_at }
            }
            _ => keep.clone(),
        };
        Ok((self.bulk(docs), Reply::Doc(reply)))
    }
}

impl Adapter for CouchDb {
    /// `GET /{db}`: the node answers and serves the database (CouchDB's `/_up` does not say the latter, and PouchDB
    /// Server 4 does not implement it).
    fn health_check(&self) -> Call {
        Call::get(format!("/{}", self.db()))
    }

    fn parse_health(&self, url: &str, body: &str) -> Result<HealthReport, Error> {
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

    fn request(&self, action: &Action, _attempt: &Attempt) -> Result<Call, Error> {
        Ok(match action {
            // No If-None-Match: CouchDB's and PouchDB Server's default CORS settings do not allow the header, so a
            // browser's preflight would fail. The revision is compared when the answer comes instead.
            Action::Get { collection, id, .. } => {
                Call::get(format!("{}?conflicts=true", self.doc_path(collection, id)))
            }
            Action::List { collection, limit, after } => {
                let limit = limit.unwrap_or(100);
                let prefix = format!("{}:", collection.as_str());
                let start = format!("{prefix}{}", after.as_deref().unwrap_or(""));
                // One more row than asked tells whether there is a next page; one more again when the page
                // starts at `after` itself (it is skipped).
                let rows = limit as u64 + 1 + after.is_some() as u64;
                let key = |k: &str| encode_segment(&Value::String(k.into()).to_string());
                Call::get(format!(
                    "/{}/_all_docs?include_docs=true&conflicts=true&limit={rows}&startkey={}&endkey={}&inclusive_end=false",
                    self.db(),
                    key(&start),
                    // ';' sorts right after ':', so this ends the collection's id range.
                    key(&format!("{};", collection.as_str())),
                ))
            }
            Action::Create { collection, id, .. }
            | Action::Replace { collection, id, .. }
            | Action::Update { collection, id, .. }
            | Action::Delete { collection, id, .. } => {
                let mut call = Call::get(format!("{}?open_revs=all&revs=true", self.doc_path(collection, id)));
                call.headers.push(("accept".into(), "application/json".into()));
                call
            }
            Action::Revisions { collection, id, revs } => {
                let list = Value::Array(revs.iter().map(Version::to_json).collect()).to_string();
                let mut call =
                    Call::get(format!("{}?open_revs={}", self.doc_path(collection, id), encode_segment(&list)));
                call.headers.push(("accept".into(), "application/json".into()));
                call
            }
            Action::Resolve { .. } => self.resolve(action)?.0,
        })
    }

    fn interpret(
        &self,
        url: &str,
        action: &Action,
        attempt: &Attempt,
        follow_up: Option<&FollowUp>,
        response: Response,
    ) -> Verdict {
        let status = response.status;
        if let 500..=599 = status {
            return Verdict::Failed(Error::Unavailable {
                message: format!("{url}: {}", describe(status, &response.body)),
            });
        }
        if let 401 | 403 = status {
            return Verdict::Final(Error::Unauthorized);
        }
        if let Some(f) = follow_up {
            return written(url, &response, f.reply.clone());
        }
        if let Action::Resolve { .. } = action {
            return match self.resolve(action) {
                Ok((_, reply)) => written(url, &response, reply),
                Err(e) => Verdict::Final(e),
            };
        }
        let (collection, id) = match action {
            Action::List { collection, limit, after } => {
                return match (status, parse_page(url, collection, *limit, after.as_deref(), &response.body)) {
                    (200, Ok(page)) => Verdict::done(Reply::Page(page)),
                    (200, Err(e)) => Verdict::Failed(e),
                    (404, _) => missing_database(url, &self.database),
                    _ => Verdict::Final(unexpected(url, &response)),
                };
            }
            Action::Get { collection, id, .. }
            | Action::Create { collection, id, .. }
            | Action::Replace { collection, id, .. }
            | Action::Update { collection, id, .. }
            | Action::Delete { collection, id, .. }
            | Action::Revisions { collection, id, .. } => (collection, id),
            Action::Resolve { .. } => unreachable!("handled above"),
        };
        if status == 404 {
            if !is_missing_document(&response.body) {
                return missing_database(url, &self.database);
            }
            return match action {
                Action::Get { .. } => Verdict::done(Reply::Missing),
                Action::Revisions { .. } => Verdict::done(Reply::Versions(Vec::new())),
                _ => self.write(url, action, attempt, Vec::new()), // no record of it at all
            };
        }
        if status == 304 {
            return Verdict::done(Reply::NotModified);
        }
        if status != 200 {
            return Verdict::Final(unexpected(url, &response));
        }
        match action {
            Action::Revisions { .. } => match parse_leaves(url, collection, id, &response.body) {
                Ok(leaves) => Verdict::done(Reply::Versions(leaves.into_iter().filter_map(|l| l.doc).collect())),
                Err(e) => Verdict::Failed(e),
            },
            Action::Get { if_none_match, .. } => {
                let stored = match json(url, &response.body).and_then(|v| stored(url, collection, id, v)) {
                    Ok(s) => s,
                    Err(e) => return Verdict::Failed(e),
                };
                // The same revision means the same document (see `request` on If-None-Match).
                if if_none_match.as_ref() == Some(&stored.doc.version) && stored.conflicts.is_empty() {
                    return Verdict::done(Reply::NotModified);
                }
                Verdict::Done { reply: Reply::Doc(stored.doc), raw: None, conflicts: stored.conflicts }
            }
            _ => match parse_leaves(url, collection, id, &response.body) {
                Ok(leaves) => self.write(url, action, attempt, leaves),
                Err(e) => Verdict::Failed(e),
            },
        }
    }

    fn predicted_version(&self, base: Option<&Version>, key: &str) -> Version {
        let generation = base.and_then(Version::rev_parts).map_or(1, |(g, _)| g + 1);
        let parent = base.map(Version::to_string).unwrap_or_default();
        Version::Rev(format!("{generation}-{}", rev_hash(&[key, &parent])))
    }
}

/// `c:id`: collections share the database, their ids never collide (collection names cannot contain ':').
fn couch_id(collection: &CollectionName, id: &str) -> String {
    format!("{}:{id}", collection.as_str())
}

/// A revision hash (32 hex digits, as CouchDB's) derived from `parts`: FNV-1a 64 twice, with two offset bases.
/// Not cryptographic; it only has to make distinct writes' revisions distinct and equal writes' equal.
pub fn rev_hash(parts: &[&str]) -> String {
    let mut out = String::with_capacity(32);
    for basis in [0xcbf2_9ce4_8422_2325u64, 0x6c62_272e_07bb_0142u64] {
        let mut h = basis;
        for part in parts {
            for b in part.bytes().chain([0xff]) {
                h ^= b as u64;
                h = h.wrapping_mul(0x0000_0100_0000_01b3);
            }
        }
        out.push_str(&format!("{h:016x}"));
    }
    out
}

/// Whether a 404 is about the document (it is missing or deleted) rather than the database.
fn is_missing_document(body: &str) -> bool {
    let reason = serde_json::from_str::<Value>(body)
        .ok()
        .and_then(|v| v.get("reason").and_then(Value::as_str).map(String::from));
    matches!(reason.as_deref(), Some("missing" | "deleted"))
}

fn missing_database(url: &str, database: &str) -> Verdict {
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

fn unexpected(url: &str, response: &Response) -> Error {
    match response.status {
        400 | 413 | 415 => {
            Error::invalid("request", format!("rejected by {url}: {}", describe(response.status, &response.body)))
        }
        409 => Error::Conflict { current: None },
        s => Error::Protocol { message: format!("{url}: unexpected {}", describe(s, &response.body)) },
    }
}

/// The answer to a `_bulk_docs` write: `[]` (CouchDB) or per-document results; any `error` in them fails it.
fn written(url: &str, response: &Response, reply: Reply) -> Verdict {
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

/// A CouchDB document of `collection` as a [`Doc`], its history and conflicts.
fn stored(url: &str, collection: &CollectionName, id: &str, v: Value) -> Result<Stored, Error> {
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

/// `_all_docs` rows of `collection` as a page.
fn parse_page(
    url: &str,
    collection: &CollectionName,
    limit: Option<u32>,
    after: Option<&str>,
    body: &str,
) -> Result<Page, Error> {
    let v = json(url, body)?;
    let rows =
        v.get("rows").and_then(Value::as_array).ok_or_else(|| protocol_error(url, "_all_docs needs a `rows` array"))?;
    let prefix = format!("{}:", collection.as_str());
    let limit = limit.unwrap_or(100) as usize;
    let mut items = Vec::new();
    let mut conflicted = Vec::new();
    for row in rows {
        let (Some(key), Some(doc)) = (row.get("id").and_then(Value::as_str), row.get("doc")) else {
            continue;
        };
        let Some(id) = key.strip_prefix(&prefix) else {
            continue;
        };
        if Some(id) == after || doc.is_null() {
            continue;
        }
        let s = stored(url, collection, id, doc.clone())?;
        if !s.conflicts.is_empty() {
            conflicted.push(s.doc.id.clone());
        }
        items.push(s.doc);
    }
    let next = (items.len() > limit).then(|| items[limit - 1].id.clone());
    items.truncate(limit);
    conflicted.retain(|id| items.iter().any(|d| &d.id == id));
    Ok(Page { items, next, conflicted })
}

/// `open_revs` results: every leaf found (`{"missing": rev}` entries are not on this node yet).
fn parse_leaves(url: &str, collection: &CollectionName, id: &str, body: &str) -> Result<Vec<Leaf>, Error> {
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
        let history = doc
            .get("_revisions")
            .and_then(|r| r.get("ids"))
            .and_then(Value::as_array)
            .map(|ids| ids.iter().filter_map(Value::as_str).map(String::from).collect())
            .unwrap_or_default();
        let live = doc.get("_deleted").and_then(Value::as_bool) != Some(true);
        let doc = if live { Some(stored(url, collection, id, doc.clone())?.doc) } else { None };
        leaves.push(Leaf { rev, doc, history });
    }
    Ok(leaves)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::options::Durability;
    use serde_json::json;

    fn attempt(key: &str, retried: bool) -> Attempt<'_> {
        Attempt {
            key: Some(key),
            durability: Durability::Local,
            min_position: None,
            written_at_ms: 1_795_000_000_000,
            retried,
        }
    }

    fn ok(body: Value) -> Response {
        Response { status: 200, body: body.to_string(), ..Default::default() }
    }

    fn c() -> CollectionName {
        CollectionName::parse("notes").unwrap()
    }

    fn data(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    fn leaf(rev: &str, ids: &[&str]) -> Value {
        let start: u64 = rev.split('-').next().unwrap().parse().unwrap();
        json!({"ok": {"_id": "notes:a", "_rev": rev, "_revisions": {"start": start, "ids": ids},
            "collection": "notes", "data": {"t": 1, "keep": true}, "updatedAt": "2026-11-22T10:00:00.000Z"}})
    }

    /// An `open_revs=all&revs=true` answer with one live leaf.
    fn current(rev: &str, ids: &[&str]) -> Response {
        ok(json!([leaf(rev, ids)]))
    }

    fn follow_up(v: Verdict) -> FollowUp {
        match v {
            Verdict::FollowUp(f) => f,
            other => panic!("expected a follow-up write, got {other:?}"),
        }
    }

    #[test]
    fn a_write_reads_then_writes_a_child_revision_named_by_its_key() {
        let a = CouchDb::new("app");
        let update = Action::Update { collection: c(), id: "a".into(), patch: data(json!({"t": 2})), if_version: None };
        let first = a.request(&update, &attempt("k1", false)).unwrap();
        assert_eq!((first.method, first.path.as_str()), (Method::Get, "/app/notes%3Aa?open_revs=all&revs=true"));
        let f = follow_up(a.interpret("u", &update, &attempt("k1", false), None, current("2-bb", &["bb", "aa"])));
        let body: Value = serde_json::from_str(f.call.body.as_deref().unwrap()).unwrap();
        let hash = rev_hash(&["k1", "2-bb"]);
        assert_eq!(body["new_edits"], false);
        assert_eq!(body["docs"][0]["_rev"], format!("3-{hash}"));
        assert_eq!(body["docs"][0]["_revisions"], json!({"start": 3, "ids": [hash, "bb", "aa"]}));
        assert_eq!(
            body["docs"][0]["data"],
            json!({"t": 2, "keep": true}),
            "the merge patch applied to the current data"
        );
        assert_eq!(body["docs"][0]["updatedAt"], "2026-11-18T11:06:40.000Z", "the time the write was made");
        match &f.reply {
            Reply::Doc(d) => assert_eq!(d.version, Version::Rev(format!("3-{hash}"))),
            other => panic!("{other:?}"),
        }
        assert_eq!(a.predicted_version(Some(&Version::Rev("2-bb".into())), "k1"), Version::Rev(format!("3-{hash}")));
        assert_eq!(a.predicted_version(None, "k1"), Version::Rev(format!("1-{}", rev_hash(&["k1", ""]))));
        // The write's answer: [] from CouchDB, per-document results from others; an error entry fails it.
        let done = a.interpret(
            "u",
            &update,
            &attempt("k1", false),
            Some(&f),
            Response { status: 201, body: "[]".into(), ..Default::default() },
        );
        assert_eq!(done, Verdict::done(f.reply.clone()));
        let err = Response {
            status: 201,
            body: r#"[{"id":"x","error":"forbidden","reason":"no"}]"#.into(),
            ..Default::default()
        };
        assert_eq!(
            a.interpret("u", &update, &attempt("k1", false), Some(&f), err),
            Verdict::Final(Error::Unauthorized)
        );
    }

    #[test]
    fn a_retry_that_finds_its_own_revision_does_not_write_again() {
        let a = CouchDb::new("app");
        let hash = rev_hash(&["k1", "2-bb"]);
        let replace =
            Action::Replace { collection: c(), id: "a".into(), data: data(json!({"t": 9})), if_version: None };
        // The first attempt landed and someone wrote over it since: still ours, nothing to send.
        let v = a.interpret("u", &replace, &attempt("k1", true), None, current("4-dd", &["dd", &hash, "bb", "aa"]));
        assert!(matches!(v, Verdict::Done { reply: Reply::Doc(_), .. }), "{v:?}");
        // ... also when it is on a losing branch of a conflict.
        let both = ok(json!([leaf("3-zz", &["zz", "bb", "aa"]), leaf(&format!("3-{hash}"), &[&hash, "bb", "aa"])]));
        assert!(matches!(a.interpret("u", &replace, &attempt("k1", true), None, both), Verdict::Done { .. }));
        // The same key over another parent is another revision (never the same id under two parents).
        assert!(matches!(
            a.interpret("u", &replace, &attempt("k1", true), None, current("2-cc", &["cc", "aa"])),
            Verdict::FollowUp(_)
        ));
        let delete = Action::Delete { collection: c(), id: "a".into(), if_version: None };
        let tomb = ok(
            json!([{"ok": {"_id": "notes:a", "_rev": "3-xx", "_deleted": true, "_revisions": {"start": 3, "ids": ["xx", "bb", "aa"]}}}]),
        );
        assert_eq!(
            a.interpret("u", &delete, &attempt("k2", true), None, tomb.clone()),
            Verdict::done(Reply::Deleted),
            "gone, as asked"
        );
        assert!(matches!(
            a.interpret("u", &delete, &attempt("k2", false), None, tomb),
            Verdict::Final(Error::NotFound { .. })
        ));
        let never =
            Response { status: 404, body: r#"{"error":"not_found","reason":"missing"}"#.into(), ..Default::default() };
        assert!(
            matches!(
                a.interpret("u", &delete, &attempt("k2", true), None, never),
                Verdict::Final(Error::NotFound { .. })
            ),
            "this node never had it"
        );
    }

    #[test]
    fn conditions_are_checked_against_the_revision_read() {
        let a = CouchDb::new("app");
        let stale = Action::Replace {
            collection: c(),
            id: "a".into(),
            data: Map::new(),
            if_version: Some(Version::Rev("1-aa".into())),
        };
        match a.interpret("u", &stale, &attempt("k", false), None, current("2-bb", &["bb", "aa"])) {
            Verdict::Final(Error::Conflict { current: Some(cur) }) => {
                assert_eq!(cur["version"], "2-bb")
            }
            other => panic!("{other:?}"),
        }
        let create = Action::Create { collection: c(), id: "a".into(), data: Map::new() };
        assert!(matches!(
            a.interpret("u", &create, &attempt("k", false), None, current("1-aa", &["aa"])),
            Verdict::Final(Error::AlreadyExists { .. })
        ));
        let missing =
            Response { status: 404, body: r#"{"error":"not_found","reason":"missing"}"#.into(), ..Default::default() };
        let f = follow_up(a.interpret("u", &create, &attempt("k", false), None, missing));
        assert!(f.call.body.unwrap().contains(&format!("\"1-{}\"", rev_hash(&["k", ""]))));
        let no_db = Response {
            status: 404,
            body: r#"{"error":"not_found","reason":"no_db_file"}"#.into(),
            ..Default::default()
        };
        assert!(
            matches!(a.interpret("u", &create, &attempt("k", false), None, no_db), Verdict::Failed(_)),
            "another node may have it"
        );
    }

    #[test]
    fn reads_report_conflicts_and_foreign_documents_are_errors() {
        let a = CouchDb::new("app");
        let get = Action::Get { collection: c(), id: "a".into(), if_none_match: None };
        let body = json!({"_id": "notes:a", "_rev": "2-bb", "_conflicts": ["2-cc"], "collection": "notes", "data": {}, "updatedAt": "t"});
        match a.interpret("u", &get, &attempt("k", false), None, ok(body)) {
            Verdict::Done { reply: Reply::Doc(d), conflicts, .. } => {
                assert_eq!(d.version, Version::Rev("2-bb".into()));
                assert_eq!(conflicts, vec![Version::Rev("2-cc".into())]);
            }
            other => panic!("{other:?}"),
        }
        for foreign in [
            json!({"_id": "notes:a", "_rev": "1-a", "title": "x"}),
            json!([1]),
            json!({"_id": "notes:a", "_rev": "zz"}),
        ] {
            assert!(
                matches!(
                    a.interpret("u", &get, &attempt("k", false), None, ok(foreign.clone())),
                    Verdict::Failed(Error::Protocol { .. })
                ),
                "{foreign}"
            );
        }
        let same = Action::Get { collection: c(), id: "a".into(), if_none_match: Some(Version::Rev("1-aa".into())) };
        let doc = ok(leaf("1-aa", &["aa"])["ok"].clone());
        assert_eq!(a.interpret("u", &same, &attempt("k", false), None, doc), Verdict::done(Reply::NotModified));
    }

    #[test]
    fn lists_page_through_one_collection() {
        let a = CouchDb::new("app");
        let list = Action::List { collection: c(), limit: Some(2), after: Some("b".into()) };
        let call = a.request(&list, &attempt("k", false)).unwrap();
        assert!(call.path.contains("limit=4") && call.path.contains("startkey=%22notes%3Ab%22"), "{}", call.path);
        let row = |id: &str| json!({"id": format!("notes:{id}"), "doc": {"_id": format!("notes:{id}"), "_rev": "1-a", "collection": "notes", "data": {}, "updatedAt": "t"}});
        let body = json!({"rows": [row("b"), row("c"), row("d"), row("e")]});
        match a.interpret("u", &list, &attempt("k", false), None, ok(body)) {
            Verdict::Done { reply: Reply::Page(p), .. } => {
                assert_eq!(p.items.iter().map(|d| d.id.as_str()).collect::<Vec<_>>(), ["c", "d"]);
                assert_eq!(p.next.as_deref(), Some("d"));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn resolving_is_deterministic() {
        let a = CouchDb::new("app");
        let keep =
            Doc { id: "a".into(), version: Version::Rev("2-bb".into()), data: Map::new(), updated_at: "t".into() };
        let resolve = |merged: Option<Map<String, Value>>| Action::Resolve {
            collection: c(),
            id: "a".into(),
            keep: keep.clone(),
            merged,
            losers: vec![Version::Rev("2-cc".into()), Version::Rev("3-dd".into())],
            updated_at: "2026-11-22T10:00:00.000Z".into(),
        };
        let one = a.request(&resolve(None), &attempt("k1", false)).unwrap();
        let two = a.request(&resolve(None), &attempt("k2", false)).unwrap();
        assert_eq!(one.body, two.body, "two clients settling alike write the same revisions");
        let body: Value = serde_json::from_str(one.body.as_deref().unwrap()).unwrap();
        assert_eq!(body["docs"].as_array().unwrap().len(), 2);
        assert_eq!(body["docs"][1]["_revisions"]["ids"][1], "dd");
        assert_eq!(body["docs"][1]["_deleted"], true);
        let merged = a.request(&resolve(Some(data(json!({"m": 1})))), &attempt("k", false)).unwrap();
        let body: Value = serde_json::from_str(merged.body.as_deref().unwrap()).unwrap();
        assert_eq!(body["docs"][2]["_revisions"]["ids"][1], "bb", "the merge is a child of the kept revision");
        assert_eq!(body["docs"][2]["data"], json!({"m": 1}));
    }

    #[test]
    fn rev_hashes_are_32_hex_digits_and_separate_parts() {
        let h = rev_hash(&["a"]);
        assert_eq!(h.len(), 32);
        assert!(h.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_ne!(rev_hash(&["ab", "c"]), rev_hash(&["a", "bc"]));
    }
}
