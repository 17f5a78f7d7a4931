//! The driver: runs the core's [`Router`] against the real world.
//!
//! It owns the only timer (the next health check, `unref`ed in Node so a script can exit), sends what the
//! router hands out, feeds back what comes back, and forwards the router's events to the app's listeners.
//! After every input it `pump`s: sends due health checks, dispatches events, wakes waiting operations and
//! re-arms the timer (quinn's `poll_*` loop).

use std::cell::{Cell, RefCell};
use std::rc::{Rc, Weak};

use js_sys::Function;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::spawn_local;
use web_sys::AbortSignal;

use super::errors::to_js;
use super::http::{send, InFlight, Interrupted};
use super::js::{now_ms, object, sleep_or_wake, Timer};
use crate::core::{Action, CallOptions, Completed, Error, Event, Operation, Router, Step};

/// A failed call: the core's error, and where it happened (for the JS error's `endpoint` and `status`).
#[derive(Debug)]
pub struct Failure {
    pub error: Error,
    pub endpoint: Option<String>,
    pub status: Option<u16>,
}

impl Failure {
    pub fn to_js(&self) -> JsValue {
        let js = to_js(&self.error);
        if let Some(url) = &self.endpoint {
            let _ = js_sys::Reflect::set(&js, &"endpoint".into(), &JsValue::from_str(url));
        }
        if let Some(status) = self.status {
            let _ = js_sys::Reflect::set(&js, &"status".into(), &JsValue::from_f64(status as f64));
        }
        js
    }
}

impl From<Error> for Failure {
    fn from(error: Error) -> Self {
        Failure { error, endpoint: None, status: None }
    }
}

struct Listener {
    id: u32,
    event: String,
    callback: Function,
}

/// Shared state of one client.
pub struct Driver {
    router: RefCell<Router>,
    fetch: Function,
    timer: RefCell<Option<(u64, Timer)>>,
    tick: RefCell<Option<Closure<dyn FnMut()>>>,
    wakers: RefCell<Vec<Function>>,
    listeners: RefCell<Vec<Listener>>,
    next_listener: Cell<u32>,
    in_flight: InFlight,
    closed: Cell<bool>,
    visibility: RefCell<Option<Closure<dyn FnMut()>>>,
    /// Called when a primary appears (the outbox flushes then).
    on_primary: RefCell<Option<Box<dyn Fn()>>>,
}

impl Driver {
    pub fn new(router: Router, fetch: Function) -> Result<Rc<Driver>, JsValue> {
        let driver = Rc::new(Driver {
            router: RefCell::new(router),
            fetch,
            timer: RefCell::new(None),
            tick: RefCell::new(None),
            wakers: RefCell::new(Vec::new()),
            listeners: RefCell::new(Vec::new()),
            next_listener: Cell::new(1),
            in_flight: InFlight::default(),
            closed: Cell::new(false),
            visibility: RefCell::new(None),
            on_primary: RefCell::new(None),
        });
        let weak = Rc::downgrade(&driver);
        *driver.tick.borrow_mut() = Some(Closure::new(move || {
            if let Some(d) = weak.upgrade() {
                d.timer.borrow_mut().take();
                d.pump();
            }
        }));
        driver.watch_visibility();
        driver.pump();
        Ok(driver)
    }

