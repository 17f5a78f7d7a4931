//! The shared vocabulary of the core: small types that many modules use (roles, durability, read
//! preference, read policy, conflict strategy, endpoint ids, tags) and the names they have in options.
//!
//! A leaf: it imports nothing from the rest of the core, so every module may import it without creating a
//! cycle (docs/ARCHITECTURE.md, "Layers").

use std::collections::BTreeMap;

/// Index of an endpoint in the client's configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EndpointId(pub usize);

/// An endpoint's labels (`{ dc: 'eu' }`), and a read preference's tag set: the pairs an endpoint's tags must
/// all hold for the set to match it (`{}` matches every endpoint).
pub type Tags = BTreeMap<String, String>;

/// Which endpoints a read may go to by role (writes always go to the primary).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub enum ReadMode {
    Primary,
    PrimaryPreferred,
    Replica,
    ReplicaPreferred,
    Nearest,
}

/// Where reads go: a mode, narrowed by tag sets and a staleness bound, as MongoDB's read preference
/// (server-selection spec, "Read preference"). The string form (`'nearest'`) is the mode alone.
///
/// `tag_sets` are tried in order; the first that matches an eligible endpoint decides which endpoints the read
/// may go to (`core::selection`). They never apply to `Primary` (`options::parse_read_preference` rejects a
/// non-empty set with it, selection ignores them). `max_staleness_ms` overrides the client's `maxStalenessMs`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadPreference {
    pub mode: ReadMode,
    pub tag_sets: Vec<Tags>,
    pub max_staleness_ms: Option<u64>,
}

impl From<ReadMode> for ReadPreference {
    fn from(mode: ReadMode) -> Self {
        ReadPreference { mode, tag_sets: Vec::new(), max_staleness_ms: None }
    }
}

/// As the app wrote it: the mode's name when that is all there is, else `{ mode, tagSets, maxStalenessMs }`.
impl serde::Serialize for ReadPreference {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        if self.tag_sets.is_empty() && self.max_staleness_ms.is_none() {
            return self.mode.serialize(serializer);
        }
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("mode", &self.mode)?;
        if !self.tag_sets.is_empty() {
            map.serialize_entry("tagSets", &self.tag_sets)?;
        }
        if let Some(ms) = self.max_staleness_ms {
            map.serialize_entry("maxStalenessMs", &ms)?;
        }
        map.end()
    }
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
    /// Node: the outbox in files under `cache.path` (queued writes survive the process); documents in memory.
    File,
    None,
}

impl StoreKind {
    /// Whether queued writes outlive the process (and so a failure of the store matters for their order).
    pub fn durable(self) -> bool {
        matches!(self, StoreKind::IndexedDb | StoreKind::File)
    }
}

pub(crate) const STORES: &[(&str, StoreKind)] = &[
    ("indexeddb", StoreKind::IndexedDb),
    ("memory", StoreKind::Memory),
    ("file", StoreKind::File),
    ("none", StoreKind::None),
];

/// The string forms of a read preference: its modes.
pub(crate) const READ_PREFERENCES: &[(&str, ReadMode)] = &[
    ("primary", ReadMode::Primary),
    ("primaryPreferred", ReadMode::PrimaryPreferred),
    ("replica", ReadMode::Replica),
    ("replicaPreferred", ReadMode::ReplicaPreferred),
    ("nearest", ReadMode::Nearest),
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
