//! `createClient`, `Client` and `Collection` as JavaScript sees them.

use std::rc::Rc;

use js_sys::{Function, Object, Reflect};
use serde::Serialize;
use serde_json::{Map, Value};
use wasm_bindgen::prelude::*;
use web_sys::AbortSignal;

use super::driver::Driver;
use super::errors::to_js;
use super::js::{get, now_ms};
use crate::core::fields::Fields;
use crate::core::options::{DURABILITIES, READ_PREFERENCES};
use crate::core::{
    check_data, check_id, Action, CallOptions, CollectionName, Config, Durability, Error, ReadPreference, Reply,
    Router,
};

/// Events a client emits; `on()` rejects any other name so a typo is caught.
const EVENTS: &[&str] = &["topology", "primary", "endpointDown", "endpointUp", "retry"];

/// Serializes as plain JS objects (not `Map`s), as JSON would.
pub(crate) fn to_js_value<T: Serialize + ?Sized>(value: &T) -> JsValue {
    let serializer = serde_wasm_bindgen::Serializer::json_compatible();
    value.serialize(&serializer).unwrap_or(JsValue::NULL)
}

/// JSON text to a JS value through `JSON.parse`: keys such as `__proto__` become own properties, never a
/// prototype.
fn parse_to_js<T: Serialize>(value: &T) -> JsValue {
    serde_json::to_string(value)
        .ok()
        .and_then(|s| js_sys::JSON::parse(&s).ok())
        .unwrap_or(JsValue::NULL)
}

/// A JS value to JSON through `JSON.stringify` (its usual rules: `toJSON`, dates as strings).
fn json_of(value: &JsValue, what: &str) -> Result<Value, Error> {
    if value.is_undefined() {
        return Err(Error::invalid(what, "is required"));
    }
    let text = js_sys::JSON::stringify(value)
        .map_err(|e| Error::invalid(what, format!("cannot be serialized as JSON: {}", message_of(&e))))?;
    let text: String = text.into();
    serde_json::from_str(&text).map_err(|e| Error::invalid(what, format!("is not valid JSON data: {e}")))
}

fn message_of(e: &JsValue) -> String {
    get(e, "message").as_string().unwrap_or_else(|| format!("{e:?}"))
}

/// A Replikit client. Create one with `createClient(options)`.
#[wasm_bindgen]
pub struct Client {
    driver: Rc<Driver>,
}

/// Validates `options` and returns a client that starts health-checking at once. Prefer the package entry's
/// `createClient`, which also loads the module.
#[wasm_bindgen(js_name = createClient)]
pub fn create_client(options: JsValue) -> Result<Client, JsValue> {
    create(options).map_err(|e| to_js(&e))
}

fn create(options: JsValue) -> Result<Client, Error> {
    if !options.is_object() {
        return Err(Error::invalid("options", "createClient needs an options object"));
    }
    // `fetch` is a function, not JSON: take it out before the rest is parsed.
    let copy = Object::assign(&Object::new(), options.unchecked_ref());
    let fetch = get(&copy, "fetch");
    let _ = Reflect::delete_property(&copy, &"fetch".into());
    let fetch: Function = if fetch.is_undefined() {
        get(&js_sys::global(), "fetch")
            .dyn_into()
            .map_err(|_| Error::invalid("fetch", "no global fetch here; pass options.fetch"))?
    } else {
        fetch.dyn_into().map_err(|_| Error::invalid("fetch", "must be a function"))?
    };
    let json = json_of(&copy.into(), "options")?;
    let config = Config::from_json(json)?;
    let seed = (js_sys::Math::random() * 9_007_199_254_740_991.0) as u64 ^ now_ms();
    let driver = Driver::new(Router::new(config, seed), fetch)
        .map_err(|e| Error::Unavailable { message: message_of(&e) })?;
    Ok(Client { driver })
}

