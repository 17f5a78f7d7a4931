//! Local persistence: cached documents and the offline outbox.
//!
//! One [`Store`] trait with two implementations: [`MemoryStore`] (Node's default, and the fallback when a
//! browser database fails) and, in wasm builds, `IndexedDbStore`. Both run one shared [`conformance`] suite,
//! so the cache behaves the same wherever it lives (matrix-sdk-indexeddb's model). What to cache, evict or
//! queue is decided in `core::cache` and `core::outbox`; a store only keeps it.

pub mod conformance;
#[cfg(target_arch = "wasm32")]
pub mod indexeddb;
mod memory;

pub use memory::MemoryStore;

use crate::core::cache::Entry;
use crate::core::outbox::OutboxEntry;
use crate::core::Error;

/// What a client persists: cache entries keyed by (collection, id), and outbox entries ordered by `seq`.
///
/// Futures are not `Send`: stores live on the one JS thread.
#[allow(async_fn_in_trait)]
pub trait Store {
    /// Every cache entry (loaded once, when a client starts).
    async fn entries(&self) -> Result<Vec<Entry>, Error>;
    /// Inserts or overwrites a cache entry.
    async fn put_entry(&self, entry: &Entry) -> Result<(), Error>;
    /// Removes a cache entry; removing a missing one is not an error.
    async fn delete_entry(&self, collection: &str, id: &str) -> Result<(), Error>;
    /// The outbox, in `seq` order.
    async fn outbox(&self) -> Result<Vec<OutboxEntry>, Error>;
    /// Adds (or replaces, by `seq`) an outbox entry together with the cache entry it changes, atomically.
    async fn put_outbox(&self, entry: &OutboxEntry, cached: Option<&Entry>) -> Result<(), Error>;
    /// Adds a new outbox entry with the cache entry it changes, atomically, unless its `seq` is taken (another tab
    /// queued under it in the same millisecond): then nothing is written and the answer is `false`.
    async fn add_outbox(&self, entry: &OutboxEntry, cached: Option<&Entry>) -> Result<bool, Error>;
    /// Removes an outbox entry.
    async fn delete_outbox(&self, seq: u64) -> Result<(), Error>;
    /// Removes every cache entry and outbox entry (a user logging out).
    async fn clear(&self) -> Result<(), Error>;
}

/// The cache-entry key: a collection name never contains `/`, so this is unambiguous.
pub(crate) fn entry_key(collection: &str, id: &str) -> String {
    format!("{collection}/{id}")
}

/// The JSON form of a cache entry, as persisted.
#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))] // persisted as JSON by IndexedDB only
pub(crate) fn entry_to_value(entry: &Entry) -> serde_json::Value {
    serde_json::json!({
        "collection": entry.collection,
        "id": entry.id,
        "doc": entry.doc.as_ref().map(crate::core::Doc::to_value),
        "storedAt": entry.stored_at_ms,
        "pending": entry.pending,
    })
}

#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
pub(crate) fn entry_from_value(v: &serde_json::Value) -> Result<Entry, String> {
    let s = |k: &str| v.get(k).and_then(|x| x.as_str()).map(String::from).ok_or(format!("cache entry: bad {k}"));
    Ok(Entry {
        collection: s("collection")?,
        id: s("id")?,
        doc: match v.get("doc") {
            Some(d) if d.is_object() => Some(crate::core::Doc::from_value(d.clone())?),
            _ => None,
        },
        stored_at_ms: v.get("storedAt").and_then(|x| x.as_u64()).unwrap_or(0),
        pending: v.get("pending").and_then(|x| x.as_bool()).unwrap_or(false),
    })
}
