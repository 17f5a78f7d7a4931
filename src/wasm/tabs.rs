//! The BroadcastChannel that keeps a browser's tabs in step: posts the core's `TabMessage`s and hands other tabs'
//! messages back to it.

use js_sys::{Function, Reflect};
use wasm_bindgen::prelude::*;

use super::js::{get, object};
use crate::cache::{entry_from_value, entry_to_value};
use crate::core::client::TabMessage;

/// The `onmessage` closure (kept alive while the channel is open).
type MessageHandler = Closure<dyn FnMut(JsValue)>;

/// The channel of one client, with its tab id (its own messages come back to it and are ignored).
pub struct Tabs {
    channel: JsValue,
    tab: String,
    on_message: std::cell::RefCell<Option<MessageHandler>>,
}

impl Tabs {
    /// Opens `replikit:{name}`, if this environment has BroadcastChannel.
    pub fn open(name: &str, tab: String) -> Option<Tabs> {
        let class = get(&js_sys::global(), "BroadcastChannel");
        let class = class.dyn_ref::<Function>()?;
        let channel =
            Reflect::construct(class, &js_sys::Array::of1(&JsValue::from_str(&format!("replikit:{name}")))).ok()?;
        // Node's BroadcastChannel holds the process open unless unref'ed.
        if let Some(unref) = get(&channel, "unref").dyn_ref::<Function>() {
            let _ = unref.call0(&channel);
        }
        Some(Tabs { channel, tab, on_message: std::cell::RefCell::new(None) })
    }

    pub fn post(&self, message: &TabMessage) {
        let msg = match message {
            TabMessage::Clear => object(&[("type", "clear".into()), ("tab", JsValue::from_str(&self.tab))]),
            TabMessage::Change { collection, id, entry } => {
                let entry =
                    entry.as_ref().map(|e| JsValue::from_str(&entry_to_value(e).to_string())).unwrap_or(JsValue::NULL);
                object(&[
                    ("type", "change".into()),
                    ("tab", JsValue::from_str(&self.tab)),
                    ("collection", JsValue::from_str(collection)),
                    ("id", JsValue::from_str(id)),
                    ("entry", entry),
                ])
            }
        };
        if let Some(post) = get(&self.channel, "postMessage").dyn_ref::<Function>() {
            let _ = post.call1(&self.channel, &msg);
        }
    }

    /// Calls `handler` with every well-formed message of another tab.
    pub fn listen(&self, mut handler: impl FnMut(TabMessage) + 'static) {
        let tab = self.tab.clone();
        let cb = Closure::<dyn FnMut(JsValue)>::new(move |event: JsValue| {
            let msg = get(&event, "data");
            if get(&msg, "tab").as_string().as_deref() == Some(tab.as_str()) {
                return;
            }
            if let Some(message) = parse(&msg) {
                handler(message);
            }
        });
        let _ = Reflect::set(&self.channel, &"onmessage".into(), cb.as_ref());
        *self.on_message.borrow_mut() = Some(cb);
    }

    pub fn close(&self) {
        let _ = Reflect::set(&self.channel, &"onmessage".into(), &JsValue::NULL);
        if let Some(close) = get(&self.channel, "close").dyn_ref::<Function>() {
            let _ = close.call0(&self.channel);
        }
        self.on_message.borrow_mut().take();
    }
}

fn parse(msg: &JsValue) -> Option<TabMessage> {
    match get(msg, "type").as_string().as_deref() {
        Some("clear") => Some(TabMessage::Clear),
        Some("change") => {
            let collection = get(msg, "collection").as_string()?;
            let id = get(msg, "id").as_string()?;
            let entry = get(msg, "entry")
                .as_string()
                .and_then(|s| serde_json::from_str::<serde_json::Value>(&s).ok())
                .and_then(|v| entry_from_value(&v).ok());
            Some(TabMessage::Change { collection, id, entry })
        }
        _ => None,
    }
}
