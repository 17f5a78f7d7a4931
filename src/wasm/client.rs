//! `createClient` and `Client` as JavaScript sees them.

use std::rc::Rc;

use js_sys::{Function, Object, Reflect};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::spawn_local;

use super::collection::Collection;
use super::convert::{doc_to_js, json_of, message_of, to_js_value};
use super::driver::Driver;
use super::errors::to_js;
use super::js::{get, now_ms, object, Timer};
use super::local::{in_browser, Local, LocalOptions};
use super::sync::{entry_to_js, flush_once, report_store_errors};
use crate::core::options::StoreKind;
use crate::core::outbox::ConflictStrategy;
use crate::core::{CollectionName, Config, Error, Router};

/// Events a client emits; `on()` rejects any other name so a typo is caught.
const EVENTS: &[&str] = &[
    "topology",
    "primary",
    "endpointDown",
    "endpointUp",
    "retry",
    "change",
    "queued",
    "synced",
    "conflict",
    "syncFailed",
    "storageError",
];

/// A Replikit client. Create one with `createClient(options)`.
#[wasm_bindgen]
pub struct Client {
    driver: Rc<Driver>,
    local: Rc<Local>,
}

/// Validates `options`, opens the local cache and returns a client that health-checks at once. Prefer the
/// package entry's `createClient`, which also loads the module.
#[wasm_bindgen(js_name = createClient)]
pub async fn create_client(options: JsValue) -> Result<Client, JsValue> {
    create(options).await.map_err(|e| to_js(&e))
}

/// Takes a function-valued option out of `copy` (functions are not JSON).
fn take_function(copy: &Object, key: &str) -> Result<Option<Function>, Error> {
    let value = get(copy, key);
    if !value.is_function() {
        return Ok(None);
    }
    let _ = Reflect::delete_property(copy, &key.into());
    Ok(Some(value.unchecked_into()))
}

async fn create(options: JsValue) -> Result<Client, Error> {
    if !options.is_object() {
        return Err(Error::invalid("options", "createClient needs an options object"));
    }
    let copy = Object::assign(&Object::new(), options.unchecked_ref());
    let fetch = match take_function(&copy, "fetch")? {
        Some(f) => f,
        None if get(&copy, "fetch").is_undefined() => get(&js_sys::global(), "fetch")
            .dyn_into()
            .map_err(|_| Error::invalid("fetch", "no global fetch here; pass options.fetch"))?,
        None => return Err(Error::invalid("fetch", "must be a function")),
    };
    let resolver = take_function(&copy, "conflict")?;
    let mut config = Config::from_json(json_of(&copy.into(), "options")?)?;
    if resolver.is_some() {
        config.conflict = ConflictStrategy::Custom;
    }
    let browser = in_browser();
    let has_idb = !get(&js_sys::global(), "indexedDB").is_undefined();
    let store = config.cache.store.unwrap_or(if browser && has_idb { StoreKind::IndexedDb } else { StoreKind::Memory });
    if store == StoreKind::IndexedDb && !has_idb {
        return Err(Error::invalid(
            "cache.store",
            "\"indexeddb\" needs a global indexedDB (a browser, or fake-indexeddb in Node)",
        ));
    }
    let local_options = LocalOptions {
        store,
        name: config.cache.name.clone(),
        max_entries: config.cache.max_entries,
        ttl_ms: config.cache.ttl_ms,
        policy: config.read_policy,
        queue_writes: config.queue_writes.unwrap_or(browser),
        conflict: config.conflict,
        resolver,
    };
    let seed = (js_sys::Math::random() * 9_007_199_254_740_991.0) as u64 ^ now_ms();
    let mut router = Router::new(config, seed);
    let tab = router.new_id(now_ms());
    let local = Local::open(local_options, tab).await;
    let driver = Driver::new(router, fetch).map_err(|e| Error::Unavailable { message: message_of(&e) })?;
    let client = Client { driver, local };
    client.wire();
    Ok(client)
}

