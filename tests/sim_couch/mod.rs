//! A simulated CouchDB multi-primary cluster for the deterministic tests (the counterpart of `sim/` for
//! `topology: "multi-primary", protocol: "couchdb"`); the clock and the clients are `support::World`'s.
//!
//! What it models: nodes that each keep, per document, a revision tree (rev -> parent, body, deleted) and answer
//! exactly the requests the CouchDB adapter sends (`GET /app`, `GET /app/{id}?conflicts=true`,
//! `GET /app/{id}?open_revs=all&revs=true` (every leaf, live or tombstone, with its path; 404 `missing` when the
//! node has no record of the document, as chttpd does), `GET /app/{id}?open_revs=[...]`, `GET /app/_all_docs?...`,
//! `POST /app/_bulk_docs` with `new_edits: false`), with CouchDB's winner rule (among non-deleted leaves the
//! highest generation, then the highest rev string; all leaves deleted: 404 "deleted"). `open_revs` answers JSON
//! only to `Accept: application/json`; otherwise CouchDB sends `multipart/mixed`, and so does the simulator.
//! Per-node and per-client latencies (`connect`, `place`); nodes Up, Down (refused at once) or Hung (the request
//! times out, nothing applied); `drop_next_answer` (the next `_bulk_docs` is applied but its answer is lost as a
//! network error, and with `after_drop` the node then goes Down — the answer is a connection reset — or Hung —
//! the request times out: a node that applied a write and then hung); replication as an operator action
//! (`replicate(a, b)` copies every revision `a` has and `b` lacks, with its parent link; `replicate_all` until the
//! mesh has converged).
//!
//! What it leaves out: continuous replication (replication happens only when a test says so), CouchDB's
//! leaf-driven `_revs_diff` (replication here copies every missing revision, not only missing leaves' paths),
//! revision stemming (`_revs_limit`), attachments, `_local` docs, `new_edits: true`, ICU collation (`_all_docs`
//! sorts ids by bytes), authentication and CORS.
//!
//! Nothing an ordinary CouchDB would accept silently is hidden: when a revision arrives (by `_bulk_docs` or by
//! replication) that a node already holds under a *different* parent, the node keeps the first one (as a
//! replicator that goes by revision ids would) and the event is recorded in `CouchCluster::anomalies`.

#![allow(dead_code)]

use std::collections::BTreeMap;

use replikit::core::protocol::{Method, Outcome, Request, Response};
use replikit::core::{Config, EndpointId, EndpointState};
use serde_json::{json, Map, Value};

use crate::support::{PeerId, Sender, ServerModel, World};

pub const DB: &str = "app";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeState {
    Up,
    /// Connections refused (a machine failure).
    Down,
    /// Accepts requests and never answers.
    Hung,
}

/// One revision of a document in a node's tree.
#[derive(Debug, Clone, PartialEq)]
pub struct RevNode {
    /// `None`: a root (or a revision whose ancestors this node was never told).
    pub parent: Option<String>,
    /// `None`: a stub (the revision is known only as an ancestor in a path; CouchDB's "missing" body).
    pub body: Option<Map<String, Value>>,
    pub deleted: bool,
}

/// A document's revision tree.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DocTree {
    pub revs: BTreeMap<String, RevNode>,
}

/// `N-hash` -> (N, hash).
pub fn split_rev(rev: &str) -> (u64, &str) {
    let (g, h) = rev.split_once('-').expect("a revision is N-hash");
    (g.parse().expect("a revision's generation is a number"), h)
}

/// CouchDB's order of revisions for the winner: not deleted first, then generation, then the rev id.
fn rev_key<'a>(rev: &'a str, node: &RevNode) -> (bool, u64, &'a str) {
    let (g, h) = split_rev(rev);
    (!node.deleted, g, h)
}

impl DocTree {
    /// Revisions that are no one's parent.
    pub fn leaves(&self) -> Vec<&str> {
        let parents: std::collections::BTreeSet<&str> =
            self.revs.values().filter_map(|n| n.parent.as_deref()).collect();
        self.revs.keys().map(String::as_str).filter(|r| !parents.contains(r)).collect()
    }

