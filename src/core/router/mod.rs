//! The router: where each request goes, what to do with each answer, and when to try again.
//!
//! A sans-IO state machine in the style of quinn-proto. Inputs: `start` (a new call), `handle_outcome` (what a
//! request got), `handle_health` (what a health check got), `set_paused`. Outputs: `step` (send this / wait /
//! done), `poll_health_checks` (checks to send), `poll_timeout` (when to call again), `poll_event` (what to
//! tell the app). Time is always an argument. After any input, poll the outputs.
//!
//! Rules (docs/ARCHITECTURE.md has the whole list): writes go only to the trusted primary, keep one
//! idempotency key across attempts and wait up to `primaryWaitMs` for a primary; reads follow the read
//! preference and move to another endpoint at once on a failure; `lagging` is not a failure; 4xx other than
//! 421 are final; retries back off with full jitter within a retry budget.

mod operation;

use std::collections::VecDeque;

use crate::core::action::{Action, CallOptions, Cause, Completed};
use crate::core::error::Error;
use crate::core::options::{Config, Consistency, ProtocolKind, TopologyKind};
use crate::core::protocol::{
    self, couchdb::CouchDb, replikit::Replikit, Adapter, Attempt, Call, EndpointId, Outcome, Request, Verdict,
};
use crate::core::retry::{backoff_ms, RetryBudget};
use crate::core::selection::{select_read, select_write};
use crate::core::topology::{EndpointState, EndpointView, Topology, TopologyEvent};

pub use operation::{Operation, Step};

/// While an operation waits for a usable endpoint it is stepped at least this often.
const WAIT_SLICE_MS: u64 = 250;

/// Something to tell the app (`db.on(...)`).
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
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
    /// This client's write at (`term`, `position`) was lost in a failover; the session starts afresh.
    SessionLost {
        term: u64,
        position: u64,
    },
}

/// The client's decision-maker. See the module docs for the order of calls.
#[derive(Debug)]
pub struct Router {
    config: Config,
    adapter: Box<dyn Adapter>,
    topology: Topology,
    budget: RetryBudget,
    rng: fastrand::Rng,
    /// The highest position among this client's acknowledged writes (read-your-writes).
    session_position: u64,
    /// The term of `session_position`, when the server said it: positions of different terms are different
    /// histories (a failover can lose a tail), so the pair names the session's last write.
    session_term: Option<u64>,
    /// Multi-primary: the node that took this client's last write; reads stay there while it is up
    /// (read-your-writes without waiting for replication).
    session_endpoint: Option<EndpointId>,
    events: VecDeque<Event>,
    /// Why each endpoint's last health check failed (None while it answers).
    health_causes: Vec<Option<Cause>>,
}

impl Router {
    /// `seed` feeds selection, jitter and generated ids; tests fix it.
    pub fn new(config: Config, seed: u64) -> Self {
        let multi = config.topology == TopologyKind::MultiPrimary;
        let endpoint_count = config.endpoints.len();
        let topology = Topology::new(&config.endpoints, config.health.clone(), multi);
        let adapter: Box<dyn Adapter> = match (config.protocol, config.database.as_deref()) {
            (ProtocolKind::CouchDb, Some(db)) => Box::new(CouchDb::new(db)),
            (ProtocolKind::CouchDb, None) => Box::new(CouchDb::new("replikit")), // Config requires a database
            (ProtocolKind::Replikit, _) => Box::new(Replikit),
        };
        Router {
            config,
            adapter,
            topology,
            budget: RetryBudget::default(),
            rng: fastrand::Rng::with_seed(seed),
            session_position: 0,
            session_term: None,
            session_endpoint: None,
            events: VecDeque::new(),
            health_causes: vec![None; endpoint_count],
        }
    }

    // ----- getters -----

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn topology(&self) -> &Topology {
        &self.topology
    }

    pub fn session_position(&self) -> u64 {
        self.session_position
    }

    /// The protocol adapter (the wasm layer asks it for the optimistic version of a queued write).
    pub fn adapter(&self) -> &dyn Adapter {
        self.adapter.as_ref()
    }

    /// Whether every endpoint is known to be down (checked and failing): a call cannot be served now.
    pub fn all_down(&self) -> bool {
        self.topology.ids().all(|id| self.topology.state(id) == EndpointState::Down)
    }

