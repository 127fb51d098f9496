//! CRDT replication ([`replisim::replication::crdt`]: `crdt-counter`,
//! `crdt-set`, `lww`) under random fault schedules:
//!
//! - each keeps every guarantee it claims (durable, convergent, no
//!   unexpected exit) under every fault kind that keeps disks readable,
//!   two at once (clock skew aside for `lww`, which it breaks by design);
//!   linearizability is not claimed, and does not fail a run;
//! - each converges under every fault kind, machines lost with their disks
//!   and corrupted reads included;
//! - the planted `merge-not-commutative` (a join that keeps the receiver's
//!   value) is caught: replicas diverge;
//! - last-writer-wins trusts the writing replica's clock: a replica whose
//!   clock runs two seconds behind has its newer acknowledged writes lose
//!   to older ones (`durable` fails), and the same schedule without the
//!   offset keeps them;
//! - the replicas' states are judged before the final reads: reads that
//!   repair cannot hide a replica nothing brought up to date;
//! - `explore --json` lists a CRDT's claims without `linearizable`, counts
//!   that check apart, reports the convergence times, and names a planted
//!   bug in `"bug"`, the system in `"system"`.

#[path = "support/planted.rs"]
mod planted;
#[path = "support/explore.rs"]
mod support;

use std::{cell::RefCell, rc::Rc};

use replisim::{
    LocalBoxFuture, async_trait,
    check::{Guarantee, convergence::ReplicaState},
    history::{Completion, Op},
    node::{ClientContext, KvClient, NodeContext, NodeResult, System},
    replication,
    sim::{Fault, Outcome, Scenario, ScheduledFault, Status, run_system},
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
        // A skewed clock breaks last-writer-wins by design (even 9 ms lose
        // a write): shown by `lww_clock_offset_loses_a_newer_write`.
        let kinds = match system {
            "lww" => kinds.clone().without(FaultKind::ClockSkew),
            _ => kinds.clone(),
        };
        let name = format!("crdts_keep_every_claim_under_faults_that_keep_disks-{system}");
        Explorer::new(&name, 16)
            .registry(replication::registry())
            .explore(space(system, kinds).strategy(), testing::holds);
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
    planted::assert_passes_without_the_bug(&replication::registry(), &outcome.scenario);
}

/// Two replicas, each with its own client writing one key; replica 1's
/// clock runs two seconds behind from the start, so every write it
/// timestamps loses to any write replica 0 timestamps, however much later
/// it came: an acknowledged write is lost. Without the offset the same
/// run keeps it. The scenario is the README's
/// (`replisim replay fixtures/scenarios/lww-clock-behind.json`).
#[test]
fn lww_clock_offset_loses_a_newer_write() {
    let file = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/scenarios/lww-clock-behind.json"
    );
    let mut scenario = Scenario::from_json(&std::fs::read_to_string(file).unwrap()).unwrap();
    assert!(
        matches!(
            scenario.faults[..],
            [ScheduledFault {
                fault: Fault::ClockSkew {
                    offset_ms: -2_000,
                    ..
                },
                ..
            }]
        ),
        "{:?}",
        scenario.faults
    );
    let registry = replication::registry();
    let skewed = registry.run(&scenario).unwrap();
    let verdicts = skewed.verdicts();
    println!("{}", verdicts.durability);
    assert!(verdicts.durability.is_violation(), "{verdicts}");
    assert!(verdicts.convergence.is_ok(), "{verdicts}");
    scenario.faults.clear();
    let verdicts = registry.run(&scenario).unwrap().verdicts();
    assert!(verdicts.passed(), "without the offset: {verdicts}");
}

/// `replisim explore --json`: a CRDT claims what it promises, its
/// linearizability is counted apart from its claims, and a planted bug
/// keeps the system's name in `"system"`.
#[test]
fn explore_reports_crdt_claims_apart_and_bugs_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("sweep.json");
    let explore = |bug: &[&str]| {
        let args = [
            &["--protocols", "crdt-counter", "--runs", "20"][..],
            &["--faults", "partitions", "--seed", "7"],
            bug,
        ]
        .concat();
        let (summary, stdout) = support::explore(dir.path(), &json, &args);
        (summary["systems"][0].clone(), stdout)
    };
    let (system, stdout) = explore(&[]);
    assert_eq!(
        system["claims"],
        serde_json::json!(["durable", "convergent", "no-unexpected-exit"])
    );
    for claim in ["durable", "convergent", "no-unexpected-exit"] {
        assert_eq!(system["checks"][claim]["ok"], 20, "{claim}: {stdout}");
    }
    assert!(system["checks"]["linearizable"].is_object(), "{system}");
    assert_eq!(system["convergence"]["converged"], 20, "{system}");
    assert!(
        stdout.contains("replicas agreed after the last heal in 20/20 runs"),
        "{stdout}"
    );

    let (buggy, stdout) = explore(&["--bug", "merge-not-commutative"]);
    assert_eq!(buggy["system"], "crdt-counter");
    assert_eq!(buggy["bug"], "merge-not-commutative");
    let diverged = buggy["checks"]["convergent"]["violated"].as_u64().unwrap();
    assert!(diverged > 0, "{stdout}");
}

/// Replicas whose states live in one table the test can see: a write
/// lands on replica 0 alone, and every read repairs all replicas from
/// replica 0, as read repair would. Nothing else ever copies a write.
struct RepairingReads(Rc<RefCell<Vec<ReplicaState>>>);

#[async_trait(?Send)]
impl KvClient for RepairingReads {
    async fn call(&mut self, op: &Op) -> Completion {
        let mut table = self.0.borrow_mut();
        match op {
            Op::Write { key, value } => {
                table[0].insert(key.clone(), value.clone());
                Completion::Ok(None)
            }
            Op::Read { key, .. } => {
                let repaired = table[0].clone();
                table
                    .iter_mut()
                    .for_each(|state| state.clone_from(&repaired));
                Completion::Ok(repaired.get(key).cloned())
            }
            _ => Completion::Fail("reads and writes only".into()),
        }
    }
}

impl System for RepairingReads {
    fn replica(&self, node: NodeContext) -> LocalBoxFuture<'static, NodeResult> {
        let table = self.0.clone();
        node.state.publish(move || table.borrow()[node.id].clone());
        Box::pin(std::future::pending())
    }

    fn client(&self, _ctx: ClientContext) -> Box<dyn KvClient> {
        Box::new(RepairingReads(self.0.clone()))
    }
}

/// The replicas' states are judged as the quiet period left them, before
/// the final reads: reads that repair replica 1 at the very end cannot
/// hide that nothing brought it up to date.
#[test]
fn final_reads_cannot_hide_a_replica_left_behind() {
    let table = Rc::new(RefCell::new(vec![ReplicaState::new(); 2]));
    let mut scenario = Scenario::new("repairing-reads", 1);
    scenario.replicas = 2;
    scenario.clients = 1;
    scenario.workload.ops_per_client = 5;
    scenario.workload.mix = Mix::new([("write", 1)]);
    let outcome = run_system(&scenario, Rc::new(RepairingReads(table.clone()))).unwrap();
    let verdicts = outcome.verdicts();
    assert!(verdicts.convergence.is_violation(), "{verdicts}");
    assert_eq!(outcome.stats.converged_after_ms, None);
    let table = table.borrow();
    assert!(
        !table[0].is_empty() && table[0] == table[1],
        "the final reads repaired: {table:?}"
    );
}
