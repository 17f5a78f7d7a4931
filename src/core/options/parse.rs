//! Reads the options object given to `createClient` into a [`Config`], validating every field and naming a
//! mistake by its JSON path. The types and their defaults are in the parent module.

use std::collections::BTreeMap;

use serde_json::Value;

use super::super::error::Error;
use super::super::fields::Fields;
use super::super::types::{
    CONFLICT_STRATEGIES, CONSISTENCIES, DURABILITIES, PROTOCOLS, READ_POLICIES, ROLES, STORES, TOPOLOGIES,
};
use super::read_preference::{parse_read_preference, parse_tags};
use super::{
    ranged, CacheOptions, Config, ConflictStrategy, Consistency, Durability, EndpointConfig, HealthOptions,
    ProtocolKind, ReadMode, ReadPolicy, RetryOptions, Role, StoreKind, Tags, TopologyKind, DEFAULT_MAX_STALENESS_MS,
    DEFAULT_PRIMARY_WAIT_MS, DEFAULT_REQUEST_TIMEOUT_MS,
};

impl Config {
    /// Parses and validates the options object given to `createClient`.
    pub fn from_json(options: Value) -> Result<Config, Error> {
        let mut f = Fields::new(&options, "")?;
        let topology = f.one_of("topology", TOPOLOGIES)?.unwrap_or(TopologyKind::PrimaryReplica);
        let protocol = f.one_of("protocol", PROTOCOLS)?.unwrap_or(match topology {
            TopologyKind::PrimaryReplica => ProtocolKind::Replikit,
            TopologyKind::MultiPrimary => ProtocolKind::CouchDb,
        });
        let database = f.string("database")?;
        let multi = topology == TopologyKind::MultiPrimary;
        match (topology, protocol) {
            (TopologyKind::PrimaryReplica, ProtocolKind::CouchDb) => {
                return Err(Error::invalid(
                    "protocol",
                    "\"couchdb\" servers are multi-primary: add topology: 'multi-primary'",
                ))
            }
            (TopologyKind::MultiPrimary, ProtocolKind::Replikit) => {
                return Err(Error::invalid(
                    "protocol",
                    "the Replikit gateway is primary-replica; multi-primary needs protocol: 'couchdb'",
                ))
            }
            _ => {}
        }
        match (&database, protocol) {
            (None, ProtocolKind::CouchDb) => {
                return Err(Error::invalid("database", "is required with protocol 'couchdb'"))
            }
            (Some(_), ProtocolKind::Replikit) => {
                return Err(Error::invalid(
                    "database",
                    "applies only to protocol 'couchdb' (the gateway serves one database)",
                ))
            }
            (Some(db), _) => check_database(db)?,
            _ => {}
        }
        let endpoints = endpoints(&mut f)?;
        if multi {
            if options.get("primary").is_some() || options.get("replicas").is_some() {
                return Err(Error::invalid(
                    "endpoints",
                    "a multi-primary cluster has no primary/replicas: list its nodes in `endpoints`",
                ));
            }
            if let Some(i) = endpoints.iter().position(|e| e.role.is_some()) {
                return Err(Error::invalid(
                    format!("endpoints[{i}].role"),
                    "does not apply: every multi-primary node takes writes",
                ));
            }
        }
        let health = match f.object("health")? {
            Some(mut h) => {
                let d = HealthOptions::default();
                let health = HealthOptions {
                    interval_ms: ranged("health.intervalMs", h.u64("intervalMs")?, d.interval_ms, 50)?,
                    timeout_ms: ranged("health.timeoutMs", h.u64("timeoutMs")?, d.timeout_ms, 10)?,
                    failure_threshold: h.u32("failureThreshold")?.unwrap_or(d.failure_threshold),
                };
                h.finish()?;
                health
            }
            None => HealthOptions::default(),
        };
        if !(1..=100).contains(&health.failure_threshold) {
            return Err(Error::invalid("health.failureThreshold", "must be between 1 and 100"));
        }
        let retry = match f.object("retry")? {
            Some(mut r) => {
                let d = RetryOptions::default();
                let retry = RetryOptions {
                    max_attempts: r.u32("maxAttempts")?.unwrap_or(d.max_attempts),
                    base_delay_ms: ranged("retry.baseDelayMs", r.u64("baseDelayMs")?, d.base_delay_ms, 0)?,
                    max_delay_ms: ranged("retry.maxDelayMs", r.u64("maxDelayMs")?, d.max_delay_ms, 0)?,
                };
                r.finish()?;
                retry
            }
            None => RetryOptions::default(),
        };
        if !(1..=20).contains(&retry.max_attempts) {
            return Err(Error::invalid("retry.maxAttempts", "must be between 1 and 20"));
        }
        if retry.base_delay_ms > retry.max_delay_ms {
            return Err(Error::invalid("retry.baseDelayMs", "must not exceed retry.maxDelayMs"));
        }
        let mut headers = BTreeMap::new();
        if let Some(mut h) = f.object("headers")? {
            for (name, value) in h.map_entries() {
                let Value::String(value) = value else {
                    return Err(Error::invalid(format!("headers.{name}"), "must be a string"));
                };
                check_header(name, value)?;
                headers.insert(name.clone(), value.clone());
            }
            h.finish()?;
        }
        let cache = match f.object("cache")? {
            Some(mut c) => {
                let d = CacheOptions::default();
                let name = c.string("name")?.unwrap_or(d.name);
                if name.is_empty() || name.len() > 100 {
                    return Err(Error::invalid("cache.name", "must be 1 to 100 characters"));
                }
                let max_entries = c.u64("maxEntries")?.unwrap_or(d.max_entries as u64);
                if !(1..=1_000_000).contains(&max_entries) {
                    return Err(Error::invalid("cache.maxEntries", "must be between 1 and 1000000"));
                }
                let options = CacheOptions {
                    store: c.one_of("store", STORES)?,
                    name,
                    max_entries: max_entries as usize,
                    ttl_ms: c.u64("ttlMs")?,
                    path: c.string("path")?,
                };
                c.finish()?;
                match (&options.path, options.store) {
                    (None, Some(StoreKind::File)) => {
                        return Err(Error::invalid(
                            "cache.path",
                            "is required with store 'file' (a folder for queued writes)",
                        ))
                    }
                    (Some(_), store) if store != Some(StoreKind::File) => {
                        return Err(Error::invalid("cache.path", "applies only to store 'file'"))
                    }
                    (Some(p), _) if p.is_empty() || p.len() > 4096 || p.contains('\0') => {
                        return Err(Error::invalid("cache.path", "must be a folder path of 1 to 4096 characters"))
                    }
                    _ => {}
                }
                options
            }
            None => CacheOptions::default(),
        };
        let queue_writes = match f.object("offline")? {
            Some(mut o) => {
                let q = o.bool("queueWrites")?;
                o.finish()?;
                q
            }
            None => None,
        };
        let read_preference =
            f.get("readPreference").map(|v| parse_read_preference(v, "readPreference")).transpose()?;
        let durability = f.one_of("durability", DURABILITIES)?;
        if multi {
            if read_preference.as_ref().is_some_and(|p| p.mode != ReadMode::Nearest) {
                return Err(Error::invalid(
                    "readPreference",
                    "a multi-primary cluster has no replicas: reads go to the nearest node ('nearest')",
                ));
            }
            if read_preference.as_ref().is_some_and(|p| p.tag_sets.iter().any(|set| !set.is_empty())) {
                return Err(Error::invalid(
                    "readPreference.tagSets",
                    "do not apply to a multi-primary cluster: reads go to the session's node, else the nearest one",
                ));
            }
            if durability.is_some() {
                return Err(Error::invalid(
                    "durability",
                    "does not apply to protocol 'couchdb' (a write is acknowledged by the node that took it)",
                ));
            }
        }
        let default_mode = if multi { ReadMode::Nearest } else { ReadMode::ReplicaPreferred };
        let config = Config {
            topology,
            protocol,
            database,
            endpoints,
            read_preference: read_preference.unwrap_or_else(|| default_mode.into()),
            consistency: f.one_of("consistency", CONSISTENCIES)?.unwrap_or(Consistency::Session),
            max_staleness_ms: ranged("maxStalenessMs", f.u64("maxStalenessMs")?, DEFAULT_MAX_STALENESS_MS, 0)?,
            health,
            request_timeout_ms: ranged("requestTimeoutMs", f.u64("requestTimeoutMs")?, DEFAULT_REQUEST_TIMEOUT_MS, 10)?,
            primary_wait_ms: ranged("primaryWaitMs", f.u64("primaryWaitMs")?, DEFAULT_PRIMARY_WAIT_MS, 0)?,
            durability: durability.unwrap_or(if multi { Durability::Local } else { Durability::Quorum }),
            retry,
            headers,
            cache,
            read_policy: f.one_of("readPolicy", READ_POLICIES)?.unwrap_or(ReadPolicy::NetworkFirst),
            queue_writes,
            conflict: f.one_of("conflict", CONFLICT_STRATEGIES)?.unwrap_or(ConflictStrategy::ServerWins),
        };
        f.finish()?;
        Ok(config)
    }
}