    /// Why `op` could not be served: what its attempts met, then what the health checks of the endpoints it did
    /// not reach say.
    pub fn causes(&self, op: &Operation) -> Vec<Cause> {
        let mut causes = op.causes.clone();
        for cause in self.health_causes.iter().flatten() {
            if !causes.iter().any(|c| c.endpoint == cause.endpoint) {
                causes.push(cause.clone());
            }
        }
        causes
    }

    /// Gives up on `op` (the app aborted it): its request in flight no longer counts against the endpoint.
    pub fn abandon(&mut self, op: &mut Operation) {
        if let Some(endpoint) = op.in_flight.take() {
            self.topology.end_request(endpoint);
        }
    }

    fn multi(&self) -> bool {
        self.config.topology == TopologyKind::MultiPrimary
    }

    /// A new UUIDv7 (time-ordered): document ids for `create` and idempotency keys.
    pub fn new_id(&mut self, now_ms: u64) -> String {
        let mut random = [0u8; 10];
        for b in &mut random {
            *b = self.rng.u8(..);
        }
        uuid::Builder::from_unix_timestamp_millis(now_ms, &random).into_uuid().to_string()
    }

    // ----- operations -----

    /// Starts a call. Writes get their idempotency key here, once.
    pub fn start(&mut self, action: Action, options: CallOptions, now_ms: u64) -> Operation {
        let idempotency_key = match options.idempotency_key {
            Some(key) if action.is_write() => Some(key),
            _ => action.is_write().then(|| self.new_id(now_ms)),
        };
        Operation {
            action,
            read_preference: options.read_preference.unwrap_or_else(|| self.config.read_preference.clone()),
            durability: options.durability.unwrap_or(self.config.durability),
            idempotency_key,
            started_ms: now_ms,
            written_at_ms: options.written_at_ms.unwrap_or(now_ms),
            retry_same: None,
            unknown_at: None,
            attempts: 0,
            excluded: Vec::new(),
            lagging: Vec::new(),
            not_before: now_ms,
            in_flight: None,
            follow_up: None,
            sent_follow_up: None,
            result: None,
            last_endpoint: None,
            last_status: None,
            causes: Vec::new(),
        }
    }

    /// What to do next for `op`.
    pub fn step(&mut self, op: &mut Operation, now_ms: u64) -> Step {
        if let Some(result) = op.result.take() {
            return Step::Done(result);
        }
        if op.in_flight.is_some() {
            return Step::Done(Err(Error::Protocol { message: "step called while a request is in flight".into() }));
        }
        if let Some((endpoint, follow_up)) = op.follow_up.take() {
            op.in_flight = Some(endpoint);
            self.topology.begin_request(endpoint);
            let request = self.request(endpoint, follow_up.call.clone());
            op.sent_follow_up = Some(follow_up);
            return Step::Send(request);
        }
        if now_ms < op.not_before {
            return Step::Wait { until_ms: op.not_before };
        }
        let write = op.action.is_write();
        let target = if write { self.write_target(op) } else { self.read_target(op) };
        let Some(endpoint) = target else {
            return self.wait_for_endpoint(op, now_ms);
        };
        op.attempts += 1;
        let call = match self.adapter.request(&op.action, &self.attempt(op)) {
            Ok(call) => call,
            Err(e) => return Step::Done(Err(e)),
        };
        if op.attempts == 1 {
            self.budget.deposit();
        }
        op.in_flight = Some(endpoint);
        self.topology.begin_request(endpoint);
        Step::Send(self.request(endpoint, call))
    }

    /// A write acknowledged at `position` of `term`: the session's mark moves forward in one history. A later term
    /// replaces it (the node checked the old mark against its history, see `lose_session`); an answer of an
    /// older term (a stale primary) is not this session's history and leaves it alone.
    fn advance_session(&mut self, term: Option<u64>, position: u64) {
        match (term, self.session_term) {
            (Some(t), Some(s)) if t < s => {}
            (Some(t), Some(s)) if t > s => {
                self.session_term = Some(t);
                self.session_position = position;
            }
            (t, _) => {
                self.session_term = t.or(self.session_term);
                self.session_position = self.session_position.max(position);
            }
        }
    }

    /// A node said this session's last write is not in its history: tell the app and start afresh (reads would
    /// otherwise fail for good). The call that found out fails with `session_lost` (a read) or carries on (a write,
    /// which was applied).
    fn lose_session(&mut self) {
        if let Some(term) = self.session_term {
            self.events.push_back(Event::SessionLost { term, position: self.session_position });
        }
        self.session_term = None;
        self.session_position = 0;
    }

