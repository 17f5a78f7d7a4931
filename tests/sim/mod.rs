//! A simulated cluster for the router's deterministic tests (quinn-proto's `Pair`, for our protocol):
//! PostgreSQL-like nodes with roles, terms (timelines), positions (LSNs) and replication, a virtual clock,
//! scripted latencies, outages, hangs, promotions and split brains. Nothing here is used by the SDK.

#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap};

use replikit::core::protocol::{Method, Outcome, Request, Response};
use replikit::core::{Action, CallOptions, Completed, Config, Error, Event, Role, Router, Step};
use serde_json::{json, Map, Value};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeState {
    Up,
    /// Connections refused (a machine failure).
    Down,
    /// Accepts requests and never answers.
    Hung,
}

#[derive(Debug, Clone)]
pub struct Node {
    pub id: String,
    pub role: Role,
    pub term: u64,
    pub state: NodeState,
    pub latency_ms: u64,
    /// Copies every primary write at once (synchronous replication) unless false.
    pub replicating: bool,
    /// Reported lag while it is behind.
    pub lag_ms: u64,
    pub position: u64,
    pub docs: BTreeMap<(String, String), Value>,
    pub idempotency: HashMap<String, (u16, String)>,
    /// The next write is applied but its answer is lost (connection reset).
    pub drop_next_answer: bool,
    /// Another kind of server answers here: 404 with no Replikit error body to everything.
    pub not_a_gateway: bool,
}

/// One request a node received.
#[derive(Debug, Clone)]
pub struct Received {
    pub at_ms: u64,
    pub node: usize,
    pub method: Method,
    pub path: String,
    pub key: Option<String>,
    pub applied: bool,
}

pub struct Sim {
    pub now: u64,
    pub nodes: Vec<Node>,
    pub router: Router,
    pub log: Vec<Received>,
    pub events: Vec<(u64, Event)>,
    pub health_checks: Vec<(u64, usize)>,
    /// Health answers in flight: (arrival time, endpoint, sent at, outcome).
    pending: Vec<(u64, usize, u64, Outcome)>,
}

pub fn url(i: usize) -> String {
    format!("http://n{i}.test")
}

impl Sim {
    /// A primary and `replicas` replicas, every node 5 ms away; `options` are extra client options.
    pub fn new(replicas: usize, options: Value) -> Sim {
        let mut nodes = Vec::new();
        for i in 0..=replicas {
            nodes.push(Node {
                id: format!("n{i}"),
                role: if i == 0 { Role::Primary } else { Role::Replica },
                term: 1,
                state: NodeState::Up,
                latency_ms: 5,
                replicating: true,
                lag_ms: 0,
                position: 100,
                docs: BTreeMap::new(),
                idempotency: HashMap::new(),
                drop_next_answer: false,
                not_a_gateway: false,
            });
        }
        let mut opts = json!({
            "primary": url(0),
            "replicas": (1..=replicas).map(url).collect::<Vec<_>>(),
        });
        for (k, v) in options.as_object().cloned().unwrap_or_default() {
            opts[k] = v;
        }
        let config = Config::from_json(opts).expect("valid options");
        Sim {
            now: 0,
            nodes,
            router: Router::new(config, 42),
            log: Vec::new(),
            events: Vec::new(),
            health_checks: Vec::new(),
            pending: Vec::new(),
        }
    }

    /// As `new` (node 0 the primary, `tags.len() - 1` replicas), configured through `endpoints` with each node's
    /// role and `tags[i]` as its tags.
    pub fn with_tags(tags: &[Value], options: Value) -> Sim {
        let mut sim = Sim::new(tags.len() - 1, json!({}));
        let endpoints: Vec<Value> = tags
            .iter()
            .enumerate()
            .map(|(i, t)| json!({"url": url(i), "role": if i == 0 { "primary" } else { "replica" }, "tags": t}))
            .collect();
        let mut opts = json!({ "endpoints": endpoints });
        for (k, v) in options.as_object().cloned().unwrap_or_default() {
            opts[k] = v;
        }
        sim.router = Router::new(Config::from_json(opts).expect("valid options"), 42);
        sim
    }

    pub fn primary_index(&self) -> usize {
        self.nodes.iter().position(|n| n.role == Role::Primary && n.state == NodeState::Up).unwrap()
    }

    // ----- operator controls -----

    pub fn kill(&mut self, i: usize) {
        self.nodes[i].state = NodeState::Down;
    }

    pub fn hang(&mut self, i: usize) {
        self.nodes[i].state = NodeState::Hung;
    }

    /// Brings a node back as it was (an old primary still claims primary on its old term).
    pub fn start(&mut self, i: usize) {
        self.nodes[i].state = NodeState::Up;
    }

    /// Promotes `i` on a new timeline; the other live replicas follow it.
    pub fn promote(&mut self, i: usize) {
        let term = self.nodes.iter().map(|n| n.term).max().unwrap() + 1;
        self.nodes[i].role = Role::Primary;
        self.nodes[i].term = term;
        for (j, n) in self.nodes.iter_mut().enumerate() {
            if j != i && n.state == NodeState::Up && n.role == Role::Replica {
                n.term = term;
            }
        }
    }

