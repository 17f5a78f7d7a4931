//! `replikit-server serve` on its own: bearer auth, CORS origins, secrets from files or the
//! environment, stable error messages, and a down database answered promptly with 503
//! `unavailable`.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use common::*;

/// A `serve` child process, killed on drop; its stderr goes to a file.
struct Serve {
    child: Child,
    url: String,
    stderr: PathBuf,
}

impl Serve {
    fn start(pg: &str, extra: &[&str]) -> Serve {
        Serve::spawn(&[&["--pg", pg], extra].concat(), &[])
    }

    /// `serve --listen <free port> --node-id solo <args>` with `env` added.
    fn spawn(args: &[&str], env: &[(&str, &str)]) -> Serve {
        let port = replikit_server::cluster::free_port().unwrap();
        let listen = format!("127.0.0.1:{port}");
        let stderr = temp_file(&format!("serve-{port}.stderr"), "");
        let child = Command::new(BIN)
            .args(["serve", "--listen", &listen, "--node-id", "solo"])
            .args(args)
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&stderr).unwrap())
            .spawn()
            .expect("spawn serve");
        let url = format!("http://{listen}");
        let up = eventually(Duration::from_secs(10), || {
            try_req("GET", &format!("{url}/v1/nothing"), &[], None, Duration::from_secs(2)).ok()
        });
        let serve = Serve { child, url, stderr };
        assert!(up.is_some(), "serve did not listen: {}", serve.stderr());
        serve
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// What every local user sees in `ps`.
    fn cmdline(&self) -> String {
        std::fs::read(format!("/proc/{}/cmdline", self.child.id()))
            .map(|b| String::from_utf8_lossy(&b).replace('\0', " "))
            .unwrap_or_default()
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.stderr);
    }
}

/// A mode 0600 file in the temp directory holding `text`.
fn temp_file(name: &str, text: &str) -> PathBuf {
    let path = std::env::temp_dir().join(format!("replikit-test-{}-{name}", std::process::id()));
    std::fs::write(&path, text).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    path
}

/// One PostgreSQL primary shared by the tests below (its own gateways unused).
fn cluster() -> &'static DevCluster {
    static CLUSTER: OnceLock<DevCluster> = OnceLock::new();
    CLUSTER.get_or_init(|| DevCluster::start(&["--replicas", "1", "--replication", "async"]))
}

/// The shared primary's connection string, with its password, so that the tests can check it
/// never shows.
fn pg_with_password() -> String {
    pg_conninfo(cluster().info.nodes[0].pg_port)
}

/// The shared primary's password.
fn password() -> String {
    cluster().info.pg_password.clone()
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
        let message = r.json()["error"]["message"].as_str().unwrap_or_default().to_string();
        assert!(!message.contains("os error") && !message.contains("error connecting"), "driver text in {message:?}");
        assert_eq!(r.header("x-replikit-node"), Some("solo"));
        assert!(started.elapsed() < Duration::from_secs(4), "{method} {path} took {:?}", started.elapsed());
    }
}

