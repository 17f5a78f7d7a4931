//! The router's multi-primary rules (CouchDB protocol), one deterministic scenario each, against the simulated
//! CouchDB cluster in `sim_couch/`.

mod sim_couch;
mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;

use replikit::core::client::{CallSpec, ClientEvent, Output, Platform};
use replikit::core::document::Version;
use replikit::core::outbox::should_queue;
use replikit::core::protocol::couchdb::rev_hash;
use replikit::core::protocol::{Method, Request};
use replikit::core::time::format_rfc3339_ms;
use replikit::core::{
    Action, CallOptions, CollectionName, Completed, Doc, EndpointId, EndpointState, Error, Event, Outcome, Reply,
};
use serde_json::{json, Map, Value};
use sim_couch::{couch_id, split_rev, CouchCluster, NodeState};
use support::{PeerId, World};

/// The CouchDB cluster and its clients on one clock.
type Couch = World<CouchCluster>;

const C: &str = "notes";

fn notes() -> CollectionName {
    CollectionName::parse(C).unwrap()
}

fn data(v: Value) -> Map<String, Value> {
    v.as_object().unwrap().clone()
}

fn rev(s: &str) -> Version {
    Version::Rev(s.to_string())
}

fn create(id: &str, v: Value) -> Action {
    Action::Create { collection: notes(), id: id.into(), data: data(v) }
}

fn replace(id: &str, v: Value, if_version: Option<Version>) -> Action {
    Action::Replace { collection: notes(), id: id.into(), data: data(v), if_version }
}

fn update(id: &str, patch: Value) -> Action {
    Action::Update { collection: notes(), id: id.into(), patch: data(patch), if_version: None }
}

fn delete(id: &str) -> Action {
    Action::Delete { collection: notes(), id: id.into(), if_version: None }
}

fn get(id: &str) -> Action {
    Action::Get { collection: notes(), id: id.into(), if_none_match: None }
}

fn keyed(key: &str) -> CallOptions {
    CallOptions { idempotency_key: Some(key.into()), ..Default::default() }
}

fn doc(r: &Result<Completed, Error>) -> Doc {
    match r {
        Ok(Completed { reply: Reply::Doc(d), .. }) => d.clone(),
        other => panic!("expected a document, got {other:?}"),
    }
}

fn version(r: &Result<Completed, Error>) -> String {
    match doc(r).version {
        Version::Rev(s) => s,
        other => panic!("expected a revision, got {other:?}"),
    }
}

/// The revision a write with `key` makes over `parent` (the node's winner when it wrote; "" for a first
/// revision): `N+1-hash(key, parent)`.
fn rev_of(key: &str, parent: &str) -> String {
    let generation = if parent.is_empty() { 1 } else { split_rev(parent).0 + 1 };
    format!("{generation}-{}", rev_hash(&[key, parent]))
}

/// The parent a `_bulk_docs` document names (`_revisions.ids[1]`), as a full revision; None for a root.
fn parent_of(d: &Value) -> Option<String> {
    let (generation, _) = split_rev(d["_rev"].as_str().expect("_rev"));
    d["_revisions"]["ids"].get(1).and_then(Value::as_str).map(|p| format!("{}-{p}", generation - 1))
}

/// One revision a `_bulk_docs` carried to a node (the request reached it; it may have been a no-op).
#[derive(Debug, Clone)]
struct Placed {
    /// The request's index in the log.
    request: usize,
    node: usize,
    rev: String,
    parent: Option<String>,
    doc: Value,
}

/// The revisions of document `id` the `_bulk_docs` among `log[range]` carried to a node.
fn placed(s: &CouchCluster, range: Range<usize>, id: &str) -> Vec<Placed> {
    let start = range.start;
    s.log[range]
        .iter()
        .enumerate()
        .filter(|(_, r)| r.is_bulk() && r.status.is_some())
        .flat_map(|(k, r)| r.bulk_docs().into_iter().map(move |d| (start + k, r.node, d)))
        .filter(|(_, _, d)| d["_id"] == json!(couch_id(C, id)))
        .map(|(request, node, d)| Placed {
            request,
            node,
            rev: d["_rev"].as_str().unwrap().to_string(),
            parent: parent_of(&d),
            doc: d,
        })
        .collect()
}

/// The revisions of `id` on `node` that a write with `key` made (their hash is `hash(key, parent)`).
fn revs_by(s: &CouchCluster, node: usize, id: &str, key: &str) -> Vec<String> {
    let Some(t) = s.tree(node, &couch_id(C, id)) else {
        return Vec::new();
    };
    t.revs
        .iter()
        .filter(|(r, n)| **r == rev_of(key, n.parent.as_deref().unwrap_or("")))
        .map(|(r, _)| r.clone())
        .collect()
}

/// (node, method, reached the node, answer lost) of every request in `log[range]`.
fn trail(s: &CouchCluster, range: Range<usize>) -> Vec<(usize, Method, bool, bool)> {
    s.log[range].iter().map(|r| (r.node, r.method, r.status.is_some(), r.dropped)).collect()
}

/// Sends `docs` to node 0 with `_bulk_docs` and `new_edits: false`, as a replicator would.
fn post_docs(s: &mut Couch, c: usize, docs: Vec<Value>) -> Outcome {
    let req = Request {
        endpoint: EndpointId(0),
        method: Method::Post,
        path: "/app/_bulk_docs".into(),
        headers: vec![],
        body: Some(json!({"new_edits": false, "docs": docs}).to_string()),
        timeout_ms: 1000,
    };
    s.send(c, &req)
}

/// A stored document for `post_docs`: `rev` with the path `ids`.
fn stored_doc(id: &str, rev: &str, ids: &[&str], deleted: bool) -> Value {
    let (g, _) = split_rev(rev);
    let mut d = json!({"_id": id, "_rev": rev, "_revisions": {"start": g, "ids": ids}, "collection": C, "data": {"r": rev}, "updatedAt": "t"});
    if deleted {
        d["_deleted"] = json!(true);
    }
    d
}

/// The non-deleted leaves of document `id` on `node`, best first.
fn live(s: &CouchCluster, node: usize, id: &str) -> Vec<String> {
    s.tree(node, &couch_id(C, id)).map(|t| t.live_leaves().into_iter().map(String::from).collect()).unwrap_or_default()
}

fn leaves(s: &CouchCluster, node: usize, id: &str) -> Vec<String> {
    s.tree(node, &couch_id(C, id)).map(|t| t.leaves().into_iter().map(String::from).collect()).unwrap_or_default()
}

/// Runs the first round of health checks and checks every client found every node writable.
fn warmed(s: &mut Couch) {
    s.run_for(200);
    for c in &s.routers {
        for i in 0..s.nodes.len() {
            assert!(c.router.topology().writable(EndpointId(i)), "node {i} writable after the first round");
        }
    }
}

// ----- the simulator itself behaves as CouchDB -----

#[test]
fn sim_picks_couchdbs_winner_and_reports_conflicts() {
    let mut s = World::new(CouchCluster::new(1));
    let c = s.connect(json!({}), vec![]);
    warmed(&mut s);
    let id = couch_id(C, "w");
    let body = |rev: &str, ids: &[&str], deleted: bool| stored_doc(&id, rev, ids, deleted);
    let post = |s: &mut Couch, docs: Vec<Value>| post_docs(s, c, docs);
    // 1-a -> 2-b -> 3-c (deleted), 1-a -> 2-z, 1-a -> 2-y (partial path: only the parent's id).
    post(
        &mut s,
        vec![body("3-c", &["c", "b", "a"], true), body("2-z", &["z", "a"], false), body("2-y", &["y", "a"], false)],
    );
    let t = s.tree(0, &id).unwrap();
    assert_eq!(t.leaves(), ["2-y", "2-z", "3-c"]);
    assert_eq!(t.winner(), Some("2-z"), "a deleted leaf never wins; then the highest rev id");
    assert!(t.revs["1-a"].body.is_none() && t.revs["2-b"].body.is_none(), "ancestors known only by the path are stubs");
    let before = s.nodes[0].update_seq;
    post(&mut s, vec![body("2-z", &["z", "a"], false)]);
    assert_eq!(s.nodes[0].update_seq, before, "a revision already present is a no-op");
    let r = s.op(c, get("w"));
    assert_eq!(version(&r), "2-z");
    assert_eq!(
        r.as_ref().unwrap().conflicts,
        vec![rev("2-y")],
        "the other live leaf is a conflict; tombstones are not"
    );
    // Deleting both live leaves makes the document read as deleted.
    post(&mut s, vec![body("3-d", &["d", "z"], true), body("3-e", &["e", "y"], true)]);
    assert_eq!(s.op(c, get("w")).unwrap().reply, Reply::Missing);
    let resp = s.log.last().unwrap().response.clone().unwrap();
    assert!(resp.contains("\"deleted\""), "{resp}");
}

#[test]
fn sim_open_revs_all_lists_every_leaf_live_or_deleted_with_its_path() {
    let mut s = World::new(CouchCluster::new(1));
    let c = s.connect(json!({}), vec![]);
    warmed(&mut s);
    let id = couch_id(C, "o");
    let open_all = |s: &mut Couch, accept_json: bool| -> (u16, String) {
        let req = Request {
            endpoint: EndpointId(0),
            method: Method::Get,
            path: format!("/app/{id}?open_revs=all&revs=true"),
            headers: if accept_json { vec![("Accept".into(), "application/json".into())] } else { vec![] },
            body: None,
            timeout_ms: 1000,
        };
        match s.send(c, &req) {
            Outcome::Response(r) => (r.status, r.body),
            other => panic!("{other:?}"),
        }
    };
    let (status, body) = open_all(&mut s, true);
    assert_eq!(status, 404, "no record of the document: 404");
    assert!(body.contains("\"missing\""), "{body}");
    // 1-a -> 2-b (live), 1-a -> 2-c (deleted), 1-a -> 2-d -> 3-e (deleted).
    post_docs(&mut s, c, vec![stored_doc(&id, "2-b", &["b", "a"], false), stored_doc(&id, "2-c", &["c", "a"], true)]);
    post_docs(&mut s, c, vec![stored_doc(&id, "3-e", &["e", "d", "a"], true)]);
    let (status, body) = open_all(&mut s, true);
    assert_eq!(status, 200);
    let items: Vec<Value> = serde_json::from_str(&body).unwrap();
    let by_rev: BTreeMap<String, Value> =
        items.iter().map(|i| (i["ok"]["_rev"].as_str().unwrap().to_string(), i["ok"].clone())).collect();
    assert_eq!(by_rev.keys().collect::<Vec<_>>(), ["2-b", "2-c", "3-e"], "every leaf, tombstones too; no ancestor");
    assert_eq!(by_rev["2-b"]["_revisions"], json!({"start": 2, "ids": ["b", "a"]}));
    assert_eq!(by_rev["2-b"]["data"], json!({"r": "2-b"}));
    assert_eq!(by_rev["2-b"].get("_deleted"), None);
    assert_eq!(by_rev["3-e"]["_deleted"], json!(true));
    assert_eq!(by_rev["3-e"]["_revisions"], json!({"start": 3, "ids": ["e", "d", "a"]}));
    let (status, body) = open_all(&mut s, false);
    assert!(
        status != 200 || serde_json::from_str::<Value>(&body).is_err(),
        "without Accept: application/json, multipart"
    );
    // Only tombstones left: still 200 with every leaf (a plain GET says 404 deleted).
    post_docs(&mut s, c, vec![stored_doc(&id, "3-f", &["f", "b", "a"], true)]);
    let (status, body) = open_all(&mut s, true);
    assert_eq!(status, 200);
    let items: Vec<Value> = serde_json::from_str(&body).unwrap();
    assert_eq!(items.len(), 3);
    assert!(items.iter().all(|i| i["ok"]["_deleted"] == json!(true)), "{body}");
    assert_eq!(s.op(c, get("o")).unwrap().reply, Reply::Missing);
}

