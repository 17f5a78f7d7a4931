//! `createClient` and `Client` as JavaScript sees them: conversions, and calls handed to the executor.

use std::rc::Rc;

use js_sys::{Function, Object, Reflect};
use wasm_bindgen::prelude::*;

use super::collection::Collection;
use super::convert::{json_of, to_js_value};
use super::errors::to_js;
use super::executor::Executor;
use super::js::{get, in_browser, now_ms};
use super::store::AnyStore;
use super::tabs::Tabs;
use crate::core::client::{CallSpec, Client as Core, ClientEvent, Platform, Settings};
use crate::core::options::StoreKind;
use crate::core::outbox::ConflictStrategy;
use crate::core::{CollectionName, Config, Error};

/// A Replikit client. Create one with `createClient(options)`.
#[wasm_bindgen]
pub struct Client {
    executor: Rc<Executor>,
}

/// Validates `options`, opens the local cache and returns a client that health-checks at once. Prefer the
/// package entry's `createClient`, which also loads the module.
#[wasm_bindgen(js_name = createClient)]
pub async fn create_client(options: JsValue) -> Result<Client, JsValue> {
    create(options).await.map_err(|e| to_js(&e))
}

/// Takes a function-valued option out of `copy` (functions are not JSON).
fn take_function(copy: &Object, key: &str) -> Option<Function> {
    let value = get(copy, key);
    if !value.is_function() {
        return None;
    }
    let _ = Reflect::delete_property(copy, &key.into());
    Some(value.unchecked_into())
}

async fn create(options: JsValue) -> Result<Client, Error> {
    if !options.is_object() {
        return Err(Error::invalid("options", "createClient needs an options object"));
    }
    let copy = Object::assign(&Object::new(), options.unchecked_ref());
    let fetch = match take_function(&copy, "fetch") {
        Some(f) => f,
        None if get(&copy, "fetch").is_undefined() => get(&js_sys::global(), "fetch")
            .dyn_into()
            .map_err(|_| Error::invalid("fetch", "no global fetch here; pass options.fetch"))?,
        None => return Err(Error::invalid("fetch", "must be a function")),
    };
    let resolver = take_function(&copy, "conflict");
    let config = Config::from_json(json_of(&copy.into(), "options")?)?;
    let platform = Platform {
        browser: in_browser(),
        has_indexeddb: !get(&js_sys::global(), "indexedDB").is_undefined(),
        has_resolver: resolver.is_some(),
        has_fs: super::file_store::has_fs(),
    };
    let settings = Settings::resolve(&config, platform)?;
    let seed = (js_sys::Math::random() * 9_007_199_254_740_991.0) as u64 ^ now_ms();
    let core = Core::new(config, settings.clone(), seed);
    let tab = crate::core::client::uuid_v7(now_ms(), &super::js::random_bytes::<10>());
    let (store, loaded) = open_store(&settings).await;
    let persistent = matches!(store, AnyStore::IndexedDb(_) | AnyStore::File(_));
    let tabs = matches!(store, AnyStore::IndexedDb(_)).then(|| Tabs::open(&settings.name, tab)).flatten();
    let executor = Executor::new(core, fetch, store, resolver);
    executor.start(persistent, loaded, tabs);
    Ok(Client { executor })
}

/// Opens the store the settings name and reads its entries; an IndexedDB that cannot be opened gives a memory
/// store and the error (the core decides what follows).
async fn open_store(settings: &Settings) -> (AnyStore, Result<Vec<crate::core::cache::Entry>, Error>) {
    let opened = match (settings.store, settings.path.as_deref()) {
        (StoreKind::IndexedDb, _) => AnyStore::indexeddb(&settings.name).await,
        (StoreKind::File, Some(path)) => super::file_store::FileStore::open(path).map(AnyStore::File),
        _ => Ok(AnyStore::Memory(crate::cache::MemoryStore::new())),
    };
    let store = match opened {
        Ok(s) => s,
        Err(e) => return (AnyStore::Memory(crate::cache::MemoryStore::new()), Err(e)),
    };
    let loaded = match settings.store {
        StoreKind::None => Ok(Vec::new()),
        _ => store.entries().await,
    };
    (store, loaded)
}

