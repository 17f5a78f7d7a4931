//! The executor: carries out what the core ([`core::client::Client`](crate::core::client::Client)) decides.
//!
//! It owns the IO and nothing else: `fetch` (with timeouts and aborts), the store, one timer (`unref`ed in Node
//! so a script can exit), the tabs' BroadcastChannel, Web Locks, the app's listeners and conflict function. After
//! every input it `pump`s: it takes the core's effects one by one, carries each out, and re-arms the timer for
//! `poll_timeout` (quinn's `poll_*` loop). Completions resolve the promise of the call they belong to.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::{Rc, Weak};

use js_sys::{Function, Promise};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::{spawn_local, JsFuture};
use web_sys::AbortSignal;

use super::events::{event_to_js, failure_to_js, output_to_js};
use super::http::{send, InFlight, Interrupted};
use super::js::{get, now_ms, Timer};
use super::locks::acquire;
use super::store::AnyStore;
use super::tabs::Tabs;
use crate::cache::MemoryStore;
use crate::core::client::{CallId, CallSpec, Client as Core, Effect, Env, ResolverAnswer, ResolverInput, StoreOp};

struct Listener {
    id: u32,
    event: String,
    callback: Function,
}

/// The promise callbacks of a call in progress.
type Settle = (Function, Function);