    // ----- the clock -----

    /// Runs health checks and delivers their answers up to `t`; stops early (returning true) when the
    /// router has something to tell, the way the driver wakes waiting operations on a topology change.
    pub fn advance_to(&mut self, t: u64, stop_on_event: bool) -> bool {
        loop {
            for req in self.router.poll_health_checks(self.now) {
                let i = req.endpoint.0;
                self.health_checks.push((self.now, i));
                let (arrive, outcome) = self.answer_health(i, &req);
                self.pending.push((arrive, i, self.now, outcome));
            }
            let mut woke = false;
            while let Some(e) = self.router.poll_event() {
                self.events.push((self.now, e));
                woke = true;
            }
            if woke && stop_on_event {
                return true;
            }
            let next_answer = self.pending.iter().map(|p| p.0).min();
            let next_check = self.router.poll_timeout();
            let next = [next_answer, next_check].into_iter().flatten().filter(|&x| x <= t).min();
            let Some(next) = next else {
                self.now = self.now.max(t);
                return false;
            };
            self.now = self.now.max(next);
            let (due, rest): (Vec<_>, Vec<_>) = self.pending.drain(..).partition(|p| p.0 <= self.now);
            self.pending = rest;
            for (_, i, sent, outcome) in due {
                let rtt = (self.now - sent) as f64;
                self.router.handle_health(replikit::core::EndpointId(i), self.now, rtt, outcome);
            }
        }
    }

    pub fn run_for(&mut self, ms: u64) {
        let t = self.now + ms;
        self.advance_to(t, false);
    }

    // ----- operations -----

    /// Runs one call to completion; returns its result and how long it took.
    pub fn call(&mut self, action: Action, options: CallOptions) -> (Result<Completed, Error>, u64) {
        let start = self.now;
        let mut op = self.router.start(action, options, self.now);
        loop {
            match self.router.step(&mut op, self.now) {
                Step::Done(r) => return (r, self.now - start),
                Step::Wait { until_ms } => {
                    self.advance_to(until_ms, true);
                }
                Step::Send(req) => {
                    let outcome = self.send(&req);
                    self.router.handle_outcome(&mut op, self.now, outcome);
                }
            }
        }
    }

    pub fn op(&mut self, action: Action) -> Result<Completed, Error> {
        self.call(action, CallOptions::default()).0
    }

    fn reachability(&self, i: usize, timeout_ms: u64) -> Result<u64, (u64, Outcome)> {
        let n = &self.nodes[i];
        match n.state {
            NodeState::Up => Ok(self.now + n.latency_ms),
            NodeState::Down => Err((self.now + 1, Outcome::NetworkError("connection refused".into()))),
            NodeState::Hung => Err((self.now + timeout_ms, Outcome::Timeout)),
        }
    }

    pub fn answer_health(&self, i: usize, req: &Request) -> (u64, Outcome) {
        let arrive = match self.reachability(i, req.timeout_ms) {
            Ok(t) => t,
            Err(e) => return e,
        };
        let n = &self.nodes[i];
        if n.not_a_gateway {
            return (
                arrive,
                Outcome::Response(Response { status: 404, body: "Not Found".into(), node: None, position: None }),
            );
        }
        let primary_pos = self.nodes.iter().filter(|p| p.role == Role::Primary).map(|p| p.position).max().unwrap_or(0);
        let lag = match n.role {
            Role::Primary => Value::Null,
            Role::Replica => json!(if n.position < primary_pos { n.lag_ms } else { 0 }),
        };
        let body = json!({"nodeId": n.id, "role": n.role, "term": n.term, "position": n.position, "lagMs": lag, "readOnly": n.role == Role::Replica});
        (arrive, ok(200, &n.id, n.position, body.to_string()))
    }

    /// Sends one request and waits (on the virtual clock) for its outcome.
    pub fn send(&mut self, req: &Request) -> Outcome {
        let (arrive, outcome) = self.answer(req);
        self.advance_to(arrive, false);
        outcome
    }

    pub fn answer(&mut self, req: &Request) -> (u64, Outcome) {
        let i = req.endpoint.0;
        let header = |name: &str| req.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
        let key = header("idempotency-key");
        let mut applied = false;
        let arrive = match self.reachability(i, req.timeout_ms) {
            Ok(t) => t,
            Err(e) => {
                self.log.push(Received {
                    at_ms: self.now,
                    node: i,
                    method: req.method,
                    path: req.path.clone(),
                    key,
                    applied,
                });
                return e;
            }
        };
        if self.nodes[i].not_a_gateway {
            return (
                arrive,
                Outcome::Response(Response { status: 404, body: "Not Found".into(), node: None, position: None }),
            );
        }
        let (status, body) = if req.method == Method::Get {
            self.read(i, req, header("x-replikit-min-position"))
        } else if self.nodes[i].role != Role::Primary {
            (421, err("not_primary"))
        } else if let Some(stored) = key.as_ref().and_then(|k| self.nodes[i].idempotency.get(k)).cloned() {
            stored
        } else {
            applied = true;
            self.write(i, req, key.clone(), header("if-match"))
        };
        self.log.push(Received { at_ms: self.now, node: i, method: req.method, path: req.path.clone(), key, applied });
        let n = &mut self.nodes[i];
        if applied && n.drop_next_answer {
            n.drop_next_answer = false;
            return (arrive, Outcome::NetworkError("connection reset".into()));
        }
        (arrive, ok(status, &n.id.clone(), n.position, body))
    }

