//! The counter and set workloads against a user's own replicated system:
//! one generic primary/backup state machine replication, written in
//! `workloads/` against replisim's public API only, replicating counters
//! and sets.
//!
//! This file owns the property tests: the correct systems hold under
//! crashes; each planted bug is found within a bounded search, violating
//! the guarantee it breaks (the case it was found at and the wall time are
//! printed: run with `--nocapture`); and convergence, which the system does
//! not claim, is computed and reported without failing a run.

#[path = "workloads/counter.rs"]
mod counter;
#[path = "workloads/primary_backup.rs"]
mod primary_backup;
#[path = "workloads/set.rs"]
mod set;

use std::{cell::Cell, rc::Rc, time::Instant};

use replisim::{
    check::Guarantee,
    node::System,
    sim::{Fault, Scenario, ScheduledFault, Status, Target, run_system},
    strategy::{FaultKinds, ScenarioSpace},
    testing::{self, Explorer},
    workload::WorkloadSpec,
};

use counter::Counters;
use primary_backup::{Bug, PrimaryBackup, StateMachine};
use set::Sets;

/// Cases of the tests that must hold.
const HOLDS_CASES: u32 = 256;
/// At most this many cases to find a planted bug.
const BUG_CASES: u32 = 200;

/// The name scenarios give the system replicating `M`.
fn system_name<M: StateMachine>() -> String {
    format!("primary-backup-{}", M::workload().name())
}

/// Explores crash-and-restart scenarios of the correct system replicating
/// `M`: every claimed guarantee must hold.
fn holds_under_crashes<M: StateMachine>(name: &str) {
    let space = ScenarioSpace::new(&system_name::<M>(), FaultKinds::crashes())
        .declared_by(&PrimaryBackup::<M>::new());
    Explorer::new(name, HOLDS_CASES)
        .system(|_| Rc::new(PrimaryBackup::<M>::new()))
        .explore(space.strategy(), testing::holds);
}

/// Searches scenarios with faults of `kinds` for a failure of
/// [`testing::holds`] by the system replicating `M` with `bug` planted;
/// the shrunk failure must violate `expected`. Prints the case the bug was
/// found at and when, the runs spent shrinking and the whole wall time.
fn catch<M: StateMachine>(name: &str, bug: Bug, kinds: FaultKinds, expected: Guarantee) {
    let space = ScenarioSpace::new(&system_name::<M>(), kinds)
        .declared_by(&PrimaryBackup::<M>::with_bug(bug))
        .bug(bug.name());
    // Explorer does not say which case failed first: count the runs (one
    // per case until the first failure, then one per shrinking step).
    let runs = Cell::new(0u32);
    let found = Cell::new(None);
    let started = Instant::now();
    let outcome = Explorer::new(name, BUG_CASES)
        .system(move |_| Rc::new(PrimaryBackup::<M>::with_bug(bug)))
        .find_violation(space.strategy(), |outcome| {
            runs.set(runs.get() + 1);
            let held = testing::holds(outcome);
            if held.is_err() && found.get().is_none() {
                found.set(Some((runs.get(), started.elapsed())));
            }
            held
        });
    let elapsed = started.elapsed();
    let verdicts = outcome.verdicts_within(&testing::HOLDS_LIMITS);
    assert_eq!(
        verdicts.status(expected),
        Status::Violated,
        "{} should violate {expected}:\n{verdicts}",
        bug.name()
    );
    let (case, found_after) = found.get().expect("a case failed");
    let scenario = &outcome.scenario;
    println!(
        "{name}: {} found at case {case} (of at most {BUG_CASES}) after {:.2} s; \
         shrunk in {} more runs, {:.2} s in all",
        bug.name(),
        found_after.as_secs_f64(),
        runs.get() - case,
        elapsed.as_secs_f64()
    );
    println!(
        "minimal: seed {}, {} replicas, {} clients x {} ops on {} keys",
        scenario.seed,
        scenario.replicas,
        scenario.clients,
        scenario.workload.ops_per_client,
        scenario.workload.keys
    );
    for fault in &scenario.faults {
        println!("  {fault}");
    }
    println!("{verdicts}");
}

#[test]
fn counter_holds_under_crashes() {
    holds_under_crashes::<Counters>("counter_holds_under_crashes");
}

#[test]
fn set_holds_under_crashes() {
    holds_under_crashes::<Sets>("set_holds_under_crashes");
}

/// Acknowledged adds the primary had not synced die with it in a crash.
#[test]
fn counter_ack_before_persist_is_caught() {
    catch::<Counters>(
        "counter_ack_before_persist_is_caught",
        Bug::AckBeforePersist,
        FaultKinds::crashes(),
        Guarantee::Durable,
    );
}

/// Reads from a stale copy are not linearizable, faults or not.
#[test]
fn set_stale_reads_are_caught() {
    catch::<Sets>(
        "set_stale_reads_are_caught",
        Bug::StaleReads,
        FaultKinds::none(),
        Guarantee::Linearizable,
    );
}

/// A backup that crashes misses what the primary forwarded meanwhile, so
/// the replicas diverge: the convergence check says so, yet the run passes,
/// since the system does not claim convergence.
#[test]
fn divergence_is_reported_but_does_not_fail_the_run() {
    let system = PrimaryBackup::<Counters>::new();
    let mut scenario = Scenario::new(&system_name::<Counters>(), 1);
    scenario.workload = WorkloadSpec::for_kinds(system.workload().kinds());
    let crash = Fault::Crash {
        node: Target::Replica(1),
    };
    scenario.faults = vec![ScheduledFault::at(100, crash).lasting(100)];
    let verdicts = run_system(&scenario, Rc::new(system)).unwrap().verdicts();
    assert!(
        !verdicts.claims.contains(&Guarantee::Convergent),
        "{verdicts}"
    );
    assert_eq!(
        verdicts.status(Guarantee::Convergent),
        Status::Violated,
        "{verdicts}"
    );
    assert!(verdicts.passed(), "{verdicts}");
}
