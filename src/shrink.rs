//! replisim's own structural shrinker: makes a failing [`Scenario`]
//! smaller while it still fails, with no proptest value tree behind it
//! (a guided case is a mutated scenario; a saved one is a file).
//!
//! It goes over candidates simplest-first, keeping each that still fails
//! and going on from there, pass after pass until a pass keeps none or
//! the budget of runs is spent: drop a fault; one replica fewer (faults that
//! name it go too; the run refuses sizes the system does not declare);
//! fewer clients; fewer operations per client (a shorter run); fewer
//! keys (counts come down by halving the distance to one); a fault
//! without its trigger; a fault shorter, earlier (halved, or at once); a disk fault class off; the operation mix
//! down to its two plainest kinds. Candidates that are not valid
//! scenarios cost no run.
//!
//! ```
//! use replisim::{shrink, sim::{Fault, Scenario, ScheduledFault, Target}};
//!
//! let mut scenario = Scenario::new("my-store", 1);
//! scenario.workload.ops_per_client = 40;
//! for at_ms in [5, 50, 90] {
//!     scenario.faults.push(ScheduledFault::at(at_ms, Fault::Crash { node: Target::Replica(0) }).lasting(30));
//! }
//! // "Fails" while some crash is left and there are at least 10 operations.
//! let shrunk = shrink::shrink(scenario, 100, |s| !s.faults.is_empty() && s.workload.ops_per_client >= 10);
//! assert_eq!(shrunk.scenario.faults.len(), 1);
//! assert_eq!(shrunk.scenario.workload.ops_per_client, 10);
//! assert_eq!(shrunk.scenario.clients, 1);
//! ```

use std::fmt;

use crate::sim::Scenario;

/// A shrunk scenario, and how many runs shrinking took.
#[derive(Debug, Clone)]
pub struct Shrunk {
    pub scenario: Scenario,
    pub runs: u32,
}

/// Shrinks `scenario`, for which `fails` holds, within `budget` calls of
/// `fails` (each is usually one simulation).
pub fn shrink(
    mut scenario: Scenario,
    budget: u32,
    mut fails: impl FnMut(&Scenario) -> bool,
) -> Shrunk {
    let mut runs = 0;
    // Passes over the candidates until one changes nothing. After a
    // candidate is kept, the pass goes on from the same place in the new
    // scenario's candidates (those before it were just refused).
    loop {
        let mut shrunk = false;
        let mut i = 0;
        let mut list = candidates(&scenario);
        while let Some(candidate) = list.get(i) {
            i += 1;
            if candidate.validate().is_err() {
                continue;
            }
            if runs == budget {
                return Shrunk { scenario, runs };
            }
            runs += 1;
            if fails(candidate) {
                scenario = candidate.clone();
                shrunk = true;
                i -= 1;
                list = candidates(&scenario);
            }
        }
        if !shrunk {
            return Shrunk { scenario, runs };
        }
    }
}

/// The smaller scenarios to try, simplest first.
fn candidates(s: &Scenario) -> Vec<Scenario> {
    let mut out = Vec::new();
    let mut with = |change: &dyn Fn(&mut Scenario)| {
        let mut candidate = s.clone();
        change(&mut candidate);
        if candidate != *s {
            out.push(candidate);
        }
    };
    for i in 0..s.faults.len() {
        with(&|c| {
            c.faults.remove(i);
        });
    }
    if s.replicas > 1 {
        with(&|c| {
            c.replicas -= 1;
            let replicas = c.replicas;
            c.faults.retain(|f| {
                f.fault.validate(replicas).is_ok()
                    && f.trigger
                        .as_ref()
                        .is_none_or(|t| t.validate(replicas).is_ok())
            });
        });
    }
    for clients in smaller(s.clients) {
        with(&|c| c.clients = clients);
    }
    for ops in smaller(s.workload.ops_per_client) {
        with(&|c| c.workload.ops_per_client = ops);
    }
    for keys in smaller(s.workload.keys) {
        with(&|c| c.workload.keys = keys);
    }
    for i in 0..s.faults.len() {
        with(&|c| c.faults[i].trigger = None);
        if let Some(ms) = s.faults[i].for_ms {
            for shorter in [1, ms / 2] {
                with(&|c| c.faults[i].for_ms = Some(shorter.max(1)));
            }
        }
        for earlier in [0, s.faults[i].at_ms / 2] {
            with(&|c| c.faults[i].at_ms = earlier);
        }
    }
    with(&|c| c.disk.torn_writes = false);
    with(&|c| c.disk.io_error_probability = 0.0);
    with(&|c| c.disk.corruption_probability = 0.0);
    with(&|c| {
        for (_, weight) in c.workload.mix.0.iter_mut().skip(2) {
            *weight = 0;
        }
    });
    out
}

