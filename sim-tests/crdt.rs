//! CRDT replication ([`replisim::replication::crdt`]: `crdt-counter`,
//! `crdt-set`, `lww`) under random fault schedules:
//!
//! - each keeps every guarantee it claims (durable, convergent, no
//!   unexpected exit) under every fault kind that keeps disks readable,
//!   two at once; linearizability is not claimed, and is not judged;
//! - each converges under every fault kind, machines lost with their disks
//!   and corrupted reads included;
//! - the planted `merge-not-commutative` (a join that keeps the receiver's
//!   value) is caught: replicas diverge;
//! - last-writer-wins trusts the writing replica's clock: a replica whose
//!   clock runs two seconds behind has its newer acknowledged writes lose
//!   to older ones (`durable` fails), and the same schedule without the
//!   offset keeps them.

use replisim::{
    check::Guarantee,
    replication,
    sim::{Fault, Outcome, Scenario, ScheduledFault, Status, Target},
    strategy::{FaultKind, FaultKinds, ScenarioSpace},
    testing::{self, Explorer},
    workload::Mix,
};

const SYSTEMS: [&str; 3] = ["crdt-counter", "crdt-set", "lww"];

fn space(system: &str, kinds: FaultKinds) -> ScenarioSpace {
    ScenarioSpace::registered(&replication::registry(), system, kinds).unwrap()
}

/// The property: the replicas converge.
fn converges(outcome: &Outcome) -> Result<(), String> {
    let verdicts = outcome.verdicts();
    match verdicts.status(Guarantee::Convergent) == Status::Violated {
        true => Err(verdicts.to_string()),
        false => Ok(()),
    }
}

#[test]
fn crdts_keep_every_claim_under_faults_that_keep_disks() {
    let kinds = FaultKinds::everything()
        .without(FaultKind::Lose)
        .without(FaultKind::Corruption)
        .simultaneous(2);
    for system in SYSTEMS {
        let name = format!("crdts_keep_every_claim_under_faults_that_keep_disks-{system}");
        Explorer::new(&name, 16)
            .registry(replication::registry())
            .explore(space(system, kinds.clone()).strategy(), testing::holds);
    }
}

#[test]
fn crdts_converge_under_every_fault_kind() {
    let kinds = FaultKinds::everything().simultaneous(2);
    for system in SYSTEMS {
        let name = format!("crdts_converge_under_every_fault_kind-{system}");
        Explorer::new(&name, 16)
            .registry(replication::registry())
            .explore(space(system, kinds.clone()).strategy(), converges);
    }
}

/// A join that keeps the receiver's value for keys both replicas know:
/// once two replicas hold different values of one key, gossip never
/// reconciles them.
#[test]
fn merge_not_commutative_is_caught() {
    let space = space("crdt-counter", FaultKinds::partitions()).bug("merge-not-commutative");
    let outcome = Explorer::new("merge_not_commutative_is_caught", 64)
        .registry(replication::registry())
        .find_violation(space.strategy(), testing::holds);
    let verdicts = outcome.verdicts();
    assert!(verdicts.convergence.is_violation(), "{verdicts}");
    let mut fixed = outcome.scenario.clone();
    fixed.bug = None;
    let verdicts = replication::registry().run(&fixed).unwrap().verdicts();
    assert!(verdicts.passed(), "without the bug: {verdicts}");
}

/// Two replicas, each with its own client writing one key; replica 1's
/// clock runs two seconds behind from the start, so every write it
/// timestamps loses to any write replica 0 timestamps, however much later
/// it came: an acknowledged write is lost. Without the offset the same
/// run keeps it.
#[test]
fn lww_clock_offset_loses_a_newer_write() {
    let scenario = |seed: u64, offset: bool| {
        let mut scenario = Scenario::new("lww", seed);
        scenario.replicas = 2;
        scenario.clients = 2;
        scenario.workload.keys = 1;
        scenario.workload.ops_per_client = 20;
        scenario.workload.mix = Mix::new([("read", 1), ("write", 3)]);
        if offset {
            scenario.faults = vec![ScheduledFault::at(
                0,
                Fault::ClockSkew {
                    node: Target::Replica(1),
                    offset_ms: -2_000,
                    drift_ppm: 0,
                },
            )];
        }
        scenario
    };
    let registry = replication::registry();
    let seed = (0..20)
        .find(|&seed| {
            let verdicts = registry.run(&scenario(seed, true)).unwrap().verdicts();
            verdicts.durability.is_violation()
        })
        .expect("no newer write lost in 20 runs with a clock two seconds behind");
    let skewed = registry.run(&scenario(seed, true)).unwrap();
    println!("seed {seed}: {}", skewed.verdicts().durability);
    let verdicts = registry.run(&scenario(seed, false)).unwrap().verdicts();
    assert!(verdicts.passed(), "without the offset: {verdicts}");
}
