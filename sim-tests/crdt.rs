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
//! - `explore --json` lists a CRDT's claims without `linearizable`, counts
//!   that check apart, reports the convergence times, and names a planted
//!   bug in `"bug"`, the system in `"system"`.

use replisim::{
    check::Guarantee,
    replication,
    sim::{Fault, Outcome, Scenario, ScheduledFault, Status},
    strategy::{FaultKind, FaultKinds, ScenarioSpace},
    testing::{self, Explorer},
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
    let mut fixed = outcome.scenario.clone();
    fixed.bug = None;
    let verdicts = replication::registry().run(&fixed).unwrap().verdicts();
    assert!(verdicts.passed(), "without the bug: {verdicts}");
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
    let explore = |bug: &[&str]| {
        let json = dir.path().join("sweep.json");
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_replisim"))
            .args(["explore", "--protocols", "crdt-counter", "--runs", "20"])
            .args(["--faults", "partitions", "--seed", "7"])
            .args(bug)
            .arg("--json")
            .arg(&json)
            .env("REPLISIM_OUT", dir.path())
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout).to_string();
        let summary: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
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
