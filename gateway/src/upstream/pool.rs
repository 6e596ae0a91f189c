//! Which replica of a server takes a call (`Server.spec.replicas` local processes, each with its
//! own MCP session).
//!
//! # Guarantees
//! - **Least in flight.** A caller without a session (a stateless request) goes to the replica
//!   with the fewest calls in flight among those that are connected and not unhealthy; ties go
//!   round-robin, so idle replicas share the work too.
//! - **Affinity.** A caller with an MCP session is pinned to one replica (chosen by a hash of the
//!   caller), so what it set up there — resource subscriptions, a server-to-client request routed
//!   back on that replica's session — stays on one process. When its replica is down or
//!   unhealthy it is served by the least loaded one until it is back.
//! - With one replica, or none connected, the first replica is used (and a call waits for it as
//!   before).

use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use super::health::State;
use super::{CallerKey, Upstream};

/// What the choice needs to know of one replica.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Load {
    /// Connected and not unhealthy.
    pub eligible: bool,
    pub in_flight: usize,
}

/// The replica (index into `loads`) a call of `caller` goes to. Pure but for `turn`, the
/// round-robin counter that breaks ties.
pub fn choose(loads: &[Load], pinned: Option<u64>, turn: &AtomicUsize) -> usize {
    if loads.len() <= 1 {
        return 0;
    }
    if let Some(h) = pinned {
        let i = (h % loads.len() as u64) as usize;
        if loads[i].eligible {
            return i;
        }
    }
    let Some(least) = loads.iter().filter(|l| l.eligible).map(|l| l.in_flight).min() else { return 0 };
    let tied: Vec<usize> = loads.iter().enumerate().filter(|(_, l)| l.eligible && l.in_flight == least).map(|(i, _)| i).collect();
    tied[turn.fetch_add(1, Ordering::Relaxed) % tied.len()]
}

/// The pin of a caller with a session; `None` for a stateless request.
pub fn pin(caller: &CallerKey) -> Option<u64> {
    caller.has_session().then(|| {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        caller.hash(&mut h);
        h.finish()
    })
}

/// The replica of `members` (the first is the server's own entry) that takes a call of `caller`.
pub(super) fn pick(members: &[Arc<Upstream>], caller: Option<&CallerKey>, turn: &AtomicUsize) -> Arc<Upstream> {
    let loads: Vec<Load> = members
        .iter()
        .map(|m| Load {
            eligible: m.live().is_some() && m.checked.lock().expect("health lock").state != State::Unhealthy,
            in_flight: m.in_flight.load(Ordering::Relaxed),
        })
        .collect();
    members[choose(&loads, caller.and_then(pin), turn)].clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(eligible: bool, in_flight: usize) -> Load {
        Load { eligible, in_flight }
    }

    #[test]
    fn least_in_flight_wins_and_ties_rotate() {
        let turn = AtomicUsize::new(0);
        assert_eq!(choose(&[load(true, 3), load(true, 1)], None, &turn), 1);
        assert_eq!(choose(&[load(true, 0), load(false, 0), load(true, 5)], None, &turn), 0);
        let picks: Vec<usize> = (0..4).map(|_| choose(&[load(true, 2), load(true, 2)], None, &turn)).collect();
        assert!(picks.contains(&0) && picks.contains(&1), "{picks:?}");
    }

    #[test]
    fn sessions_stay_on_their_replica_unless_it_is_out() {
        let turn = AtomicUsize::new(0);
        assert_eq!(choose(&[load(true, 0), load(true, 9)], Some(3), &turn), 1, "pinned even when busier");
        assert_eq!(choose(&[load(true, 0), load(false, 0)], Some(3), &turn), 0, "its replica is out");
        assert_eq!(choose(&[load(false, 0), load(false, 0)], None, &turn), 0, "none eligible: the first");
        let a = CallerKey::new("p", "t", Some("s1"));
        assert_eq!(pin(&a), pin(&a.clone()));
        assert_eq!(pin(&CallerKey::new("p", "t", None)), None);
    }
}
