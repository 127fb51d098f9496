//! Transport: typed messages over length-delimited TCP frames.
//!
//! Protocol code sees only the [`Network`] trait (connect, bind) and the
//! typed layer on top of it in `rpc`: [`RpcClient`] for request/response
//! and one-way messages with connect-with-backoff, reconnect after a broken
//! connection and per-request timeouts, and [`serve`] for the accepting side.
//! `frame` owns the wire format. Two implementations of [`Network`]:
//! [`SimNetwork`] on turmoil's simulated TCP and [`TcpNetwork`] on tokio's.
//!
//! A system with a framing of its own talks over the [`Network`]'s byte
//! streams and calls [`Network::message`] once per message (or writes with
//! [`send_message`], which does): that is how the simulation counts its
//! messages (messages per operation in each fault phase) and how the
//! duplication fault duplicates them. [`RpcClient`] and [`serve`] need
//! neither: replisim's own framing counts its messages, and under the
//! duplication fault re-sends a request on every new connection.
//!
//! turmoil's TCP never retransmits: a stream that lost a segment to a
//! partition stays silent for good. The only defence is the one real systems
//! need anyway: every request has a timeout, and a timed-out connection is
//! dropped and re-established.

mod frame;
mod real;
mod rpc;
mod sim;

use std::io;

use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};

pub use real::TcpNetwork;
pub use rpc::{Handler, RpcClient, RpcConfig, serve};
pub use sim::{DuplicationFault, SimNetwork};

/// A byte stream between two nodes.
pub trait Stream: AsyncRead + AsyncWrite + Unpin {}
impl<T: AsyncRead + AsyncWrite + Unpin> Stream for T {}

/// A boxed [`Stream`], as the typed layer uses it.
pub type BoxStream = Box<dyn Stream>;

/// Where connections come from: the only network access protocol code has.
#[async_trait::async_trait(?Send)]
pub trait Network {
    /// Opens a connection to `addr` (`host:port`).
    async fn connect(&self, addr: &str) -> io::Result<BoxStream>;
    /// Listens on `port` on all of this node's addresses.
    async fn bind(&self, port: u16) -> io::Result<Box<dyn Listener>>;
    /// Whether an [`RpcClient`] connected to `addr` should re-send its
    /// previous request on every new connection (the duplication fault:
    /// at-least-once retries).
    fn duplicates_on_reconnect(&self, addr: &str) -> bool {
        let _ = addr;
        false
    }
    /// For a system that frames its own messages, once per message, just
    /// before writing `message` (the whole frame, exactly the bytes
    /// written) to the connection with `peer` (an address from the replica
    /// list, or one [`Listener::accept`] gave): answers how many times to
    /// write it, 1, or 2 while the duplication fault strikes this node or
    /// `peer`. A simulation counts every copy as a message. [`send_message`]
    /// calls it and writes the copies; [`RpcClient`] and [`serve`] need not.
    fn message(&self, peer: &str, message: &[u8]) -> usize {
        let _ = (peer, message);
        1
    }
}

/// Writes one message of a system's own framing (the whole frame) to the
/// connection with `peer`, as many times as [`Network::message`] says.
pub async fn send_message(
    net: &dyn Network,
    stream: &mut (impl AsyncWrite + Unpin + ?Sized),
    peer: &str,
    message: &[u8],
) -> io::Result<()> {
    for _ in 0..net.message(peer, message) {
        stream.write_all(message).await?;
    }
    Ok(())
}

/// The accepting end of [`Network::bind`].
#[async_trait::async_trait(?Send)]
pub trait Listener {
    /// Waits for the next connection; returns it with the peer's address.
    async fn accept(&self) -> io::Result<(BoxStream, String)>;
    /// The port it listens on (useful after binding port 0).
    fn local_port(&self) -> io::Result<u16>;
}

/// Why a message exchange failed.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    /// Could not connect before the deadline: the request was never sent.
    #[error("could not connect to {addr}: {reason}")]
    Unreachable { addr: String, reason: String },
    /// The request was sent, but no answer came in time.
    #[error("no answer from {addr} within {timeout_ms} ms")]
    Timeout { addr: String, timeout_ms: u64 },
    /// The connection broke after the request may have been sent.
    #[error("connection to {addr} broke: {source}")]
    Broken { addr: String, source: io::Error },
    /// The peer sent something that is not a valid frame.
    #[error("bad frame from {addr}: {source}")]
    BadFrame {
        addr: String,
        source: frame::FrameError,
    },
}

impl NetError {
    /// Whether the request definitely never reached the peer, so it cannot
    /// have taken effect (a Jepsen `fail` rather than `info`).
    pub fn never_sent(&self) -> bool {
        matches!(self, NetError::Unreachable { .. })
    }
}
