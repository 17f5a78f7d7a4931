//! Client options: parsed from the JSON object given to `createClient`, validated once, then immutable.
//!
//! Defaults follow the MongoDB drivers' SDAM and server-selection specs where one exists (a 15 ms latency
//! window, a 30 s staleness bound) and are documented in `js/index.d.ts`. Every rejection names the option by
//! its JSON path (`health.intervalMs`), so a typo in an app's config is found at start-up, not at the first
//! failover.
//!
//! This file holds what a configuration is (the option types, their defaults and bounds); `parse` reads and
//! validates the JSON (`Config::from_json`), `read_preference` the read preference (the client's and a call's).

use std::collections::BTreeMap;

use super::error::Error;
pub use super::types::{
    ConflictStrategy, Consistency, Durability, ProtocolKind, ReadMode, ReadPolicy, ReadPreference, Role, StoreKind,
    Tags, TopologyKind,
};

mod parse;
mod read_preference;

pub use read_preference::parse_read_preference;

/// Health-check settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthOptions {
    pub interval_ms: u64,
    pub timeout_ms: u64,
    pub failure_threshold: u32,
}

impl Default for HealthOptions {
    fn default() -> Self {
        HealthOptions { interval_ms: 1000, timeout_ms: 1000, failure_threshold: 2 }
    }
}

/// Retry settings: attempts per operation and full-jitter backoff bounds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryOptions {
    pub max_attempts: u32,
    pub base_delay_ms: u64,
    pub max_delay_ms: u64,
}

impl Default for RetryOptions {
    fn default() -> Self {
        RetryOptions { max_attempts: 3, base_delay_ms: 25, max_delay_ms: 1000 }
    }
}

/// One configured endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointConfig {
    /// Normalised base URL, without a trailing slash.
    pub url: String,
    pub role: Option<Role>,
    /// Labels a read preference's tag sets match (`{ dc: 'eu' }`); empty for the `primary`/`replicas` shorthand.
    pub tags: Tags,
}

/// Local cache settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheOptions {
    /// `None`: the environment's default (IndexedDB in browsers, memory in Node).
    pub store: Option<StoreKind>,
    /// The IndexedDB database name (and the tabs' BroadcastChannel and lock names).
    pub name: String,
    pub max_entries: usize,
    /// Entries older than this are revalidated before `cache-first` uses them.
    pub ttl_ms: Option<u64>,
    /// The folder of the `file` store (Node): one file per queued write.
    pub path: Option<String>,
}

impl Default for CacheOptions {
    fn default() -> Self {
        CacheOptions { store: None, name: "replikit".into(), max_entries: 1000, ttl_ms: None, path: None }
    }
}

/// Validated client configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub topology: TopologyKind,
    pub protocol: ProtocolKind,
    /// The CouchDB database the collections live in (CouchDB protocol only).
    pub database: Option<String>,
    pub endpoints: Vec<EndpointConfig>,
    pub read_preference: ReadPreference,
    pub consistency: Consistency,
    pub max_staleness_ms: u64,
    pub health: HealthOptions,
    pub request_timeout_ms: u64,
    pub primary_wait_ms: u64,
    pub durability: Durability,
    pub retry: RetryOptions,
    pub headers: BTreeMap<String, String>,
    pub cache: CacheOptions,
    pub read_policy: ReadPolicy,
    /// `None`: the environment's default (queue in browsers, not in Node).
    pub queue_writes: Option<bool>,
    /// `Custom` when the app passed a function (the wasm layer keeps it).
    pub conflict: ConflictStrategy,
}

/// Replicas reporting more lag than this are not read from (`maxStalenessMs`).
pub const DEFAULT_MAX_STALENESS_MS: u64 = 30_000;
/// How long one request may take (`requestTimeoutMs`).
pub const DEFAULT_REQUEST_TIMEOUT_MS: u64 = 5000;
/// How long a write waits for a usable primary (`primaryWaitMs`).
pub const DEFAULT_PRIMARY_WAIT_MS: u64 = 5000;
/// Upper bound for every duration option: one hour. Longer is a unit mistake (seconds vs milliseconds).
pub const MAX_DURATION_MS: u64 = 3_600_000;

/// A duration option's value (`default` when absent), checked to be between `min` and [`MAX_DURATION_MS`].
fn ranged(what: &str, value: Option<u64>, default: u64, min: u64) -> Result<u64, Error> {
    let v = value.unwrap_or(default);
    if v < min || v > MAX_DURATION_MS {
        return Err(Error::invalid(what, format!("must be between {min} and {MAX_DURATION_MS} ms, got {v}")));
    }
    Ok(v)
}