#[wasm_bindgen]
impl Client {
    /// A handle on the collection `name` (`[A-Za-z0-9_-]{1,64}`).
    pub fn collection(&self, name: &str) -> Result<Collection, JsValue> {
        if self.driver.is_closed() {
            return Err(to_js(&Error::Aborted { message: "the client is closed".into() }));
        }
        let name = CollectionName::parse(name).map_err(|e| to_js(&e))?;
        Ok(Collection { name, driver: self.driver.clone() })
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

    /// The highest position among this client's acknowledged writes (what its reads wait for).
    #[wasm_bindgen(js_name = sessionPosition)]
    pub fn session_position(&self) -> f64 {
        self.driver.router().session_position() as f64
    }

    /// Subscribes `callback` to `event`; returns a function that unsubscribes it.
    pub fn on(&self, event: &str, callback: Function) -> Result<Function, JsValue> {
        if !EVENTS.contains(&event) {
            return Err(to_js(&Error::invalid(
                "event",
                format!("{event:?} is not one of {}", EVENTS.join(", ")),
            )));
        }
        Ok(self.driver.on(event, callback))
    }

    /// The number of subscribed listeners for `event`.
    #[wasm_bindgen(js_name = listenerCount)]
    pub fn listener_count(&self, event: &str) -> usize {
        self.driver.listener_count(event)
    }

    /// Stops health checks and in-flight work; pending and later calls reject with `aborted`.
    pub async fn close(&self) {
        self.driver.close();
    }
}

/// A handle on one collection of documents.
#[wasm_bindgen]
pub struct Collection {
    name: CollectionName,
    driver: Rc<Driver>,
}

/// Per-call options, read from the JS object (after `signal` was taken out).
#[derive(Default)]
struct RawCallOptions {
    id: Option<String>,
    if_version: Option<u64>,
    read_preference: Option<ReadPreference>,
    durability: Option<Durability>,
    limit: Option<u32>,
    after: Option<String>,
}

/// Per-call options: `signal` is taken out, the rest must be among the keys this call accepts.
fn call_options(options: &JsValue, allowed: &[&'static str]) -> Result<(RawCallOptions, Option<AbortSignal>), Error> {
    if options.is_undefined() || options.is_null() {
        return Ok((RawCallOptions::default(), None));
    }
    if !options.is_object() {
        return Err(Error::invalid("options", "must be an object"));
    }
    let copy = Object::assign(&Object::new(), options.unchecked_ref());
    let signal = get(&copy, "signal");
    let _ = Reflect::delete_property(&copy, &"signal".into());
    let signal = if signal.is_undefined() {
        None
    } else {
        Some(signal.dyn_into::<AbortSignal>().map_err(|_| Error::invalid("signal", "must be an AbortSignal"))?)
    };
    let json = json_of(&copy.into(), "options")?;
    let mut f = Fields::new(&json, "")?;
    let mut raw = RawCallOptions::default();
    for &key in allowed {
        match key {
            "id" => raw.id = f.string("id")?,
            "ifVersion" => raw.if_version = f.u64("ifVersion")?,
            "readPreference" => raw.read_preference = f.one_of("readPreference", READ_PREFERENCES)?,
            "durability" => raw.durability = f.one_of("durability", DURABILITIES)?,
            "limit" => raw.limit = f.u32("limit")?,
            "after" => raw.after = f.string("after")?,
            _ => {}
        }
    }
    f.finish()?;
    Ok((raw, signal))
}

/// A document id argument: a string within the protocol's rules.
fn id_of(value: &JsValue) -> Result<String, JsValue> {
    let id = value.as_string().ok_or_else(|| to_js(&Error::invalid("id", "must be a string")))?;
    check_id(&id).map_err(|e| to_js(&e))?;
    Ok(id)
}

fn object_of(value: &JsValue, what: &str) -> Result<Map<String, Value>, Error> {
    let json = json_of(value, what)?;
    check_data(json).map_err(|e| match e {
        Error::InvalidArgument { message, .. } => Error::invalid(what, message),
        other => other,
    })
}

impl Collection {
    async fn call(&self, action: Action, raw: RawCallOptions, signal: Option<AbortSignal>) -> Result<JsValue, JsValue> {
        let options = CallOptions { read_preference: raw.read_preference, durability: raw.durability };
        let completed = self.driver.run(action, options, signal).await?;
        Ok(match completed.reply {
            Reply::Doc(doc) => parse_to_js(&doc),
            Reply::Missing => JsValue::NULL,
            Reply::Deleted => JsValue::UNDEFINED,
            Reply::Page(page) => parse_to_js(&page),
        })
    }

    fn name(&self) -> CollectionName {
        self.name.clone()
    }
}

#[wasm_bindgen]
impl Collection {
    /// The collection's name.
    #[wasm_bindgen(getter, js_name = name)]
    pub fn name_js(&self) -> String {
        self.name.as_str().to_string()
    }

    /// Creates a document (a UUIDv7 id unless `options.id` is given). Resolves to the stored `Doc`.
    pub async fn create(&self, data: JsValue, options: JsValue) -> Result<JsValue, JsValue> {
        let prepared = (|| {
            let data = object_of(&data, "data")?;
            let (raw, signal) = call_options(&options, &["id", "durability"])?;
            Ok::<_, Error>((data, raw, signal))
        })();
        let (data, raw, signal) = prepared.map_err(|e| to_js(&e))?;
        let id = match &raw.id {
            Some(id) => {
                check_id(id).map_err(|e| to_js(&e))?;
                id.clone()
            }
            None => self.driver.new_id(),
        };
        self.call(Action::Create { collection: self.name(), id, data }, raw, signal).await
    }

    /// The document `id`, or null when there is none.
    pub async fn get(&self, id: JsValue, options: JsValue) -> Result<JsValue, JsValue> {
        let id = id_of(&id)?;
        let (raw, signal) = call_options(&options, &["readPreference"]).map_err(|e| to_js(&e))?;
        self.call(Action::Get { collection: self.name(), id }, raw, signal).await
    }

    /// Creates or replaces the document `id` with `data`; `ifVersion` makes it conditional.
    pub async fn replace(&self, id: JsValue, data: JsValue, options: JsValue) -> Result<JsValue, JsValue> {
        let id = id_of(&id)?;
        let data = object_of(&data, "data").map_err(|e| to_js(&e))?;
        let (raw, signal) = call_options(&options, &["ifVersion", "durability"]).map_err(|e| to_js(&e))?;
        let if_version = raw.if_version;
        self.call(Action::Replace { collection: self.name(), id, data, if_version }, raw, signal).await
    }

    /// Applies a JSON merge patch (RFC 7396: `null` removes a field) to the document `id`.
    pub async fn update(&self, id: JsValue, patch: JsValue, options: JsValue) -> Result<JsValue, JsValue> {
        let id = id_of(&id)?;
        let patch = object_of(&patch, "patch").map_err(|e| to_js(&e))?;
        let (raw, signal) = call_options(&options, &["ifVersion", "durability"]).map_err(|e| to_js(&e))?;
        let if_version = raw.if_version;
        self.call(Action::Update { collection: self.name(), id, patch, if_version }, raw, signal).await
    }

    /// Deletes the document `id`.
    pub async fn delete(&self, id: JsValue, options: JsValue) -> Result<JsValue, JsValue> {
        let id = id_of(&id)?;
        let (raw, signal) = call_options(&options, &["ifVersion", "durability"]).map_err(|e| to_js(&e))?;
        let if_version = raw.if_version;
        self.call(Action::Delete { collection: self.name(), id, if_version }, raw, signal).await
    }

    /// One page of documents ordered by id: `{ items, next }`; pass `next` as `after` for the next page.
    pub async fn list(&self, options: JsValue) -> Result<JsValue, JsValue> {
        let (raw, signal) = call_options(&options, &["limit", "after", "readPreference"]).map_err(|e| to_js(&e))?;
        if raw.limit.is_some_and(|l| !(1..=1000).contains(&l)) {
            return Err(to_js(&Error::invalid("limit", "must be between 1 and 1000")));
        }
        let (limit, after) = (raw.limit, raw.after.clone());
        self.call(Action::List { collection: self.name(), limit, after }, raw, signal).await
    }
}
