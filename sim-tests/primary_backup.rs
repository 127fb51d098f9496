//! Primary/backup with automatic failover
//! ([`replisim::replication::primary_backup`]), naive and fenced, under the
//! faults the seed chapter warns about:
//!
//! - the naive variant's split brain after a partition (two primaries
//!   accept writes; the replicas diverge after heal) and its paused primary
//!   that comes back and keeps serving (acknowledged writes of its
//!   successor lost, stale reads) are found within a bounded number of
//!   cases, printed and saved for `replisim replay`; the fenced variant
//!   passes the very same schedules;
//! - the fenced variant holds under partitions, pauses and crashes aimed
//!   at the current primary;
//! - its planted bug `epoch-not-checked` is caught;
//! - a clock that jumps back beyond the lease's drift bound breaks the
//!   fenced variant's read lease: a deposed primary serves a stale read;
//! - with the engine's `buggify!` points on and no fault of the harness's
//!   own, a backup that suspects a live primary gives the naive variant
//!   its split brain, and the fenced variant holds with
//!   the points on under partitions and crashes.

#[path = "support/planted.rs"]
mod planted;

use replisim::{
    check::Guarantee,
    replication,
    sim::{Buggify, Fault, Outcome, Scenario, ScheduledFault, Status, Target},
    strategy::{FaultKind, FaultKinds, ScenarioSpace},
    testing::{self, Explorer},
};

const NAIVE: &str = "primary-backup";
const FENCED: &str = "primary-backup:fenced";

fn space(system: &str, kinds: FaultKinds) -> ScenarioSpace {
    ScenarioSpace::registered(&replication::registry(), system, kinds)
        .unwrap()
        .replicas(3)
}

/// The property: `guarantee` holds.
fn keeps(guarantee: Guarantee) -> impl Fn(&Outcome) -> Result<(), String> {
    move |outcome| {
        let verdicts = outcome.verdicts();
        match verdicts.status(guarantee) == Status::Violated {
            true => Err(verdicts.to_string()),
            false => Ok(()),
        }
    }
}

/// Finds a violation of `guarantee` by `system` in `cases` cases of
/// `space`, prints it, and checks that the fenced variant passes the same
/// scenario.
fn found_and_fenced_holds(
    name: &str,
    cases: u32,
    space: ScenarioSpace,
    guarantee: Guarantee,
) -> Outcome {
    let outcome = Explorer::new(name, cases)
        .registry(replication::registry())
        .find_violation(space.strategy(), keeps(guarantee));
    println!("{NAIVE} broke {guarantee:?} under:");
    for fault in &outcome.scenario.faults {
        println!("  {fault}");
    }
    println!("{}", outcome.verdicts());
    let mut fenced = outcome.scenario.clone();
    fenced.system = FENCED.into();
    let verdicts = replication::registry().run(&fenced).unwrap().verdicts();
    assert!(
        verdicts.passed(),
        "{FENCED} on the same schedule: {verdicts}"
    );
    outcome
}

/// A partition cuts the primary off: the backups promote one of them,
/// the old primary keeps answering its clients, and after the heal both
/// still lead: the replicas diverge.
#[test]
fn naive_split_brain_after_a_partition_is_found() {
    found_and_fenced_holds(
        "naive_split_brain_after_a_partition_is_found",
        64,
        space(NAIVE, FaultKinds::partitions()),
        Guarantee::Convergent,
    );
}

/// A primary paused long enough to be replaced comes back believing it
/// still leads, and goes on serving: what its successor acknowledged is
/// lost to readers of the old primary.
#[test]
fn naive_paused_primary_keeps_serving_is_found() {
    let kinds = FaultKinds::only(&[FaultKind::Pause]);
    let outcome = found_and_fenced_holds(
        "naive_paused_primary_keeps_serving_is_found",
        64,
        space(NAIVE, kinds),
        Guarantee::Durable,
    );
    assert!(
        outcome
            .scenario
            .faults
            .iter()
            .any(|f| matches!(f.fault, Fault::Pause { .. })),
        "{:?}",
        outcome.scenario.faults
    );
}

/// No fault from outside, only the engine's buggify points: a backup whose
/// detector suspects the live primary (too early, or because the backup
/// itself was slow) promotes itself, and the naive variant has two
/// primaries.
#[test]
fn naive_split_brain_from_buggify_alone_is_found() {
    let outcome = found_and_fenced_holds(
        "naive_split_brain_from_buggify_alone_is_found",
        64,
        space(NAIVE, FaultKinds::none()).buggify(Buggify::default()),
        Guarantee::Convergent,
    );
    assert!(
        outcome.scenario.faults.is_empty(),
        "{:?}",
        outcome.scenario.faults
    );
    assert!(
        outcome.stats.buggify.values().any(|count| count.hits > 0),
        "{:?}",
        outcome.stats.buggify
    );
}

