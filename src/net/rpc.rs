//! Typed request/response and one-way messages over [`FramedConn`]s.
//!
//! [`RpcClient`] owns at most one connection to one peer and sends one
//! request at a time. It connects lazily with exponential backoff, gives
//! every request a deadline, and drops the connection after any failure so
//! the next request starts on a fresh one (the only way out of a turmoil
//! stream that lost a segment). Responses carry their request's id, so a
//! late answer to an abandoned request is never mistaken for the current one.
//! When the network asks for it ([`Network::duplicates_on_reconnect`]) the
//! client re-sends its previous request on every new connection, as
//! at-least-once retries do; receivers must tolerate the duplicate.
//! Failures are counted as fault effects ([`crate::effect`]).
//!
//! [`serve`] accepts connections and answers each one's requests in order
//! with a [`Handler`]. A malformed or oversized frame closes that one
//! connection with a logged error; the listener keeps serving everyone else.

use std::{marker::PhantomData, rc::Rc, time::Duration};

use futures_util::future::LocalBoxFuture;
use serde::{Serialize, de::DeserializeOwned};
use tokio::time::{Instant, sleep, timeout};

use super::{
    Listener, NetError, Network,
    frame::{Envelope, FrameError, FramedConn, encode_into},
};
use crate::effect;

/// Timeouts and backoff of an [`RpcClient`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RpcConfig {
    /// Deadline for one request, connecting included.
    pub request_timeout: Duration,
    /// First wait after a failed connection attempt; doubles up to `max_backoff`.
    pub min_backoff: Duration,
    pub max_backoff: Duration,
}

impl Default for RpcConfig {
    fn default() -> Self {
        RpcConfig {
            request_timeout: Duration::from_millis(200),
            min_backoff: Duration::from_millis(5),
            max_backoff: Duration::from_millis(100),
        }
    }
}

/// A client for one peer, speaking `Req` and expecting `Resp`.
pub struct RpcClient<Req, Resp> {
    net: Rc<dyn Network>,
    addr: String,
    config: RpcConfig,
    conn: Option<FramedConn>,
    next_id: u64,
    /// The last request sent, for the duplication fault.
    last_request: Option<Vec<u8>>,
    /// The buffer the next request is encoded into (the one before the
    /// last, reused).
    spare: Vec<u8>,
    _types: PhantomData<fn(Req) -> Resp>,
}

impl<Req: Serialize, Resp: DeserializeOwned> RpcClient<Req, Resp> {
    pub fn new(net: Rc<dyn Network>, addr: impl Into<String>, config: RpcConfig) -> Self {
        RpcClient {
            net,
            addr: addr.into(),
            config,
            conn: None,
            next_id: 1,
            last_request: None,
            spare: Vec::new(),
            _types: PhantomData,
        }
    }

    /// The peer's address.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// Sends `req` and waits for its response, within the request timeout.
    pub async fn call(&mut self, req: &Req) -> Result<Resp, NetError> {
        self.call_within(req, self.config.request_timeout).await
    }

    /// [`RpcClient::call`] with an explicit deadline.
    pub async fn call_within(&mut self, req: &Req, deadline: Duration) -> Result<Resp, NetError> {
        let id = self.take_id();
        let result = match timeout(deadline, self.exchange(id, req, deadline)).await {
            Ok(result) => result,
            Err(_) if self.conn.is_none() => Err(NetError::Unreachable {
                addr: self.addr.clone(),
                reason: format!("no connection within {} ms", deadline.as_millis()),
            }),
            Err(_) => Err(NetError::Timeout {
                addr: self.addr.clone(),
                timeout_ms: deadline.as_millis() as u64,
            }),
        };
        if let Err(error) = &result {
            effect::record(
                match error {
                    NetError::Unreachable { .. } => "requests_unsent",
                    NetError::Timeout { .. } => "requests_timed_out",
                    NetError::Broken { .. } | NetError::BadFrame { .. } => "connections_broken",
                },
                1,
            );
            self.conn = None;
        }
        result
    }

    /// Sends a one-way message (no response), within the request timeout.
    pub async fn notify(&mut self, msg: &Req) -> Result<(), NetError> {
        let deadline = self.config.request_timeout;
        let envelope = Envelope { id: 0, body: msg };
        let sent = timeout(deadline, async {
            let addr = self.addr.clone();
            let conn = self.connected(deadline).await?;
            conn.send(&envelope).await.map_err(|e| broken(&addr, e))
        })
        .await
        .unwrap_or_else(|_| {
            Err(NetError::Timeout {
                addr: self.addr.clone(),
                timeout_ms: deadline.as_millis() as u64,
            })
        });
        if sent.is_err() {
            self.conn = None;
        }
        sent
    }

