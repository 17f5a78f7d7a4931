//! `createClient`, `Client` and `Collection` as JavaScript sees them.

use std::cell::RefCell;
use std::rc::Rc;

use serde::Serialize;
use wasm_bindgen::prelude::*;

use super::errors::to_js;
use crate::core::{Config, CollectionName, Error, Topology};

/// Events a client emits; `on()` rejects any other name so a typo is caught.
const EVENTS: &[&str] = &["topology", "primary", "endpointDown", "endpointUp", "retry"];

/// Serializes as plain JS objects (not `Map`s), as JSON would.
pub(crate) fn to_js_value<T: Serialize + ?Sized>(value: &T) -> JsValue {
    let serializer = serde_wasm_bindgen::Serializer::json_compatible();
    value.serialize(&serializer).unwrap_or(JsValue::NULL)
}

fn from_js_value(value: JsValue, what: &str) -> Result<serde_json::Value, Error> {
    serde_wasm_bindgen::from_value(value)
        .map_err(|e| Error::invalid(what, format!("is not plain JSON data: {e}")))
}

struct Listener {
    id: u32,
    event: String,
    callback: js_sys::Function,
}

impl Inner {
    /// Calls every listener of `event` with `payload`. A listener that throws is reported to the console
    /// and does not stop the others (an app's bug must not break the client's bookkeeping).
    #[allow(dead_code)] // the health checks and failover (issue 4) emit through here
    fn emit(&self, event: &str, payload: &JsValue) {
        for l in self.listeners.iter().filter(|l| l.event == event) {
            if let Err(e) = l.callback.call1(&JsValue::UNDEFINED, payload) {
                web_sys::console::error_2(&JsValue::from_str("replikit: a listener threw"), &e);
            }
        }
    }
}

struct Inner {
    config: Config,
    topology: Topology,
    listeners: Vec<Listener>,
    next_listener: u32,
    closed: bool,
}

/// A Replikit client. Create one with `createClient(options)`.
#[wasm_bindgen]
pub struct Client {
    inner: Rc<RefCell<Inner>>,
}

/// Validates `options` and returns a client. Prefer the `createClient` of the package entry, which also
/// loads the module.
#[wasm_bindgen(js_name = createClient)]
pub fn create_client(options: JsValue) -> Result<Client, JsValue> {
    let options = if options.is_undefined() || options.is_null() {
        return Err(to_js(&Error::invalid("options", "createClient needs an options object")));
    } else {
        from_js_value(options, "options").map_err(|e| to_js(&e))?
    };
    let config = Config::from_json(options).map_err(|e| to_js(&e))?;
    let topology = Topology::new(&config);
    Ok(Client {
        inner: Rc::new(RefCell::new(Inner {
            config,
            topology,
            listeners: Vec::new(),
            next_listener: 1,
            closed: false,
        })),
    })
}

#[wasm_bindgen]
impl Client {
    /// A handle on the collection `name` (`[A-Za-z0-9_-]{1,64}`).
    pub fn collection(&self, name: &str) -> Result<Collection, JsValue> {
        if self.inner.borrow().closed {
            return Err(to_js(&Error::Aborted { message: "the client is closed".into() }));
        }
        let name = CollectionName::parse(name).map_err(|e| to_js(&e))?;
        Ok(Collection { name })
    }

    /// A snapshot of every endpoint: url, nodeId, role, state, rttMs, lagMs, term, position, lastError.
    pub fn topology(&self) -> JsValue {
        to_js_value(&self.inner.borrow().topology.describe())
    }

    /// The validated options, with defaults filled in (handy for logging a deployment's effective config).
    #[wasm_bindgen(js_name = effectiveOptions)]
    pub fn effective_options(&self) -> JsValue {
        let inner = self.inner.borrow();
        let c = &inner.config;
        let view = serde_json::json!({
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
        });
        to_js_value(&view)
    }

    /// Subscribes `callback` to `event`; returns a function that unsubscribes it.
    pub fn on(&self, event: &str, callback: js_sys::Function) -> Result<js_sys::Function, JsValue> {
        if !EVENTS.contains(&event) {
            return Err(to_js(&Error::invalid(
                "event",
                format!("{event:?} is not one of {}", EVENTS.join(", ")),
            )));
        }
        let mut inner = self.inner.borrow_mut();
        let id = inner.next_listener;
        inner.next_listener += 1;
        inner.listeners.push(Listener { id, event: event.to_string(), callback });
        let weak = Rc::downgrade(&self.inner);
        // FnMut, not once: calling the unsubscribe function twice must be harmless, not a throw.
        let unsubscribe = Closure::<dyn FnMut()>::new(move || {
            if let Some(inner) = weak.upgrade() {
                inner.borrow_mut().listeners.retain(|l| l.id != id);
            }
        });
        Ok(unsubscribe.into_js_value().unchecked_into())
    }

    /// The number of subscribed listeners for `event`.
    #[wasm_bindgen(js_name = listenerCount)]
    pub fn listener_count(&self, event: &str) -> usize {
        self.inner.borrow().listeners.iter().filter(|l| l.event == event).count()
    }

    /// Stops the client: listeners are dropped and further calls reject with `aborted`.
    pub async fn close(&self) {
        let mut inner = self.inner.borrow_mut();
        inner.closed = true;
        inner.listeners.clear();
    }
}

/// A handle on one collection of documents.
#[wasm_bindgen]
pub struct Collection {
    name: CollectionName,
}

#[wasm_bindgen]
impl Collection {
    /// The collection's name.
    #[wasm_bindgen(getter)]
    pub fn name(&self) -> String {
        self.name.as_str().to_string()
    }
}