    /// Leaves that are not tombstones (nor stubs), best first.
    pub fn live_leaves(&self) -> Vec<&str> {
        let mut live: Vec<&str> =
            self.leaves().into_iter().filter(|r| !self.revs[*r].deleted && self.revs[*r].body.is_some()).collect();
        live.sort_by(|a, b| rev_key(b, &self.revs[*b]).cmp(&rev_key(a, &self.revs[*a])));
        live
    }

    /// The winning revision: CouchDB's deterministic pick among all leaves.
    pub fn winner(&self) -> Option<&str> {
        self.leaves()
            .into_iter()
            .filter(|r| self.revs[*r].body.is_some() || self.revs[*r].deleted)
            .max_by(|a, b| rev_key(a, &self.revs[*a]).cmp(&rev_key(b, &self.revs[*b])))
    }

    /// Whether the document reads as existing (its winner is not a tombstone).
    pub fn alive(&self) -> bool {
        self.winner().is_some_and(|w| !self.revs[w].deleted)
    }

    /// The rev ids of `rev` and its known ancestors, newest first (`_revisions.ids`).
    pub fn path_ids(&self, rev: &str) -> Vec<String> {
        let mut ids = Vec::new();
        let mut at = Some(rev.to_string());
        while let Some(r) = at {
            ids.push(split_rev(&r).1.to_string());
            at = self.revs.get(&r).and_then(|n| n.parent.clone());
            if ids.len() > 10_000 {
                panic!("a cycle in the revision tree at {rev}");
            }
        }
        ids
    }

    /// The document at `rev` as CouchDB would send it.
    pub fn render(&self, id: &str, rev: &str, revs: bool, conflicts: bool) -> Value {
        let n = &self.revs[rev];
        let mut doc = Map::new();
        doc.insert("_id".into(), json!(id));
        doc.insert("_rev".into(), json!(rev));
        if n.deleted {
            doc.insert("_deleted".into(), json!(true));
        }
        for (k, v) in n.body.clone().unwrap_or_default() {
            doc.insert(k, v);
        }
        if revs {
            doc.insert("_revisions".into(), json!({"start": split_rev(rev).0, "ids": self.path_ids(rev)}));
        }
        if conflicts {
            let others: Vec<&str> = self.live_leaves().into_iter().filter(|r| *r != rev).collect();
            if !others.is_empty() {
                doc.insert("_conflicts".into(), json!(others));
            }
        }
        Value::Object(doc)
    }
}

/// What inserting one revision did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Inserted {
    New,
    /// Known before (a no-op), or a stub whose body arrived.
    Known,
    Filled,
    /// Known before under another parent: kept as it was.
    OtherParent,
}

fn insert(
    tree: &mut DocTree,
    rev: &str,
    parent: Option<&str>,
    body: Option<&Map<String, Value>>,
    deleted: bool,
) -> Inserted {
    match tree.revs.get_mut(rev) {
        Some(n) => {
            if n.parent.is_none() && parent.is_some() {
                // A root we knew without history: its ancestors arrived (a longer path). Not a conflict.
                n.parent = parent.map(String::from);
            } else if parent.is_some() && n.parent.as_deref() != parent {
                return Inserted::OtherParent;
            }
            if n.body.is_none() && (body.is_some() || deleted) {
                n.body = body.cloned();
                n.deleted = deleted;
                return Inserted::Filled;
            }
            Inserted::Known
        }
        None => {
            tree.revs
                .insert(rev.to_string(), RevNode { parent: parent.map(String::from), body: body.cloned(), deleted });
            Inserted::New
        }
    }
}

#[derive(Debug, Clone)]
pub struct Node {
    pub name: String,
    pub state: NodeState,
    /// Round trip for a client that has no latency of its own to this node.
    pub latency_ms: u64,
    pub docs: BTreeMap<String, DocTree>,
    pub update_seq: u64,
    /// The next `_bulk_docs` is applied but its answer is lost (connection reset).
    pub drop_next_answer: bool,
    /// The state the node goes to once it has lost that answer: Down (the answer is a connection reset) or Hung
    /// (the request times out); None: it stays up.
    pub after_drop: Option<NodeState>,
}

