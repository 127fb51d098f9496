//! The nemesis does what it says: every fault kind, applied to a running
//! cluster, has an effect the outcome counts and is effective as its
//! definition says, and is inert where it can do nothing (which the
//! explorer reports, or fails on); duplication reaches a system with a
//! framing of its own through the message hook; clock skew breaks a
//! last-writer-wins store that relies on clocks; an event-triggered fault
//! hits the exact moment "backup applied, primary not yet answered".

#[path = "nemesis/framed.rs"]
mod framed;
#[path = "support/idle.rs"]
mod idle;
#[path = "nemesis/lww.rs"]
mod lww;

use std::rc::Rc;

use replisim::{
    check::durability,
    history::{EventType, Op},
    replication,
    sim::{self, DiskSpec, Fault, FaultCount, Outcome, Scenario, ScheduledFault, Target, Trigger},
    testing::Explorer,
    workload::Mix,
};

/// The replica holding the built-in engine's primary role.
fn primary() -> Target {
    Target::role("primary")
}

/// Runs a scenario of a built-in protocol.
fn run(scenario: &Scenario) -> Outcome {
    replication::registry().run(scenario).unwrap()
}

fn r(id: usize) -> Target {
    Target::Replica(id)
}

/// Fault `fault` at 100 ms, undone 100 ms later.
fn briefly(fault: Fault) -> ScheduledFault {
    ScheduledFault::at(100, fault).lasting(100)
}

/// One row of the catalogue: a scenario change and the counters it must move.
struct Case {
    kind: &'static str,
    faults: Vec<ScheduledFault>,
    system: &'static str,
    disk: DiskSpec,
    bug: Option<&'static str>,
    effects: &'static [&'static str],
}

