//! The state file: what `dev-cluster` prints and what `ctl` reads to find the admin API.
//!
//! Default path: `$XDG_RUNTIME_DIR/replikit-dev-cluster.json`, else
//! `/tmp/replikit-dev-cluster.json`. It is removed on clean shutdown.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::Cluster;

/// The default state-file path.
pub fn default_path() -> PathBuf {
    std::env::var_os("XDG_RUNTIME_DIR")
        .map(PathBuf::from)
        .filter(|p| p.is_dir())
        .unwrap_or_else(|| PathBuf::from("/tmp"))
        .join("replikit-dev-cluster.json")
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
            pid: std::process::id(),
            data_dir: cluster.root.clone(),
        }
    }

    /// Write the state file (mode 0600: it holds the admin token).
    pub fn write(&self, path: &Path) -> std::io::Result<()> {
        use std::os::unix::fs::OpenOptionsExt;
        let text = serde_json::to_string_pretty(self).map_err(std::io::Error::other)?;
        let _ = std::fs::remove_file(path);
        let mut file = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path)?;
        std::io::Write::write_all(&mut file, text.as_bytes())
    }

    pub fn read(path: &Path) -> std::io::Result<Self> {
        let text = std::fs::read_to_string(path)?;
        serde_json::from_str(&text).map_err(std::io::Error::other)
    }

    /// Print to stdout: one JSON line with `--json`, else a human summary.
    pub fn print(&self, json: bool, took: Duration) {
        if json {
            println!("{}", serde_json::to_string(self).unwrap_or_default());
            return;
        }
        println!("replikit dev-cluster ready in {:.1} s", took.as_secs_f64());
        for (i, n) in self.nodes.iter().enumerate() {
            let role = if i == 0 { "primary" } else { "standby" };
            println!("  {}  {}  ({role}, postgres on 127.0.0.1:{})", n.node_id, n.url, n.pg_port);
        }
        println!("  admin  {}  token {}", self.admin_url, self.admin_token);
        println!("  data   {}", self.data_dir.display());
        println!("Ctrl-C stops everything and removes the data directory.");
    }
}
