//! A user's own replica code, written from scratch here, put under a
//! property test the same way the built-in protocols are.
//!
//! `NaiveStore` is deliberately naive: the primary keeps the data in memory
//! only and forwards writes to the others without waiting. The framework
//! must find that a crash of the primary loses acknowledged writes, and must
//! find nothing wrong when there are no faults.
//!
//! It also shows what a system must do about a lost primary. Without
//! failover, losing the primary's machine makes every later operation fail:
//! every safety check passes on such a run (nothing was acknowledged), so
//! the store claims liveness and the `live` check says what happened. With
//! failover (`NaiveStore { fails_over: true }`) it opts into the harness's
//! operator: when a machine is lost, `fail_over` promotes the lowest
//! surviving replica and clients follow the directory to it.

use std::{cell::RefCell, rc::Rc};

use futures_util::future::LocalBoxFuture;
use proptest::prelude::*;
use replisim::{
    check::Guarantee,
    history::{Completion, Op},
    net::{Handler, RpcClient, RpcConfig, serve},
    node::{
        ClientContext, Declaration, KvClient, NodeContext, NodeResult, System, completion_of_error,
    },
    replication::kv::KvStore,
    sim::{Fault, Scenario, ScheduledFault, Target, run_system},
};
use serde::{Deserialize, Serialize};

/// What replicas say to each other and what clients say to them.
#[derive(Debug, Clone, Serialize, Deserialize)]
enum Message {
    /// A client's operation, for the primary.
    Client(Op),
    /// A mutation the primary applied, for a backup.
    Replicate(Op),
    /// Become the primary in this epoch (from the failover operator).
    Promote(u64),
}

const PRIMARY: &str = "primary";

struct NaiveStore {
    fails_over: bool,
}

impl System for NaiveStore {
    fn declaration(&self) -> Declaration {
        Declaration {
            roles: vec![PRIMARY.into()],
            claims: vec![
                Guarantee::Linearizable,
                Guarantee::Durable,
                Guarantee::Convergent,
                Guarantee::Live,
                Guarantee::NoUnexpectedExit,
            ],
            operator_failover: self.fails_over,
            ..Declaration::default()
        }
    }

    fn replica(&self, node: NodeContext) -> LocalBoxFuture<'static, NodeResult> {
        Box::pin(async move {
            let store = Rc::new(RefCell::new(KvStore::default()));
            let probe = store.clone();
            node.state.publish(move || probe.borrow().snapshot());
            if node.id == 0 {
                node.roles.hold(PRIMARY, 1);
            }
            let peers: Vec<_> = (0..node.replicas.len())
                .filter(|&i| i != node.id)
                .map(|i| {
                    RpcClient::<Message, Completion>::new(
                        node.net.clone(),
                        node.replicas[i].clone(),
                        RpcConfig::default(),
                    )
                })
                .map(|c| Rc::new(tokio::sync::Mutex::new(c)))
                .collect();
            let roles = node.roles.clone();
            let handler: Handler<Message, Completion> = Rc::new(move |message| {
                let result = match message {
                    Message::Client(op) => {
                        let result = store.borrow_mut().apply(&op);
                        if op.is_mutation() {
                            for peer in &peers {
                                let (peer, op) = (peer.clone(), op.clone());
                                tokio::task::spawn_local(async move {
                                    peer.lock().await.notify(&Message::Replicate(op)).await
                                });
                            }
                        }
                        result
                    }
                    Message::Replicate(op) => store.borrow_mut().apply(&op),
                    Message::Promote(epoch) => {
                        roles.hold(PRIMARY, epoch);
                        Completion::Ok(None)
                    }
                };
                Box::pin(async move { Some(result) })
            });
            serve(node.net.bind(node.port()).await?, handler).await?;
            Ok(())
        })
    }

    fn client(&self, ctx: ClientContext) -> Box<dyn KvClient> {
        Box::new(NaiveClient {
            ctx,
            connections: Default::default(),
        })
    }

    fn fail_over(
        &self,
        ctx: ClientContext,
        lost: Vec<usize>,
    ) -> LocalBoxFuture<'static, Option<usize>> {
        Box::pin(async move {
            let survivor = (0..ctx.replicas.len()).find(|id| !lost.contains(id))?;
            let mut rpc = RpcClient::<Message, Completion>::new(
                ctx.net,
                ctx.replicas[survivor].clone(),
                RpcConfig::default(),
            );
            let epoch = 1 + lost.len() as u64;
            match rpc.call(&Message::Promote(epoch)).await {
                Ok(Completion::Ok(_)) => Some(survivor),
                _ => None,
            }
        })
    }
}

/// Sends each operation to the replica the directory names as primary.
struct NaiveClient {
    ctx: ClientContext,
    connections: std::collections::BTreeMap<usize, RpcClient<Message, Completion>>,
}

#[async_trait::async_trait(?Send)]
impl KvClient for NaiveClient {
    async fn call(&mut self, op: &Op) -> Completion {
        let primary = self.ctx.directory.primary();
        let (net, addr) = (self.ctx.net.clone(), self.ctx.replicas[primary].clone());
        let connection = self
            .connections
            .entry(primary)
            .or_insert_with(|| RpcClient::new(net, addr, RpcConfig::default()));
        let request = Message::Client(op.clone());
        connection
            .call(&request)
            .await
            .unwrap_or_else(completion_of_error)
    }
}

/// The naive store's primary lost for good at `at_ms`.
fn primary_lost(at_ms: u64, fails_over: bool) -> replisim::sim::Outcome {
    let mut scenario = Scenario::new("naive", 3);
    let lose = Fault::Lose {
        node: Target::role(PRIMARY),
    };
    scenario.faults = vec![ScheduledFault::at(at_ms, lose)];
    run_system(&scenario, Rc::new(NaiveStore { fails_over })).unwrap()
}

/// Without failover a lost primary leaves a store that fails every
/// operation: safe, and useless. The liveness check says so, and when.
#[test]
fn a_lost_primary_without_failover_is_not_live() {
    let verdicts = primary_lost(77, false).verdicts();
    assert!(verdicts.liveness.is_violation(), "{verdicts}");
    let text = verdicts.liveness.to_string();
    assert!(
        text.contains("replica-0 lost at 77 ms; no operation succeeded afterwards"),
        "{text}"
    );
    assert!(!verdicts.passed());
}

/// With failover the store serves again after losing its primary.
#[test]
fn a_lost_primary_with_failover_is_live() {
    let verdicts = primary_lost(77, true).verdicts();
    assert!(verdicts.liveness.is_ok(), "{verdicts}");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(8))]

    #[test]
    fn naive_store_is_fine_without_faults(seed in any::<u64>()) {
        let store = NaiveStore { fails_over: false };
        let outcome = run_system(&Scenario::new("naive", seed), Rc::new(store)).unwrap();
        prop_assert!(outcome.verdicts().passed(), "{}", outcome.verdicts());
    }
}

/// The planted bug: memory-only state. A crash and restart of the primary
/// loses what it acknowledged, and the durability check says so.
#[test]
fn naive_store_loses_acknowledged_writes_on_crash() {
    let mut scenario = Scenario::new("naive", 7);
    scenario.workload.keys = 16;
    let crash = Fault::Crash {
        node: Target::Replica(0),
    };
    scenario.faults = vec![ScheduledFault::at(150, crash).lasting(50)];
    let outcome = run_system(&scenario, Rc::new(NaiveStore { fails_over: false })).unwrap();
    assert!(
        outcome.verdicts().durability.is_violation(),
        "{}",
        outcome.verdicts()
    );
}
