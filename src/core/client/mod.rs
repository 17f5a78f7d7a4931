//! The per-call core: every decision a client makes about a call, none of the IO.
//!
//! Whether a call is served from the cache, sent, queued in the outbox, flushed, settled after a conflict, or
//! kept after the store failed is decided here, in quinn-proto's shape: the executor (`src/wasm`) feeds inputs and
//! carries out the effects this hands out, and time is always an argument.
//!
//! - Getters: [`Client::router`], [`Client::settings`].
//! - Commands: [`Client::start_call`] (a new call: returns its id), [`Client::cancel`], [`Client::close`],
//!   [`Client::set_paused`], [`Client::set_online`].
//! - Inputs (`handle_*`): what a request got ([`Client::handle_response`]), a health check
//!   ([`Client::handle_health`]), a store operation ([`Client::handle_stored`]), the app's conflict function
//!   ([`Client::handle_resolver`]), a cross-tab lock ([`Client::handle_locked`]), another tab's message
//!   ([`Client::handle_remote_change`]), the timer ([`Client::handle_timeout`]), the store opening
//!   ([`Client::handle_opened`]).
//! - Outputs (`poll_*`): [`Client::poll_effect`] until it gives `None`, then [`Client::poll_timeout`] for when to
//!   call `handle_timeout`. Poll after every input.
//!
//! A call's flow: `start_call` decides (cache, network or outbox) and hands out `Effect::Send`; the answer comes
//! back through `handle_response`; the router (`core::router`) decides retries and failover per request, and
//! when the request-level operation ends this module decides what the call does with it (cache it, fall back to
//! the cache, queue it, settle a conflict) until `Effect::Complete` ends it.

pub mod args;
mod effect;
mod flush;
mod local;
mod read;
mod write;

use std::collections::{BTreeMap, HashMap, VecDeque};

pub use effect::{
    Cause, ChangeSource, ClientEvent, Effect, Failure, OutboxResolution, Output, PageOut, ResolverAnswer,
    ResolverInput, Served, StoreOp, StoreToken, Stored, TabMessage,
};
pub use local::{Platform, Settings};

use super::action::{Action, CallOptions, Completed};
use super::cache::{Cache, Entry};
use super::document::{CollectionName, Version};
use super::error::Error;
use super::options::Config;
use super::outbox::WriteKind;
use super::protocol::{EndpointId, Outcome};
use super::router::{Event, Operation, Router, Step};
use super::types::{Durability, ReadPolicy, ReadPreference};

pub use effect::CallId;

/// How often `db.flush()` looks again while no endpoint takes the outbox's writes (it also looks at every change
/// of the topology).
const FLUSH_RETRY_MS: u64 = 1000;

/// What the environment says when a call starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Env {
    pub now_ms: u64,
    /// `navigator.onLine` (always true in Node).
    pub online: bool,
}

/// A call the app makes.
#[derive(Debug, Clone, PartialEq)]
pub enum CallSpec {
    Get {
        collection: CollectionName,
        id: String,
        read_preference: Option<ReadPreference>,
        read_policy: Option<ReadPolicy>,
    },
    List {
        collection: CollectionName,
        limit: Option<u32>,
        after: Option<String>,
        read_preference: Option<ReadPreference>,
        read_policy: Option<ReadPolicy>,
    },
    /// `id`: None for a `create` without one (a UUIDv7 is made).
    Write {
        kind: WriteKind,
        collection: CollectionName,
        id: Option<String>,
        data: Option<serde_json::Map<String, serde_json::Value>>,
        if_version: Option<Version>,
        durability: Option<Durability>,
    },
    /// `db.flush()`: resolves when the outbox is empty, rejects with the first write that failed for good.
    Flush,
    /// `db.pendingWrites()`.
    PendingWrites,
    /// `db.clearCache()`.
    ClearCache,
}

