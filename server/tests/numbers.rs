//! Numbers through the real gateway (docs/PROTOCOL.md, "Numbers"): a number a double holds
//! exactly as written is stored as written and read back equal; any other is 400
//! `invalid_number` naming its path, and nothing is written.

mod common;

use std::sync::OnceLock;

use common::*;
use replikit_server::json::number::same_value;

fn cluster() -> &'static DevCluster {
    static CLUSTER: OnceLock<DevCluster> = OnceLock::new();
    CLUSTER.get_or_init(|| DevCluster::start(&["--replicas", "1"]))
}

fn primary() -> String {
    cluster().url(0)
}

/// The literal PostgreSQL holds at `data->key` (test-made names only, no client text).
fn stored(collection: &str, id: &str, key: &str) -> String {
    let query = format!(
        "SELECT (data->'{key}')::text FROM replikit_documents WHERE collection = '{collection}' AND id = '{id}'"
    );
    let rows = sql(cluster().info.nodes[0].pg_port, &query);
    rows.first().and_then(|r| r[0].clone()).unwrap_or_else(|| panic!("no {collection}/{id} data.{key}"))
}

#[test]
fn numbers_a_double_would_change_are_400_invalid_number_naming_their_path() {
    let c = fresh_collection("num-refused");
    let doc = format!("{}/v1/c/{c}/d", primary());
    let cases = [
        ("PUT", doc.clone(), r#"{"data":{"big":123456789012345678901234567890}}"#, "data.big"),
        ("PUT", doc.clone(), r#"{"data":{"a":1.000000000000000000001}}"#, "data.a"),
        ("PUT", doc.clone(), r#"{"data":{"a":{"b":[0,1,2,1e400]}}}"#, "data.a.b[3]"),
        ("PUT", doc.clone(), r#"{"data":{"tiny":1e-400}}"#, "data.tiny"),
        ("PUT", doc.clone(), r#"{"data":{"x y":[9007199254740993]}}"#, r#"data["x y"][0]"#),
        ("POST", format!("{}/v1/c/{c}", primary()), r#"{"id":"d","data":{"n":-1e309}}"#, "data.n"),
        ("PATCH", doc.clone(), r#"{"n":{"m":1152921504606846976}}"#, "data.n.m"),
    ];
    for (method, url, body, path) in cases {
        let r = req(method, &url, &[], Some(body));
        let text = String::from_utf8_lossy(&r.body);
        assert_eq!((r.status, code(&r).as_str()), (400, "invalid_number"), "{method} {body}: {text}");
        assert_eq!(r.json()["path"], path, "{body}");
        assert!(r.json()["error"]["message"].as_str().unwrap().contains(path), "{text}");
    }
    assert_eq!(get(&doc).status, 404, "nothing was written");
}

#[test]
fn numbers_a_double_holds_are_stored_as_written_and_minus_zero_as_zero() {
    let c = fresh_collection("num-exact");
    let url = format!("{}/v1/c/{c}/d", primary());
    let fields: [(&str, &str, f64); 9] = [
        ("tenth", "0.1", 0.1),
        ("hundred", "1e2", 100.0),
        ("one", "1.0", 1.0),
        ("neg", "-2.5E-3", -0.0025),
        ("zero", "-0", 0.0),
        ("zero2", "-0.0", 0.0),
        ("big", "1152921504606847000", 1152921504606847000.0),
        ("tie", "-1256103804129999.2", -1256103804129999.2),
        ("third", "0.3333333333333333", 1.0 / 3.0),
    ];
    let members: Vec<String> = fields.iter().map(|(k, literal, _)| format!("\"{k}\":{literal}")).collect();
    let r = req("PUT", &url, &[], Some(&format!("{{\"data\":{{{}}}}}", members.join(","))));
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    let position = position(&r).to_string();
    let read_headers = [("X-Replikit-Min-Position", position.as_str()), ("X-Replikit-Max-Wait-Ms", "2000")];
    for node in [0, 1] {
        let read = req("GET", &format!("{}/v1/c/{c}/d", cluster().url(node)), &read_headers, None);
        assert_eq!(read.status, 200);
        let data = read.json()["data"].clone();
        for (key, literal, double) in fields {
            let got = data[key].as_f64().unwrap_or_else(|| panic!("n{node} data.{key}: {data}"));
            assert_eq!(got.to_bits(), double.to_bits(), "n{node} data.{key}: wrote {literal}, read {got}");
        }
    }
    for (key, literal, _) in fields {
        let held = stored(&c, "d", key);
        assert!(same_value(&held, literal), "PostgreSQL holds {held} for {literal}");
        assert!(!held.starts_with('-') || !key.starts_with("zero"), "negative zero stored as {held}");
    }
    let listed = get(&format!("{}/v1/c/{c}", primary())).json();
    assert_eq!(listed["items"][0]["data"], r.json()["data"]);
}

/// Edge cases with what `JSON.parse` reads, or `None` where the rule refuses them (each
/// expectation checked against Node 20: accepted iff `JSON.stringify(JSON.parse(l))` has the
/// literal's decimal value).
fn edge_cases() -> Vec<(String, Option<f64>)> {
    let mut cases: Vec<(String, Option<f64>)> = [
        ("1.7976931348623157e308", Some(f64::MAX)),
        ("-1.7976931348623157e308", Some(f64::MIN)),
        ("1.7976931348623158e308", None),
        ("1.7976931348623159e308", None),
        ("2.2250738585072014e-308", Some(f64::MIN_POSITIVE)),
        ("2.225073858507201e-308", Some(f64::from_bits(0x000f_ffff_ffff_ffff))),
        ("2.2250738585072009e-308", None),
        ("5e-324", Some(f64::from_bits(1))),
        ("-5e-324", Some(-f64::from_bits(1))),
        ("1e-323", Some(f64::from_bits(2))),
        ("4.9406564584124654e-324", None),
        ("1e308", Some(1e308)),
        ("1e400", None),
        ("-1e400", None),
        ("1e-400", None),
        ("-0", Some(0.0)),
        ("-0.0", Some(0.0)),
        ("0e-999999", Some(0.0)),
        ("123456789012345678901234567890", None),
        ("1.000000000000000000001", None),
        ("3.141592653589793238462643383279", None),
        ("3.141592653589793", Some(std::f64::consts::PI)),
        ("9007199254740991", Some(9007199254740991.0)),
        ("9007199254740993", None),
        ("1e22", Some(1e22)),
        ("1e23", Some(1e23)),
        ("1E+2", Some(100.0)),
        ("4.35", Some(4.35)),
        ("1e-7", Some(1e-7)),
    ]
    .into_iter()
    .map(|(l, d)| (l.to_string(), d))
    .collect();
    cases.push((format!("1{}", "0".repeat(400)), None));
    cases.push((format!("0.{}1", "0".repeat(400)), None));
    cases.push((format!("1.{}", "0".repeat(5000)), Some(1.0)));
    cases
}

fn assert_double(got: &serde_json::Value, want: f64, what: &str) {
    let got = got.as_f64().unwrap_or_else(|| panic!("{what}: {got} is not a number"));
    assert_eq!(got.to_bits(), want.to_bits(), "{what}: read {got:e}, want {want:e}");
}

#[test]
fn number_edge_cases_write_then_read_and_list_back_exactly_or_are_400_and_the_gateway_stays_up() {
    let c = fresh_collection("num-edge");
    let collection_url = format!("{}/v1/c/{c}", primary());
    for (i, (literal, want)) in edge_cases().into_iter().enumerate() {
        let short: String = literal.chars().take(30).collect();
        let url = format!("{collection_url}/d{i:02}");
        let body = format!(r#"{{"data":{{"v":{literal},"nested":{{"a":[{literal}]}}}}}}"#);
        let w = req("PUT", &url, &[], Some(&body));
        let Some(want) = want else {
            assert_eq!((w.status, code(&w).as_str()), (400, "invalid_number"), "{short}");
            assert_eq!(w.json()["path"], "data.v", "{short}");
            let patch = req("PATCH", &url, &[], Some(&format!(r#"{{"w":{literal}}}"#)));
            assert_eq!(code(&patch), "invalid_number", "{short}");
            assert_eq!(get(&url).status, 404, "{short}: nothing written");
            continue;
        };
        assert_eq!(w.status, 201, "{short}: {}", String::from_utf8_lossy(&w.body));
        let position = position(&w).to_string();
        let headers = [("X-Replikit-Min-Position", position.as_str()), ("X-Replikit-Max-Wait-Ms", "2000")];
        for node in [0, 1] {
            let r = req("GET", &format!("{}/v1/c/{c}/d{i:02}", cluster().url(node)), &headers, None);
            assert_eq!(r.status, 200, "{short} on n{node}");
            assert_double(&r.json()["data"]["v"], want, &format!("{short} on n{node}"));
            assert_double(&r.json()["data"]["nested"]["a"][0], want, &format!("{short} nested on n{node}"));
        }
        let held = stored(&c, &format!("d{i:02}"), "v");
        assert_eq!(held.parse::<f64>().map(f64::to_bits), Ok(want.to_bits()), "{short}: PostgreSQL holds {held}");
        let patched = req("PATCH", &url, &[], Some(&format!(r#"{{"w":{literal}}}"#)));
        assert_eq!(patched.status, 200, "{short}");
        assert_double(&patched.json()["data"]["w"], want, &format!("{short} patched"));
    }
    let list = get(&format!("{collection_url}?limit=1000"));
    assert_eq!(list.status, 200);
    let cases = edge_cases();
    let items = list.json()["items"].as_array().cloned().unwrap_or_default();
    assert_eq!(items.len(), cases.iter().filter(|(_, want)| want.is_some()).count());
    for item in items {
        let i: usize = item["id"].as_str().unwrap()[1..].parse().unwrap();
        let want = cases[i].1.unwrap();
        assert_double(&item["data"]["v"], want, &format!("listed {}", item["id"]));
        assert_double(&item["data"]["w"], want, &format!("listed {} w", item["id"]));
    }
    assert_eq!(get(&format!("{}/v1/health", primary())).status, 200, "the gateway is still up");
}

#[test]
fn documents_stored_around_the_gateway_read_back_and_never_crash_it() {
    let c = fresh_collection("num-legacy");
    let deep = format!("{}1{}", "[".repeat(5000), "]".repeat(5000));
    let insert = format!(
        "INSERT INTO replikit_documents (collection, id, version, data) VALUES \
         ('{c}', 'legacy', 1, '{{\"big\": 1e400, \"neg\": -1e400, \"long\": 123456789012345678901234567890, \
           \"tiny\": 1e-400, \"max\": 1.7976931348623157e308, \"s\": \"1e400\"}}'), \
         ('{c}', 'deep', 1, '{{\"d\": {deep}}}')"
    );
    sql(cluster().info.nodes[0].pg_port, &insert);
    let url = |id: &str| format!("{}/v1/c/{c}/{id}", primary());

    // Every number reads as JSON.parse reads PostgreSQL's text; beyond the double range, null.
    let legacy = get(&url("legacy"));
    assert_eq!(legacy.status, 200, "{}", String::from_utf8_lossy(&legacy.body));
    let data = legacy.json()["data"].clone();
    assert!(data["big"].is_null() && data["neg"].is_null(), "{data}");
    assert_double(&data["long"], 1.2345678901234568e29, "long");
    assert_double(&data["tiny"], 0.0, "tiny");
    assert_double(&data["max"], f64::MAX, "max");
    assert_eq!(data["s"], "1e400");

    // Any nesting PostgreSQL holds reads back, in full.
    let deep_read = get(&url("deep"));
    assert_eq!(deep_read.status, 200);
    let text = String::from_utf8_lossy(&deep_read.body);
    assert!(text.contains(&format!("\"d\":{deep}")), "deep document read back whole");
    let listed = get(&format!("{}/v1/c/{c}", primary()));
    assert_eq!(listed.status, 200);
    assert!(String::from_utf8_lossy(&listed.body).contains(&deep));

    // Writes on them: a merge patch applies to what clients read; one too deep to patch is a
    // stable 500; conditional writes and deletes work on both.
    let patched = req("PATCH", &url("legacy"), &[], Some(r#"{"n":1}"#));
    assert_eq!(patched.status, 200);
    assert_double(&patched.json()["data"]["long"], 1.2345678901234568e29, "patched long");
    let too_deep = req("PATCH", &url("deep"), &[], Some(r#"{"n":1}"#));
    assert_eq!((too_deep.status, code(&too_deep).as_str()), (500, "internal"));
    let conflict = req("PUT", &url("deep"), &[("If-Match", "\"7\"")], Some(r#"{"data":{}}"#));
    assert_eq!((conflict.status, conflict.header("etag")), (412, Some("\"1\"")));
    assert!(String::from_utf8_lossy(&conflict.body).contains(&deep), "412 carries the current document");
    assert_eq!(req("DELETE", &url("deep"), &[("If-Match", "\"1\"")], None).status, 204);
    assert_eq!(get(&format!("{}/v1/health", primary())).status, 200, "the gateway is still up");
}
