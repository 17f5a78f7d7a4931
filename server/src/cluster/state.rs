//! The state file: what `dev-cluster` prints with `--json`, what `ctl` reads to find the admin
//! API, and where a client finds the cluster's secrets (the gateways' bearer token, the
//! PostgreSQL password, the admin token). Mode 0600; removed on a clean shutdown.
//!
//! Default path: `<dir>/dev-cluster-<port>.json`, keyed by the gateway port of n0 (two clusters
//! on one machine need different ports anyway; `--port 0` keys it by the process id), where
//! `<dir>` is per user: `$XDG_RUNTIME_DIR/replikit`, else `<temp dir>/replikit-<uid>`, created
//! mode 0700 and refused when another user owns it. Why: one fixed file in /tmp made two users'
//! (or two projects') clusters overwrite each other's state, and let another user plant it.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::Cluster;

/// The per-user directory of state files, created (mode 0700) when missing; an error when it
/// exists but belongs to another user, is a symlink, or others can read it and it is not ours
/// to fix.
pub fn default_dir() -> std::io::Result<PathBuf> {
    use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
    // SAFETY: geteuid has no preconditions and cannot fail.
    let uid = unsafe { libc::geteuid() };
    let dir = match std::env::var_os("XDG_RUNTIME_DIR").map(PathBuf::from).filter(|p| p.is_dir()) {
        Some(runtime) => runtime.join("replikit"),
        None => std::env::temp_dir().join(format!("replikit-{uid}")),
    };
    match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e),
    }
    let meta = std::fs::symlink_metadata(&dir)?;
    if !meta.is_dir() || meta.uid() != uid {
        return Err(std::io::Error::other(format!(
            "{} is not a directory of yours (uid {uid}); remove it or pass --state-file",
            dir.display()
        )));
    }
    if meta.mode() & 0o077 != 0 {
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))?;
    }
    Ok(dir)
}

/// The default state file of the cluster whose n0 gateway is on `port` (0: keyed by this
/// process's id, since the port is not known yet).
pub fn default_path(port: u16) -> std::io::Result<PathBuf> {
    let key = if port == 0 { format!("pid{}", std::process::id()) } else { port.to_string() };
    Ok(default_dir()?.join(format!("dev-cluster-{key}.json")))
}

/// One node as published.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeInfo {
    pub node_id: String,
    pub url: String,
    pub pg_port: u16,
}

/// Everything a client or `ctl` needs (written as one JSON object).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterInfo {
    /// Gateway URLs, n0 (the initial primary) first.
    pub endpoints: Vec<String>,
    pub nodes: Vec<NodeInfo>,
    pub admin_url: String,
    pub admin_token: String,
    /// What every gateway requires: `Authorization: Bearer <gatewayToken>`.
    pub gateway_token: String,
    /// The browser origins the gateways allow (`--cors-origin`).
    pub cors_origins: Vec<String>,
    /// PostgreSQL user and password (SCRAM) on every node.
    pub pg_user: String,
    pub pg_password: String,
    pub pid: u32,
    pub data_dir: PathBuf,
}

impl ClusterInfo {
    pub async fn collect(cluster: &Cluster, admin: SocketAddr) -> Self {
        let inner = cluster.inner.lock().await;
        let nodes: Vec<NodeInfo> = inner
            .nodes
            .iter()
            .map(|n| NodeInfo { node_id: n.pg.id.clone(), url: n.url(), pg_port: n.pg.port })
            .collect();
        ClusterInfo {
            endpoints: nodes.iter().map(|n| n.url.clone()).collect(),
            nodes,
            admin_url: format!("http://{admin}"),
            admin_token: cluster.admin_token.clone(),
            gateway_token: cluster.gateway_access.token.clone(),
            cors_origins: cluster.gateway_access.cors_origins.clone(),
            pg_user: "postgres".into(),
            pg_password: cluster.pg_password.0.clone(),
            pid: std::process::id(),
            data_dir: cluster.root.clone(),
        }
    }

    /// Write the state file (mode 0600: it holds the secrets).
    pub fn write(&self, path: &Path) -> std::io::Result<()> {
        let text = serde_json::to_string_pretty(self).map_err(std::io::Error::other)?;
        let _ = std::fs::remove_file(path);
        super::pg::write_private(path, &text)
    }

    pub fn read(path: &Path) -> std::io::Result<Self> {
        let text = std::fs::read_to_string(path)?;
        serde_json::from_str(&text).map_err(std::io::Error::other)
    }

    /// Print to stdout: with `--json`, one JSON line, the state file's object (secrets
    /// included: it is for the program that started the cluster and reads its stdout through
    /// a pipe); else a summary for a terminal, which names the file holding the secrets and
    /// never shows them.
    pub fn print(&self, json: bool, took: Duration, state_file: &Path) {
        if json {
            println!("{}", serde_json::to_string(self).unwrap_or_default());
            return;
        }
        println!("{}", self.summary(took, state_file));
    }

    /// The terminal summary (no secret in it).
    pub fn summary(&self, took: Duration, state_file: &Path) -> String {
        let mut out = format!("replikit dev-cluster ready in {:.1} s\n", took.as_secs_f64());
        for (i, n) in self.nodes.iter().enumerate() {
            let role = if i == 0 { "primary" } else { "standby" };
            out += &format!("  {}  {}  ({role}; PostgreSQL on 127.0.0.1:{})\n", n.node_id, n.url, n.pg_port);
        }
        out += &format!("  admin  {}  (the admin API: --admin-port, default --port + 100)\n", self.admin_url);
        out += &format!("  state  {}  (mode 0600)\n", state_file.display());
        out += "         holds gatewayToken (every request: Authorization: Bearer <gatewayToken>),\n";
        out += &format!("         pgPassword (PostgreSQL user {}, SCRAM) and adminToken\n", self.pg_user);
        let origins =
            if self.cors_origins.is_empty() { "none (--cors-origin)".into() } else { self.cors_origins.join(", ") };
        out += &format!("  browser origins allowed: {origins}\n");
        out += &format!("  data   {}\n", self.data_dir.display());
        out += &format!("Operator controls: replikit-server ctl --state-file {} status|kill|start|promote|rejoin|hang|unhang <node>\n", state_file.display());
        out += "Ctrl-C stops everything and removes the data directory.";
        out
    }
}
