//! The wire format: every message is one frame, a 4-byte big-endian length
//! followed by that many bytes encoding an [`Envelope`] ([`crate::codec`]).
//!
//! A frame longer than [`MAX_FRAME_BYTES`] or one that does not decode is a
//! [`FrameError`]; the receiving side closes that connection and carries on.
//!
//! A payload is encoded into a buffer its connection (or, for a request
//! kept for re-sending, its client) reuses, then copied with its length
//! into the connection's write buffer; a received one is decoded from the
//! read buffer it arrived in, which starts at [`READ_BUFFER_BYTES`] and
//! grows only for a larger frame (`tokio_util`'s default of 8 KiB per
//! connection was most of the memory a simulation held, and was returned
//! to the system and faulted back in at every run).

use bytes::{BufMut, BytesMut};
use futures_util::{SinkExt, StreamExt};
use serde::{Deserialize, Serialize, de::DeserializeOwned};
use tokio_util::codec::{Framed, LengthDelimitedCodec};

use super::BoxStream;
use crate::codec;

/// The largest frame either side accepts (1 MiB).
pub const MAX_FRAME_BYTES: usize = 1 << 20;

/// The capacity a connection's read buffer starts with: room for a few
/// of the usual frames.
const READ_BUFFER_BYTES: usize = 512;

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

/// Replaces `payload` with one envelope's frame payload.
pub fn encode_into<T: Serialize>(
    payload: &mut Vec<u8>,
    envelope: &Envelope<T>,
) -> Result<(), FrameError> {
    payload.clear();
    codec::encode_into(payload, envelope)?;
    Ok(())
}

/// A payload of `len` bytes fits in a frame (as the codec refuses it
/// otherwise).
fn fits(len: usize) -> Result<(), FrameError> {
    match len <= MAX_FRAME_BYTES {
        true => Ok(()),
        false => Err(FrameError::Io(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("a frame of {len} bytes exceeds {MAX_FRAME_BYTES}"),
        ))),
    }
}

/// Appends the frame of `payload` to `buffer`.
fn put(buffer: &mut BytesMut, payload: &[u8]) -> Result<(), FrameError> {
    fits(payload.len())?;
    buffer.reserve(4 + payload.len());
    buffer.put_u32(payload.len() as u32);
    buffer.extend_from_slice(payload);
    Ok(())
}

/// A connection that sends and receives [`Envelope`]s.
pub struct FramedConn {
    inner: Framed<BoxStream, LengthDelimitedCodec>,
    /// The payload being sent, its allocation kept from frame to frame.
    payload: Vec<u8>,
}

impl FramedConn {
    pub fn new(stream: BoxStream) -> Self {
        let codec = LengthDelimitedCodec::builder()
            .max_frame_length(MAX_FRAME_BYTES)
            .new_codec();
        FramedConn {
            inner: Framed::with_capacity(stream, codec, READ_BUFFER_BYTES),
            payload: Vec::new(),
        }
    }

    /// Encodes and sends one envelope.
    pub async fn send<T: Serialize>(&mut self, envelope: &Envelope<T>) -> Result<(), FrameError> {
        encode_into(&mut self.payload, envelope)?;
        put(self.inner.write_buffer_mut(), &self.payload)?;
        self.flush().await
    }

    /// Sends a payload [`encode_into`]d earlier.
    pub async fn send_encoded(&mut self, payload: &[u8]) -> Result<(), FrameError> {
        put(self.inner.write_buffer_mut(), payload)?;
        self.flush().await
    }

    /// Writes out what the write buffer holds.
    async fn flush(&mut self) -> Result<(), FrameError> {
        SinkExt::<bytes::Bytes>::flush(&mut self.inner).await?;
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
