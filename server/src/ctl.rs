//! `replikit-server ctl`: operator controls from the command line. Reads the state file
//! written by `dev-cluster` and calls its admin API; prints the JSON answer.

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use crate::client;
use crate::cluster::state::ClusterInfo;

/// Run `action` (`status`, `kill`, `start`, `promote`, `rejoin`, `hang`, `unhang`,
/// `auto-failover`) for `node` (for `auto-failover`: `on` or `off`). Returns the exit code.
pub fn run(state_file: &Path, action: &str, node: Option<&str>) -> i32 {
    let info = match ClusterInfo::read(state_file) {
        Ok(info) => info,
        Err(e) => {
            eprintln!(
                "cannot read state file {}: {e} (is dev-cluster running?){}",
                state_file.display(),
                others(state_file)
            );
            return 2;
        }
    };
    let (method, path, body) = match (action, node) {
        ("status", _) => ("GET", "/admin/status".to_string(), None),
        ("auto-failover", Some(v @ ("on" | "off"))) => {
            ("POST", "/admin/auto-failover".to_string(), Some(format!("{{\"enabled\": {}}}", v == "on")))
        }
        ("auto-failover", _) => {
            eprintln!("usage: ctl auto-failover on|off");
            return 2;
        }
        (action, Some(node)) => ("POST", format!("/admin/nodes/{node}/{action}"), None),
        (action, None) => {
            eprintln!("usage: ctl {action} <node>");
            return 2;
        }
    };
    let auth = format!("Bearer {}", info.admin_token);
    let url = format!("{}{path}", info.admin_url);
    let headers = [("Authorization", auth.as_str()), ("Content-Type", "application/json")];
    match client::request(method, &url, &headers, body.as_deref().map(str::as_bytes), Duration::from_secs(180)) {
        Ok(response) => {
            let json = response.json();
            // A closed stdout (e.g. `| head`) is not worth a panic.
            let text = serde_json::to_string_pretty(&json).unwrap_or_default();
            let _ = writeln!(std::io::stdout(), "{text}");
            if response.status < 300 {
                0
            } else {
                1
            }
        }
        Err(e) => {
            eprintln!("admin API at {} unreachable: {e}", info.admin_url);
            1
        }
    }
}

/// The other state files beside `state_file`, as a hint (a cluster on another port).
fn others(state_file: &Path) -> String {
    let Some(dir) = state_file.parent() else { return String::new() };
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p != state_file && p.extension().is_some_and(|x| x == "json"))
        .map(|p| p.display().to_string())
        .collect();
    names.sort();
    if names.is_empty() {
        String::new()
    } else {
        format!("; other state files there (pass one with --state-file): {}", names.join(", "))
    }
}
