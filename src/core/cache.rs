//! The client's local document cache, as decisions: what is cached, whether it is fresh, what to evict, and
//! what a read policy says to do with it. The stores in `src/cache` only persist what this decides.
//!
//! Read policies (Apollo's and Firestore's names): `network-first` (the default: ask an endpoint; when none
//! can answer, serve the cache), `cache-first` (a fresh cached copy is the answer), `stale-while-revalidate`
//! (answer from cache now, refresh in the background), `network-only`, `cache-only`. An entry older than
//! `ttlMs` is revalidated (with `If-None-Match`) before `cache-first` uses it. Past `maxEntries`, the least
//! recently used entries are evicted; entries with pending offline writes never are.

use std::collections::{BTreeMap, HashMap};

use super::document::Doc;
pub use super::types::{ReadPolicy, READ_POLICIES};

/// One cached document (or a pending delete's tombstone).
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub collection: String,
    pub id: String,
    /// `None`: deleted locally by a write still in the outbox.
    pub doc: Option<Doc>,
    /// When it was last confirmed by an endpoint (or written locally).
    pub stored_at_ms: u64,
    /// Whether an offline write to it is still queued.
    pub pending: bool,
}

/// What a `get` does, by policy and cache state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadPlan {
    /// Answer from the cache; nothing to send.
    Cache,
    /// Answer from the cache now and revalidate in the background.
    CacheThenRevalidate,
    /// Ask an endpoint (with `If-None-Match` when something is cached); on a failure that may pass, serve the
    /// cache if `fallback`.
    Network { fallback: bool },
}

/// Decides how to read, given the cached entry (if any).
pub fn plan(policy: ReadPolicy, cached: Option<&Entry>, ttl_ms: Option<u64>, now_ms: u64) -> ReadPlan {
    match policy {
        ReadPolicy::CacheOnly => return ReadPlan::Cache,
        ReadPolicy::NetworkOnly => return ReadPlan::Network { fallback: false },
        _ => {}
    }
    let Some(entry) = cached else {
        return ReadPlan::Network { fallback: policy != ReadPolicy::StaleWhileRevalidate };
    };
    // A pending local write is the newest this client knows: an endpoint cannot be more current for it.
    if entry.pending {
        return ReadPlan::Cache;
    }
    let fresh = ttl_ms.is_none_or(|ttl| now_ms.saturating_sub(entry.stored_at_ms) < ttl);
    match policy {
        ReadPolicy::CacheFirst if fresh => ReadPlan::Cache,
        ReadPolicy::StaleWhileRevalidate => ReadPlan::CacheThenRevalidate,
        _ => ReadPlan::Network { fallback: true },
    }
}

type Key = (String, String);

/// The in-memory working set, with LRU order. Persisting is the driver's job (it asks `take_evicted`).
#[derive(Debug, Default)]
pub struct Cache {
    entries: HashMap<Key, (Entry, u64)>,
    order: BTreeMap<u64, Key>,
    tick: u64,
    max_entries: usize,
    evicted: Vec<Key>,
}

