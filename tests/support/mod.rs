//! One simulator for the deterministic tests (quinn-proto's `Pair`, for our protocols), generic over the server
//! model: a `World` holds a virtual clock, a simulated cluster (`ServerModel`: `sim::PgCluster`,
//! `sim_couch::CouchCluster`) and its clients, and one loop (`run_until`) moves the clock from one due thing to
//! the next, delivering every answer in flight in time order and polling every client's health checks and timers.
//!
//! Two kinds of clients share that clock. A router-level client (`RouterPeer`) is a bare `core::Router`: a test
//! runs one call at a time through it (`call`, `call_with`), each request blocking the call until its answer
//! arrives while the clock goes on for everyone else, and a waiting call wakes early when its router has an
//! event (a topology change), as the executor wakes waiting operations. A call-level client (`ClientPeer`) is the
//! per-call core (`core::client::Client`) with a real `MemoryStore`, cross-tab locks granted at once and the app's
//! conflict function scripted by the test: this loop carries out its effects, playing the executor's part
//! (`src/wasm/executor.rs`) without a browser. Nothing here is used by the SDK.

#![allow(dead_code)]

mod peers;

use std::ops::{Deref, DerefMut};

use replikit::core::client::{CallId, CallSpec, Env, Failure, Output, Platform, Settings};
use replikit::core::protocol::{Outcome, Request};
use replikit::core::{Action, CallOptions, Completed, Config, EndpointId, Error, Operation, Router, Step, Topology};

use peers::Out;
pub use peers::{ClientPeer, RouterPeer};

/// Which client of the world sends a request: router-level clients and call-level clients are numbered apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PeerId {
    Router(usize),
    Client(usize),
}

/// A request's sender, as the server model sees it.
#[derive(Clone, Copy)]
pub struct Sender<'a> {
    pub peer: PeerId,
    /// How the sender saw every endpoint when it sent the request, for the model's log; `None` for a request
    /// the test sent itself.
    pub view: Option<&'a Topology>,
}

/// A simulated cluster: when the answer to a request sent at `now_ms` arrives, and what it is.
pub trait ServerModel {
    fn answer(&mut self, now_ms: u64, from: Sender<'_>, request: &Request) -> (u64, Outcome);
    fn answer_health(&mut self, now_ms: u64, from: PeerId, request: &Request) -> (u64, Outcome);
}

/// What an answer in flight answers.
enum Awaits {
    /// A router-level client's health check.
    RouterCheck { router: usize, sent_ms: u64 },
    /// A call-level client's health check.
    ClientCheck { client: usize, sent_ms: u64 },
    /// A request of a call-level client's call.
    ClientCall { client: usize, call: CallId },
}

struct InFlight {
    arrives_ms: u64,
    endpoint: EndpointId,
    awaits: Awaits,
    outcome: Outcome,
}

/// A hook run after a request's outcome has arrived and before the router sees it.
type Hook<'a, S> = dyn FnMut(&mut World<S>, &Request, &Outcome) + 'a;

/// The clock, the cluster and its clients. Derefs to the server model, so `w.kill(0)` or `w.nodes[1]` reach it.
pub struct World<S: ServerModel> {
    pub now: u64,
    pub server: S,
    pub routers: Vec<RouterPeer>,
    pub clients: Vec<ClientPeer>,
    in_flight: Vec<InFlight>,
}

impl<S: ServerModel> Deref for World<S> {
    type Target = S;

    fn deref(&self) -> &S {
        &self.server
    }
}

impl<S: ServerModel> DerefMut for World<S> {
    fn deref_mut(&mut self) -> &mut S {
        &mut self.server
    }
}

impl<S: ServerModel> World<S> {
    /// The cluster at time 0, with no client yet.
    pub fn new(server: S) -> World<S> {
        World { now: 0, server, routers: Vec::new(), clients: Vec::new(), in_flight: Vec::new() }
    }

    /// Adds a router-level client; returns its index (`PeerId::Router`).
    pub fn add_router(&mut self, config: Config, seed: u64) -> usize {
        self.routers.push(RouterPeer::new(Router::new(config, seed)));
        self.routers.len() - 1
    }

    /// Adds a call-level client on `platform` (seed 42) with an empty memory store, opened and ready; returns
    /// its index (`PeerId::Client`).
    pub fn add_client(&mut self, config: Config, platform: Platform) -> usize {
        let settings = Settings::resolve(&config, platform).expect("settings");
        self.add_client_with(config, settings)
    }