    fn attempt<'a>(&self, op: &'a Operation) -> Attempt<'a> {
        let session = self.config.consistency == Consistency::Session && self.session_position > 0;
        Attempt {
            key: op.idempotency_key.as_deref(),
            durability: op.durability,
            min_position: session.then_some(self.session_position),
            min_term: self.session_term.filter(|_| session),
            written_at_ms: op.written_at_ms,
            retried: op.attempts > 1,
        }
    }

    fn write_target(&mut self, op: &mut Operation) -> Option<EndpointId> {
        if !self.multi() {
            return self.topology.primary();
        }
        if let Some(e) = op.retry_same.take().filter(|e| self.topology.state(*e) != EndpointState::Down) {
            return Some(e);
        }
        self.sticky(&op.excluded).or_else(|| select_write(&self.topology, &op.excluded, &mut self.rng))
    }

    /// Multi-primary: the node that took this session's last write, while it takes writes. Its writes and reads
    /// stay there, so the session sees its own writes in order without waiting for replication.
    fn sticky(&self, avoid: &[EndpointId]) -> Option<EndpointId> {
        let on = self.config.consistency == Consistency::Session;
        self.session_endpoint.filter(|e| on && self.topology.writable(*e) && !avoid.contains(e))
    }

    fn read_target(&mut self, op: &Operation) -> Option<EndpointId> {
        let avoid: Vec<EndpointId> = op.excluded.iter().chain(&op.lagging).copied().collect();
        if self.multi() {
            // Read-your-writes: the node that took this session's writes has them, replicated or not.
            return self.sticky(&avoid).or_else(|| select_write(&self.topology, &avoid, &mut self.rng));
        }
        let max_staleness = op.read_preference.max_staleness_ms.unwrap_or(self.config.max_staleness_ms);
        select_read(&self.topology, &op.read_preference, max_staleness, &avoid, &mut self.rng).or_else(|| {
            // Every replica is behind this session's writes: the primary has them.
            let p = self.topology.primary()?;
            (!op.lagging.is_empty() && !avoid.contains(&p)).then_some(p)
        })
    }

    fn wait_for_endpoint(&mut self, op: &mut Operation, now_ms: u64) -> Step {
        let waited = now_ms.saturating_sub(op.started_ms);
        let deadline = op.started_ms + self.config.primary_wait_ms;
        let write = op.action.is_write();
        let moves_on = !write || self.multi();
        if moves_on && (!op.excluded.is_empty() || !op.lagging.is_empty()) && op.attempts < self.max_attempts(op) {
            // Every candidate was tried: start a new round after a backoff.
            op.excluded.clear();
            op.lagging.clear();
            op.not_before = now_ms + backoff_ms(&self.config.retry, op.attempts, &mut self.rng);
            return Step::Wait { until_ms: op.not_before };
        }
        if now_ms >= deadline {
            let err = if write {
                Error::NoPrimary { waited_ms: waited }
            } else {
                Error::Unavailable { message: format!("no endpoint could serve the read within {waited} ms") }
            };
            return Step::Done(Err(err));
        }
        self.topology.request_check_all(now_ms);
        Step::Wait { until_ms: deadline.min(now_ms + WAIT_SLICE_MS) }
    }

    fn max_attempts(&self, op: &Operation) -> u32 {
        let base = self.config.retry.max_attempts;
        if op.action.is_write() && !self.multi() {
            base
        } else {
            base + self.topology.len() as u32 - 1
        }
    }

    fn request(&self, endpoint: EndpointId, call: Call) -> Request {
        let mut headers: Vec<(String, String)> =
            self.config.headers.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        headers.extend(call.headers);
        Request {
            endpoint,
            method: call.method,
            path: call.path,
            headers,
            body: call.body,
            timeout_ms: self.config.request_timeout_ms,
        }
    }

    /// What the request `step` handed out got. Call `step` again afterwards.
    pub fn handle_outcome(&mut self, op: &mut Operation, now_ms: u64, outcome: Outcome) {
        let Some(endpoint) = op.in_flight.take() else {
            return;
        };
        self.topology.end_request(endpoint);
        op.last_endpoint = Some(endpoint);
        op.last_status = match &outcome {
            Outcome::Response(r) => Some(r.status),
            _ => None,
        };
        let url = self.topology.url(endpoint).to_string();
        let follow_up = op.sent_follow_up.take();
        let response = match outcome {
            Outcome::Response(r) => r,
            failure => {
                let (note, err) = match failure {
                    Outcome::NetworkError(message) => {
                        (message.clone(), Error::Unavailable { message: format!("{url}: {message}") })
                    }
                    _ => {
                        let after_ms = self.config.request_timeout_ms;
                        (format!("timed out after {after_ms} ms"), Error::Timeout { after_ms })
                    }
                };
                let code = if matches!(err, Error::Timeout { .. }) { "timeout" } else { "unreachable" };
                op.causes.push(Cause { endpoint: url.clone(), code: code.into(), message: note.clone(), status: None });
                self.topology.handle_op_failure(endpoint, now_ms, note);
                if follow_up.is_some() && self.multi() {
                    // The write may have landed there: only that node can tell (see `Operation::retry_same`).
                    op.retry_same = Some(endpoint);
                    op.unknown_at = Some(endpoint);
                    op.not_before = now_ms + backoff_ms(&self.config.retry, op.attempts, &mut self.rng);
                }
                return self.retry_or_fail(op, endpoint, now_ms, err);
            }
        };
        if op.action.is_write() && (200..=299).contains(&response.status) {
            if response.session_lost {
                self.lose_session();
            }
            if let Some(p) = response.position {
                self.advance_session(response.term, p);
            }
        }
        let attempt = self.attempt(op);
        match self.adapter.interpret(&url, &op.action, &attempt, follow_up.as_ref(), response) {
            Verdict::Done { reply, raw, conflicts } => {
                if op.action.is_write() && self.multi() {
                    self.session_endpoint = Some(endpoint);
                }
                op.result = Some(Ok(Completed { reply, endpoint, raw, conflicts }));
            }
            Verdict::FollowUp(f) => op.follow_up = Some((endpoint, f)),
            Verdict::NotPrimary => {
                op.causes.push(Cause::of(&url, "not_primary", "not the primary any more", op.last_status));
                self.topology.handle_not_primary(endpoint, now_ms);
                let err = Error::Unavailable { message: format!("{url} is not the primary any more") };
                op.not_before = now_ms; // no backoff: waiting for the new primary is the delay
                self.retry_or_fail(op, endpoint, now_ms, err);
            }
            Verdict::Lagging => {
                op.causes.push(Cause::of(&url, "lagging", "behind this session's writes", op.last_status));
                op.lagging.push(endpoint);
                op.attempts -= 1; // not a failure: the read just goes elsewhere
            }
            // A 5xx or a malformed answer is the endpoint's fault: suspect it and try elsewhere (a write keeps
            // its key, so if this one was applied the retry finds that out).
            Verdict::Failed(err) => {
                op.causes.push(Cause::of(&url, err.code(), &err.to_string(), op.last_status));
                self.topology.handle_op_failure(endpoint, now_ms, err.to_string());
                self.retry_or_fail(op, endpoint, now_ms, err);
            }
            // The primary is healthy (its standbys are slow): no suspicion, only a backoff and the same key.
            Verdict::OutcomeUnknown(err) => {
                op.causes.push(Cause::of(&url, "outcome_unknown", &err.to_string(), op.last_status));
                self.retry_or_fail(op, endpoint, now_ms, err);
            }
            Verdict::Final(err) => {
                if let Error::SessionLost { term, position } = err {
                    // Concurrent reads may all meet it: the session is reset (and the app told) once.
                    if self.session_term == Some(term) && self.session_position == position {
                        self.lose_session();
                    }
                }
                let precondition =
                    matches!(err, Error::NotFound { .. } | Error::AlreadyExists { .. } | Error::Conflict { .. });
                op.result = Some(Err(match op.unknown_at.filter(|a| *a != endpoint) {
                    // The write may have landed on a node that cannot be asked now; another node's "no" does not
                    // know about it. Retryable: a later attempt with the same key finds it (or really fails).
                    Some(a) if precondition => Error::Unavailable {
                        message: format!(
                            "the write may have been applied at {} (its answer was lost) and {url} answered: {err}",
                            self.topology.url(a)
                        ),
                    },
                    _ => err,
                }));
            }
        }
    }

    fn retry_or_fail(&mut self, op: &mut Operation, endpoint: EndpointId, now_ms: u64, err: Error) {
        let write = op.action.is_write();
        if (!write || self.multi()) && op.retry_same != Some(endpoint) {
            op.excluded.push(endpoint); // it moves to another endpoint (a write too, when any node takes writes)
        }
        if op.attempts >= self.max_attempts(op) || !self.budget.withdraw(now_ms) {
            op.result = Some(Err(err));
            return;
        }
        self.events.push_back(Event::Retry {
            attempt: op.attempts,
            endpoint: self.topology.url(endpoint).to_string(),
            error: err,
        });
        if write && !self.multi() && op.not_before < now_ms {
            op.not_before = now_ms + backoff_ms(&self.config.retry, op.attempts, &mut self.rng);
        }
    }

    // ----- health -----

    /// Health checks to send now.
    pub fn poll_health_checks(&mut self, now_ms: u64) -> Vec<Request> {
        let headers: Vec<(String, String)> = self.config.headers.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        let timeout_ms = self.config.health.timeout_ms;
        let check = self.adapter.health_check();
        self.topology
            .poll_health_checks(now_ms)
            .into_iter()
            .map(|endpoint| Request {
                endpoint,
                method: check.method,
                path: check.path.clone(),
                headers: headers.iter().cloned().chain(check.headers.iter().cloned()).collect(),
                body: None,
                timeout_ms,
            })
            .collect()
    }

    /// What a health check got; `rtt_ms` is how long it took.
    pub fn handle_health(&mut self, endpoint: EndpointId, now_ms: u64, rtt_ms: f64, outcome: Outcome) {
        let url = self.topology.url(endpoint).to_string();
        let (result, cause) = match outcome {
            Outcome::Response(r) if r.status == 200 => match self.adapter.parse_health(&url, &r.body) {
                Ok(h) => (Ok((h, rtt_ms)), None),
                // A 200 that is not a health report: some other server answers at this URL.
                Err(e) => (Err(e.to_string()), Some(("not_a_gateway", Some(200)))),
            },
            Outcome::Response(r) => {
                let code = match (r.status, protocol::parse_error(&r.body)) {
                    (401 | 403, _) => "unauthorized",
                    (_, Some(_)) if r.status >= 500 => "unavailable",
                    // A 404 (or another 4xx) without our error body: not a Replikit endpoint, or a wrong path.
                    (400..=499, _) => "not_a_gateway",
                    _ => "unavailable",
                };
                let message = match protocol::parse_error(&r.body) {
                    Some(e) => format!("HTTP {} {}: {}", r.status, e.code, e.message),
                    None => format!("HTTP {}", r.status),
                };
                (Err(message), Some((code, Some(r.status))))
            }
            Outcome::NetworkError(m) => (Err(m), Some(("unreachable", None))),
            Outcome::Timeout => {
                (Err(format!("no answer within {} ms", self.config.health.timeout_ms)), Some(("timeout", None)))
            }
        };
        self.health_causes[endpoint.0] = match (&result, cause) {
            (Err(message), Some((code, status))) => Some(Cause::of(&url, code, message, status)),
            _ => None,
        };
        self.topology.handle_health(endpoint, now_ms, result);
    }

    /// Pauses periodic health checks (a hidden tab) or resumes them at once.
    pub fn set_paused(&mut self, paused: bool, now_ms: u64) {
        self.topology.set_paused(paused, now_ms);
    }

    /// When to call `poll_health_checks` next.
    pub fn poll_timeout(&self) -> Option<u64> {
        self.topology.poll_timeout()
    }

    /// The next event for the app.
    pub fn poll_event(&mut self) -> Option<Event> {
        while let Some(e) = self.topology.poll_event() {
            let view = |t: &Topology, id: EndpointId| t.describe().swap_remove(id.0);
            let event = match e {
                TopologyEvent::Changed => Event::Topology(self.topology.describe()),
                TopologyEvent::PrimaryChanged(p) => Event::Primary {
                    url: p.map(|id| self.topology.url(id).to_string()),
                    term: p.map(|_| self.topology.max_term()),
                },
                TopologyEvent::EndpointDown(id) => Event::EndpointDown(view(&self.topology, id)),
                TopologyEvent::EndpointUp(id) => Event::EndpointUp(view(&self.topology, id)),
            };
            self.events.push_back(event);
        }
        self.events.pop_front()
    }
}
