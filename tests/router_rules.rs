//! The router's rules, one deterministic scenario each, against the simulated cluster in `sim/`.

mod sim;
mod support;

use replikit::core::document::Version;
use replikit::core::protocol::Method;
use replikit::core::topology::EndpointState;
use replikit::core::types::ReadMode;
use replikit::core::{Action, CallOptions, CollectionName, Error, Event, Reply};
use serde_json::{json, Map, Value};
use sim::{url, Sim};

fn users() -> CollectionName {
    CollectionName::parse("users").unwrap()
}

fn data(v: Value) -> Map<String, Value> {
    v.as_object().unwrap().clone()
}

fn create(id: &str) -> Action {
    Action::Create { collection: users(), id: id.into(), data: data(json!({"name": id})) }
}

fn get(id: &str) -> Action {
    Action::Get { collection: users(), id: id.into(), if_none_match: None }
}

fn replace(id: &str, v: Value, if_version: Option<u64>) -> Action {
    Action::Replace { collection: users(), id: id.into(), data: data(v), if_version: if_version.map(Version::Seq) }
}

fn version_of(r: &Result<replikit::core::Completed, Error>) -> u64 {
    match r {
        Ok(c) => match &c.reply {
            Reply::Doc(d) => match d.version {
                Version::Seq(v) => v,
                ref other => panic!("expected a counter version, got {other:?}"),
            },
            other => panic!("expected a document, got {other:?}"),
        },
        Err(e) => panic!("expected success, got {e:?}"),
    }
}

/// A cluster whose first round of health checks has been answered.
fn warmed(replicas: usize, options: Value) -> Sim {
    let mut s = Sim::new(replicas, options);
    s.run_for(50);
    s
}

#[test]
fn writes_go_to_the_primary_and_reads_to_replicas_by_default() {
    let mut s = warmed(2, json!({}));
    for i in 0..10 {
        s.op(create(&format!("u{i}"))).unwrap();
        let r = s.op(get(&format!("u{i}"))).unwrap();
        assert_ne!(r.endpoint.0, 0, "replicaPreferred reads avoid the primary");
    }
    assert_eq!(s.applied_on(0), 10);
    assert_eq!(s.requests_to(0, Method::Get), 0);
    assert!(s.requests_to(1, Method::Get) > 0 && s.requests_to(2, Method::Get) > 0, "both replicas serve");
}

#[test]
fn every_read_preference_picks_from_its_own_set() {
    let mut s = warmed(2, json!({}));
    s.op(create("a")).unwrap();
    let on = |s: &mut Sim, mode: ReadMode| {
        s.call(get("a"), CallOptions { read_preference: Some(mode.into()), ..Default::default() }).0.unwrap().endpoint.0
    };
    for _ in 0..5 {
        assert_eq!(on(&mut s, ReadMode::Primary), 0);
        assert_eq!(on(&mut s, ReadMode::PrimaryPreferred), 0);
        assert_ne!(on(&mut s, ReadMode::Replica), 0);
    }
    s.kill(1);
    s.kill(2);
    s.run_for(3000);
    assert_eq!(on(&mut s, ReadMode::ReplicaPreferred), 0, "no replica left: the primary serves");
    let (r, _) =
        s.call(get("a"), CallOptions { read_preference: Some(ReadMode::Replica.into()), ..Default::default() });
    assert_eq!(r.unwrap_err().code(), "unavailable", "strict replica reads fail when no replica is up");
}

#[test]
fn primary_killed_then_replica_promoted_writes_move_within_one_second() {
    let mut s = warmed(2, json!({}));
    s.op(create("before")).unwrap();
    s.kill(0);
    s.run_for(300); // the operator notices and promotes 300 ms later
    s.promote(1);
    let promoted_at = s.now;
    let (r, _) = s.call(create("after"), CallOptions::default());
    r.unwrap();
    assert!(s.now - promoted_at < 1000, "write landed {} ms after the promotion", s.now - promoted_at);
    assert_eq!(s.applied_on(1), 1, "the new primary applied it once");
    assert!(s
        .events()
        .iter()
        .any(|(_, e)| matches!(e, Event::Primary { url: Some(u), term: Some(2) } if *u == url(1))));
}