#[test]
fn sim_replication_converges_and_lists_page_through_all_docs() {
    let mut s = World::new(CouchCluster::new(3));
    let cs: Vec<usize> = (0..3).map(|n| s.connect_near(json!({}), n)).collect();
    warmed(&mut s);
    for (n, &c) in cs.iter().enumerate() {
        let r = s.op(c, create(&format!("n{n}"), json!({"n": n})));
        assert_eq!(r.unwrap().endpoint.0, n);
    }
    s.replicate(0, 1);
    assert!(s.tree(1, &couch_id(C, "n0")).is_some() && s.tree(2, &couch_id(C, "n0")).is_none());
    s.replicate_all();
    assert!(s.converged());
    let r = s.op(cs[2], Action::List { collection: notes(), limit: Some(2), after: None }).unwrap();
    let Reply::Page(p) = r.reply else { panic!("{:?}", r.reply) };
    assert_eq!(p.items.iter().map(|d| d.id.as_str()).collect::<Vec<_>>(), ["n0", "n1"]);
    assert_eq!(p.next.as_deref(), Some("n1"));
    let r = s.op(cs[2], Action::List { collection: notes(), limit: Some(2), after: Some("n1".into()) }).unwrap();
    let Reply::Page(p) = r.reply else { panic!("{:?}", r.reply) };
    assert_eq!(p.items.iter().map(|d| d.id.as_str()).collect::<Vec<_>>(), ["n2"]);
    assert_eq!(p.next, None);
    // A down node neither sends nor receives.
    s.kill(2);
    s.op(cs[0], create("late", json!({}))).unwrap();
    s.replicate_all();
    assert!(s.tree(2, &couch_id(C, "late")).is_none() && s.tree(1, &couch_id(C, "late")).is_some());
}

// ----- 1. nearest node, then the session's node -----

#[test]
fn writes_go_to_the_nearest_node_then_the_session_sticks_to_the_node_of_its_last_write() {
    let mut s = World::new(CouchCluster::new(3));
    s.nodes[0].latency_ms = 30;
    s.nodes[1].latency_ms = 5;
    s.nodes[2].latency_ms = 60;
    let c = s.connect(json!({}), vec![]);
    warmed(&mut s);
    let r = s.op(c, create("a", json!({"v": 1})));
    assert_eq!(r.unwrap().endpoint.0, 1, "the fastest node takes the first write");
    assert_eq!(s.bulks().iter().map(|b| b.node).collect::<Vec<_>>(), [1]);

    // Node 1 becomes the slowest; a client with no session would now pick node 0.
    s.nodes[1].latency_ms = 90;
    s.run_for(6000);
    let t = s.router(c).topology();
    assert!(
        t.rtt_ms(EndpointId(1)).unwrap() > t.rtt_ms(EndpointId(0)).unwrap() + 15.0,
        "node 1 left the latency window"
    );
    let fresh = s.connect(json!({}), vec![]);
    s.run_for(200);
    assert_eq!(s.op(fresh, get("zzz")).unwrap().endpoint.0, 0, "without a session: the nearest node");

    let from = s.log.len();
    s.op(c, create("b", json!({"v": 1}))).unwrap();
    s.op(c, update("a", json!({"v": 2}))).unwrap();
    let b = s.op(c, get("b")).unwrap();
    assert_eq!(doc(&Ok(b.clone())).data, data(json!({"v": 1})), "read-your-writes without replication");
    let a = s.op(c, get("a"));
    assert_eq!(doc(&a).data, data(json!({"v": 2})));
    s.op(c, Action::List { collection: notes(), limit: None, after: None }).unwrap();
    let nodes: Vec<usize> = s.log[from..].iter().map(|r| r.node).collect();
    assert!(nodes.iter().all(|&n| n == 1), "the session stays on node 1: {nodes:?}");

    // Node 1 dies: the next write moves to the nearest live node, and the session moves with it.
    s.kill(1);
    let r = s.op(c, create("c", json!({})));
    assert_eq!(r.unwrap().endpoint.0, 0);
    // Node 1 comes back as the fastest node; the session stays on node 0 while it is up.
    s.nodes[1].latency_ms = 1;
    s.start(1);
    s.run_for(8000);
    let t = s.router(c).topology();
    assert!(t.writable(EndpointId(1)) && t.rtt_ms(EndpointId(1)).unwrap() + 15.0 < t.rtt_ms(EndpointId(0)).unwrap());
    let from = s.log.len();
    s.op(c, create("d", json!({}))).unwrap();
    assert_eq!(doc(&s.op(c, get("c"))).id, "c");
    s.op(c, update("d", json!({"x": 1}))).unwrap();
    let nodes: Vec<usize> = s.log[from..].iter().map(|r| r.node).collect();
    assert!(nodes.iter().all(|&n| n == 0), "the session stays on node 0: {nodes:?}");
}

// ----- 2. a down node: a failed read moves at once; a failed write goes back to its node first -----

/// A write whose first request (the read) is refused moves to another node at once, with no backoff. A write whose
/// `_bulk_docs` fails at the network may have landed (the router cannot tell a refused connection from a lost
/// answer), so after a jittered backoff it goes back to that node first; refused there again, it moves on, and
/// over the same parent it makes the same revision (one key, one parent: one revision id).
#[test]
fn a_write_whose_node_is_down_moves_on_and_makes_the_same_revision_there() {
    let mut s = World::new(CouchCluster::new(3));
    // A large backoff, so any wait before the retry shows.
    let c = s.connect(json!({"retry": {"baseDelayMs": 500, "maxDelayMs": 1000}}), vec![Some(2), Some(5), Some(40)]);
    warmed(&mut s);
    let v1 = version(&s.op(c, create("a", json!({"v": 1}))));
    let v2 = version(&s.op(c, update("a", json!({"v": 2}))));
    assert_eq!(s.log.last().unwrap().node, 0);
    s.replicate_all();
    assert_eq!(live(&s, 1, "a"), [v2.as_str()]);
    assert_eq!(s.tree(1, &couch_id(C, "a")).unwrap().revs[&v2].parent.as_deref(), Some(v1.as_str()));

    // (a) The node died before the call (the client has not noticed): the read is refused, the write moves at once.
    s.kill(0);
    let from = s.log.len();
    let (r, took) = s.call(c, update("a", json!({"v": 3})), keyed("k-a"));
    let v3 = rev_of("k-a", &v2);
    assert_eq!(version(&r), v3);
    assert_eq!(r.unwrap().endpoint.0, 1);
    assert_eq!(
        trail(&s, from..s.log.len()),
        [(0, Method::Get, false, false), (1, Method::Get, true, false), (1, Method::Post, true, false)]
    );
    assert!(took <= 1 + 5 + 5, "no backoff before moving: took {took} ms");
    s.start(0);
    s.replicate_all();
    s.run_for(3000);

    // (b) The node dies between the write's read and its _bulk_docs: the _bulk_docs is refused. The router goes
    // back to node 1 (it may have landed) after a backoff, is refused again, and moves to node 0, whose winner is
    // the same, so the write makes the same revision there. The session is on node 1 now.
    let from = s.log.len();
    let (r, took) = s.call_with(c, update("a", json!({"v": 4})), keyed("k-b"), |s, req, _| {
        if req.endpoint.0 == 1 && req.method == Method::Get {
            s.kill(1);
        }
    });
    let expected = rev_of("k-b", &v3);
    assert_eq!(version(&r), expected);
    assert_eq!(r.as_ref().unwrap().endpoint.0, 0);
    assert_eq!(
        trail(&s, from..s.log.len()),
        [
            (1, Method::Get, true, false),
            (1, Method::Post, false, false), // refused
            (1, Method::Get, false, false),  // back to node 1 first: refused again
            (0, Method::Get, true, false),
            (0, Method::Post, true, false),
        ]
    );
    // Read and refused write on node 1, at most one backoff (500 * 2 capped at 1000 ms), then node 1 again and
    // node 0 (2 ms each way).
    assert!(took <= 5 + 1 + 1000 + 1 + 2 + 2, "took {took} ms");
    let bulks = placed(&s, from..s.log.len(), "a");
    let sent: Vec<Value> = s.log[from..].iter().filter(|r| r.is_bulk()).map(|r| r.bulk_docs()[0].clone()).collect();
    assert_eq!(sent.len(), 2);
    assert_eq!(sent[0], sent[1], "one key, one parent: the same revision and the same body on both nodes");
    assert_eq!((bulks.len(), bulks[0].node, bulks[0].rev.as_str()), (1, 0, expected.as_str()));
    assert!(s.routers[c]
        .events
        .iter()
        .any(|(_, e)| matches!(e, Event::Retry { endpoint, .. } if *endpoint == sim_couch::url(1))));
    s.start(1);
    s.replicate_all();
    assert_single_revision(&s, "a", &expected, &v3);
}

// ----- 3. a lost _bulk_docs answer -----

/// Document "a" at generation 1 on every node; `c` is near node 0.
fn one_doc(options: Value) -> (Couch, usize, String) {
    let mut s = World::new(CouchCluster::new(3));
    let c = s.connect(options, vec![Some(2), Some(5), Some(40)]);
    warmed(&mut s);
    let r = s.op(c, create("a", json!({"v": 1})));
    s.replicate_all();
    (s, c, version(&r))
}

fn assert_single_revision(s: &CouchCluster, id: &str, expected: &str, parent: &str) {
    for n in 0..s.nodes.len() {
        assert_eq!(leaves(s, n, id), [expected], "node {n}: exactly one leaf");
        assert_eq!(s.tree(n, &couch_id(C, id)).unwrap().revs[expected].parent.as_deref(), Some(parent));
    }
    assert!(s.anomalies.is_empty(), "{:?}", s.anomalies);
    assert!(s.converged(), "{:?}", s.divergent(&[]));
}

/// The default backoff before the first retry: full jitter up to `baseDelayMs * 2` (25 ms by default).
const FIRST_BACKOFF_MS: u64 = 2 * 25;