impl Node {
    pub fn doc(&self, id: &str) -> Option<&DocTree> {
        self.docs.get(id)
    }
}

/// One request a node received (health checks are not logged).
#[derive(Debug, Clone)]
pub struct Received {
    pub at_ms: u64,
    pub client: PeerId,
    pub node: usize,
    pub method: Method,
    pub path: String,
    pub body: Option<String>,
    /// The HTTP status sent back, if the node answered (it may still have been lost: see `dropped`).
    pub status: Option<u16>,
    pub response: Option<String>,
    /// A `_bulk_docs` that changed the node's data.
    pub applied: bool,
    /// Applied, but the answer was lost.
    pub dropped: bool,
    /// How the sending client saw every node when it sent the request (empty for requests a test sent itself).
    pub seen: Vec<EndpointState>,
}

impl Received {
    /// The documents of a `_bulk_docs` body.
    pub fn bulk_docs(&self) -> Vec<Value> {
        self.body
            .as_deref()
            .and_then(|b| serde_json::from_str::<Value>(b).ok())
            .and_then(|v| v.get("docs").and_then(Value::as_array).cloned())
            .unwrap_or_default()
    }

    pub fn is_bulk(&self) -> bool {
        self.method == Method::Post && self.path == format!("/{DB}/_bulk_docs")
    }
}

pub struct CouchCluster {
    pub nodes: Vec<Node>,
    /// Per-node round trip from each client that has its own (`None`: the node's own `latency_ms`).
    pub latency: BTreeMap<PeerId, Vec<Option<u64>>>,
    pub log: Vec<Received>,
    /// A revision a node already held under another parent arrived again (see the module docs).
    pub anomalies: Vec<String>,
}

pub fn url(i: usize) -> String {
    format!("http://c{i}.test")
}

/// The `_id` the adapter uses for document `id` of collection `c`.
pub fn couch_id(c: &str, id: &str) -> String {
    format!("{c}:{id}")
}

impl CouchCluster {
    /// `nodes` CouchDB nodes, every one 5 ms away.
    pub fn new(nodes: usize) -> CouchCluster {
        let nodes = (0..nodes)
            .map(|i| Node {
                name: format!("couch{i}"),
                state: NodeState::Up,
                latency_ms: 5,
                docs: BTreeMap::new(),
                update_seq: 0,
                drop_next_answer: false,
                after_drop: None,
            })
            .collect();
        CouchCluster { nodes, latency: BTreeMap::new(), log: Vec::new(), anomalies: Vec::new() }
    }

    /// The client options for this cluster, with `options` merged over them.
    pub fn config(&self, options: &Value) -> Config {
        let mut opts = json!({
            "topology": "multi-primary",
            "protocol": "couchdb",
            "database": DB,
            "endpoints": (0..self.nodes.len()).map(|i| json!({"url": url(i)})).collect::<Vec<_>>(),
        });
        for (k, v) in options.as_object().cloned().unwrap_or_default() {
            opts[k] = v;
        }
        Config::from_json(opts).expect("valid options")
    }

    /// Gives `peer` its own per-node latencies (`None`: the node's own).
    pub fn place(&mut self, peer: PeerId, latency: Vec<Option<u64>>) {
        let mut latency = latency;
        latency.resize(self.nodes.len(), None);
        self.latency.insert(peer, latency);
    }

    /// The round trip from `peer` to node `i`.
    pub fn latency_ms(&self, peer: PeerId, i: usize) -> u64 {
        self.latency.get(&peer).and_then(|l| l[i]).unwrap_or(self.nodes[i].latency_ms)
    }

    // ----- operator controls -----

    pub fn kill(&mut self, i: usize) {
        self.nodes[i].state = NodeState::Down;
    }

    pub fn hang(&mut self, i: usize) {
        self.nodes[i].state = NodeState::Hung;
    }

    /// Brings a node back with the data it had.
    pub fn start(&mut self, i: usize) {
        self.nodes[i].state = NodeState::Up;
    }

