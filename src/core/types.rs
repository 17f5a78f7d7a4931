//! The shared vocabulary of the core: small types that many modules use (roles, durability, read
//! preference, read policy, conflict strategy, endpoint ids) and the names they have in options.
//!
//! A leaf: it imports nothing from the rest of the core, so every module may import it without creating a
//! cycle (docs/ARCHITECTURE.md, "Layers").

/// Index of an endpoint in the client's configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EndpointId(pub usize);

/// Where reads go (writes always go to the primary).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub enum ReadPreference {
    Primary,
    PrimaryPreferred,
    Replica,
    ReplicaPreferred,
    Nearest,
}

/// Which reads a client accepts after its own writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Consistency {
    /// Read-your-writes: reads carry the client's highest written position.
    Session,
    /// Any replica within the staleness bound will do.
    Eventual,
}

/// How far a write must travel before it is acknowledged (protocol header `X-Replikit-Durability`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Durability {
    Local,
    Quorum,
    Visible,
}

/// The role an endpoint is configured with; the health checks have the last word.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Role {
    Primary,
    Replica,
}

/// How the cluster is organised (docs/ARCHITECTURE.md, "Topologies").
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum TopologyKind {
    /// One primary takes the writes; replicas serve reads (PostgreSQL streaming replication behind the gateway).
    PrimaryReplica,
    /// Every node takes writes and the nodes replicate to each other (CouchDB, PouchDB Server).
    MultiPrimary,
}

/// The protocol the endpoints speak (one adapter each, `core::protocol`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub enum ProtocolKind {
    /// The Replikit gateway, protocol v1 (docs/PROTOCOL.md).
    Replikit,
    /// CouchDB's document API.
    #[serde(rename = "couchdb")]
    CouchDb,
}

pub(crate) const TOPOLOGIES: &[(&str, TopologyKind)] =
    &[("primary-replica", TopologyKind::PrimaryReplica), ("multi-primary", TopologyKind::MultiPrimary)];
pub(crate) const PROTOCOLS: &[(&str, ProtocolKind)] =
    &[("replikit", ProtocolKind::Replikit), ("couchdb", ProtocolKind::CouchDb)];

/// Where the local cache lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub enum StoreKind {
    #[serde(rename = "indexeddb")]
    IndexedDb,
    Memory,
    None,
}

pub(crate) const STORES: &[(&str, StoreKind)] =
    &[("indexeddb", StoreKind::IndexedDb), ("memory", StoreKind::Memory), ("none", StoreKind::None)];

pub(crate) const READ_PREFERENCES: &[(&str, ReadPreference)] = &[
    ("primary", ReadPreference::Primary),
    ("primaryPreferred", ReadPreference::PrimaryPreferred),
    ("replica", ReadPreference::Replica),
    ("replicaPreferred", ReadPreference::ReplicaPreferred),
    ("nearest", ReadPreference::Nearest),
];

pub(crate) const CONSISTENCIES: &[(&str, Consistency)] =
    &[("session", Consistency::Session), ("eventual", Consistency::Eventual)];

pub(crate) const DURABILITIES: &[(&str, Durability)] =
    &[("local", Durability::Local), ("quorum", Durability::Quorum), ("visible", Durability::Visible)];

pub(crate) const ROLES: &[(&str, Role)] = &[("primary", Role::Primary), ("replica", Role::Replica)];

/// How a read uses the cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ReadPolicy {
    NetworkFirst,
    CacheFirst,
    StaleWhileRevalidate,
    NetworkOnly,
    CacheOnly,
}

pub const READ_POLICIES: &[(&str, ReadPolicy)] = &[
    ("network-first", ReadPolicy::NetworkFirst),
    ("cache-first", ReadPolicy::CacheFirst),
    ("stale-while-revalidate", ReadPolicy::StaleWhileRevalidate),
    ("network-only", ReadPolicy::NetworkOnly),
    ("cache-only", ReadPolicy::CacheOnly),
];

/// How conflicts found while syncing are settled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConflictStrategy {
    ServerWins,
    ClientWins,
    LastWriterWins,
    /// The app's function decides.
    Custom,
}

pub const CONFLICT_STRATEGIES: &[(&str, ConflictStrategy)] = &[
    ("server-wins", ConflictStrategy::ServerWins),
    ("client-wins", ConflictStrategy::ClientWins),
    ("last-writer-wins", ConflictStrategy::LastWriterWins),
];
