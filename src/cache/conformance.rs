//! The conformance suite every [`Store`] must pass: natively for the memory store, in headless Chromium for
//! IndexedDB. It panics (test-style) on the first broken expectation.

use serde_json::json;

use super::Store;
use crate::core::{CollectionName, Doc};

fn doc(id: &str, version: u64, data: serde_json::Value) -> Doc {
    Doc {
        id: id.to_string(),
        version,
        data: data.as_object().cloned().unwrap_or_default(),
        updated_at: "2026-01-01T00:00:00Z".to_string(),
    }
}

/// Runs every check against `store`, which must start empty.
pub async fn run<S: Store>(store: &S) {
    let users = CollectionName::parse("users").unwrap();
    let posts = CollectionName::parse("posts").unwrap();

    assert_eq!(store.get(&users, "a").await.unwrap(), None, "a fresh store is empty");

    let a1 = doc("a", 1, json!({"name": "Ada", "tags": ["x"], "n": 1.5, "nested": {"k": null}}));
    store.put(&users, &a1).await.unwrap();
    assert_eq!(store.get(&users, "a").await.unwrap(), Some(a1.clone()), "round trip keeps every field");
    assert_eq!(store.get(&posts, "a").await.unwrap(), None, "collections are separate");

    let a2 = doc("a", 2, json!({"name": "Ada L."}));
    store.put(&users, &a2).await.unwrap();
    assert_eq!(store.get(&users, "a").await.unwrap(), Some(a2), "put overwrites");

    let odd = doc("ü/ with spaces/..x", 1, json!({}));
    store.put(&posts, &odd).await.unwrap();
    assert_eq!(store.get(&posts, &odd.id).await.unwrap(), Some(odd.clone()), "any valid id is a key");

    store.delete(&users, "a").await.unwrap();
    assert_eq!(store.get(&users, "a").await.unwrap(), None, "delete removes");
    store.delete(&users, "missing").await.unwrap();

    store.clear().await.unwrap();
    assert_eq!(store.get(&posts, &odd.id).await.unwrap(), None, "clear removes everything");
}
