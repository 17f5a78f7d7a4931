//! Hostile numbers: timestamps, revision generations and versions that a server, a cache or a caller may send.
//! Whatever the text, the parsers give a value, None or a typed error, never a panic (debug builds check every
//! overflow, and a panic in wasm kills the module) and never a wrapped value.
#![cfg(not(target_arch = "wasm32"))]

use proptest::prelude::*;
use replikit::core::document::{Doc, Version};
use replikit::core::protocol::couchdb::CouchDb;
use replikit::core::protocol::{Adapter, Attempt, Response, Verdict};
use replikit::core::time::{format_rfc3339_ms, parse_rfc3339_ms};
use replikit::core::{Action, CollectionName, Durability, Reply};
use serde_json::{json, Map, Value};

// Examples: each input here misbehaved before it was fixed.

#[test]
fn offsets_with_non_digits_are_not_times() {
    // `+ 1:00`: ' ' - '0' underflowed; `+J0:00`: ('J' - '0') * 10 overflowed a u8.
    for bad in ["2026-11-22T01:40:48+ 1:00", "2026-11-22T01:40:48+J0:00", "2026-11-22T01:40:48-00:Z0"] {
        assert_eq!(parse_rfc3339_ms(bad), None, "{bad}");
    }
}

#[test]
fn offsets_and_fields_out_of_range_are_not_times() {
    for bad in [
        "2026-11-22T01:40:48+24:00", // an offset of a day or more
        "2026-11-22T01:40:48+99:99",
        "2026-11-22T01:40:48+01:60",
        "2026-02-31T00:00:00Z", // was read as March 3
        "2025-02-29T00:00:00Z",
        "+026-11-22T01:40:48Z", // a sign where a digit belongs was read as a number
        "2026-+1-22T01:40:48Z",
        "2026-11-22T+1:40:48Z",
    ] {
        assert_eq!(parse_rfc3339_ms(bad), None, "{bad}");
    }
    assert_eq!(parse_rfc3339_ms("2024-02-29T00:00:00Z"), Some(1_709_164_800_000));
    assert_eq!(parse_rfc3339_ms("2026-11-22T01:40:48+23:59"), Some(1_795_225_308_000));
}

#[test]
fn generation_zero_and_generations_past_u64_are_not_revisions() {
    for bad in
        ["0-a", "00-a", "0000000000000000000-a", "18446744073709551615-a", "99999999999999999999-a", "+5-a", "01-a"]
    {
        assert_eq!(Version::parse_rev(bad), None, "{bad}");
        assert_eq!(Version::Rev(bad.into()).rev_parts(), None, "{bad}");
        assert_eq!(Version::Rev(bad.into()).child_generation(), None, "{bad}");
    }
    let last = Version::Rev("9999999999999999999-a".into());
    assert_eq!(last.rev_parts(), Some((9_999_999_999_999_999_999, "a")));
    assert_eq!(last.child_generation(), None, "its child, of 20 digits, would be no revision");
    assert_eq!(Version::from_json(&json!(u64::MAX)), Some(Version::Seq(u64::MAX)));
}

fn attempt(retried: bool) -> Attempt<'static> {
    Attempt {
        key: Some("k"),
        durability: Durability::Local,
        min_position: None,
        min_term: None,
        written_at_ms: 1,
        retried,
    }
}

fn notes() -> CollectionName {
    CollectionName::parse("notes").unwrap()
}

fn update() -> Action {
    Action::Update { collection: notes(), id: "a".into(), patch: Map::new(), if_version: None }
}

/// An `open_revs=all&revs=true` answer: one live leaf `rev` with the history `ids`.
fn leaves(rev: &str, ids: &[String]) -> Response {
    let leaf = json!({"ok": {"_id": "notes:a", "_rev": rev, "_revisions": {"start": 1, "ids": ids},
        "collection": "notes", "data": {}, "updatedAt": "t"}});
    Response { status: 200, body: json!([leaf]).to_string(), ..Default::default() }
}

