//! The client's local side as decisions: the settings the cache and outbox run with in this environment, and
//! what caching a document means (the working set, its persistence, other tabs). The stores in `src/cache` only
//! carry out the `StoreOp`s this hands out.

use super::effect::{Effect, StoreOp, TabMessage};
use super::Client;
use crate::core::cache::Entry;
use crate::core::document::Doc;
use crate::core::error::Error;
use crate::core::options::Config;
use crate::core::types::{ConflictStrategy, ReadPolicy, StoreKind};

/// What the environment offers (the executor looks; the core decides what follows).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Platform {
    /// A browser page or worker (not Node).
    pub browser: bool,
    pub has_indexeddb: bool,
    /// The app passed a conflict function.
    pub has_resolver: bool,
    /// Node's file system is there (the `file` store).
    pub has_fs: bool,
}

/// The local settings resolved for this environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub store: StoreKind,
    pub name: String,
    /// The `file` store's folder.
    pub path: Option<String>,
    pub max_entries: usize,
    pub ttl_ms: Option<u64>,
    pub policy: ReadPolicy,
    pub queue_writes: bool,
    pub conflict: ConflictStrategy,
}

impl Settings {
    /// Defaults by environment: IndexedDB and queued offline writes in browsers, memory and no queueing in Node
    /// (a script that cannot reach its cluster should fail, not pile up writes in a memory that dies with it).
    pub fn resolve(config: &Config, platform: Platform) -> Result<Settings, Error> {
        let default_store =
            if platform.browser && platform.has_indexeddb { StoreKind::IndexedDb } else { StoreKind::Memory };
        let store = config.cache.store.unwrap_or(default_store);
        if store == StoreKind::IndexedDb && !platform.has_indexeddb {
            return Err(Error::invalid(
                "cache.store",
                "\"indexeddb\" needs a global indexedDB (a browser, or fake-indexeddb in Node)",
            ));
        }
        if store == StoreKind::File && !platform.has_fs {
            return Err(Error::invalid("cache.store", "\"file\" needs Node's file system (the package's Node entry)"));
        }
        Ok(Settings {
            store,
            name: config.cache.name.clone(),
            path: config.cache.path.clone(),
            max_entries: config.cache.max_entries,
            ttl_ms: config.cache.ttl_ms,
            policy: config.read_policy,
            queue_writes: config.queue_writes.unwrap_or(platform.browser),
            conflict: if platform.has_resolver { ConflictStrategy::Custom } else { config.conflict },
        })
    }

    /// The cross-tab lock the outbox is flushed under.
    pub fn lock_name(&self) -> String {
        format!("replikit:{}:outbox", self.name)
    }
}

impl Client {
    pub(super) fn cache_enabled(&self) -> bool {
        self.settings.store != StoreKind::None
    }

    /// Tabs share the IndexedDB store and tell each other of their writes.
    fn shares_store(&self) -> bool {
        self.settings.store == StoreKind::IndexedDb
    }

    /// The cached entry (marked as just used), if caching is on.
    pub(super) fn cache_get(&mut self, collection: &str, id: &str) -> Option<Entry> {
        if !self.cache_enabled() {
            return None;
        }
        self.cache.get(collection, id)
    }

    pub(super) fn pending(&self, collection: &str, id: &str) -> bool {
        self.cache_enabled() && self.cache.peek(collection, id).is_some_and(|e| e.pending)
    }

    /// Caches `entry` (persisted, and announced to other tabs when `announce`).
    pub(super) fn put(&mut self, entry: Entry, announce: bool) {
        if !self.cache_enabled() {
            return;
        }
        if announce && self.shares_store() {
            let message = TabMessage::Change {
                collection: entry.collection.clone(),
                id: entry.id.clone(),
                entry: Some(entry.clone()),
            };
            self.effects.push_back(Effect::Announce(message));
        }
        if self.persistent {
            self.cache.put(entry.clone());
            self.store(StoreOp::PutEntry(entry), None);
        } else {
            // The in-memory cache is the memory store: a second copy would only cost a deep clone.
            self.cache.put(entry);
        }
        self.persist_evictions();
    }

    /// Caches a document an endpoint returned, unless a local write to it is still pending.
    pub(super) fn put_doc(&mut self, collection: &str, doc: &Doc, announce: bool, now_ms: u64) {
        if self.pending(collection, &doc.id) {
            return;
        }
        let entry = Entry {
            collection: collection.to_string(),
            id: doc.id.clone(),
            doc: Some(doc.clone()),
            stored_at_ms: now_ms,
            pending: false,
        };
        self.put(entry, announce);
    }

    pub(super) fn remove(&mut self, collection: &str, id: &str, announce: bool) {
        if !self.cache_enabled() {
            return;
        }
        self.cache.remove(collection, id);
        if self.persistent {
            self.store(StoreOp::DeleteEntry { collection: collection.to_string(), id: id.to_string() }, None);
        }
        if announce && self.shares_store() {
            let message = TabMessage::Change { collection: collection.to_string(), id: id.to_string(), entry: None };
            self.effects.push_back(Effect::Announce(message));
        }
    }

    fn persist_evictions(&mut self) {
        for (collection, id) in self.cache.take_evicted() {
            if self.persistent {
                self.store(StoreOp::DeleteEntry { collection, id }, None);
            }
        }
    }

    /// Tells other tabs of the entry as it is now.
    pub(super) fn announce_current(&mut self, collection: &str, id: &str) {
        if !self.shares_store() {
            return;
        }
        let entry = self.cache.peek(collection, id).cloned();
        let message = TabMessage::Change { collection: collection.to_string(), id: id.to_string(), entry };
        self.effects.push_back(Effect::Announce(message));
    }

    /// A `seq` later than every one this client made (time-based, so tabs interleave by time).
    pub(super) fn next_seq(&mut self, now_ms: u64) -> u64 {
        let seq = now_ms.saturating_mul(1000).max(self.last_seq + 1);
        self.last_seq = seq;
        seq
    }
}