fn endpoints(f: &mut Fields) -> Result<Vec<EndpointConfig>, Error> {
    let list = f.array("endpoints")?;
    let primary = f.string("primary")?;
    let replicas = f.array("replicas")?;
    let mut raw: Vec<(String, Option<Role>, Tags, String)> = Vec::new();
    if let Some(list) = list {
        if primary.is_some() || replicas.is_some() {
            return Err(Error::invalid(
                "endpoints",
                "give either `endpoints` or the `primary`/`replicas` shorthand, not both",
            ));
        }
        for (i, e) in list.iter().enumerate() {
            let what = format!("endpoints[{i}]");
            let mut ef = Fields::new(e, &what)?;
            let url = ef.string("url")?.ok_or_else(|| Error::invalid(format!("{what}.url"), "is required"))?;
            let role = ef.one_of("role", ROLES)?;
            let tags = ef.get("tags").map(|t| parse_tags(t, &format!("{what}.tags"))).transpose()?;
            ef.finish()?;
            raw.push((url, role, tags.unwrap_or_default(), format!("{what}.url")));
        }
    } else {
        if let Some(p) = primary {
            raw.push((p, Some(Role::Primary), Tags::new(), "primary".to_string()));
        }
        for (i, r) in replicas.map(|r| r.as_slice()).unwrap_or_default().iter().enumerate() {
            let what = format!("replicas[{i}]");
            let url = r.as_str().ok_or_else(|| Error::invalid(what.clone(), "must be a URL string"))?;
            raw.push((url.to_string(), Some(Role::Replica), Tags::new(), what));
        }
    }
    if raw.is_empty() {
        return Err(Error::invalid("endpoints", "at least one endpoint is required"));
    }
    if raw.len() > 64 {
        return Err(Error::invalid("endpoints", "at most 64 endpoints are supported"));
    }
    let mut out: Vec<EndpointConfig> = Vec::with_capacity(raw.len());
    for (url, role, tags, what) in raw {
        let url = normalize_url(&what, &url)?;
        if out.iter().any(|e| e.url == url) {
            return Err(Error::invalid(what, format!("duplicate endpoint {url}")));
        }
        out.push(EndpointConfig { url, role, tags });
    }
    Ok(out)
}

