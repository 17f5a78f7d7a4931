//! Read preference tag sets (MongoDB's server-selection rules), one deterministic scenario each, against the
//! simulated cluster in `sim/`: endpoints carry `tags`, and a read preference's `tagSets` are tried in order.

mod sim;
mod support;

use std::collections::BTreeSet;

use replikit::core::options::parse_read_preference;
use replikit::core::{Action, CallOptions, CollectionName, Config, Error, Step};
use serde_json::{json, Map, Value};
use sim::Sim;

fn users() -> CollectionName {
    CollectionName::parse("users").unwrap()
}

fn create(id: &str) -> Action {
    let data: Map<String, Value> = json!({"name": id}).as_object().unwrap().clone();
    Action::Create { collection: users(), id: id.into(), data }
}

fn get(id: &str) -> Action {
    Action::Get { collection: users(), id: id.into(), if_none_match: None }
}

fn dc(name: &str) -> Value {
    json!({ "dc": name })
}

/// A cluster whose nodes are in the data centres `dcs` (node 0 the primary), checked once, holding document `a`.
fn warmed(dcs: &[&str], options: Value) -> Sim {
    let tags: Vec<Value> = dcs.iter().map(|d| dc(d)).collect();
    let mut s = Sim::with_tags(&tags, options);
    s.run_for(50);
    s.op(create("a")).unwrap();
    s
}

/// A call's options with this read preference, read as a call's `readPreference` is.
fn per_call(preference: Value) -> CallOptions {
    let preference = parse_read_preference(&preference, "readPreference").expect("a valid read preference");
    CallOptions { read_preference: Some(preference), ..Default::default() }
}

/// The nodes 30 reads went to.
fn reads_from(s: &mut Sim, options: &CallOptions) -> BTreeSet<usize> {
    (0..30).map(|_| s.call(get("a"), options.clone()).0.expect("the read is served").endpoint.0).collect()
}

fn nodes(ids: &[usize]) -> BTreeSet<usize> {
    ids.iter().copied().collect()
}

fn invalid_argument(result: Result<impl std::fmt::Debug, Error>) -> String {
    match result {
        Err(Error::InvalidArgument { what, .. }) => what,
        other => panic!("expected invalid_argument, got {other:?}"),
    }
}

#[test]
fn nearest_with_tag_sets_reads_from_the_first_set_that_matches_an_eligible_endpoint() {
    let options = json!({"readPreference": {"mode": "nearest", "tagSets": [dc("ap"), dc("eu"), dc("us")]}});
    let mut s = warmed(&["eu", "us", "eu", "us"], options);
    assert_eq!(
        reads_from(&mut s, &CallOptions::default()),
        nodes(&[0, 2]),
        "no ap node; the eu ones, primary included"
    );
}

#[test]
fn a_read_moves_to_the_next_tag_set_when_every_endpoint_of_the_first_is_down() {
    let options = json!({"readPreference": {"mode": "replica", "tagSets": [dc("eu"), dc("us")]}});
    let mut s = warmed(&["us", "eu", "us", "eu"], options);
    assert_eq!(reads_from(&mut s, &CallOptions::default()), nodes(&[1, 3]));
    s.kill(1);
    s.kill(3);
    assert_eq!(s.op(get("a")).unwrap().endpoint.0, 2, "within the same call, once both eu replicas failed it");
    s.run_for(3000);
    assert_eq!(reads_from(&mut s, &CallOptions::default()), nodes(&[2]));
    s.start(1);
    s.run_for(3000);
    assert_eq!(reads_from(&mut s, &CallOptions::default()), nodes(&[1]), "back to the first set once it is up");
}

