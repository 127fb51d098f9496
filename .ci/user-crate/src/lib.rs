//! A user's single-node key-value store with a bug: it keeps its data in
//! memory only, so a crash loses what it acknowledged. Its `buggify!` and
//! `sometimes!` points show that replisim's link-time registry sees a
//! user's library (`tests/points.rs`).

use std::{cell::RefCell, collections::BTreeMap, rc::Rc};

use replisim::{
    LocalBoxFuture,
    history::{Completion, Op},
    net::{Handler, RpcClient, RpcConfig, serve},
    node::{
        ClientContext, Declaration, KvClient, NodeContext, NodeResult, System,
        completion_of_error,
    },
};

pub struct MyStore;

impl System for MyStore {
    fn declaration(&self) -> Declaration {
        Declaration {
            replicas: 1..=1,
            ..Declaration::default()
        }
    }

    fn replica(&self, node: NodeContext) -> LocalBoxFuture<'static, NodeResult> {
        Box::pin(async move {
            let data: Rc<RefCell<BTreeMap<String, String>>> = Rc::default();
            let probe = data.clone();
            node.state.publish(move || probe.borrow().clone());
            let handler: Handler<Op, Completion> = Rc::new(move |op: Op| {
                let mut data = data.borrow_mut();
                let result = match op {
                    Op::Read { key, .. } => Completion::Ok(data.get(&key).cloned()),
                    Op::Write { key, value } => {
                        data.insert(key, value);
                        Completion::Ok(None)
                    }
                    Op::Append { key, value } => {
                        data.entry(key).or_default().push_str(&value);
                        Completion::Ok(None)
                    }
                    Op::Cas { key, from, to } => match data.get(&key) {
                        Some(current) if *current == from => {
                            data.insert(key, to);
                            Completion::Ok(None)
                        }
                        _ => Completion::Fail("cas mismatch".into()),
                    },
                    other => Completion::Fail(format!("no {} here", other.name())),
                };
                replisim::sometimes!("a read found a value", matches!(result, Completion::Ok(Some(_))));
                Box::pin(async move {
                    if replisim::buggify!("slow reply") {
                        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
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
        Box::new(MyClient(rpc))
    }
}

struct MyClient(RpcClient<Op, Completion>);

#[replisim::async_trait(?Send)]
impl KvClient for MyClient {
    async fn call(&mut self, op: &Op) -> Completion {
        self.0.call(op).await.unwrap_or_else(completion_of_error)
    }
}