impl Client {
    /// Hooks the outbox to the topology (flush when a primary appears, and now if anything is queued),
    /// other tabs' changes to `change` events, and the browser's `online` event to a flush.
    fn wire(&self) {
        let (d, l) = (Rc::downgrade(&self.driver), Rc::downgrade(&self.local));
        let flush_soon = move || {
            if let (Some(driver), Some(local)) = (d.upgrade(), l.upgrade()) {
                spawn_local(async move {
                    let _ = flush_once(&driver, &local).await;
                });
            }
        };
        self.driver.set_on_primary(Box::new(flush_soon.clone()));
        let (d, l) = (Rc::downgrade(&self.driver), Rc::downgrade(&self.local));
        self.local.set_on_remote(Box::new(move || {
            let (Some(driver), Some(local)) = (d.upgrade(), l.upgrade()) else {
                return;
            };
            for (collection, id, doc) in local.take_remote_changes() {
                let doc = doc.map(|d| doc_to_js(&d, true, false, None)).unwrap_or(JsValue::NULL);
                let payload = object(&[
                    ("collection", JsValue::from_str(&collection)),
                    ("id", JsValue::from_str(&id)),
                    ("doc", doc),
                    ("source", "tab".into()),
                ]);
                driver.emit("change", &payload);
            }
        }));
        if let Some(add) = get(&js_sys::global(), "addEventListener").dyn_ref::<Function>() {
            if in_browser() {
                let on_online = Closure::<dyn FnMut()>::new(flush_soon.clone());
                let _ = add.call2(&js_sys::global(), &"online".into(), on_online.as_ref());
                on_online.forget(); // lives as long as the page; a flush after close() is a no-op
            }
        }
        flush_soon();
        // A store that failed to open is reported on the next turn, once the app had a chance to subscribe.
        let (d, l) = (Rc::downgrade(&self.driver), Rc::downgrade(&self.local));
        let report = Closure::once_into_js(move || {
            if let (Some(driver), Some(local)) = (d.upgrade(), l.upgrade()) {
                report_store_errors(&driver, &local);
            }
        });
        Timer::start(report.unchecked_ref(), 0, true);
    }
}

#[wasm_bindgen]
impl Client {
    /// A handle on the collection `name` (`[A-Za-z0-9_-]{1,64}`).
    pub fn collection(&self, name: &str) -> Result<Collection, JsValue> {
        if self.driver.is_closed() {
            return Err(to_js(&Error::Aborted { message: "the client is closed".into() }));
        }
        let name = CollectionName::parse(name).map_err(|e| to_js(&e))?;
        Ok(Collection::new(name, self.driver.clone(), self.local.clone()))
    }

    /// A snapshot of every endpoint: url, nodeId, role, state, rttMs, lagMs, term, position, lastError, primary.
    pub fn topology(&self) -> JsValue {
        to_js_value(&self.driver.router().topology().describe())
    }

    /// The validated options, with defaults filled in (header values left out).
    #[wasm_bindgen(js_name = effectiveOptions)]
    pub fn effective_options(&self) -> JsValue {
        let router = self.driver.router();
        let c = router.config();
        let o = &self.local.options;
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
            "cache": {"store": o.store, "name": o.name, "maxEntries": o.max_entries, "ttlMs": o.ttl_ms},
            "readPolicy": o.policy,
            "offline": {"queueWrites": o.queue_writes},
            "conflict": conflict,
        });
        to_js_value(&view)
    }

    /// The highest position among this client's acknowledged writes (what its reads wait for).
    #[wasm_bindgen(js_name = sessionPosition)]
    pub fn session_position(&self) -> f64 {
        self.driver.router().session_position() as f64
    }

    /// The queued offline writes, oldest first.
    #[wasm_bindgen(js_name = pendingWrites)]
    pub async fn pending_writes(&self) -> JsValue {
        let list = js_sys::Array::new();
        for e in self.local.outbox().await {
            list.push(&entry_to_js(&e));
        }
        list.into()
    }

    /// Syncs the outbox now; resolves when it is empty, rejects with the first write that failed for good.
    /// While no primary is reachable it keeps waiting (use the client's events to show progress).
    pub async fn flush(&self) -> Result<(), JsValue> {
        loop {
            if self.driver.is_closed() {
                return Err(to_js(&Error::Aborted { message: "the client was closed".into() }));
            }
            match flush_once(&self.driver, &self.local).await {
                Ok(true) => return Ok(()),
                Err(f) => return Err(f.to_js()),
                Ok(false) => self.driver.wait_for_change(1000).await,
            }
        }
    }

    /// Removes every cached document and every queued write, in this tab and in the store (a user logging out).
    #[wasm_bindgen(js_name = clearCache)]
    pub async fn clear_cache(&self) {
        self.local.clear().await;
        report_store_errors(&self.driver, &self.local);
    }

    /// Subscribes `callback` to `event`; returns a function that unsubscribes it.
    pub fn on(&self, event: &str, callback: Function) -> Result<Function, JsValue> {
        if !EVENTS.contains(&event) {
            return Err(to_js(&Error::invalid("event", format!("{event:?} is not one of {}", EVENTS.join(", ")))));
        }
        Ok(self.driver.on(event, callback))
    }

    /// The number of subscribed listeners for `event`.
    #[wasm_bindgen(js_name = listenerCount)]
    pub fn listener_count(&self, event: &str) -> usize {
        self.driver.listener_count(event)
    }

    /// Stops health checks, in-flight work and tab messages; pending and later calls reject with `aborted`.
    pub async fn close(&self) {
        self.driver.close();
        self.local.close();
    }
}