    fn take_id(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    async fn exchange(&mut self, id: u64, req: &Req, deadline: Duration) -> Result<Resp, NetError> {
        let mut frame = std::mem::take(&mut self.spare);
        if let Err(error) = encode_into(&mut frame, &Envelope { id, body: req }) {
            self.spare = frame;
            return Err(broken(&self.addr, error));
        }
        self.connected(deadline).await?;
        self.spare = self.last_request.replace(frame).unwrap_or_default();
        let frame = self.last_request.as_deref().expect("just set");
        let conn = self.conn.as_mut().expect("connected");
        let addr = &self.addr;
        conn.send_encoded(frame)
            .await
            .map_err(|e| broken(addr, e))?;
        loop {
            match conn.recv::<Resp>().await {
                None => {
                    return Err(NetError::Broken {
                        addr: addr.clone(),
                        source: std::io::ErrorKind::UnexpectedEof.into(),
                    });
                }
                Some(Err(e)) => return Err(broken(addr, e)),
                Some(Ok((envelope, checksum))) if envelope.id == id => {
                    tracing::trace!(target: "replisim::net", peer = addr.as_str(), id, checksum, "response");
                    effect::record(effect::MESSAGES_DELIVERED, 1);
                    return Ok(envelope.body);
                }
                Some(Ok((envelope, _))) => {
                    tracing::debug!(target: "replisim::net", peer = addr.as_str(), id = envelope.id, "dropping a late response");
                    effect::record("late_responses", 1);
                }
            }
        }
    }

    /// The open connection, or a new one (retrying with backoff until the
    /// caller's deadline cancels this future).
    async fn connected(&mut self, deadline: Duration) -> Result<&mut FramedConn, NetError> {
        if self.conn.is_none() {
            let started = Instant::now(); // determinism-ok: tokio's clock, simulated under turmoil
            let mut backoff = self.config.min_backoff;
            let stream = loop {
                match self.net.connect(&self.addr).await {
                    Ok(stream) => break stream,
                    Err(e) if started.elapsed() + backoff >= deadline => {
                        return Err(NetError::Unreachable {
                            addr: self.addr.clone(),
                            reason: e.to_string(),
                        });
                    }
                    Err(e) => {
                        tracing::trace!(target: "replisim::net", peer = self.addr.as_str(), error = %e, "connect failed");
                        effect::record("connect_failures", 1);
                        sleep(backoff).await;
                        backoff = (backoff * 2).min(self.config.max_backoff);
                    }
                }
            };
            let mut conn = FramedConn::new(stream);
            if let Some(previous) = self
                .last_request
                .as_deref()
                .filter(|_| self.net.duplicates_on_reconnect(&self.addr))
            {
                tracing::debug!(target: "replisim::net", peer = self.addr.as_str(), "re-sending the previous request (duplication fault)");
                effect::record("duplicates_sent", 1);
                conn.send_encoded(previous)
                    .await
                    .map_err(|e| broken(&self.addr, e))?;
            }
            self.conn = Some(conn);
        }
        Ok(self.conn.as_mut().expect("connection was just set"))
    }
}

fn broken(addr: &str, error: FrameError) -> NetError {
    match error {
        FrameError::Io(source) => NetError::Broken {
            addr: addr.to_string(),
            source,
        },
        bad @ (FrameError::Encode(_) | FrameError::Decode(_)) => NetError::BadFrame {
            addr: addr.to_string(),
            source: bad,
        },
    }
}

/// Answers one request; `None` for a one-way message (or to send nothing).
pub type Handler<Req, Resp> = Rc<dyn Fn(Req) -> LocalBoxFuture<'static, Option<Resp>>>;

/// Accepts connections on `listener` forever, answering each connection's
/// requests in order with `handler`. Returns only if accepting fails.
pub async fn serve<Req, Resp>(
    listener: Box<dyn Listener>,
    handler: Handler<Req, Resp>,
) -> std::io::Result<()>
where
    Req: DeserializeOwned + 'static,
    Resp: Serialize + 'static,
{
    loop {
        let (stream, peer) = listener.accept().await?;
        tracing::trace!(target: "replisim::net", peer = peer.as_str(), "accepted");
        tokio::task::spawn_local(serve_connection(
            FramedConn::new(stream),
            peer,
            handler.clone(),
        ));
    }
}

async fn serve_connection<Req, Resp>(
    mut conn: FramedConn,
    peer: String,
    handler: Handler<Req, Resp>,
) where
    Req: DeserializeOwned,
    Resp: Serialize,
{
    while let Some(received) = conn.recv::<Req>().await {
        let (envelope, checksum) = match received {
            Ok(received) => received,
            Err(error) if error.is_disconnect() => {
                tracing::debug!(target: "replisim::net", peer = peer.as_str(), %error, "connection lost");
                return;
            }
            Err(error) => {
                tracing::error!(target: "replisim::net", peer = peer.as_str(), %error, "closing connection after a bad frame");
                effect::record("bad_frames", 1);
                return;
            }
        };
        tracing::trace!(target: "replisim::net", peer = peer.as_str(), id = envelope.id, checksum, "request");
        effect::record(effect::MESSAGES_DELIVERED, 1);
        let Some(body) = handler(envelope.body).await else {
            continue;
        };
        if envelope.id == 0 {
            continue;
        }
        let reply = Envelope {
            id: envelope.id,
            body,
        };
        if let Err(error) = conn.send(&reply).await {
            tracing::debug!(target: "replisim::net", peer = peer.as_str(), %error, "could not answer");
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;
    use crate::net::TcpNetwork;

    fn on_real_runtime(test: impl std::future::Future<Output = ()>) {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        tokio::task::LocalSet::new().block_on(&runtime, test);
    }

    async fn expect_closed(mut stream: tokio::net::TcpStream) {
        let mut buf = [0u8; 64];
        let read = timeout(Duration::from_secs(5), stream.read(&mut buf)).await;
        assert!(
            matches!(read, Ok(Ok(0)) | Ok(Err(_))),
            "the server should close a connection that sent a bad frame, got {read:?}"
        );
    }

    /// Garbage and oversized frames on a real socket close only the
    /// offending connection; the server keeps answering everyone else.
    #[test]
    fn bad_frames_close_only_their_connection() {
        on_real_runtime(async {
            let net: Rc<dyn Network> = Rc::new(TcpNetwork::default());
            let listener = net.bind(0).await.unwrap();
            let addr = format!("127.0.0.1:{}", listener.local_port().unwrap());
            let echo: Handler<String, String> =
                Rc::new(|s: String| Box::pin(async move { Some(s.to_uppercase()) }));
            tokio::task::spawn_local(serve(listener, echo));

            let config = RpcConfig {
                request_timeout: Duration::from_secs(5),
                ..RpcConfig::default()
            };
            let mut good = RpcClient::<String, String>::new(net.clone(), addr.clone(), config);
            assert_eq!(good.call(&"before".into()).await.unwrap(), "BEFORE");

            let mut garbage = tokio::net::TcpStream::connect(&addr).await.unwrap();
            garbage.write_all(&9u32.to_be_bytes()).await.unwrap();
            garbage.write_all(b"not json!").await.unwrap();
            expect_closed(garbage).await;

            let mut oversized = tokio::net::TcpStream::connect(&addr).await.unwrap();
            oversized.write_all(&u32::MAX.to_be_bytes()).await.unwrap();
            oversized.write_all(&[0u8; 1024]).await.unwrap();
            expect_closed(oversized).await;

            assert_eq!(good.call(&"after".into()).await.unwrap(), "AFTER");
            let mut fresh = RpcClient::<String, String>::new(net, addr, config);
            assert_eq!(fresh.call(&"fresh".into()).await.unwrap(), "FRESH");
        });
    }

    #[test]
    fn unreachable_peer_is_reported_as_never_sent() {
        on_real_runtime(async {
            let net: Rc<dyn Network> = Rc::new(TcpNetwork::default());
            let port = net.bind(0).await.unwrap().local_port().unwrap();
            let config = RpcConfig {
                request_timeout: Duration::from_millis(300),
                ..RpcConfig::default()
            };
            let mut client =
                RpcClient::<String, String>::new(net, format!("127.0.0.1:{port}"), config);
            let error = client.call(&"anyone?".into()).await.unwrap_err();
            assert!(error.never_sent(), "{error}");
        });
    }
}
