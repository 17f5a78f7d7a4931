//! Test harness: a real `dev-cluster` child process per test (or per test file), and small
//! HTTP helpers.
//!
//! Cleanup: dropping a [`DevCluster`] sends SIGTERM and waits, so PostgreSQL is stopped and
//! the temp directory removed even when the test panicked. The child also runs with
//! `--stop-on-stdin-close`, so if the test process dies (or a cluster lives in a `static`,
//! which is never dropped) the closed pipe stops it.
//!
//! Credentials: a dev cluster's gateways require its bearer token and its PostgreSQL its
//! password (both in the JSON line, as in the state file). Every started cluster is registered
//! here, so [`req`] adds `Authorization: Bearer <gatewayToken>` to a request to one of its
//! gateways that carries none, and [`sql`] connects with its password: the tests keep reading
//! as requests from a client that has them. [`raw_request`] sends exactly the given headers.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{mpsc, Mutex};
use std::time::{Duration, Instant};

use replikit_server::client::{self, HttpResponse};
use replikit_server::cluster::state::ClusterInfo;
use serde_json::Value;

pub const BIN: &str = env!("CARGO_BIN_EXE_replikit-server");

pub struct DevCluster {
    pub info: ClusterInfo,
    pub state_file: std::path::PathBuf,
    child: Child,
    _stdin: ChildStdin,
}

impl DevCluster {
    /// Start `dev-cluster --port 0 --json` with `extra` arguments and wait for its JSON line.
    pub fn start(extra: &[&str]) -> DevCluster {
        let state_file = std::env::temp_dir().join(format!(
            "replikit-test-{}-{}.json",
            std::process::id(),
            replikit_server::cluster::random_hex(4)
        ));
        let mut child = Command::new(BIN)
            .args(["dev-cluster", "--port", "0", "--json", "--stop-on-stdin-close", "--state-file"])
            .arg(&state_file)
            .args(extra)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn replikit-server dev-cluster");
        let stdin = child.stdin.take().expect("stdin");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = match rx.recv_timeout(Duration::from_secs(90)) {
            Ok(line) if !line.trim().is_empty() => line,
            other => {
                let _ = child.kill();
                panic!("dev-cluster did not print its JSON line: {other:?}");
            }
        };
        let info: ClusterInfo = serde_json::from_str(&line).expect("cluster JSON line");
        CLUSTERS.lock().unwrap_or_else(|e| e.into_inner()).push(info.clone());
        DevCluster { info, state_file, child, _stdin: stdin }
    }

    /// `Authorization: Bearer <gatewayToken>`.
    pub fn bearer(&self) -> String {
        format!("Bearer {}", self.info.gateway_token)
    }

    pub fn url(&self, node: usize) -> String {
        self.info.endpoints[node].clone()
    }

