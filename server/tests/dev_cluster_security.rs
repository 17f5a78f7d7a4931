//! The dev cluster as seen by another local user, a web page, and a newcomer at the command
//! line (issue 13, point 15): PostgreSQL wants the generated password (SCRAM), the gateways the
//! generated token and only the allowed browser origin, no secret shows on a command line or
//! in the terminal summary, the state file is per user and keyed by port, a taken port is
//! named, and `--help` documents every flag.

mod common;

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use common::*;

const DASHBOARD: &str = "http://127.0.0.1:8080";

/// A base port with `count` free ports after it (checked now; a test that loses the race to
/// another process fails loudly, naming the port).
fn free_run(count: u16) -> u16 {
    for _ in 0..50 {
        let base = replikit_server::cluster::free_port().unwrap();
        if base < 60000 && (0..count).all(|i| std::net::TcpListener::bind(("127.0.0.1", base + i)).is_ok()) {
            return base;
        }
    }
    panic!("no run of {count} free ports");
}

/// One cluster with chosen PostgreSQL ports and the dashboard's origin allowed.
fn cluster() -> &'static (DevCluster, u16) {
    static CLUSTER: OnceLock<(DevCluster, u16)> = OnceLock::new();
    CLUSTER.get_or_init(|| {
        let pg_base = free_run(2);
        let base = pg_base.to_string();
        let args = ["--replicas", "1", "--replication", "async", "--pg-port", &base, "--cors-origin", DASHBOARD];
        (DevCluster::start(&args), pg_base)
    })
}

/// Connect to `pg_port` as `postgres` with `password` (none: what another local user can try).
fn connect(pg_port: u16, password: Option<&str>) -> Result<(), String> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let mut config = tokio_postgres::Config::new();
        config.host("127.0.0.1").port(pg_port).user("postgres").dbname("postgres");
        config.connect_timeout(Duration::from_secs(5));
        if let Some(p) = password {
            config.password(p);
        }
        let text =
            |e: tokio_postgres::Error| e.as_db_error().map_or_else(|| e.to_string(), |d| d.message().to_string());
        let (client, connection) = config.connect(tokio_postgres::NoTls).await.map_err(text)?;
        let driver = tokio::spawn(connection);
        let row = client.query_one("SELECT current_user::text", &[]).await.map_err(|e| e.to_string())?;
        assert_eq!(row.get::<_, String>(0), "postgres");
        drop(client);
        let _ = driver.await;
        Ok(())
    })
}

#[test]
fn postgresql_refuses_a_connection_without_the_generated_password() {
    let (c, _) = cluster();
    for node in &c.info.nodes {
        let anonymous = connect(node.pg_port, None);
        assert!(anonymous.is_err(), "{}: a session without a password was opened", node.node_id);
        let guessed = connect(node.pg_port, Some("postgres"));
        assert!(guessed.as_ref().is_err_and(|e| e.contains("password")), "{}: {guessed:?}", node.node_id);
        connect(node.pg_port, Some(&c.info.pg_password)).unwrap_or_else(|e| panic!("{}: {e}", node.node_id));
    }
    // The replica streams (replication connections authenticate too) and serves what n0 wrote.
    let put = req("PUT", &format!("{}/v1/c/sec/a", c.url(0)), &[], Some(r#"{"data":{"x":1}}"#));
    assert_eq!(put.status, 201, "{}", String::from_utf8_lossy(&put.body));
    let on_replica = eventually(Duration::from_secs(10), || {
        let r = req("GET", &format!("{}/v1/c/sec/a", c.url(1)), &[], None);
        (r.status == 200).then_some(())
    });
    assert!(on_replica.is_some(), "the replica never had the write");
}

#[test]
fn the_state_file_and_the_data_directory_are_private() {
    let (c, _) = cluster();
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&c.state_file), 0o600);
    assert_eq!(mode(&c.info.data_dir), 0o700, "the unix sockets and the pgpass file live there");
    let state: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&c.state_file).unwrap()).unwrap();
    assert_eq!(state["pgPassword"], c.info.pg_password.as_str());
    assert_eq!(state["gatewayToken"], c.info.gateway_token.as_str());
    assert_eq!(state["pgUser"], "postgres");
    assert!(c.info.pg_password.len() >= 32 && c.info.gateway_token.len() >= 32);
    assert_ne!(c.info.pg_password, c.info.gateway_token);
}

#[test]
fn postgresql_ports_can_be_chosen() {
    let (c, pg_base) = cluster();
    let ports: Vec<u16> = c.info.nodes.iter().map(|n| n.pg_port).collect();
    assert_eq!(ports, vec![*pg_base, pg_base + 1]);
}

