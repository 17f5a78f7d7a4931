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
mod engine;
mod flush;
mod local;
mod read;
mod write;

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};

pub use effect::{
    Cause, ChangeSource, ClientEvent, Effect, Failure, OutboxResolution, Output, PageOut, ResolverAnswer,
    ResolverInput, Served, StoreOp, StoreToken, Stored, TabMessage,
};
pub use local::{Platform, Settings};
pub use write::uuid_v7;

use super::cache::{Cache, Entry};
use super::document::{CollectionName, Version};
use super::error::Error;
use super::options::Config;
use super::outbox::WriteKind;
use super::protocol::{EndpointId, Outcome};
use super::router::{Operation, Router};
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
    /// Fresh random bytes (`crypto.getRandomValues`) for the ids this call makes: a document id and an
    /// idempotency key must not be predictable from the seeded generator that picks endpoints.
    pub random: [u8; 20],
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
    /// The app's conflict function was asked for it (only then does `handle_resolver` apply).
    asking: bool,
}

#[derive(Debug)]
enum Kind {
    Get(read::GetCall),
    Revalidate(read::RevalidateCall),
    List(read::ListCall),
    Write(Box<write::WriteCall>),
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
    /// The durable store (IndexedDB, files) could not be opened or failed: writes it may still hold cannot be seen.
    store_broken: bool,
    calls: BTreeMap<CallId, Call>,
    next_call: u64,
    next_token: u64,
    store_waiters: HashMap<StoreToken, CallId>,
    /// Store operations in flight that only read.
    store_reads: HashSet<StoreToken>,
    effects: VecDeque<Effect>,
    /// The flush running now (one at a time), and the `db.flush()` calls waiting for its result.
    flushing: Option<CallId>,
    /// (call, how many failures the flush had when it joined).
    flush_waiters: Vec<(CallId, usize)>,
    /// The server refused this client's credentials while flushing: automatic flushes wait for `db.flush()`.
    paused: bool,
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
            store_broken: false,
            settings,
            calls: BTreeMap::new(),
            next_call: 1,
            next_token: 1,
            store_waiters: HashMap::new(),
            store_reads: HashSet::new(),
            effects: VecDeque::new(),
            flushing: None,
            flush_waiters: Vec::new(),
            paused: false,
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

    /// Whether the app awaits a call now (not only the core's own background work).
    pub fn awaited(&self) -> bool {
        self.calls.values().any(|c| !c.internal)
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
                    let write = write::WriteSpec { kind, collection, id: doc, data, if_version, durability };
                    self.start_write(id, write, &env)
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
    /// A write already being put in the outbox is not cancelled: it is queued, and the call resolves as such
    /// (rejecting it would make the app write it again).
    pub fn cancel(&mut self, call: CallId, now_ms: u64) {
        let queueing = self.calls.get(&call).is_some_and(|c| matches!(&c.kind, Kind::Write(w) if w.is_queueing()));
        if queueing {
            return self.after_input(now_ms);
        }
        if let Some(mut c) = self.calls.remove(&call) {
            if let Some(op) = c.op.as_mut() {
                self.router.abandon(op);
            }
            self.flush_waiters.retain(|(w, _)| *w != call);
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

    /// The store opened (`persistent`: the durable store asked for, IndexedDB or files; false: it could not be
    /// opened and the executor uses a memory store) and gave its entries, or could not read them (reported; the store stays in use, so writes
    /// queued before a reload still sync).
    pub fn handle_opened(&mut self, now_ms: u64, persistent: bool, loaded: Result<Vec<Entry>, Error>) {
        self.persistent = persistent && self.settings.store == super::types::StoreKind::IndexedDb;
        self.store_broken = self.settings.store.durable() && !persistent;
        match loaded {
            Ok(entries) if self.cache_enabled() => entries.into_iter().for_each(|e| self.cache.put(e)),
            Ok(_) => {}
            Err(e) => self.report_storage_error(e),
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
        // A failed read is reported; a failed write means the store cannot be trusted to keep what it is given.
        let read = self.store_reads.remove(&token);
        let result = result.map_err(|e| if read { self.report_storage_error(e) } else { self.storage_failed(e) });
        if let Some(call) = self.store_waiters.remove(&token) {
            if let Some(c) = self.calls.remove(&call) {
                self.on_stored(call, c, result, now_ms);
            }
        }
        self.after_input(now_ms);
    }

    /// The app's conflict function answered for `call`.
    pub fn handle_resolver(&mut self, call: CallId, now_ms: u64, answer: ResolverAnswer) {
        let asked = self.calls.get(&call).is_some_and(|c| c.asking);
        if let Some(mut c) = asked.then(|| self.calls.remove(&call)).flatten() {
            c.asking = false;
            match c.kind {
                Kind::Flush(_) => self.flush_resolved(call, c, answer, now_ms),
                _ => self.settle_resolved(call, c, answer, now_ms),
            }
        }
        self.after_input(now_ms);
    }

    /// The cross-tab lock `Effect::Lock` asked for is held (or cannot be had here: run without it). A lock that
    /// nobody waits for any more (the client was closed meanwhile) is released at once.
    pub fn handle_locked(&mut self, call: CallId, now_ms: u64) {
        let waiting = self.calls.get(&call).is_some_and(|c| matches!(&c.kind, Kind::Flush(f) if f.is_locking()));
        match waiting.then(|| self.calls.remove(&call)).flatten() {
            Some(c) => self.flush_load(call, c),
            None => self.effects.push_back(Effect::Unlock { call }),
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
}
