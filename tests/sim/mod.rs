//! A simulated PostgreSQL-like cluster for the router's deterministic tests: nodes with roles, terms (timelines),
//! positions (LSNs), synchronous replication and idempotency keys; scripted latencies, outages, hangs, promotions
//! and split brains. The clock and the clients are `support::World`'s; `Sim` is this cluster with one
//! router-level client, the world of the router rules. Nothing here is used by the SDK.

#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap};
use std::ops::{Deref, DerefMut};

use replikit::core::protocol::{Method, Outcome, Request, Response};
use replikit::core::{Action, CallOptions, Completed, Config, Error, Event, Role, Router};
use serde_json::{json, Map, Value};

use crate::support::{PeerId, Sender, ServerModel, World};

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
    /// Timeline history: (earlier term, the position where it ended and the next began), oldest first.
    pub history: Vec<(u64, u64)>,
    pub docs: BTreeMap<(String, String), Value>,
    pub idempotency: HashMap<String, (u16, String)>,
    /// The next write is applied but its answer is lost (connection reset).
    pub drop_next_answer: bool,
    /// This many writes (or replays) are answered 503 `outcome_unknown`, as a primary whose synchronous standby
    /// stalls: a new write is applied (committed locally) all the same.
    pub outcome_unknown: u32,
    /// Another kind of server answers here: 404 with no Replikit error body to everything.
    pub not_a_gateway: bool,
    /// Refuses writes with 401 (the client's credentials were revoked); health checks still answer.
    pub refuses_writes: bool,
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

pub struct PgCluster {
    pub nodes: Vec<Node>,
    pub log: Vec<Received>,
    /// Versions as the reference server makes them (`term << 40` plus one cluster-wide sequence: never
    /// predictable from the last one) instead of per-document counters.
    pub term_versions: bool,
    sequence: u64,
}

pub fn url(i: usize) -> String {
    format!("http://n{i}.test")
}

impl PgCluster {
    /// A primary and `replicas` replicas, every node 5 ms away.
    pub fn new(replicas: usize) -> PgCluster {
        let nodes = (0..=replicas)
            .map(|i| Node {
                id: format!("n{i}"),
                role: if i == 0 { Role::Primary } else { Role::Replica },
                term: 1,
                state: NodeState::Up,
                latency_ms: 5,
                replicating: true,
                lag_ms: 0,
                position: 100,
                history: Vec::new(),
                docs: BTreeMap::new(),
                idempotency: HashMap::new(),
                drop_next_answer: false,
                outcome_unknown: 0,
                not_a_gateway: false,
                refuses_writes: false,
            })
            .collect();
        PgCluster { nodes, log: Vec::new(), term_versions: false, sequence: 0 }
    }

    /// The client options for this cluster (`primary` and `replicas`), with `options` merged over them.
    pub fn config(&self, options: &Value) -> Config {
        let opts = json!({ "primary": url(0), "replicas": (1..self.nodes.len()).map(url).collect::<Vec<_>>() });
        merged(opts, options)
    }

