//! Coordinating a client's request: any node does it.
//!
//! A write gets a dot from this node's actor and goes to the key's N
//! preference-list nodes at once (this node's own copy without the
//! network); the client is answered once W of them stored it. With a
//! sloppy quorum, each node that cannot be reached (or does not answer in
//! time) is replaced by the next fallback in ring order, asked to keep the
//! write as a hint for it. The sends go on after the answer until every
//! target answered.
//!
//! A read asks the same N (with the same replacements) and answers with
//! the merge of the first R answers. Then it waits for the others and
//! repairs every preference-list node that answered with less than the
//! merge of all answers (read repair).

use std::rc::Rc;

use futures_util::{StreamExt, future::LocalBoxFuture, stream::FuturesUnordered};
use tokio::sync::oneshot;

use super::{
    Bug,
    replica::{Replica, Request, Response},
    version::{Context, Siblings, Version},
};
use crate::net::NetError;

/// One node's answer to a coordinator.
struct Answer {
    target: usize,
    /// The preference-list node it stands in for, if it is a fallback.
    standing_in: Option<usize>,
    result: Result<Response, NetError>,
}

impl Answer {
    fn succeeded(&self) -> bool {
        matches!(self.result, Ok(Response::Stored | Response::Versions(_)))
    }
}

/// From the answers so far, the client's answer, if they suffice.
type Enough<T> = Box<dyn FnMut(&[Answer]) -> Option<T>>;
/// From every answer, the client's answer when they did not suffice.
type Failed<T> = Box<dyn FnOnce(&[Answer]) -> T>;

/// How a coordinator asks the targets of one key.
struct Ask<T> {
    /// The request, given the preference-list node a fallback stands in for.
    request: Box<dyn Fn(Option<usize>) -> Request>,
    /// The client's answer, once the answers so far suffice.
    enough: Enough<T>,
    /// The client's answer when every target answered without enough.
    failed: Failed<T>,
}