#[test]
fn a_read_moves_to_the_next_tag_set_when_every_endpoint_of_the_first_is_too_stale() {
    let options = json!({"consistency": "eventual", "maxStalenessMs": 1000,
        "readPreference": {"mode": "replica", "tagSets": [dc("eu"), dc("us")]}});
    let mut s = warmed(&["us", "eu", "us"], options);
    assert_eq!(reads_from(&mut s, &CallOptions::default()), nodes(&[1]));
    s.nodes[1].replicating = false;
    s.nodes[1].lag_ms = 5000;
    s.op(create("b")).unwrap();
    s.run_for(1500);
    assert_eq!(reads_from(&mut s, &CallOptions::default()), nodes(&[2]), "the eu replica lags past 1000 ms");
}

#[test]
fn an_empty_tag_set_is_a_catch_all_when_no_earlier_set_matches() {
    let options = json!({"readPreference": {"mode": "replica", "tagSets": [dc("ap"), {}]}});
    let mut s = warmed(&["us", "eu", "us"], options);
    assert_eq!(reads_from(&mut s, &CallOptions::default()), nodes(&[1, 2]));
}

#[test]
fn when_no_tag_set_matches_an_eligible_endpoint_the_read_waits_then_fails_unavailable() {
    let options = json!({"primaryWaitMs": 1000, "readPreference": {"mode": "replica", "tagSets": [dc("us")]}});
    let mut s = warmed(&["us", "eu", "eu"], options);
    let (r, took) = s.call(get("a"), CallOptions::default());
    assert_eq!(r.unwrap_err().code(), "unavailable", "the us primary is not a replica read's candidate");
    assert!(took >= 1000, "it waited for an endpoint to become eligible ({took} ms)");
}

#[test]
fn primary_preferred_ignores_tags_while_the_primary_is_up_and_applies_them_to_the_replicas_after() {
    let options = json!({"primaryWaitMs": 1000, "readPreference": {"mode": "primaryPreferred", "tagSets": [dc("eu")]}});
    let mut s = warmed(&["us", "eu", "us"], options);
    assert_eq!(reads_from(&mut s, &CallOptions::default()), nodes(&[0]), "the us primary, whatever its tags");
    s.kill(0);
    s.run_for(3000);
    assert_eq!(reads_from(&mut s, &CallOptions::default()), nodes(&[1]), "the eu replica, not the us one");
    s.kill(1);
    s.run_for(3000);
    let (r, _) = s.call(get("a"), CallOptions::default());
    assert_eq!(r.unwrap_err().code(), "unavailable", "the us replica matches no tag set");
}

#[test]
fn replica_preferred_reads_tagged_replicas_and_falls_back_to_the_primary_when_none_matches() {
    let mut s = warmed(&["us", "eu", "eu"], json!({}));
    let eu = per_call(json!({"mode": "replicaPreferred", "tagSets": [dc("eu")]}));
    assert_eq!(reads_from(&mut s, &eu), nodes(&[1, 2]));
    let us = per_call(json!({"mode": "replicaPreferred", "tagSets": [dc("us")]}));
    assert_eq!(reads_from(&mut s, &us), nodes(&[0]), "no us replica: the primary");
    s.kill(1);
    s.kill(2);
    s.run_for(3000);
    assert_eq!(reads_from(&mut s, &eu), nodes(&[0]), "no eu replica up: the primary");
}

#[test]
fn mode_primary_with_tag_sets_is_an_invalid_argument_in_options_and_per_call() {
    let preference = json!({"mode": "primary", "tagSets": [dc("eu")]});
    let options = Config::from_json(json!({"primary": "http://a", "readPreference": preference.clone()}));
    assert_eq!(invalid_argument(options), "readPreference.tagSets[0]");
    assert_eq!(invalid_argument(parse_read_preference(&preference, "readPreference")), "readPreference.tagSets[0]");
    // Absent or only `{}`, as MongoDB allows: the primary serves.
    let mut s = warmed(&["us", "eu"], json!({"readPreference": {"mode": "primary", "tagSets": [{}]}}));
    assert_eq!(reads_from(&mut s, &CallOptions::default()), nodes(&[0]));
    assert_eq!(reads_from(&mut s, &per_call(json!({"mode": "primary", "tagSets": []}))), nodes(&[0]));
}

