//! `replikit-server serve` on its own: bearer auth, CORS origins, and a down database
//! answered promptly with 503 `unavailable`.

mod common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

/// A `serve` child process, killed on drop.
struct Serve {
    child: Child,
    url: String,
}

impl Serve {
    fn start(pg: &str, extra: &[&str]) -> Serve {
        let port = replikit_server::cluster::free_port().unwrap();
        let listen = format!("127.0.0.1:{port}");
        let child = Command::new(BIN)
            .args(["serve", "--listen", &listen, "--pg", pg, "--node-id", "solo"])
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn serve");
        let url = format!("http://{listen}");
        let up = eventually(Duration::from_secs(10), || {
            try_req("GET", &format!("{url}/v1/nothing"), &[], None, Duration::from_secs(2)).ok()
        });
        assert!(up.is_some(), "serve did not listen");
        Serve { child, url }
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn down_database_is_503_unavailable_within_a_second() {
    let dead = replikit_server::cluster::free_port().unwrap();
    let serve = Serve::start(&format!("host=127.0.0.1 port={dead} user=postgres dbname=postgres"), &[]);
    for (method, path, body) in
        [("GET", "/v1/health", None), ("GET", "/v1/c/a/b", None), ("PUT", "/v1/c/a/b", Some(r#"{"data":{}}"#))]
    {
        let started = Instant::now();
        let r = req(method, &format!("{}{path}", serve.url), &[], body);
        assert_eq!((r.status, code(&r).as_str()), (503, "unavailable"), "{method} {path}");
        assert_eq!(r.header("x-replikit-node"), Some("solo"));
        assert!(started.elapsed() < Duration::from_secs(4), "{method} {path} took {:?}", started.elapsed());
    }
}

#[test]
fn serve_requires_the_bearer_token_and_allows_only_its_cors_origin() {
    let cluster = DevCluster::start(&["--replicas", "1", "--replication", "async"]);
    let pg = format!("host=127.0.0.1 port={} user=postgres dbname=postgres", cluster.info.nodes[0].pg_port);
    let serve = Serve::start(&pg, &["--auth-token", "s3cret", "--cors-origin", "http://app.example"]);
    let url = format!("{}/v1/health", serve.url);
    let missing = get(&url);
    assert_eq!((missing.status, code(&missing).as_str()), (401, "unauthorized"));
    let wrong = req("GET", &url, &[("Authorization", "Bearer nope")], None);
    assert_eq!(wrong.status, 401);
    let ok = req("GET", &url, &[("Authorization", "Bearer s3cret"), ("Origin", "http://app.example")], None);
    assert_eq!(ok.status, 200);
    assert_eq!(ok.json()["role"], "primary");
    assert_eq!(ok.header("access-control-allow-origin"), Some("http://app.example"));
    let other = req("GET", &url, &[("Authorization", "Bearer s3cret"), ("Origin", "http://evil.example")], None);
    assert!(other.header("access-control-allow-origin").is_none());
    let preflight = req(
        "OPTIONS",
        &format!("{}/v1/c/a/b", serve.url),
        &[("Origin", "http://app.example"), ("Access-Control-Request-Method", "PUT")],
        None,
    );
    assert!(preflight.status < 300, "preflight needs no token");
    let write =
        req("PUT", &format!("{}/v1/c/a/b", serve.url), &[("Authorization", "Bearer s3cret")], Some(r#"{"data":{}}"#));
    assert_eq!(write.status, 201);
}
