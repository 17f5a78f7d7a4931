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
