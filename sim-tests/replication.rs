//! What the four-stage engine keeps and loses, measured under faults
//! (random scenarios through [`replisim::testing::Explorer`]):
//! synchronous replication keeps every acknowledged write and converges;
//! asynchronous replication loses acknowledged writes when the primary is
//! lost before shipping, but not to crashes that keep the disk; synchronous
//! replication stops completing writes while a backup is cut off.

use proptest::prelude::*;
use replisim::{
    history::EventType,
    replication,
    sim::{Fault, Outcome, Scenario, ScheduledFault, Target, repro},
    strategy::{FaultKind, FaultKinds, ScenarioSpace},
    testing::{self, Explorer},
};

/// Runs a scenario of a built-in protocol.
fn run(scenario: &Scenario) -> Outcome {
    replication::registry().run(scenario).unwrap()
}

fn at(at_ms: u64, fault: Fault) -> ScheduledFault {
    ScheduledFault::at(at_ms, fault)
}

fn lose_primary(at_ms: u64) -> ScheduledFault {
    at(
        at_ms,
        Fault::Lose {
            node: Target::role("primary"),
        },
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(12))]

    /// Async replication with crashes that keep the disk: the primary
    /// persists before it answers, so nothing acknowledged is lost.
    #[test]
    fn async_loses_nothing_to_crash_and_restart(
        seed in any::<u64>(),
        crashed in 0usize..3,
        crash_at in 0u64..400,
        down_for in 10u64..300,
    ) {
        let mut scenario = Scenario::new("async", seed);
        scenario.faults = vec![
            at(crash_at, Fault::Crash { node: Target::Replica(crashed) }),
            at(crash_at + down_for, Fault::Restart { node: Target::Replica(crashed) }),
        ];
        let outcome = run(&scenario);
        let verdicts = outcome.verdicts();
        prop_assert!(verdicts.passed(), "{verdicts}\nscenario: {}", scenario.to_json());
    }
}

/// Sync replication under every fault but silent disk corruption (which
/// destroys synced data, so no protocol can keep it): crashes, machines
/// lost, partitions of every shape, paused replicas, slow, held, lossy and
/// duplicating links, skewed clocks, torn writes and I/O errors, up to two
/// striking at once. No acknowledged write is lost, the history is
/// linearizable and the survivors converge after heal.
#[test]
fn sync_keeps_acknowledged_writes_and_converges() {
    let kinds = FaultKinds::everything()
        .without(FaultKind::Corruption)
        .simultaneous(2);
    let registry = replication::registry();
    let space = ScenarioSpace::registered(&registry, "sync", kinds).unwrap();
    Explorer::new("sync_keeps_acknowledged_writes_and_converges", 24)
        .registry(registry)
        .explore(space.strategy(), testing::holds);
}

/// Async replication answers before shipping, so losing the primary loses
/// the writes it had acknowledged but not yet shipped. The search over
/// seeds and loss times is bounded; the test asserts a loss is found and
/// prints how to reproduce it.
#[test]
fn async_loses_acknowledged_writes_when_the_primary_is_lost() {
    let found = (0..20u64)
        .flat_map(|seed| [150, 250, 350].map(|t| (seed, t)))
        .find_map(|(seed, lose_at)| {
            let mut scenario = Scenario::new("async", seed);
            scenario.faults = vec![lose_primary(lose_at)];
            let outcome = run(&scenario);
            outcome
                .verdicts()
                .durability
                .is_violation()
                .then_some(outcome)
        });
    let outcome = found.expect("async replication lost no acknowledged write in 60 runs");
    let system = replication::registry()
        .system_for(&outcome.scenario)
        .unwrap();
    let saved = repro::save_failure(
        &outcome,
        system,
        &repro::output_dir(),
        replisim::report::render_outcome,
    )
    .unwrap();
    println!(
        "found: {}\nreproduce with: cargo run -- run --protocol async --seed {} --crash-primary-at {}\n    or: cargo run -- replay {}",
        outcome.verdicts().durability,
        outcome.scenario.seed,
        outcome.scenario.faults[0].at_ms,
        saved.scenario_file.display()
    );
    // The same schedule under synchronous replication loses nothing.
    let mut sync = outcome.scenario.clone();
    sync.system = "sync".into();
    assert!(run(&sync).verdicts().passed());
}

