//! A last-writer-wins store written the way many are: a write is stamped
//! with the receiving replica's wall clock ([`NodeContext::clock`]),
//! acknowledged at once and gossiped to every peer; each replica keeps the
//! value with the highest stamp. It is correct only while clocks agree: a
//! replica whose clock runs behind stamps new writes as old, and they lose
//! to writes that really came before them.

use std::{cell::RefCell, collections::BTreeMap, rc::Rc};

use futures_util::future::LocalBoxFuture;
use replisim::{
    history::{Completion, Op},
    net::{Handler, RpcClient, RpcConfig, serve},
    node::{ClientContext, KvClient, NodeContext, NodeResult, System, completion_of_error},
};
use serde::{Deserialize, Serialize};

/// The system; clients send to replica `process % replicas`.
pub struct Lww;

#[derive(Debug, Clone, Serialize, Deserialize)]
enum Message {
    Client(Op),
    Gossip {
        key: String,
        stamp: u128,
        value: String,
    },
}

/// Key -> (stamp in ns since the epoch, value); ties go to the larger value.
type Store = BTreeMap<String, (u128, String)>;

fn merge(store: &mut Store, key: String, stamp: u128, value: String) {
    let newer = store
        .get(&key)
        .is_none_or(|old| (stamp, &value) > (old.0, &old.1));
    if newer {
        store.insert(key, (stamp, value));
    }
}

impl System for Lww {
    fn replica(&self, node: NodeContext) -> LocalBoxFuture<'static, NodeResult> {
        Box::pin(async move {
            let store = Rc::new(RefCell::new(Store::new()));
            let probe = store.clone();
            node.state.publish(move || {
                probe
                    .borrow()
                    .iter()
                    .map(|(k, (_, v))| (k.clone(), v.clone()))
                    .collect()
            });
            let peers: Rc<Vec<_>> = Rc::new(
                (0..node.replicas.len())
                    .filter(|&i| i != node.id)
                    .map(|i| {
                        let peer = RpcClient::<Message, Completion>::new(
                            node.net.clone(),
                            node.replicas[i].clone(),
                            RpcConfig::default(),
                        );
                        Rc::new(tokio::sync::Mutex::new(peer))
                    })
                    .collect(),
            );
            let clock = node.clock.clone();
            let handler: Handler<Message, Completion> = Rc::new(move |message| {
                let reply = match message {
                    Message::Gossip { key, stamp, value } => {
                        merge(&mut store.borrow_mut(), key, stamp, value);
                        None
                    }
                    Message::Client(Op::Read { key, .. }) => Some(Completion::Ok(
                        store.borrow().get(&key).map(|(_, v)| v.clone()),
                    )),
                    Message::Client(Op::Write { key, value }) => {
                        let stamp = clock.now().as_nanos();
                        merge(&mut store.borrow_mut(), key.clone(), stamp, value.clone());
                        for peer in peers.iter() {
                            let peer = peer.clone();
                            let gossip = Message::Gossip {
                                key: key.clone(),
                                stamp,
                                value: value.clone(),
                            };
                            tokio::task::spawn_local(async move {
                                peer.lock().await.notify(&gossip).await
                            });
                        }
                        Some(Completion::Ok(None))
                    }
                    Message::Client(_) => {
                        Some(Completion::Fail("lww stores reads and writes only".into()))
                    }
                };
                Box::pin(async move { reply })
            });
            serve(node.net.bind(node.port()).await?, handler).await?;
            Ok(())
        })
    }

    fn client(&self, ctx: ClientContext) -> Box<dyn KvClient> {
        let replica = ctx.replicas[ctx.process as usize % ctx.replicas.len()].clone();
        Box::new(LwwClient(RpcClient::new(
            ctx.net,
            replica,
            RpcConfig::default(),
        )))
    }
}

struct LwwClient(RpcClient<Message, Completion>);

#[async_trait::async_trait(?Send)]
impl KvClient for LwwClient {
    async fn call(&mut self, op: &Op) -> Completion {
        self.0
            .call(&Message::Client(op.clone()))
            .await
            .unwrap_or_else(completion_of_error)
    }
}
