//! Sends the core's requests with `fetch` (the app's, or the global one) and turns what comes back into an
//! [`Outcome`]. A timeout aborts the request (AbortController), so a hung server is never waited on forever;
//! redirects are refused, so nothing a server says can send our headers to another host.
//!
//! The request is `fetch(url, init)` with a plain init object: one `Request` is built (by fetch itself), not
//! three (npm run bench measured gloo-net's builder, which parses the URL into two `Request`s first, as the
//! largest per-read cost of the SDK). The response is read through gloo-net's `Response`.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use gloo_net::http::Response as HttpResponse;
use js_sys::{Function, Object, Promise, Reflect};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;
use web_sys::{AbortController, AbortSignal};

use super::js::{get, Timer};
use crate::core::protocol::{
    Outcome, Request, Response, MAX_BODY_BYTES, NODE_HEADER, POSITION_HEADER, SESSION_LOST_HEADER, TERM_HEADER,
};

/// Why a send ended without an outcome.
pub enum Interrupted {
    /// The app's `AbortSignal` fired, or the client was closed.
    Aborted,
}

/// The requests in flight, so `close()` can abort them all (cheaper than linking every request's signal to a
/// long-lived one with `AbortSignal.any`).
#[derive(Default)]
pub struct InFlight {
    next: Cell<u32>,
    list: RefCell<Vec<(u32, AbortController)>>,
    closed: Cell<bool>,
}

impl InFlight {
    fn add(&self, c: &AbortController) -> u32 {
        let id = self.next.get().wrapping_add(1);
        self.next.set(id);
        self.list.borrow_mut().push((id, c.clone()));
        id
    }

    fn remove(&self, id: u32) {
        self.list.borrow_mut().retain(|(i, _)| *i != id);
    }

    /// Aborts every request in flight, and every later one at once.
    pub fn abort_all(&self) {
        self.closed.set(true);
        for (_, c) in self.list.borrow_mut().drain(..) {
            c.abort();
        }
    }
}

/// Sends `req` to `base_url` with `fetch`; returns the outcome and the round-trip time.
pub async fn send(
    fetch: &Function,
    base_url: &str,
    req: &Request,
    signal: Option<&AbortSignal>,
    in_flight: &InFlight,
) -> Result<(Outcome, f64), Interrupted> {
    if in_flight.closed.get() {
        return Err(Interrupted::Aborted);
    }
    let started = js_sys::Date::now();
    let Ok(controller) = AbortController::new() else {
        return Ok((Outcome::NetworkError("AbortController is not available".into()), 0.0));
    };
    let id = in_flight.add(&controller);
    let timed_out = Rc::new(Cell::new(false));
    let on_timeout = {
        let (c, flag) = (controller.clone(), timed_out.clone());
        Closure::once_into_js(move || {
            flag.set(true);
            c.abort();
        })
    };
    let timer = Timer::start(on_timeout.unchecked_ref(), req.timeout_ms, false);
    let result = fetch_once(fetch, base_url, req, &controller, signal).await;
    timer.cancel();
    in_flight.remove(id);
    let rtt = js_sys::Date::now() - started;
    let aborted_by_app = signal.is_some_and(|s| s.aborted()) || in_flight.closed.get();
    match result {
        Ok(outcome) => Ok((outcome, rtt)),
        Err(_) if timed_out.get() => Ok((Outcome::Timeout, rtt)),
        Err(_) if aborted_by_app => Err(Interrupted::Aborted),
        Err(message) => Ok((Outcome::NetworkError(message), rtt)),
    }
}

/// The signal for one request: its own controller's, joined with the app's only when the app passed one.
fn request_signal(controller: &AbortController, app: Option<&AbortSignal>) -> JsValue {
    let own = controller.signal();
    let Some(app) = app else { return own.into() };
    // AbortSignal.any (Node 20.3+, every current browser); without it, the app's signal is checked between
    // attempts only.
    let any = get(&get(&js_sys::global(), "AbortSignal"), "any");
    match any.dyn_ref::<Function>() {
        Some(any) => any.call1(&JsValue::UNDEFINED, &js_sys::Array::of2(&own, app)).unwrap_or(own.into()),
        None => own.into(),
    }
}

