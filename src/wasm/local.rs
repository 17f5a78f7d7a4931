//! The client's local state: the in-memory cache (decisions in `core::cache`), the persistent store behind
//! it, and the BroadcastChannel that keeps a browser's tabs in step.
//!
//! The store is written through; when it fails (quota, a blocked or corrupt database) the client switches to
//! the memory store, tells the app once (`storageError`), and keeps serving: a broken disk must not break
//! reads.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::rc::Rc;

use js_sys::{Function, Reflect};
use wasm_bindgen::prelude::*;

use super::errors::to_js;
use super::js::{get, now_ms, object};
use crate::cache::indexeddb::IndexedDbStore;
use crate::cache::{entry_from_value, entry_to_value, MemoryStore, Store};
use crate::core::cache::{Cache, Entry, ReadPolicy};
use crate::core::options::StoreKind;
use crate::core::outbox::{ConflictStrategy, OutboxEntry};
use crate::core::{Doc, Error};

/// One of the stores, chosen at start-up (async trait methods cannot be `dyn`).
pub enum AnyStore {
    Memory(MemoryStore),
    IndexedDb(IndexedDbStore),
}

macro_rules! dispatch {
    ($self:ident, $s:ident => $call:expr) => {
        match $self {
            AnyStore::Memory($s) => $call.await,
            AnyStore::IndexedDb($s) => $call.await,
        }
    };
}

impl AnyStore {
    async fn entries(&self) -> Result<Vec<Entry>, Error> {
        dispatch!(self, s => s.entries())
    }
    async fn put_entry(&self, e: &Entry) -> Result<(), Error> {
        dispatch!(self, s => s.put_entry(e))
    }
    async fn delete_entry(&self, c: &str, id: &str) -> Result<(), Error> {
        dispatch!(self, s => s.delete_entry(c, id))
    }
    async fn outbox(&self) -> Result<Vec<OutboxEntry>, Error> {
        dispatch!(self, s => s.outbox())
    }
    async fn put_outbox(&self, e: &OutboxEntry, c: Option<&Entry>) -> Result<(), Error> {
        dispatch!(self, s => s.put_outbox(e, c))
    }
    async fn delete_outbox(&self, seq: u64) -> Result<(), Error> {
        dispatch!(self, s => s.delete_outbox(seq))
    }
    async fn clear(&self) -> Result<(), Error> {
        dispatch!(self, s => s.clear())
    }
}

/// Settings the local side runs with (the options resolved for this environment).
pub struct LocalOptions {
    pub store: StoreKind,
    pub name: String,
    pub max_entries: usize,
    pub ttl_ms: Option<u64>,
    pub policy: ReadPolicy,
    pub queue_writes: bool,
    pub conflict: ConflictStrategy,
    pub resolver: Option<Function>,
}

/// The BroadcastChannel `onmessage` closure (kept alive while the client lives).
type MessageHandler = Closure<dyn FnMut(JsValue)>;

pub struct Local {
    pub options: LocalOptions,
    cache: RefCell<Cache>,
    store: RefCell<Rc<AnyStore>>,
    /// Errors of the store waiting to be reported as `storageError` events.
    store_errors: RefCell<Vec<Error>>,
    channel: Option<JsValue>,
    on_message: RefCell<Option<MessageHandler>>,
    /// Changes other tabs announced, waiting to be emitted as `change` events.
    remote_changes: RefCell<Vec<(String, String, Option<Doc>)>>,
    on_remote: RefCell<Option<Box<dyn Fn()>>>,
    tab: String,
    last_seq: Cell<u64>,
    pub flushing: Cell<bool>,
}

/// Whether this runs in a browser page or worker (not Node).
pub fn in_browser() -> bool {
    let g = js_sys::global();
    !get(&g, "document").is_undefined() || !get(&g, "WorkerGlobalScope").is_undefined()
}

/// Whether the browser says it is offline (`navigator.onLine === false`).
pub fn browser_offline() -> bool {
    in_browser() && get(&get(&js_sys::global(), "navigator"), "onLine") == JsValue::FALSE
}

impl Local {
    /// Opens the store and loads the cache. An IndexedDB that cannot be opened degrades to memory.
    pub async fn open(options: LocalOptions, tab: String) -> Rc<Local> {
        let mut errors = Vec::new();
        let store = match options.store {
            StoreKind::IndexedDb => match IndexedDbStore::open(&options.name).await {
                Ok(s) => AnyStore::IndexedDb(s),
                Err(e) => {
                    errors.push(e);
                    AnyStore::Memory(MemoryStore::new())
                }
            },
            _ => AnyStore::Memory(MemoryStore::new()),
        };
        let mut cache = Cache::new(options.max_entries);
        if options.store != StoreKind::None {
            match store.entries().await {
                Ok(entries) => entries.into_iter().for_each(|e| cache.put(e)),
                Err(e) => errors.push(e),
            }
        }
        let channel = matches!(store, AnyStore::IndexedDb(_)).then(|| open_channel(&options.name)).flatten();
        let local = Rc::new(Local {
            options,
            cache: RefCell::new(cache),
            store: RefCell::new(Rc::new(store)),
            store_errors: RefCell::new(errors),
            channel,
            on_message: RefCell::new(None),
            remote_changes: RefCell::new(Vec::new()),
            on_remote: RefCell::new(None),
            tab,
            last_seq: Cell::new(0),
            flushing: Cell::new(false),
        });
        local.listen();
        local
    }

