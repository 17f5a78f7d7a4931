//! Composing a write (create, replace, update, delete) as CouchDB's two requests.
//!
//! The precheck reads every leaf with its history (`open_revs=all&revs=true`); the write is the child of the
//! winner, sent with `_bulk_docs` and `new_edits: false` under a revision id derived from the idempotency key and
//! the parent, with a body that is the same on every attempt (the write time is the attempt's, fixed when the
//! write was made). Why: a retry lands as the same revision instead of a second one, and a retry that finds its
//! revision in a leaf's history knows the first attempt landed and sends nothing.
//!
//! A delete writes a tombstone under every live leaf it read, not only under the winner, each named the same way
//! (`hash(key, leaf)`): CouchDB's winner is a live leaf whenever there is one, so a losing leaf left alive would
//! become the document once the winner was deleted. A leaf that reaches the node after the delete (a write
//! another node took) is not ended by it; see docs/ARCHITECTURE.md, "A confirmed delete stays deleted".

use std::ops::ControlFlow;

use serde_json::{Map, Value};

use super::revision::{child_generation, child_hash, winner, Leaf};
use super::wire::couch_id;
use crate::core::action::{Action, Reply};
use crate::core::document::{CollectionName, Doc, Version};
use crate::core::error::Error;
use crate::core::merge_patch;
use crate::core::protocol::{protocol_error, Attempt, Call, FollowUp, Method, Verdict};
use crate::core::time::format_rfc3339_ms;

/// The precheck: every leaf of the document, with its history.
pub(super) fn precheck(doc_path: &str) -> Call {
    let mut call = Call::get(format!("{doc_path}?open_revs=all&revs=true"));
    call.headers.push(("accept".into(), "application/json".into()));
    call
}

/// `_bulk_docs` of `docs` as they are: with `new_edits: false` CouchDB keeps the revision ids given.
pub(super) fn bulk_docs(db: &str, docs: Vec<Value>) -> Call {
    let body = serde_json::json!({ "new_edits": false, "docs": docs }).to_string();
    Call {
        method: Method::Post,
        path: format!("/{db}/_bulk_docs"),
        headers: vec![("content-type".into(), "application/json".into())],
        body: Some(body),
    }
}

/// The version a write with `key` over `base` will have (the optimistic copy of a queued write). Over the last
/// generation there is none (the write will be refused): the copy is then named as a first revision, not wrapped.
pub(super) fn predicted(base: Option<&Version>, key: &str) -> Version {
    let generation = child_generation(base).unwrap_or(1);
    Version::Rev(format!("{generation}-{}", child_hash(base, key)))
}

/// The follow-up write of a create, replace, update or delete, given the document's leaves (none: the node has
/// no record of it); or the verdict the precheck comes to without writing.
pub(super) fn compose(db: &str, url: &str, action: &Action, attempt: &Attempt, leaves: Vec<Leaf>) -> Verdict {
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
    let name = format!("{}/{id}", collection.as_str());
    if let Some(mine) = leaves.iter().find(|l| l.written_with(key)) {
        return landed(action, mine, &leaves, &name);
    }
    let current = winner(&leaves);
    let data = match new_data(url, action, attempt, current.and_then(|l| l.doc.as_ref()), !leaves.is_empty(), &name) {
        ControlFlow::Continue(data) => data,
        ControlFlow::Break(verdict) => return verdict,
    };
    // A delete ends every live leaf it read, the winner first: a losing leaf it left would become the document.
    let parents: Vec<Option<&Leaf>> = match action {
        Action::Delete { .. } => {
            let losers = leaves.iter().filter(|l| l.doc.is_some() && !current.is_some_and(|w| std::ptr::eq(w, *l)));
            current.into_iter().chain(losers).map(Some).collect()
        }
        _ => vec![current],
    };
    let (mut docs, mut reply, mut data) = (Vec::with_capacity(parents.len()), Reply::Deleted, data);
    for parent in parents {
        let rev = parent.map(|l| &l.rev);
        let Some(generation) = child_generation(rev) else {
            return Verdict::Failed(protocol_error(url, format!("{name}: a leaf of the last generation has no child")));
        };
        // Only a delete has several parents, and it writes no data.
        let (body, written) =
            child_doc(collection, id, attempt, parent, (generation, child_hash(rev, key)), data.take());
        docs.push(body);
        reply = written;
    }
    Verdict::FollowUp(FollowUp { call: bulk_docs(db, docs), reply })
}

/// An earlier attempt of this very write landed as `mine` (here, or on a node that replicated it here).
fn landed(action: &Action, mine: &Leaf, leaves: &[Leaf], name: &str) -> Verdict {
    match (action, &mine.doc, winner(leaves)) {
        (Action::Delete { .. }, _, _) => Verdict::done(Reply::Deleted),
        (_, Some(d), _) => Verdict::done(Reply::Doc(d.clone())),
        (_, None, Some(w)) => Verdict::done(Reply::Doc(w.doc.clone().expect("a winner is live"))),
        (_, None, None) => Verdict::Final(Error::NotFound { message: format!("{name} was deleted after this write") }),
    }
}