/// Synchronous replication needs every backup: while one is partitioned
/// away no write completes, and writes complete again after the heal.
/// Asynchronous replication keeps completing them throughout.
#[test]
fn sync_stops_writing_while_a_backup_is_cut_off_and_resumes_after_heal() {
    const CUT: u64 = 200;
    const HEAL: u64 = 900;
    let writes_ok_between = |system: &str, from_ms: u64, to_ms: u64| {
        let mut scenario = Scenario::new(system, 3);
        scenario.workload.ops_per_client = 150;
        scenario.faults = vec![
            at(
                CUT,
                Fault::Partition {
                    groups: vec![vec![2]],
                },
            ),
            at(HEAL, Fault::Heal),
        ];
        let outcome = run(&scenario);
        assert!(outcome.verdicts().passed(), "{}", outcome.verdicts());
        outcome
            .workload_operations()
            .iter()
            .filter(|op| op.op.is_mutation() && op.kind == EventType::Ok)
            .filter(|op| {
                let done = op.complete_time.unwrap() / 1_000_000;
                from_ms <= done && done < to_ms
            })
            .count()
    };
    // Allow one link latency for writes already on the wire.
    assert_eq!(writes_ok_between("sync", CUT + 10, HEAL), 0);
    assert!(writes_ok_between("sync", HEAL + 300, u64::MAX) > 10);
    assert!(writes_ok_between("sync", 0, CUT) > 10);
    assert!(writes_ok_between("async", CUT + 10, HEAL) > 10);
    assert!(writes_ok_between("semi-sync:1", CUT + 10, HEAL) > 10);
}

/// Reading from a backup trades consistency for load: backups lag the
/// primary (lazily under async replication), so some reads are stale and
/// the history is not linearizable, while durability still holds.
#[test]
fn reads_from_a_backup_can_be_stale() {
    let stale = (0..10).find_map(|seed| {
        let mut scenario = Scenario::new("async", seed);
        scenario.config = serde_json::json!({"read_from_backup": true});
        let verdicts = run(&scenario).verdicts();
        assert!(verdicts.durability.is_ok(), "{verdicts}");
        verdicts.linearizability.is_violation().then_some(verdicts)
    });
    println!("{}", stale.expect("no stale read from a backup in 10 runs"));
}

/// A failover that can only reach a lagging backup promotes it; when the
/// more up-to-date backup comes back, its entries from the old epoch
/// disagree with the new primary's log and are truncated, and the replicas
/// converge (the asynchronous writes only it held are lost, as async
/// replication allows).
#[test]
fn a_backup_with_a_divergent_tail_truncates_it_and_converges() {
    let mut scenario = Scenario::new("async", 11);
    scenario.workload.ops_per_client = 300;
    scenario.workload.keys = 2;
    scenario.faults = vec![
        at(
            100,
            Fault::Partition {
                groups: vec![vec![1]],
            },
        )
        .lasting(200),
        at(
            300,
            Fault::Pause {
                node: Target::Replica(2),
            },
        )
        .lasting(2000),
        lose_primary(300),
    ];
    let outcome = run(&scenario);
    let verdicts = outcome.verdicts();
    assert!(verdicts.convergence.is_ok(), "{verdicts}");
    let truncated = outcome.stats.effects.get("log_entries_truncated");
    assert!(
        truncated.is_some_and(|&n| n > 0),
        "{:?}",
        outcome.stats.effects
    );
}

/// Requests duplicated by at-least-once retries are applied once: appends
/// do not double. Short pauses of the primary lose its answers to requests
/// it did apply; the clients time out, reconnect and re-send them.
#[test]
fn duplicated_requests_are_applied_once() {
    let mut scenario = Scenario::new("sync", 5);
    scenario.workload.mix.0.insert("append".into(), 4);
    scenario.workload.ops_per_client = 100;
    let pause = |at_ms| {
        at(
            at_ms,
            Fault::Pause {
                node: Target::Replica(0),
            },
        )
        .lasting(20)
    };
    scenario.faults = vec![
        at(
            0,
            Fault::Duplicate {
                node: Target::Replica(0),
            },
        ),
        pause(100),
        pause(700),
        pause(1300),
    ];
    let outcome = run(&scenario);
    let verdicts = outcome.verdicts();
    assert!(verdicts.passed(), "{verdicts}");
    let duplicates = outcome.stats.effects.get("duplicates_sent");
    assert!(
        duplicates.is_some_and(|&n| n > 0),
        "{:?}",
        outcome.stats.effects
    );
}