    /// Copies every revision `from` has and `to` lacks (with its parent link), as a one-shot replication; both
    /// must be up. Returns how many revisions changed on `to`.
    pub fn replicate(&mut self, from: usize, to: usize) -> usize {
        if from == to || self.nodes[from].state != NodeState::Up || self.nodes[to].state != NodeState::Up {
            return 0;
        }
        let source = self.nodes[from].docs.clone();
        let mut changed = 0;
        for (id, tree) in &source {
            // Oldest first, so a parent lands before its children (not needed for correctness, but tidy).
            let mut revs: Vec<(&String, &RevNode)> = tree.revs.iter().collect();
            revs.sort_by_key(|(r, _)| (split_rev(r).0, (*r).clone()));
            let mut doc_changed = false;
            for (rev, n) in revs {
                let target = self.nodes[to].docs.entry(id.clone()).or_default();
                match insert(target, rev, n.parent.as_deref(), n.body.as_ref(), n.deleted) {
                    Inserted::New | Inserted::Filled => {
                        changed += 1;
                        doc_changed = true;
                    }
                    Inserted::Known => {}
                    Inserted::OtherParent => self.anomalies.push(format!(
                        "replication {from}->{to}: {id} {rev} has parent {:?} on node {from} but {:?} on node {to}",
                        n.parent, self.nodes[to].docs[id].revs[rev].parent
                    )),
                }
            }
            if doc_changed {
                self.nodes[to].update_seq += 1;
            }
        }
        changed
    }

    /// Replicates every up node to every other until nothing changes (full-mesh convergence).
    pub fn replicate_all(&mut self) {
        loop {
            let mut changed = 0;
            for a in 0..self.nodes.len() {
                for b in 0..self.nodes.len() {
                    changed += self.replicate(a, b);
                }
            }
            if changed == 0 {
                return;
            }
        }
    }

    // ----- answers -----

    fn reachability(&self, now: u64, from: PeerId, i: usize, timeout_ms: u64) -> Result<u64, (u64, Outcome)> {
        match self.nodes[i].state {
            NodeState::Up => Ok(now + self.latency_ms(from, i)),
            NodeState::Down => Err((now + 1, Outcome::NetworkError("connection refused".into()))),
            NodeState::Hung => Err((now + timeout_ms, Outcome::Timeout)),
        }
    }

    // ----- the CouchDB API -----

    fn serve_get(&self, i: usize, req: &Request) -> (u16, String) {
        let n = &self.nodes[i];
        let (path, query) = req.path.split_once('?').unwrap_or((req.path.as_str(), ""));
        let q = parse_query(query);
        let segments: Vec<String> = path.trim_start_matches('/').split('/').map(percent_decode).collect();
        if segments.first().map(String::as_str) != Some(DB) {
            return (404, error("not_found", "Database does not exist."));
        }
        match segments.as_slice() {
            [_] => (200, json!({"db_name": DB, "update_seq": n.update_seq, "doc_count": n.docs.values().filter(|d| d.alive()).count()}).to_string()),
            [_, all] if all == "_all_docs" => (200, self.all_docs(i, &q)),
            [_, id] => self.get_doc(i, id, &q, req),
            _ => (404, error("not_found", "missing")),
        }
    }