async fn fetch_once(
    fetch: &Function,
    base_url: &str,
    req: &Request,
    controller: &AbortController,
    app_signal: Option<&AbortSignal>,
) -> Result<Outcome, String> {
    let headers = Object::new();
    for (k, v) in &req.headers {
        let _ = Reflect::set(&headers, &JsValue::from_str(k), &JsValue::from_str(v));
    }
    let init = Object::new();
    let set = |k: &str, v: &JsValue| {
        let _ = Reflect::set(&init, &JsValue::from_str(k), v);
    };
    set("method", &JsValue::from_str(req.method.as_str()));
    set("headers", &headers);
    set("redirect", &JsValue::from_str("error"));
    set("signal", &request_signal(controller, app_signal));
    if let Some(body) = &req.body {
        set("body", &JsValue::from_str(body));
    }
    let url = JsValue::from_str(&format!("{base_url}{}", req.path));
    let promise: Promise = fetch
        .call2(&JsValue::UNDEFINED, &url, &init)
        .map_err(describe)?
        .dyn_into()
        .map_err(|_| "fetch did not return a promise".to_string())?;
    let response: web_sys::Response = JsFuture::from(promise)
        .await
        .map_err(describe)?
        .dyn_into()
        .map_err(|_| "fetch did not resolve to a Response".to_string())?;
    let response = HttpResponse::from(response);
    let headers = response.headers();
    if let Some(len) = headers.get("content-length").and_then(|l| l.parse::<usize>().ok()) {
        if len > MAX_BODY_BYTES {
            return Err(format!("response of {len} bytes is over the {MAX_BODY_BYTES}-byte limit"));
        }
    }
    // Read with the bound even when a length is declared: the length is of the encoded body, and a compressed
    // body decodes to far more (the `Content-Encoding` header is not even visible to a cross-origin page).
    let body = read_bounded(&response).await?;
    Ok(Outcome::Response(Response {
        status: response.status(),
        node: headers.get(NODE_HEADER),
        position: headers.get(POSITION_HEADER).and_then(|p| p.trim().parse().ok()),
        term: headers.get(TERM_HEADER).and_then(|p| p.trim().parse().ok()),
        session_lost: headers.get(SESSION_LOST_HEADER).is_some(),
        body,
    }))
}
/// Reads a body chunk by chunk, giving up past [`MAX_BODY_BYTES`] of decoded bytes (a server streaming forever,
/// or a small compressed body that decodes to gigabytes, must not exhaust memory).
async fn read_bounded(response: &HttpResponse) -> Result<String, String> {
    let Some(stream) = response.body() else {
        return Ok(String::new());
    };
    let reader = get(&stream, "getReader")
        .dyn_ref::<Function>()
        .and_then(|f| f.call0(&stream).ok())
        .ok_or("the response body cannot be read")?;
    let read = get(&reader, "read").dyn_into::<Function>().map_err(|_| "the response body cannot be read")?;
    let mut bytes: Vec<u8> = Vec::new();
    loop {
        let next: Promise = read.call0(&reader).map_err(describe)?.dyn_into().map_err(|_| "bad body reader")?;
        let chunk = JsFuture::from(next).await.map_err(describe)?;
        if get(&chunk, "done").is_truthy() {
            break;
        }
        let value: js_sys::Uint8Array = get(&chunk, "value").dyn_into().map_err(|_| "bad body chunk")?;
        if bytes.len() + value.length() as usize > MAX_BODY_BYTES {
            if let Some(cancel) = get(&reader, "cancel").dyn_ref::<Function>() {
                let _ = cancel.call0(&reader);
            }
            return Err(format!("response body over the {MAX_BODY_BYTES}-byte limit"));
        }
        let start = bytes.len();
        bytes.resize(start + value.length() as usize, 0);
        value.copy_to(&mut bytes[start..]);
    }
    String::from_utf8(bytes).map_err(|_| "the response body is not UTF-8".to_string())
}

fn describe(e: JsValue) -> String {
    let message = js_sys::Reflect::get(&e, &"message".into()).ok().and_then(|m| m.as_string());
    let cause = js_sys::Reflect::get(&e, &"cause".into())
        .ok()
        .and_then(|c| js_sys::Reflect::get(&c, &"code".into()).ok())
        .and_then(|c| c.as_string());
    match (message, cause) {
        (Some(m), Some(c)) => format!("{m} ({c})"),
        (Some(m), None) => m,
        _ => e.as_string().unwrap_or_else(|| "network error".to_string()),
    }
}