    pub fn add_client_with(&mut self, config: Config, settings: Settings) -> usize {
        self.clients.push(ClientPeer::new(config, settings, self.now));
        let k = self.clients.len() - 1;
        self.pump(k);
        k
    }

    /// The last call-level client leaves (its answers in flight are dropped); returns it.
    pub fn remove_client(&mut self) -> ClientPeer {
        let peer = self.clients.pop().expect("a call-level client");
        let k = self.clients.len();
        self.in_flight.retain(|f| {
            !matches!(f.awaits, Awaits::ClientCheck { client, .. } | Awaits::ClientCall { client, .. } if client == k)
        });
        peer
    }

    pub fn router(&self, c: usize) -> &Router {
        &self.routers[c].router
    }

    // ----- the clock -----

    /// The one loop: polls every client (health checks sent, events recorded, effects carried out), then stops if
    /// `done` holds (true) or nothing is due by `limit` (false, the clock at `limit`); otherwise moves the clock
    /// to the next answer or timer, delivers what has arrived by then in time order, and goes on.
    pub fn run_until(&mut self, mut done: impl FnMut(&Self) -> bool, limit: u64) -> bool {
        loop {
            self.poll_routers();
            for k in 0..self.clients.len() {
                self.pump(k);
            }
            if done(self) {
                return true;
            }
            let next = (self.in_flight.iter().map(|f| f.arrives_ms))
                .chain(self.routers.iter().filter_map(|p| p.router.poll_timeout()))
                .chain(self.clients.iter().filter_map(|p| p.client.poll_timeout()))
                .filter(|&t| t <= limit)
                .min();
            let Some(next) = next else {
                self.now = self.now.max(limit);
                return false;
            };
            self.now = self.now.max(next);
            self.deliver();
            for peer in &mut self.clients {
                peer.client.handle_timeout(self.now);
            }
        }
    }

    /// Runs the clock to `t`; with `wake`, stops early (returning true) once that router has something to tell,
    /// the way the executor wakes waiting operations on a topology change.
    pub fn advance_to(&mut self, t: u64, wake: Option<usize>) -> bool {
        let told = wake.map(|c| (c, self.routers[c].events.len()));
        self.run_until(|w| told.is_some_and(|(c, n)| w.routers[c].events.len() > n), t)
    }

    pub fn run_for(&mut self, ms: u64) {
        let t = self.now + ms;
        self.advance_to(t, None);
    }

    /// Health checks out and events in, for every router-level client.
    fn poll_routers(&mut self) {
        let now = self.now;
        for (c, peer) in self.routers.iter_mut().enumerate() {
            for request in peer.router.poll_health_checks(now) {
                peer.health_checks.push((now, request.endpoint.0));
                let (arrives_ms, outcome) = self.server.answer_health(now, PeerId::Router(c), &request);
                let awaits = Awaits::RouterCheck { router: c, sent_ms: now };
                self.in_flight.push(InFlight { arrives_ms, endpoint: request.endpoint, awaits, outcome });
            }
            while let Some(event) = peer.router.poll_event() {
                peer.events.push((now, event));
            }
        }
    }

    /// Hands every answer that has arrived to its client, earliest first.
    fn deliver(&mut self) {
        let now = self.now;
        let (mut due, rest): (Vec<_>, Vec<_>) = self.in_flight.drain(..).partition(|f| f.arrives_ms <= now);
        self.in_flight = rest;
        due.sort_by_key(|f| f.arrives_ms);
        for f in due {
            match f.awaits {
                Awaits::RouterCheck { router, sent_ms } => {
                    self.routers[router].router.handle_health(f.endpoint, now, (now - sent_ms) as f64, f.outcome)
                }
                Awaits::ClientCheck { client, sent_ms } => {
                    self.clients[client].client.handle_health(f.endpoint, now, (now - sent_ms) as f64, f.outcome)
                }
                Awaits::ClientCall { client, call } => {
                    self.clients[client].client.handle_response(call, now, f.outcome)
                }
            }
        }
    }

    // ----- router-level calls -----

    /// Runs one call of router `c` to completion; returns its result and how long it took.
    pub fn call(&mut self, c: usize, action: Action, options: CallOptions) -> (Result<Completed, Error>, u64) {
        self.call_with(c, action, options, |_, _, _| {})
    }