    fn get_doc(&self, i: usize, id: &str, q: &BTreeMap<String, String>, req: &Request) -> (u16, String) {
        let tree = self.nodes[i].docs.get(id);
        let json_only = req.headers.iter().any(|(k, v)| k.eq_ignore_ascii_case("accept") && v == "application/json");
        if q.contains_key("open_revs") && !json_only {
            // chttpd answers multipart/mixed to any Accept that allows it (a browser's default `*/*` does).
            return (
                200,
                "--multipart-boundary\r\nContent-Type: application/json\r\n\r\n{}\r\n--multipart-boundary--".into(),
            );
        }
        if q.get("open_revs").is_some_and(|v| v == "all") {
            // Every leaf with a body or a tombstone; a document this node has no record of is a 404.
            let Some(t) = tree.filter(|t| t.winner().is_some()) else {
                return (404, error("not_found", "missing"));
            };
            let revs = q.get("revs").is_some_and(|v| v == "true");
            let items: Vec<Value> = t
                .leaves()
                .into_iter()
                .filter(|r| t.revs[*r].body.is_some() || t.revs[*r].deleted)
                .map(|r| json!({"ok": t.render(id, r, revs, false)}))
                .collect();
            return (200, Value::Array(items).to_string());
        }
        if let Some(list) = q.get("open_revs") {
            let Ok(Value::Array(revs)) = serde_json::from_str::<Value>(list) else {
                return (400, error("bad_request", "invalid open_revs"));
            };
            let items: Vec<Value> = revs
                .iter()
                .map(|r| {
                    let r = r.as_str().unwrap_or_default();
                    match tree.and_then(|t| t.revs.get(r).filter(|n| n.body.is_some() || n.deleted).map(|_| t)) {
                        Some(t) => json!({"ok": t.render(id, r, q.get("revs").is_some_and(|v| v == "true"), false)}),
                        None => json!({"missing": r}),
                    }
                })
                .collect();
            return (200, Value::Array(items).to_string());
        }
        let Some(tree) = tree.filter(|t| t.winner().is_some()) else {
            return (404, error("not_found", "missing"));
        };
        let winner = tree.winner().unwrap();
        if tree.revs[winner].deleted {
            return (404, error("not_found", "deleted"));
        }
        let flag = |k: &str| q.get(k).is_some_and(|v| v == "true");
        (200, tree.render(id, winner, flag("revs"), flag("conflicts")).to_string())
    }

    fn all_docs(&self, i: usize, q: &BTreeMap<String, String>) -> String {
        let key = |k: &str| {
            q.get(k).and_then(|v| serde_json::from_str::<Value>(v).ok()).and_then(|v| v.as_str().map(String::from))
        };
        let start = key("startkey");
        let end = key("endkey");
        let inclusive_end = q.get("inclusive_end").is_none_or(|v| v != "false");
        let limit: usize = q.get("limit").and_then(|l| l.parse().ok()).unwrap_or(usize::MAX);
        let include_docs = q.get("include_docs").is_some_and(|v| v == "true");
        let conflicts = q.get("conflicts").is_some_and(|v| v == "true");
        let docs = &self.nodes[i].docs;
        let rows: Vec<Value> = docs
            .iter()
            .filter(|(_, t)| t.alive())
            .filter(|(id, _)| start.as_ref().is_none_or(|s| id.as_str() >= s.as_str()))
            .filter(|(id, _)| match &end {
                None => true,
                Some(e) if inclusive_end => id.as_str() <= e.as_str(),
                Some(e) => id.as_str() < e.as_str(),
            })
            .take(limit)
            .map(|(id, t)| {
                let w = t.winner().unwrap();
                let mut row = json!({"id": id, "key": id, "value": {"rev": w}});
                if include_docs {
                    row["doc"] = t.render(id, w, false, conflicts);
                }
                row
            })
            .collect();
        json!({"total_rows": docs.values().filter(|t| t.alive()).count(), "offset": 0, "rows": rows}).to_string()
    }