/// One call in progress.
#[derive(Debug)]
struct Call {
    kind: Kind,
    /// The request-level operation running for it, if any.
    op: Option<Operation>,
    /// A request of `op` is out (its answer comes through `handle_response`).
    sending: bool,
    /// Step again at this time (or at the next change of the topology).
    wake_at: Option<u64>,
    /// Started by the core itself (a background revalidation or flush): nobody awaits it.
    internal: bool,
}

#[derive(Debug)]
enum Kind {
    Get(read::GetCall),
    Revalidate(read::RevalidateCall),
    List(read::ListCall),
    Write(write::WriteCall),
    Flush(flush::FlushCall),
    /// `db.flush()`, waiting for a flush's result.
    FlushAll,
    Pending,
    Clear,
}

/// The client's decision-maker. See the module docs for the order of calls.
#[derive(Debug)]
pub struct Client {
    router: Router,
    settings: Settings,
    cache: Cache,
    /// Cache entries are written to a persistent store (IndexedDB that has not failed).
    persistent: bool,
    calls: BTreeMap<CallId, Call>,
    next_call: u64,
    next_token: u64,
    store_waiters: HashMap<StoreToken, CallId>,
    effects: VecDeque<Effect>,
    /// The flush running now (one at a time), and the `db.flush()` calls waiting for its result.
    flushing: Option<CallId>,
    flush_waiters: Vec<CallId>,
    /// Errors of the store before the app could subscribe (reported by `handle_ready`).
    held_errors: Option<Vec<Error>>,
    last_seq: u64,
    online: bool,
    closed: bool,
}

impl Client {
    /// `seed` feeds selection, jitter and generated ids; tests fix it.
    pub fn new(config: Config, settings: Settings, seed: u64) -> Client {
        Client {
            router: Router::new(config, seed),
            cache: Cache::new(settings.max_entries),
            persistent: false,
            settings,
            calls: BTreeMap::new(),
            next_call: 1,
            next_token: 1,
            store_waiters: HashMap::new(),
            effects: VecDeque::new(),
            flushing: None,
            flush_waiters: Vec::new(),
            held_errors: Some(Vec::new()),
            last_seq: 0,
            online: true,
            closed: false,
        }
    }

    // ----- getters -----

