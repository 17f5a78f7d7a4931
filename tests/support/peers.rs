//! The two kinds of clients a `World` runs, and what each has seen.

use std::collections::HashMap;

use replikit::cache::{MemoryStore, Store};
use replikit::core::client::{
    CallId, Client, ClientEvent, Effect, Failure, Output, ResolverAnswer, ResolverInput, Settings, StoreOp, Stored,
};
use replikit::core::outbox::OutboxEntry;
use replikit::core::protocol::Request;
use replikit::core::{Config, Error, Event, Router};

/// A router-level client: a bare `Router`, its events and the health checks it sent (time, endpoint).
pub struct RouterPeer {
    pub router: Router,
    pub events: Vec<(u64, Event)>,
    pub health_checks: Vec<(u64, usize)>,
}

impl RouterPeer {
    pub(super) fn new(router: Router) -> RouterPeer {
        RouterPeer { router, events: Vec::new(), health_checks: Vec::new() }
    }
}

type Resolver = Box<dyn FnMut(&ResolverInput) -> ResolverAnswer>;

/// A call-level client: the per-call core with what the executor gives it (a store, `navigator.onLine`, the
/// app's conflict function) and what it told the app.
pub struct ClientPeer {
    pub client: Client,
    /// Where the random bytes of each call's ids come from (seeded: runs repeat).
    pub ids: fastrand::Rng,
    pub store: MemoryStore,
    pub online: bool,
    pub events: Vec<(u64, ClientEvent)>,
    /// Ended calls: when, and with what.
    pub results: HashMap<CallId, (u64, Result<Output, Failure>)>,
    /// The app's conflict function, if the test gives one.
    pub resolver: Option<Resolver>,
    pub asked: Vec<ResolverInput>,
    /// Make the next store operations fail (a broken disk).
    pub store_fails: bool,
}

/// A request the core wants sent: the world sends it.
pub(super) enum Out {
    Send { call: CallId, request: Request },
    Check(Request),
}

impl ClientPeer {
    /// A client of `config` with an empty memory store, opened and ready at `now_ms`.
    pub(super) fn new(config: Config, settings: Settings, now_ms: u64) -> ClientPeer {
        let mut client = Client::new(config, settings, 42);
        client.handle_opened(now_ms, true, Ok(Vec::new())); // the memory store stands in for a persistent one
        client.handle_ready();
        ClientPeer {
            client,
            ids: fastrand::Rng::with_seed(7),
            store: MemoryStore::new(),
            online: true,
            events: Vec::new(),
            results: HashMap::new(),
            resolver: None,
            asked: Vec::new(),
            store_fails: false,
        }
    }

    /// Carries out the core's effects up to the next request to send, which it returns.
    pub(super) fn carry_out(&mut self, now: u64) -> Option<Out> {
        while let Some(effect) = self.client.poll_effect() {
            match effect {
                Effect::Send { call, request } => return Some(Out::Send { call, request }),
                Effect::Check(request) => return Some(Out::Check(request)),
                Effect::Store { op: StoreOp::UseMemory, .. } => {
                    self.store = MemoryStore::new();
                    self.store_fails = false;
                }
                Effect::Store { token, op } => {
                    let result = if self.store_fails {
                        Err(Error::Storage { message: "the disk is broken".into() })
                    } else {
                        pollster::block_on(run(&self.store, &op))
                    };
                    self.client.handle_stored(token, now, result);
                }
                Effect::Emit(event) => self.events.push((now, event)),
                Effect::Announce(_) => {}
                Effect::AskResolver { call, input } => {
                    self.asked.push(input.clone());
                    let answer = match self.resolver.as_mut() {
                        Some(f) => f(&input),
                        None => Ok(None),
                    };
                    self.client.handle_resolver(call, now, answer);
                }
                Effect::Lock { call, .. } => self.client.handle_locked(call, now),
                Effect::Unlock { .. } => {}
                Effect::Complete { call, result } => {
                    self.results.insert(call, (now, result));
                }
            }
        }
        None
    }

    /// The names of the events emitted so far, in order.
    pub fn event_names(&self) -> Vec<&'static str> {
        self.events.iter().map(|(_, e)| e.name()).collect()
    }

    pub fn outbox(&self) -> Vec<OutboxEntry> {
        pollster::block_on(self.store.outbox()).expect("memory store")
    }
}

async fn run(store: &MemoryStore, op: &StoreOp) -> Result<Stored, Error> {
    match op {
        StoreOp::PutEntry(e) => store.put_entry(e).await.map(|_| Stored::Done),
        StoreOp::DeleteEntry { collection, id } => store.delete_entry(collection, id).await.map(|_| Stored::Done),
        StoreOp::LoadOutbox => store.outbox().await.map(Stored::Outbox),
        StoreOp::AddOutbox { entry, cached } => {
            store.add_outbox(entry, cached.as_ref()).await.map(|added| if added { Stored::Done } else { Stored::Taken })
        }
        StoreOp::PutOutbox { entry, cached } => store.put_outbox(entry, cached.as_ref()).await.map(|_| Stored::Done),
        StoreOp::DeleteOutbox { seq } => store.delete_outbox(*seq).await.map(|_| Stored::Done),
        StoreOp::Clear => store.clear().await.map(|_| Stored::Done),
        StoreOp::UseMemory => Ok(Stored::Done),
    }
}