    /// `POST /admin/nodes/{node}/{action}` (or `GET /admin/status` for "status"); panics on failure.
    pub fn admin(&self, action: &str, node: &str) -> Value {
        let auth = format!("Bearer {}", self.info.admin_token);
        let (method, url) = if action == "status" {
            ("GET", format!("{}/admin/status", self.info.admin_url))
        } else {
            ("POST", format!("{}/admin/nodes/{node}/{action}", self.info.admin_url))
        };
        let r = client::request(method, &url, &[("Authorization", &auth)], None, Duration::from_secs(120))
            .expect("admin API");
        assert_eq!(r.status, 200, "admin {action} {node}: {}", String::from_utf8_lossy(&r.body));
        r.json()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for DevCluster {
    fn drop(&mut self) {
        CLUSTERS.lock().unwrap_or_else(|e| e.into_inner()).retain(|c| c.pid != self.info.pid);
        // SAFETY: plain kill(2) on our own child's pid.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One request with a 10 s timeout; panics on transport errors.
pub fn req(method: &str, url: &str, headers: &[(&str, &str)], body: Option<&str>) -> HttpResponse {
    try_req(method, url, headers, body, Duration::from_secs(10)).unwrap_or_else(|e| panic!("{method} {url}: {e}"))
}

pub fn try_req(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: Option<&str>,
    timeout: Duration,
) -> std::io::Result<HttpResponse> {
    let given = headers.iter().any(|(name, _)| name.eq_ignore_ascii_case("authorization"));
    let auth = if given { None } else { gateway_token(url).map(|t| format!("Bearer {t}")) };
    let mut all = headers.to_vec();
    if let Some(auth) = &auth {
        all.push(("Authorization", auth));
    }
    raw_request(method, url, &all, body, timeout)
}

/// One request with exactly `headers` (no token added).
pub fn raw_request(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: Option<&str>,
    timeout: Duration,
) -> std::io::Result<HttpResponse> {
    client::request(method, url, headers, body.map(str::as_bytes), timeout)
}

/// The clusters started by this test process (see the module doc).
static CLUSTERS: Mutex<Vec<ClusterInfo>> = Mutex::new(Vec::new());

/// The gateway token of the registered cluster one of whose gateways `url` addresses.
fn gateway_token(url: &str) -> Option<String> {
    let clusters = CLUSTERS.lock().unwrap_or_else(|e| e.into_inner());
    clusters
        .iter()
        .find(|c| c.endpoints.iter().any(|e| url == e || url.starts_with(&format!("{e}/"))))
        .map(|c| c.gateway_token.clone())
}

/// The PostgreSQL password of the registered cluster with a node on `pg_port`.
pub fn pg_password(pg_port: u16) -> Option<String> {
    let clusters = CLUSTERS.lock().unwrap_or_else(|e| e.into_inner());
    clusters.iter().find(|c| c.nodes.iter().any(|n| n.pg_port == pg_port)).map(|c| c.pg_password.clone())
}

/// A connection string for the node on `pg_port`, with its cluster's password.
pub fn pg_conninfo(pg_port: u16) -> String {
    let password = pg_password(pg_port).map(|p| format!(" password={p}")).unwrap_or_default();
    format!("host=127.0.0.1 port={pg_port} user=postgres dbname=postgres{password}")
}

pub fn get(url: &str) -> HttpResponse {
    req("GET", url, &[], None)
}

/// The error code of an error response.
pub fn code(r: &HttpResponse) -> String {
    r.json()["error"]["code"].as_str().unwrap_or_default().to_string()
}

pub fn position(r: &HttpResponse) -> u64 {
    r.header("x-replikit-position").and_then(|p| p.parse().ok()).expect("X-Replikit-Position header")
}

/// Retry `f` every 50 ms until it returns `Some`, for at most `limit`.
pub fn eventually<T>(limit: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A collection name unique to this test run, so tests sharing a cluster do not collide.
pub fn fresh_collection(prefix: &str) -> String {
    format!("{prefix}-{}", replikit_server::cluster::random_hex(4))
}

/// Run `sql` on the PostgreSQL node at `pg_port` (simple query protocol) and return every
/// row's columns as text (`None` for NULL).
pub fn sql(pg_port: u16, sql: &str) -> Vec<Vec<Option<String>>> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    runtime.block_on(async {
        let conninfo = pg_conninfo(pg_port);
        let (client, connection) = tokio_postgres::connect(&conninfo, tokio_postgres::NoTls).await.expect("connect");
        let driver = tokio::spawn(connection);
        let rows = client.simple_query(sql).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
        drop(client);
        let _ = driver.await;
        rows.into_iter()
            .filter_map(|m| match m {
                tokio_postgres::SimpleQueryMessage::Row(row) => {
                    Some((0..row.len()).map(|i| row.get(i).map(str::to_string)).collect())
                }
                _ => None,
            })
            .collect()
    })
}

/// The WAL receiver of a standby, stopped (SIGSTOP) so that the primary's next writes do not
/// reach it. However the test ends, the receiver gets `on_drop`: SIGCONT to resume streaming, or
/// SIGKILL so that what the kernel had buffered for it is lost too (the standby's postmaster then
/// restarts it from the standby's own WAL: a failover that loses an async tail).
pub struct StoppedReceiver {
    pid: i32,
    on_drop: i32,
}

impl StoppedReceiver {
    pub fn stop(cluster: &DevCluster, node: usize, on_drop: i32) -> StoppedReceiver {
        let receiver = sql(cluster.info.nodes[node].pg_port, "SELECT pid FROM pg_stat_wal_receiver");
        let pid: i32 = receiver[0][0].as_deref().expect("the standby has a WAL receiver").parse().unwrap();
        // SAFETY: kill(2) on a PostgreSQL child process of this test's own cluster.
        assert_eq!(unsafe { libc::kill(pid, libc::SIGSTOP) }, 0, "SIGSTOP {pid}");
        StoppedReceiver { pid, on_drop }
    }
}

impl Drop for StoppedReceiver {
    fn drop(&mut self) {
        // SAFETY: as above.
        unsafe { libc::kill(self.pid, self.on_drop) };
    }
}

/// Promote standby `node` once it answers again after its receiver was killed, retrying while its
/// postmaster is still restarting (health can answer just before that restart begins).
pub fn promote_once_recovered(cluster: &DevCluster, node: usize) {
    let url = cluster.url(node);
    let up = eventually(Duration::from_secs(30), || {
        (try_req("GET", &format!("{url}/v1/health"), &[], None, Duration::from_secs(2)).ok()?.status == 200)
            .then_some(())
    });
    up.unwrap_or_else(|| panic!("n{node} not back after its receiver was killed"));
    let auth = format!("Bearer {}", cluster.info.admin_token);
    let promote = format!("{}/admin/nodes/n{node}/promote", cluster.info.admin_url);
    let promoted = eventually(Duration::from_secs(30), || {
        let r = client::request("POST", &promote, &[("Authorization", &auth)], None, Duration::from_secs(60));
        (r.ok()?.status == 200).then_some(())
    });
    promoted.unwrap_or_else(|| panic!("n{node} could not be promoted"));
}
