//! Server selection for reads, after the MongoDB server-selection spec.
//!
//! 1. Eligible endpoints by read preference: the primary, the replicas within `maxStalenessMs` (by the lag
//!    their health reports give), or both.
//! 2. The latency window: only endpoints whose RTT (EWMA) is within 15 ms of the fastest eligible one.
//! 3. Power of two choices on in-flight requests among those (tower's p2c): two random picks, the less busy
//!    wins. Randomness comes from a seeded generator, so tests are reproducible.
//!
//! When nothing has answered a health check yet (start-up), endpoints are chosen by their configured role so
//! the first read does not wait for the first round of checks.

use super::topology::{EndpointState, Topology};
use super::types::{EndpointId, ReadPreference, Role};

/// The latency window, as MongoDB's `localThresholdMS` default.
pub const LATENCY_WINDOW_MS: f64 = 15.0;

/// Picks the endpoint for a read, or `None` when no endpoint is eligible now.
pub fn select_read(
    topology: &Topology,
    preference: ReadPreference,
    max_staleness_ms: u64,
    excluded: &[EndpointId],
    rng: &mut fastrand::Rng,
) -> Option<EndpointId> {
    let usable = |id: &EndpointId| !excluded.contains(id);
    let primary = topology.primary().filter(usable);
    let replicas: Vec<EndpointId> = topology
        .ids()
        .filter(usable)
        .filter(|&id| {
            topology.state(id) == EndpointState::Up
                && topology.has_report(id)
                && topology.role(id) == Some(Role::Replica)
                && topology.lag_ms(id).is_none_or(|lag| lag <= max_staleness_ms)
        })
        .collect();
    let candidates: Vec<EndpointId> = match preference {
        ReadPreference::Primary => primary.into_iter().collect(),
        ReadPreference::PrimaryPreferred => match primary {
            Some(p) => vec![p],
            None => replicas,
        },
        ReadPreference::Replica => replicas,
        ReadPreference::ReplicaPreferred => {
            if replicas.is_empty() {
                primary.into_iter().collect()
            } else {
                replicas
            }
        }
        ReadPreference::Nearest => replicas.into_iter().chain(primary).collect(),
    };
    if !candidates.is_empty() {
        return Some(choose(topology, &candidates, rng));
    }
    // Start-up (or every endpoint suspect): fall back to what the configuration says, skipping `down` ones.
    let fallback: Vec<EndpointId> = topology
        .ids()
        .filter(usable)
        .filter(|&id| matches!(topology.state(id), EndpointState::Unknown | EndpointState::Suspect))
        .filter(|&id| match (preference, topology.role(id)) {
            (ReadPreference::Primary, role) => role == Some(Role::Primary),
            (ReadPreference::Replica, role) => role != Some(Role::Primary),
            _ => true,
        })
        .collect();
    if fallback.is_empty() {
        return None;
    }
    Some(choose(topology, &fallback, rng))
}

/// Picks the node for a write (or read) in a multi-primary cluster: the nearest writable one (latency window, then
/// power of two choices), else at start-up or while all are suspect one not known to be down, so the first write
/// does not wait for the first round of health checks.
pub fn select_write(topology: &Topology, excluded: &[EndpointId], rng: &mut fastrand::Rng) -> Option<EndpointId> {
    let usable: Vec<EndpointId> = topology.ids().filter(|id| !excluded.contains(id)).collect();
    let writable: Vec<EndpointId> = usable.iter().copied().filter(|&id| topology.writable(id)).collect();
    if !writable.is_empty() {
        return Some(choose(topology, &writable, rng));
    }
    let fallback: Vec<EndpointId> = usable
        .into_iter()
        .filter(|&id| matches!(topology.state(id), EndpointState::Unknown | EndpointState::Suspect))
        .collect();
    (!fallback.is_empty()).then(|| choose(topology, &fallback, rng))
}

/// Latency window, then power of two choices on in-flight requests.
fn choose(topology: &Topology, candidates: &[EndpointId], rng: &mut fastrand::Rng) -> EndpointId {
    let fastest = candidates.iter().filter_map(|&id| topology.rtt_ms(id)).fold(f64::INFINITY, f64::min);
    let window: Vec<EndpointId> = candidates
        .iter()
        .copied()
        .filter(|&id| topology.rtt_ms(id).is_none_or(|rtt| rtt <= fastest + LATENCY_WINDOW_MS))
        .collect();
    let window = if window.is_empty() { candidates.to_vec() } else { window };
    if window.len() == 1 {
        return window[0];
    }
    let a = window[rng.usize(..window.len())];
    let mut b = window[rng.usize(..window.len() - 1)];
    if b == a {
        b = window[window.len() - 1];
    }
    if topology.in_flight(b) < topology.in_flight(a) {
        b
    } else {
        a
    }
}