    pub fn router(&self) -> &Router {
        &self.router
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// A new UUIDv7 (document ids, idempotency keys, the tab's id).
    pub fn new_id(&mut self, now_ms: u64) -> String {
        self.router.new_id(now_ms)
    }

    // ----- commands -----

    /// Starts a call; its result comes out as `Effect::Complete` with this id.
    pub fn start_call(&mut self, spec: CallSpec, env: Env) -> CallId {
        let id = self.call_id();
        self.online = env.online;
        let now = env.now_ms;
        if self.closed {
            self.fail(id, Error::Aborted { message: "the client is closed".into() }.into());
        } else {
            match spec {
                CallSpec::Get { collection, id: doc, read_preference, read_policy } => {
                    self.start_get(id, collection, doc, read_preference, read_policy, now)
                }
                CallSpec::List { collection, limit, after, read_preference, read_policy } => {
                    self.start_list(id, read::ListCall { collection, limit, after, read_preference, read_policy }, now)
                }
                CallSpec::Write { kind, collection, id: doc, data, if_version, durability } => {
                    self.start_write(id, kind, collection, doc, data, if_version, durability, now)
                }
                CallSpec::Flush => self.start_flush_all(id, now),
                CallSpec::PendingWrites => self.start_pending(id),
                CallSpec::ClearCache => self.start_clear(id),
            }
        }
        self.after_input(now);
        id
    }

    /// The app gave up on `call` (its `AbortSignal`): it rejects with `aborted` now.
    pub fn cancel(&mut self, call: CallId, now_ms: u64) {
        if let Some(mut c) = self.calls.remove(&call) {
            if let Some(op) = c.op.as_mut() {
                self.router.abandon(op);
            }
            self.flush_waiters.retain(|w| *w != call);
            if !c.internal {
                self.fail(call, Error::Aborted { message: "the operation was aborted".into() }.into());
            }
        }
        self.after_input(now_ms);
    }

    /// Ends every call (they reject with `aborted`) and refuses new ones.
    pub fn close(&mut self) {
        self.closed = true;
        for (id, mut c) in std::mem::take(&mut self.calls) {
            if let Some(op) = c.op.as_mut() {
                self.router.abandon(op);
            }
            if matches!(c.kind, Kind::Flush(_)) {
                self.effects.push_back(Effect::Unlock { call: id });
            }
            if !c.internal {
                self.fail(id, Error::Aborted { message: "the client was closed".into() }.into());
            }
        }
        self.flushing = None;
        self.flush_waiters.clear();
    }

    /// Pauses periodic health checks (a hidden tab) or resumes them at once.
    pub fn set_paused(&mut self, paused: bool, now_ms: u64) {
        self.router.set_paused(paused, now_ms);
        self.after_input(now_ms);
    }

    /// The browser went online (or offline): queued writes are flushed as soon as it is online.
    pub fn set_online(&mut self, online: bool, now_ms: u64) {
        self.online = online;
        if online {
            self.start_flush(now_ms);
        }
        self.after_input(now_ms);
    }

    // ----- inputs -----

    /// The store opened (with the entries it holds) or failed to (the client goes on with a memory store).
    pub fn handle_opened(&mut self, now_ms: u64, loaded: Result<Vec<Entry>, Error>) {
        self.persistent = self.settings.store == super::types::StoreKind::IndexedDb;
        match loaded {
            Ok(entries) if self.cache_enabled() => entries.into_iter().for_each(|e| self.cache.put(e)),
            Ok(_) => {}
            Err(e) => self.storage_failed(e),
        }
        self.cache.take_evicted();
        self.start_flush(now_ms); // writes queued before a reload
        self.after_input(now_ms);
    }

    /// The app had a chance to subscribe: report what failed before (a store that could not be opened).
    pub fn handle_ready(&mut self) {
        for e in self.held_errors.take().unwrap_or_default() {
            self.effects.push_back(Effect::Emit(ClientEvent::StorageError(e)));
        }
    }

    /// What the request `Effect::Send` handed out for `call` got.
    pub fn handle_response(&mut self, call: CallId, now_ms: u64, outcome: Outcome) {
        if let Some(c) = self.calls.get_mut(&call) {
            if let (Some(op), true) = (c.op.as_mut(), c.sending) {
                c.sending = false;
                self.router.handle_outcome(op, now_ms, outcome);
                self.drive(call, now_ms);
            }
        }
        self.after_input(now_ms);
    }

    /// What a health check got; `rtt_ms` is how long it took.
    pub fn handle_health(&mut self, endpoint: EndpointId, now_ms: u64, rtt_ms: f64, outcome: Outcome) {
        self.router.handle_health(endpoint, now_ms, rtt_ms, outcome);
        self.after_input(now_ms);
    }

    /// What a store operation gave. A failure switches the client to a memory store and is reported once.
    pub fn handle_stored(&mut self, token: StoreToken, now_ms: u64, result: Result<Stored, Error>) {
        let result = result.map_err(|e| self.storage_failed(e));
        if let Some(call) = self.store_waiters.remove(&token) {
            if let Some(c) = self.calls.remove(&call) {
                self.on_stored(call, c, result, now_ms);
            }
        }
        self.after_input(now_ms);
    }

    /// The app's conflict function answered for `call`.
    pub fn handle_resolver(&mut self, call: CallId, now_ms: u64, answer: ResolverAnswer) {
        if let Some(c) = self.calls.remove(&call) {
            match c.kind {
                Kind::Flush(_) => self.flush_resolved(call, c, answer, now_ms),
                _ => self.settle_resolved(call, c, answer, now_ms),
            }
        }
        self.after_input(now_ms);
    }

    /// The cross-tab lock `Effect::Lock` asked for is held (or cannot be had here: run without it).
    pub fn handle_locked(&mut self, call: CallId, now_ms: u64) {
        if let Some(c) = self.calls.remove(&call) {
            self.flush_load(call, c);
        }
        self.after_input(now_ms);
    }

    /// Another tab changed the shared store.
    pub fn handle_remote_change(&mut self, message: TabMessage, now_ms: u64) {
        match message {
            TabMessage::Clear => self.cache.clear(),
            TabMessage::Change { collection, id, entry } => {
                let doc = entry.as_ref().and_then(|e| e.doc.clone()).map(|d| Served::cached(d, false));
                match entry {
                    Some(e) => self.cache.put(e),
                    None => self.cache.remove(&collection, &id),
                }
                let event = ClientEvent::Change { collection, id, doc, source: ChangeSource::Tab };
                self.effects.push_back(Effect::Emit(event));
            }
        }
        self.after_input(now_ms);
    }

    /// The time `poll_timeout` named has come.
    pub fn handle_timeout(&mut self, now_ms: u64) {
        self.after_input(now_ms);
    }

    // ----- outputs -----

    /// The next thing to do.
    pub fn poll_effect(&mut self) -> Option<Effect> {
        self.effects.pop_front()
    }

    /// When to call `handle_timeout` next.
    pub fn poll_timeout(&self) -> Option<u64> {
        let calls = self.calls.values().filter_map(|c| c.wake_at).min();
        match (self.router.poll_timeout(), calls) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    // ----- the engine -----

    fn call_id(&mut self) -> CallId {
        let id = CallId(self.next_call);
        self.next_call += 1;
        id
    }

    /// Health checks due, the router's events, then every call whose time has come (or that a change of the
    /// topology may unblock).
    fn after_input(&mut self, now_ms: u64) {
        if self.closed {
            return;
        }
        for request in self.router.poll_health_checks(now_ms) {
            self.effects.push_back(Effect::Check(request));
        }
        let mut changed = false;
        let mut writable = false;
        while let Some(event) = self.router.poll_event() {
            changed = true;
            writable |= match &event {
                Event::Primary { url: Some(_), .. } => true,
                Event::EndpointUp(view) => view.writable,
                _ => false,
            };
            self.effects.push_back(Effect::Emit(client_event(event)));
        }
        if writable {
            self.start_flush(now_ms); // a writable node came up: the outbox can go
        }
        let due: Vec<CallId> = self
            .calls
            .iter()
            .filter(|(_, c)| !c.sending && c.wake_at.is_some_and(|at| changed || at <= now_ms))
            .map(|(id, _)| *id)
            .collect();
        for id in due {
            self.wake(id, now_ms);
        }
    }

    fn wake(&mut self, id: CallId, now_ms: u64) {
        let Some(c) = self.calls.get_mut(&id) else { return };
        c.wake_at = None;
        if c.op.is_some() {
            self.drive(id, now_ms);
        } else if matches!(c.kind, Kind::FlushAll) {
            let c = self.calls.remove(&id).expect("present");
            self.retry_flush_all(id, c, now_ms);
        }
    }

    /// Starts a request-level operation for `call` and steps it.
    fn run(&mut self, id: CallId, mut call: Call, action: Action, options: CallOptions, now_ms: u64) {
        call.op = Some(self.router.start(action, options, now_ms));
        call.sending = false;
        call.wake_at = None;
        self.calls.insert(id, call);
        self.drive(id, now_ms);
    }

    /// Steps `id`'s operation until it sends, waits or ends.
    fn drive(&mut self, id: CallId, now_ms: u64) {
        let Some(c) = self.calls.get_mut(&id) else { return };
        let Some(op) = c.op.as_mut() else { return };
        match self.router.step(op, now_ms) {
            Step::Send(request) => {
                c.sending = true;
                self.effects.push_back(Effect::Send { call: id, request });
            }
            Step::Wait { until_ms } => c.wake_at = Some(until_ms),
            Step::Done(result) => {
                let mut c = self.calls.remove(&id).expect("present");
                let op = c.op.take().expect("present");
                let result = result.map_err(|error| self.failure(&op, error));
                self.op_done(id, c, result, now_ms);
            }
        }
    }

    fn failure(&self, op: &Operation, error: Error) -> Failure {
        Failure {
            endpoint: op.last_endpoint().map(|e| self.url(e)),
            status: op.last_status(),
            causes: self.router.causes(op),
            error,
        }
    }

    fn url(&self, id: EndpointId) -> String {
        self.router.topology().url(id).to_string()
    }

    fn op_done(&mut self, id: CallId, call: Call, result: Result<Completed, Failure>, now_ms: u64) {
        match call.kind {
            Kind::Get(_) => self.get_done(id, call, result, now_ms),
            Kind::Revalidate(_) => self.revalidate_done(id, call, result, now_ms),
            Kind::List(_) => self.list_done(id, call, result, now_ms),
            Kind::Write(_) => self.write_done(id, call, result, now_ms),
            Kind::Flush(_) => self.flush_done(id, call, result, now_ms),
            Kind::FlushAll | Kind::Pending | Kind::Clear => {}
        }
    }

    fn on_stored(&mut self, id: CallId, call: Call, result: Result<Stored, ()>, now_ms: u64) {
        match call.kind {
            Kind::Write(_) => self.write_stored(id, call, result, now_ms),
            Kind::Flush(_) => self.flush_stored(id, call, result, now_ms),
            Kind::Pending => {
                let list = match result {
                    Ok(Stored::Outbox(list)) => list,
                    _ => Vec::new(),
                };
                self.complete(id, Ok(Output::Pending(list)));
            }
            Kind::Clear => {
                if self.settings.store == super::types::StoreKind::IndexedDb {
                    self.effects.push_back(Effect::Announce(TabMessage::Clear));
                }
                self.complete(id, Ok(Output::Nothing));
            }
            _ => {}
        }
    }

    /// Hands out a store operation; `waiter` continues when its result comes.
    fn store(&mut self, op: StoreOp, waiter: Option<CallId>) {
        let token = StoreToken(self.next_token);
        self.next_token += 1;
        if let Some(call) = waiter {
            self.store_waiters.insert(token, call);
        }
        self.effects.push_back(Effect::Store { token, op });
    }

    /// Waits for the store operation just handed out (the call is parked until `handle_stored`).
    fn park(&mut self, id: CallId, call: Call) {
        self.calls.insert(id, call);
    }

    /// The store failed: switch to memory (reads go on, queued writes stay in memory) and tell the app once.
    fn storage_failed(&mut self, error: Error) {
        if self.persistent {
            self.persistent = false;
            self.effects.push_back(Effect::Store { token: StoreToken(0), op: StoreOp::UseMemory });
        }
        match self.held_errors.as_mut() {
            Some(held) => held.push(error),
            None => self.effects.push_back(Effect::Emit(ClientEvent::StorageError(error))),
        }
    }

    fn complete(&mut self, id: CallId, result: Result<Output, Failure>) {
        self.effects.push_back(Effect::Complete { call: id, result });
    }

    fn fail(&mut self, id: CallId, failure: Failure) {
        self.complete(id, Err(failure));
    }

    fn new_call(kind: Kind, internal: bool) -> Call {
        Call { kind, op: None, sending: false, wake_at: None, internal }
    }
}

fn client_event(event: Event) -> ClientEvent {
    match event {
        Event::Topology(views) => ClientEvent::Topology(views),
        Event::Primary { url, term } => ClientEvent::Primary { url, term },
        Event::EndpointDown(v) => ClientEvent::EndpointDown(v),
        Event::EndpointUp(v) => ClientEvent::EndpointUp(v),
        Event::Retry { attempt, endpoint, error } => ClientEvent::Retry { attempt, endpoint, error },
    }
}
