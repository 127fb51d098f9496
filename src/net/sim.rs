//! [`Network`] on turmoil's simulated TCP: usable only inside a turmoil host.

use std::{io, rc::Rc};

use super::{BoxStream, Listener, Network};
use crate::effect;

/// Asked just before a duplicate of a message to a peer address would be
/// sent: whether to send it (the duplication fault strikes this node or
/// that peer).
pub type DuplicationFault = Rc<dyn Fn(&str) -> bool>;

/// The simulated network of the current turmoil host.
#[derive(Clone, Default)]
pub struct SimNetwork {
    duplicate: Option<DuplicationFault>,
}

impl SimNetwork {
    /// A network that duplicates messages to the peers `duplicate` names.
    pub fn with_duplicates(duplicate: DuplicationFault) -> Self {
        SimNetwork {
            duplicate: Some(duplicate),
        }
    }

    /// Whether to send a duplicate of a message to `peer`.
    fn duplicates(&self, peer: &str) -> bool {
        self.duplicate
            .as_ref()
            .is_some_and(|duplicate| duplicate(peer))
    }
}

#[async_trait::async_trait(?Send)]
impl Network for SimNetwork {
    async fn connect(&self, addr: &str) -> io::Result<BoxStream> {
        let stream = turmoil::net::TcpStream::connect(addr).await?;
        Ok(Box::new(stream))
    }

    async fn bind(&self, port: u16) -> io::Result<Box<dyn Listener>> {
        let listener = turmoil::net::TcpListener::bind(("0.0.0.0", port)).await?;
        Ok(Box::new(SimListener(listener)))
    }

    fn duplicates_on_reconnect(&self, addr: &str) -> bool {
        self.duplicates(addr)
    }

    fn message(&self, peer: &str, message: &[u8]) -> usize {
        let copies = if self.duplicates(peer) {
            tracing::debug!(target: "replisim::net", peer, "writing a message twice (duplication fault)");
            effect::record("duplicates_sent", 1);
            2
        } else {
            1
        };
        let checksum = crc32fast::hash(message);
        tracing::trace!(target: "replisim::net", peer, checksum, copies = copies as u64, "message");
        for _ in 0..copies {
            effect::record(effect::MESSAGES_DELIVERED, 1);
        }
        copies
    }
}

struct SimListener(turmoil::net::TcpListener);

#[async_trait::async_trait(?Send)]
impl Listener for SimListener {
    async fn accept(&self) -> io::Result<(BoxStream, String)> {
        let (stream, peer) = self.0.accept().await?;
        let peer = turmoil::reverse_lookup(peer.ip())
            .map(|host| format!("{host}:{}", peer.port()))
            .unwrap_or_else(|| peer.to_string());
        Ok((Box::new(stream), peer))
    }

    fn local_port(&self) -> io::Result<u16> {
        Ok(self.0.local_addr()?.port())
    }
}
