//! What the per-call core hands the executor (effects), what a call completes with (outputs), and what the
//! app is told (events): plain data, so every decision can be checked in a test without a browser.

use serde_json::{Map, Value};

pub use crate::core::action::Cause;
use crate::core::cache::Entry;
use crate::core::document::Doc;
use crate::core::error::Error;
use crate::core::outbox::OutboxEntry;
use crate::core::protocol::Request;
use crate::core::topology::EndpointView;

/// One call the app (or the core itself, for background work) started.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CallId(pub u64);

/// Names a store operation whose result the executor reports back with `handle_stored`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StoreToken(pub u64);

/// Something for the executor to do. Poll with `Client::poll_effect` after every input.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// Send this request of `call`; hand what comes back to `handle_response(call, ..)`.
    Send { call: CallId, request: Request },
    /// Send this health check; hand what comes back to `handle_health`.
    Check(Request),
    /// Carry out a store operation; report its result with `handle_stored(token, ..)`.
    Store { token: StoreToken, op: StoreOp },
    /// Tell the app (its `on(...)` listeners).
    Emit(ClientEvent),
    /// Tell the other tabs sharing this store (BroadcastChannel).
    Announce(TabMessage),
    /// Call the app's conflict function; hand its answer to `handle_resolver(call, ..)`.
    AskResolver { call: CallId, input: ResolverInput },
    /// Take the cross-tab lock `name` (Web Locks) for `call`; report with `handle_locked(call)`.
    Lock { call: CallId, name: String },
    /// Release the lock `call` holds.
    Unlock { call: CallId },
    /// The call is over: resolve or reject the app's promise.
    Complete { call: CallId, result: Result<Output, Failure> },
}

/// A store operation (the `cache::Store` trait's methods).
// Moved once from the core to the executor, never kept in bulk: boxing would only add an allocation.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum StoreOp {
    PutEntry(Entry),
    DeleteEntry {
        collection: String,
        id: String,
    },
    LoadOutbox,
    /// Queue a new `entry`, and cache `cached` with it in the same transaction, unless its `seq` is taken
    /// (`Stored::Taken`: another tab queued under it).
    AddOutbox {
        entry: OutboxEntry,
        cached: Option<Entry>,
    },
    /// Replace the queued entry of the same `seq` (a conflict resolution re-made it), caching `cached` with it.
    PutOutbox {
        entry: OutboxEntry,
        cached: Option<Entry>,
    },
    DeleteOutbox {
        seq: u64,
    },
    Clear,
    /// The persistent store failed: use a memory store from now on (the core decided so).
    UseMemory,
}

/// What a store operation gave.
#[derive(Debug, Clone, PartialEq)]
pub enum Stored {
    Done,
    /// `AddOutbox` found its `seq` taken and wrote nothing.
    Taken,
    Outbox(Vec<OutboxEntry>),
}

/// A message between tabs.
#[allow(clippy::large_enum_variant)] // as `StoreOp`
#[derive(Debug, Clone, PartialEq)]
pub enum TabMessage {
    /// A document changed (`None`: removed).
    Change {
        collection: String,
        id: String,
        entry: Option<Entry>,
    },
    Clear,
}

/// What the app's conflict function is asked.
#[derive(Debug, Clone, PartialEq)]
pub enum ResolverInput {
    /// A queued write met a newer server version: `{ local, remote, base }`.
    Outbox { local: Option<Doc>, remote: Option<Doc>, base: Option<Doc> },
    /// Multi-primary revisions of one document: `remote` is the server's winner, `versions` all of them.
    Revisions { collection: String, id: String, remote: Doc, versions: Vec<Doc> },
}

/// The app's conflict function answered: the data to write (`None`: keep the server's), or it failed.
pub type ResolverAnswer = Result<Option<Map<String, Value>>, Error>;

/// A document as the app receives it, with where it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Served {
    pub doc: Doc,
    /// The response text the document was parsed from, when an endpoint just served it (it reaches JS with one
    /// `JSON.parse` and no round trip through Rust values).
    pub raw: Option<String>,
    pub from_cache: bool,
    pub pending: bool,
    pub endpoint: Option<String>,
}

impl Served {
    pub fn cached(doc: Doc, pending: bool) -> Served {
        Served { doc, raw: None, from_cache: true, pending, endpoint: None }
    }

    pub fn fresh(doc: Doc, raw: Option<String>, endpoint: String) -> Served {
        Served { doc, raw, from_cache: false, pending: false, endpoint: Some(endpoint) }
    }
}