#[test]
fn a_history_longer_than_its_generation_is_a_protocol_error() {
    // Generation 1 with three ancestors: naming the parent of the second one subtracted below zero.
    let ids: Vec<String> = ["a", "b", "c"].map(String::from).to_vec();
    let v = CouchDb::new("app").interpret("u", &update(), &attempt(true), None, leaves("1-a", &ids));
    assert!(matches!(v, Verdict::Failed(replikit::core::Error::Protocol { .. })), "{v:?}");
}

#[test]
fn a_write_over_the_last_generation_is_refused_not_wrapped() {
    let last = "9999999999999999999-a";
    let v = CouchDb::new("app").interpret("u", &update(), &attempt(false), None, leaves(last, &["a".into()]));
    assert!(matches!(v, Verdict::Failed(replikit::core::Error::Protocol { .. })), "{v:?}");
    let predicted = CouchDb::new("app").predicted_version(Some(&Version::Rev(last.into())), "k");
    assert!(predicted.to_string().starts_with("1-"), "{predicted}");
}

#[test]
fn revisions_past_the_largest_generation_never_get_a_wrapped_child_or_a_tombstone() {
    let a = CouchDb::new("app");
    let huge = Version::Rev(format!("{}-a", u64::MAX));
    // Not a revision: predicted as a first revision over it, not as generation 0.
    let predicted = a.predicted_version(Some(&huge), "k");
    assert!(predicted.to_string().starts_with("1-"), "{predicted}");
    let keep = Doc { id: "a".into(), version: huge.clone(), data: Map::new(), updated_at: "t".into() };
    let resolve = Action::Resolve {
        collection: notes(),
        id: "a".into(),
        keep,
        merged: Some(Map::new()),
        losers: vec![huge],
        updated_at: "t".into(),
    };
    let e = a.request(&resolve, &attempt(false)).unwrap_err();
    assert_eq!(e.code(), "invalid_argument", "{e}");
}

#[test]
fn a_page_of_zero_is_refused_not_a_panic() {
    let a = CouchDb::new("app");
    let list = Action::List { collection: notes(), limit: Some(0), after: None };
    assert_eq!(a.request(&list, &attempt(false)).unwrap_err().code(), "invalid_argument");
    let row = json!({"id": "notes:a", "doc": {"_id": "notes:a", "_rev": "1-a", "collection": "notes", "data": {}, "updatedAt": "t"}});
    let answer = Response { status: 200, body: json!({"rows": [row]}).to_string(), ..Default::default() };
    match a.interpret("u", &list, &attempt(false), None, answer) {
        Verdict::Done { reply: Reply::Page(p), .. } => assert!(p.items.is_empty()),
        other => panic!("{other:?}"),
    }
}

// Properties.

/// Generations as text: edge numbers, digit strings of any length, and anything else.
fn generation() -> impl Strategy<Value = String> {
    prop_oneof![
        prop_oneof![Just(0u64), Just(1), Just(u64::MAX), Just(u64::MAX - 1), Just(9_999_999_999_999_999_999)]
            .prop_map(|n| n.to_string()),
        any::<u64>().prop_map(|n| n.to_string()),
        "[0-9]{0,40}",
        "[+-]?[0-9]{1,3}",
        any::<String>(),
    ]
}

/// Timestamps shaped like RFC 3339: each field mostly a number in its range (so the parser gets past the date to the
/// offset) but sometimes any two digits or any two characters; and anything else.
fn timestamp() -> impl Strategy<Value = String> {
    let field = |max: u32| prop_oneof![8 => (0..=max).prop_map(|n| format!("{n:02}")), 1 => "[0-9]{2}", 1 => "[0-9a-zA-Z :+/-]{2}", 1 => ".{2}"];
    let year = prop_oneof![6 => (0u32..=9999).prop_map(|y| format!("{y:04}")), 1 => "[0-9+ -]{4}"];
    let offset = prop_oneof![
        1 => Just("Z".to_string()),
        6 => ("[+-]", field(23), "[:x]", field(59)).prop_map(|(sign, h, colon, m)| format!("{sign}{h}{colon}{m}")),
        1 => ".{0,7}",
    ];
    let date = (year, field(12), field(31));
    let time = (field(23), field(59), field(60), "(\\.[0-9]{0,12})?", offset);
    prop_oneof![
        6 => (date, time).prop_map(|((y, mo, d), (h, mi, s, frac, off))| format!("{y}-{mo}-{d}T{h}:{mi}:{s}{frac}{off}")),
        1 => any::<String>(),
        1 => "[0-9T:.Z+-]{0,30}",
    ]
}

