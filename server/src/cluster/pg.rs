//! Running PostgreSQL 15 tools for one node: initdb, pg_ctl, pg_basebackup, pg_rewind.
//!
//! PostgreSQL refuses to run as root, so when we are root every tool runs as the
//! `postgres` OS user (`runuser -u postgres --`) and data directories belong to it.
//! Port, `cluster_name` and socket directory go on the `pg_ctl -o` command line, never in
//! postgresql.conf, because pg_basebackup and pg_rewind copy config files between nodes.
//!
//! Authentication is SCRAM-SHA-256 for every connection, local and TCP, replication included
//! (`initdb -A scram-sha-256`): with `trust`, any local user could open a superuser session,
//! and a superuser runs commands as the server's OS user (`COPY ... TO PROGRAM`). The password
//! is generated per cluster. Our own connections take it in memory ([`PgNode::conninfo`]); the
//! PostgreSQL tools and the standbys' WAL receivers read it from a mode 0600 `pgpass` file in
//! the cluster's 0700 directory ([`PgNode::libpq_conninfo`]), so it is never on a command line.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::process::Command;

use super::error::ClusterError;

/// Settings shared by every node (appended to the primary's postgresql.conf by `init`).
/// `fsync = off`: the dev cluster simulates process kills, not power loss, and the OS cache
/// survives a process kill. `wal_log_hints` is what pg_rewind needs. 1 MB WAL segments
/// (initdb `--wal-segsize=1`) and a small `min_wal_size` keep the temp directory small, so
/// it is created and removed quickly.
const NODE_CONF: &str = "
wal_level = replica
wal_log_hints = on
max_wal_senders = 10
wal_keep_size = '256MB'
min_wal_size = '4MB'
max_wal_size = '64MB'
hot_standby = on
fsync = off
shared_buffers = '32MB'
max_connections = 60
wal_retrieve_retry_interval = '500ms'
wal_receiver_status_interval = '1s'
";

/// Where the tools are and whom they run as.
#[derive(Debug, Clone)]
pub struct PgTools {
    bin: PathBuf,
    /// `Some((uid, gid))` of `postgres` when we are root.
    run_as: Option<(u32, u32)>,
}

impl PgTools {
    /// Find PostgreSQL 15 (`REPLIKIT_PG_BIN`, else /usr/lib/postgresql/15/bin) and decide
    /// whether to switch users.
    pub fn detect() -> Result<Self, ClusterError> {
        let bin = std::env::var_os("REPLIKIT_PG_BIN")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("/usr/lib/postgresql/15/bin"));
        if !bin.join("pg_ctl").exists() {
            return Err(ClusterError::InvalidState(format!(
                "pg_ctl not found in {} (install PostgreSQL 15 or set REPLIKIT_PG_BIN)",
                bin.display()
            )));
        }
        // SAFETY: geteuid has no preconditions and cannot fail.
        let root = unsafe { libc::geteuid() } == 0;
        let run_as = if root { Some(postgres_ids()?) } else { None };
        Ok(PgTools { bin, run_as })
    }

    /// Give `path` to the postgres user (no-op when not root).
    pub fn chown(&self, path: &Path) -> Result<(), ClusterError> {
        if let Some((uid, gid)) = self.run_as {
            std::os::unix::fs::chown(path, Some(uid), Some(gid))?;
        }
        Ok(())
    }

    /// Run `tool args...` in `cwd`; on failure the error carries its output.
    pub async fn run(&self, cwd: &Path, tool: &str, args: &[String]) -> Result<String, ClusterError> {
        let program = self.bin.join(tool);
        let mut cmd = match self.run_as {
            Some(_) => {
                let mut c = Command::new("runuser");
                c.args(["-u", "postgres", "--"]).arg(&program);
                c
            }
            None => Command::new(&program),
        };
        cmd.args(args).current_dir(cwd).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
        cmd.kill_on_drop(true);
        let fail = |detail: String| ClusterError::Tool { tool: tool.to_string(), detail };
        let output = tokio::time::timeout(Duration::from_secs(120), cmd.output())
            .await
            .map_err(|_| fail("timed out after 120 s".into()))?
            .map_err(|e| fail(e.to_string()))?;
        let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
        if output.status.success() {
            Ok(text)
        } else {
            Err(fail(text.trim().to_string()))
        }
    }
}

impl PgTools {
    /// `pg_ctl stop -m immediate` without async, for a process about to abort: waits at most
    /// 10 s, ignores every failure.
    pub fn stop_immediately_blocking(&self, data_dir: &Path) {
        let program = self.bin.join("pg_ctl");
        let mut cmd = match self.run_as {
            Some(_) => {
                let mut c = std::process::Command::new("runuser");
                c.args(["-u", "postgres", "--"]).arg(&program);
                c
            }
            None => std::process::Command::new(&program),
        };
        cmd.args(["stop", "-D", path(data_dir), "-m", "immediate", "-w", "-t", "10"]);
        let _ = cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null()).status();
    }
}

fn postgres_ids() -> Result<(u32, u32), ClusterError> {
    let passwd = std::fs::read_to_string("/etc/passwd")?;
    passwd
        .lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .find(|f| f.len() > 3 && f[0] == "postgres")
        .and_then(|f| Some((f[2].parse().ok()?, f[3].parse().ok()?)))
        .ok_or_else(|| ClusterError::InvalidState("running as root but there is no `postgres` OS user".into()))
}

/// The superuser password of a dev cluster: printed by `Debug` as `***`, so that no log line
/// or error that formats a node shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(pub String);

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

