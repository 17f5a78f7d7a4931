//! One simulator harness for the per-call core (`core::client::Client`), generic over the server model:
//! a virtual clock, requests answered by a simulated cluster after their latency, store operations carried out
//! on a real `MemoryStore`, cross-tab locks granted at once, and the app's conflict function scripted by the
//! test. It plays the executor's part (`src/wasm/executor.rs`) without a browser, deterministically.

#![allow(dead_code)]

use std::collections::HashMap;

use replikit::cache::{MemoryStore, Store};
use replikit::core::client::{
    CallId, CallSpec, Client, ClientEvent, Effect, Env, Failure, Output, Platform, ResolverAnswer, ResolverInput,
    Settings, StoreOp, Stored,
};
use replikit::core::protocol::{Outcome, Request};
use replikit::core::{Config, Error};

/// A simulated cluster: when a request's answer arrives, and what it is.
pub trait ServerModel {
    fn answer(&mut self, now_ms: u64, request: &Request) -> (u64, Outcome);
    fn answer_health(&mut self, now_ms: u64, request: &Request) -> (u64, Outcome);
}

enum Pending {
    Call(CallId),
    Check { sent_ms: u64 },
}

type Resolver = Box<dyn FnMut(&ResolverInput) -> ResolverAnswer>;

pub struct Harness<S: ServerModel> {
    pub now: u64,
    pub server: S,
    pub client: Client,
    pub store: MemoryStore,
    pub online: bool,
    pub events: Vec<(u64, ClientEvent)>,
    pub results: HashMap<CallId, (u64, Result<Output, Failure>)>,
    /// Answers in flight: (arrival time, what it answers, the request, its outcome).
    in_flight: Vec<(u64, Pending, Request, Outcome)>,
    /// The app's conflict function, if the test gives one.
    pub resolver: Option<Resolver>,
    pub asked: Vec<ResolverInput>,
    /// Make the next store operations fail (a broken disk).
    pub store_fails: bool,
}

impl<S: ServerModel> Harness<S> {
    /// A client of `config` with a memory store; `browser`: queued offline writes on unless the options say
    /// otherwise.
    pub fn new(server: S, config: Config, browser: bool) -> Harness<S> {
        Self::on(server, config, Platform { browser, has_indexeddb: false, has_resolver: false })
    }

    /// A client on `platform` (e.g. with a conflict function: `has_resolver`; set `resolver` to answer).
    pub fn on(server: S, config: Config, platform: Platform) -> Harness<S> {
        let settings = Settings::resolve(&config, platform).expect("settings");
        Self::with_settings(server, config, settings)
    }

    pub fn with_settings(server: S, config: Config, settings: Settings) -> Harness<S> {
        let mut h = Harness {
            now: 0,
            server,
            client: Client::new(config, settings, 42),
            store: MemoryStore::new(),
            online: true,
            events: Vec::new(),
            results: HashMap::new(),
            in_flight: Vec::new(),
            resolver: None,
            asked: Vec::new(),
            store_fails: false,
        };
        h.client.handle_opened(0, Ok(Vec::new()));
        h.client.handle_ready();
        h.pump();
        h
    }

    /// Starts a call now; returns its id (run the clock to finish it).
    pub fn start(&mut self, spec: CallSpec) -> CallId {
        let id = self.client.start_call(spec, Env { now_ms: self.now, online: self.online });
        self.pump();
        id
    }

    /// Runs a call to its end; returns its result and how long it took (virtual ms).
    pub fn call(&mut self, spec: CallSpec) -> (Result<Output, Failure>, u64) {
        let start = self.now;
        let id = self.start(spec);
        self.run_until(|h| h.results.contains_key(&id), start + 600_000);
        let (at, result) = self.results.remove(&id).expect("the call ended within 10 virtual minutes");
        (result, at - start)
    }

    /// Advances the clock by `ms`, delivering everything due.
    pub fn run_for(&mut self, ms: u64) {
        let until = self.now + ms;
        self.run_until(|_| false, until);
    }