impl Replica {
    /// Sends `ask.request` to the key's preference list, replacing the
    /// nodes that fail while fallbacks remain (sloppy quorum); resolves
    /// with the client's answer as soon as there is one; once every target
    /// answered, hands all the answers to `after`.
    fn ask<T: 'static>(
        self: &Rc<Self>,
        key: &str,
        mut ask: Ask<T>,
        after: impl FnOnce(Vec<Answer>) -> LocalBoxFuture<'static, ()> + 'static,
    ) -> oneshot::Receiver<T> {
        let (answered, answer) = oneshot::channel();
        let replica = self.clone();
        let walk = self.ring.walk(key);
        let n = self.ring.owners(key).len();
        let mut fallbacks = match self.config.sloppy_quorum {
            true => walk[n..].to_vec(),
            false => Vec::new(),
        }
        .into_iter();
        tokio::task::spawn_local(async move {
            let mut pending: FuturesUnordered<_> = walk[..n]
                .iter()
                .map(|&owner| replica.send(owner, None, (ask.request)(None)))
                .collect();
            let mut answered = Some(answered);
            let mut answers = Vec::new();
            while let Some(answer) = pending.next().await {
                if !answer.succeeded()
                    && let Some(fallback) = fallbacks.next()
                {
                    let standing_in = answer.standing_in.or(Some(answer.target));
                    pending.push(replica.send(fallback, standing_in, (ask.request)(standing_in)));
                }
                answers.push(answer);
                if answered.is_some()
                    && let Some(value) = (ask.enough)(&answers)
                {
                    let _ = answered.take().map(|sender| sender.send(value));
                }
            }
            if let Some(sender) = answered {
                let _ = sender.send((ask.failed)(&answers));
            }
            after(answers).await;
        });
        answer
    }

    /// One request to one target, this node's own without the network.
    fn send(
        self: &Rc<Self>,
        target: usize,
        standing_in: Option<usize>,
        request: Request,
    ) -> LocalBoxFuture<'static, Answer> {
        let replica = self.clone();
        Box::pin(async move {
            let result = match target == replica.id {
                true => Ok(replica.clone().handle(request).await),
                false => replica.peers.call(target, &request).await,
            };
            Answer {
                target,
                standing_in,
                result,
            }
        })
    }

    /// Coordinates a client's write.
    pub async fn put(self: Rc<Self>, key: String, value: String, context: Context) -> Response {
        let dot = match self.next_dot().await {
            Ok(dot) => dot,
            Err(error) => return self.unavailable(error),
        };
        let version = Version {
            dot,
            context,
            value,
        };
        let written = version.covering();
        let w = self.quorums.w;
        let acks = |answers: &[Answer]| answers.iter().filter(|a| a.succeeded()).count();
        let request_key = key.clone();
        let ask = Ask {
            request: Box::new(move |hint| Request::Store {
                key: request_key.clone(),
                versions: vec![version.clone()],
                hint,
            }),
            enough: Box::new(move |answers| {
                (acks(answers) == w).then(|| Response::Written {
                    context: written.clone(),
                })
            }),
            failed: Box::new(move |answers| Response::Unavailable {
                reason: format!("{} of the {w} acknowledgements needed", acks(answers)),
                // Stored somewhere, or perhaps: only a request never sent
                // is sure to have left nothing behind.
                maybe_stored: answers
                    .iter()
                    .any(|a| !matches!(&a.result, Err(error) if error.never_sent())),
            }),
        };
        let answer = self.ask(&key, ask, |_| Box::pin(async {}));
        answer.await.unwrap_or_else(|_| Response::Unavailable {
            reason: "the coordinator stopped".into(),
            maybe_stored: true,
        })
    }

    /// Coordinates a client's read.
    pub async fn get(self: Rc<Self>, key: String) -> Response {
        let r = self.quorums.r;
        let request_key = key.clone();
        let ask = Ask {
            request: Box::new(move |_| Request::Fetch {
                key: request_key.clone(),
            }),
            enough: Box::new(move |answers| {
                let versions = fetched(answers);
                (versions.len() == r).then(|| {
                    let mut merged = Siblings::default();
                    versions.into_iter().for_each(|v| merged.merge(v));
                    Response::Read {
                        values: merged.values(),
                        context: merged.context(),
                    }
                })
            }),
            failed: Box::new(move |answers| Response::Unavailable {
                reason: format!("{} of the {r} answers needed", fetched(answers).len()),
                maybe_stored: false,
            }),
        };
        let repairer = self.clone();
        let repair_key = key.clone();
        let answer = self.ask(&key, ask, move |answers| {
            Box::pin(async move { repairer.read_repair(repair_key, answers).await })
        });
        answer.await.unwrap_or_else(|_| Response::Unavailable {
            reason: "the coordinator stopped".into(),
            maybe_stored: false,
        })
    }

    /// Brings every preference-list node that answered with less than the
    /// merge of all answers up to it.
    async fn read_repair(self: Rc<Self>, key: String, answers: Vec<Answer>) {
        let mut merged = Siblings::default();
        fetched(&answers).into_iter().for_each(|v| merged.merge(v));
        let repair = match self.config.bug {
            // The planted bug: the siblings are resolved to the first,
            // written back as superseding the others.
            Some(Bug::ReadRepairOverwritesSibling) if merged.0.len() > 1 => {
                let mut resolved = merged.0[0].clone();
                resolved.context = merged.context();
                Siblings(vec![resolved])
            }
            _ => merged,
        };
        let stale = answers.iter().filter(|a| {
            a.standing_in.is_none()
                && matches!(&a.result, Ok(Response::Versions(v)) if Siblings(v.clone()) != repair)
        });
        let mut repairs: FuturesUnordered<_> = stale
            .map(|a| {
                let request = Request::Store {
                    key: key.clone(),
                    versions: repair.0.clone(),
                    hint: None,
                };
                self.send(a.target, None, request)
            })
            .collect();
        while let Some(answer) = repairs.next().await {
            if answer.succeeded() {
                tracing::debug!(target: "replisim::dynamo", key, node = answer.target, "repaired a replica");
            }
        }
    }
}

/// The versions each node that answered a read returned.
fn fetched(answers: &[Answer]) -> Vec<&[Version]> {
    answers
        .iter()
        .filter_map(|a| match &a.result {
            Ok(Response::Versions(versions)) => Some(versions.as_slice()),
            _ => None,
        })
        .collect()
}