proptest! {
    #[test]
    fn timestamps_parse_or_are_none(s in timestamp()) {
        if let Some(ms) = parse_rfc3339_ms(&s) {
            // Years 0000 to 9999, offsets within a day: the value stays within those years, give or take a day.
            prop_assert!((-62_167_305_600_000..=253_402_387_200_000).contains(&ms), "{s} -> {ms}");
            // A UTC time reads back as itself: no field rolled over into the next (February 31 is no March 3).
            if s.len() == 20 && s.ends_with('Z') && &s[17..19] != "60" {
                prop_assert_eq!(&format_rfc3339_ms(ms)[..19], &s[..19]);
            }
        }
    }

    #[test]
    fn the_last_days_of_a_month_exist_or_are_none(y in 0u32..=9999, m in 1u32..=12, d in 28u32..=31) {
        let s = format!("{y:04}-{m:02}-{d:02}T00:00:00Z");
        match parse_rfc3339_ms(&s) {
            Some(ms) => prop_assert_eq!(format_rfc3339_ms(ms), s.replace('Z', ".000Z")),
            None => prop_assert!(d > 28, "{}", s),
        }
    }

    #[test]
    fn formatting_never_panics_and_round_trips_over_four_digit_years(ms in any::<i64>(), near in -62_167_219_200_000i64..253_402_300_800_000) {
        let _ = format_rfc3339_ms(ms);
        prop_assert_eq!(parse_rfc3339_ms(&format_rfc3339_ms(near)), Some(near));
    }

    #[test]
    fn revisions_have_a_generation_from_1_and_a_child_that_fits(g in generation(), hash in "[a-f0-9]{1,8}|.{0,3}") {
        let text = format!("{g}-{hash}");
        let rev = Version::Rev(text.clone());
        prop_assert_eq!(Version::parse_rev(&text).is_some(), rev.rev_parts().is_some());
        prop_assert_eq!(Version::from_json(&json!(text)), Version::parse_rev(&text));
        if let Some((generation, _)) = rev.rev_parts() {
            prop_assert!(generation >= 1);
            prop_assert_eq!(generation.to_string(), g, "one spelling per generation");
            // A child generation, when there is one, is a generation: `N+1-hash` is a revision again.
            match rev.child_generation() {
                Some(child) => {
                    let child_rev = [child.to_string(), hash].join("-");
                    prop_assert!(Version::parse_rev(&child_rev).is_some(), "{}", child_rev);
                }
                None => prop_assert_eq!(generation, 9_999_999_999_999_999_999),
            }
        } else {
            prop_assert_eq!(rev.child_generation(), None);
        }
    }

    /// Whatever a node says a document's leaf is, a write gives a verdict, and a write it sends is a valid child.
    #[test]
    fn writes_over_hostile_leaves_send_valid_children(g in generation(), ids in proptest::collection::vec("[a-z]{1,3}", 0..6), retried in any::<bool>()) {
        let a = CouchDb::new("app");
        let v = a.interpret("u", &update(), &attempt(retried), None, leaves(&format!("{g}-{}", ids.first().map_or("x", String::as_str)), &ids));
        if let Verdict::FollowUp(f) = v {
            let body: Value = serde_json::from_str(f.call.body.as_deref().unwrap()).unwrap();
            let doc = &body["docs"][0];
            let rev = Version::parse_rev(doc["_rev"].as_str().unwrap()).expect("a valid revision");
            let (generation, _) = rev.rev_parts().unwrap();
            prop_assert_eq!(doc["_revisions"]["start"].as_u64(), Some(generation));
            prop_assert!(doc["_revisions"]["ids"].as_array().unwrap().len() as u64 <= generation);
        }
        let base = Version::Rev(format!("{g}-x"));
        prop_assert!(Version::parse_rev(&a.predicted_version(Some(&base), "k").to_string()).is_some());
    }
}