#[test]
fn a_per_call_read_preference_overrides_the_clients_tag_sets_and_staleness_bound() {
    let options = json!({"consistency": "eventual", "maxStalenessMs": 1000, "primaryWaitMs": 1000,
        "readPreference": {"mode": "replica", "tagSets": [dc("eu")]}});
    let mut s = warmed(&["us", "eu", "us"], options);
    assert_eq!(reads_from(&mut s, &CallOptions::default()), nodes(&[1]), "the client's tag sets");
    assert_eq!(reads_from(&mut s, &per_call(json!({"mode": "replica", "tagSets": [dc("us")]}))), nodes(&[2]));
    assert_eq!(reads_from(&mut s, &per_call(json!("replica"))), nodes(&[1, 2]), "the string form has no tag sets");
    assert_eq!(reads_from(&mut s, &per_call(json!("primary"))), nodes(&[0]));
    s.nodes[1].replicating = false;
    s.nodes[1].lag_ms = 5000;
    s.op(create("b")).unwrap();
    s.run_for(1500);
    let (r, _) = s.call(get("a"), CallOptions::default());
    assert_eq!(r.unwrap_err().code(), "unavailable", "the only eu replica lags past the client's 1000 ms");
    let lenient = per_call(json!({"mode": "replica", "tagSets": [dc("eu")], "maxStalenessMs": 10_000}));
    assert_eq!(reads_from(&mut s, &lenient), nodes(&[1]), "the call's own staleness bound");
}

#[test]
fn the_latency_window_runs_among_the_endpoints_of_the_winning_tag_set() {
    let options = json!({"readPreference": {"mode": "nearest", "tagSets": [dc("eu")]}});
    let tags = [dc("us"), dc("eu"), dc("eu"), dc("eu")];
    let mut s = Sim::with_tags(&tags, options);
    for (node, latency_ms) in [2, 30, 40, 80].into_iter().enumerate() {
        s.nodes[node].latency_ms = latency_ms;
    }
    s.run_for(5000);
    s.op(create("a")).unwrap();
    let mut counts = [0; 4];
    for _ in 0..200 {
        counts[s.op(get("a")).unwrap().endpoint.0] += 1;
    }
    assert_eq!((counts[0], counts[3]), (0, 0), "not the 2 ms us node, not 80 ms (out of the eu window): {counts:?}");
    assert!(counts[1] > 0 && counts[2] > 0, "both eu nodes within 15 ms of the fastest eu one serve: {counts:?}");
}

#[test]
fn reads_before_any_health_check_follow_the_tag_sets() {
    let options = json!({"readPreference": {"mode": "replica", "tagSets": [dc("us")]}});
    let mut s = Sim::with_tags(&[dc("us"), dc("eu"), dc("us")], options);
    for _ in 0..20 {
        // Started together at time 0, so the power of two choices spreads them over every candidate it has.
        let mut op = s.router_mut().start(get("a"), CallOptions::default(), 0);
        match s.router_mut().step(&mut op, 0) {
            Step::Send(request) => assert_eq!(request.endpoint.0, 2, "the configured us replica"),
            other => panic!("expected the read to go out at once, got {other:?}"),
        }
    }
}

#[test]
fn endpoint_tags_show_in_the_topology_the_app_sees() {
    let s = warmed(&["us", "eu"], json!({}));
    let view = serde_json::to_value(s.router().topology().describe()).unwrap();
    assert_eq!((&view[0]["tags"], &view[1]["tags"]), (&dc("us"), &dc("eu")));
    let shorthand = Sim::new(1, json!({}));
    let view = serde_json::to_value(shorthand.router().topology().describe()).unwrap();
    assert_eq!(view[1]["tags"], json!({}), "the primary/replicas shorthand has no tags");
}
