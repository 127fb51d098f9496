//! The wire format: every message is one frame, a 4-byte big-endian length
//! followed by that many bytes encoding an [`Envelope`] ([`crate::codec`]).
//!
//! A frame longer than [`MAX_FRAME_BYTES`] or one that does not decode is a
//! [`FrameError`]; the receiving side closes that connection and carries on.

use futures_util::{SinkExt, StreamExt};
use serde::{Deserialize, Serialize, de::DeserializeOwned};
use tokio_util::codec::{Framed, LengthDelimitedCodec};

use super::BoxStream;
use crate::codec;

/// The largest frame either side accepts (1 MiB).
pub const MAX_FRAME_BYTES: usize = 1 << 20;

/// One message on the wire. `id` pairs a response with its request; a
/// one-way message has `id == 0` and gets no response.
#[derive(Debug, Serialize, Deserialize)]
pub struct Envelope<T> {
    pub id: u64,
    pub body: T,
}

/// A malformed or oversized frame, or a broken stream.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("frame exceeds {MAX_FRAME_BYTES} bytes or the stream failed: {0}")]
    Io(#[from] std::io::Error),
    #[error("frame does not encode: {0}")]
    Encode(#[from] codec::EncodeError),
    #[error("frame does not decode: {0}")]
    Decode(#[from] codec::DecodeError),
}

impl FrameError {
    /// Whether the stream merely ended or broke (a peer crashed, a
    /// connection reset): routine under faults, not a protocol violation.
    pub fn is_disconnect(&self) -> bool {
        use std::io::ErrorKind::*;
        matches!(self, FrameError::Io(e) if matches!(
            e.kind(),
            ConnectionReset | ConnectionAborted | BrokenPipe | UnexpectedEof | NotConnected
        ))
    }
}

/// Room reserved for a payload: the built-in protocols' usual messages fit,
/// so encoding one allocates once and never grows the buffer.
const TYPICAL_PAYLOAD_BYTES: usize = 512;

/// One envelope's frame payload.
pub fn encode<T: Serialize>(envelope: &Envelope<T>) -> Result<Vec<u8>, FrameError> {
    let mut payload = Vec::with_capacity(TYPICAL_PAYLOAD_BYTES);
    codec::encode_into(&mut payload, envelope)?;
    Ok(payload)
}

/// A connection that sends and receives [`Envelope`]s.
pub struct FramedConn {
    inner: Framed<BoxStream, LengthDelimitedCodec>,
}

impl FramedConn {
    pub fn new(stream: BoxStream) -> Self {
        let codec = LengthDelimitedCodec::builder()
            .max_frame_length(MAX_FRAME_BYTES)
            .new_codec();
        FramedConn {
            inner: Framed::new(stream, codec),
        }
    }

    /// Encodes and sends one envelope.
    pub async fn send<T: Serialize>(&mut self, envelope: &Envelope<T>) -> Result<(), FrameError> {
        self.send_encoded(&encode(envelope)?).await
    }

    /// Sends an envelope [`encode`]d earlier.
    pub async fn send_encoded(&mut self, frame: &[u8]) -> Result<(), FrameError> {
        self.inner.send(frame).await?;
        Ok(())
    }

    /// Receives the next envelope, with a checksum of its raw bytes for the
    /// trace digest; `None` when the peer closed the connection.
    pub async fn recv<T: DeserializeOwned>(
        &mut self,
    ) -> Option<Result<(Envelope<T>, u32), FrameError>> {
        let frame = match self.inner.next().await? {
            Ok(frame) => frame,
            Err(e) => return Some(Err(e.into())),
        };
        let checksum = crc32fast::hash(&frame);
        Some(
            codec::decode(&frame)
                .map(|envelope| (envelope, checksum))
                .map_err(FrameError::from),
        )
    }
}
