//! The conformance suite every [`Store`] must pass: natively and in Node for the memory store, in headless
//! Chromium (and on fake-indexeddb in Node) for IndexedDB. It panics, test-style, on the first broken
//! expectation.

use serde_json::json;

use super::Store;
use crate::core::cache::Entry;
use crate::core::outbox::{OutboxEntry, WriteKind};
use crate::core::Doc;

fn entry(collection: &str, id: &str, version: u64, data: serde_json::Value, pending: bool) -> Entry {
    let doc = Doc::from_value(json!({"id": id, "version": version, "data": data, "updatedAt": "2026-01-01T00:00:00Z"}));
    Entry {
        collection: collection.into(),
        id: id.into(),
        doc: Some(doc.unwrap()),
        stored_at_ms: 1000 + version,
        pending,
    }
}

fn queued(seq: u64, id: &str) -> OutboxEntry {
    OutboxEntry {
        seq,
        key: format!("key-{seq}"),
        kind: WriteKind::Update,
        collection: "users".into(),
        id: id.into(),
        data: json!({"n": seq}).as_object().cloned(),
        base_version: Some(crate::core::document::Version::Seq(1)),
        base: None,
        edited_at_ms: 5,
        reapplied: 0,
    }
}

fn sorted(mut v: Vec<Entry>) -> Vec<Entry> {
    v.sort_by(|a, b| (&a.collection, &a.id).cmp(&(&b.collection, &b.id)));
    v
}

/// Runs every check against `store`, which must start empty.
pub async fn run<S: Store>(store: &S) {
    assert!(store.entries().await.unwrap().is_empty(), "a fresh store has no entries");
    assert!(store.outbox().await.unwrap().is_empty(), "a fresh store has an empty outbox");

    let a1 = entry("users", "a", 1, json!({"name": "Ada", "tags": ["x"], "n": 1.5, "nested": {"k": null}}), false);
    store.put_entry(&a1).await.unwrap();
    assert_eq!(store.entries().await.unwrap(), vec![a1.clone()], "round trip keeps every field");

    let a2 = entry("users", "a", 2, json!({"name": "Ada L."}), false);
    let other = entry("posts", "a", 1, json!({}), false);
    let odd = entry("posts", "ü/ with spaces/..x", 1, json!({}), false);
    for e in [&a2, &other, &odd] {
        store.put_entry(e).await.unwrap();
    }
    assert_eq!(
        sorted(store.entries().await.unwrap()),
        sorted(vec![a2.clone(), other.clone(), odd.clone()]),
        "put overwrites by (collection, id); collections are separate; any valid id is a key"
    );

    let tombstone = Entry { doc: None, pending: true, ..a2.clone() };
    store.put_entry(&tombstone).await.unwrap();
    assert!(store.entries().await.unwrap().contains(&tombstone), "a pending delete's tombstone persists");

    store.delete_entry("posts", &odd.id).await.unwrap();
    store.delete_entry("posts", "missing").await.unwrap();
    assert_eq!(sorted(store.entries().await.unwrap()), sorted(vec![tombstone.clone(), other.clone()]));

    let pending = entry("users", "b", 3, json!({"n": 2}), true);
    store.put_outbox(&queued(20, "b"), Some(&pending)).await.unwrap();
    store.put_outbox(&queued(10, "a"), None).await.unwrap();
    let mut with_base = queued(30, "c");
    with_base.base = a1.doc.clone();
    store.put_outbox(&with_base, None).await.unwrap();
    let outbox = store.outbox().await.unwrap();
    assert_eq!(outbox.iter().map(|e| e.seq).collect::<Vec<_>>(), vec![10, 20, 30], "the outbox is in seq order");
    assert_eq!(outbox[2], with_base, "outbox entries keep every field");
    assert!(store.entries().await.unwrap().contains(&pending), "the cache entry was written with the outbox entry");

    let mut replaced = queued(20, "b");
    replaced.key = "key-20~1".into();
    store.put_outbox(&replaced, None).await.unwrap();
    // Two tabs queuing in the same millisecond: the second add finds the seq taken and writes nothing.
    let mut other_tab = queued(30, "other");
    other_tab.key = "other-tab".into();
    let its_cache = entry("c", "other", 1, json!({}), true);
    assert!(!store.add_outbox(&other_tab, Some(&its_cache)).await.unwrap(), "seq 30 is taken");
    assert_eq!(store.outbox().await.unwrap().iter().find(|e| e.seq == 30).unwrap().key, "key-30", "not overwritten");
    assert!(!store.entries().await.unwrap().iter().any(|e| e.id == "other"), "nothing of the refused add was written");
    let mut fresh = queued(31, "other");
    fresh.key = "other-tab".into();
    assert!(store.add_outbox(&fresh, None).await.unwrap());
    store.delete_outbox(31).await.unwrap();
    store.delete_outbox(10).await.unwrap();
    let outbox = store.outbox().await.unwrap();
    assert_eq!(outbox.iter().map(|e| e.key.as_str()).collect::<Vec<_>>(), vec!["key-20~1", "key-30"]);

    store.clear().await.unwrap();
    assert!(store.entries().await.unwrap().is_empty() && store.outbox().await.unwrap().is_empty(), "clear removes all");
}