/// What a finished call resolves with.
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    /// A document.
    Doc(Served),
    /// `get` of a document that does not exist: `null`.
    Missing,
    /// Nothing to return (`delete`, `flush`, `clearCache`): `undefined`.
    Nothing,
    Page(PageOut),
    /// The outbox, oldest first (`pendingWrites()`).
    Pending(Vec<OutboxEntry>),
}

/// A page of `list()`.
#[derive(Debug, Clone, PartialEq)]
pub struct PageOut {
    pub items: Vec<Served>,
    pub next: Option<String>,
    /// Served from the local cache (no endpoint answered, or `cache-only`).
    pub from_cache: bool,
    /// The endpoint's whole page. A page from the cache is never known to be complete: it holds what this client
    /// has cached, which may miss documents others wrote.
    pub complete: bool,
    pub endpoint: Option<String>,
}

/// A failed call: the error, where the last attempt went, and why each endpoint could not serve it.
#[derive(Debug, Clone, PartialEq)]
pub struct Failure {
    pub error: Error,
    pub endpoint: Option<String>,
    pub status: Option<u16>,
    pub causes: Vec<Cause>,
}

impl From<Error> for Failure {
    fn from(error: Error) -> Self {
        Failure { error, endpoint: None, status: None, causes: Vec::new() }
    }
}

/// Where a `change` event comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeSource {
    /// Another tab wrote it.
    Tab,
    /// A background revalidation found the server's copy differs.
    Revalidate,
}

/// How a queued write's conflict was settled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutboxResolution {
    Dropped,
    Reapplied,
}

/// Every event the app can receive (`db.on(name, ...)`), by name.
#[derive(Debug, Clone, PartialEq)]
pub enum ClientEvent {
    Topology(Vec<EndpointView>),
    Primary {
        url: Option<String>,
        term: Option<u64>,
    },
    EndpointDown(EndpointView),
    EndpointUp(EndpointView),
    Retry {
        attempt: u32,
        endpoint: String,
        error: Error,
    },
    Change {
        collection: String,
        id: String,
        doc: Option<Served>,
        source: ChangeSource,
    },
    Queued(OutboxEntry),
    Synced {
        entry: OutboxEntry,
        doc: Option<Served>,
    },
    /// A queued write met a newer version (`source: 'outbox'`).
    OutboxConflict {
        entry: OutboxEntry,
        local: Option<Doc>,
        remote: Option<Doc>,
        resolution: OutboxResolution,
    },
    /// Multi-primary revisions settled (`source: 'revisions'`); `merged`: the app's function merged them.
    RevisionConflict {
        collection: String,
        id: String,
        versions: Vec<Doc>,
        doc: Doc,
        merged: bool,
    },
    SyncFailed {
        entry: OutboxEntry,
        failure: Failure,
    },
    /// The server refused this client's credentials (401/403) while flushing `entry`: the outbox keeps every
    /// entry and waits for `db.flush()` (or new credentials) instead of dropping them.
    SyncPaused {
        entry: OutboxEntry,
        failure: Failure,
    },
    StorageError(Error),
    /// This client's write at (`term`, `position`) was lost in a failover: read-your-writes cannot hold for it.
    SessionLost {
        term: u64,
        position: u64,
    },
}

impl ClientEvent {
    /// Every event name `on()` accepts.
    pub const NAMES: &'static [&'static str] = &[
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
        "syncPaused",
        "storageError",
        "sessionLost",
    ];

    /// The name the app subscribes to.
    pub fn name(&self) -> &'static str {
        match self {
            ClientEvent::Topology(_) => "topology",
            ClientEvent::Primary { .. } => "primary",
            ClientEvent::EndpointDown(_) => "endpointDown",
            ClientEvent::EndpointUp(_) => "endpointUp",
            ClientEvent::Retry { .. } => "retry",
            ClientEvent::Change { .. } => "change",
            ClientEvent::Queued(_) => "queued",
            ClientEvent::Synced { .. } => "synced",
            ClientEvent::OutboxConflict { .. } | ClientEvent::RevisionConflict { .. } => "conflict",
            ClientEvent::SyncFailed { .. } => "syncFailed",
            ClientEvent::SyncPaused { .. } => "syncPaused",
            ClientEvent::StorageError(_) => "storageError",
            ClientEvent::SessionLost { .. } => "sessionLost",
        }
    }
}
