//! Faults from inside a user's own code: `buggify!` points and
//! `sometimes!` assertions in a store written here, as a user's crate
//! would write it.
//!
//! `RetryingStore` is one replica behind clients that retry a request
//! once when its reply is late. The replica applies whatever arrives and
//! does not recognise a retry, so an append retried after its first copy
//! was applied is applied twice. Without faults a reply is never late: no
//! random schedule of the scenario space finds the bug. The replica's
//! `buggify!("slow reply")` delays a reply past the client's deadline;
//! with buggify on, an exploration finds the double append.
//!
//! The client's `sometimes!("a request was retried", ...)` states what
//! the exploration must reach: without buggify it never does, and the
//! exploration fails saying so. The replica's `buggify!("slow restart")`
//! is on its restart path, which scenarios without crashes never take: an
//! exploration reports it as never reached, and so does a sweep
//! (`replisim explore --buggify`), whose shards add up.

use std::{cell::Cell, collections::BTreeMap, rc::Rc, time::Duration};

use futures_util::future::LocalBoxFuture;
use replisim::{
    check::Guarantee,
    history::{Completion, Op},
    net::{Handler, RpcClient, RpcConfig, serve},
    node::{
        ClientContext, Declaration, KvClient, NodeContext, NodeResult, System, completion_of_error,
    },
    points::PointCount,
    registry::Registry,
    replication::kv::KvStore,
    sim::{Buggify, Outcome, run_system},
    strategy::{FaultKinds, ScenarioSpace, Search},
    sweep::{Shard, SweepConfig, SweepOptions, SweepSummary, sweep},
    testing::{self, Exploration, Explorer},
};

/// Longer than the clients' request deadline (`RpcConfig`'s 200 ms).
const SLOW_REPLY: Duration = Duration::from_millis(300);

struct RetryingStore {
    /// How many times the replica's software started in this run.
    starts: Cell<u32>,
}

fn store() -> Rc<dyn System> {
    Rc::new(RetryingStore {
        starts: Cell::new(0),
    })
}

impl System for RetryingStore {
    fn declaration(&self) -> Declaration {
        Declaration {
            replicas: 1..=1,
            claims: vec![Guarantee::Linearizable, Guarantee::NoUnexpectedExit],
            ..Declaration::default()
        }
    }

    fn replica(&self, node: NodeContext) -> LocalBoxFuture<'static, NodeResult> {
        let restarted = self.starts.replace(self.starts.get() + 1) > 0;
        Box::pin(async move {
            if restarted && replisim::buggify!("slow restart") {
                tokio::time::sleep(SLOW_REPLY).await;
            }
            let store = Rc::new(std::cell::RefCell::new(KvStore::default()));
            let probe = store.clone();
            node.state.publish(move || probe.borrow().snapshot());
            let handler: Handler<Op, Completion> = Rc::new(move |op| {
                let result = store.borrow_mut().apply(&op);
                Box::pin(async move {
                    if replisim::buggify!("slow reply") {
                        tokio::time::sleep(SLOW_REPLY).await;
                    }
                    Some(result)
                })
            });
            serve(node.net.bind(node.port()).await?, handler).await?;
            Ok(())
        })
    }

    fn client(&self, ctx: ClientContext) -> Box<dyn KvClient> {
        let rpc = RpcClient::new(ctx.net, ctx.replicas[0].clone(), RpcConfig::default());
        Box::new(RetryingClient { rpc })
    }
}

/// Sends each operation, and once more when the first reply is late.
struct RetryingClient {
    rpc: RpcClient<Op, Completion>,
}

#[async_trait::async_trait(?Send)]
impl KvClient for RetryingClient {
    async fn call(&mut self, op: &Op) -> Completion {
        let first = self.rpc.call(op).await;
        let late = first.as_ref().is_err_and(|error| !error.never_sent());
        replisim::sometimes!("a request was retried", late);
        let answer = match first {
            Err(error) if !error.never_sent() => self.rpc.call(op).await,
            answer => answer,
        };
        answer.unwrap_or_else(completion_of_error)
    }
}

/// The store's scenarios: no faults of the harness's own, appends and
/// reads on few keys.
fn space() -> ScenarioSpace {
    ScenarioSpace::new("retrying-store", FaultKinds::none())
        .declared_by(&*store())
        .ops_per_client(5..=20)
}

/// The counts of the point called `name` (labelled `name at FILE:LINE`).
fn count_of(counts: &BTreeMap<String, PointCount>, name: &str) -> PointCount {
    let prefix = format!("{name} at sim-tests/buggify.rs:");
    let found = counts.iter().find(|(label, _)| label.starts_with(&prefix));
    *found
        .unwrap_or_else(|| panic!("no {prefix}… in {counts:?}"))
        .1
}

/// The message of the panic by which `explore` failed.
fn failure_of(explore: impl FnOnce() -> Exploration) -> String {
    let panic = std::panic::catch_unwind(std::panic::AssertUnwindSafe(explore))
        .expect_err("the exploration fails");
    panic
        .downcast_ref::<String>()
        .expect("a formatted message")
        .clone()
}