#[test]
fn a_write_issued_during_the_outage_waits_for_the_new_primary_and_applies_once() {
    let mut s = warmed(2, json!({"primaryWaitMs": 5000}));
    s.kill(0);
    // The write starts at once; the promotion happens 800 ms later, mid-wait.
    let now = s.now;
    let mut op = s.router_mut().start(create("mid"), CallOptions::default(), now);
    let mut promoted = false;
    let result = loop {
        if !promoted && s.now >= 800 {
            s.promote(1);
            promoted = true;
        }
        let now = s.now;
        match s.router_mut().step(&mut op, now) {
            replikit::core::Step::Done(r) => break r,
            replikit::core::Step::Wait { until_ms } => {
                let until = until_ms.min(800.max(s.now + 1));
                s.advance_to(until, Some(0));
            }
            replikit::core::Step::Send(req) => {
                let outcome = s.send(0, &req);
                let now = s.now;
                s.router_mut().handle_outcome(&mut op, now, outcome);
            }
        }
    };
    result.unwrap();
    assert_eq!(s.applied_on(1), 1);
    assert_eq!(s.applied_on(0), 0);
    let keys: Vec<_> = s.log.iter().filter(|r| r.method == Method::Post).map(|r| r.key.clone()).collect();
    assert!(keys.windows(2).all(|w| w[0] == w[1]), "one idempotency key across attempts: {keys:?}");
}

#[test]
fn a_write_whose_outcome_is_unknown_is_retried_with_its_key_without_suspecting_the_primary() {
    let mut s = warmed(1, json!({}));
    // The primary's synchronous standby stalls: the write commits locally, and it and the first replay are 503
    // outcome_unknown; then the standby confirms it.
    s.nodes[0].outcome_unknown = 2;
    let r = s.op(replace("u", json!({"v": 1}), None));
    assert!(r.is_ok(), "{r:?}");
    assert_eq!(s.applied_on(0), 1, "applied once");
    let keys: Vec<_> = s.log.iter().filter(|r| r.method == Method::Put).map(|r| r.key.clone()).collect();
    assert_eq!(keys.len(), 3, "sent until the outcome is known");
    assert!(keys[0].is_some() && keys.windows(2).all(|w| w[0] == w[1]), "one idempotency key: {keys:?}");
    let suspected = s.events().iter().any(|(_, e)| match e {
        Event::Topology(views) => views.iter().any(|v| v.url == url(0) && v.state != EndpointState::Up),
        Event::EndpointDown(v) => v.url == url(0),
        _ => false,
    });
    assert!(!suspected, "a slow quorum is not a failing primary: {:?}", s.events());
    assert!(s.events().iter().any(|(_, e)| matches!(e, Event::Retry { attempt: 1, .. })));
}

#[test]
fn a_write_whose_answer_was_lost_is_retried_with_its_key_and_applied_once() {
    let mut s = warmed(2, json!({}));
    s.nodes[0].drop_next_answer = true;
    let r = s.op(create("once"));
    assert_eq!(version_of(&r), 1, "the retry got the stored first answer");
    assert_eq!(s.applied_on(0), 1, "applied once");
    assert_eq!(s.requests_to(0, Method::Post), 2, "sent twice");
    assert!(s.events().iter().any(|(_, e)| matches!(e, Event::Retry { attempt: 1, .. })));
}

#[test]
fn an_old_primary_back_on_a_lower_term_never_gets_a_write() {
    let mut s = warmed(2, json!({}));
    s.kill(0);
    s.promote(1);
    s.run_for(2500);
    s.start(0); // split brain: n0 claims primary on term 1
    s.run_for(2500);
    for i in 0..20 {
        s.op(create(&format!("w{i}"))).unwrap();
    }
    assert_eq!(s.applied_on(0), 0, "the stale primary got no write");
    assert_eq!(s.requests_to(0, Method::Post), 0);
    assert_eq!(s.applied_on(1), 20);
    assert_eq!(s.router().topology().primary().map(|p| p.0), Some(1));
}