/// Values below `n` (at least 1) to try, smallest first: 1, a quarter,
/// then `n` less a half, a quarter, an eighth... of it, down to one less.
/// Kept from the smallest that still fails, a count comes down to the
/// least its failure needs in about log² n runs, not n.
fn smaller(n: usize) -> Vec<usize> {
    let cuts = std::iter::successors(Some(n / 2), |cut| (*cut > 1).then_some(cut / 2));
    let mut values: Vec<usize> = [1, n / 4]
        .into_iter()
        .chain(cuts.map(|cut| n - cut))
        .chain(std::iter::once(n.saturating_sub(1)))
        .filter(|&v| v >= 1 && v < n)
        .collect();
    values.sort_unstable();
    values.dedup();
    values
}

/// How big a scenario is, to compare shrinkers: faults first, then
/// replicas, then operations (clients times operations per client).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Size {
    pub faults: usize,
    pub replicas: usize,
    pub operations: usize,
}

impl Size {
    pub fn of(scenario: &Scenario) -> Self {
        Size {
            faults: scenario.faults.len(),
            replicas: scenario.replicas,
            operations: scenario.clients * scenario.workload.ops_per_client,
        }
    }
}

impl fmt::Display for Size {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} faults, {} replicas, {} operations",
            self.faults, self.replicas, self.operations
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::{Fault, ScheduledFault, Target};

    fn crash(at_ms: u64, node: usize) -> ScheduledFault {
        ScheduledFault::at(
            at_ms,
            Fault::Crash {
                node: Target::Replica(node),
            },
        )
        .lasting(80)
    }

    /// A failure that needs two crashes of replica 2 keeps both, on 3
    /// replicas (replica 2 must exist), and everything else goes down to
    /// its least.
    #[test]
    fn keeps_what_the_failure_needs_and_nothing_else() {
        let mut scenario = Scenario::new("my-store", 1);
        scenario.replicas = 5;
        scenario.clients = 3;
        scenario.workload.ops_per_client = 30;
        scenario.faults = vec![crash(10, 0), crash(20, 2), crash(30, 1), crash(40, 2)];
        let needs = |s: &Scenario| {
            s.faults
                .iter()
                .filter(|f| {
                    f.fault
                        == Fault::Crash {
                            node: Target::Replica(2),
                        }
                })
                .count()
                >= 2
        };
        let shrunk = shrink(scenario, 500, needs);
        let s = &shrunk.scenario;
        assert_eq!(s.replicas, 3);
        assert_eq!(s.faults.len(), 2);
        assert!(
            s.faults.iter().all(|f| f.at_ms == 0 && f.for_ms == Some(1)),
            "{:?}",
            s.faults
        );
        assert_eq!(
            (s.clients, s.workload.ops_per_client, s.workload.keys),
            (1, 1, 1)
        );
        assert!(shrunk.runs < 500, "{} runs", shrunk.runs);
    }

    #[test]
    fn stops_at_its_budget() {
        let mut scenario = Scenario::new("my-store", 1);
        scenario.workload.ops_per_client = 1000;
        let mut calls = 0;
        let shrunk = shrink(scenario, 3, |_| {
            calls += 1;
            false
        });
        assert_eq!((shrunk.runs, calls), (3, 3));
    }
}