    /// As `call`, with `hook` run after each request's outcome has arrived and before the router sees it (to
    /// kill a node between a write's read and its write, replicate before a retry, ...).
    pub fn call_with(
        &mut self,
        c: usize,
        action: Action,
        options: CallOptions,
        mut hook: impl FnMut(&mut World<S>, &Request, &Outcome),
    ) -> (Result<Completed, Error>, u64) {
        let start = self.now;
        let mut op = self.routers[c].router.start(action, options, self.now);
        let r = self.drive(c, &mut op, &mut hook);
        (r, self.now - start)
    }

    pub fn op(&mut self, c: usize, action: Action) -> Result<Completed, Error> {
        self.call(c, action, CallOptions::default()).0
    }

    /// Steps `op` of router `c` to completion.
    fn drive(&mut self, c: usize, op: &mut Operation, hook: &mut Hook<'_, S>) -> Result<Completed, Error> {
        for _ in 0..100_000 {
            match self.routers[c].router.step(op, self.now) {
                Step::Done(r) => return r,
                Step::Wait { until_ms } => {
                    assert!(until_ms >= self.now, "a wait into the past: {until_ms} < {}", self.now);
                    self.advance_to(until_ms, Some(c));
                }
                Step::Send(request) => {
                    let outcome = self.request(c, &request, true);
                    hook(self, &request, &outcome);
                    self.routers[c].router.handle_outcome(op, self.now, outcome);
                }
            }
        }
        panic!("an operation that never ends");
    }

    /// Sends one request as router `c` (outside any call) and waits, on the clock, for its outcome.
    pub fn send(&mut self, c: usize, request: &Request) -> Outcome {
        self.request(c, request, false)
    }

    fn request(&mut self, c: usize, request: &Request, in_call: bool) -> Outcome {
        let from = Sender { peer: PeerId::Router(c), view: in_call.then(|| self.routers[c].router.topology()) };
        let (arrives_ms, outcome) = self.server.answer(self.now, from, request);
        self.advance_to(arrives_ms, None);
        outcome
    }

    // ----- call-level calls -----

    /// Starts a call of client `k` now; returns its id (run the clock to finish it).
    pub fn start_spec(&mut self, k: usize, spec: CallSpec) -> CallId {
        let peer = &mut self.clients[k];
        // The executor's crypto.getRandomValues, made reproducible: a generator per client, seeded by its index.
        let mut random = [0u8; 20];
        random.iter_mut().for_each(|b| *b = peer.ids.u8(..));
        let id = peer.client.start_call(spec, Env { now_ms: self.now, online: peer.online, random });
        self.pump(k);
        id
    }

    /// Runs a call of client `k` to its end; returns its result and how long it took.
    pub fn call_spec(&mut self, k: usize, spec: CallSpec) -> (Result<Output, Failure>, u64) {
        let start = self.now;
        let id = self.start_spec(k, spec);
        self.run_until(|w| w.clients[k].results.contains_key(&id), start + 600_000);
        let (at, result) = self.clients[k].results.remove(&id).expect("the call ended within 10 virtual minutes");
        (result, at - start)
    }

    /// Carries out every client's effects now (after a test fed a client an input directly).
    pub fn pump_all(&mut self) {
        for k in 0..self.clients.len() {
            self.pump(k);
        }
    }

    /// Carries out every effect client `k` has (the executor's job); its requests go out, their answers in flight.
    fn pump(&mut self, k: usize) {
        let now = self.now;
        while let Some(out) = self.clients[k].carry_out(now) {
            let peer = &self.clients[k];
            let (request, awaits, (arrives_ms, outcome)) = match out {
                Out::Send { call, request } => {
                    let from = Sender { peer: PeerId::Client(k), view: Some(peer.client.router().topology()) };
                    let answer = self.server.answer(now, from, &request);
                    (request, Awaits::ClientCall { client: k, call }, answer)
                }
                Out::Check(request) => {
                    let answer = self.server.answer_health(now, PeerId::Client(k), &request);
                    (request, Awaits::ClientCheck { client: k, sent_ms: now }, answer)
                }
            };
            self.in_flight.push(InFlight { arrives_ms, endpoint: request.endpoint, awaits, outcome });
        }
    }
}
