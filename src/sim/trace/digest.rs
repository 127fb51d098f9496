//! The run's digest: every event but turmoil's own, whatever the log level
//! (message deliveries and client events are `trace` and `debug` events
//! that the digest always sees), folded into one xxh3 hash with its
//! simulated time, its host, its target and its fields; effects recorded
//! during the run are folded as the `trace` events they stand for. Two runs
//! of one scenario must end with the same digest; a committed scenario
//! replays to its recorded one.
//!
//! An event's bytes are gathered in a buffer kept from event to event and
//! hashed in one update: no allocation and one call into the hasher per
//! event.

use std::{fmt::Write as _, time::Duration};

use tracing::{Event, field::Field};
use xxhash_rust::xxh3::Xxh3;

/// The digest so far and how many events it covers.
pub(super) struct Digest {
    hasher: Xxh3,
    events: u64,
    buffer: Vec<u8>,
}

impl Default for Digest {
    fn default() -> Self {
        Digest {
            hasher: Xxh3::new(),
            events: 0,
            buffer: Vec::with_capacity(256),
        }
    }
}

impl Digest {
    pub fn add(&mut self, time: Duration, host: &str, event: &Event<'_>) {
        let buffer = &mut self.buffer;
        buffer.clear();
        buffer.extend_from_slice(&(time.as_nanos() as u64).to_le_bytes());
        buffer.extend_from_slice(host.as_bytes());
        buffer.extend_from_slice(event.metadata().target().as_bytes());
        event.record(&mut Bytes(buffer));
        self.hasher.update(buffer);
        self.events += 1;
    }

    /// An effect ([`crate::effect::record`]), hashed as the `trace` event
    /// on its target with fields `kind` and `amount` that it stands for.
    pub fn add_effect(&mut self, time: Duration, host: &str, kind: &str, amount: u64) {
        let buffer = &mut self.buffer;
        buffer.clear();
        buffer.extend_from_slice(&(time.as_nanos() as u64).to_le_bytes());
        buffer.extend_from_slice(host.as_bytes());
        buffer.extend_from_slice(crate::effect::TARGET.as_bytes());
        buffer.extend_from_slice(b"kind");
        buffer.extend_from_slice(kind.as_bytes());
        buffer.extend_from_slice(b"amount");
        buffer.extend_from_slice(&amount.to_le_bytes());
        self.hasher.update(buffer);
        self.events += 1;
    }

    pub fn value(&self) -> u64 {
        self.hasher.digest()
    }

    pub fn events(&self) -> u64 {
        self.events
    }
}

/// An event's fields as hashed: each name, then its value (little-endian
/// for integers, the text for strings, the `Debug` text otherwise).
struct Bytes<'a>(&'a mut Vec<u8>);

impl std::fmt::Write for Bytes<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.0.extend_from_slice(s.as_bytes());
        Ok(())
    }
}

impl tracing::field::Visit for Bytes<'_> {
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.extend_from_slice(field.name().as_bytes());
        self.0.extend_from_slice(&value.to_le_bytes());
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.extend_from_slice(field.name().as_bytes());
        self.0.extend_from_slice(value.as_bytes());
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.extend_from_slice(field.name().as_bytes());
        let _ = write!(self, "{value:?}");
    }
}