#[test]
fn a_lost_write_answer_is_retried_on_the_same_node_and_makes_one_revision() {
    let (mut s, c, v1) = one_doc(json!({}));
    s.nodes[0].drop_next_answer = true;
    let from = s.log.len();
    let (r, took) = s.call(c, update("a", json!({"v": 2})), keyed("k"));
    let expected = rev_of("k", &v1);
    assert_eq!(version(&r), expected, "the call succeeds with the revision it made");
    assert_eq!(doc(&r).data, data(json!({"v": 2})));
    assert_eq!(
        trail(&s, from..s.log.len()),
        [(0, Method::Get, true, false), (0, Method::Post, true, true), (0, Method::Get, true, false)],
        "applied on node 0, answer lost; the retry reads node 0 again, finds its revision and writes nothing"
    );
    assert!(s.log[from + 1].applied);
    assert!(took <= 3 * 2 + FIRST_BACKOFF_MS, "a short jittered backoff only: took {took} ms");
    assert!(took < 1500);
    // Only node 0 was retried (no healthy node was failed on the way).
    let retries: Vec<String> = s.routers[c]
        .events
        .iter()
        .filter_map(|(_, e)| match e {
            Event::Retry { endpoint, .. } => Some(endpoint.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(retries, [sim_couch::url(0)]);
    s.replicate_all();
    assert_single_revision(&s, "a", &expected, &v1);
}

/// Even with the rest of the cluster down (nowhere else to go), the retry confirms on node 0.
#[test]
fn a_lost_write_answer_retried_on_the_same_node_with_the_others_down_makes_one_revision() {
    let (mut s, c, v1) = one_doc(json!({}));
    s.kill(1);
    s.kill(2);
    s.run_for(5000);
    s.nodes[0].drop_next_answer = true;
    let before = s.bulks().len();
    let (r, took) = s.call(c, update("a", json!({"v": 2})), keyed("k"));
    let expected = rev_of("k", &v1);
    assert_eq!(version(&r), expected);
    assert!(took < 1500, "took {took} ms");
    assert_eq!(s.bulks().len(), before + 1, "the retry read node 0 again and found its revision");
    assert!(s.log.iter().skip_while(|r| !r.dropped).skip(1).all(|r| r.node == 0 && r.method == Method::Get));
    s.start(1);
    s.start(2);
    s.replicate_all();
    assert_single_revision(&s, "a", &expected, &v1);
}

/// The write lands on node 0, its answer is lost and node 0 dies. The retry goes back to node 0 (refused), then
/// to node 1, which has the same winner (it was replicated before): the same key over the same parent is the same
/// revision, with the same body — `updatedAt` is the write's time, not the attempt's — so when node 0 comes back
/// the two copies are one revision, not a conflict. (This was `bug_a_retried_write_stores_one_revision_with_
/// different_bodies_on_different_nodes` and `a_lost_write_answer_retried_on_another_node_makes_one_revision`.)
#[test]
fn a_write_applied_on_two_nodes_over_the_same_parent_is_one_revision_with_one_body() {
    let (mut s, c, v1) = one_doc(json!({}));
    s.run_for(1000); // the call's time differs from the create's
    s.nodes[0].drop_next_answer = true;
    let from = s.log.len();
    let start = s.now;
    let (r, took) = s.call_with(c, update("a", json!({"v": 2})), keyed("k"), |s, req, outcome| {
        if req.method == Method::Post && matches!(outcome, Outcome::NetworkError(_)) {
            s.kill(0);
        }
    });
    let expected = rev_of("k", &v1);
    assert_eq!(version(&r), expected);
    assert_eq!(r.as_ref().unwrap().endpoint.0, 1);
    assert!(took < 1500, "took {took} ms");
    assert_eq!(
        trail(&s, from..s.log.len()),
        [
            (0, Method::Get, true, false),
            (0, Method::Post, true, true),  // applied, answer lost
            (0, Method::Get, false, false), // back to node 0 first: refused
            (1, Method::Get, true, false),
            (1, Method::Post, true, false),
        ]
    );
    let bulks = placed(&s, from..s.log.len(), "a");
    assert_eq!(bulks.iter().map(|b| b.node).collect::<Vec<_>>(), [0, 1]);
    assert!(s.log[from + 1].applied && s.log[from + 4].applied);
    assert_eq!(bulks[0].doc, bulks[1].doc, "the same revision, parent and body on both nodes");
    let when = format_rfc3339_ms(start as i64);
    assert_eq!(bulks[0].doc["updatedAt"], json!(when), "updatedAt is the call's start, on every attempt");
    assert_eq!(doc(&r).updated_at, when, "and the reply says the same");
    s.start(0);
    s.replicate_all();
    assert_single_revision(&s, "a", &expected, &v1);

    // A queued write carries its edit time: every attempt writes it.
    s.nodes[1].drop_next_answer = true;
    let options = CallOptions { idempotency_key: Some("k2".into()), written_at_ms: Some(1_234), ..Default::default() };
    let from = s.log.len();
    let r = s.call(c, update("a", json!({"v": 3})), options).0;
    assert_eq!(doc(&r).updated_at, "1970-01-01T00:00:01.234Z");
    let bulks = placed(&s, from..s.log.len(), "a");
    assert!(!bulks.is_empty() && bulks.iter().all(|b| b.doc["updatedAt"] == json!("1970-01-01T00:00:01.234Z")));
}

/// The write lands on node 0, its answer is lost and node 0 goes down; this client's health check sees it `Down`
/// (`failureThreshold: 1`) before the backoff ends, so the retry does not go back there: it moves to node 1 at
/// once, over the same parent, as the same revision.
#[test]
fn a_lost_write_answer_whose_node_is_known_down_by_the_retry_moves_on_at_once() {
    let (mut s, c, v1) =
        one_doc(json!({"health": {"failureThreshold": 1}, "retry": {"baseDelayMs": 200, "maxDelayMs": 1000}}));
    s.run_for(1000); // past the health checks' re-check limit
    s.nodes[0].drop_next_answer = true;
    s.nodes[0].after_drop = Some(NodeState::Down);
    let from = s.log.len();
    let (r, took) = s.call(c, update("a", json!({"v": 2})), keyed("k"));
    let expected = rev_of("k", &v1);
    assert_eq!(version(&r), expected);
    assert_eq!(
        trail(&s, from..s.log.len()),
        [
            (0, Method::Get, true, false),
            (0, Method::Post, true, true),
            (1, Method::Get, true, false),
            (1, Method::Post, true, false)
        ]
    );
    assert_eq!(s.log[from + 2].seen[0], EndpointState::Down, "the client knew node 0 was down");
    assert!(took <= 2 + 2 + 400 + 5 + 5, "one backoff (200 * 2 at most): took {took} ms");
    s.start(0);
    s.replicate_all();
    assert_single_revision(&s, "a", &expected, &v1);
}

/// A node that applies the write and then hangs: the `_bulk_docs` times out, the retry goes back to node 0 and
/// times out again, then moves to node 1 and writes the same revision (same parent). Bounded by two request
/// timeouts and one short backoff.
#[test]
fn a_write_whose_node_hangs_after_applying_it_is_retried_there_once_then_made_elsewhere_as_the_same_revision() {
    let (mut s, c, v1) = one_doc(json!({"requestTimeoutMs": 300}));
    s.nodes[0].drop_next_answer = true;
    s.nodes[0].after_drop = Some(NodeState::Hung);
    let from = s.log.len();
    let (r, took) = s.call(c, update("a", json!({"v": 2})), keyed("k"));
    let expected = rev_of("k", &v1);
    assert_eq!(version(&r), expected);
    assert_eq!(
        trail(&s, from..s.log.len()),
        [
            (0, Method::Get, true, false),
            (0, Method::Post, true, true),  // applied, then hung: timed out
            (0, Method::Get, false, false), // back to node 0 first: timed out
            (1, Method::Get, true, false),
            (1, Method::Post, true, false),
        ]
    );
    assert!(took <= 2 + 300 + FIRST_BACKOFF_MS + 300 + 5 + 5, "took {took} ms");
    let bulks = placed(&s, from..s.log.len(), "a");
    assert_eq!(bulks[0].doc, bulks[1].doc);
    s.start(0);
    s.replicate_all();
    assert_single_revision(&s, "a", &expected, &v1);
}

/// The write lands on node 0, its answer is lost, every node replicates, then node 0 dies. The retry is refused
/// by node 0 and reads node 1, which holds the revision by replication: it answers from it and writes nothing.
#[test]
fn a_lost_write_answer_retried_after_replication_finds_its_revision_on_another_node() {
    let (mut s, c, v1) = one_doc(json!({}));
    s.nodes[0].drop_next_answer = true;
    let from = s.log.len();
    let (r, _) = s.call_with(c, update("a", json!({"v": 2})), keyed("k"), |s, req, outcome| {
        if req.method == Method::Post && matches!(outcome, Outcome::NetworkError(_)) {
            s.replicate_all();
            s.kill(0);
        }
    });
    let expected = rev_of("k", &v1);
    assert_eq!(version(&r), expected);
    assert_eq!(doc(&r).data, data(json!({"v": 2})));
    assert_eq!(
        trail(&s, from..s.log.len()),
        [
            (0, Method::Get, true, false),
            (0, Method::Post, true, true),
            (0, Method::Get, false, false),
            (1, Method::Get, true, false)
        ],
        "the retry found its revision on node 1 and wrote nothing"
    );
    s.start(0);
    s.replicate_all();
    assert_single_revision(&s, "a", &expected, &v1);
}

/// The everyday case of a node ahead of the others: the session's node 0 has `2-p` (its last write, not
/// replicated yet); the next write's `_bulk_docs` lands there as `3-hash(k, 2-p)` but its answer is lost. The
/// retry goes back to node 0 (not to node 1, which still has `1-x` and would make a second revision), finds its
/// revision and answers from it. (This was `bug_a_write_retried_on_a_lagging_node_is_applied_twice_and_
/// conflicts_with_itself`; when node 0 dies before the retry see
/// `a_write_forced_onto_a_lagging_node_after_its_node_died_conflicts_visibly_with_itself`.)
#[test]
fn a_lost_write_answer_on_a_node_ahead_of_the_others_is_confirmed_there_and_applied_once() {
    let (mut s, c, _) = one_doc(json!({}));
    let v2 = version(&s.op(c, update("a", json!({"v": 2})))); // on node 0 only
    assert!(live(&s, 1, "a") != [v2.clone()]);
    s.nodes[0].drop_next_answer = true;
    let from = s.log.len();
    let r = s.call(c, update("a", json!({"v": 3})), keyed("k")).0;
    let expected = rev_of("k", &v2);
    assert_eq!(version(&r), expected);
    assert!(s.log[from..].iter().all(|r| r.node == 0), "every request on node 0");
    assert_eq!(placed(&s, from..s.log.len(), "a").len(), 1);
    s.replicate_all();
    assert_single_revision(&s, "a", &expected, &v2);
}

/// The same, when node 0 dies before the retry. The write's outcome is unknown and only node 0 could tell, so the
/// router moves on to node 1, which lags (it has `1-x`, not node 0's `2-p`): the write lands again, as
/// `2-hash(k, 1-x)`. Inherent to multi-primary writes (waiting for node 0 could take forever, and no other node
/// can know what it took). What the rules guarantee instead: the two revisions have different ids (the id covers
/// the parent), so nothing diverges silently; once node 0 is back and replicated, every node holds both, every
/// acknowledged write is there, the conflict is visible (`_conflicts`) and the conflict strategy settles it.
#[test]
fn a_write_forced_onto_a_lagging_node_after_its_node_died_conflicts_visibly_with_itself() {
    let (mut s, c, v1) = one_doc(json!({}));
    let v2 = version(&s.op(c, update("a", json!({"v": 2})))); // on node 0 only
    s.nodes[0].drop_next_answer = true;
    let from = s.log.len();
    let r = s.call_with(c, update("a", json!({"v": 3})), keyed("k"), |s, req, outcome| {
        if req.method == Method::Post && matches!(outcome, Outcome::NetworkError(_)) {
            s.kill(0);
        }
    });
    let acked = version(&r.0);
    assert_eq!(acked, rev_of("k", &v1), "node 1's winner was the create");
    let bulks = placed(&s, from..s.log.len(), "a");
    let placements: Vec<(usize, String, Option<String>)> =
        bulks.iter().map(|b| (b.node, b.rev.clone(), b.parent.clone())).collect();
    assert_eq!(placements, [(0, rev_of("k", &v2), Some(v2.clone())), (1, acked.clone(), Some(v1.clone()))]);
    s.start(0);
    s.replicate_all();
    assert!(s.anomalies.is_empty(), "{:?}", s.anomalies);
    assert!(s.converged(), "{:?}", s.divergent(&[]));
    for n in 0..3 {
        let mut mine = revs_by(&s, n, "a", "k");
        mine.sort();
        let mut both = vec![rev_of("k", &v2), acked.clone()];
        both.sort();
        assert_eq!(mine, both, "node {n}: the write twice, under two parents, as two revision ids");
        let t = s.tree(n, &couch_id(C, "a")).unwrap();
        for v in [&v1, &v2, &acked] {
            assert!(t.revs[v.as_str()].body.is_some(), "node {n}: acknowledged {v} is there");
        }
        assert_eq!(live(&s, n, "a").len(), 2);
    }
    // Visible: a read reports the conflict, and settling it leaves one live leaf everywhere.
    let read = s.op(c, get("a")).unwrap();
    assert_eq!(read.conflicts.len(), 1, "{read:?}");
    settle(&mut s, c, "a", "last-writer-wins");
    s.replicate_all();
    for n in 0..3 {
        assert_eq!(live(&s, n, "a").len(), 1, "node {n}");
    }
    assert!(s.op(c, get("a")).unwrap().conflicts.is_empty());
}

/// The first attempt lands on node 0 as `2-hash(k, 1-x)`; before the retry every node replicates everything,
/// including another client's longer branch (`3-r`), which now wins. The retry (on node 0 again, or, in the second
/// round, on node 1 because node 0 died) finds its revision on the losing branch — every leaf's history is checked,
/// not only the winner's — and does not write again. (This was `bug_a_retry_whose_revision_lost_the_winner_race_
/// writes_again`.)
#[test]
fn a_retry_finds_its_revision_on_a_losing_branch_and_does_not_write_again() {
    for node_dies in [false, true] {
        let mut s = World::new(CouchCluster::new(3));
        let c = s.connect(json!({}), vec![Some(2), Some(5), Some(40)]);
        let x = s.connect_near(json!({}), 1);
        warmed(&mut s);
        let v1 = version(&s.op(c, create("a", json!({"v": 1}))));
        s.replicate_all();
        // Another client makes a longer branch on node 1 (not replicated yet).
        s.op(x, update("a", json!({"x": 1}))).unwrap();
        let x2 = version(&s.op(x, update("a", json!({"x": 2}))));
        s.nodes[0].drop_next_answer = true;
        let from = s.log.len();
        let r = s.call_with(c, update("a", json!({"v": 2})), keyed("k"), |s, req, outcome| {
            if req.method == Method::Post && matches!(outcome, Outcome::NetworkError(_)) {
                s.replicate_all(); // the retry reads a node that has everything
                if node_dies {
                    s.kill(0);
                }
            }
        });
        let mine = rev_of("k", &v1);
        assert_eq!(version(&r.0), mine, "node_dies: {node_dies}");
        assert_eq!(doc(&r.0).data, data(json!({"v": 2})));
        assert_eq!(placed(&s, from..s.log.len(), "a").len(), 1, "written once");
        let last = s.log.last().unwrap();
        assert_eq!((last.node, last.method), (if node_dies { 1 } else { 0 }, Method::Get));
        s.start(0);
        s.replicate_all();
        for n in 0..3 {
            assert_eq!(revs_by(&s, n, "a", "k"), [mine.as_str()], "node {n}");
            assert_eq!(s.tree(n, &couch_id(C, "a")).unwrap().winner(), Some(x2.as_str()));
        }
        assert!(s.anomalies.is_empty() && s.converged());
        // A real (concurrent) conflict with client x, visible to a reader.
        assert_eq!(s.op(c, get("a")).unwrap().conflicts, vec![rev(&mine)]);
    }
}

/// Three concurrent updates, one per node, not replicated; `c`'s next write lands on node 0 over `2-p0`, its
/// answer is lost and node 0 dies. The retry is refused by node 0 and moves to node 1, whose winner is `2-p1`: the
/// write lands again, as `3-hash(k, 2-p1)`. Inherent, as above (only node 0 knew). Before the fix both copies
/// were `3-hash(k)` under different parents — one id with two parents and two bodies, which CouchDB's
/// replication (by revision id) never reconciles, so the nodes diverged silently. Now: two ids, each under its own
/// parent; after replication every node has both, the trees are identical, the acknowledged one is everywhere and
/// the conflict shows up on reads. (This was `bug_a_write_retried_on_a_node_with_another_winner_is_applied_twice_
/// under_different_parents`.)
#[test]
fn a_write_retried_on_a_node_with_another_winner_makes_a_visible_conflict_never_one_id_under_two_parents() {
    let mut s = World::new(CouchCluster::new(3));
    let c = s.connect(json!({}), vec![Some(2), Some(5), Some(40)]);
    let x = s.connect_near(json!({}), 1);
    let y = s.connect_near(json!({}), 2);
    warmed(&mut s);
    s.op(c, create("a", json!({"v": 1}))).unwrap();
    s.replicate_all();
    let mut winners = Vec::new();
    for (client, node) in [(c, 0), (x, 1), (y, 2)] {
        let r = s.op(client, update("a", json!({"by": node})));
        assert_eq!(r.as_ref().unwrap().endpoint.0, node);
        winners.push(version(&r));
    }
    s.nodes[0].drop_next_answer = true;
    let from = s.log.len();
    let r = s.call_with(c, update("a", json!({"v": 2})), keyed("k"), |s, req, outcome| {
        if req.method == Method::Post && matches!(outcome, Outcome::NetworkError(_)) {
            s.kill(0);
        }
    });
    let acked = version(&r.0);
    assert_eq!(acked, rev_of("k", &winners[1]), "written on node 1 over its winner");
    let placements: Vec<(usize, String, Option<String>)> =
        placed(&s, from..s.log.len(), "a").into_iter().map(|b| (b.node, b.rev, b.parent)).collect();
    assert_eq!(
        placements,
        [(0, rev_of("k", &winners[0]), Some(winners[0].clone())), (1, acked.clone(), Some(winners[1].clone()))]
    );
    assert_ne!(placements[0].1, placements[1].1, "two parents, two revision ids");
    s.start(0);
    s.replicate_all();
    assert!(s.anomalies.is_empty(), "{:?}", s.anomalies);
    assert!(s.converged(), "the nodes hold the same trees: {:?}", s.divergent(&[]));
    for n in 0..3 {
        assert!(
            s.tree(n, &couch_id(C, "a")).unwrap().revs[acked.as_str()].body.is_some(),
            "node {n} has the acknowledged write"
        );
        assert_eq!(revs_by(&s, n, "a", "k").len(), 2);
    }
    let read = s.op(c, get("a")).unwrap();
    let mut seen: Vec<Version> = read.conflicts.clone();
    seen.push(doc(&Ok(read.clone())).version);
    assert!(seen.contains(&rev(&acked)) && seen.contains(&rev(&placements[0].1)), "both visible: {seen:?}");
    assert_eq!(seen.len(), 3, "the two copies and client y's update");
}

// ----- 4. conditions -----

#[test]
fn conditions_fail_with_conflict_already_exists_and_not_found() {
    let (mut s, c, v1) = one_doc(json!({}));
    let v2 = version(&s.op(c, replace("a", json!({"v": 2}), Some(rev(&v1)))));
    let before = s.log.len();
    let err = s.op(c, replace("a", json!({"v": 3}), Some(rev(&v1)))).unwrap_err();
    match err {
        Error::Conflict { current: Some(cur) } => {
            assert_eq!(cur["version"], json!(v2));
            assert_eq!(cur["data"], json!({"v": 2}));
        }
        other => panic!("expected a conflict, got {other:?}"),
    }
    assert_eq!(s.log.len(), before + 1, "one read, no write, no retry elsewhere");
    assert_eq!(s.op(c, create("a", json!({}))).unwrap_err().code(), "already_exists");
    assert_eq!(s.op(c, update("nope", json!({"v": 1}))).unwrap_err().code(), "not_found");
    assert_eq!(s.op(c, delete("nope")).unwrap_err().code(), "not_found");
    assert_eq!(s.op(c, replace("nope", json!({}), Some(rev(&v1)))).unwrap_err().code(), "conflict");
    assert_eq!(s.bulks().len(), 2, "only the create and the replace wrote");
    // A deleted document: create works again, update does not.
    s.op(c, delete("a")).unwrap();
    assert_eq!(s.op(c, update("a", json!({"v": 9}))).unwrap_err().code(), "not_found");
    let again = s.op(c, create("a", json!({"v": 10})));
    assert_eq!(doc(&again).data, data(json!({"v": 10})));
    assert_eq!(doc(&s.op(c, get("a"))).data, data(json!({"v": 10})));
}

// ----- 5. revision conflicts -----

/// Two keys whose revisions over `parent` sort so that CouchDB's winner is the *earlier* write.
fn keys_early_wins(id: &str, parent: &str) -> (String, String) {
    (0..)
        .map(|i| (format!("{id}-early-{i}"), format!("{id}-late-{i}")))
        .find(|(e, l)| rev_hash(&[e, parent]) > rev_hash(&[l, parent]))
        .unwrap()
}

/// Clients 0 and 1 (near nodes 0 and 1) update `id` concurrently (client 1 later), then the nodes replicate.
fn make_conflict(s: &mut Couch, id: &str) -> (String, String) {
    let v1 = version(&s.op(0, create(id, json!({"by": "creator"}))));
    s.replicate_all();
    let (ke, kl) = keys_early_wins(id, &v1);
    let early = s.call(0, update(id, json!({"by": "early"})), keyed(&ke)).0;
    assert_eq!(early.as_ref().unwrap().endpoint.0, 0);
    assert_eq!(version(&early), rev_of(&ke, &v1));
    s.run_for(100);
    let late = s.call(1, update(id, json!({"by": "late"})), keyed(&kl)).0;
    assert_eq!(late.as_ref().unwrap().endpoint.0, 1);
    assert_eq!(version(&late), rev_of(&kl, &v1));
    s.replicate_all();
    for n in 0..3 {
        assert_eq!(live(s, n, id).len(), 2, "node {n} has both leaves");
    }
    (version(&early), version(&late))
}

/// Reads `id` through a call-level client where router `c` is (its latencies to each node), configured with
/// `strategy`: the core itself fetches the conflicting revisions, picks one and writes the resolution; then the
/// client leaves. Returns the versions (server's winner first) and what the read returned.
fn settle(s: &mut Couch, c: usize, id: &str, strategy: &str) -> (Vec<Doc>, Doc) {
    let k = s.clients.len();
    let near_c = s.latency[&PeerId::Router(c)].clone();
    s.place(PeerId::Client(k), near_c);
    let config = s.config(&json!({"conflict": strategy}));
    s.add_client(config, Platform { browser: false, has_indexeddb: false, has_resolver: false, has_fs: false });
    s.run_for(1000); // its first health checks
    let get = CallSpec::Get { collection: notes(), id: id.into(), read_preference: None, read_policy: None };
    let Output::Doc(read) = s.call_spec(k, get).0.expect("the read") else { panic!("a document") };
    let versions = s
        .remove_client()
        .events
        .iter()
        .find_map(|(_, e)| match e {
            ClientEvent::RevisionConflict { versions, doc, merged: false, .. } => {
                assert_eq!(doc, &read.doc, "the event carries what the read returned");
                Some(versions.clone())
            }
            _ => None,
        })
        .expect("a conflict event");
    (versions, read.doc)
}

fn conflict_cluster() -> Couch {
    let mut s = World::new(CouchCluster::new(3));
    for n in 0..3 {
        s.connect_near(json!({}), n);
    }
    warmed(&mut s);
    s
}

#[test]
fn a_conflict_is_reported_and_settled_by_server_wins_and_by_last_writer_wins() {
    let mut s = conflict_cluster();
    for (id, strategy) in [("sw", "server-wins"), ("lww", "last-writer-wins")] {
        let (early, late) = make_conflict(&mut s, id);
        let couch_winner = s.tree(2, &couch_id(C, id)).unwrap().winner().unwrap().to_string();
        assert_eq!(couch_winner, early, "the keys were chosen so that CouchDB's winner is the earlier write");
        let (versions, kept) = settle(&mut s, 2, id, strategy);
        assert_eq!(versions[0].version, rev(&couch_winner), "versions[0] is the server's winner");
        let expected = if strategy == "server-wins" { &early } else { &late };
        assert_eq!(kept.version, rev(expected), "{strategy} kept {expected}");
        assert_eq!(kept.data, data(json!({"by": if expected == &late { "late" } else { "early" }})));
        s.replicate_all();
        for n in 0..3 {
            assert_eq!(live(&s, n, id), vec![expected.clone()], "node {n}: one live leaf, the kept one");
            assert_eq!(s.tree(n, &couch_id(C, id)).unwrap().winner(), Some(expected.as_str()));
        }
        for c in 0..3 {
            let r = s.op(c, get(id)).unwrap();
            assert!(r.conflicts.is_empty(), "client {c} sees no conflict");
            assert_eq!(doc(&Ok(r)).version, rev(expected));
        }
    }
    assert!(s.anomalies.is_empty(), "{:?}", s.anomalies);
}

#[test]
fn two_clients_settling_the_same_conflict_alike_converge_without_a_new_conflict() {
    let mut s = conflict_cluster();
    let (early, late) = make_conflict(&mut s, "both");
    let before = s.bulks().len();
    let (_, k0) = settle(&mut s, 0, "both", "server-wins");
    let (_, k1) = settle(&mut s, 1, "both", "server-wins");
    assert_eq!(k0, k1);
    assert_eq!(k0.version, rev(&early));
    let bulks: Vec<_> = s.bulks()[before..].iter().map(|b| (b.node, b.bulk_docs())).collect();
    assert_eq!(bulks.iter().map(|b| b.0).collect::<Vec<_>>(), [0, 1], "each settled on its own node, unreplicated");
    assert_eq!(bulks[0].1, bulks[1].1, "identical tombstones");
    assert_eq!(bulks[0].1[0]["_revisions"]["ids"][1], json!(split_rev(&late).1), "a tombstone under the loser");
    s.replicate_all();
    for n in 0..3 {
        assert_eq!(live(&s, n, "both"), vec![early.clone()]);
        assert_eq!(leaves(&s, n, "both").len(), 2, "node {n}: the kept leaf and one tombstone, not two");
    }
    assert!(s.converged());
    assert!(s.anomalies.is_empty(), "{:?}", s.anomalies);
    assert!(s.op(2, get("both")).unwrap().conflicts.is_empty());
}

/// A write to a conflicted document goes over CouchDB's winner (the revision a read returns): the client picks it
/// from the leaves itself (live leaves: highest generation, then highest revision id), for the parent, the patch's
/// base and `ifVersion`.
#[test]
fn a_write_to_a_conflicted_document_goes_over_couchdbs_winner() {
    let mut s = conflict_cluster();
    let (early, late) = make_conflict(&mut s, "w");
    assert_eq!(s.tree(2, &couch_id(C, "w")).unwrap().winner(), Some(early.as_str()));
    let stale = s.op(2, replace("w", json!({"by": "x"}), Some(rev(&late)))).unwrap_err();
    assert!(matches!(&stale, Error::Conflict { current: Some(cur) } if cur["version"] == json!(early)), "{stale:?}");
    let from = s.log.len();
    let r = s.call(2, update("w", json!({"more": 1})), keyed("kw")).0;
    assert_eq!(version(&r), rev_of("kw", &early));
    assert_eq!(doc(&r).data, data(json!({"by": "early", "more": 1})), "patched over the winner's data");
    assert_eq!(placed(&s, from..s.log.len(), "w")[0].parent.as_deref(), Some(early.as_str()));
    let r = s.call(2, replace("w", json!({"by": "y"}), Some(rev(&rev_of("kw", &early)))), keyed("kx")).0;
    assert_eq!(version(&r), rev_of("kx", &rev_of("kw", &early)));
    assert_eq!(live(&s, 2, "w"), [rev_of("kx", &rev_of("kw", &early)), late.clone()], "the loser is still a conflict");
}

// ----- 6. the whole cluster down -----

#[test]
fn with_every_node_down_a_write_fails_no_primary_after_the_wait_and_a_read_unavailable() {
    let mut s = World::new(CouchCluster::new(3));
    let c = s.connect(json!({"primaryWaitMs": 2000}), vec![]);
    warmed(&mut s);
    for i in 0..3 {
        s.kill(i);
    }
    s.run_for(5000);
    assert!((0..3).all(|i| !s.router(c).topology().writable(EndpointId(i))));
    let before = s.log.len();
    let (r, took) = s.call(c, create("x", json!({})), CallOptions::default());
    let err = r.unwrap_err();
    assert!(matches!(err, Error::NoPrimary { waited_ms } if (2000..2300).contains(&waited_ms)), "{err:?}");
    assert!((2000..2300).contains(&took), "failed after primaryWaitMs, took {took}");
    let (r, took) = s.call(c, get("x"), CallOptions::default());
    assert_eq!(r.unwrap_err().code(), "unavailable");
    assert!(took <= 2300, "took {took}");
    assert_eq!(s.log.len(), before, "no request was sent to a node known to be down");
    // A node that comes back is found by the waiting write's re-checks and takes it.
    s.start(2);
    let (r, took) = s.call(c, create("x", json!({})), CallOptions::default());
    assert_eq!(r.unwrap().endpoint.0, 2);
    assert!(took < 1200, "took {took}");
}

#[test]
fn with_every_node_freshly_down_a_write_fails_retryably_within_the_wait() {
    // The client has not noticed yet: every node looks up when the write starts.
    let mut s = World::new(CouchCluster::new(3));
    let c = s.connect(json!({"primaryWaitMs": 2000}), vec![]);
    warmed(&mut s);
    for i in 0..3 {
        s.kill(i);
    }
    let (r, took) = s.call(c, create("x", json!({})), CallOptions::default());
    let err = r.unwrap_err();
    assert!(err.retryable() && replikit::core::outbox::should_queue(&err), "{err:?}");
    assert!(took <= 2300, "took {took}");
    let max_attempts = 3 + 3 - 1;
    assert!(s.log.len() <= max_attempts, "{} requests", s.log.len());
    let (r, _) = s.call(c, get("x"), CallOptions::default());
    assert!(r.unwrap_err().retryable());
}

// ----- 7. the router's answer handling after a failed write (formerly known bugs) -----

/// The `_bulk_docs` is refused (node 0 died between the write's read and its write) and node 0 is back before the
/// retry. The retry reads node 0 again (`GET ?open_revs=all`, a JSON array) — that read must be taken for a read,
/// not for the answer of the refused `_bulk_docs` (the follow-up is dropped as soon as its outcome arrives), so the
/// write is really made. Before the fix the router left the follow-up pending on a network error and took the
/// next read's answer for the write's: the call was acknowledged (an array is a valid `_bulk_docs` answer) with
/// nothing written. (This was `bug_after_a_lost_write_answer_the_next_nodes_read_is_taken_for_the_write_answer`.)
#[test]
fn after_a_failed_write_request_the_retrys_read_is_not_taken_for_the_write_answer() {
    let (mut s, c, v1) = one_doc(json!({}));
    let from = s.log.len();
    let mut killed = false;
    let r = s
        .call_with(c, update("a", json!({"v": 2})), keyed("k"), |s, req, outcome| match (req.method, outcome) {
            (Method::Get, Outcome::Response(_)) if !killed => {
                s.kill(0);
                killed = true;
            }
            (Method::Post, Outcome::NetworkError(_)) => s.start(0),
            _ => {}
        })
        .0;
    let expected = rev_of("k", &v1);
    assert_eq!(version(&r), expected);
    assert_eq!(
        trail(&s, from..s.log.len()),
        [
            (0, Method::Get, true, false),
            (0, Method::Post, false, false),
            (0, Method::Get, true, false),
            (0, Method::Post, true, false)
        ],
        "refused, then read and written again on node 0"
    );
    let t = s.tree(0, &couch_id(C, "a")).unwrap();
    let stored = t.revs[expected.as_str()].body.clone().expect("written");
    assert_eq!(stored["data"], json!(doc(&r).data));
    assert_eq!(stored["updatedAt"], json!(doc(&r).updated_at), "the reply is what was stored");
    let retries: Vec<String> = s.routers[c]
        .events
        .iter()
        .filter_map(|(_, e)| match e {
            Event::Retry { endpoint, .. } => Some(endpoint.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(retries, [sim_couch::url(0)], "no healthy node was failed");
    s.replicate_all();
    assert_single_revision(&s, "a", &expected, &v1);
}

/// Two nodes and `retry.maxAttempts: 1` (two attempts in all). The write lands on node 0 and its answer is lost:
/// the one retry goes back to node 0, finds the revision and succeeds. When node 0 also dies, the one retry is
/// refused and the call fails *retryably* (the app queues it; the outbox retries with the same key and finds the
/// write once it is replicated) — never with the non-retryable `protocol` error it used to get from taking node
/// 1's read for the write's answer. (This was `bug_a_lost_write_answer_fails_an_applied_write_with_a_protocol_
/// error`.)
#[test]
fn a_lost_write_answer_with_one_retry_left_is_confirmed_or_fails_retryably() {
    for node_dies in [false, true] {
        let mut s = World::new(CouchCluster::new(2));
        let c = s.connect(json!({"retry": {"maxAttempts": 1}}), vec![Some(2), Some(5)]);
        warmed(&mut s);
        let v1 = version(&s.op(c, create("a", json!({}))));
        s.replicate_all();
        s.nodes[0].drop_next_answer = true;
        let from = s.log.len();
        let r = s
            .call_with(c, update("a", json!({"v": 2})), keyed("k2"), |s, req, outcome| {
                if node_dies && req.method == Method::Post && matches!(outcome, Outcome::NetworkError(_)) {
                    s.kill(0);
                }
            })
            .0;
        let expected = rev_of("k2", &v1);
        assert_eq!(placed(&s, from..s.log.len(), "a").len(), 1, "written once");
        if !node_dies {
            assert_eq!(version(&r), expected);
            assert!(s.log[from..].iter().all(|r| r.node == 0));
            continue;
        }
        let err = r.unwrap_err();
        assert!(err.retryable() && should_queue(&err), "{err:?}");
        // The outbox's retry, with the same key, once node 0 is back and replicated: found, not written again.
        s.start(0);
        s.replicate_all();
        s.run_for(3000);
        let from = s.log.len();
        let r = s.call(c, update("a", json!({"v": 2})), keyed("k2")).0;
        assert_eq!(version(&r), expected);
        assert!(placed(&s, from..s.log.len(), "a").is_empty());
        s.replicate_all();
        assert_single_revision(&s, "a", &expected, &v1);
    }
}

/// A retried delete is acknowledged without writing only when the node it reads has the document deleted (only
/// tombstones); a node with no record of it (404 `missing`: not replicated there yet) proves nothing, so the delete
/// fails `not_found` instead of being acknowledged while the document lives on. (This was `bug_a_retried_delete_
/// on_a_node_that_never_had_the_document_is_acknowledged_but_nothing_is_deleted`.)
#[test]
fn a_retried_delete_is_acknowledged_without_writing_only_where_the_document_is_deleted() {
    // (a) Created on node 0, not replicated; node 0 dies unnoticed: the delete's read is refused, and node 1 has
    // no record of the document.
    let mut s = World::new(CouchCluster::new(3));
    let c = s.connect(json!({}), vec![Some(2), Some(5), Some(40)]);
    let x = s.connect_near(json!({}), 1);
    warmed(&mut s);
    s.op(c, create("a", json!({"v": 1}))).unwrap();
    s.kill(0);
    let from = s.log.len();
    let r = s.op(c, delete("a"));
    assert_eq!(trail(&s, from..s.log.len()), [(0, Method::Get, false, false), (1, Method::Get, true, false)]);
    assert_eq!(r.unwrap_err().code(), "not_found", "never acknowledged without a delete");
    s.start(0);
    s.replicate_all();
    assert!((0..3).all(|n| s.tree(n, &couch_id(C, "a")).unwrap().alive()), "and indeed nothing was deleted");

    // (b) Replicated everywhere; c's delete reads node 0, which dies before the _bulk_docs; meanwhile x deletes the
    // document on node 1. The retry goes back to node 0 (refused), then reads node 1: only tombstones, so the
    // document is gone, as asked: acknowledged with no second tombstone.
    s.run_for(3000);
    let from = s.log.len();
    let r = s.call_with(c, delete("a"), keyed("kd"), |s, req, _| {
        if req.endpoint.0 == 0 && req.method == Method::Get && s.nodes[0].state == NodeState::Up {
            s.kill(0);
            assert_eq!(s.op(x, delete("a")).unwrap().endpoint.0, 1);
        }
    });
    assert_eq!(r.0.unwrap().reply, Reply::Deleted);
    let mine: Vec<(usize, Method, bool)> = s.log[from..]
        .iter()
        .filter(|r| r.client == PeerId::Router(c))
        .map(|r| (r.node, r.method, r.status.is_some()))
        .collect();
    assert_eq!(
        mine,
        [(0, Method::Get, true), (0, Method::Post, false), (0, Method::Get, false), (1, Method::Get, true)],
        "refused on node 0 twice, then node 1's tombstone: no write of c's own"
    );
    s.start(0);
    s.replicate_all();
    assert!((0..3).all(|n| !s.tree(n, &couch_id(C, "a")).unwrap().alive()));
    assert!(s.op(x, get("a")).unwrap().reply == Reply::Missing);

    // (c) x's delete lands on node 1, its answer is lost, every node replicates and node 1 dies: the retry is
    // refused by node 1 and reads another node, which has x's tombstone: it finds its own revision.
    let v = version(&s.op(x, create("b", json!({}))));
    s.replicate_all();
    s.nodes[1].drop_next_answer = true;
    let from = s.log.len();
    let r = s.call_with(x, delete("b"), keyed("kb"), |s, req, outcome| {
        if req.method == Method::Post && matches!(outcome, Outcome::NetworkError(_)) {
            s.replicate_all();
            s.kill(1);
        }
    });
    assert_eq!(r.0.unwrap().reply, Reply::Deleted);
    assert_eq!(placed(&s, from..s.log.len(), "b").len(), 1);
    s.start(1);
    s.replicate_all();
    for n in 0..3 {
        assert_eq!(revs_by(&s, n, "b", "kb"), [rev_of("kb", &v)]);
        assert!(!s.tree(n, &couch_id(C, "b")).unwrap().alive());
    }
}

/// `Action::Resolve` with merged data: the merged revision's `updatedAt` is the one the action carries (the wasm
/// layer passes the latest among the conflicting versions), used for the request and the reply alike, so the
/// reply is the document stored, and two clients merging alike write identical bytes — one revision, one body.
/// (This was `bug_a_merged_resolution_replies_another_updated_at_than_it_stored`.)
#[test]
fn a_merged_resolution_replies_the_document_it_stored_and_clients_merging_alike_write_the_same_bytes() {
    let mut s = conflict_cluster();
    make_conflict(&mut s, "m");
    let r = s.op(2, get("m")).unwrap();
    let winner = doc(&Ok(r.clone()));
    let losers = r.conflicts.clone();
    let merged = data(json!({"by": "merge"}));
    let updated_at = "2026-11-22T10:00:00.000Z".to_string();
    let resolve = Action::Resolve {
        collection: notes(),
        id: "m".into(),
        keep: winner,
        merged: Some(merged.clone()),
        losers,
        updated_at: updated_at.clone(),
    };
    s.run_for(777); // the send time is no part of it
    let from = s.log.len();
    let replied = doc(&s.op(2, resolve.clone()));
    let stored = s.tree(2, &couch_id(C, "m")).unwrap().revs[&replied.version.to_string()].body.clone().unwrap();
    assert_eq!(stored["data"], json!(merged));
    assert_eq!(replied.updated_at, updated_at);
    assert_eq!(stored["updatedAt"], json!(replied.updated_at), "the reply is the document stored");
    // Client 0 settles the same conflict alike on node 0, later.
    s.run_for(1234);
    let replied0 = doc(&s.op(0, resolve));
    assert_eq!(replied0, replied);
    let bulks: Vec<(usize, Vec<Value>)> =
        s.log[from..].iter().filter(|r| r.is_bulk()).map(|r| (r.node, r.bulk_docs())).collect();
    assert_eq!(bulks.iter().map(|b| b.0).collect::<Vec<_>>(), [2, 0]);
    assert_eq!(bulks[0].1, bulks[1].1, "identical bytes");
    s.replicate_all();
    assert!(s.anomalies.is_empty() && s.converged(), "{:?} {:?}", s.anomalies, s.divergent(&[]));
    for n in 0..3 {
        assert_eq!(live(&s, n, "m"), [replied.version.to_string()], "node {n}: the merge only");
    }
}

// ----- 8. random sequences -----

#[derive(Debug, Clone)]
enum Move {
    Write {
        client: usize,
        action: &'static str,
        id: String,
        key: String,
    },
    Kill(usize),
    Start(usize),
    Hang(usize),
    /// The node's next `_bulk_docs` is applied and its answer lost; then it stays up, goes down or hangs.
    DropNext(usize, Option<NodeState>),
    Replicate(usize, usize),
    Wait(u64),
}

/// One write call of a sequence and the log entries it made.
struct WriteCall {
    key: String,
    id: String,
    result: Result<Reply, Error>,
    log: Range<usize>,
    step: usize,
}

/// The requests of `log[range]`, for a failure message.
fn describe(s: &CouchCluster, range: Range<usize>) -> Vec<String> {
    s.log[range]
        .iter()
        .map(|r| {
            format!(
                "{}ms {:?} node {} {:?} {} {:?} -> {:?} {:?}{} seen {:?}",
                r.at_ms,
                r.client,
                r.node,
                r.method,
                r.path,
                r.body,
                r.status,
                r.response,
                if r.dropped { " (answer lost)" } else { "" },
                r.seen
            )
        })
        .collect()
}

/// Whether an `open_revs=all` answer lists only tombstones (the document is deleted on that node).
fn only_tombstones(body: &str) -> bool {
    match serde_json::from_str::<Value>(body) {
        Ok(Value::Array(items)) => !items.is_empty() && items.iter().all(|i| i["ok"]["_deleted"] == json!(true)),
        _ => false,
    }
}

/// Runs one random sequence of writes, kills, hangs, restarts, lost answers, replications and waits on three
/// nodes and three clients; `sync` replicates every up node after every move (no write ever sees a node behind
/// another), otherwise only the sequence's own `Replicate` moves do. No tolerance: after every node is back and
/// replicated,
/// - no revision arrived under another parent, and the nodes hold identical trees (bodies and `updatedAt` too);
/// - every revision id was sent with one parent and one body, wherever and however often it was sent;
/// - every revision a call wrote is `N+1-hash(key, parent)`, one per parent; every attempt of a call wrote the same
///   revisions (one, or a delete's one per live leaf), or (never with `sync`) others only on another node;
/// - after a `_bulk_docs` whose outcome was unknown (refused, lost or timed out) the call's next request went to
///   the same node, unless the client saw it `Down`;
/// - a call that failed with a final error (`not_found`, `already_exists`) wrote nothing (without `strict`: unless
///   its outcome was unknown on a node it had to leave, and the node it moved to answered — an open src issue);
/// - every acknowledged write is on every node: its own revision (and the version it replied), or for a delete
///   acknowledged without writing, a read of that node that found only tombstones;
/// - a confirmed delete never resurrects: no leaf a delete's attempt read live (and wrote over) is live anywhere.
///
/// Returns the first violation with the moves that led to it.
fn random_sequence(seed: u64, moves: usize, sync: bool, strict: bool) -> Result<(), String> {
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut s = World::new(CouchCluster::new(3));
    for n in 0..3 {
        s.nodes[n].latency_ms = rng.u64(1..30);
    }
    let options = json!({"primaryWaitMs": 1500, "requestTimeoutMs": 300, "health": {"timeoutMs": 200}});
    for _ in 0..3 {
        let latency = (0..3).map(|_| rng.bool().then(|| rng.u64(1..40))).collect();
        s.connect(options.clone(), latency);
    }
    s.run_for(rng.u64(0..300));
    let ids = ["d0", "d1", "d2"];
    let mut trace: Vec<Move> = Vec::new();
    let mut calls: Vec<WriteCall> = Vec::new();
    let fail = |trace: &[Move], what: String| Err(format!("seed {seed} (sync: {sync}): {what}\nmoves: {trace:#?}"));
    for step in 0..moves {
        let m = match rng.u32(0..100) {
            0..=54 => Move::Write {
                client: rng.usize(0..3),
                action: ["create", "replace", "update", "delete"][rng.usize(0..4)],
                id: ids[rng.usize(0..ids.len())].to_string(),
                key: format!("s{seed}-k{step}"),
            },
            55..=63 => Move::Kill(rng.usize(0..3)),
            64..=75 => Move::Start(rng.usize(0..3)),
            76..=78 => Move::Hang(rng.usize(0..3)),
            79..=87 => {
                Move::DropNext(rng.usize(0..3), [None, Some(NodeState::Down), Some(NodeState::Hung)][rng.usize(0..3)])
            }
            88..=95 => Move::Replicate(rng.usize(0..3), rng.usize(0..3)),
            _ => Move::Wait(rng.u64(0..3000)),
        };
        trace.push(m.clone());
        match m {
            Move::Write { client, action, id, key } => {
                let v = json!({"key": key});
                let a = match action {
                    "create" => create(&id, v),
                    "replace" => replace(&id, v, None),
                    "update" => update(&id, v),
                    _ => delete(&id),
                };
                let from = s.log.len();
                let (r, took) = s.call(client, a, keyed(&key));
                // primaryWaitMs, the backoffs (each at most maxDelayMs) and a few timeouts.
                if took > 1500 + 2 * 1000 + 300 * 6 {
                    return fail(&trace, format!("step {step}: the call took {took} ms"));
                }
                match &r {
                    Ok(_) => {}
                    Err(e)
                        if matches!(
                            e.code(),
                            "already_exists" | "not_found" | "unavailable" | "no_primary" | "timeout"
                        ) => {}
                    Err(e) => {
                        return fail(
                            &trace,
                            format!("step {step}: unexpected error {e:?}: {:#?}", describe(&s, from..s.log.len())),
                        )
                    }
                }
                calls.push(WriteCall { key, id, result: r.map(|d| d.reply), log: from..s.log.len(), step });
            }
            Move::Kill(n) => s.kill(n),
            Move::Start(n) => s.start(n),
            Move::Hang(n) => s.hang(n),
            Move::DropNext(n, then) => {
                s.nodes[n].drop_next_answer = true;
                s.nodes[n].after_drop = then;
            }
            Move::Replicate(a, b) => {
                s.replicate(a, b);
            }
            Move::Wait(ms) => s.run_for(ms),
        }
        if sync {
            s.replicate_all();
        }
    }
    for n in 0..3 {
        s.start(n);
        s.nodes[n].drop_next_answer = false;
        s.nodes[n].after_drop = None;
    }
    s.replicate_all();
    if !s.anomalies.is_empty() {
        return fail(&trace, format!("a revision arrived under another parent: {:?}", s.anomalies));
    }
    let divergent = s.divergent(&[]);
    if !divergent.is_empty() {
        return fail(&trace, format!("the nodes did not converge: {divergent:#?}"));
    }
    // One revision id: one parent, one body, wherever it was sent.
    let mut sent: BTreeMap<(String, String), BTreeSet<String>> = BTreeMap::new();
    for b in s.bulks().into_iter().filter(|b| b.status.is_some()) {
        for d in b.bulk_docs() {
            let k = (d["_id"].as_str().unwrap().to_string(), d["_rev"].as_str().unwrap().to_string());
            sent.entry(k).or_default().insert(d.to_string());
        }
    }
    if let Some((k, docs)) = sent.iter().find(|(_, d)| d.len() > 1) {
        return fail(&trace, format!("revision {k:?} was sent as {} different documents: {docs:#?}", docs.len()));
    }
    for call in &calls {
        let requests = || describe(&s, call.log.clone());
        let what = format!("step {} (write {} of {}, {:?})", call.step, call.key, call.id, call.result);
        // Every revision it wrote is hash(key, parent); several only on different nodes over different winners.
        let placements = placed(&s, call.log.clone(), &call.id);
        for p in &placements {
            if p.rev != rev_of(&call.key, p.parent.as_deref().unwrap_or("")) {
                return fail(
                    &trace,
                    format!("{what}: wrote {} over {:?}, not hash(key, parent): {:#?}", p.rev, p.parent, requests()),
                );
            }
        }
        // One parent, one revision: every attempt over a parent makes the same child.
        for (i, a) in placements.iter().enumerate() {
            if let Some(b) = placements[i + 1..].iter().find(|b| b.parent == a.parent && b.rev != a.rev) {
                return fail(
                    &trace,
                    format!("{what}: {} and {} under one parent {:?}: {:#?}", a.rev, b.rev, a.parent, requests()),
                );
            }
        }
        // Two attempts that wrote different revisions (a delete writes one per live leaf, so an attempt writes a
        // set): only on different nodes over different leaves (never with `sync`).
        let mut attempts: BTreeMap<usize, (usize, BTreeSet<&str>)> = BTreeMap::new();
        for p in &placements {
            attempts.entry(p.request).or_insert((p.node, BTreeSet::new())).1.insert(&p.rev);
        }
        let attempts: Vec<&(usize, BTreeSet<&str>)> = attempts.values().collect();
        for (i, (a_node, a)) in attempts.iter().enumerate() {
            for (b_node, b) in &attempts[i + 1..] {
                if a != b && (sync || a_node == b_node) {
                    return fail(
                        &trace,
                        format!(
                            "{what}: one write made {a:?} on node {a_node} and {b:?} on node {b_node}: {:#?}",
                            requests()
                        ),
                    );
                }
            }
        }
        // After a _bulk_docs with an unknown outcome, the next request goes back to that node unless it is Down.
        for k in call.log.start..call.log.end.saturating_sub(1) {
            let (r, next) = (&s.log[k], &s.log[k + 1]);
            let unknown = r.is_bulk() && (r.status.is_none() || r.dropped);
            if unknown && next.node != r.node && next.seen[r.node] != EndpointState::Down {
                return fail(
                    &trace,
                    format!(
                        "{what}: after the unknown outcome on node {} the retry went to node {}: {:#?}",
                        r.node,
                        next.node,
                        requests()
                    ),
                );
            }
        }
        let wrote = s.log[call.log.clone()].iter().any(|r| r.is_bulk() && r.applied);
        // `strict` also fails a final error after the outcome was unknown on a node the call then had to leave
        // (`a_write_that_landed_before_its_node_died_is_not_reported_not_found_by_the_next_node`).
        let last = &s.log[call.log.end - 1];
        let left_unknown = s.log[call.log.clone()]
            .iter()
            .any(|r| r.is_bulk() && (r.status.is_none() || r.dropped) && r.node != last.node);
        match &call.result {
            Err(e) if !e.retryable() && wrote && (strict || !left_unknown) => {
                return fail(&trace, format!("{what}: failed with {e:?} although it wrote: {:#?}", requests()));
            }
            Err(_) => {}
            Ok(reply) => {
                let cid = couch_id(C, &call.id);
                for n in 0..3 {
                    let tree = s.tree(n, &cid);
                    let present = |rev: &str| {
                        tree.is_some_and(|t| t.revs.get(rev).is_some_and(|r| r.body.is_some() || r.deleted))
                    };
                    let own: Vec<String> =
                        revs_by(&s, n, &call.id, &call.key).into_iter().filter(|r| present(r)).collect();
                    let ok = match reply {
                        Reply::Doc(d) => !own.is_empty() && present(&d.version.to_string()),
                        Reply::Deleted => {
                            let own_tombstone = own.iter().any(|r| tree.unwrap().revs[r].deleted);
                            // A retry that found the document deleted (by someone) on the node it read.
                            let found_deleted = last.method == Method::Get
                                && last.status == Some(200)
                                && last.response.as_deref().is_some_and(only_tombstones);
                            own_tombstone || found_deleted
                        }
                        other => return fail(&trace, format!("{what}: a write replied {other:?}")),
                    };
                    if !ok {
                        return fail(
                            &trace,
                            format!(
                                "{what}: acknowledged but missing on node {n} (own revisions there: {own:?}): {:#?}",
                                requests()
                            ),
                        );
                    }
                }
                if *reply == Reply::Deleted {
                    if let Some(alive) = resurrected(&s, call) {
                        return fail(
                            &trace,
                            format!("{what}: a confirmed delete resurrected {alive}: {:#?}", requests()),
                        );
                    }
                }
            }
        }
    }
    Ok(())
}

/// A revision the delete `call` read live (every leaf of the `open_revs=all` read before each `_bulk_docs` it
/// sent that reached its node) that is still a live leaf on some node, after everything replicated: a confirmed
/// delete brought it back. A write the deleting node had not received is not one (see `a_write_the_deleting_
/// node_had_not_received_survives_the_delete`).
fn resurrected(s: &CouchCluster, call: &WriteCall) -> Option<String> {
    for k in call.log.clone().filter(|&k| s.log[k].is_bulk() && s.log[k].status.is_some()) {
        let read = &s.log[k - 1];
        assert!(k > call.log.start && read.method == Method::Get && read.node == s.log[k].node, "a write's read");
        let body: Value = serde_json::from_str(read.response.as_deref().unwrap_or("[]")).unwrap_or(json!([]));
        let read_live = body.as_array().into_iter().flatten().filter(|i| i["ok"]["_deleted"] != json!(true));
        for rev in read_live.filter_map(|i| i["ok"]["_rev"].as_str()) {
            if let Some(n) = (0..s.nodes.len()).find(|&n| live(s, n, &call.id).iter().any(|r| r == rev)) {
                return Some(format!(
                    "{rev} (read live on node {} before the write, still live on node {n})",
                    read.node
                ));
            }
        }
    }
    None
}

#[test]
fn random_writes_kills_drops_and_replications_keep_every_acknowledged_write_exactly_once() {
    // Every node that is up is replicated after every move, so every write (and every retry) reads a node that
    // has everything the others have; nodes still die, hang, come back stale and lose answers.
    for seed in 0..200 {
        if let Err(e) = random_sequence(seed, 40, true, true) {
            panic!("{e}");
        }
    }
}

#[test]
fn random_writes_kills_drops_and_replications_in_any_order_keep_every_acknowledged_write_exactly_once() {
    let failures: Vec<String> = (0..200).filter_map(|seed| random_sequence(seed, 40, false, false).err()).collect();
    if let Some(first) = failures.first() {
        panic!("{} of 200 sequences failed; the first:\n{first}", failures.len());
    }
}

/// As above, and a write that landed is never reported failed with a final error.
#[test]
fn random_writes_in_any_order_never_fail_a_write_that_landed() {
    let failures: Vec<String> = (0..200).filter_map(|seed| random_sequence(seed, 40, false, true).err()).collect();
    if let Some(first) = failures.first() {
        panic!("{} of 200 sequences failed; the first:\n{first}", failures.len());
    }
}

// ----- 9. after an unknown outcome, another node's "no" is not final -----

/// A write whose outcome is unknown on the node it had to leave must not be reported with the *final* error of
/// the node it moved to: it may have landed. (Found by `random_writes_in_any_order_never_fail_a_write_that_landed`
/// before the router turned such errors into a retryable `unavailable`.) Here `c`'s update lands on node 0 (its answer is lost, node 0 dies); meanwhile
/// client `x` deleted the document on node 1 (not replicated). The retry is refused by node 0 and reads node 1:
/// only a tombstone, so the update fails `not_found` — a definite "it did not happen", not retryable, so the
/// outbox drops it. After node 0 comes back and replicates, `c`'s update is the live leaf and wins: the document
/// lives on with data the app was told was never written. (Likewise `already_exists` for a create that landed,
/// when the next node holds another client's create: the app's document then shows up as a conflict.) Unlike the
/// revision itself (a second revision is inherent once the original node is gone, and visible), the report can
/// be truthful: after an unknown outcome, a precondition failure from another node says nothing about the write,
/// so the call should end with a retryable error (the outbox retries with the same key and finds the write once
/// node 0's revision has replicated). Found by `random_writes_in_any_order_never_fail_a_write_that_landed`; the
/// shortest sequence is `random_sequence(1637, 3, false, true)`: client 1 creates d2 on node 2 (not replicated),
/// node 2 applies client 1's delete of d2, loses the answer and goes down; the retry is refused by node 2, reads
/// node 1 (404 `missing`) and fails `not_found`, though node 2 holds the tombstone.
#[test]
fn a_write_that_landed_before_its_node_died_is_not_reported_not_found_by_the_next_node() {
    let (mut s, c, _) = one_doc(json!({}));
    let x = s.connect_near(json!({}), 1);
    s.run_for(200);
    assert_eq!(s.op(x, delete("a")).unwrap().endpoint.0, 1); // on node 1 only
    s.nodes[0].drop_next_answer = true;
    s.nodes[0].after_drop = Some(NodeState::Down);
    let r = s.call(c, update("a", json!({"v": 2})), keyed("k")).0;
    s.start(0);
    s.replicate_all();
    let alive = s.op(x, get("a")).unwrap();
    assert_eq!(doc(&Ok(alive)).data, data(json!({"v": 2})), "the update landed and wins");
    match r {
        Ok(done) => assert_eq!(doc(&Ok(done)).data, data(json!({"v": 2}))),
        Err(e) => assert!(e.retryable() && should_queue(&e), "the update landed, yet the call failed with {e:?}"),
    }
}

// ----- 10. a confirmed delete stays deleted -----

/// A delete of a document with an unsettled conflict (no read settled it): the write's read lists both live
/// leaves, and one `_bulk_docs` ends each with a tombstone `N+1-hash(key, leaf)`; after replication no node has a
/// live leaf, so the document reads as deleted everywhere. `ifVersion` is checked against CouchDB's winner, as
/// for any write. Before, only the winner got a tombstone and the losing version became the document on every
/// node once the delete had been confirmed.
#[test]
fn a_delete_over_an_unsettled_conflict_ends_every_live_leaf_so_nothing_lives_after_replication() {
    let mut s = conflict_cluster();
    let (early, late) = make_conflict(&mut s, "d");
    let delete_if = |v: &str| Action::Delete { collection: notes(), id: "d".into(), if_version: Some(rev(v)) };
    let stale = s.op(2, delete_if(&late)).unwrap_err();
    assert!(matches!(&stale, Error::Conflict { current: Some(cur) } if cur["version"] == json!(early)), "{stale:?}");
    let from = s.log.len();
    let r = s.call(2, delete_if(&early), keyed("kd")).0;
    assert_eq!(r.unwrap().reply, Reply::Deleted);
    let bulks = placed(&s, from..s.log.len(), "d");
    assert!(bulks.iter().all(|b| b.request == bulks[0].request && b.doc["_deleted"] == json!(true)), "{bulks:?}");
    let mut written: Vec<(String, Option<String>)> = bulks.iter().map(|b| (b.rev.clone(), b.parent.clone())).collect();
    written.sort();
    let mut expected = vec![(rev_of("kd", &early), Some(early.clone())), (rev_of("kd", &late), Some(late.clone()))];
    expected.sort();
    assert_eq!(written, expected, "one tombstone under each live leaf, in one _bulk_docs, named by key and parent");
    s.replicate_all();
    for n in 0..3 {
        assert_eq!(live(&s, n, "d"), Vec::<String>::new(), "node {n}: no live leaf");
    }
    assert!(s.anomalies.is_empty() && s.converged(), "{:?} {:?}", s.anomalies, s.divergent(&[]));
    for c in 0..3 {
        assert_eq!(s.op(c, get("d")).unwrap().reply, Reply::Missing, "client {c}");
    }
}

/// The delete of a conflicted document lands on node 2 and its answer is lost. The retry reads node 2 again,
/// finds its own tombstones and writes nothing; or, when node 2 died, moves to a node with the same leaves and
/// writes the same tombstones there (the same ids and bodies), so after replication each leaf has exactly one
/// tombstone of this delete and nothing lives.
#[test]
fn a_retried_delete_of_a_conflicted_document_is_applied_once() {
    for node_dies in [false, true] {
        let mut s = conflict_cluster();
        let (early, late) = make_conflict(&mut s, "d");
        s.nodes[2].drop_next_answer = true;
        s.nodes[2].after_drop = node_dies.then_some(NodeState::Down);
        let from = s.log.len();
        let r = s.call(2, delete("d"), keyed("kd")).0;
        assert_eq!(r.unwrap().reply, Reply::Deleted, "node_dies: {node_dies}");
        let sent: Vec<(usize, Vec<Value>)> = s.log[from..]
            .iter()
            .filter(|r| r.is_bulk() && r.status.is_some())
            .map(|r| (r.node, r.bulk_docs()))
            .collect();
        if node_dies {
            assert_eq!(sent.len(), 2);
            assert_ne!(sent[1].0, 2);
            assert_eq!(sent[0].1, sent[1].1, "the same tombstones on both nodes");
        } else {
            assert_eq!(
                trail(&s, from..s.log.len()),
                [(2, Method::Get, true, false), (2, Method::Post, true, true), (2, Method::Get, true, false)],
                "the retry found its tombstones on node 2 and wrote nothing"
            );
        }
        s.start(2);
        s.replicate_all();
        let mut mine = vec![rev_of("kd", &early), rev_of("kd", &late)];
        mine.sort();
        for n in 0..3 {
            assert_eq!(leaves(&s, n, "d"), mine, "node {n}: one tombstone per leaf, each once");
            assert_eq!(live(&s, n, "d"), Vec::<String>::new());
        }
        assert!(s.anomalies.is_empty() && s.converged(), "{:?} {:?}", s.anomalies, s.divergent(&[]));
    }
}

/// Clients 0 and 1 delete the same conflicted document, each on its own node, before either hears of the other.
/// Each ends both leaves; after replication every node holds the four tombstones and no live leaf: the same
/// trees, the document deleted, no conflict (tombstones are none), and a new create starts clean.
#[test]
fn two_clients_deleting_the_same_conflicted_document_converge_without_a_new_conflict() {
    let mut s = conflict_cluster();
    let (early, late) = make_conflict(&mut s, "d");
    for (c, key) in [(0, "k0"), (1, "k1")] {
        let r = s.call(c, delete("d"), keyed(key)).0.unwrap();
        assert_eq!((r.reply, r.endpoint.0), (Reply::Deleted, c));
    }
    s.replicate_all();
    let mut all: Vec<String> = ["k0", "k1"].iter().flat_map(|k| [rev_of(k, &early), rev_of(k, &late)]).collect();
    all.sort();
    for n in 0..3 {
        assert_eq!(leaves(&s, n, "d"), all, "node {n}");
        assert_eq!(live(&s, n, "d"), Vec::<String>::new(), "node {n}");
    }
    assert!(s.anomalies.is_empty() && s.converged(), "{:?} {:?}", s.anomalies, s.divergent(&[]));
    assert_eq!(s.op(2, get("d")).unwrap().reply, Reply::Missing);
    s.op(2, create("d", json!({"v": "again"}))).unwrap();
    s.replicate_all();
    let again = s.op(0, get("d")).unwrap();
    assert!(again.conflicts.is_empty(), "{again:?}");
    assert_eq!(doc(&Ok(again)).data, data(json!({"v": "again"})));
}

/// The limit of a delete in multi-primary (docs/ARCHITECTURE.md, "Exactly once on CouchDB"): it ends what it read.
/// Client x updates the document on node 1; before node 0 hears of it, client c deletes it there. After
/// replication x's update is a live leaf beside c's tombstone and wins, as CouchDB decides (a live leaf beats a
/// deleted one) on every node and for every client of the database. The SDK keeps that: a read returns the update
/// with no conflict (tombstones are not `_conflicts`), no strategy runs, and deleting again ends it. What c's
/// delete read never comes back (`random_sequence` checks that in every sequence).
#[test]
fn a_write_the_deleting_node_had_not_received_survives_the_delete() {
    let (mut s, c, v1) = one_doc(json!({}));
    let x = s.connect_near(json!({}), 1);
    s.run_for(200);
    let r = s.call(x, update("a", json!({"by": "x"})), keyed("kx")).0;
    assert_eq!(r.as_ref().unwrap().endpoint.0, 1);
    let u = version(&r);
    let r = s.call(c, delete("a"), keyed("kd")).0.unwrap();
    assert_eq!((r.reply, r.endpoint.0), (Reply::Deleted, 0));
    s.replicate_all();
    for n in 0..3 {
        assert_eq!(live(&s, n, "a"), [u.as_str()], "node {n}: the update the delete never saw");
        let t = s.tree(n, &couch_id(C, "a")).unwrap();
        assert!(t.revs[&rev_of("kd", &v1)].deleted, "node {n}: what the delete read stays deleted");
    }
    let read = s.op(c, get("a")).unwrap();
    assert!(read.conflicts.is_empty(), "{read:?}");
    assert_eq!(doc(&Ok(read)).data, data(json!({"v": 1, "by": "x"})));
    assert_eq!(s.call(c, delete("a"), keyed("kd2")).0.unwrap().reply, Reply::Deleted);
    s.replicate_all();
    assert!((0..3).all(|n| live(&s, n, "a").is_empty()));
}
