//! A user's own replica code, written from scratch here, put under a
//! property test the same way the built-in protocols are.
//!
//! `NaiveStore` is deliberately naive: replica 0 keeps the data in memory
//! only and forwards writes to the others without waiting. The framework
//! must find that a crash of replica 0 loses acknowledged writes, and must
//! find nothing wrong when there are no faults.

use std::{cell::RefCell, rc::Rc};

use futures_util::future::LocalBoxFuture;
use proptest::prelude::*;
use replisim::{
    history::{Completion, Op},
    net::{Handler, RpcClient, RpcConfig, serve},
    node::{ClientContext, KvClient, NodeContext, NodeResult, System, completion_of_error},
    replication::kv::KvStore,
    sim::{Fault, Scenario, ScheduledFault, Target, run_system},
};

struct NaiveStore;

impl System for NaiveStore {
    fn replica(&self, node: NodeContext) -> LocalBoxFuture<'static, NodeResult> {
        Box::pin(async move {
            let store = Rc::new(RefCell::new(KvStore::default()));
            let probe = store.clone();
            node.state.publish(move || probe.borrow().snapshot());
            // Replica 0 takes the writes and forwards them to the others.
            let followers = if node.id == 0 {
                1..node.replicas.len()
            } else {
                0..0
            };
            let peers: Vec<_> = followers
                .map(|i| {
                    RpcClient::<Op, Completion>::new(
                        node.net.clone(),
                        node.replicas[i].clone(),
                        RpcConfig::default(),
                    )
                })
                .map(|c| Rc::new(tokio::sync::Mutex::new(c)))
                .collect();
            let handler: Handler<Op, Completion> = Rc::new(move |op: Op| {
                let result = store.borrow_mut().apply(&op);
                if op.is_mutation() {
                    for peer in &peers {
                        let (peer, op) = (peer.clone(), op.clone());
                        tokio::task::spawn_local(
                            async move { peer.lock().await.notify(&op).await },
                        );
                    }
                }
                Box::pin(async move { Some(result) })
            });
            serve(node.net.bind(node.port()).await?, handler).await?;
            Ok(())
        })
    }

    fn client(&self, ctx: ClientContext) -> Box<dyn KvClient> {
        Box::new(NaiveClient(RpcClient::new(
            ctx.net,
            ctx.replicas[0].clone(),
            RpcConfig::default(),
        )))
    }
}

struct NaiveClient(RpcClient<Op, Completion>);

#[async_trait::async_trait(?Send)]
impl KvClient for NaiveClient {
    async fn call(&mut self, op: &Op) -> Completion {
        self.0.call(op).await.unwrap_or_else(completion_of_error)
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(8))]

    #[test]
    fn naive_store_is_fine_without_faults(seed in any::<u64>()) {
        let outcome = run_system(&Scenario::new("naive", seed), Rc::new(NaiveStore)).unwrap();
        prop_assert!(outcome.verdicts().passed(), "{}", outcome.verdicts());
    }
}

/// The planted bug: memory-only state. A crash and restart of replica 0
/// loses what it acknowledged, and the durability check says so.
#[test]
fn naive_store_loses_acknowledged_writes_on_crash() {
    let mut scenario = Scenario::new("naive", 7);
    scenario.workload.keys = 16;
    let crash = Fault::Crash {
        node: Target::Replica(0),
    };
    scenario.faults = vec![ScheduledFault::at(150, crash).lasting(50)];
    let outcome = run_system(&scenario, Rc::new(NaiveStore)).unwrap();
    assert!(
        outcome.verdicts().durability.is_violation(),
        "{}",
        outcome.verdicts()
    );
}