    fn read(&self, i: usize, req: &Request, min_position: Option<String>) -> (u16, String) {
        let n = &self.nodes[i];
        if let Some(min) = min_position.and_then(|m| m.parse::<u64>().ok()) {
            if n.position < min && n.role == Role::Replica {
                return (503, err("lagging"));
            }
        }
        let parts: Vec<&str> = req.path.trim_start_matches("/v1/c/").split('/').collect();
        match parts.as_slice() {
            [c, id] => match n.docs.get(&(c.to_string(), id.to_string())) {
                Some(doc) => (200, doc.to_string()),
                None => (404, err("not_found")),
            },
            _ => {
                let c = parts[0].split('?').next().unwrap();
                let items: Vec<&Value> = n.docs.iter().filter(|((col, _), _)| col == c).map(|(_, d)| d).collect();
                (200, json!({"items": items, "next": null}).to_string())
            }
        }
    }

    fn write(&mut self, i: usize, req: &Request, key: Option<String>, if_match: Option<String>) -> (u16, String) {
        let parts: Vec<String> = req.path.trim_start_matches("/v1/c/").split('/').map(String::from).collect();
        let body: Value = req.body.as_deref().map(|b| serde_json::from_str(b).unwrap()).unwrap_or(Value::Null);
        let (c, id) = match req.method {
            Method::Post => (parts[0].clone(), body["id"].as_str().unwrap().to_string()),
            _ => (parts[0].clone(), parts[1].clone()),
        };
        let n = &mut self.nodes[i];
        let current = n.docs.get(&(c.clone(), id.clone())).cloned();
        if let (Some(m), Some(cur)) = (&if_match, &current) {
            if *m != format!("\"{}\"", cur["version"]) {
                return (412, json!({"error": {"code": "conflict", "message": "version"}, "current": cur}).to_string());
            }
        }
        let result = match req.method {
            Method::Post if current.is_some() => (409, err("already_exists")),
            Method::Delete => match current {
                None => (404, err("not_found")),
                Some(_) => {
                    n.docs.remove(&(c.clone(), id.clone()));
                    (204, String::new())
                }
            },
            Method::Patch if current.is_none() => (404, err("not_found")),
            _ => {
                let version = current.as_ref().map(|d| d["version"].as_u64().unwrap()).unwrap_or(0) + 1;
                let data = match req.method {
                    Method::Patch => {
                        let mut d: Map<String, Value> = current.unwrap()["data"].as_object().unwrap().clone();
                        for (k, v) in body.as_object().unwrap() {
                            if v.is_null() {
                                d.remove(k);
                            } else {
                                d.insert(k.clone(), v.clone());
                            }
                        }
                        Value::Object(d)
                    }
                    _ => body["data"].clone(),
                };
                let doc = json!({"id": id, "version": version, "data": data, "updatedAt": "2026-11-22T00:00:00Z"});
                n.docs.insert((c.clone(), id.clone()), doc.clone());
                (if version == 1 { 201 } else { 200 }, doc.to_string())
            }
        };
        if result.0 < 300 {
            n.position += 1;
        }
        if let Some(k) = key {
            n.idempotency.insert(k, result.clone());
        }
        // Synchronous replication: replicas that follow copy the primary's state.
        let (docs, idem, pos) = (n.docs.clone(), n.idempotency.clone(), n.position);
        for (j, r) in self.nodes.iter_mut().enumerate() {
            if j != i && r.role == Role::Replica && r.replicating && r.state != NodeState::Down {
                r.docs = docs.clone();
                r.idempotency = idem.clone();
                r.position = pos;
            }
        }
        result
    }

    // ----- assertions -----

    /// Writes each node applied (not replays).
    pub fn applied_on(&self, node: usize) -> usize {
        self.log.iter().filter(|r| r.node == node && r.applied).count()
    }

    pub fn requests_to(&self, node: usize, method: Method) -> usize {
        self.log.iter().filter(|r| r.node == node && r.method == method).count()
    }
}

fn ok(status: u16, node: &str, position: u64, body: String) -> Outcome {
    Outcome::Response(Response { status, node: Some(node.to_string()), position: Some(position), body })
}

fn err(code: &str) -> String {
    json!({"error": {"code": code, "message": code}}).to_string()
}
