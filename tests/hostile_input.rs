//! Property tests: whatever endpoints answer and in whatever order things happen, the core never panics (a
//! panic in wasm kills the module) and keeps its safety rules: at most one writable primary, on the highest
//! term seen, and no write ever sent to an endpoint reporting a lower term.
#![cfg(not(target_arch = "wasm32"))]

use proptest::prelude::*;
use replikit::core::protocol::{self, EndpointId, Method, Outcome, Response};
use replikit::core::{Action, CallOptions, CollectionName, Config, Role, Router, Step};
use serde_json::json;

/// JSON-ish text: real health reports and documents with mutations, plus arbitrary strings.
fn body() -> impl Strategy<Value = String> {
    let role = prop_oneof![
        Just("\"primary\"".to_string()),
        Just("\"replica\"".to_string()),
        any::<String>().prop_map(|s| format!("{s:?}"))
    ];
    let num = prop_oneof![
        any::<u64>().prop_map(|n| n.to_string()),
        Just("-1".into()),
        Just("1.5".into()),
        Just("null".into()),
        Just("1e400".into())
    ];
    prop_oneof![
        any::<String>(),
        (role, num.clone(), num.clone(), num.clone()).prop_map(|(r, t, p, l)| format!(
            r#"{{"nodeId":"n","role":{r},"term":{t},"position":{p},"lagMs":{l},"readOnly":false}}"#
        )),
        (num.clone(), any::<String>()).prop_map(|(v, d)| format!(
            r#"{{"id":{d:?},"version":{v},"data":{{"__proto__":{{"x":1}}}},"updatedAt":"t"}}"#
        )),
        Just(r#"{"items":[{"id":"a"}],"next":7}"#.to_string()),
        Just(r#"{"error":{"code":"conflict"},"current":[1,2]}"#.to_string()),
        Just("[".repeat(10_000)),
    ]
}

/// CouchDB-shaped text: documents with revisions, histories and conflicts, mutated; plus arbitrary strings.
fn couch_body() -> impl Strategy<Value = String> {
    let rev = prop_oneof![
        Just("\"2-ab\"".to_string()),
        Just("\"0-x\"".into()),
        Just("7".into()),
        Just("null".into()),
        any::<String>().prop_map(|s| format!("{s:?}"))
    ];
    prop_oneof![
        any::<String>(),
        (rev.clone(), rev.clone(), any::<String>()).prop_map(|(r, c, id)| format!(
            r#"{{"_id":{id:?},"_rev":{r},"_revisions":{{"start":99999999999999999999,"ids":[{c},1]}},"_conflicts":[{c}],"collection":"notes","data":{{}},"updatedAt":"t"}}"#
        )),
        rev.clone().prop_map(|r| format!(r#"{{"_id":"notes:a","_rev":{r},"collection":"notes","data":[],"updatedAt":1}}"#)),
        rev.clone().prop_map(|r| format!(r#"[{{"ok":{{"_id":"notes:a","_rev":{r},"collection":"notes","data":{{}},"updatedAt":"t"}}}},{{"missing":{r}}},{{"error":"x"}}]"#)),
        rev.prop_map(|r| format!(r#"{{"rows":[{{"id":"notes:a","doc":{{"_rev":{r}}}}},{{"id":7}},{{"doc":null}}],"db_name":{r},"update_seq":{r}}}"#)),
        Just(r#"{"error":"not_found","reason":"deleted"}"#.to_string()),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn protocol_parsers_never_panic(b in body()) {
        let _ = protocol::parse_health("http://x", &b);
        let _ = protocol::parse_doc("http://x", &b);
        let _ = protocol::parse_page("http://x", &b);
        let _ = protocol::parse_error(&b);
    }

    /// Every CouchDB answer to every action, first request and follow-up, is a verdict, never a panic.
    #[test]
    fn couchdb_answers_never_panic(b in couch_body(), status in prop_oneof![Just(200u16), Just(201), Just(304), Just(404), Just(409), Just(500)], retried in any::<bool>()) {
        use protocol::{couchdb::CouchDb, Adapter, Attempt, FollowUp, Call};
        use replikit::core::document::{Doc, Version};
        use replikit::core::{Durability, Reply};
        let a = CouchDb::new("app");
        let c = CollectionName::parse("notes").unwrap();
        let data = json!({"k": 1}).as_object().unwrap().clone();
        let doc = Doc { id: "a".into(), version: Version::Rev("2-ab".into()), data: data.clone(), updated_at: "t".into() };
        let actions = [
            Action::Get { collection: c.clone(), id: "a".into(), if_none_match: Some(Version::Rev("2-ab".into())) },
            Action::List { collection: c.clone(), limit: Some(1), after: Some("a".into()) },
            Action::Create { collection: c.clone(), id: "a".into(), data: data.clone() },
            Action::Replace { collection: c.clone(), id: "a".into(), data: data.clone(), if_version: Some(Version::Rev("1-x".into())) },
            Action::Update { collection: c.clone(), id: "a".into(), patch: data.clone(), if_version: None },
            Action::Delete { collection: c.clone(), id: "a".into(), if_version: None },
            Action::Revisions { collection: c.clone(), id: "a".into(), revs: vec![Version::Rev("2-cd".into())] },
            Action::Resolve { collection: c.clone(), id: "a".into(), keep: doc, merged: Some(data), losers: vec![Version::Rev("2-cd".into())], updated_at: "t".into() },
        ];
        let attempt = Attempt { key: Some("k"), durability: Durability::Local, min_position: None, min_term: None, written_at_ms: 1, retried };
        let follow_up = FollowUp { call: Call::get("/".into()), reply: Reply::Deleted };
        for action in &actions {
            let _ = a.request(action, &attempt);
            let response = Response { status, body: b.clone(), ..Default::default() };
            let _ = a.interpret("http://x", action, &attempt, None, response.clone());
            let _ = a.interpret("http://x", action, &attempt, Some(&follow_up), response);
        }
        let _ = a.parse_health("http://x", &b);
    }
}

/// Something that happens to the router.
#[derive(Debug, Clone)]
enum Input {
    Advance(u64),
    Health { endpoint: usize, role: bool, term: u64, ok: bool },
    Write { answer: u16 },
    Read { answer: u16 },
    Pause(bool),
}

fn input() -> impl Strategy<Value = Input> {
    prop_oneof![
        (1u64..3000).prop_map(Input::Advance),
        (0usize..3, any::<bool>(), 0u64..6, any::<bool>()).prop_map(|(endpoint, role, term, ok)| Input::Health {
            endpoint,
            role,
            term,
            ok
        }),
        prop_oneof![Just(200u16), Just(201), Just(409), Just(412), Just(421), Just(500), Just(503), Just(0)]
            .prop_map(|answer| Input::Write { answer }),
        prop_oneof![Just(200u16), Just(304), Just(404), Just(503), Just(0)].prop_map(|answer| Input::Read { answer }),
        any::<bool>().prop_map(Input::Pause),
    ]
}

fn answer(status: u16, body: &str) -> Outcome {
    match status {
        0 => Outcome::NetworkError("reset".into()),
        s => Outcome::Response(Response {
            status: s,
            node: None,
            position: Some(5),
            body: body.into(),
            ..Default::default()
        }),
    }
}

fn config() -> Config {
    Config::from_json(json!({"primary": "http://a", "replicas": ["http://b", "http://c"], "primaryWaitMs": 1000}))
        .unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 500, ..ProptestConfig::default() })]

    #[test]
    fn the_router_keeps_its_rules_under_any_order_of_events(inputs in proptest::collection::vec(input(), 1..80)) {
        let mut router = Router::new(config(), 7);
        let mut now = 0u64;
        // The term and role each endpoint reported last, as the test saw them.
        let mut reported: [Option<(Role, u64)>; 3] = [None; 3];
        // The highest term any endpoint claimed while reporting primary.
        let mut max_primary_term = 0u64;
        let coll = CollectionName::parse("c").unwrap();
        for i in inputs {
            match i {
                Input::Advance(ms) => now += ms,
                Input::Pause(p) => router.set_paused(p, now),
                Input::Health { endpoint, role, term, ok } => {
                    let role = if role { Role::Primary } else { Role::Replica };
                    let outcome = if ok {
                        reported[endpoint] = Some((role, term));
                        if role == Role::Primary {
                            max_primary_term = max_primary_term.max(term);
                        }
                        let r = if role == Role::Primary { "primary" } else { "replica" };
                        answer(200, &format!(r#"{{"nodeId":"n{endpoint}","role":"{r}","term":{term},"position":1,"lagMs":0,"readOnly":false}}"#))
                    } else {
                        Outcome::Timeout
                    };
                    router.handle_health(EndpointId(endpoint), now, 1.0, outcome);
                }
                Input::Write { answer: status } | Input::Read { answer: status } => {
                    let write = matches!(i, Input::Write { .. });
                    let action = if write {
                        Action::Create { collection: coll.clone(), id: "x".into(), data: Default::default() }
                    } else {
                        Action::Get { collection: coll.clone(), id: "x".into(), if_none_match: Some(replikit::core::document::Version::Seq(1)) }
                    };
                    let mut op = router.start(action, CallOptions::default(), now);
                    for _ in 0..5 {
                        match router.step(&mut op, now) {
                            Step::Send(req) => {
                                if write {
                                    let max = max_primary_term;
                                    let (role, term) = reported[req.endpoint.0].expect("writes only go to a reporting endpoint");
                                    prop_assert_eq!(role, Role::Primary);
                                    prop_assert_eq!(term, max, "no write to a lower term");
                                    prop_assert_eq!(req.method, Method::Post);
                                }
                                let body = r#"{"id":"x","version":1,"data":{},"updatedAt":"t"}"#;
                                router.handle_outcome(&mut op, now, answer(status, body));
                            }
                            Step::Wait { until_ms } => {
                                prop_assert!(until_ms >= now);
                                now = until_ms;
                            }
                            Step::Done(_) => break,
                        }
                    }
                }
            }
            // At most one primary, and only one that reported primary on the highest term.
            let views = router.topology().describe();
            let primaries: Vec<_> = views.iter().enumerate().filter(|(_, v)| v.primary).collect();
            prop_assert!(primaries.len() <= 1);
            if let Some((i, _)) = primaries.first() {
                prop_assert_eq!(reported[*i], Some((Role::Primary, max_primary_term)));
            }
            while router.poll_event().is_some() {}
            let _ = router.poll_health_checks(now);
        }
    }
}