    /// Whether cache entries are written to a persistent store (IndexedDB) besides the in-memory cache.
    fn persists_entries(&self) -> bool {
        matches!(**self.store.borrow(), AnyStore::IndexedDb(_))
    }

    pub fn enabled(&self) -> bool {
        self.options.store != StoreKind::None
    }

    // ----- the cache -----

    /// The cached entry, if caching is on.
    pub fn get(&self, collection: &str, id: &str) -> Option<Entry> {
        if !self.enabled() {
            return None;
        }
        self.cache.borrow_mut().get(collection, id)
    }

    pub fn documents(&self, collection: &str) -> Vec<Doc> {
        self.cache.borrow().documents(collection)
    }

    /// Caches `entry` (persisted, and announced to other tabs when `announce`).
    pub async fn put(&self, entry: Entry, announce: bool) {
        if !self.enabled() {
            return;
        }
        if self.persists_entries() {
            self.cache.borrow_mut().put(entry.clone());
            if announce {
                self.announce(&entry.collection, &entry.id, Some(&entry));
            }
            self.persist(|s| async move { s.put_entry(&entry).await }).await;
        } else {
            // The in-memory cache is the memory store: keeping a second copy would only cost a deep clone.
            self.cache.borrow_mut().put(entry);
        }
        self.evict().await;
    }

    /// Caches a document an endpoint returned, unless a local write to it is still pending.
    pub async fn put_doc(&self, collection: &str, doc: &Doc, announce: bool) {
        if self.get(collection, &doc.id).is_some_and(|e| e.pending) {
            return;
        }
        let entry = Entry {
            collection: collection.to_string(),
            id: doc.id.clone(),
            doc: Some(doc.clone()),
            stored_at_ms: now_ms(),
            pending: false,
        };
        self.put(entry, announce).await;
    }

    pub async fn remove(&self, collection: &str, id: &str, announce: bool) {
        if !self.enabled() {
            return;
        }
        self.cache.borrow_mut().remove(collection, id);
        if self.persists_entries() {
            let (c, i) = (collection.to_string(), id.to_string());
            self.persist(|s| async move { s.delete_entry(&c, &i).await }).await;
        }
        if announce {
            self.announce(collection, id, None);
        }
    }

    async fn evict(&self) {
        let evicted = self.cache.borrow_mut().take_evicted();
        if !self.persists_entries() {
            return;
        }
        for (c, id) in evicted {
            self.persist(|s| async move { s.delete_entry(&c, &id).await }).await;
        }
    }

    /// Removes every cached document and queued write, here and in the store.
    pub async fn clear(&self) {
        self.cache.borrow_mut().clear();
        self.persist(|s| async move { s.clear().await }).await;
        if let Some(ch) = &self.channel {
            post(ch, &object(&[("type", "clear".into()), ("tab", JsValue::from_str(&self.tab))]));
        }
    }

    // ----- the outbox -----

    /// A `seq` later than every one this tab made (time-based, so tabs interleave by time).
    pub fn next_seq(&self) -> u64 {
        let seq = (now_ms() * 1000).max(self.last_seq.get() + 1);
        self.last_seq.set(seq);
        seq
    }

    pub async fn outbox(&self) -> Vec<OutboxEntry> {
        let store = self.store.borrow().clone();
        match store.outbox().await {
            Ok(entries) => entries,
            Err(e) => {
                self.store_errors.borrow_mut().push(e);
                Vec::new()
            }
        }
    }

    /// Queues `entry` and caches `cached` with it, in one store transaction.
    pub async fn enqueue(&self, entry: &OutboxEntry, cached: Entry) {
        self.cache.borrow_mut().put(cached.clone());
        let e = entry.clone();
        let c = cached.clone();
        let persisted = self.persist(|s| async move { s.put_outbox(&e, Some(&c)).await.map(|_| true) }).await;
        if !persisted {
            // The store failed and was swapped for memory: keep the write there (it syncs unless the page reloads).
            let e = entry.clone();
            self.persist(|s| async move { s.put_outbox(&e, Some(&cached)).await }).await;
        }
        self.announce(&entry.collection, &entry.id, self.get(&entry.collection, &entry.id).as_ref());
    }

    pub async fn replace_queued(&self, entry: &OutboxEntry) {
        let e = entry.clone();
        self.persist(|s| async move { s.put_outbox(&e, None).await }).await;
    }

    pub async fn dequeue(&self, seq: u64) {
        self.persist(|s| async move { s.delete_outbox(seq).await }).await;
    }

    // ----- failures of the store -----

