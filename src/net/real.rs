//! [`Network`] on real sockets (tokio TCP), for `replisim serve`.

use std::io;

use super::{BoxStream, Listener, Network};

/// Real TCP. `bind` listens on `bind_ip`, so tests can keep to loopback.
#[derive(Debug, Clone)]
pub struct TcpNetwork {
    pub bind_ip: String,
}

impl Default for TcpNetwork {
    fn default() -> Self {
        TcpNetwork {
            bind_ip: "127.0.0.1".into(),
        }
    }
}

#[async_trait::async_trait(?Send)]
impl Network for TcpNetwork {
    async fn connect(&self, addr: &str) -> io::Result<BoxStream> {
        let stream = tokio::net::TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        Ok(Box::new(stream))
    }

    async fn bind(&self, port: u16) -> io::Result<Box<dyn Listener>> {
        let listener = tokio::net::TcpListener::bind((self.bind_ip.as_str(), port)).await?;
        Ok(Box::new(TcpListener(listener)))
    }
}

struct TcpListener(tokio::net::TcpListener);

#[async_trait::async_trait(?Send)]
impl Listener for TcpListener {
    async fn accept(&self) -> io::Result<(BoxStream, String)> {
        let (stream, peer) = self.0.accept().await?;
        stream.set_nodelay(true)?;
        Ok((Box::new(stream), peer.to_string()))
    }

    fn local_port(&self) -> io::Result<u16> {
        Ok(self.0.local_addr()?.port())
    }
}
