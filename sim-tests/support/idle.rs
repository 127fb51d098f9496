//! A system for tests of the harness itself: each replica does one thing
//! as it starts (publish a role, log something) and then serves nothing;
//! every client operation is refused.

use replisim::{
    LocalBoxFuture,
    history::{Completion, Op},
    node::{ClientContext, Declaration, KvClient, NodeContext, NodeResult, System},
};

pub struct Idle {
    pub declaration: Declaration,
    /// What each replica does as it starts.
    pub start: fn(&NodeContext),
}

impl System for Idle {
    fn declaration(&self) -> Declaration {
        self.declaration.clone()
    }

    fn replica(&self, node: NodeContext) -> LocalBoxFuture<'static, NodeResult> {
        (self.start)(&node);
        Box::pin(std::future::pending())
    }

    fn client(&self, _ctx: ClientContext) -> Box<dyn KvClient> {
        Box::new(Refused)
    }
}

struct Refused;

#[replisim::async_trait(?Send)]
impl KvClient for Refused {
    async fn call(&mut self, _op: &Op) -> Completion {
        Completion::Fail("nothing serves".into())
    }
}