    /// Runs a store operation; on failure, swaps in the memory store and records the error for the app.
    async fn persist<T: Default, F, Fut>(&self, op: F) -> T
    where
        F: FnOnce(Rc<AnyStore>) -> Fut,
        Fut: Future<Output = Result<T, Error>>,
    {
        // Not gated on the cache being enabled: with `cache: { store: 'none' }` the outbox still lives in the
        // memory store (a queued write must never be dropped); cache entries are gated by their callers.
        let store = self.store.borrow().clone();
        match op(store).await {
            Ok(v) => v,
            Err(e) => {
                if matches!(**self.store.borrow(), AnyStore::IndexedDb(_)) {
                    *self.store.borrow_mut() = Rc::new(AnyStore::Memory(MemoryStore::new()));
                }
                self.store_errors.borrow_mut().push(e);
                T::default()
            }
        }
    }

    /// Store errors not reported yet (as `storageError` events, with codes `storage` or `quota`).
    pub fn take_store_errors(&self) -> Vec<JsValue> {
        self.store_errors.borrow_mut().drain(..).map(|e| to_js(&e)).collect()
    }

    /// Changes other tabs announced since the last call.
    pub fn take_remote_changes(&self) -> Vec<(String, String, Option<Doc>)> {
        std::mem::take(&mut self.remote_changes.borrow_mut())
    }

    // ----- other tabs -----

    fn announce(&self, collection: &str, id: &str, entry: Option<&Entry>) {
        let Some(ch) = &self.channel else { return };
        let entry = entry.map(|e| JsValue::from_str(&entry_to_value(e).to_string())).unwrap_or(JsValue::NULL);
        post(
            ch,
            &object(&[
                ("type", "change".into()),
                ("tab", JsValue::from_str(&self.tab)),
                ("collection", JsValue::from_str(collection)),
                ("id", JsValue::from_str(id)),
                ("entry", entry),
            ]),
        );
    }

    fn listen(self: &Rc<Self>) {
        let Some(ch) = &self.channel else { return };
        let weak = Rc::downgrade(self);
        let cb = Closure::<dyn FnMut(JsValue)>::new(move |event: JsValue| {
            let Some(local) = weak.upgrade() else { return };
            local.receive(&get(&event, "data"));
        });
        let _ = Reflect::set(ch, &"onmessage".into(), cb.as_ref());
        *self.on_message.borrow_mut() = Some(cb);
    }

    fn receive(&self, msg: &JsValue) {
        if get(msg, "tab").as_string().as_deref() == Some(self.tab.as_str()) {
            return;
        }
        match get(msg, "type").as_string().as_deref() {
            Some("clear") => self.cache.borrow_mut().clear(),
            Some("change") => {
                let (Some(collection), Some(id)) = (get(msg, "collection").as_string(), get(msg, "id").as_string())
                else {
                    return;
                };
                let entry = get(msg, "entry")
                    .as_string()
                    .and_then(|s| serde_json::from_str::<serde_json::Value>(&s).ok())
                    .and_then(|v| entry_from_value(&v).ok());
                let doc = entry.as_ref().and_then(|e| e.doc.clone());
                match entry {
                    Some(e) => self.cache.borrow_mut().put(e),
                    None => self.cache.borrow_mut().remove(&collection, &id),
                }
                self.remote_changes.borrow_mut().push((collection, id, doc));
            }
            _ => {}
        }
        if let Some(hook) = self.on_remote.borrow().as_ref() {
            hook();
        }
    }

    /// Sets what to do after another tab's message was applied (the client emits `change` events).
    pub fn set_on_remote(&self, hook: Box<dyn Fn()>) {
        *self.on_remote.borrow_mut() = Some(hook);
    }

    pub fn close(&self) {
        if let Some(ch) = &self.channel {
            let _ = Reflect::set(ch, &"onmessage".into(), &JsValue::NULL);
            if let Some(close) = get(ch, "close").dyn_ref::<Function>() {
                let _ = close.call0(ch);
            }
        }
        self.on_message.borrow_mut().take();
        self.on_remote.borrow_mut().take();
    }
}

impl Drop for Local {
    /// Detaches the tab channel's handler before its closure goes away.
    fn drop(&mut self) {
        self.close();
    }
}

fn open_channel(name: &str) -> Option<JsValue> {
    let class = get(&js_sys::global(), "BroadcastChannel");
    let class = class.dyn_ref::<Function>()?;
    let ch = Reflect::construct(class, &js_sys::Array::of1(&JsValue::from_str(&format!("replikit:{name}")))).ok()?;
    // Node's BroadcastChannel holds the process open unless unref'ed.
    if let Some(unref) = get(&ch, "unref").dyn_ref::<Function>() {
        let _ = unref.call0(&ch);
    }
    Some(ch)
}

fn post(channel: &JsValue, msg: &JsValue) {
    if let Some(post) = get(channel, "postMessage").dyn_ref::<Function>() {
        let _ = post.call1(channel, msg);
    }
}
