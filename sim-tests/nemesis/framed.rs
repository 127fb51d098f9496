//! A one-replica key-value store with a framing of its own: every message
//! is one line of JSON on a raw [`replisim::net::Network`] stream, neither
//! [`replisim::net::RpcClient`] nor [`replisim::net::serve`]. Clients talk
//! to replica 0 (run it with one replica). With `hooked` it writes every
//! message through [`send_message`] (so the simulation counts its messages
//! and the duplication fault writes them twice); without, it writes them
//! straight to the stream, out of replisim's sight. A request carries an
//! id, and a client skips the answers to other ids (duplicates).

use std::{cell::RefCell, rc::Rc, time::Duration};

use futures_util::future::LocalBoxFuture;
use replisim::{
    history::{Completion, Op},
    net::{BoxStream, Network, send_message},
    node::{ClientContext, KvClient, NodeContext, NodeResult, System},
    replication::kv::KvStore,
};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

pub struct Framed {
    pub hooked: bool,
}

#[derive(Serialize, Deserialize)]
struct Request {
    id: u64,
    op: Op,
}

#[derive(Serialize, Deserialize)]
struct Response {
    id: u64,
    completion: Completion,
}

/// Writes `message` as one line to `peer`.
async fn write_line(
    net: &dyn Network,
    hooked: bool,
    conn: &mut BufReader<BoxStream>,
    peer: &str,
    message: &impl Serialize,
) -> std::io::Result<()> {
    let mut line = serde_json::to_vec(message).expect("messages serialise");
    line.push(b'\n');
    if hooked {
        send_message(net, conn, peer, &line).await
    } else {
        conn.write_all(&line).await
    }
}

impl System for Framed {
    fn replica(&self, node: NodeContext) -> LocalBoxFuture<'static, NodeResult> {
        let hooked = self.hooked;
        Box::pin(async move {
            let store = Rc::new(RefCell::new(KvStore::default()));
            let probe = store.clone();
            node.state.publish(move || probe.borrow().snapshot());
            let listener = node.net.bind(node.port()).await?;
            loop {
                let (stream, peer) = listener.accept().await?;
                let (net, store) = (node.net.clone(), store.clone());
                tokio::task::spawn_local(async move {
                    let mut conn = BufReader::new(stream);
                    let mut line = String::new();
                    while conn.read_line(&mut line).await.is_ok_and(|n| n > 0) {
                        let Ok(request) = serde_json::from_str::<Request>(&line) else {
                            return;
                        };
                        line.clear();
                        let completion = store.borrow_mut().apply(&request.op);
                        let response = Response {
                            id: request.id,
                            completion,
                        };
                        if write_line(&*net, hooked, &mut conn, &peer, &response)
                            .await
                            .is_err()
                        {
                            return;
                        }
                    }
                });
            }
        })
    }

    fn client(&self, ctx: ClientContext) -> Box<dyn KvClient> {
        Box::new(FramedClient {
            net: ctx.net,
            hooked: self.hooked,
            addr: ctx.replicas[0].clone(),
            conn: None,
            next_id: 0,
        })
    }
}

struct FramedClient {
    net: Rc<dyn Network>,
    hooked: bool,
    addr: String,
    conn: Option<BufReader<BoxStream>>,
    next_id: u64,
}

impl FramedClient {
    async fn exchange(&mut self, request: &Request) -> std::io::Result<Completion> {
        if self.conn.is_none() {
            self.conn = Some(BufReader::new(self.net.connect(&self.addr).await?));
        }
        let conn = self.conn.as_mut().expect("connected");
        write_line(&*self.net, self.hooked, conn, &self.addr, request).await?;
        let mut line = String::new();
        loop {
            line.clear();
            if conn.read_line(&mut line).await? == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            match serde_json::from_str::<Response>(&line) {
                Ok(response) if response.id == request.id => return Ok(response.completion),
                Ok(_) => continue,
                Err(error) => return Err(std::io::Error::other(error)),
            }
        }
    }
}

#[async_trait::async_trait(?Send)]
impl KvClient for FramedClient {
    async fn call(&mut self, op: &Op) -> Completion {
        self.next_id += 1;
        let request = Request {
            id: self.next_id,
            op: op.clone(),
        };
        match tokio::time::timeout(Duration::from_millis(200), self.exchange(&request)).await {
            Ok(Ok(completion)) => completion,
            Ok(Err(error)) => {
                self.conn = None;
                Completion::Info(error.to_string())
            }
            Err(_) => {
                self.conn = None;
                Completion::Info("no answer within 200 ms".into())
            }
        }
    }
}
