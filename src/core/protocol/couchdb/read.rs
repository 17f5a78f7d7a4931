//! Reads: one document with its conflicts, a page of one collection, chosen revisions of a document.
//!
//! Every read asks for conflicts (`conflicts=true`), so a conflict shows as soon as a document is read rather than
//! when it is next written. A page is a key range of `_all_docs` (`c:` up to `c;`), since all collections share
//! one database.

use serde_json::Value;

use super::wire::{self, parse_leaves, stored};
use crate::core::action::{Page, Reply};
use crate::core::document::{CollectionName, Version};
use crate::core::error::Error;
use crate::core::protocol::{encode_segment, json, protocol_error, Call, Response, Verdict};

/// `GET` a document and its conflicts.
pub(super) fn get(doc_path: &str) -> Call {
    // No If-None-Match: CouchDB's and PouchDB Server's default CORS settings do not allow the header, so a
    // browser's preflight would fail. The revision is compared when the answer comes instead (see `got`).
    Call::get(format!("{doc_path}?conflicts=true"))
}

/// `GET` a page of `collection` from `_all_docs`, the page after `after`; a page holds at least one document.
pub(super) fn list(
    db: &str,
    collection: &CollectionName,
    limit: Option<u32>,
    after: Option<&str>,
) -> Result<Call, Error> {
    let limit = limit.unwrap_or(100);
    if limit == 0 {
        return Err(Error::invalid("limit", "must be at least 1"));
    }
    let prefix = format!("{}:", collection.as_str());
    let start = format!("{prefix}{}", after.unwrap_or(""));
    // One more row than asked tells whether there is a next page; one more again when the page starts at `after`
    // itself (it is skipped).
    let rows = limit as u64 + 1 + after.is_some() as u64;
    let key = |k: &str| encode_segment(&Value::String(k.into()).to_string());
    Ok(Call::get(format!(
        "/{db}/_all_docs?include_docs=true&conflicts=true&limit={rows}&startkey={}&endkey={}&inclusive_end=false",
        key(&start),
        // ';' sorts right after ':', so this ends the collection's id range.
        key(&format!("{};", collection.as_str())),
    )))
}

/// `GET` chosen revisions of a document (`open_revs=[...]`).
pub(super) fn revisions(doc_path: &str, revs: &[Version]) -> Call {
    let list = Value::Array(revs.iter().map(Version::to_json).collect()).to_string();
    let mut call = Call::get(format!("{doc_path}?open_revs={}", encode_segment(&list)));
    call.headers.push(("accept".into(), "application/json".into()));
    call
}

/// The answer to a `get`: the document (None: missing), or not modified when it is the revision the caller has.
pub(super) fn got(
    url: &str,
    collection: &CollectionName,
    id: &str,
    if_none_match: Option<&Version>,
    body: Option<&str>,
) -> Verdict {
    let Some(body) = body else {
        return Verdict::done(Reply::Missing);
    };
    let stored = match json(url, body).and_then(|v| stored(url, collection, id, v)) {
        Ok(s) => s,
        Err(e) => return Verdict::Failed(e),
    };
    // The same revision means the same document (see `get` on If-None-Match).
    if if_none_match == Some(&stored.doc.version) && stored.conflicts.is_empty() {
        return Verdict::done(Reply::NotModified);
    }
    Verdict::Done { reply: Reply::Doc(stored.doc), raw: None, conflicts: stored.conflicts }
}

/// The answer to `revisions`: the live ones found (None: the document is missing, so none).
pub(super) fn versions(url: &str, collection: &CollectionName, id: &str, body: Option<&str>) -> Verdict {
    let Some(body) = body else {
        return Verdict::done(Reply::Versions(Vec::new()));
    };
    match parse_leaves(url, collection, id, body) {
        Ok(leaves) => Verdict::done(Reply::Versions(leaves.into_iter().filter_map(|l| l.doc).collect())),
        Err(e) => Verdict::Failed(e),
    }
}

/// The answer to a `list`.
pub(super) fn listed(
    url: &str,
    database: &str,
    collection: &CollectionName,
    limit: Option<u32>,
    after: Option<&str>,
    response: &Response,
) -> Verdict {
    match (response.status, parse_page(url, collection, limit, after, &response.body)) {
        (200, Ok(page)) => Verdict::done(Reply::Page(page)),
        (200, Err(e)) => Verdict::Failed(e),
        (404, _) => wire::missing_database(url, database),
        _ => Verdict::Final(wire::unexpected(url, response)),
    }
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
    // The last item kept names the next page; a limit of 0 (refused by `list`) keeps none, so names none.
    let next = limit.checked_sub(1).filter(|_| items.len() > limit).map(|last| items[last].id.clone());
    items.truncate(limit);
    conflicted.retain(|id| items.iter().any(|d| &d.id == id));
    Ok(Page { items, next, conflicted })
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::*;
    use super::super::CouchDb;
    use crate::core::action::{Action, Reply};
    use crate::core::document::Version;
    use crate::core::protocol::{Adapter, Verdict};
    use serde_json::json;

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
                    Verdict::Failed(crate::core::error::Error::Protocol { .. })
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
    fn a_page_of_nothing_is_refused_before_it_is_asked_for() {
        let a = CouchDb::new("app");
        let list = Action::List { collection: c(), limit: Some(0), after: None };
        let e = a.request(&list, &attempt("k", false)).unwrap_err();
        assert_eq!(e.code(), "invalid_argument");
        // An answer to such a page anyway (the limit used to index item -1): an empty page, not a panic.
        let row = json!({"id": "notes:a", "doc": leaf("1-aa", &["aa"])["ok"].clone()});
        match a.interpret("u", &list, &attempt("k", false), None, ok(json!({"rows": [row]}))) {
            Verdict::Done { reply: Reply::Page(p), .. } => assert!(p.items.is_empty() && p.next.is_none()),
            other => panic!("{other:?}"),
        }
    }
}
