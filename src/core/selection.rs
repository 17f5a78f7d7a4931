//! Server selection for reads, after the MongoDB server-selection spec.
//!
//! 1. Eligible endpoints by read preference mode: the primary, the replicas within the staleness bound (by the
//!    lag their health reports give), or both.
//! 2. Tag sets: the first set that matches an eligible endpoint keeps the endpoints it matches (`{}` matches
//!    all; none matching: no endpoint). They apply to the replicas of `replica` and `replicaPreferred` (which
//!    falls back to the primary when no replica matches), to `primaryPreferred` only once the primary is gone
//!    (an up primary is chosen whatever its tags), to every endpoint of `nearest`, and never to `primary`.
//! 3. The latency window: only endpoints whose RTT (EWMA) is within 15 ms of the fastest of those.
//! 4. Power of two choices on in-flight requests among those (tower's p2c): two random picks, the less busy
//!    wins. Randomness comes from a seeded generator, so tests are reproducible.
//!
//! When nothing has answered a health check yet (start-up), endpoints are chosen by their configured role (and
//! the same tag sets) so the first read does not wait for the first round of checks.

use super::topology::{EndpointState, Topology};
use super::types::{EndpointId, ReadMode, ReadPreference, Role, Tags};

/// The latency window, as MongoDB's `localThresholdMS` default.
pub const LATENCY_WINDOW_MS: f64 = 15.0;

/// Picks the endpoint for a read, or `None` when no endpoint is eligible now. `max_staleness_ms` is the bound
/// in force (the preference's own, else the client's).
pub fn select_read(
    topology: &Topology,
    preference: &ReadPreference,
    max_staleness_ms: u64,
    excluded: &[EndpointId],
    rng: &mut fastrand::Rng,
) -> Option<EndpointId> {
    let usable = |id: &EndpointId| !excluded.contains(id);
    let tagged = |ids: Vec<EndpointId>| by_tag_sets(topology, &preference.tag_sets, ids);
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
    let candidates: Vec<EndpointId> = match preference.mode {
        ReadMode::Primary => primary.into_iter().collect(),
        ReadMode::PrimaryPreferred => match primary {
            Some(p) => vec![p],
            None => tagged(replicas),
        },
        ReadMode::Replica => tagged(replicas),
        ReadMode::ReplicaPreferred => {
            let replicas = tagged(replicas);
            if replicas.is_empty() {
                primary.into_iter().collect()
            } else {
                replicas
            }
        }
        ReadMode::Nearest => tagged(replicas.into_iter().chain(primary).collect()),
    };
    if !candidates.is_empty() {
        return Some(choose(topology, &candidates, rng));
    }
    // Start-up (or every endpoint suspect): fall back to what the configuration says, skipping `down` ones.
    let fallback: Vec<EndpointId> = topology
        .ids()
        .filter(usable)
        .filter(|&id| matches!(topology.state(id), EndpointState::Unknown | EndpointState::Suspect))
        .filter(|&id| match (preference.mode, topology.role(id)) {
            (ReadMode::Primary, role) => role == Some(Role::Primary),
            (ReadMode::Replica, role) => role != Some(Role::Primary),
            _ => true,
        })
        .collect();
    let fallback = match preference.mode {
        ReadMode::Primary => fallback,
        ReadMode::Replica | ReadMode::Nearest => tagged(fallback),
        // A primary is taken whatever its tags; the other endpoints by the tag sets.
        ReadMode::PrimaryPreferred | ReadMode::ReplicaPreferred => {
            let is_primary = |id: &EndpointId| topology.role(*id) == Some(Role::Primary);
            let others = tagged(fallback.iter().copied().filter(|id| !is_primary(id)).collect());
            fallback.into_iter().filter(|id| is_primary(id) || others.contains(id)).collect()
        }
    };
    if fallback.is_empty() {
        return None;
    }
    Some(choose(topology, &fallback, rng))
}

/// The endpoints of `ids` that the first tag set matching any of them matches; all of them when there are no
/// tag sets, none when no set matches.
fn by_tag_sets(topology: &Topology, tag_sets: &[Tags], ids: Vec<EndpointId>) -> Vec<EndpointId> {
    if tag_sets.is_empty() {
        return ids;
    }
    tag_sets
        .iter()
        .map(|set| ids.iter().copied().filter(|&id| tag_set_matches(set, topology.tags(id))).collect::<Vec<_>>())
        .find(|matched| !matched.is_empty())
        .unwrap_or_default()
}