#[test]
fn a_replica_claiming_a_huge_term_does_not_fence_the_real_primary() {
    let mut s = warmed(2, json!({}));
    s.nodes[2].term = u64::MAX / 2; // a broken or hostile replica
    s.run_for(2500);
    s.op(create("x")).unwrap();
    assert_eq!(s.applied_on(0), 1, "writes still go to n0");
}

#[test]
fn a_malformed_answer_moves_the_read_to_another_endpoint() {
    let mut s = warmed(2, json!({"readPreference": "replica"}));
    s.op(create("a")).unwrap();
    s.nodes[1].docs.insert(("users".into(), "a".into()), json!({"id": 1, "version": "x"}));
    s.nodes[2]
        .docs
        .insert(("users".into(), "a".into()), json!({"id": "a", "version": 1, "data": {"ok": true}, "updatedAt": "t"}));
    for _ in 0..10 {
        let r = s.op(get("a")).unwrap();
        assert_eq!(r.endpoint.0, 2);
    }
}

#[test]
fn two_primaries_on_the_same_term_stop_writes_with_no_primary() {
    let mut s = warmed(2, json!({"primaryWaitMs": 2000}));
    s.nodes[1].role = replikit::core::Role::Primary; // same term 1: no way to tell which is real
    s.run_for(1500);
    let (r, took) = s.call(create("x"), CallOptions::default());
    assert_eq!(r.unwrap_err().code(), "no_primary");
    assert!((2000..2600).contains(&took), "failed after primaryWaitMs, took {took}");
    assert_eq!(s.requests_to(0, Method::Post) + s.requests_to(1, Method::Post), 0);
}

#[test]
fn with_no_primary_a_write_rechecks_at_most_every_500_ms_then_fails() {
    let mut s = warmed(2, json!({"primaryWaitMs": 3000, "health": {"intervalMs": 10000}}));
    s.kill(0);
    let checks_before = s.health_checks().len();
    let (r, took) = s.call(create("x"), CallOptions::default());
    let err = r.unwrap_err();
    assert_eq!(err.code(), "no_primary");
    assert!(err.retryable());
    assert!((3000..3600).contains(&took), "took {took}");
    let per_endpoint = (s.health_checks().len() - checks_before) as f64 / 3.0;
    assert!(per_endpoint <= 3000.0 / 500.0 + 2.0, "{per_endpoint} checks per endpoint in 3 s");
    assert!(per_endpoint >= 3.0, "it kept looking: {per_endpoint}");
}

#[test]
fn a_failed_read_moves_to_another_endpoint_within_the_same_call() {
    let mut s = warmed(2, json!({}));
    s.op(create("a")).unwrap();
    s.kill(1);
    for _ in 0..10 {
        let r = s.op(get("a")).unwrap();
        assert_eq!(r.endpoint.0, 2);
    }
    assert!(s.requests_to(1, Method::Get) <= 1, "the dead replica was tried at most once");
}

#[test]
fn a_hung_replica_is_timed_out_and_the_read_moves_on() {
    let mut s = warmed(2, json!({"requestTimeoutMs": 1000, "health": {"timeoutMs": 500}}));
    s.op(create("a")).unwrap();
    s.hang(2);
    let mut worst = 0;
    for _ in 0..10 {
        let (r, took) = s.call(get("a"), CallOptions::default());
        assert_eq!(r.unwrap().endpoint.0, 1);
        worst = worst.max(took);
    }
    assert!(worst <= 1100, "one timeout at most per read: {worst} ms");
    assert!(s.requests_to(2, Method::Get) <= 1);
}