impl Cache {
    pub fn new(max_entries: usize) -> Self {
        Cache { max_entries, ..Default::default() }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The entry, marked as just used.
    pub fn get(&mut self, collection: &str, id: &str) -> Option<Entry> {
        let key = (collection.to_string(), id.to_string());
        let tick = self.next_tick();
        let (entry, used) = self.entries.get_mut(&key)?;
        self.order.remove(used);
        *used = tick;
        self.order.insert(tick, key);
        Some(entry.clone())
    }

    /// The entry, without marking it used.
    pub fn peek(&self, collection: &str, id: &str) -> Option<&Entry> {
        self.entries.get(&(collection.to_string(), id.to_string())).map(|(e, _)| e)
    }

    /// Every cached entry of `collection` with a document, ordered by id (for pages served from the cache).
    pub fn entries_of(&self, collection: &str) -> Vec<&Entry> {
        let mut entries: Vec<&Entry> =
            self.entries.values().map(|(e, _)| e).filter(|e| e.collection == collection && e.doc.is_some()).collect();
        entries.sort_by(|a, b| a.id.cmp(&b.id));
        entries
    }

    /// Inserts or replaces an entry and evicts past `max_entries` (never a pending one).
    pub fn put(&mut self, entry: Entry) {
        let key = (entry.collection.clone(), entry.id.clone());
        let tick = self.next_tick();
        if let Some((_, used)) = self.entries.insert(key.clone(), (entry, tick)) {
            self.order.remove(&used);
        }
        self.order.insert(tick, key);
        self.evict();
    }

    pub fn remove(&mut self, collection: &str, id: &str) {
        if let Some((_, used)) = self.entries.remove(&(collection.to_string(), id.to_string())) {
            self.order.remove(&used);
        }
    }

    pub fn clear(&mut self) {
        self.entries.clear();
        self.order.clear();
    }

    /// Every cached document of `collection`, ordered by id (for `cache-only` lists).
    pub fn documents(&self, collection: &str) -> Vec<Doc> {
        let mut docs: Vec<Doc> = self
            .entries
            .values()
            .filter(|(e, _)| e.collection == collection)
            .filter_map(|(e, _)| e.doc.clone())
            .collect();
        docs.sort_by(|a, b| a.id.cmp(&b.id));
        docs
    }

    /// Keys evicted since the last call, for the driver to delete from the persistent store.
    pub fn take_evicted(&mut self) -> Vec<(String, String)> {
        std::mem::take(&mut self.evicted)
    }

    fn next_tick(&mut self) -> u64 {
        self.tick += 1;
        self.tick
    }

    fn evict(&mut self) {
        let mut skipped = Vec::new();
        while self.entries.len() > self.max_entries {
            let Some((tick, key)) = self.order.pop_first() else {
                break;
            };
            if self.entries.get(&key).is_some_and(|(e, _)| e.pending) {
                skipped.push((tick, key));
                continue;
            }
            self.entries.remove(&key);
            self.evicted.push(key);
        }
        for (tick, key) in skipped {
            self.order.insert(tick, key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(id: &str, stored_at_ms: u64, pending: bool) -> Entry {
        Entry { collection: "c".into(), id: id.into(), doc: None, stored_at_ms, pending }
    }

    #[test]
    fn the_least_recently_used_entry_is_evicted_but_never_a_pending_one() {
        let mut c = Cache::new(2);
        c.put(entry("a", 0, true));
        c.put(entry("b", 0, false));
        c.put(entry("c", 0, false));
        assert_eq!(c.take_evicted(), vec![("c".to_string(), "b".to_string())], "b, not the pending a");
        c.get("c", "a");
        c.put(entry("d", 0, false));
        assert_eq!(c.take_evicted(), vec![("c".to_string(), "c".to_string())]);
        assert_eq!(c.len(), 2);
    }

    #[test]
    fn policies_decide_by_freshness_and_pending_writes() {
        let fresh = entry("a", 1000, false);
        let old = entry("a", 0, false);
        let pending = entry("a", 0, true);
        let ttl = Some(500);
        assert_eq!(plan(ReadPolicy::CacheFirst, Some(&fresh), ttl, 1200), ReadPlan::Cache);
        assert_eq!(plan(ReadPolicy::CacheFirst, Some(&old), ttl, 1200), ReadPlan::Network { fallback: true });
        assert_eq!(plan(ReadPolicy::CacheFirst, None, ttl, 1200), ReadPlan::Network { fallback: true });
        assert_eq!(plan(ReadPolicy::CacheFirst, Some(&pending), ttl, 9999), ReadPlan::Cache);
        assert_eq!(plan(ReadPolicy::StaleWhileRevalidate, Some(&old), ttl, 1200), ReadPlan::CacheThenRevalidate);
        assert_eq!(plan(ReadPolicy::NetworkFirst, Some(&fresh), ttl, 1200), ReadPlan::Network { fallback: true });
        assert_eq!(plan(ReadPolicy::NetworkOnly, Some(&fresh), ttl, 1200), ReadPlan::Network { fallback: false });
        assert_eq!(plan(ReadPolicy::CacheOnly, None, ttl, 1200), ReadPlan::Cache);
        assert_eq!(
            plan(ReadPolicy::NetworkFirst, Some(&pending), ttl, 1200),
            ReadPlan::Cache,
            "own offline write wins"
        );
    }
}