fn case(kind: &'static str, faults: Vec<ScheduledFault>, effects: &'static [&'static str]) -> Case {
    Case {
        kind,
        faults,
        disk: DiskSpec::default(),
        system: "sync",
        bug: None,
        effects,
    }
}

/// Backups that keep an unsynced tail crash three times while the
/// workload runs, on a disk with `disk`'s classes. The tail is several
/// writes long: the planted bug defers the backups' fsync to the next
/// replicate message, which lazy (asynchronous) shipping sends every 25 ms.
fn crash_backups_on(kind: &'static str, disk: DiskSpec, effects: &'static [&'static str]) -> Case {
    let crash = |at_ms, id| ScheduledFault::at(at_ms, Fault::Crash { node: r(id) }).lasting(30);
    Case {
        kind,
        faults: [110, 220, 330]
            .into_iter()
            .flat_map(|at_ms| [crash(at_ms, 1), crash(at_ms, 2)])
            .collect(),
        system: "async",
        disk,
        bug: Some("ack-before-persist"),
        effects,
    }
}

fn catalogue() -> Vec<Case> {
    let to_backups =
        |fault: fn(Vec<usize>, Vec<usize>) -> Fault| briefly(fault(vec![0], vec![1, 2]));
    vec![
        case(
            "crash",
            vec![briefly(Fault::Crash { node: r(1) })],
            &["nodes_crashed", "nodes_restarted"],
        ),
        case(
            "power loss",
            vec![briefly(Fault::PowerLoss)],
            &["nodes_crashed", "nodes_restarted"],
        ),
        case(
            "restart",
            vec![
                ScheduledFault::at(100, Fault::Crash { node: r(2) }),
                ScheduledFault::at(150, Fault::Restart { node: r(2) }),
            ],
            &["nodes_restarted"],
        ),
        case(
            "lose",
            vec![ScheduledFault::at(150, Fault::Lose { node: primary() })],
            &["nodes_lost"],
        ),
        case(
            "pause",
            vec![briefly(Fault::Pause { node: primary() })],
            &["nodes_paused", "links_cut"],
        ),
        case(
            "partition and heal",
            vec![
                ScheduledFault::at(
                    100,
                    Fault::Partition {
                        groups: vec![vec![2]],
                    },
                ),
                ScheduledFault::at(200, Fault::Heal),
            ],
            &["links_cut", "messages_dropped", "links_repaired"],
        ),
        case(
            "isolate",
            vec![briefly(Fault::Isolate { node: r(1) })],
            &["links_cut", "messages_dropped"],
        ),
        case(
            "bridge",
            vec![briefly(Fault::Bridge {
                left: vec![0],
                right: vec![2],
                bridge: 1,
            })],
            &["links_cut", "messages_dropped"],
        ),
        case(
            "one-way",
            vec![to_backups(|from, to| Fault::OneWay { from, to })],
            &["links_cut", "messages_dropped"],
        ),
        case(
            "slow",
            vec![to_backups(|between, and| Fault::Slow {
                between,
                and,
                latency_ms: 40,
            })],
            &["links_slowed"],
        ),
        case(
            "hold",
            vec![to_backups(|between, and| Fault::Hold { between, and })],
            &["links_held", "messages_held"],
        ),
        case(
            "lossy",
            vec![to_backups(|between, and| Fault::Lossy {
                between,
                and,
                percent: 30,
            })],
            &["links_lossy", "messages_dropped"],
        ),
        case(
            // The primary's shipper reconnects after the isolation and
            // re-sends its last request.
            "duplicate",
            vec![
                ScheduledFault::at(50, Fault::Duplicate { node: r(0) }).lasting(400),
                briefly(Fault::Isolate { node: r(1) }),
            ],
            &["nodes_duplicating", "duplicates_sent"],
        ),
        // The built-in engine never reads its wall clock (skewing it is
        // inert there); the last-writer-wins store stamps writes with it.
        Case {
            system: "lww",
            ..case(
                "clock skew",
                vec![briefly(Fault::ClockSkew {
                    node: r(1),
                    offset_ms: -500,
                    drift_ppm: 1000,
                })],
                &["clocks_skewed", "skewed_clock_reads"],
            )
        },
        crash_backups_on(
            "torn writes",
            DiskSpec {
                torn_writes: true,
                ..DiskSpec::default()
            },
            &["nodes_crashed", "disk_bytes_dropped"],
        ),
        Case {
            kind: "io errors",
            faults: Vec::new(),
            disk: DiskSpec {
                io_error_probability: 0.01,
                ..DiskSpec::default()
            },
            system: "sync",
            bug: None,
            effects: &["disk_io_errors"],
        },
        crash_backups_on(
            "corruption",
            DiskSpec {
                corruption_probability: 0.5,
                ..DiskSpec::default()
            },
            &["disk_bytes_dropped"],
        ),
    ]
}

fn run_case(case: &Case) -> Outcome {
    let mut scenario = Scenario::new(case.system, 5);
    scenario.faults = case.faults.clone();
    scenario.disk = case.disk;
    scenario.bug = case.bug.map(str::to_string);
    match case.system {
        "lww" => sim::run_system(&scenario, Rc::new(lww::Lww)).unwrap(),
        _ => run(&scenario),
    }
}

fn effect(outcome: &Outcome, kind: &str) -> u64 {
    outcome.stats.effects.get(kind).copied().unwrap_or(0)
}

/// Every fault kind is applied at least once, moves its counters and is
/// effective as its definition says.
#[test]
fn every_fault_kind_has_a_counted_effect() {
    let mut failures = Vec::new();
    for case in catalogue() {
        let outcome = run_case(&case);
        assert_eq!(
            outcome.stats.faults_applied,
            case.faults.len(),
            "{}",
            case.kind
        );
        for (kind, count) in &outcome.stats.faults {
            if count.effective != count.fired {
                failures.push(format!("{}: {kind} is {count}", case.kind));
            }
        }
        for kind in case.effects {
            if effect(&outcome, kind) == 0 {
                failures.push(format!(
                    "{}: {kind} is 0 in {:?}",
                    case.kind, outcome.stats.effects
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "faults without effect:\n{}",
        failures.join("\n")
    );
}

/// Each fault kind, where it can do nothing to synchronous replication (3
/// replicas: the primary, replica 0, ships to backups 1 and 2, which never
/// talk to each other), fires and is not effective; a fault that can act
/// beside it at the same time is credited alone.
#[test]
fn every_fault_kind_is_inert_where_it_can_do_nothing() {
    let lose = |id| ScheduledFault::at(100, Fault::Lose { node: r(id) });
    let later = |fault| ScheduledFault::at(150, fault).lasting(100);
    // Links between the backups only.
    let backups = |fault: fn(Vec<usize>, Vec<usize>) -> Fault| briefly(fault(vec![1], vec![2]));
    let count = |fired, effective| FaultCount {
        fired,
        effective,
        ..FaultCount::default()
    };
    // A case's name, its faults, and the counts it must give by kind.
    type InertCase<'a> = (&'a str, Vec<ScheduledFault>, Vec<(&'a str, FaultCount)>);
    let cases: Vec<InertCase> = vec![
        (
            "crash of a lost replica",
            vec![lose(2), later(Fault::Crash { node: r(2) })],
            vec![("crash", count(1, 0)), ("lose", count(1, 1))],
        ),
        (
            "a replica lost twice",
            vec![lose(2), later(Fault::Lose { node: r(2) })],
            vec![("lose", count(2, 1))],
        ),
        (
            "pause of a lost replica",
            vec![lose(2), later(Fault::Pause { node: r(2) })],
            vec![("lose", count(1, 1)), ("pause", count(1, 0))],
        ),
        (
            "power loss while every replica is down",
            vec![
                ScheduledFault::at(100, Fault::PowerLoss).lasting(200),
                ScheduledFault::at(150, Fault::PowerLoss).lasting(10),
            ],
            vec![("power-loss", count(2, 1))],
        ),
        (
            "restart of a running replica",
            vec![briefly(Fault::Restart { node: r(1) })],
            vec![("restart", count(1, 0))],
        ),
        (
            "heal with nothing cut",
            vec![briefly(Fault::Heal)],
            vec![("heal", count(1, 0))],
        ),
        (
            "a cut between the backups beside an isolation",
            vec![
                briefly(Fault::Bridge {
                    left: vec![1],
                    right: vec![2],
                    bridge: 0,
                }),
                briefly(Fault::Isolate { node: r(2) }),
            ],
            vec![("bridge", count(1, 0)), ("isolate", count(1, 1))],
        ),
        (
            "one-way between the backups",
            vec![backups(|from, to| Fault::OneWay { from, to })],
            vec![("one-way", count(1, 0))],
        ),
        (
            "slow links between the backups",
            vec![backups(|between, and| Fault::Slow {
                between,
                and,
                latency_ms: 40,
            })],
            vec![("slow", count(1, 0))],
        ),
        (
            "held links between the backups",
            vec![backups(|between, and| Fault::Hold { between, and })],
            vec![("hold", count(1, 0))],
        ),
        (
            "lossy links between the backups",
            vec![backups(|between, and| Fault::Lossy {
                between,
                and,
                percent: 50,
            })],
            vec![("lossy", count(1, 0))],
        ),
        (
            // Connections that never break are never re-established, so
            // nothing is re-sent.
            "duplication without a reconnect",
            vec![briefly(Fault::Duplicate { node: r(1) })],
            vec![("duplicate", count(1, 0))],
        ),
        (
            // The built-in engine never reads its wall clock.
            "clock skew of a replica that never reads its clock",
            vec![briefly(Fault::ClockSkew {
                node: r(1),
                offset_ms: 500,
                drift_ppm: 0,
            })],
            vec![("clock-skew", count(1, 0))],
        ),
    ];
    let mut failures = Vec::new();
    for (name, faults, expected) in cases {
        let mut scenario = Scenario::new("sync", 5);
        scenario.faults = faults;
        let outcome = run(&scenario);
        let expected: std::collections::BTreeMap<String, FaultCount> = expected
            .into_iter()
            .map(|(kind, count)| (kind.to_string(), count))
            .collect();
        if outcome.stats.faults != expected {
            failures.push(format!("{name}: {:?}", outcome.stats.faults));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Duplication reaches a system that frames its own messages when it
/// writes them through the message hook: they are counted (messages per
/// operation) and written twice while the fault is in force, and a
/// duplicated append, applied twice, breaks linearizability. Without the
/// hook replisim sees none of its messages: duplication is reported not
/// applicable, and the same scenario passes.
#[test]
fn duplication_reaches_a_system_with_its_own_framing_through_the_message_hook() {
    let run = |hooked| {
        let mut scenario = Scenario::new("framed", 3);
        scenario.replicas = 1;
        scenario.clients = 2;
        scenario.workload.keys = 2;
        scenario.workload.mix = Mix::new([("read", 1), ("append", 1)]);
        scenario.faults =
            vec![ScheduledFault::at(50, Fault::Duplicate { node: r(0) }).lasting(100)];
        sim::run_system(&scenario, Rc::new(framed::Framed { hooked })).unwrap()
    };
    let hooked = run(true);
    assert!(
        hooked.verdicts().linearizability.is_violation(),
        "{}",
        hooked.verdicts()
    );
    let duplicate = hooked.stats.faults["duplicate"];
    assert_eq!((duplicate.fired, duplicate.effective), (1, 1));
    assert!(
        effect(&hooked, "duplicates_sent") > 0,
        "{:?}",
        hooked.stats.effects
    );
    let ops = hooked.workload_operations().len() as u64;
    assert!(
        effect(&hooked, "messages_delivered") >= 2 * ops,
        "a request and an answer per operation: {:?}",
        hooked.stats.effects
    );
    let phases = hooked.phases();
    assert!(
        phases
            .iter()
            .all(|phase| phase.messages_per_op.is_some_and(|m| m >= 2.0)),
        "{phases:?}"
    );

    let unhooked = run(false);
    assert!(unhooked.verdicts().passed(), "{}", unhooked.verdicts());
    let duplicate = unhooked.stats.faults["duplicate"];
    assert!(duplicate.is_not_applicable(), "{duplicate:?}");
    assert_eq!(duplicate.to_string(), "not applicable (1 fired)");
    assert_eq!(effect(&unhooked, "messages_delivered"), 0);
}

/// Torn writes are what leaves partial records behind: the same crashes
/// on a disk without them drop whole unsynced writes, nothing partial.
#[test]
fn without_torn_writes_a_crash_leaves_no_partial_record() {
    let case = crash_backups_on("no torn writes", DiskSpec::default(), &[]);
    let outcome = run_case(&case);
    assert_eq!(effect(&outcome, "nodes_crashed"), 6);
    assert_eq!(
        effect(&outcome, "disk_bytes_dropped"),
        0,
        "{:?}",
        outcome.stats.effects
    );
}

/// The trace layer recognises turmoil's own events for a dropped and a
/// held message by what they carry (target `turmoil`, fields `src`, `dst`
/// and `protocol`, message "Drop" or "Hold"); if an upgrade of turmoil
/// changes them, this fails and says so.
#[test]
fn partitions_count_dropped_messages() {
    let partition = briefly(Fault::Partition {
        groups: vec![vec![0]],
    });
    let hold = briefly(Fault::Hold {
        between: vec![0],
        and: vec![1, 2],
    });
    for (fault, effect_kind, message) in [
        (partition, "messages_dropped", "Drop"),
        (hold, "messages_held", "Hold"),
    ] {
        let outcome = run_case(&case(effect_kind, vec![fault], &[]));
        assert!(
            effect(&outcome, effect_kind) > 0,
            "no {effect_kind}: turmoil no longer logs a `trace!(target: \"turmoil\", \
             ?src, ?dst, protocol = %message, {message:?})` event per message \
             (did an upgrade change it?); src/sim/trace/effects.rs must learn \
             the new event. Effects: {:?}",
            outcome.stats.effects
        );
    }
}

/// A last-writer-wins store on synchronised clocks keeps every
/// acknowledged write. When replica 0's clock jumps 10 s ahead for the
/// first 50 ms, the writes it stamps then win over every later write, and
/// the durability check reports the later acknowledged writes lost.
#[test]
fn clock_skew_makes_last_writer_wins_lose_acknowledged_writes() {
    let run = |faults: Vec<ScheduledFault>| {
        let mut scenario = Scenario::new("lww", 11);
        scenario.workload.keys = 1;
        scenario.workload.ops_per_client = 30;
        scenario.workload.mix = Mix::new([("read", 1), ("write", 2)]);
        scenario.faults = faults;
        let outcome = sim::run_system(&scenario, Rc::new(lww::Lww)).unwrap();
        let verdict = durability::check(&outcome.history.operations(), &outcome.final_reads());
        (outcome, verdict)
    };
    let (_, in_sync) = run(Vec::new());
    assert!(in_sync.is_ok(), "without skew: {in_sync}");
    let skew = Fault::ClockSkew {
        node: r(0),
        offset_ms: 10_000,
        drift_ppm: 0,
    };
    let (outcome, skewed) = run(vec![ScheduledFault::at(0, skew).lasting(50)]);
    assert!(skewed.is_violation(), "with skew: {skewed}");
    assert!(effect(&outcome, "clocks_skewed") == 1 && effect(&outcome, "skewed_clock_reads") > 0);
}

/// "The backup applied the write, then the primary died before answering":
/// the primary is lost at the moment replica 1 logs that it applied
/// replicated entries starting at entry 8 (a field value: entries 1 to 7
/// were applied before and did not fire it). The eighth write is the first
/// the client hears nothing about (`info`), yet it survives in the final
/// state, and synchronous replication passes every check.
#[test]
fn primary_lost_after_backup_applied_leaves_an_info_write_that_survives() {
    let mut scenario = Scenario::new("sync", 21);
    scenario.clients = 1;
    scenario.workload.keys = 64;
    scenario.workload.ops_per_client = 20;
    scenario.workload.mix = Mix::new([("write", 1)]);
    let applied = Trigger::message("applied replicated entries")
        .on(r(1))
        .with_field("first", 8);
    scenario.faults = vec![ScheduledFault::at(0, Fault::Lose { node: primary() }).when(applied)];
    let outcome = run(&scenario);
    assert_eq!(effect(&outcome, "faults_triggered"), 1);
    assert_eq!(outcome.lost, vec![0]);
    let operations = outcome.workload_operations();
    let unanswered = operations
        .iter()
        .position(|op| op.kind != EventType::Ok)
        .expect("a write went unanswered");
    assert_eq!(unanswered, 7, "{:?}", outcome.history);
    let eighth = &operations[unanswered];
    assert_eq!(eighth.kind, EventType::Info);
    let Op::Write { key, value } = &eighth.op else {
        panic!("{:?} is not a write", eighth.op)
    };
    assert_eq!(
        outcome.final_reads().get(key),
        Some(&Some(value.clone())),
        "the unanswered write did not survive: {:?}",
        outcome.history
    );
    let verdicts = outcome.verdicts();
    assert!(verdicts.passed(), "{verdicts}");
}

/// A trigger with a delay fires its fault that long after the event: the
/// same crash, on the same event of the same run, starts exactly 20 ms
/// later than without the delay.
#[test]
fn a_delayed_trigger_fires_after_its_event() {
    let crash_start = |delay_ms| {
        let mut scenario = Scenario::new("sync", 21);
        let applied = Trigger::message("applied replicated entries")
            .on(r(1))
            .with_field("first", 3)
            .delayed(delay_ms);
        scenario.faults = vec![
            ScheduledFault::at(0, Fault::Crash { node: r(2) })
                .lasting(10)
                .when(applied),
        ];
        let outcome = run(&scenario);
        assert_eq!(effect(&outcome, "faults_triggered"), 1);
        outcome.fault_windows[0].start
    };
    assert_eq!(crash_start(20) - crash_start(0), 20_000_000);
}

/// An armed trigger whose event never comes never fires its fault: no
/// replica logs that message, and replica 1 applies entries, but never a
/// batch of 99.
#[test]
fn event_trigger_waits_for_its_event() {
    let mut scenario = Scenario::new("sync", 21);
    let crash = || ScheduledFault::at(60, Fault::Crash { node: r(2) });
    scenario.faults = vec![
        crash().when(Trigger::message("no replica ever logs this").on(r(1))),
        crash().when(
            Trigger::message("applied replicated entries")
                .on(r(1))
                .with_field("count", 99),
        ),
    ];
    let outcome = run(&scenario);
    assert_eq!(outcome.stats.faults_applied, 0);
    assert_eq!(effect(&outcome, "nodes_crashed"), 0);
    assert_eq!(effect(&outcome, "faults_triggered"), 0);
}

/// Replicas that publish roles and serve nothing: every replica claims to
/// be "leader" in an epoch of its own (replicas 1 and 3 in the highest), and
/// no replica ever holds "coordinator".
fn elected() -> Rc<idle::Idle> {
    Rc::new(idle::Idle {
        declaration: replisim::node::Declaration {
            roles: vec!["leader".into(), "coordinator".into()],
            ..replisim::node::Declaration::default()
        },
        start: |node| node.roles.hold("leader", (node.id % 2) as u64),
    })
}

/// A fault aimed at a role strikes its holder with the highest epoch, then
/// the lowest id; once that holder is down the next one is struck; a role
/// nobody holds makes the fault skip, counted as fired but not effective.
#[test]
fn role_targets_resolve_to_the_holder_with_the_highest_epoch_then_lowest_id() {
    let mut scenario = Scenario::new("elected", 3);
    scenario.replicas = 4;
    // Long enough for every fault to fire: each operation takes a think time.
    scenario.workload.ops_per_client = 20;
    let crash = |at_ms, role| {
        ScheduledFault::at(
            at_ms,
            Fault::Crash {
                node: Target::role(role),
            },
        )
    };
    scenario.faults = vec![
        crash(10, "leader"),
        crash(20, "leader"),
        crash(30, "coordinator"),
    ];
    let outcome = sim::run_system(&scenario, elected()).unwrap();
    let down: Vec<&str> = outcome
        .fault_windows
        .iter()
        .map(|w| w.label.as_str())
        .collect();
    assert_eq!(down, ["replica-1 down", "replica-3 down"]);
    assert_eq!(effect(&outcome, "faults_skipped"), 1);
    let crash = outcome.stats.faults["crash"];
    assert_eq!((crash.fired, crash.effective), (3, 2));
}

/// A scenario naming a role its system does not publish is refused, with
/// the field and the roles it does publish.
#[test]
fn an_undeclared_role_is_refused_naming_the_field() {
    let mut scenario = Scenario::new("elected", 3);
    scenario.faults = vec![ScheduledFault::at(5, Fault::Pause { node: primary() })];
    let error = sim::run_system(&scenario, elected())
        .err()
        .expect("refused")
        .to_string();
    assert!(
        error.contains(
            "faults[0].node: elected publishes no role \"primary\" (its roles: leader, coordinator)"
        ),
        "{error}"
    );
}

/// The explorer adds fault counts up over every run and names the kinds
/// that fired and were never effective: here a crash aimed at a role no
/// replica ever holds, and duplication of replicas that send no message
/// (not applicable), while a pause of the leader is effective. By default
/// that is a warning in its summary; with `fail_on_inert` it fails.
#[test]
fn the_explorer_reports_inert_fault_kinds_and_fails_on_them_when_asked() {
    let mut scenario = Scenario::new("elected", 3);
    scenario.replicas = 3;
    scenario.workload.ops_per_client = 20;
    scenario.faults = vec![
        ScheduledFault::at(
            10,
            Fault::Crash {
                node: Target::role("coordinator"),
            },
        ),
        ScheduledFault::at(20, Fault::Duplicate { node: r(0) }).lasting(50),
        ScheduledFault::at(
            30,
            Fault::Pause {
                node: Target::role("leader"),
            },
        )
        .lasting(20),
    ];
    let explorer = Explorer::new("the_explorer_reports_inert_fault_kinds", 3)
        .system(|_| elected())
        .shrink_iters(0);
    let strategy = proptest::strategy::Just(scenario);
    let exploration = explorer.explore(strategy.clone(), |_| Ok(()));
    assert_eq!(exploration.runs, 3);
    assert_eq!(exploration.inert(), ["crash", "duplicate"]);
    assert!(exploration.faults["duplicate"].is_not_applicable());
    assert_eq!(exploration.faults["pause"].effective, 3);

    let strict = explorer.fail_on_inert(true);
    let panic = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        strict.explore(strategy, |_| Ok(()))
    }))
    .expect_err("inert kinds fail the test");
    let message = panic.downcast_ref::<String>().expect("a formatted message");
    assert!(
        message.contains("crash (3 fired, none effective), duplicate (not applicable"),
        "{message}"
    );
}

/// "Sometimes" properties: the explorer counts the runs that reached each
/// one, and fails an exploration that passed without ever reaching one
/// (here, a crash that struck a running replica: the only crash is aimed
/// at a role nobody holds).
#[test]
fn an_exploration_that_never_reaches_a_sometimes_property_fails() {
    let mut scenario = Scenario::new("elected", 3);
    scenario.faults = vec![
        ScheduledFault::at(
            10,
            Fault::Crash {
                node: Target::role("coordinator"),
            },
        ),
        ScheduledFault::at(
            30,
            Fault::Pause {
                node: Target::role("leader"),
            },
        )
        .lasting(20),
    ];
    let effective = |kind: &'static str| {
        move |outcome: &replisim::sim::Outcome| {
            outcome
                .stats
                .faults
                .get(kind)
                .is_some_and(|count| count.effective > 0)
        }
    };
    let strategy = proptest::strategy::Just(scenario);
    let reached = Explorer::new("sometimes_reached", 2)
        .system(|_| elected())
        .sometimes("the leader paused", effective("pause"))
        .explore(strategy.clone(), |_| Ok(()));
    assert_eq!(reached.sometimes["the leader paused"], 2);

    let never = Explorer::new("sometimes_never_reached", 2)
        .system(|_| elected())
        .sometimes("the leader paused", effective("pause"))
        .sometimes("a replica crashed", effective("crash"));
    let panic = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        never.explore(strategy, |_| Ok(()))
    }))
    .expect_err("a property never reached fails the exploration");
    let message = panic.downcast_ref::<String>().expect("a formatted message");
    assert!(
        message.contains("never reached in 2 runs: [\"a replica crashed\"]"),
        "{message}"
    );
}

/// Every replica down with nothing to bring one back (a power loss that
/// lasts until the workload ends): no operation can succeed, so the
/// workload ends at once instead of letting its clients retry until its
/// time limit. A power loss that ends lets the workload go on.
#[test]
fn the_workload_ends_when_every_replica_is_down_for_good() {
    let mut scenario = Scenario::new("sync", 3);
    scenario.workload.ops_per_client = 200;
    scenario.faults = vec![ScheduledFault::at(100, Fault::PowerLoss)];
    let down = run(&scenario);
    let workload_limit_ms = scenario.limits.workload.as_millis() as u64;
    assert!(
        down.stats.simulated_ms < workload_limit_ms,
        "{} ms simulated",
        down.stats.simulated_ms
    );
    assert!(down.verdicts().passed(), "{}", down.verdicts());

    scenario.faults = vec![ScheduledFault::at(100, Fault::PowerLoss).lasting(100)];
    let back = run(&scenario);
    let after = back
        .history
        .operations()
        .into_iter()
        .filter(|o| o.invoke_time > 200_000_000 && o.is_ok())
        .count();
    assert!(
        after > 0,
        "no operation succeeded after the power came back"
    );
}