#[test]
fn reads_never_return_data_older_than_the_sessions_own_write() {
    let mut s = warmed(2, json!({}));
    s.op(create("a")).unwrap();
    s.nodes[1].replicating = false;
    s.nodes[2].replicating = false;
    s.op(replace("a", json!({"name": "new"}), None)).unwrap();
    for _ in 0..5 {
        let r = s.op(get("a"));
        assert_eq!(version_of(&r), 2, "a lagging replica never answers the read");
        assert_eq!(r.unwrap().endpoint.0, 0, "every replica lags: the primary serves");
    }
    s.nodes[2].replicating = true;
    s.op(replace("a", json!({"name": "newer"}), None)).unwrap();
    let r = s.op(get("a"));
    assert_eq!(version_of(&r), 3);
}

/// A primary takes `a` v1 (replicated) then v2 that no replica receives; it dies, node 1 is promoted, and the new
/// timeline moves past v2's position with other clients' writes, so a bare position no longer tells the histories
/// apart.
fn failover_losing_the_sessions_last_write() -> Sim {
    let mut s = warmed(2, json!({}));
    s.op(create("a")).unwrap();
    s.nodes[1].replicating = false;
    s.nodes[2].replicating = false;
    s.op(replace("a", json!({"name": "lost"}), None)).unwrap();
    assert_eq!(s.router().session_position(), 102);
    s.kill(0);
    s.promote(1);
    for i in [1, 2] {
        s.nodes[i].replicating = true;
        s.nodes[i].position += 10;
    }
    s.run_for(2_000);
    s
}

/// The `SessionLost` events so far (events queued by the last call are collected first).
fn session_lost_events(s: &mut Sim) -> Vec<(u64, u64)> {
    s.run_for(1);
    let lost = s.events().iter().filter_map(|(_, e)| match e {
        Event::SessionLost { term, position } => Some((*term, *position)),
        _ => None,
    });
    lost.collect()
}

#[test]
fn a_read_after_a_failover_that_lost_the_sessions_write_fails_typed_once_then_the_session_starts_afresh() {
    let mut s = failover_losing_the_sessions_last_write();
    let r = s.op(get("a"));
    assert!(matches!(r, Err(Error::SessionLost { term: 1, position: 102 })), "never v1 silently: {r:?}");
    assert_eq!(session_lost_events(&mut s), vec![(1, 102)]);
    let r = s.op(get("a"));
    assert_eq!(version_of(&r), 1, "told once; then reads are served from the new history");
    assert_eq!(session_lost_events(&mut s).len(), 1);
}

#[test]
fn a_write_after_a_failover_that_lost_the_sessions_write_is_applied_and_the_loss_is_told() {
    let mut s = failover_losing_the_sessions_last_write();
    let r = s.op(replace("a", json!({"name": "again"}), None));
    assert_eq!(version_of(&r), 2);
    assert_eq!(session_lost_events(&mut s), vec![(1, 102)]);
    let r = s.op(get("a"));
    assert_eq!(version_of(&r), 2, "the session now follows the new timeline: its new write is read back");
}

#[test]
fn a_failover_that_kept_the_sessions_writes_changes_nothing_for_it() {
    let mut s = warmed(2, json!({}));
    s.op(create("a")).unwrap();
    s.op(replace("a", json!({"name": "kept"}), None)).unwrap();
    s.kill(0);
    s.promote(1);
    s.run_for(2_000);
    let r = s.op(get("a"));
    assert_eq!(version_of(&r), 2);
    s.op(replace("a", json!({"name": "next"}), None)).unwrap();
    assert_eq!(version_of(&s.op(get("a"))), 3);
    assert!(session_lost_events(&mut s).is_empty());
}

#[test]
fn eventual_consistency_sends_no_minimum_position() {
    let mut s = warmed(1, json!({"consistency": "eventual"}));
    s.op(create("a")).unwrap();
    s.nodes[1].replicating = false;
    s.op(replace("a", json!({"v": 2}), None)).unwrap();
    let r = s.op(get("a"));
    assert_eq!(version_of(&r), 1, "a stale read is allowed under eventual consistency");
}