    /// `POST /{db}/_bulk_docs` with `new_edits: false`: each revision and its `_revisions` path go into the
    /// document's tree; a revision already there is a no-op. Answers `201 []` (CouchDB 2/3).
    fn bulk_docs(&mut self, i: usize, req: &Request) -> (u16, String, bool) {
        let Some(body) = req.body.as_deref().and_then(|b| serde_json::from_str::<Value>(b).ok()) else {
            return (400, error("bad_request", "invalid JSON"), false);
        };
        if body.get("new_edits") != Some(&json!(false)) {
            return (400, error("bad_request", "only new_edits: false is simulated"), false);
        }
        let Some(docs) = body.get("docs").and_then(Value::as_array) else {
            return (400, error("bad_request", "`docs` must be an array"), false);
        };
        let mut applied = false;
        for doc in docs {
            let Some(obj) = doc.as_object() else {
                return (400, error("bad_request", "a doc must be an object"), applied);
            };
            let (Some(id), Some(rev)) =
                (obj.get("_id").and_then(Value::as_str), obj.get("_rev").and_then(Value::as_str))
            else {
                return (400, error("bad_request", "_id and _rev are required with new_edits: false"), applied);
            };
            let (generation, hash) = split_rev(rev);
            // The path: the revision, then its ancestors, newest first.
            let mut path: Vec<String> = vec![rev.to_string()];
            if let Some(revs) = obj.get("_revisions") {
                let start = revs["start"].as_u64().expect("_revisions.start");
                let ids: Vec<&str> =
                    revs["ids"].as_array().expect("_revisions.ids").iter().map(|v| v.as_str().unwrap()).collect();
                assert_eq!((start, ids.first().copied()), (generation, Some(hash)), "_revisions must start at _rev");
                path = ids.iter().enumerate().map(|(k, h)| format!("{}-{h}", start - k as u64)).collect();
            }
            let deleted = obj.get("_deleted").and_then(Value::as_bool) == Some(true);
            let content: Map<String, Value> =
                obj.iter().filter(|(k, _)| !k.starts_with('_')).map(|(k, v)| (k.clone(), v.clone())).collect();
            let tree = self.nodes[i].docs.entry(id.to_string()).or_default();
            let mut changed = false;
            // Ancestors first (as stubs unless known), oldest first; then the revision itself.
            for k in (1..path.len()).rev() {
                let parent = path.get(k + 1).map(String::as_str);
                match insert(tree, &path[k], parent, None, false) {
                    Inserted::New | Inserted::Filled => changed = true,
                    Inserted::Known => {}
                    Inserted::OtherParent => {
                        let had = tree.revs[&path[k]].parent.clone();
                        self.anomalies.push(format!(
                            "_bulk_docs on node {i}: {id} ancestor {} under {parent:?}, held under {had:?}",
                            path[k]
                        ));
                    }
                }
            }
            let parent = path.get(1).map(String::as_str);
            match insert(tree, rev, parent, Some(&content), deleted) {
                Inserted::New | Inserted::Filled => changed = true,
                Inserted::Known => {}
                Inserted::OtherParent => {
                    let had = tree.revs[rev].parent.clone();
                    self.anomalies
                        .push(format!("_bulk_docs on node {i}: {id} {rev} under {parent:?}, held under {had:?}"));
                }
            }
            if changed {
                self.nodes[i].update_seq += 1;
                applied = true;
            }
        }
        (201, "[]".into(), applied)
    }

    // ----- assertions -----

    pub fn tree(&self, node: usize, id: &str) -> Option<&DocTree> {
        self.nodes[node].docs.get(id)
    }

    /// The `_bulk_docs` requests in the log.
    pub fn bulks(&self) -> Vec<&Received> {
        self.log.iter().filter(|r| r.is_bulk()).collect()
    }

    pub fn requests_to(&self, node: usize) -> usize {
        self.log.iter().filter(|r| r.node == node).count()
    }

    /// Whether every node holds the same revision trees (same revisions, parents, bodies, tombstones).
    pub fn converged(&self) -> bool {
        self.divergent(&[]).is_empty()
    }

    /// The documents whose trees differ between nodes, comparing bodies without the fields in `ignore`; each with
    /// the revisions that differ.
    pub fn divergent(&self, ignore: &[&str]) -> Vec<String> {
        let strip = |n: &RevNode| {
            let mut n = n.clone();
            if let Some(b) = n.body.as_mut() {
                b.retain(|k, _| !ignore.contains(&k.as_str()));
            }
            n
        };
        let ids: std::collections::BTreeSet<&String> = self.nodes.iter().flat_map(|n| n.docs.keys()).collect();
        let mut out = Vec::new();
        for id in ids {
            let trees: Vec<BTreeMap<&String, RevNode>> = self
                .nodes
                .iter()
                .map(|n| {
                    n.docs.get(id).map(|t| t.revs.iter().map(|(r, v)| (r, strip(v))).collect()).unwrap_or_default()
                })
                .collect();
            if trees.windows(2).all(|w| w[0] == w[1]) {
                continue;
            }
            let revs: std::collections::BTreeSet<&String> = trees.iter().flat_map(|t| t.keys().copied()).collect();
            let differing: Vec<String> = revs
                .into_iter()
                .filter(|r| trees.windows(2).any(|w| w[0].get(r) != w[1].get(r)))
                .map(|r| format!("{r}: {:?}", trees.iter().map(|t| t.get(r)).collect::<Vec<_>>()))
                .collect();
            out.push(format!("{id}: {differing:?}"));
        }
        out
    }
}

