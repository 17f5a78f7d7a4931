//! Sends the core's requests with `fetch` (the app's, or the global one) and turns what comes back into an
//! [`Outcome`]. A timeout aborts the request (AbortController), so a hung server is never waited on forever;
//! redirects are refused, so nothing a server says can send our headers to another host.

use gloo_net::http::{Method as HttpMethod, RequestBuilder, Response as HttpResponse};
use js_sys::{Function, Promise};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;
use web_sys::{AbortController, AbortSignal, RequestRedirect};

use super::js::Timer;
use crate::core::protocol::{Method, Outcome, Request, Response, MAX_BODY_BYTES, NODE_HEADER, POSITION_HEADER};

/// Why a send ended without an outcome.
pub enum Interrupted {
    /// The app's `AbortSignal` fired, or the client was closed.
    Aborted,
}

/// Sends `req` to `base_url` with `fetch`; returns the outcome and the round-trip time.
pub async fn send(
    fetch: &Function,
    base_url: &str,
    req: &Request,
    signal: Option<&AbortSignal>,
    closing: &AbortSignal,
) -> Result<(Outcome, f64), Interrupted> {
    let started = js_sys::Date::now();
    let controller = AbortController::new().ok();
    let timed_out = std::rc::Rc::new(std::cell::Cell::new(false));
    let timer = controller.as_ref().map(|c| {
        let c = c.clone();
        let flag = timed_out.clone();
        let on_timeout = Closure::once_into_js(move || {
            flag.set(true);
            c.abort();
        });
        Timer::start(on_timeout.unchecked_ref(), req.timeout_ms, false)
    });
    let result = fetch_once(fetch, base_url, req, controller.as_ref(), signal, closing).await;
    if let Some(t) = timer {
        t.cancel();
    }
    let rtt = js_sys::Date::now() - started;
    let aborted_by_app = signal.is_some_and(|s| s.aborted()) || closing.aborted();
    match result {
        Ok(outcome) => Ok((outcome, rtt)),
        Err(_) if timed_out.get() => Ok((Outcome::Timeout, rtt)),
        Err(_) if aborted_by_app => Err(Interrupted::Aborted),
        Err(message) => Ok((Outcome::NetworkError(message), rtt)),
    }
}

fn method(m: Method) -> HttpMethod {
    match m {
        Method::Get => HttpMethod::GET,
        Method::Post => HttpMethod::POST,
        Method::Put => HttpMethod::PUT,
        Method::Patch => HttpMethod::PATCH,
        Method::Delete => HttpMethod::DELETE,
    }
}

/// Links the timeout controller with the app's signal and the client's closing signal.
fn combined_signal(controller: Option<&AbortController>, others: &[&AbortSignal]) -> Option<AbortSignal> {
    let own = controller.map(|c| c.signal())?;
    let list = js_sys::Array::new();
    list.push(&own);
    for s in others {
        list.push(s);
    }
    // AbortSignal.any (Node 20.3+, every current browser); without it, only the timeout aborts.
    let class = js_sys::Reflect::get(&js_sys::global(), &"AbortSignal".into()).unwrap_or(JsValue::UNDEFINED);
    let any = js_sys::Reflect::get(&class, &"any".into()).ok().and_then(|f| f.dyn_into::<Function>().ok());
    match any {
        Some(any) => any
            .call1(&JsValue::UNDEFINED, &list)
            .ok()
            .and_then(|s| s.dyn_into::<AbortSignal>().ok())
            .or(Some(own)),
        None => Some(own),
    }
}

async fn fetch_once(
    fetch: &Function,
    base_url: &str,
    req: &Request,
    controller: Option<&AbortController>,
    signal: Option<&AbortSignal>,
    closing: &AbortSignal,
) -> Result<Outcome, String> {
    let mut others: Vec<&AbortSignal> = vec![closing];
    if let Some(s) = signal {
        others.push(s);
    }
    let abort = combined_signal(controller, &others);
    let mut builder = RequestBuilder::new(&format!("{base_url}{}", req.path))
        .method(method(req.method))
        .redirect(RequestRedirect::Error)
        .abort_signal(abort.as_ref());
    for (k, v) in &req.headers {
        builder = builder.header(k, v);
    }
    let request = match &req.body {
        Some(body) => builder.body(body.as_str()),
        None => builder.build(),
    }
    .map_err(|e| e.to_string())?;
    let raw: web_sys::Request = request.into();
    let promise: Promise = fetch
        .call1(&JsValue::UNDEFINED, &raw)
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
    let body = response.text().await.map_err(|e| e.to_string())?;
    Ok(Outcome::Response(Response {
        status: response.status(),
        node: headers.get(NODE_HEADER),
        position: headers.get(POSITION_HEADER).and_then(|p| p.trim().parse().ok()),
        body,
    }))
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