    pub fn router(&self) -> std::cell::Ref<'_, Router> {
        self.router.borrow()
    }

    /// A new UUIDv7 from the router's seeded generator.
    pub fn new_id(&self) -> String {
        self.router.borrow_mut().new_id(now_ms())
    }

    pub fn is_closed(&self) -> bool {
        self.closed.get()
    }

    /// Sends due health checks, dispatches events, wakes waiters, re-arms the timer.
    fn pump(self: &Rc<Self>) {
        if self.closed.get() {
            return;
        }
        let now = now_ms();
        let checks = self.router.borrow_mut().poll_health_checks(now);
        for req in checks {
            let d = self.clone();
            spawn_local(async move {
                let url = d.router.borrow().topology().url(req.endpoint).to_string();
                let sent = send(&d.fetch, &url, &req, None, &d.in_flight).await;
                if let Ok((outcome, rtt)) = sent {
                    d.router.borrow_mut().handle_health(req.endpoint, now_ms(), rtt, outcome);
                    d.pump();
                }
            });
        }
        self.dispatch_events();
        let next = self.router.borrow().poll_timeout();
        let mut timer = self.timer.borrow_mut();
        match (next, timer.as_ref()) {
            (Some(at), Some((armed, _))) if *armed <= at => {}
            (Some(at), _) => {
                if let Some((_, t)) = timer.take() {
                    t.cancel();
                }
                let tick = self.tick.borrow();
                let f: &Function = tick.as_ref().expect("set in new").as_ref().unchecked_ref();
                *timer = Some((at, Timer::start(f, at.saturating_sub(now), true)));
            }
            (None, _) => {}
        }
    }

    fn dispatch_events(&self) {
        let mut any = false;
        let mut primary_found = false;
        loop {
            let event = self.router.borrow_mut().poll_event();
            let Some(event) = event else { break };
            any = true;
            // A primary appeared, or (multi-primary) a node that takes writes came up.
            primary_found |= match &event {
                Event::Primary { url: Some(_), .. } => true,
                Event::EndpointUp(view) => view.writable,
                _ => false,
            };
            let (name, payload) = event_to_js(&event);
            self.emit(name, &payload);
        }
        if any {
            for w in self.wakers.borrow_mut().drain(..) {
                let _ = w.call0(&JsValue::UNDEFINED);
            }
        }
        if primary_found {
            if let Some(hook) = self.on_primary.borrow().as_ref() {
                hook();
            }
        }
    }

    /// Sets what to do when a primary appears.
    pub fn set_on_primary(&self, hook: Box<dyn Fn()>) {
        *self.on_primary.borrow_mut() = Some(hook);
    }

    /// Resolves after `ms`, or sooner when the topology changes.
    pub async fn wait_for_change(&self, ms: u64) {
        sleep_or_wake(ms, &self.wakers).await;
    }

    /// Calls the app's listeners of `event`; a listener that throws is reported and does not stop the others.
    pub fn emit(&self, event: &str, payload: &JsValue) {
        let targets: Vec<Function> =
            self.listeners.borrow().iter().filter(|l| l.event == event).map(|l| l.callback.clone()).collect();
        for f in targets {
            if let Err(e) = f.call1(&JsValue::UNDEFINED, payload) {
                web_sys::console::error_2(&JsValue::from_str("replikit: a listener threw"), &e);
            }
        }
    }

    /// Runs one call to completion. A failure carries the endpoint and HTTP status of the last attempt.
    pub async fn run(
        self: &Rc<Self>,
        action: Action,
        options: CallOptions,
        signal: Option<AbortSignal>,
    ) -> Result<Completed, Failure> {
        let mut op = self.router.borrow_mut().start(action, options, now_ms());
        let result = self.drive(&mut op, signal).await;
        result.map_err(|error| Failure {
            error,
            endpoint: op.last_endpoint().map(|id| self.router.borrow().topology().url(id).to_string()),
            status: op.last_status(),
        })
    }

    /// The endpoint URL of `id`.
    pub fn url(&self, id: crate::core::EndpointId) -> String {
        self.router.borrow().topology().url(id).to_string()
    }

    async fn drive(self: &Rc<Self>, op: &mut Operation, signal: Option<AbortSignal>) -> Result<Completed, Error> {
        let aborted = || Error::Aborted { message: "the operation was aborted".into() };
        loop {
            if self.closed.get() {
                return Err(Error::Aborted { message: "the client was closed".into() });
            }
            if signal.as_ref().is_some_and(|s| s.aborted()) {
                return Err(aborted());
            }
            let step = self.router.borrow_mut().step(op, now_ms());
            match step {
                Step::Done(result) => {
                    self.pump();
                    return result;
                }
                Step::Wait { until_ms } => {
                    self.pump();
                    let ms = until_ms.saturating_sub(now_ms()).max(1);
                    sleep_or_wake(ms, &self.wakers).await;
                }
                Step::Send(req) => {
                    let url = self.router.borrow().topology().url(req.endpoint).to_string();
                    let sent = send(&self.fetch, &url, &req, signal.as_ref(), &self.in_flight).await;
                    match sent {
                        Ok((outcome, _)) => self.router.borrow_mut().handle_outcome(op, now_ms(), outcome),
                        Err(Interrupted::Aborted) if self.closed.get() => {
                            return Err(Error::Aborted { message: "the client was closed".into() })
                        }
                        Err(Interrupted::Aborted) => return Err(aborted()),
                    }
                    self.pump();
                }
            }
        }
    }

    pub fn on(self: &Rc<Self>, event: &str, callback: Function) -> Function {
        let id = self.next_listener.get();
        self.next_listener.set(id + 1);
        self.listeners.borrow_mut().push(Listener { id, event: event.to_string(), callback });
        let weak: Weak<Driver> = Rc::downgrade(self);
        // FnMut, not once: calling the unsubscribe function twice must be harmless, not a throw.
        let unsubscribe = Closure::<dyn FnMut()>::new(move || {
            if let Some(d) = weak.upgrade() {
                d.listeners.borrow_mut().retain(|l| l.id != id);
            }
        });
        unsubscribe.into_js_value().unchecked_into()
    }

    pub fn listener_count(&self, event: &str) -> usize {
        self.listeners.borrow().iter().filter(|l| l.event == event).count()
    }

    /// Stops the timer, aborts in-flight requests and wakes waiting operations (they reject `aborted`).
    pub fn close(&self) {
        if self.closed.replace(true) {
            return;
        }
        if let Some((_, t)) = self.timer.borrow_mut().take() {
            t.cancel();
        }
        self.in_flight.abort_all();
        for w in self.wakers.borrow_mut().drain(..) {
            let _ = w.call0(&JsValue::UNDEFINED);
        }
        self.listeners.borrow_mut().clear();
        self.on_primary.borrow_mut().take();
        if let Some(cb) = self.visibility.borrow_mut().take() {
            let doc = super::js::get(&js_sys::global(), "document");
            if let Ok(remove) = js_sys::Reflect::get(&doc, &"removeEventListener".into()) {
                if let Some(remove) = remove.dyn_ref::<Function>() {
                    let _ = remove.call2(&doc, &"visibilitychange".into(), cb.as_ref());
                }
            }
        }
    }

    /// Pauses health checks while a browser tab is hidden and resumes them at once when it is visible.
    fn watch_visibility(self: &Rc<Self>) {
        let doc = super::js::get(&js_sys::global(), "document");
        let Some(add) = super::js::get(&doc, "addEventListener").dyn_ref::<Function>().cloned() else {
            return;
        };
        let weak = Rc::downgrade(self);
        let cb = Closure::<dyn FnMut()>::new(move || {
            let Some(d) = weak.upgrade() else { return };
            let hidden = super::js::get(&super::js::get(&js_sys::global(), "document"), "hidden").is_truthy();
            d.router.borrow_mut().set_paused(hidden, now_ms());
            d.pump();
        });
        let _ = add.call2(&doc, &"visibilitychange".into(), cb.as_ref());
        *self.visibility.borrow_mut() = Some(cb);
    }
}

impl Drop for Driver {
    /// A client the app dropped without `close()` (garbage-collected): disarm what JS could still call.
    fn drop(&mut self) {
        self.close();
    }
}

fn event_to_js(event: &Event) -> (&'static str, JsValue) {
    use super::convert::to_js_value;
    match event {
        Event::Topology(views) => ("topology", to_js_value(views)),
        Event::Primary { url, term } => (
            "primary",
            object(&[
                ("url", url.as_deref().map(JsValue::from_str).unwrap_or(JsValue::NULL)),
                ("term", term.map(|t| JsValue::from_f64(t as f64)).unwrap_or(JsValue::NULL)),
            ]),
        ),
        Event::EndpointDown(v) => ("endpointDown", to_js_value(v)),
        Event::EndpointUp(v) => ("endpointUp", to_js_value(v)),
        Event::Retry { attempt, endpoint, error } => (
            "retry",
            object(&[
                ("attempt", JsValue::from_f64(*attempt as f64)),
                ("endpoint", JsValue::from_str(endpoint)),
                ("error", to_js(error)),
            ]),
        ),
    }
}