/// Write the cluster's `pgpass` file (mode 0600, given to the postgres user when we are root):
/// the password for the `postgres` user on every loopback node.
pub fn write_passfile(tools: &PgTools, root: &Path, password: &Password) -> Result<PathBuf, ClusterError> {
    let path = root.join("pgpass");
    write_private(&path, &format!("127.0.0.1:*:*:postgres:{}\n", password.0))?;
    tools.chown(&path)?;
    Ok(path)
}

/// Create `path` with mode 0600 (never following an existing file) and write `text`.
pub fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path)?;
    file.write_all(text.as_bytes())
}

/// One PostgreSQL node of the dev cluster.
#[derive(Debug, Clone)]
pub struct PgNode {
    pub id: String,
    pub port: u16,
    pub data_dir: PathBuf,
    /// The cluster's temp directory (mode 0700): log files, the unix socket and `pgpass` live here.
    pub root: PathBuf,
    /// The `postgres` user's password (the same on every node: standbys are copies).
    pub password: Password,
}

impl PgNode {
    /// Connection string for our own tokio-postgres connections (the gateways' pools, the
    /// supervisor): TCP on loopback, the password inline. It stays in memory: never logged,
    /// never on a command line.
    pub fn conninfo(&self) -> String {
        format!("host=127.0.0.1 port={} user=postgres dbname=postgres password={}", self.port, self.password.0)
    }

    /// Connection string for libpq (pg_basebackup, pg_rewind, a standby's `primary_conninfo`):
    /// the password comes from the cluster's `pgpass` file, so this string holds no secret.
    pub fn libpq_conninfo(&self) -> String {
        format!(
            "host=127.0.0.1 port={} user=postgres dbname=postgres passfile={}",
            self.port,
            self.passfile().display()
        )
    }

    fn passfile(&self) -> PathBuf {
        self.root.join("pgpass")
    }

    fn log_file(&self) -> PathBuf {
        self.root.join(format!("{}.log", self.id))
    }

    /// Whether this data directory is set up as a standby.
    pub fn has_standby_signal(&self) -> bool {
        self.data_dir.join("standby.signal").exists()
    }

    /// `initdb` a fresh primary with SCRAM authentication and the cluster's password, and
    /// append [`NODE_CONF`]. The password reaches initdb in a 0600 file, removed right after.
    pub async fn init(&self, tools: &PgTools) -> Result<(), ClusterError> {
        let pwfile = self.root.join("initdb-pwfile");
        write_private(&pwfile, &self.password.0)?;
        tools.chown(&pwfile)?;
        let pwfile_arg = format!("--pwfile={}", pwfile.display());
        let args = [
            "-D",
            path(&self.data_dir),
            "-U",
            "postgres",
            "-A",
            "scram-sha-256",
            &pwfile_arg,
            "-N",
            "--no-instructions",
            "--wal-segsize=1",
        ];
        let done = tools.run(&self.root, "initdb", &strings(&args)).await;
        let _ = std::fs::remove_file(&pwfile);
        done?;
        let conf = self.data_dir.join("postgresql.conf");
        let mut text = std::fs::read_to_string(&conf)?;
        text.push_str(NODE_CONF);
        std::fs::write(&conf, text)?;
        Ok(())
    }

    /// `pg_basebackup -R` from `source` into this node's data directory.
    /// `-R` writes `primary_conninfo` from this connection string: with the `passfile`, not
    /// the password.
    pub async fn base_backup(&self, tools: &PgTools, source: &PgNode) -> Result<(), ClusterError> {
        let conninfo = source.libpq_conninfo();
        let args = ["-D", path(&self.data_dir), "-d", &conninfo, "-R", "-c", "fast", "-X", "stream"];
        tools.run(&self.root, "pg_basebackup", &strings(&args)).await.map(drop)
    }

    /// `pg_ctl start`, waiting until it accepts connections. `extra` adds `-c` options.
    pub async fn start(&self, tools: &PgTools, extra: &str) -> Result<(), ClusterError> {
        let opts = format!(
            "-p {} -c cluster_name={} -c listen_addresses=127.0.0.1 -c unix_socket_directories={} {extra}",
            self.port,
            self.id,
            self.root.display()
        );
        let log = self.log_file();
        let args = ["start", "-D", path(&self.data_dir), "-l", path(&log), "-w", "-t", "60", "-o", &opts];
        tools.run(&self.root, "pg_ctl", &strings(&args)).await.map(drop)
    }

    /// `pg_ctl stop -m <mode>` (`fast` or `immediate`).
    pub async fn stop(&self, tools: &PgTools, mode: &str) -> Result<(), ClusterError> {
        let args = ["stop", "-D", path(&self.data_dir), "-m", mode, "-w", "-t", "30"];
        tools.run(&self.root, "pg_ctl", &strings(&args)).await.map(drop)
    }

    /// Whether a postmaster runs on this data directory.
    pub async fn is_running(&self, tools: &PgTools) -> bool {
        tools.run(&self.root, "pg_ctl", &strings(&["status", "-D", path(&self.data_dir)])).await.is_ok()
    }

    /// `pg_rewind -R` this (stopped) node onto `source`, making it a standby of it.
    pub async fn rewind(&self, tools: &PgTools, source: &PgNode) -> Result<(), ClusterError> {
        let source_server = format!("--source-server={}", source.libpq_conninfo());
        let args = ["-D", path(&self.data_dir), &source_server, "-R"];
        tools.run(&self.root, "pg_rewind", &strings(&args)).await.map(drop)
    }
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap_or_default()
}

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| s.to_string()).collect()
}