    /// As `config`, through `endpoints`: each node with its role and `tags[i]` as its tags.
    pub fn config_with_tags(&self, tags: &[Value], options: &Value) -> Config {
        let endpoints: Vec<Value> = tags
            .iter()
            .enumerate()
            .map(|(i, t)| json!({"url": url(i), "role": if i == 0 { "primary" } else { "replica" }, "tags": t}))
            .collect();
        merged(json!({ "endpoints": endpoints }), options)
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

    /// Promotes `i` on a new timeline that branches off at its position; the other live replicas follow it
    /// (taking its history and its data: what they had beyond the branch point is gone, as after a rewind).
    pub fn promote(&mut self, i: usize) {
        let term = self.nodes.iter().map(|n| n.term).max().unwrap() + 1;
        let n = &mut self.nodes[i];
        n.history.push((n.term, n.position));
        n.role = Role::Primary;
        n.term = term;
        let (history, docs, idem, position) = (n.history.clone(), n.docs.clone(), n.idempotency.clone(), n.position);
        for (j, n) in self.nodes.iter_mut().enumerate() {
            if j != i && n.state == NodeState::Up && n.role == Role::Replica {
                n.term = term;
                n.history = history.clone();
                (n.docs, n.idempotency, n.position) = (docs.clone(), idem.clone(), position);
            }
        }
    }

    /// Whether node `i` has the session write at (`term`, `position`) in its history, as the gateway's timeline
    /// check answers: `None` when the node is on an earlier term (it cannot tell).
    fn has_session_write(&self, i: usize, term: u64, position: u64) -> Option<bool> {
        let n = &self.nodes[i];
        match term.cmp(&n.term) {
            std::cmp::Ordering::Equal => Some(true),
            std::cmp::Ordering::Greater => None,
            std::cmp::Ordering::Less => Some(n.history.iter().any(|&(t, switch)| t == term && position <= switch)),
        }
    }

    // ----- answers -----

    fn reachability(&self, now: u64, i: usize, timeout_ms: u64) -> Result<u64, (u64, Outcome)> {
        let n = &self.nodes[i];
        match n.state {
            NodeState::Up => Ok(now + n.latency_ms),
            NodeState::Down => Err((now + 1, Outcome::NetworkError("connection refused".into()))),
            NodeState::Hung => Err((now + timeout_ms, Outcome::Timeout)),
        }
    }

    fn read(&self, i: usize, req: &Request, min_position: Option<String>, min_term: Option<u64>) -> (u16, String) {
        let n = &self.nodes[i];
        let min = min_position.as_ref().and_then(|m| m.parse::<u64>().ok());
        if let (Some(term), Some(position)) = (min_term, min) {
            match self.has_session_write(i, term, position) {
                Some(true) => {}
                Some(false) => {
                    let lost = json!({"error": {"code": "session_lost", "message": "lost"}, "lost": {"term": term, "position": position}});
                    return (409, lost.to_string());
                }
                None if n.role == Role::Replica => return (503, err("lagging")),
                None => return (422, err("position_unreachable")),
            }
        }
        if let Some(min) = min {
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
        self.sequence += 1;
        let sequence = self.sequence;
        let term_versions = self.term_versions;
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
                let created = current.is_none();
                let version = match term_versions {
                    true => (n.term << 40) + sequence,
                    false => current.as_ref().map(|d| d["version"].as_u64().unwrap()).unwrap_or(0) + 1,
                };
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
                (if created { 201 } else { 200 }, doc.to_string())
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

impl ServerModel for PgCluster {
    fn answer_health(&mut self, now: u64, _from: PeerId, req: &Request) -> (u64, Outcome) {
        let i = req.endpoint.0;
        let arrive = match self.reachability(now, i, req.timeout_ms) {
            Ok(t) => t,
            Err(e) => return e,
        };
        let n = &self.nodes[i];
        if n.not_a_gateway {
            return (arrive, not_a_gateway());
        }
        let primary_pos = self.nodes.iter().filter(|p| p.role == Role::Primary).map(|p| p.position).max().unwrap_or(0);
        let lag = match n.role {
            Role::Primary => Value::Null,
            Role::Replica => json!(if n.position < primary_pos { n.lag_ms } else { 0 }),
        };
        let body = json!({"nodeId": n.id, "role": n.role, "term": n.term, "position": n.position, "lagMs": lag, "readOnly": n.role == Role::Replica});
        (arrive, ok(200, &n.id, n.position, body.to_string()))
    }

    /// Every node answers alike whoever asks.
    fn answer(&mut self, now: u64, _from: Sender<'_>, req: &Request) -> (u64, Outcome) {
        let i = req.endpoint.0;
        let header = |name: &str| req.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
        let key = header("idempotency-key");
        let mut applied = false;
        let arrive = match self.reachability(now, i, req.timeout_ms) {
            Ok(t) => t,
            Err(e) => {
                self.log.push(Received {
                    at_ms: now,
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
            return (arrive, not_a_gateway());
        }
        let (status, body) = if req.method != Method::Get && self.nodes[i].refuses_writes {
            (401, err("unauthorized"))
        } else if req.method == Method::Get {
            let min_term = header("x-replikit-min-term").and_then(|t| t.parse().ok());
            self.read(i, req, header("x-replikit-min-position"), min_term)
        } else if self.nodes[i].role != Role::Primary {
            (421, err("not_primary"))
        } else if let Some(stored) = key.as_ref().and_then(|k| self.nodes[i].idempotency.get(k)).cloned() {
            stored
        } else {
            applied = true;
            self.write(i, req, key.clone(), header("if-match"))
        };
        self.log.push(Received { at_ms: now, node: i, method: req.method, path: req.path.clone(), key, applied });
        // A write carrying a session of an earlier term: the gateway says when that session's write is not here.
        let mark = header("x-replikit-min-term")
            .and_then(|t| t.parse::<u64>().ok())
            .zip(header("x-replikit-min-position").and_then(|p| p.parse::<u64>().ok()));
        let session_lost = req.method != Method::Get
            && (200..300).contains(&status)
            && mark.is_some_and(|(t, p)| t < self.nodes[i].term && self.has_session_write(i, t, p) != Some(true));
        let n = &mut self.nodes[i];
        if req.method != Method::Get && (200..300).contains(&status) && n.outcome_unknown > 0 {
            n.outcome_unknown -= 1;
            let id = n.id.clone();
            return (arrive, ok(503, &id, n.position, err("outcome_unknown")));
        }
        if applied && n.drop_next_answer {
            n.drop_next_answer = false;
            return (arrive, Outcome::NetworkError("connection reset".into()));
        }
        let mut answer = ok(status, &n.id.clone(), n.position, body);
        if let Outcome::Response(r) = &mut answer {
            r.term = Some(n.term);
            r.session_lost = session_lost;
        }
        (arrive, answer)
    }
}

fn ok(status: u16, node: &str, position: u64, body: String) -> Outcome {
    Outcome::Response(Response {
        status,
        node: Some(node.to_string()),
        position: Some(position),
        body,
        ..Default::default()
    })
}

/// What another kind of server answers: 404 with no Replikit error body and no node headers.
fn not_a_gateway() -> Outcome {
    Outcome::Response(Response { status: 404, body: "Not Found".into(), ..Default::default() })
}

fn err(code: &str) -> String {
    json!({"error": {"code": code, "message": code}}).to_string()
}

/// `base` with `options` merged over it.
fn merged(mut base: Value, options: &Value) -> Config {
    for (k, v) in options.as_object().cloned().unwrap_or_default() {
        base[k] = v;
    }
    Config::from_json(base).expect("valid options")
}

// ----- the router rules' world -----

/// The cluster with one router-level client (router 0, seed 42): its calls need no index. The clock and the
/// cluster are reached through `World` (`s.run_for(..)`, `s.now`, `s.kill(0)`, `s.nodes[1]`, `s.log`).
pub struct Sim(World<PgCluster>);

impl Sim {
    /// A primary and `replicas` replicas, every node 5 ms away; `options` are extra client options.
    pub fn new(replicas: usize, options: Value) -> Sim {
        let cluster = PgCluster::new(replicas);
        let config = cluster.config(&options);
        Sim::with(cluster, config)
    }

    /// As `new` (node 0 the primary, `tags.len() - 1` replicas), configured through `endpoints` with each node's
    /// role and `tags[i]` as its tags.
    pub fn with_tags(tags: &[Value], options: Value) -> Sim {
        let cluster = PgCluster::new(tags.len() - 1);
        let config = cluster.config_with_tags(tags, &options);
        Sim::with(cluster, config)
    }

    fn with(cluster: PgCluster, config: Config) -> Sim {
        let mut world = World::new(cluster);
        world.add_router(config, 42);
        Sim(world)
    }

    pub fn router(&self) -> &Router {
        &self.0.routers[0].router
    }

    pub fn router_mut(&mut self) -> &mut Router {
        &mut self.0.routers[0].router
    }

    pub fn events(&self) -> &[(u64, Event)] {
        &self.0.routers[0].events
    }

    pub fn health_checks(&self) -> &[(u64, usize)] {
        &self.0.routers[0].health_checks
    }

    /// Runs one call to completion; returns its result and how long it took.
    pub fn call(&mut self, action: Action, options: CallOptions) -> (Result<Completed, Error>, u64) {
        self.0.call(0, action, options)
    }

    pub fn op(&mut self, action: Action) -> Result<Completed, Error> {
        self.0.op(0, action)
    }
}

impl Deref for Sim {
    type Target = World<PgCluster>;

    fn deref(&self) -> &World<PgCluster> {
        &self.0
    }
}

impl DerefMut for Sim {
    fn deref_mut(&mut self) -> &mut World<PgCluster> {
        &mut self.0
    }
}
