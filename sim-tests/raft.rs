//! Raft under the nemesis: it keeps every guarantee it claims (log
//! agreement included) with every fault kind, drawn at random or by swarm
//! search with faults triggered on its declared events; the leader's
//! isolation lets the majority go on; and a planted bug is caught and
//! shrunk by the search mode named in its test.

use replisim::{
    replication,
    sim::{Fault, Scenario, ScheduledFault, Target, check_determinism},
    strategy::{FaultKind, FaultKinds, ScenarioSpace, Search},
    testing::{self, Explorer},
};

fn space(kinds: FaultKinds) -> ScenarioSpace {
    ScenarioSpace::registered(&replication::registry(), "raft", kinds).unwrap()
}

#[test]
fn raft_keeps_its_claims_under_every_fault() {
    let kinds = FaultKinds::everything().simultaneous(2);
    Explorer::this_test(48)
        .registry(replication::registry())
        .explore(space(kinds).strategy(), testing::holds);
}

/// Swarm search strikes harder (dense subsets of kinds, faults triggered
/// on votes, commits and elections): no false positive either.
#[test]
fn raft_keeps_its_claims_under_swarm_search() {
    let kinds = FaultKinds::everything().simultaneous(2);
    Explorer::this_test(48)
        .registry(replication::registry())
        .explore(
            space(kinds).search(Search::Swarm).strategy(),
            testing::holds,
        );
}

/// The leader cut off from the others for a while: the majority elects a
/// new leader and acknowledges writes during the cut; the old leader
/// commits nothing alone, and every check holds after the heal.
#[test]
fn the_majority_goes_on_while_the_leader_is_isolated() {
    let mut scenario = Scenario::new("raft", 11);
    scenario.replicas = 5;
    scenario.workload.ops_per_client = 80;
    scenario.faults = vec![
        ScheduledFault::at(
            300,
            Fault::Isolate {
                node: Target::role("leader"),
            },
        )
        .lasting(600),
    ];
    let outcome = replication::registry().run(&scenario).unwrap();
    let verdicts = outcome.verdicts();
    assert!(verdicts.passed(), "{verdicts}");
    let (start, end) = (300_000_000, 900_000_000);
    let acknowledged_during_the_cut = outcome
        .workload_operations()
        .iter()
        .filter(|op| op.is_ok() && op.op.is_mutation())
        .filter(|op| op.invoke_time >= start && op.complete_time.is_some_and(|t| t < end))
        .count();
    assert!(
        acknowledged_during_the_cut > 0,
        "the majority acknowledged no write while the leader was cut off"
    );
    let leaders: Vec<_> = outcome
        .role_changes
        .iter()
        .filter(|c| c.epoch.is_some() && (start..end).contains(&c.time))
        .collect();
    assert!(!leaders.is_empty(), "no new leader during the cut");
    assert!(
        !outcome.recovery_times().is_empty() || outcome.role_losses().is_empty(),
        "a loss followed by acknowledged writes has a recovery time"
    );
}

/// Elections draw their timeouts from the node's seeded RNG: the same
/// scenario, with crashes, gives the same digest twice.
#[test]
fn elections_are_deterministic() {
    let registry = replication::registry();
    let mut scenario = Scenario::new("raft", 5);
    scenario.faults = vec![
        ScheduledFault::at(
            200,
            Fault::Crash {
                node: Target::role("leader"),
            },
        )
        .lasting(100),
    ];
    check_determinism(&scenario, registry.system_for(&scenario).unwrap()).unwrap();
}

/// `vote-without-log-check`: a candidate missing committed entries wins an
/// election and overwrites them. Found within the budget, and shrunk.
#[test]
fn vote_without_log_check_is_caught_and_shrunk() {
    caught_and_shrunk("vote-without-log-check", Search::Random, 400);
}

/// Guided search finds it too, and replisim's structural shrinker (a
/// guided case has no proptest value tree) shrinks it as far.
#[test]
fn vote_without_log_check_is_caught_by_guided_search_and_shrunk() {
    caught_and_shrunk("vote-without-log-check", Search::Guided, 400);
}

/// Explores `bug` with `search` until a claimed guarantee fails within
/// `cases`; the shrunk case has at most 3 faults and passes without the bug.
fn caught_and_shrunk(bug: &str, search: Search, cases: u32) {
    let kinds = FaultKinds::everything()
        .without(FaultKind::Corruption)
        .simultaneous(2);
    let space = space(kinds).bug(bug).search(search);
    let outcome = Explorer::this_test(cases)
        .registry(replication::registry())
        .find_violation_space(&space, |outcome| {
            let verdicts = outcome.verdicts();
            match verdicts.violated() {
                true => Err(verdicts.to_string()),
                false => Ok(()),
            }
        });
    let faults = &outcome.scenario.faults;
    assert!(faults.len() <= 3, "not shrunk: {faults:?}");
    let mut fixed = outcome.scenario.clone();
    fixed.bug = None;
    let verdicts = replication::registry().run(&fixed).unwrap().verdicts();
    assert!(verdicts.passed(), "without the bug: {verdicts}");
}