/// A browser event listener this client added: (target, event name, callback).
type Hook = (JsValue, &'static str, Closure<dyn FnMut()>);

/// Shared state of one client.
pub struct Executor {
    core: RefCell<Core>,
    fetch: Function,
    store: RefCell<Rc<AnyStore>>,
    tabs: RefCell<Option<Tabs>>,
    resolver: Option<Function>,
    timer: RefCell<Option<(u64, Timer)>>,
    tick: RefCell<Option<Closure<dyn FnMut()>>>,
    listeners: RefCell<Vec<Listener>>,
    next_listener: Cell<u32>,
    calls: RefCell<HashMap<CallId, Settle>>,
    /// The app's `AbortSignal` of a call, and the listener this client added to it (removed when the call ends).
    signals: RefCell<HashMap<CallId, (AbortSignal, JsValue)>>,
    locks: RefCell<HashMap<CallId, Function>>,
    in_flight: InFlight,
    closed: Cell<bool>,
    browser_hooks: RefCell<Vec<Hook>>,
}

impl Executor {
    pub fn new(core: Core, fetch: Function, store: AnyStore, resolver: Option<Function>) -> Rc<Executor> {
        let executor = Rc::new(Executor {
            core: RefCell::new(core),
            fetch,
            store: RefCell::new(Rc::new(store)),
            tabs: RefCell::new(None),
            resolver,
            timer: RefCell::new(None),
            tick: RefCell::new(None),
            listeners: RefCell::new(Vec::new()),
            next_listener: Cell::new(1),
            calls: RefCell::new(HashMap::new()),
            signals: RefCell::new(HashMap::new()),
            locks: RefCell::new(HashMap::new()),
            in_flight: InFlight::default(),
            closed: Cell::new(false),
            browser_hooks: RefCell::new(Vec::new()),
        });
        let weak = Rc::downgrade(&executor);
        *executor.tick.borrow_mut() = Some(Closure::new(move || {
            if let Some(x) = weak.upgrade() {
                x.timer.borrow_mut().take();
                x.core.borrow_mut().handle_timeout(now_ms());
                x.pump();
            }
        }));
        executor
    }

    pub fn core(&self) -> std::cell::Ref<'_, Core> {
        self.core.borrow()
    }

    pub fn is_closed(&self) -> bool {
        self.closed.get()
    }

    /// Starts: the store's entries go to the core, other tabs are listened to, the browser's online and
    /// visibility changes are forwarded, and the first health checks go out.
    pub fn start(
        self: &Rc<Self>,
        persistent: bool,
        loaded: Result<Vec<crate::core::cache::Entry>, crate::core::Error>,
        tabs: Option<Tabs>,
    ) {
        if let Some(t) = &tabs {
            let weak = Rc::downgrade(self);
            t.listen(move |message| {
                if let Some(x) = weak.upgrade() {
                    x.core.borrow_mut().handle_remote_change(message, now_ms());
                    x.pump();
                }
            });
        }
        *self.tabs.borrow_mut() = tabs;
        self.watch_browser();
        self.core.borrow_mut().handle_opened(now_ms(), persistent, loaded);
        self.pump();
        // What failed before the app could subscribe is reported on the next turn.
        let weak = Rc::downgrade(self);
        let ready = Closure::once_into_js(move || {
            if let Some(x) = weak.upgrade() {
                x.core.borrow_mut().handle_ready();
                x.pump();
            }
        });
        Timer::start(ready.unchecked_ref(), 0, true);
    }

    /// Runs one call to its end: resolves with its output as JS, or rejects with a `ReplikitError`.
    pub async fn call(self: &Rc<Self>, spec: CallSpec, signal: Option<AbortSignal>) -> Result<JsValue, JsValue> {
        if signal.as_ref().is_some_and(|s| s.aborted()) {
            // Nothing starts: no request goes out and nothing is queued.
            return Err(super::errors::to_js(&crate::core::Error::Aborted {
                message: "the operation was aborted".into(),
            }));
        }
        let mut settle = None;
        let promise = Promise::new(&mut |resolve, reject| settle = Some((resolve, reject)));
        let env = Env { now_ms: now_ms(), online: !super::js::browser_offline(), random: super::js::random_bytes() };
        let id = self.core.borrow_mut().start_call(spec, env);
        self.calls.borrow_mut().insert(id, settle.expect("set by Promise::new"));
        if let Some(signal) = signal {
            let weak = Rc::downgrade(self);
            let on_abort = Closure::once_into_js(move || {
                if let Some(x) = weak.upgrade() {
                    x.core.borrow_mut().cancel(id, now_ms());
                    x.pump();
                }
            });
            let options = super::js::object(&[("once", JsValue::TRUE)]);
            if let Some(add) = get(&signal, "addEventListener").dyn_ref::<Function>() {
                let _ = add.call3(&signal, &"abort".into(), &on_abort, &options);
            }
            self.signals.borrow_mut().insert(id, (signal, on_abort));
        }
        self.pump();
        JsFuture::from(promise).await
    }

    /// Carries out every effect the core has, then re-arms the timer.
    pub fn pump(self: &Rc<Self>) {
        loop {
            let effect = self.core.borrow_mut().poll_effect();
            let Some(effect) = effect else { break };
            self.carry_out(effect);
        }
        if !self.closed.get() {
            self.arm_timer();
        }
    }

    fn carry_out(self: &Rc<Self>, effect: Effect) {
        match effect {
            Effect::Send { call, request } => {
                let x = self.clone();
                // The app's signal aborts the request itself, not only the call.
                let signal = self.signals.borrow().get(&call).map(|(s, _)| s.clone());
                spawn_local(async move {
                    let url = x.core.borrow().router().topology().url(request.endpoint).to_string();
                    let sent = send(&x.fetch, &url, &request, signal.as_ref(), &x.in_flight).await;
                    match sent {
                        Ok((outcome, _)) => x.core.borrow_mut().handle_response(call, now_ms(), outcome),
                        Err(Interrupted::Aborted) => x.core.borrow_mut().cancel(call, now_ms()),
                    }
                    x.pump();
                });
            }
            Effect::Check(request) => {
                let x = self.clone();
                spawn_local(async move {
                    let url = x.core.borrow().router().topology().url(request.endpoint).to_string();
                    if let Ok((outcome, rtt)) = send(&x.fetch, &url, &request, None, &x.in_flight).await {
                        x.core.borrow_mut().handle_health(request.endpoint, now_ms(), rtt, outcome);
                        x.pump();
                    }
                });
            }
            Effect::Store { op: StoreOp::UseMemory, .. } => {
                *self.store.borrow_mut() = Rc::new(AnyStore::Memory(MemoryStore::new()));
            }
            Effect::Store { token, op } => {
                let x = self.clone();
                let store = self.store.borrow().clone();
                spawn_local(async move {
                    let result = store.run(&op).await;
                    x.core.borrow_mut().handle_stored(token, now_ms(), result);
                    x.pump();
                });
            }
            Effect::Emit(event) => {
                let (name, payload) = event_to_js(&event);
                self.emit(name, &payload);
            }
            Effect::Announce(message) => {
                if let Some(t) = self.tabs.borrow().as_ref() {
                    t.post(&message);
                }
            }
            Effect::AskResolver { call, input } => {
                let x = self.clone();
                spawn_local(async move {
                    let answer = x.ask_resolver(&input).await;
                    x.core.borrow_mut().handle_resolver(call, now_ms(), answer);
                    x.pump();
                });
            }
            Effect::Lock { call, name } => {
                let x = self.clone();
                spawn_local(async move {
                    let release = acquire(&name).await;
                    if let Some(release) = release {
                        x.locks.borrow_mut().insert(call, release);
                    }
                    x.core.borrow_mut().handle_locked(call, now_ms());
                    x.pump();
                });
            }
            Effect::Unlock { call } => {
                if let Some(release) = self.locks.borrow_mut().remove(&call) {
                    let _ = release.call0(&JsValue::UNDEFINED);
                }
            }
            Effect::Complete { call, result } => {
                if let Some((signal, listener)) = self.signals.borrow_mut().remove(&call) {
                    if let Some(remove) = get(&signal, "removeEventListener").dyn_ref::<Function>() {
                        let _ = remove.call2(&signal, &"abort".into(), &listener);
                    }
                }
                let Some((resolve, reject)) = self.calls.borrow_mut().remove(&call) else { return };
                let _ = match result {
                    Ok(output) => resolve.call1(&JsValue::UNDEFINED, &output_to_js(output)),
                    Err(failure) => reject.call1(&JsValue::UNDEFINED, &failure_to_js(&failure)),
                };
            }
        }
    }

    /// Calls the app's conflict function; its answer (or its promise's) is the data to write, or null.
    async fn ask_resolver(&self, input: &ResolverInput) -> ResolverAnswer {
        let Some(resolver) = self.resolver.as_ref() else { return Ok(None) };
        super::events::call_resolver(resolver, input).await
    }

    /// Arms the one timer for the core's next deadline. In Node it keeps the process alive only while the app
    /// awaits a call (a script that awaits a write waiting for a primary must not exit under it); health checks
    /// alone never hold a process open.
    fn arm_timer(&self) {
        let (next, awaited) = {
            let core = self.core.borrow();
            (core.poll_timeout(), core.awaited())
        };
        let mut timer = self.timer.borrow_mut();
        match (next, timer.as_ref()) {
            (Some(at), Some((armed, t))) if *armed <= at => t.keep_alive(awaited),
            (Some(at), _) => {
                if let Some((_, t)) = timer.take() {
                    t.cancel();
                }
                let tick = self.tick.borrow();
                let f: &Function = tick.as_ref().expect("set in new").as_ref().unchecked_ref();
                *timer = Some((at, Timer::start(f, at.saturating_sub(now_ms()), !awaited)));
            }
            (None, _) => {}
        }
    }

    /// Calls the app's listeners of `event`; a listener that throws is reported and does not stop the others.
    fn emit(&self, event: &str, payload: &JsValue) {
        let targets: Vec<Function> =
            self.listeners.borrow().iter().filter(|l| l.event == event).map(|l| l.callback.clone()).collect();
        for f in targets {
            if let Err(e) = f.call1(&JsValue::UNDEFINED, payload) {
                web_sys::console::error_2(&JsValue::from_str("replikit: a listener threw"), &e);
            }
        }
    }

    pub fn on(self: &Rc<Self>, event: &str, callback: Function) -> Function {
        let id = self.next_listener.get();
        self.next_listener.set(id + 1);
        self.listeners.borrow_mut().push(Listener { id, event: event.to_string(), callback });
        let weak: Weak<Executor> = Rc::downgrade(self);
        // FnMut, not once: calling the unsubscribe function twice must be harmless, not a throw.
        let unsubscribe = Closure::<dyn FnMut()>::new(move || {
            if let Some(x) = weak.upgrade() {
                x.listeners.borrow_mut().retain(|l| l.id != id);
            }
        });
        unsubscribe.into_js_value().unchecked_into()
    }

    pub fn listener_count(&self, event: &str) -> usize {
        self.listeners.borrow().iter().filter(|l| l.event == event).count()
    }

    /// Ends every call (they reject with `aborted`), stops the timer, aborts requests, and closes the tab channel
    /// and the database connection.
    pub fn close(self: &Rc<Self>) {
        if self.closed.get() {
            return;
        }
        self.core.borrow_mut().close();
        self.pump();
        self.closed.set(true);
        if let Some((_, t)) = self.timer.borrow_mut().take() {
            t.cancel();
        }
        self.in_flight.abort_all();
        self.listeners.borrow_mut().clear();
        if let Some(t) = self.tabs.borrow_mut().take() {
            t.close();
        }
        for (target, name, cb) in self.browser_hooks.borrow_mut().drain(..) {
            if let Some(remove) = get(&target, "removeEventListener").dyn_ref::<Function>() {
                let _ = remove.call2(&target, &name.into(), cb.as_ref());
            }
        }
        self.store.borrow().close();
    }

    /// Forwards a browser's visibility (health checks pause while the tab is hidden) and online changes.
    fn watch_browser(self: &Rc<Self>) {
        let global = js_sys::global();
        let doc = get(&global, "document");
        let hooks: [(JsValue, &'static str); 3] =
            [(doc, "visibilitychange"), (global.clone().into(), "online"), (global.into(), "offline")];
        for (target, name) in hooks {
            let Some(add) = get(&target, "addEventListener").dyn_ref::<Function>().cloned() else { continue };
            if name != "visibilitychange" && !super::js::in_browser() {
                continue;
            }
            let weak = Rc::downgrade(self);
            let cb = Closure::<dyn FnMut()>::new(move || {
                let Some(x) = weak.upgrade() else { return };
                let now = now_ms();
                match name {
                    "visibilitychange" => {
                        let hidden = get(&get(&js_sys::global(), "document"), "hidden").is_truthy();
                        x.core.borrow_mut().set_paused(hidden, now);
                    }
                    _ => x.core.borrow_mut().set_online(name == "online", now),
                }
                x.pump();
            });
            let _ = add.call2(&target, &name.into(), cb.as_ref());
            self.browser_hooks.borrow_mut().push((target, name, cb));
        }
    }
}

impl Drop for Executor {
    /// A client the app dropped without `close()` (garbage-collected): disarm what JS could still call.
    fn drop(&mut self) {
        if let Some((_, t)) = self.timer.borrow_mut().take() {
            t.cancel();
        }
        self.in_flight.abort_all();
        if let Some(t) = self.tabs.borrow_mut().take() {
            t.close();
        }
    }
}