#[test]
fn gateways_require_the_generated_token() {
    let (c, _) = cluster();
    for url in &c.info.endpoints {
        for path in ["/v1/health", "/v1/c/sec/a"] {
            let none = raw_request("GET", &format!("{url}{path}"), &[], None, Duration::from_secs(5)).unwrap();
            assert_eq!((none.status, code(&none).as_str()), (401, "unauthorized"), "{url}{path}");
            let guess = [("Authorization", "Bearer guess")];
            let wrong = raw_request("PUT", &format!("{url}{path}"), &guess, Some("{}"), Duration::from_secs(5));
            assert_eq!(wrong.map(|r| r.status).unwrap(), 401, "{url}{path}");
        }
        let auth = c.bearer();
        let ok =
            raw_request("GET", &format!("{url}/v1/health"), &[("Authorization", &auth)], None, Duration::from_secs(5));
        assert_eq!(ok.unwrap().status, 200);
    }
}

#[test]
fn only_the_allowed_origin_gets_cors_headers() {
    let (c, _) = cluster();
    let url = format!("{}/v1/c/sec/b", c.url(0));
    let preflight = |origin: &str| {
        let headers = [("Origin", origin), ("Access-Control-Request-Method", "PUT")];
        raw_request("OPTIONS", &url, &headers, None, Duration::from_secs(5)).unwrap()
    };
    let evil = preflight("http://evil.example");
    assert!(evil.header("access-control-allow-origin").is_none(), "a preflight from another origin was allowed");
    let dashboard = preflight(DASHBOARD);
    assert_eq!(dashboard.header("access-control-allow-origin"), Some(DASHBOARD));
    // A simple cross-site write (no preflight) is refused for want of the token, and unreadable.
    let form = raw_request(
        "POST",
        &format!("{}/v1/c/sec", c.url(0)),
        &[("Origin", "http://evil.example"), ("Content-Type", "text/plain")],
        Some(r#"{"data":{}}"#),
        Duration::from_secs(5),
    )
    .unwrap();
    assert_eq!(form.status, 401);
    assert!(form.header("access-control-allow-origin").is_none());
}

/// Start `dev-cluster` with `args` and `env`; returns its stdout lines up to the one that
/// starts with `until` (or all of it when it exits first) and the child.
fn run_until(args: &[&str], env: &[(&str, &str)], until: &str) -> (Vec<String>, std::process::Child, String) {
    let stderr_file =
        std::env::temp_dir().join(format!("replikit-devsec-{}.stderr", replikit_server::cluster::random_hex(4)));
    let mut child = Command::new(BIN)
        .arg("dev-cluster")
        .args(args)
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&stderr_file).unwrap())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let until = until.to_string();
    std::thread::spawn(move || {
        let mut lines = Vec::new();
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let done = line.starts_with(&until);
            lines.push(line);
            if done {
                break;
            }
        }
        let _ = tx.send(lines);
    });
    let lines = rx.recv_timeout(Duration::from_secs(90)).unwrap_or_default();
    let stderr = std::fs::read_to_string(&stderr_file).unwrap_or_default();
    let _ = std::fs::remove_file(&stderr_file);
    (lines, child, stderr)
}

fn stop(mut child: std::process::Child) {
    // SAFETY: kill(2) on our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let _ = child.wait();
}

/// The command lines of every process (what `ps` shows any local user).
fn all_command_lines() -> String {
    let mut all = String::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        if let Ok(bytes) = std::fs::read(entry.path().join("cmdline")) {
            all += &String::from_utf8_lossy(&bytes).replace('\0', " ");
            all.push('\n');
        }
    }
    all
}

#[test]
fn the_summary_names_the_state_file_and_no_secret_reaches_a_terminal_or_a_command_line() {
    let xdg = tempdir("xdg");
    let (lines, child, stderr) =
        run_until(&["--port", "0", "--replicas", "1"], &[("XDG_RUNTIME_DIR", xdg.to_str().unwrap())], "Ctrl-C");
    let summary = lines.join("\n");
    let state_file = xdg.join("replikit").join(format!("dev-cluster-pid{}.json", child.id()));
    let info = replikit_server::cluster::state::ClusterInfo::read(&state_file);
    let commands = all_command_lines();
    stop(child);
    let info = info.unwrap_or_else(|e| panic!("no state file at {}: {e}\n{summary}\n{stderr}", state_file.display()));
    assert!(summary.contains(&state_file.display().to_string()), "{summary}");
    assert!(summary.contains(&info.admin_url) && summary.contains("--port + 100"), "{summary}");
    for secret in [&info.pg_password, &info.gateway_token, &info.admin_token] {
        assert!(!summary.contains(secret.as_str()), "a secret in the summary:\n{summary}");
        assert!(!stderr.contains(secret.as_str()), "a secret in the log:\n{stderr}");
        assert!(!commands.contains(secret.as_str()), "a secret on a command line");
    }
    assert!(!state_file.exists(), "removed on a clean stop");
    let _ = std::fs::remove_dir_all(&xdg);
}