/// Go on with the data the write leaves over the `current` winner (None: a tombstone), or break off with the
/// verdict that ends the write here: a condition that does not hold, or nothing left to do.
fn new_data(
    url: &str,
    action: &Action,
    attempt: &Attempt,
    current: Option<&Doc>,
    any_leaf: bool,
    name: &str,
) -> ControlFlow<Verdict, Option<Map<String, Value>>> {
    if let Some(expected) = action.if_version() {
        if current.map(|d| &d.version) != Some(expected) {
            return ControlFlow::Break(Verdict::Final(Error::Conflict { current: current.map(Doc::to_value) }));
        }
    }
    ControlFlow::Continue(match (action, current) {
        (Action::Create { .. }, Some(_)) => {
            return ControlFlow::Break(Verdict::Final(Error::AlreadyExists { message: format!("{name} exists") }))
        }
        // A retried delete that finds only tombstones: the document is gone, as asked.
        (Action::Delete { .. }, None) if attempt.retried && any_leaf => {
            return ControlFlow::Break(Verdict::done(Reply::Deleted))
        }
        (Action::Update { .. } | Action::Delete { .. }, None) => {
            return ControlFlow::Break(Verdict::Final(Error::NotFound {
                message: format!("{name} does not exist on {url}"),
            }))
        }
        (Action::Create { data, .. }, None) | (Action::Replace { data, .. }, _) => Some(data.clone()),
        (Action::Update { patch, .. }, Some(c)) => {
            let mut merged = c.data.clone();
            merge_patch::apply(&mut merged, patch);
            Some(merged)
        }
        _ => None, // delete
    })
}

/// The `_bulk_docs` document of the revision `child` (generation, hash) under `parent` (None: the document's
/// first revision), holding `data` (None: a tombstone); and what the write replies once it lands.
fn child_doc(
    collection: &CollectionName,
    id: &str,
    attempt: &Attempt,
    parent: Option<&Leaf>,
    (generation, hash): (u64, String),
    data: Option<Map<String, Value>>,
) -> (Value, Reply) {
    let rev = format!("{generation}-{hash}");
    let mut ids = vec![hash];
    ids.extend(parent.map(|p| p.history.iter().cloned()).into_iter().flatten());
    // A time past i64 milliseconds (292 million years) is no time a clock gives: the latest one, not a wrapped one.
    let updated_at = format_rfc3339_ms(i64::try_from(attempt.written_at_ms).unwrap_or(i64::MAX));
    let mut body = Map::new();
    body.insert("_id".into(), Value::String(couch_id(collection, id)));
    body.insert("_rev".into(), Value::String(rev.clone()));
    body.insert("_revisions".into(), serde_json::json!({ "start": generation, "ids": ids }));
    let reply = match data {
        Some(data) => {
            body.insert("collection".into(), Value::String(collection.as_str().into()));
            body.insert("data".into(), Value::Object(data.clone()));
            body.insert("updatedAt".into(), Value::String(updated_at.clone()));
            Reply::Doc(Doc { id: id.to_string(), version: Version::Rev(rev), data, updated_at })
        }
        None => {
            body.insert("_deleted".into(), Value::Bool(true));
            Reply::Deleted
        }
    };
    (Value::Object(body), reply)
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::*;
    use super::super::{rev_hash, CouchDb};
    use crate::core::action::{Action, Reply};
    use crate::core::document::Version;
    use crate::core::error::Error;
    use crate::core::protocol::{Adapter, Method, Response, Verdict};
    use serde_json::{json, Map, Value};

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
    fn a_delete_ends_every_live_leaf_it_read_the_winner_first() {
        let a = CouchDb::new("app");
        let delete = Action::Delete { collection: c(), id: "a".into(), if_version: None };
        let gone = json!({"ok": {"_id": "notes:a", "_rev": "3-ee", "_deleted": true, "_revisions": {"start": 3, "ids": ["ee", "dd", "aa"]}}});
        let tombstones = |leaves: Value| {
            let f = follow_up(a.interpret("u", &delete, &attempt("k", false), None, ok(leaves)));
            assert_eq!(f.reply, Reply::Deleted);
            let body: Value = serde_json::from_str(f.call.body.as_deref().unwrap()).unwrap();
            body["docs"].as_array().unwrap().clone()
        };
        let docs = tombstones(json!([leaf("2-bb", &["bb", "aa"]), gone, leaf("2-cc", &["cc", "aa"])]));
        let expected = |parent: &str, ids: &[&str]| {
            let hash = rev_hash(&["k", parent]);
            let mut path = vec![hash.clone()];
            path.extend(ids.iter().map(|i| i.to_string()));
            json!({"_id": "notes:a", "_rev": format!("3-{hash}"), "_deleted": true,
                "_revisions": {"start": 3, "ids": path}})
        };
        assert_eq!(
            docs,
            [expected("2-cc", &["cc", "aa"]), expected("2-bb", &["bb", "aa"])],
            "one under each live leaf, the winner first, none under the old tombstone"
        );
        let reversed = tombstones(json!([leaf("2-cc", &["cc", "aa"]), leaf("2-bb", &["bb", "aa"])]));
        assert_eq!(reversed, docs, "the same revisions, the winner first, whichever order the node listed them in");
        // A retry that finds one of its tombstones sends nothing; `ifVersion` must name the winner.
        let mine = format!("3-{}", rev_hash(&["k", "2-bb"]));
        let landed = ok(json!([leaf("2-cc", &["cc", "aa"]), {"ok": {"_id": "notes:a", "_rev": mine, "_deleted": true,
            "_revisions": {"start": 3, "ids": [rev_hash(&["k", "2-bb"]), "bb", "aa"]}}}]));
        assert_eq!(a.interpret("u", &delete, &attempt("k", true), None, landed), Verdict::done(Reply::Deleted));
        let loser = Action::Delete { collection: c(), id: "a".into(), if_version: Some(Version::Rev("2-bb".into())) };
        let both = ok(json!([leaf("2-bb", &["bb", "aa"]), leaf("2-cc", &["cc", "aa"])]));
        assert!(matches!(
            a.interpret("u", &loser, &attempt("k", false), None, both),
            Verdict::Final(Error::Conflict { .. })
        ));
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
}