impl ServerModel for CouchCluster {
    /// Health checks are `GET /{db}`, not logged.
    fn answer_health(&mut self, now: u64, from: PeerId, req: &Request) -> (u64, Outcome) {
        let arrive = match self.reachability(now, from, req.endpoint.0, req.timeout_ms) {
            Ok(t) => t,
            Err(e) => return e,
        };
        let (status, body) = self.serve_get(req.endpoint.0, req);
        (arrive, respond(status, body))
    }

    fn answer(&mut self, now: u64, from: Sender<'_>, req: &Request) -> (u64, Outcome) {
        let i = req.endpoint.0;
        let mut entry = Received {
            at_ms: now,
            client: from.peer,
            node: i,
            method: req.method,
            path: req.path.clone(),
            body: req.body.clone(),
            status: None,
            response: None,
            applied: false,
            dropped: false,
            seen: from
                .view
                .map(|t| (0..self.nodes.len()).map(|i| t.state(EndpointId(i))).collect())
                .unwrap_or_default(),
        };
        let arrive = match self.reachability(now, from.peer, i, req.timeout_ms) {
            Ok(t) => t,
            Err(e) => {
                self.log.push(entry);
                return e;
            }
        };
        let (status, body, applied) = match req.method {
            Method::Get => {
                let (s, b) = self.serve_get(i, req);
                (s, b, false)
            }
            Method::Post if req.path == format!("/{DB}/_bulk_docs") => self.bulk_docs(i, req),
            _ => (405, error("method_not_allowed", "only GET and _bulk_docs are simulated"), false),
        };
        entry.status = Some(status);
        entry.response = Some(body.clone());
        entry.applied = applied;
        let drop = req.method == Method::Post && self.nodes[i].drop_next_answer;
        if drop {
            self.nodes[i].drop_next_answer = false;
            entry.dropped = true;
        }
        self.log.push(entry);
        if drop {
            return match self.nodes[i].after_drop.take() {
                Some(NodeState::Hung) => {
                    self.nodes[i].state = NodeState::Hung;
                    (now + req.timeout_ms, Outcome::Timeout)
                }
                Some(state) => {
                    self.nodes[i].state = state;
                    (arrive, Outcome::NetworkError("connection reset".into()))
                }
                None => (arrive, Outcome::NetworkError("connection reset".into())),
            };
        }
        (arrive, respond(status, body))
    }
}

fn respond(status: u16, body: String) -> Outcome {
    Outcome::Response(Response { status, node: None, position: None, body, ..Default::default() })
}

fn error(code: &str, reason: &str) -> String {
    json!({"error": code, "reason": reason}).to_string()
}

pub fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut k = 0;
    while k < b.len() {
        if b[k] == b'%' && k + 2 < b.len() {
            if let Ok(v) = u8::from_str_radix(&s[k + 1..k + 3], 16) {
                out.push(v);
                k += 3;
                continue;
            }
        }
        out.push(b[k]);
        k += 1;
    }
    String::from_utf8(out).expect("UTF-8 after percent-decoding")
}

fn parse_query(q: &str) -> BTreeMap<String, String> {
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

// ----- clients in this cluster -----

impl World<CouchCluster> {
    /// Adds a router-level client (seeded by its index) of this cluster with `options` and per-node latencies
    /// (`None`: the node's own); returns its index.
    pub fn connect(&mut self, options: Value, latency: Vec<Option<u64>>) -> usize {
        let c = self.routers.len();
        let config = self.server.config(&options);
        self.server.place(PeerId::Router(c), latency);
        self.add_router(config, 42 + c as u64)
    }

    /// A client close to node `near` (2 ms) and far from the others (40 ms).
    pub fn connect_near(&mut self, options: Value, near: usize) -> usize {
        let latency = (0..self.nodes.len()).map(|i| Some(if i == near { 2 } else { 40 })).collect();
        self.connect(options, latency)
    }
}
