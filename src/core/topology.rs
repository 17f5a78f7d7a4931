//! What the client knows about its endpoints.
//!
//! For now this is the configured view (every endpoint `unknown` until a health check answers); the health
//! checks, server selection and failover rules grow here, sans-IO, with time passed in as `now_ms`.

use serde::Serialize;

use super::options::{Config, Role};

/// An endpoint's health as the client sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum EndpointState {
    Unknown,
    Up,
    Suspect,
    Down,
}

/// One endpoint's entry in `db.topology()`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EndpointView {
    pub url: String,
    pub node_id: Option<String>,
    pub role: Option<Role>,
    pub state: EndpointState,
    pub rtt_ms: Option<f64>,
    pub lag_ms: Option<u64>,
    pub term: Option<u64>,
    pub position: Option<u64>,
    pub last_error: Option<String>,
}

/// The client's model of the cluster.
#[derive(Debug, Clone)]
pub struct Topology {
    endpoints: Vec<EndpointView>,
}

impl Topology {
    pub fn new(config: &Config) -> Self {
        let endpoints = config
            .endpoints
            .iter()
            .map(|e| EndpointView {
                url: e.url.clone(),
                node_id: None,
                role: e.role,
                state: EndpointState::Unknown,
                rtt_ms: None,
                lag_ms: None,
                term: None,
                position: None,
                last_error: None,
            })
            .collect();
        Topology { endpoints }
    }

    /// A snapshot for `db.topology()`.
    pub fn describe(&self) -> Vec<EndpointView> {
        self.endpoints.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_new_topology_lists_every_endpoint_as_unknown() {
        let c = Config::from_json(json!({"primary": "http://p", "replicas": ["http://r1", "http://r2"]})).unwrap();
        let t = Topology::new(&c).describe();
        assert_eq!(t.len(), 3);
        assert!(t.iter().all(|e| e.state == EndpointState::Unknown));
        assert_eq!(serde_json::to_value(&t[1]).unwrap()["role"], "replica");
    }
}
