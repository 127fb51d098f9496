//! Raft under the nemesis: it keeps every guarantee it claims (log
//! agreement included) with every fault kind, drawn at random or by swarm
//! search with faults triggered on its declared events; the leader's
//! isolation lets the majority go on; and a planted bug is caught and
//! shrunk by the search mode named in its test.

#[path = "support/planted.rs"]
mod planted;

use replisim::{
    check::Guarantee,
    replication,
    sim::{
        Fault, Outcome, Scenario, ScheduledFault, Status, Target, check_determinism, run_recorded,
    },
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

/// The leader and one follower cut off from the other three: the minority
/// side commits nothing once an election timeout has passed (its leader
/// may still finish what was in flight at the cut), while the majority
/// side elects a leader of its own and commits and acknowledges writes
/// during the cut; every check holds after the heal.
#[test]
fn a_minority_makes_no_progress_while_the_majority_does() {
    let registry = replication::registry();
    let (cut, heal, election_timeout) = (300, 900, 300);
    let mut scenario = Scenario::new("raft", 7);
    scenario.replicas = 5;
    scenario.workload.ops_per_client = 90;
    // Who leads at the cut: the run is the same until then without faults.
    let quiet = registry.run(&scenario).unwrap();
    let leader = quiet
        .role_changes
        .iter()
        .rfind(|c| c.epoch.is_some() && c.time < cut * 1_000_000)
        .expect("a leader before the cut")
        .replica;
    let minority = vec![leader, (leader + 1) % 5];
    scenario.faults = vec![
        ScheduledFault::at(
            cut,
            Fault::Partition {
                groups: vec![minority.clone()],
            },
        )
        .lasting(heal - cut),
    ];
    let (outcome, trace) =
        run_recorded(&scenario, registry.system_for(&scenario).unwrap()).unwrap();
    let verdicts = outcome.verdicts();
    assert!(verdicts.passed(), "{verdicts}");
    // Who committed an entry, and when (ms), from the trace lines.
    let commits: Vec<(usize, f64)> = trace
        .iter()
        .filter(|line| line.contains(" replisim::raft: committed index "))
        .map(|line| {
            let mut words = line.split_whitespace();
            let ms: f64 = words
                .next()
                .unwrap()
                .trim_end_matches("ms")
                .parse()
                .unwrap();
            let host = words.next().unwrap();
            (host.trim_start_matches("replica-").parse().unwrap(), ms)
        })
        .collect();
    let during = |from: u64| move |&&(_, ms): &&(usize, f64)| ms >= from as f64 && ms < heal as f64;
    let late_minority: Vec<_> = commits
        .iter()
        .filter(during(cut + election_timeout))
        .filter(|(r, _)| minority.contains(r))
        .collect();
    assert!(
        late_minority.is_empty(),
        "the minority committed: {late_minority:?}"
    );
    assert!(
        commits
            .iter()
            .filter(during(cut))
            .any(|(r, _)| !minority.contains(r)),
        "the majority committed nothing during the cut"
    );
    let acknowledged = outcome
        .workload_operations()
        .iter()
        .filter(|op| op.is_ok() && op.op.is_mutation())
        .filter_map(|op| op.complete_time)
        .filter(|t| ((cut + election_timeout) * 1_000_000..heal * 1_000_000).contains(t))
        .count();
    assert!(acknowledged > 0, "no write acknowledged during the cut");
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
/// election and overwrites them. Found within the budget, and shrunk (to
/// 1 to 4 faults as a rule; a runner seed in CI once needed 5, each of
/// them needed for that network timing).
#[test]
fn vote_without_log_check_is_caught_and_shrunk() {
    caught_and_shrunk("vote-without-log-check", Search::Random, 400);
}

/// `vote-before-persist`: a voter that crashes (alone, or in a power loss)
/// before its vote reached the disk votes again in the same term, and the
/// term gets a second leader: `exclusive-roles` (Raft's election safety)
/// sees it the moment the second leader takes the role, whether or not
/// the two leaders' logs ever come to disagree. About one case in 40
/// finds it. Found within the budget, and shrunk.
#[test]
fn vote_before_persist_is_caught_and_shrunk() {
    caught_and_shrunk("vote-before-persist", Search::Random, 600);
}

/// `truncate-on-stale-append`: a late append cuts entries off a
/// follower's log that the leader already counted as committed; the
/// log-agreement check sees a running replica drop a committed entry the
/// step it happens (before, the case needed the leader lost and the
/// follower elected: one in 350). About one case in 3 finds it. Found
/// within the budget, and shrunk.
#[test]
fn truncate_on_stale_append_is_caught_and_shrunk() {
    caught_and_shrunk("truncate-on-stale-append", Search::Random, 100);
}

/// `commit-old-term-by-count` (figure 8): leaders struck in turn leave an
/// entry of an old term on a majority, committed by counting, then
/// replaced by a later leader. About one case in 250 finds it, so the
/// budget (a minute or two of one core) is kept out of the default run.
/// Found within the budget, and shrunk (a churn's three strikes and the
/// faults that keep a replica behind).
#[test]
#[ignore = "long: up to 3000 cases; cargo test --test raft -- --ignored"]
fn commit_old_term_by_count_is_caught_and_shrunk() {
    caught_and_shrunk("commit-old-term-by-count", Search::Random, 3000);
}

/// Guided search finds it too, and replisim's structural shrinker (a
/// guided case has no proptest value tree) shrinks it as far.
#[test]
fn vote_without_log_check_is_caught_by_guided_search_and_shrunk() {
    caught_and_shrunk("vote-without-log-check", Search::Guided, 400);
}

/// Explores `bug` with `search` until a safety guarantee (linearizable,
/// durable, log agreement, exclusive roles: what the planted bugs break)
/// fails within `cases`. The shrunk case is as small as shrinking can
/// make it by dropping faults (without any one of its faults it passes:
/// how many it keeps depends on the network timing its seed drew) and
/// passes without the bug.
fn caught_and_shrunk(bug: &str, search: Search, cases: u32) {
    let kinds = FaultKinds::everything()
        .without(FaultKind::Corruption)
        .simultaneous(2);
    let space = space(kinds).bug(bug).search(search);
    let registry = replication::registry();
    let outcome = Explorer::this_test(cases)
        .registry(registry.clone())
        .find_violation_space(&space, safe);
    let scenario = &outcome.scenario;
    for dropped in 0..scenario.faults.len() {
        let mut smaller = scenario.clone();
        smaller.faults.remove(dropped);
        let run = registry.run(&smaller).unwrap();
        assert_eq!(
            safe(&run),
            Ok(()),
            "not shrunk: it fails without fault {dropped} of {:?}",
            scenario.faults
        );
    }
    planted::assert_passes_without_the_bug(&registry, scenario);
}

/// Whether `outcome` kept every safety guarantee; the verdicts if not.
fn safe(outcome: &Outcome) -> Result<(), String> {
    let verdicts = outcome.verdicts();
    let safety = [
        Guarantee::Linearizable,
        Guarantee::Durable,
        Guarantee::LogAgreement,
        Guarantee::ExclusiveRoles,
    ];
    match safety
        .iter()
        .any(|&g| verdicts.status(g) == Status::Violated)
    {
        true => Err(verdicts.to_string()),
        false => Ok(()),
    }
}
