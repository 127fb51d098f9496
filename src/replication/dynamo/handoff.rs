//! Hinted handoff: a fallback delivers the writes it keeps for an
//! unreachable preference-list node once that node takes them, and then
//! forgets them. Every `handoff_interval` it tries each node it holds
//! hints for, all of that node's keys in one request.

use std::{collections::BTreeMap, rc::Rc};

use super::replica::{Replica, Request, Response};

impl Replica {
    /// Delivers hints forever.
    pub async fn deliver_hints(self: Rc<Self>) {
        loop {
            tokio::time::sleep(self.config.handoff_interval).await;
            for target in self.hinted_nodes() {
                let hints = self.hints_for(target);
                let keys: BTreeMap<String, _> = hints
                    .iter()
                    .map(|(key, siblings)| (key.clone(), siblings.0.clone()))
                    .collect();
                match self.peers.call(target, &Request::Deliver { keys }).await {
                    Ok(Response::Stored) => {
                        tracing::debug!(target: "replisim::dynamo", target, keys = hints.len(), "delivered hints");
                        if let Err(error) = self.forget_hints(target, &hints).await {
                            self.disk_failed(error);
                        }
                    }
                    Ok(_) => {}
                    Err(error) => {
                        tracing::trace!(target: "replisim::dynamo", target, %error, "hints not delivered");
                    }
                }
            }
        }
    }
}