    /// Advances until `done` holds or the clock reaches `limit`.
    pub fn run_until(&mut self, mut done: impl FnMut(&Self) -> bool, limit: u64) {
        loop {
            self.pump();
            if done(self) {
                return;
            }
            let next_answer = self.in_flight.iter().map(|p| p.0).min();
            let next = [next_answer, self.client.poll_timeout()].into_iter().flatten().min();
            let Some(next) = next.filter(|t| *t <= limit) else {
                self.now = self.now.max(limit);
                return;
            };
            self.now = self.now.max(next);
            let now = self.now;
            let (due, rest): (Vec<_>, Vec<_>) = self.in_flight.drain(..).partition(|p| p.0 <= now);
            self.in_flight = rest;
            for (_, pending, request, outcome) in due {
                match pending {
                    Pending::Call(call) => self.client.handle_response(call, now, outcome),
                    Pending::Check { sent_ms } => {
                        self.client.handle_health(request.endpoint, now, (now - sent_ms) as f64, outcome)
                    }
                }
            }
            self.client.handle_timeout(now);
        }
    }

    /// Carries out every effect the core has (the executor's job).
    pub fn pump(&mut self) {
        while let Some(effect) = self.client.poll_effect() {
            let now = self.now;
            match effect {
                Effect::Send { call, request } => {
                    let (at, outcome) = self.server.answer(now, &request);
                    self.in_flight.push((at, Pending::Call(call), request, outcome));
                }
                Effect::Check(request) => {
                    let (at, outcome) = self.server.answer_health(now, &request);
                    self.in_flight.push((at, Pending::Check { sent_ms: now }, request, outcome));
                }
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
    }

    /// The names of the events emitted so far, in order.
    pub fn event_names(&self) -> Vec<&'static str> {
        self.events.iter().map(|(_, e)| e.name()).collect()
    }

    pub fn outbox(&self) -> Vec<replikit::core::outbox::OutboxEntry> {
        pollster::block_on(self.store.outbox()).expect("memory store")
    }
}

async fn run(store: &MemoryStore, op: &StoreOp) -> Result<Stored, Error> {
    match op {
        StoreOp::PutEntry(e) => store.put_entry(e).await.map(|_| Stored::Done),
        StoreOp::DeleteEntry { collection, id } => store.delete_entry(collection, id).await.map(|_| Stored::Done),
        StoreOp::LoadOutbox => store.outbox().await.map(Stored::Outbox),
        StoreOp::PutOutbox { entry, cached } => store.put_outbox(entry, cached.as_ref()).await.map(|_| Stored::Done),
        StoreOp::DeleteOutbox { seq } => store.delete_outbox(*seq).await.map(|_| Stored::Done),
        StoreOp::Clear => store.clear().await.map(|_| Stored::Done),
        StoreOp::UseMemory => Ok(Stored::Done),
    }
}

// ----- the two server models -----

impl ServerModel for crate::sim::Sim {
    fn answer(&mut self, now_ms: u64, request: &Request) -> (u64, Outcome) {
        self.now = now_ms;
        crate::sim::Sim::answer(self, request)
    }

    fn answer_health(&mut self, now_ms: u64, request: &Request) -> (u64, Outcome) {
        self.now = now_ms;
        crate::sim::Sim::answer_health(self, request.endpoint.0, request)
    }
}

/// A CouchDB cluster as client `client` of it sees it (its latencies to each node).
pub struct CouchFrom {
    pub cluster: crate::sim_couch::Cluster,
    pub client: usize,
}

impl ServerModel for CouchFrom {
    fn answer(&mut self, now_ms: u64, request: &Request) -> (u64, Outcome) {
        self.cluster.now = now_ms;
        self.cluster.answer(self.client, request)
    }

    fn answer_health(&mut self, now_ms: u64, request: &Request) -> (u64, Outcome) {
        self.cluster.now = now_ms;
        self.cluster.answer_health(self.client, request.endpoint.0, request)
    }
}
