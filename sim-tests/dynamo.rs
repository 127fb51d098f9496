//! Dynamo-style leaderless replication ([`replisim::replication::dynamo`],
//! `dynamo:N/R/W`) under random fault schedules:
//!
//! - `dynamo:3/2/2` keeps every guarantee it claims (durable with
//!   siblings, convergent, no unexpected exit) under partitions and
//!   crashes; with a strict quorum it also claims, and keeps, `no-stale-read`
//!   and `read-your-writes` under partitions;
//! - R+W≤N (`dynamo:3/1/1`) gives stale reads under partitions, measured
//!   (versions missed, ms behind);
//! - R+W>N with a sloppy quorum and a partition loses read-your-writes:
//!   the write went to fallbacks the read does not ask; the same schedule
//!   with a strict quorum keeps it;
//! - anti-entropy and hinted handoff bring every key's preference-list
//!   nodes to the same versions after the heal, five nodes under
//!   partitions;
//! - the planted bugs are caught, shrunk, and the same schedule passes
//!   without them: `read-repair-overwrites-sibling` (durable),
//!   `anti-entropy-skips-range` (convergent), `hint-dropped-on-restart`
//!   (durable);
//! - `explore --json` shows `dynamo:3/1/1` breaking `no-stale-read`, with
//!   its staleness as numbers.

#[path = "support/planted.rs"]
mod planted;
#[path = "support/explore.rs"]
mod support;

use replisim::{
    check::{Guarantee, Verdict},
    replication,
    sim::{Outcome, Status},
    strategy::{FaultKind, FaultKinds, ScenarioSpace},
    testing::{self, Explorer},
};

fn space(system: &str, kinds: FaultKinds) -> ScenarioSpace {
    ScenarioSpace::registered(&replication::registry(), system, kinds).unwrap()
}

/// A property: `guarantee` holds (claimed or not).
fn keeps(guarantee: Guarantee) -> impl Fn(&Outcome) -> Result<(), String> {
    move |outcome| {
        let verdicts = outcome.verdicts();
        match verdicts.status(guarantee) == Status::Violated {
            true => Err(format!("{guarantee}: {}", verdicts.describe(guarantee))),
            false => Ok(()),
        }
    }
}

fn strict() -> serde_json::Value {
    serde_json::json!({"sloppy_quorum": false})
}

#[test]
fn dynamo_keeps_its_claims_under_partitions_and_crashes() {
    let kinds = FaultKinds::partitions()
        .with(FaultKind::Crash)
        .simultaneous(2);
    Explorer::new("dynamo_keeps_its_claims_under_partitions_and_crashes", 24)
        .registry(replication::registry())
        .explore(space("dynamo:3/2/2", kinds).strategy(), testing::holds);
}

/// A strict quorum with R+W>N claims fresh reads, and keeps them.
#[test]
fn strict_overlapping_quorums_keep_fresh_reads_under_partitions() {
    let space = space("dynamo:3/2/2", FaultKinds::partitions()).config(strict());
    Explorer::new(
        "strict_overlapping_quorums_keep_fresh_reads_under_partitions",
        16,
    )
    .registry(replication::registry())
    .explore(space.strategy(), testing::holds);
}

/// R+W≤N: a read asks one node, which may not have the write another
/// node acknowledged.
#[test]
fn r_plus_w_not_above_n_gives_stale_reads() {
    let space = space("dynamo:3/1/1", FaultKinds::partitions());
    let outcome = Explorer::new("r_plus_w_not_above_n_gives_stale_reads", 64)
        .registry(replication::registry())
        .find_violation(space.strategy(), keeps(Guarantee::NoStaleRead));
    let verdicts = outcome.verdicts();
    println!("{}", verdicts.no_stale_read);
    let Verdict::Violation(stale) = &verdicts.no_stale_read else {
        panic!("{verdicts}");
    };
    assert!(stale.staleness.stale > 0 && stale.staleness.max_versions > 0);
    assert!(verdicts.passed(), "no claimed guarantee broken: {verdicts}");
}

/// R+W>N with a sloppy quorum: during a partition a write is acknowledged
/// by fallbacks, and the writer's next read, coordinated elsewhere, asks
/// preference-list nodes that never saw it. A strict quorum refuses that
/// write instead.
#[test]
fn sloppy_quorum_and_a_partition_lose_read_your_writes() {
    let space = space("dynamo:3/2/2", FaultKinds::partitions()).replicas(5);
    let outcome = Explorer::new("sloppy_quorum_and_a_partition_lose_read_your_writes", 200)
        .registry(replication::registry())
        .find_violation(space.strategy(), keeps(Guarantee::ReadYourWrites));
    let verdicts = outcome.verdicts();
    println!("{}", verdicts.read_your_writes);
    assert!(!outcome.scenario.faults.is_empty(), "it takes a partition");
    let mut fixed = outcome.scenario.clone();
    fixed.config = strict();
    let verdicts = replication::registry().run(&fixed).unwrap().verdicts();
    assert_eq!(
        verdicts.status(Guarantee::ReadYourWrites),
        Status::Ok,
        "strict: {verdicts}"
    );
}

