//! replikit-server: the reference backend for Replikit.
//!
//! - [`gateway`]: one stateless HTTP gateway per PostgreSQL node, speaking protocol v1
//!   (docs/PROTOCOL.md): CRUD, health, positions, idempotent writes.
//! - [`cluster`]: `dev-cluster`, a supervisor that runs a PostgreSQL 15 primary and hot
//!   standbys plus their gateways, with operator controls (kill, start, promote, rejoin,
//!   hang) and an optional failover watchdog.
//! - [`ctl`]: the CLI side of the operator controls, talking to the admin API.
//! - [`client`]: a tiny blocking HTTP/1.1 client for `ctl` and the tests.
//! - [`secrets`]: where `serve` takes its token and connection string from (files or the
//!   environment rather than argv).
//! - [`json`]: JSON with exact numbers: the rule for numbers clients send, and a parser that
//!   sees every literal.

/// Log a line to stderr for the dev cluster, ignoring a closed stderr (never panics).
#[macro_export]
macro_rules! log {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), "replikit dev-cluster: {}", format_args!($($arg)*));
    }};
}

pub mod client;
pub mod cluster;
pub mod ctl;
pub mod db;
pub mod error;
pub mod gateway;
pub mod json;
pub mod position;
pub mod secrets;
