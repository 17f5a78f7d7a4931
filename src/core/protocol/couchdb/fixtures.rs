//! Shared pieces of the adapter's unit tests: attempts, answers and leaves as CouchDB gives them.

use serde_json::{json, Map, Value};

use super::super::{Attempt, FollowUp, Response, Verdict};
use crate::core::document::CollectionName;
use crate::core::options::Durability;

pub(super) fn attempt(key: &str, retried: bool) -> Attempt<'_> {
    Attempt {
        key: Some(key),
        durability: Durability::Local,
        min_position: None,
        min_term: None,
        written_at_ms: 1_795_000_000_000,
        retried,
    }
}

pub(super) fn ok(body: Value) -> Response {
    Response { status: 200, body: body.to_string(), ..Default::default() }
}

pub(super) fn c() -> CollectionName {
    CollectionName::parse("notes").unwrap()
}

pub(super) fn data(v: Value) -> Map<String, Value> {
    v.as_object().unwrap().clone()
}

/// One live leaf of `notes:a` as `open_revs=all&revs=true` gives it.
pub(super) fn leaf(rev: &str, ids: &[&str]) -> Value {
    let start: u64 = rev.split('-').next().unwrap().parse().unwrap();
    json!({"ok": {"_id": "notes:a", "_rev": rev, "_revisions": {"start": start, "ids": ids},
        "collection": "notes", "data": {"t": 1, "keep": true}, "updatedAt": "2026-11-22T10:00:00.000Z"}})
}

/// An `open_revs=all&revs=true` answer with one live leaf.
pub(super) fn current(rev: &str, ids: &[&str]) -> Response {
    ok(json!([leaf(rev, ids)]))
}

pub(super) fn follow_up(v: Verdict) -> FollowUp {
    match v {
        Verdict::FollowUp(f) => f,
        other => panic!("expected a follow-up write, got {other:?}"),
    }
}