#[test]
fn reads_stay_within_the_latency_window_and_spread_over_it() {
    let mut s = Sim::new(3, json!({"readPreference": "replica"}));
    s.nodes[1].latency_ms = 2;
    s.nodes[2].latency_ms = 8;
    s.nodes[3].latency_ms = 40;
    s.run_for(5000);
    s.op(create("a")).unwrap();
    let mut counts = [0; 4];
    for _ in 0..200 {
        counts[s.op(get("a")).unwrap().endpoint.0] += 1;
    }
    assert_eq!(counts[3], 0, "40 ms is outside the 15 ms window: {counts:?}");
    assert!(counts[1] > 0 && counts[2] > 0, "both in-window replicas serve: {counts:?}");
}

#[test]
fn a_replica_lagging_past_max_staleness_is_not_read_from() {
    let mut s = warmed(2, json!({"maxStalenessMs": 1000, "consistency": "eventual"}));
    s.op(create("a")).unwrap();
    s.nodes[2].replicating = false;
    s.nodes[2].lag_ms = 5000;
    s.op(create("b")).unwrap();
    s.run_for(1500);
    for _ in 0..20 {
        assert_eq!(s.op(get("a")).unwrap().endpoint.0, 1);
    }
}

#[test]
fn a_conflict_is_final_and_carries_the_current_document() {
    let mut s = warmed(1, json!({}));
    s.op(create("a")).unwrap();
    s.op(replace("a", json!({"v": 2}), Some(1))).unwrap();
    let err = s.op(replace("a", json!({"v": 3}), Some(1))).unwrap_err();
    match err {
        Error::Conflict { current: Some(doc) } => assert_eq!(doc["version"], 2),
        other => panic!("expected a conflict, got {other:?}"),
    }
    assert_eq!(s.requests_to(0, Method::Put), 2, "a 412 is not retried");
    assert_eq!(s.op(create("a")).unwrap_err().code(), "already_exists");
    let missing = s.op(get("nope")).unwrap();
    assert_eq!(missing.reply, Reply::Missing);
}

#[test]
fn a_dead_cluster_is_not_hammered_the_retry_budget_runs_out() {
    let mut s = warmed(2, json!({"primaryWaitMs": 0, "retry": {"maxAttempts": 5, "baseDelayMs": 0, "maxDelayMs": 0}}));
    for i in 0..3 {
        s.kill(i);
    }
    let mut sent = 0;
    for _ in 0..100 {
        let before = s.log.len();
        let _ = s.op(get("a"));
        sent += s.log.len() - before;
    }
    assert!(sent < 100 * 3, "retries are budgeted: {sent} requests for 100 reads");
}

#[test]
fn a_down_endpoint_is_reported_and_comes_back_up() {
    let mut s = warmed(2, json!({"health": {"intervalMs": 200, "failureThreshold": 2}}));
    s.kill(2);
    s.run_for(1000);
    assert_eq!(s.router().topology().describe()[2].state, replikit::core::EndpointState::Down);
    assert!(s.events().iter().any(|(_, e)| matches!(e, Event::EndpointDown(v) if v.url == url(2))));
    s.start(2);
    s.run_for(500);
    assert!(s.events().iter().any(|(_, e)| matches!(e, Event::EndpointUp(v) if v.url == url(2))));
}

#[test]
fn paused_checks_stop_and_resume_at_once() {
    let mut s = warmed(1, json!({"health": {"intervalMs": 100}}));
    let now = s.now;
    s.router_mut().set_paused(true, now);
    let before = s.health_checks().len();
    s.run_for(5000);
    assert_eq!(s.health_checks().len(), before, "no periodic checks while hidden");
    let now = s.now;
    s.router_mut().set_paused(false, now);
    s.run_for(10);
    assert_eq!(s.health_checks().len(), before + 2, "both endpoints re-checked on resume");
}