/// Whether an endpoint with `tags` holds every pair of the tag set `set`.
pub fn tag_set_matches(set: &Tags, tags: &Tags) -> bool {
    set.iter().all(|(key, value)| tags.get(key) == Some(value))
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

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::core::options::{EndpointConfig, HealthOptions};
    use crate::core::protocol::HealthReport;

    fn tags(pairs: &[(&str, &str)]) -> Tags {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    /// Endpoint 0 is configured primary, the others replicas, labelled `dc` = `dcs[i]`; nothing reported yet.
    fn configured(dcs: &[&str]) -> Topology {
        let endpoints: Vec<EndpointConfig> = dcs
            .iter()
            .enumerate()
            .map(|(i, dc)| EndpointConfig {
                url: format!("http://n{i}"),
                role: Some(if i == 0 { Role::Primary } else { Role::Replica }),
                tags: tags(&[("dc", dc)]),
            })
            .collect();
        Topology::new(&endpoints, HealthOptions::default(), false)
    }

    /// As `configured`, with every endpoint up, 5 ms away, replicas not lagging.
    fn cluster(dcs: &[&str]) -> Topology {
        let mut t = configured(dcs);
        for i in 0..dcs.len() {
            report(&mut t, i, 5.0, 0);
        }
        t
    }

    fn report(t: &mut Topology, i: usize, rtt_ms: f64, lag_ms: u64) {
        let role = if i == 0 { Role::Primary } else { Role::Replica };
        let replica = role == Role::Replica;
        let report = HealthReport {
            node_id: format!("n{i}"),
            role,
            term: 1,
            position: 100,
            lag_ms: replica.then_some(lag_ms),
            read_only: replica,
        };
        t.handle_health(EndpointId(i), 0, Ok((report, rtt_ms)));
    }

    fn down(t: &mut Topology, i: usize) {
        for _ in 0..HealthOptions::default().failure_threshold {
            t.handle_health(EndpointId(i), 0, Err("connection refused".into()));
        }
    }

    fn pref(mode: ReadMode, sets: &[&[(&str, &str)]]) -> ReadPreference {
        ReadPreference { mode, tag_sets: sets.iter().map(|s| tags(s)).collect(), max_staleness_ms: None }
    }

    /// Every endpoint a read may go to: what 100 selections pick (p2c is random, the set it picks from is not).
    fn picks(t: &Topology, preference: &ReadPreference) -> BTreeSet<usize> {
        let mut rng = fastrand::Rng::with_seed(7);
        (0..100).filter_map(|_| select_read(t, preference, 1000, &[], &mut rng)).map(|id| id.0).collect()
    }

    fn set(ids: &[usize]) -> BTreeSet<usize> {
        ids.iter().copied().collect()
    }

    #[test]
    fn a_tag_set_matches_an_endpoint_holding_every_pair_of_it() {
        let eu1 = tags(&[("dc", "eu"), ("rack", "1")]);
        assert!(tag_set_matches(&tags(&[]), &eu1), "{{}} matches every endpoint");
        assert!(tag_set_matches(&tags(&[]), &tags(&[])));
        assert!(tag_set_matches(&tags(&[("dc", "eu")]), &eu1));
        assert!(tag_set_matches(&eu1, &eu1));
        assert!(!tag_set_matches(&tags(&[("dc", "eu"), ("rack", "2")]), &eu1), "every pair must hold");
        assert!(!tag_set_matches(&tags(&[("dc", "eu")]), &tags(&[])));
        assert!(!tag_set_matches(&tags(&[("dc", "EU")]), &eu1), "values are compared exactly");
    }

    #[test]
    fn the_first_tag_set_that_matches_an_eligible_endpoint_wins() {
        let t = cluster(&["us", "eu", "us", "eu"]);
        assert_eq!(picks(&t, &pref(ReadMode::Replica, &[&[("dc", "eu")], &[("dc", "us")]])), set(&[1, 3]));
        assert_eq!(picks(&t, &pref(ReadMode::Replica, &[&[("dc", "us")], &[("dc", "eu")]])), set(&[2]));
        assert_eq!(picks(&t, &pref(ReadMode::Replica, &[])), set(&[1, 2, 3]), "no tag sets: every replica");
    }

    #[test]
    fn a_tag_set_whose_endpoints_are_down_or_too_stale_passes_to_the_next() {
        let mut t = cluster(&["us", "eu", "us", "eu"]);
        let eu_then_us = pref(ReadMode::Replica, &[&[("dc", "eu")], &[("dc", "us")]]);
        down(&mut t, 1);
        assert_eq!(picks(&t, &eu_then_us), set(&[3]), "one eu replica left");
        report(&mut t, 3, 5.0, 5000);
        assert_eq!(picks(&t, &eu_then_us), set(&[2]), "the last eu replica lags past the 1000 ms bound");
    }

    #[test]
    fn an_endpoint_excluded_by_the_call_does_not_make_its_tag_set_win() {
        let t = cluster(&["us", "eu", "us"]);
        let eu_then_us = pref(ReadMode::Replica, &[&[("dc", "eu")], &[("dc", "us")]]);
        let mut rng = fastrand::Rng::with_seed(7);
        assert_eq!(select_read(&t, &eu_then_us, 1000, &[EndpointId(1)], &mut rng), Some(EndpointId(2)));
    }

    #[test]
    fn an_empty_tag_set_matches_every_eligible_endpoint() {
        let t = cluster(&["us", "eu", "us"]);
        assert_eq!(picks(&t, &pref(ReadMode::Replica, &[&[("dc", "ap")], &[]])), set(&[1, 2]));
        assert_eq!(picks(&t, &pref(ReadMode::Nearest, &[&[]])), set(&[0, 1, 2]));
    }

    #[test]
    fn when_no_tag_set_matches_no_endpoint_is_eligible() {
        let t = cluster(&["us", "eu", "us"]);
        let mut rng = fastrand::Rng::with_seed(7);
        let ap = pref(ReadMode::Replica, &[&[("dc", "ap")]]);
        assert_eq!(select_read(&t, &ap, 1000, &[], &mut rng), None);
        let ap = pref(ReadMode::Nearest, &[&[("dc", "ap")], &[("dc", "eu"), ("rack", "9")]]);
        assert_eq!(select_read(&t, &ap, 1000, &[], &mut rng), None);
    }

    #[test]
    fn tag_sets_never_apply_to_mode_primary() {
        let t = cluster(&["us", "eu"]);
        assert_eq!(picks(&t, &pref(ReadMode::Primary, &[&[("dc", "eu")]])), set(&[0]));
    }

    #[test]
    fn primary_preferred_takes_the_primary_whatever_its_tags_and_tags_the_replicas_once_it_is_gone() {
        let mut t = cluster(&["us", "eu", "us"]);
        let eu = pref(ReadMode::PrimaryPreferred, &[&[("dc", "eu")]]);
        assert_eq!(picks(&t, &eu), set(&[0]));
        down(&mut t, 0);
        assert_eq!(picks(&t, &eu), set(&[1]));
        down(&mut t, 1);
        assert_eq!(picks(&t, &eu), set(&[]), "the us replica matches no tag set");
    }

    #[test]
    fn replica_preferred_tags_the_replicas_and_falls_back_to_the_primary_when_none_matches() {
        let t = cluster(&["us", "eu", "us"]);
        assert_eq!(picks(&t, &pref(ReadMode::ReplicaPreferred, &[&[("dc", "us")]])), set(&[2]), "not the us primary");
        assert_eq!(picks(&t, &pref(ReadMode::ReplicaPreferred, &[&[("dc", "ap")]])), set(&[0]), "whatever its tags");
    }

    #[test]
    fn nearest_applies_tag_sets_to_every_endpoint_primary_included() {
        let t = cluster(&["us", "eu", "us"]);
        assert_eq!(picks(&t, &pref(ReadMode::Nearest, &[&[("dc", "us")]])), set(&[0, 2]));
        assert_eq!(picks(&t, &pref(ReadMode::Nearest, &[&[("dc", "eu")]])), set(&[1]));
    }

    #[test]
    fn the_latency_window_is_measured_within_the_winning_tag_set() {
        let mut t = configured(&["us", "eu", "us", "us"]);
        for (i, rtt_ms) in [90.0, 1.0, 40.0, 50.0].into_iter().enumerate() {
            report(&mut t, i, rtt_ms, 0);
        }
        assert_eq!(picks(&t, &pref(ReadMode::Nearest, &[&[("dc", "us")]])), set(&[2, 3]), "not the eu one at 1 ms");
    }

    #[test]
    fn before_any_health_report_the_configured_roles_are_narrowed_by_the_same_tag_sets() {
        let t = configured(&["us", "eu", "us"]);
        assert_eq!(picks(&t, &pref(ReadMode::Replica, &[&[("dc", "us")], &[]])), set(&[2]));
        assert_eq!(picks(&t, &pref(ReadMode::Nearest, &[&[("dc", "us")]])), set(&[0, 2]));
        assert_eq!(picks(&t, &pref(ReadMode::PrimaryPreferred, &[&[("dc", "eu")]])), set(&[0, 1]));
        assert_eq!(picks(&t, &pref(ReadMode::Primary, &[&[("dc", "eu")]])), set(&[0]));
        assert_eq!(picks(&t, &pref(ReadMode::Replica, &[&[("dc", "ap")]])), set(&[]));
    }
}