/// Five nodes, three copies per key: writes during partitions land on
/// fallbacks as hints, and preference-list nodes miss writes; after the
/// heal, hinted handoff and anti-entropy (not the final reads, which come
/// after the states are judged) bring every key's nodes to one state.
#[test]
fn anti_entropy_and_hinted_handoff_converge_after_heal() {
    let space = space("dynamo:3/2/2", FaultKinds::partitions().simultaneous(2)).replicas(5);
    Explorer::new("anti_entropy_and_hinted_handoff_converge_after_heal", 24)
        .registry(replication::registry())
        .sometimes("the replicas disagreed during the run", |outcome| {
            outcome.stats.converged_after_ms.is_some_and(|ms| ms > 0)
        })
        .explore(space.strategy(), keeps(Guarantee::Convergent));
}

/// Finds `bug` breaking `guarantee` (a claim) within `cases`, and checks
/// that the shrunk schedule keeps every claim without the bug.
fn caught(name: &str, space: ScenarioSpace, bug: &str, guarantee: Guarantee, cases: u32) {
    let outcome = Explorer::new(name, cases)
        .registry(replication::registry())
        .find_violation(space.bug(bug).strategy(), testing::holds);
    let verdicts = outcome.verdicts();
    assert_eq!(verdicts.status(guarantee), Status::Violated, "{verdicts}");
    println!("{}", verdicts.describe(guarantee));
    planted::assert_passes_without_the_bug(&replication::registry(), &outcome.scenario);
}

/// Read repair that resolves siblings to one loses the others: no client
/// saw them, no write superseded them.
#[test]
fn read_repair_overwrites_sibling_is_caught() {
    caught(
        "read_repair_overwrites_sibling_is_caught",
        space("dynamo:3/2/2", FaultKinds::partitions()),
        "read-repair-overwrites-sibling",
        Guarantee::Durable,
        64,
    );
}

/// A node whose anti-entropy skips the range it heads stays behind on the
/// writes of that range it missed during a partition.
#[test]
fn anti_entropy_skips_range_is_caught() {
    let space = space("dynamo:3/2/2", FaultKinds::partitions()).replicas(3);
    caught(
        "anti_entropy_skips_range_is_caught",
        space,
        "anti-entropy-skips-range",
        Guarantee::Convergent,
        300,
    );
}

/// A fallback that keeps the only copy of an acknowledged write as a hint
/// (its preference-list nodes cut off) and restarts before delivering it
/// forgets it.
#[test]
fn hint_dropped_on_restart_is_caught() {
    let kinds = FaultKinds::only(&[FaultKind::Isolate, FaultKind::Crash]).triggered(50);
    let mut space = space("dynamo:1/1/1", kinds)
        .replicas(3)
        .ops_per_client(1..=8);
    // Writes to many keys, so that the lost one is seldom superseded by
    // its client's next write of the same key.
    space.keys = 8..=8;
    caught(
        "hint_dropped_on_restart_is_caught",
        space,
        "hint-dropped-on-restart",
        Guarantee::Durable,
        // About one case in 300 finds it (cases 54 to 683 with six runner
        // seeds; a seventh missed it in 1000): 4000 cases miss it about
        // once in a million runs, and most runs stop within a few hundred.
        4000,
    );
}

/// `replisim explore --json`: `dynamo:3/1/1` breaks `no-stale-read` (not
/// claimed: counted apart) and reports its staleness as numbers.
#[test]
fn explore_reports_stale_reads_of_a_weak_quorum() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("sweep.json");
    let (summary, stdout) = support::explore(
        dir.path(),
        &json,
        &[
            "--protocols",
            "dynamo:3/1/1,dynamo:3/2/2",
            "--runs",
            "20",
            "--faults",
            "partitions",
            "--seed",
            "7",
        ],
    );
    let weak = &summary["systems"][0];
    assert_eq!(weak["system"], "dynamo:3/1/1");
    assert_eq!(
        weak["claims"],
        serde_json::json!(["durable", "convergent", "no-unexpected-exit"])
    );
    assert!(
        weak["checks"]["no-stale-read"]["violated"].as_u64() > Some(0),
        "{weak}"
    );
    assert!(weak["checks"]["read-your-writes"].is_object(), "{weak}");
    assert!(weak["staleness"]["stale"].as_u64() > Some(0), "{weak}");
    assert!(
        weak["staleness"]["max_behind_ms"].as_u64() > Some(0),
        "{weak}"
    );
    assert!(stdout.contains("dynamo:3/1/1: staleness: "), "{stdout}");
    let header = stdout.lines().find(|l| l.starts_with("system")).unwrap();
    assert!(header.contains("no-stale-read") && header.contains("read-your-writes"));
}