/// A fresh directory under the temp dir.
fn tempdir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("replikit-devsec-{name}-{}", replikit_server::cluster::random_hex(4)));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// What `ctl --port <port> status` says when no cluster runs, with `env`.
fn ctl_status(port: &str, env: &[(&str, &str)]) -> String {
    let out = Command::new(BIN)
        .args(["ctl", "--port", port, "status"])
        .env_remove("XDG_RUNTIME_DIR")
        .envs(env.iter().copied())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn the_default_state_file_is_per_user_and_keyed_by_port() {
    // SAFETY: geteuid has no preconditions.
    let uid = unsafe { libc::geteuid() };
    let xdg = tempdir("runtime");
    let said = ctl_status("7123", &[("XDG_RUNTIME_DIR", xdg.to_str().unwrap())]);
    let expected = xdg.join("replikit").join("dev-cluster-7123.json");
    assert!(said.contains(&expected.display().to_string()), "{said}");
    let mode = std::fs::metadata(xdg.join("replikit")).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o700);

    let tmp = tempdir("tmp");
    let said = ctl_status("7124", &[("TMPDIR", tmp.to_str().unwrap())]);
    let per_uid = tmp.join(format!("replikit-{uid}"));
    assert!(said.contains(&per_uid.join("dev-cluster-7124.json").display().to_string()), "{said}");
    assert_eq!(std::fs::metadata(&per_uid).unwrap().permissions().mode() & 0o777, 0o700);

    // A directory another user made there (to plant a state file, or read ours) is refused.
    let planted = tempdir("planted");
    let theirs = planted.join(format!("replikit-{uid}"));
    std::fs::create_dir(&theirs).unwrap();
    std::os::unix::fs::chown(&theirs, Some(uid + 1), None).ok();
    if std::fs::metadata(&theirs).map(|m| std::os::unix::fs::MetadataExt::uid(&m)).ok() == Some(uid + 1) {
        let said = ctl_status("7125", &[("TMPDIR", planted.to_str().unwrap())]);
        assert!(said.contains("is not a directory of yours"), "{said}");
    }
    for dir in [xdg, tmp, planted] {
        let _ = std::fs::remove_dir_all(dir);
    }
}

#[test]
fn a_port_in_use_is_named_before_anything_starts() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    for (args, flag) in [
        (vec!["--port", port.as_str()], "--port"),
        (vec!["--port", "0", "--admin-port", port.as_str()], "--admin-port"),
        (vec!["--port", "0", "--pg-port", port.as_str()], "--pg-port"),
    ] {
        let started = std::time::Instant::now();
        let out = Command::new(BIN).arg("dev-cluster").args(&args).stdin(Stdio::null()).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(stderr.contains(&format!("127.0.0.1:{port}")) && stderr.contains("already in use"), "{stderr}");
        assert!(stderr.contains(flag), "{args:?} should name {flag}: {stderr}");
        assert!(started.elapsed() < Duration::from_secs(10), "{args:?} took {:?}", started.elapsed());
    }
}

#[test]
fn help_documents_every_flag() {
    for (command, flags) in [
        (
            "dev-cluster",
            &[
                "--replicas",
                "--port",
                "--admin-port",
                "--pg-port",
                "--cors-origin",
                "--replication",
                "--auto-failover",
                "--json",
                "--state-file",
                "--stop-on-stdin-close",
                "--idempotency-window",
            ][..],
        ),
        ("ctl", &["--state-file", "--port"][..]),
    ] {
        let out = Command::new(BIN).args([command, "--help"]).output().unwrap();
        let help = String::from_utf8_lossy(&out.stdout).into_owned();
        let lines: Vec<&str> = help.lines().collect();
        for flag in flags {
            let at = lines
                .iter()
                .position(|l| l.trim_start().starts_with(&format!("{flag} ")) || l.trim() == *flag)
                .unwrap_or_else(|| panic!("{command} --help lacks {flag}:\n{help}"));
            // Short help puts the text on the flag's line, long help on the next one.
            let same_line = lines[at].split_whitespace().any(|w| !w.starts_with('-') && !w.starts_with('<'));
            let next_line = lines.get(at + 1).is_some_and(|l| !l.trim().is_empty() && !l.trim_start().starts_with('-'));
            let described = same_line || next_line;
            assert!(described, "{command} --help: {flag} has no description:\n{help}");
        }
        if command == "dev-cluster" {
            assert!(help.contains("--port + 100"), "the admin port's default is said:\n{help}");
        }
    }
}