/// The fenced variant with the engine's buggify points on, under
/// partitions and crashes: every point of the engine is reached, and the
/// points on every request's path fire (a promotion is too rare for its
/// point to fire in every exploration).
#[test]
fn fenced_holds_with_buggify() {
    let kinds = FaultKinds::partitions().with(FaultKind::Crash);
    let registry = replication::registry();
    let space = ScenarioSpace::registered(&registry, FENCED, kinds)
        .unwrap()
        .buggify(Buggify::default());
    let exploration = Explorer::new("fenced_holds_with_buggify", 48)
        .registry(registry)
        .points_in("replisim::replication::four_stage")
        .explore(space.strategy(), testing::holds);
    assert!(exploration.unreached_points().is_empty(), "{exploration}");
    for point in ["backup slow to acknowledge", "reply late after commit"] {
        let fired = exploration
            .buggify
            .iter()
            .any(|(label, count)| label.starts_with(point) && count.hits > 0);
        assert!(fired, "{point} never fired: {exploration}");
    }
}

/// The fenced variant under partitions of every shape, pauses and crashes
/// (aimed at the current primary or any replica), two at once.
#[test]
fn fenced_holds_under_partitions_pauses_and_crashes() {
    let kinds = FaultKinds::partitions()
        .with_all(&[FaultKind::Pause, FaultKind::Crash])
        .simultaneous(2);
    let registry = replication::registry();
    let space = ScenarioSpace::registered(&registry, FENCED, kinds).unwrap();
    Explorer::new("fenced_holds_under_partitions_pauses_and_crashes", 48)
        .registry(registry)
        .explore(space.strategy(), testing::holds);
}

/// With `epoch-not-checked` backups follow a deposed primary that comes
/// back: the search finds a claimed guarantee broken.
#[test]
fn fenced_epoch_not_checked_is_caught() {
    let kinds = FaultKinds::only(&[FaultKind::Isolate, FaultKind::Partition]);
    let space = space(FENCED, kinds).bug("epoch-not-checked");
    let outcome = Explorer::new("fenced_epoch_not_checked_is_caught", 1000)
        .registry(replication::registry())
        .find_violation(space.strategy(), testing::holds);
    println!("caught under:");
    for fault in &outcome.scenario.faults {
        println!("  {fault}");
    }
    planted::assert_passes_without_the_bug(&replication::registry(), &outcome.scenario);
}

/// The primary is cut off from its backups (its clients still reach it)
/// while its clock jumps back by two seconds, far beyond the lease's drift
/// bound: its lease looks fresh for two seconds more, and it serves reads
/// after the backups elected a successor that acknowledged newer writes.
/// (Clients give up on a write after 150 ms and follow the redirects to
/// the successor; the workload is mostly reads, so some clients stay with
/// the old primary meanwhile.) Without the jump the same schedule is
/// linearizable.
#[test]
fn fenced_clock_jump_beyond_the_drift_bound_breaks_the_read_lease() {
    let scenario = |seed: u64, skewed: bool| {
        let mut scenario = Scenario::new(FENCED, seed);
        scenario.clients = 3;
        scenario.workload.keys = 1;
        scenario.workload.ops_per_client = 150;
        scenario.workload.mix.0.insert("read".into(), 40);
        scenario.config = serde_json::json!({"client_timeout": {"secs": 0, "nanos": 150_000_000}});
        scenario.faults = vec![
            ScheduledFault::at(
                100,
                Fault::Isolate {
                    node: Target::role("primary"),
                },
            )
            .lasting(1000),
        ];
        if skewed {
            scenario.faults.push(ScheduledFault::at(
                100,
                Fault::ClockSkew {
                    node: Target::Replica(0),
                    offset_ms: -2_000,
                    drift_ppm: 0,
                },
            ));
        }
        scenario
    };
    let registry = replication::registry();
    let seed = (0..20)
        .find(|&seed| {
            let verdicts = registry.run(&scenario(seed, true)).unwrap().verdicts();
            verdicts.linearizability.is_violation()
        })
        .expect("no stale read in 20 runs with the primary's clock jumping back");
    let skewed = registry.run(&scenario(seed, true)).unwrap();
    println!(
        "seed {seed}: {}\nscenario: {}",
        skewed.verdicts().linearizability,
        skewed.scenario.to_json()
    );
    let verdicts = registry.run(&scenario(seed, false)).unwrap().verdicts();
    assert!(verdicts.passed(), "without the clock jump: {verdicts}");
}