#[wasm_bindgen]
impl Client {
    /// A handle on the collection `name` (`[A-Za-z0-9_-]{1,64}`).
    pub fn collection(&self, name: &str) -> Result<Collection, JsValue> {
        if self.executor.is_closed() {
            return Err(to_js(&Error::Aborted { message: "the client is closed".into() }));
        }
        let name = CollectionName::parse(name).map_err(|e| to_js(&e))?;
        Ok(Collection::new(name, self.executor.clone()))
    }

    /// A snapshot of every endpoint: url, nodeId, role, state, rttMs, lagMs, term, position, lastError, primary.
    pub fn topology(&self) -> JsValue {
        to_js_value(&self.executor.core().router().topology().describe())
    }

    /// The validated options, with defaults filled in (header values left out).
    #[wasm_bindgen(js_name = effectiveOptions)]
    pub fn effective_options(&self) -> JsValue {
        let core = self.executor.core();
        let c = core.router().config();
        let o = core.settings();
        let conflict = match o.conflict {
            ConflictStrategy::ServerWins => "server-wins",
            ConflictStrategy::ClientWins => "client-wins",
            ConflictStrategy::LastWriterWins => "last-writer-wins",
            ConflictStrategy::Custom => "function",
        };
        let view = serde_json::json!({
            "topology": c.topology,
            "protocol": c.protocol,
            "database": c.database,
            "endpoints": c.endpoints.iter().map(|e| serde_json::json!({"url": e.url, "role": e.role})).collect::<Vec<_>>(),
            "readPreference": c.read_preference,
            "consistency": c.consistency,
            "maxStalenessMs": c.max_staleness_ms,
            "health": {"intervalMs": c.health.interval_ms, "timeoutMs": c.health.timeout_ms, "failureThreshold": c.health.failure_threshold},
            "requestTimeoutMs": c.request_timeout_ms,
            "primaryWaitMs": c.primary_wait_ms,
            "durability": c.durability,
            "retry": {"maxAttempts": c.retry.max_attempts, "baseDelayMs": c.retry.base_delay_ms, "maxDelayMs": c.retry.max_delay_ms},
            "headers": c.headers.keys().collect::<Vec<_>>(),
            "cache": {"store": o.store, "name": o.name, "maxEntries": o.max_entries, "ttlMs": o.ttl_ms, "path": o.path},
            "readPolicy": o.policy,
            "offline": {"queueWrites": o.queue_writes},
            "conflict": conflict,
        });
        to_js_value(&view)
    }

    /// The highest position among this client's acknowledged writes (what its reads wait for).
    #[wasm_bindgen(js_name = sessionPosition)]
    pub fn session_position(&self) -> f64 {
        self.executor.core().router().session_position() as f64
    }

    /// The queued offline writes, oldest first.
    #[wasm_bindgen(js_name = pendingWrites)]
    pub async fn pending_writes(&self) -> Result<JsValue, JsValue> {
        self.executor.call(CallSpec::PendingWrites, None).await
    }

    /// Syncs the outbox now; resolves when it is empty, rejects with the first write that failed for good.
    /// While no primary is reachable it keeps waiting (use the client's events to show progress).
    pub async fn flush(&self) -> Result<(), JsValue> {
        self.executor.call(CallSpec::Flush, None).await.map(|_| ())
    }

    /// Removes every cached document and every queued write, in this tab and in the store (a user logging out).
    #[wasm_bindgen(js_name = clearCache)]
    pub async fn clear_cache(&self) -> Result<(), JsValue> {
        self.executor.call(CallSpec::ClearCache, None).await.map(|_| ())
    }

    /// Subscribes `callback` to `event`; returns a function that unsubscribes it.
    pub fn on(&self, event: &str, callback: Function) -> Result<Function, JsValue> {
        let names = ClientEvent::NAMES;
        if !names.contains(&event) {
            return Err(to_js(&Error::invalid("event", format!("{event:?} is not one of {}", names.join(", ")))));
        }
        Ok(self.executor.on(event, callback))
    }

    /// The number of subscribed listeners for `event`.
    #[wasm_bindgen(js_name = listenerCount)]
    pub fn listener_count(&self, event: &str) -> usize {
        self.executor.listener_count(event)
    }

    /// Stops health checks, in-flight work and tab messages; pending and later calls reject with `aborted`.
    pub async fn close(&self) {
        self.executor.close();
    }
}