/// Accepts `http://host[:port][/base]` and `https://...`; returns it without a trailing slash.
fn normalize_url(what: &str, url: &str) -> Result<String, Error> {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
        .ok_or_else(|| Error::invalid(what, format!("{url:?} is not an http:// or https:// URL")))?;
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    if host.is_empty() || host.contains('@') {
        return Err(Error::invalid(what, format!("{url:?} has no host (or carries credentials)")));
    }
    if url.contains(['?', '#']) || url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(Error::invalid(what, format!("{url:?} must not contain a query, fragment or spaces")));
    }
    Ok(url.trim_end_matches('/').to_string())
}

/// CouchDB's database-name rule: a lowercase letter, then lowercase letters, digits and `_$()+-/`.
fn check_database(name: &str) -> Result<(), Error> {
    let ok = name.len() <= 238
        && name.bytes().next().is_some_and(|b| b.is_ascii_lowercase())
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"_$()+-/".contains(&b));
    if !ok {
        return Err(Error::invalid(
            "database",
            format!("{name:?} must start with a lowercase letter and contain only a-z, 0-9 and _$()+-/"),
        ));
    }
    Ok(())
}

fn check_header(name: &str, value: &str) -> Result<(), Error> {
    let token = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c);
    if name.is_empty() || !name.chars().all(token) {
        return Err(Error::invalid(format!("headers.{name}"), "is not a valid header name"));
    }
    if value.chars().any(|c| c == '\r' || c == '\n' || c == '\0') {
        return Err(Error::invalid(format!("headers.{name}"), "value must not contain CR, LF or NUL"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::{ReadPreference, StoreKind};
    use super::*;
    use serde_json::json;

    fn err(v: Value) -> (String, String) {
        match Config::from_json(v).unwrap_err() {
            Error::InvalidArgument { what, message } => (what, message),
            other => panic!("expected invalid_argument, got {other:?}"),
        }
    }

    #[test]
    fn shorthand_fills_defaults() {
        let c = Config::from_json(json!({"primary": "http://127.0.0.1:7100/", "replicas": ["http://127.0.0.1:7101"]}))
            .unwrap();
        assert_eq!(c.endpoints[0].url, "http://127.0.0.1:7100");
        assert_eq!(c.endpoints[0].role, Some(Role::Primary));
        assert_eq!(c.endpoints[1].role, Some(Role::Replica));
        assert_eq!(c.read_preference, ReadMode::ReplicaPreferred.into());
        assert_eq!(c.consistency, Consistency::Session);
        assert_eq!(c.health, HealthOptions { interval_ms: 1000, timeout_ms: 1000, failure_threshold: 2 });
        assert_eq!(c.durability, Durability::Quorum);
        assert_eq!(c.max_staleness_ms, 30_000);
        assert_eq!(c.read_policy, ReadPolicy::NetworkFirst);
        assert_eq!(c.conflict, ConflictStrategy::ServerWins);
        assert_eq!((c.cache.store, c.cache.max_entries, c.queue_writes), (None, 1000, None));
    }

    #[test]
    fn a_wrong_nested_option_is_named_by_its_path() {
        let (what, msg) = err(json!({"primary": "http://a", "health": {"intervalMs": -5}}));
        assert_eq!(what, "health.intervalMs");
        assert!(msg.contains("-5"), "{msg}");
        let (what, _) = err(json!({"primary": "http://a", "readPreference": "secondary"}));
        assert_eq!(what, "readPreference");
        let (what, msg) = err(json!({"primary": "http://a", "helth": {}}));
        assert_eq!(what, "helth");
        assert!(msg.contains("unknown option"), "{msg}");
        assert_eq!(err(json!({"primary": "http://a", "retry": {"maxAttempts": 1.5}})).0, "retry.maxAttempts");
        assert_eq!(err(json!({"primary": "http://a", "health": {"intervalMs": 100, "x": 1}})).0, "health.x");
    }

    #[test]
    fn endpoints_are_checked() {
        assert_eq!(err(json!({})).0, "endpoints");
        assert_eq!(err(json!({"endpoints": [{"url": "ftp://x"}]})).0, "endpoints[0].url");
        assert_eq!(err(json!({"primary": "http://a", "replicas": ["http://a/"]})).0, "replicas[0]");
        assert_eq!(err(json!({"endpoints": [], "primary": "http://a"})).0, "endpoints");
        assert_eq!(err(json!({"primary": "http://user:pw@a"})).0, "primary");
        assert_eq!(err(json!("http://a")).0, "options");
    }

    #[test]
    fn cache_and_offline_options_are_checked() {
        let c = Config::from_json(
            json!({"primary": "http://a", "cache": {"store": "memory", "maxEntries": 10, "ttlMs": 500},
            "readPolicy": "stale-while-revalidate", "offline": {"queueWrites": true}, "conflict": "last-writer-wins"}),
        )
        .unwrap();
        assert_eq!((c.cache.store, c.cache.max_entries, c.cache.ttl_ms), (Some(StoreKind::Memory), 10, Some(500)));
        assert_eq!((c.read_policy, c.queue_writes), (ReadPolicy::StaleWhileRevalidate, Some(true)));
        assert_eq!(c.conflict, ConflictStrategy::LastWriterWins);
        assert_eq!(err(json!({"primary": "http://a", "cache": {"store": "disk"}})).0, "cache.store");
        assert_eq!(err(json!({"primary": "http://a", "cache": {"store": "file"}})).0, "cache.path");
        assert_eq!(err(json!({"primary": "http://a", "cache": {"path": "/tmp/x"}})).0, "cache.path");
        assert_eq!(err(json!({"primary": "http://a", "cache": {"store": "file", "path": ""}})).0, "cache.path");
        let c = Config::from_json(json!({"primary": "http://a", "cache": {"store": "file", "path": "./q"}})).unwrap();
        assert_eq!((c.cache.store, c.cache.path.as_deref()), (Some(StoreKind::File), Some("./q")));
        assert_eq!(err(json!({"primary": "http://a", "cache": {"maxEntries": 0}})).0, "cache.maxEntries");
        assert_eq!(err(json!({"primary": "http://a", "offline": {"queueWrites": "yes"}})).0, "offline.queueWrites");
        assert_eq!(err(json!({"primary": "http://a", "readPolicy": "cache"})).0, "readPolicy");
    }

    #[test]
    fn multi_primary_needs_couchdb_a_database_and_no_roles() {
        let c = Config::from_json(json!({"topology": "multi-primary", "protocol": "couchdb", "database": "app",
            "endpoints": [{"url": "http://a"}, {"url": "http://b"}]}))
        .unwrap();
        assert_eq!(
            (c.topology, c.protocol, c.database.as_deref()),
            (TopologyKind::MultiPrimary, ProtocolKind::CouchDb, Some("app"))
        );
        assert_eq!(c.read_preference, ReadMode::Nearest.into());
        let base = || json!({"topology": "multi-primary", "database": "app", "endpoints": [{"url": "http://a"}]});
        assert_eq!(Config::from_json(base()).unwrap().protocol, ProtocolKind::CouchDb, "couchdb is the default");
        let with = |k: &str, v: Value| {
            let mut o = base();
            o[k] = v;
            err(o).0
        };
        assert_eq!(with("protocol", json!("replikit")), "protocol");
        assert_eq!(with("database", json!("App")), "database");
        assert_eq!(with("readPreference", json!("primary")), "readPreference");
        assert_eq!(with("durability", json!("quorum")), "durability");
        assert_eq!(with("endpoints", json!([{"url": "http://a", "role": "primary"}])), "endpoints[0].role");
        assert_eq!(err(json!({"topology": "multi-primary", "endpoints": [{"url": "http://a"}]})).0, "database");
        assert_eq!(err(json!({"protocol": "couchdb", "database": "app", "primary": "http://a"})).0, "protocol");
        assert_eq!(err(json!({"primary": "http://a", "database": "app"})).0, "database");
        assert_eq!(err(json!({"primary": "http://a", "topology": "ring"})).0, "topology");
    }

    #[test]
    fn ranges_and_headers_are_checked() {
        assert_eq!(err(json!({"primary": "http://a", "requestTimeoutMs": 7_200_000})).0, "requestTimeoutMs");
        assert_eq!(err(json!({"primary": "http://a", "retry": {"maxAttempts": 0}})).0, "retry.maxAttempts");
        assert_eq!(
            err(json!({"primary": "http://a", "retry": {"baseDelayMs": 500, "maxDelayMs": 100}})).0,
            "retry.baseDelayMs"
        );
        assert_eq!(err(json!({"primary": "http://a", "headers": {"X-A": "b\r\nc"}})).0, "headers.X-A");
        assert_eq!(err(json!({"primary": "http://a", "headers": {"bad name": "x"}})).0, "headers.bad name");
    }

    fn tags(pairs: &[(&str, &str)]) -> Tags {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn endpoint_tags_are_read_and_must_be_strings() {
        let c = Config::from_json(json!({"endpoints": [
            {"url": "http://a", "role": "primary"},
            {"url": "http://b", "role": "replica", "tags": {"dc": "eu", "rack": "1"}},
        ]}))
        .unwrap();
        assert_eq!(c.endpoints[0].tags, Tags::new());
        assert_eq!(c.endpoints[1].tags, tags(&[("dc", "eu"), ("rack", "1")]));
        let shorthand = Config::from_json(json!({"primary": "http://a", "replicas": ["http://b"]})).unwrap();
        assert!(shorthand.endpoints.iter().all(|e| e.tags.is_empty()));
        let with = |t: Value| err(json!({"endpoints": [{"url": "http://a"}, {"url": "http://b", "tags": t}]}));
        let (what, msg) = with(json!({"dc": 1}));
        assert_eq!(what, "endpoints[1].tags.dc");
        assert!(msg.contains("must be a string"), "{msg}");
        assert_eq!(with(json!({"dc": null})).0, "endpoints[1].tags.dc");
        assert_eq!(with(json!(["eu"])).0, "endpoints[1].tags");
        assert_eq!(with(json!("dc=eu")).0, "endpoints[1].tags");
    }

    #[test]
    fn a_multi_primary_cluster_takes_endpoint_tags_but_no_tag_sets() {
        let base = json!({"topology": "multi-primary", "database": "app",
            "endpoints": [{"url": "http://a", "tags": {"dc": "eu"}}, {"url": "http://b"}]});
        assert_eq!(Config::from_json(base.clone()).unwrap().endpoints[0].tags, tags(&[("dc", "eu")]));
        let mut o = base.clone();
        o["readPreference"] = json!({"mode": "nearest", "tagSets": [{"dc": "eu"}]});
        assert_eq!(err(o).0, "readPreference.tagSets");
        let mut o = base;
        o["readPreference"] = json!({"mode": "replica"});
        assert_eq!(err(o).0, "readPreference");
    }

    #[test]
    fn the_clients_read_preference_takes_the_object_form() {
        let c = Config::from_json(json!({"primary": "http://a",
            "readPreference": {"mode": "nearest", "tagSets": [{"dc": "eu"}, {}], "maxStalenessMs": 5000}}))
        .unwrap();
        let expected = ReadPreference {
            mode: ReadMode::Nearest,
            tag_sets: vec![tags(&[("dc", "eu")]), Tags::new()],
            max_staleness_ms: Some(5000),
        };
        assert_eq!(c.read_preference, expected);
        let nested = json!({"primary": "http://a", "readPreference": {"mode": "primary", "tagSets": [{"dc": "eu"}]}});
        assert_eq!(err(nested).0, "readPreference.tagSets[0]");
    }
}