/// Buggify points on in half the runs, firing at one reply in ten.
const BUGGIFY: Buggify = Buggify {
    enabled: 0.5,
    fires: 0.1,
};

/// With buggify, an exploration finds the double append; the run that
/// shows it fired the slow reply, and replays with the same digest.
#[test]
fn buggify_finds_a_bug_no_schedule_reaches() {
    let outcome = Explorer::new("buggify_finds_a_bug_no_schedule_reaches", 64)
        .system(|_| store())
        .find_violation(space().buggify(BUGGIFY).strategy(), testing::holds);
    let verdicts = outcome.verdicts();
    assert!(verdicts.linearizability.is_violation(), "{verdicts}");
    let slow = count_of(&outcome.stats.buggify, "slow reply");
    assert!(slow.hits > 0, "{slow:?}");
    assert_eq!(outcome.stats.effects.get("buggify_fired"), Some(&slow.hits));
    let again = run_system(&outcome.scenario, store()).unwrap();
    assert_eq!(again.digest, outcome.digest, "a buggified run replays");
    let mut without = outcome.scenario.clone();
    without.buggify = None;
    let quiet = run_system(&without, store()).unwrap();
    assert!(quiet.verdicts().passed(), "{}", quiet.verdicts());
    assert!(quiet.stats.buggify.values().all(|count| count.hits == 0));
}

/// Without buggify no request is ever retried: the exploration finds no
/// violation, and fails because the client's `sometimes!` never held.
#[test]
fn an_exploration_that_never_retries_fails() {
    let explorer = Explorer::new("an_exploration_that_never_retries_fails", 16).system(|_| store());
    let message = failure_of(|| explorer.explore(space().strategy(), testing::holds));
    assert!(
        message.contains("never reached in 16 runs: [\"a request was retried (sometimes! at sim-tests/buggify.rs:"),
        "{message}"
    );
}

/// With buggify the retry happens, and the point on the restart path,
/// which no run without crashes takes, is reported as never reached (a
/// failure with `fail_on_inert`).
#[test]
fn a_point_never_reached_is_reported() {
    let explorer = Explorer::new("a_point_never_reached_is_reported", 24).system(|_| store());
    let strategy = space().buggify(BUGGIFY).strategy();
    let any_outcome = |_: &Outcome| Ok(());
    let exploration = explorer.explore(strategy.clone(), any_outcome);
    assert!(
        exploration.sometimes["a request was retried"] > 0,
        "{exploration}"
    );
    let unreached = exploration.unreached_points();
    assert_eq!(unreached.len(), 1, "{unreached:?}");
    assert!(
        unreached[0].starts_with("slow restart at sim-tests/buggify.rs:"),
        "{unreached:?}"
    );
    let slow_reply = count_of(&exploration.buggify, "slow reply");
    assert!(
        slow_reply.hits > 0 && slow_reply.reached > slow_reply.hits,
        "{slow_reply:?}"
    );

    let message = failure_of(|| explorer.fail_on_inert(true).explore(strategy, any_outcome));
    assert!(
        message.contains("buggify points never reached in 24 runs: slow restart at"),
        "{message}"
    );
}

/// A sweep with buggify on counts each point per system, and its shards'
/// counts add up to the whole sweep's (the points' decisions come from
/// each scenario's seed, not from where it ran).
#[test]
fn a_sweep_counts_points_and_its_shards_add_up() {
    let mut registry = Registry::new();
    registry.register(
        "retrying-store",
        "retrying-store (sim-tests/buggify.rs)",
        |spec| {
            spec.no_bug()?;
            Ok(store())
        },
    );
    let config = |shard| SweepConfig {
        registry: registry.clone(),
        systems: vec!["retrying-store".into()],
        bug: None,
        options: SweepOptions {
            runs: 12,
            faults: "none".into(),
            simultaneous: 1,
            search: Search::Random,
            shard,
            buggify: true,
        },
        seed: 7,
        threads: 2,
    };
    let kinds = FaultKinds::none();
    let whole = sweep(&config(Shard::ALL), &kinds, |_, _| {}).unwrap();
    let halves: Vec<SweepSummary> = ["1/2", "2/2"]
        .into_iter()
        .map(|shard| sweep(&config(shard.parse().unwrap()), &kinds, |_, _| {}).unwrap())
        .collect();
    let merged = SweepSummary::merge(&halves).unwrap();
    let counts = &whole.systems[0].buggify;
    assert_eq!(merged.systems[0].buggify, *counts);
    assert!(count_of(counts, "slow reply").hits > 0, "{counts:?}");
    assert_eq!(count_of(counts, "slow restart").reached, 0, "{counts:?}");
    assert!(whole.systems[0].sometimes["a request was retried"].hits > 0);
    let text = whole.to_string();
    assert!(
        text.contains(
            "warning: retrying-store: buggify points never reached in 12 runs: slow restart at"
        ),
        "{text}"
    );
}