#[test]
fn serve_requires_the_bearer_token_and_allows_only_its_cors_origin() {
    let cluster = DevCluster::start(&["--replicas", "1", "--replication", "async"]);
    let pg = pg_conninfo(cluster.info.nodes[0].pg_port);
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

#[test]
fn secrets_come_from_files_or_the_environment_and_never_show_in_ps_or_logs() {
    let token = "t0ken-from-elsewhere";
    let pg_file = temp_file("pg", &format!("{}\n", pg_with_password()));
    let token_file = temp_file("token", &format!("{token}\n"));
    let from_files =
        Serve::spawn(&["--pg-file", pg_file.to_str().unwrap(), "--auth-token-file", token_file.to_str().unwrap()], &[]);
    let pg = pg_with_password();
    let from_env = Serve::spawn(&[], &[("REPLIKIT_PG", pg.as_str()), ("REPLIKIT_AUTH_TOKEN", token)]);
    for serve in [&from_files, &from_env] {
        let health = format!("{}/v1/health", serve.url);
        assert_eq!(get(&health).status, 401);
        let ok = req("GET", &health, &[("Authorization", &format!("Bearer {token}"))], None);
        assert_eq!(ok.status, 200, "{}", String::from_utf8_lossy(&ok.body));
        let (cmdline, stderr) = (serve.cmdline(), serve.stderr());
        assert!(cmdline.contains("serve"), "{cmdline}");
        for secret in [token, password().as_str()] {
            assert!(!cmdline.contains(secret), "{secret} in ps: {cmdline}");
            assert!(!stderr.contains(secret), "{secret} logged: {stderr}");
        }
        assert!(!stderr.contains("warning"), "{stderr}");
    }
    // The old flags still work, with a warning for each secret on argv.
    let from_argv = Serve::start(&pg, &["--auth-token", token]);
    let ok =
        req("GET", &format!("{}/v1/health", from_argv.url), &[("Authorization", &format!("Bearer {token}"))], None);
    assert_eq!(ok.status, 200);
    let warned = eventually(Duration::from_secs(2), || {
        let stderr = from_argv.stderr();
        (stderr.contains("--auth-token puts a secret") && stderr.contains("--pg puts a secret")).then_some(())
    });
    assert!(warned.is_some(), "{}", from_argv.stderr());
    for path in [pg_file, token_file] {
        let _ = std::fs::remove_file(path);
    }
}

#[test]
fn the_bearer_scheme_is_case_insensitive_and_only_real_preflights_skip_auth() {
    let pg = pg_with_password();
    let with_cors = Serve::start(&pg, &["--auth-token", "s3cret", "--cors-origin", "http://app.example"]);
    let without_cors = Serve::start(&pg, &["--auth-token", "s3cret"]);
    for serve in [&with_cors, &without_cors] {
        let url = format!("{}/v1/c/a/b", serve.url);
        for scheme in ["Bearer", "bearer", "BEARER", "bEaReR"] {
            let r = req("GET", &url, &[("Authorization", &format!("{scheme} s3cret"))], None);
            assert_eq!(r.status, 404, "{scheme}: {}", String::from_utf8_lossy(&r.body));
        }
        let origin = ("Origin", "http://app.example");
        let method = ("Access-Control-Request-Method", "PUT");
        for headers in [vec![], vec![origin], vec![method]] {
            let r = req("OPTIONS", &url, &headers, None);
            assert_eq!((r.status, code(&r).as_str()), (401, "unauthorized"), "OPTIONS with {headers:?}");
        }
        let preflight = req("OPTIONS", &url, &[origin, method], None);
        assert_ne!(preflight.status, 401, "a real preflight needs no token");
    }
    let preflight = req(
        "OPTIONS",
        &format!("{}/v1/c/a/b", with_cors.url),
        &[("Origin", "http://app.example"), ("Access-Control-Request-Method", "PUT")],
        None,
    );
    assert!(preflight.status < 300);
    assert_eq!(preflight.header("access-control-allow-origin"), Some("http://app.example"));
}

#[test]
fn error_bodies_carry_stable_messages_never_postgresql_text() {
    let serve = Serve::start(&pg_with_password(), &[]);
    sql(
        cluster().info.nodes[0].pg_port,
        "ALTER TABLE replikit_documents ADD CONSTRAINT no_forbidden CHECK (collection <> 'forbidden')",
    );
    let nul = req("PUT", &format!("{}/v1/c/ok/nul", serve.url), &[], Some(r#"{"data":{"s":"a\u0000b"}}"#));
    assert_eq!((nul.status, code(&nul).as_str()), (400, "bad_request"));
    let refused = req("PUT", &format!("{}/v1/c/forbidden/x", serve.url), &[], Some(r#"{"data":{}}"#));
    assert_eq!((refused.status, code(&refused).as_str()), (500, "internal"));
    assert_eq!(refused.json()["error"]["message"], "unexpected database error (SQLSTATE 23514)");
    for r in [&nul, &refused] {
        let body = String::from_utf8_lossy(&r.body).to_lowercase();
        for postgres_text in ["unicode", "escape", "violates", "no_forbidden", "replikit_documents", "error:"] {
            assert!(!body.contains(postgres_text), "{postgres_text:?} in {body}");
        }
    }
    // The detail goes to the gateway's log instead, without the connection's password.
    let logged = eventually(Duration::from_secs(2), || {
        let stderr = serve.stderr();
        (stderr.contains("23514") && stderr.contains("violates")).then_some(stderr)
    });
    assert!(logged.as_ref().is_some_and(|l| !l.contains(&password())), "{}", serve.stderr());
}
