//! The run's digest: every event but turmoil's own, whatever the log level
//! (message deliveries and client events are `trace` and `debug` events
//! that the digest always sees), folded into one xxh3 hash with its
//! simulated time, its host, its target and its fields. Two runs of one
//! scenario must end with the same digest; a committed scenario replays to
//! its recorded one. Hashing is streaming, with no allocation per event.

use std::{fmt::Write as _, time::Duration};

use tracing::{Event, field::Field};
use xxhash_rust::xxh3::Xxh3;

/// The digest so far and how many events it covers.
pub(super) struct Digest {
    hasher: Xxh3,
    events: u64,
}

impl Default for Digest {
    fn default() -> Self {
        Digest {
            hasher: Xxh3::new(),
            events: 0,
        }
    }
}

impl Digest {
    pub fn add(&mut self, time: Duration, host: &str, event: &Event<'_>) {
        let hasher = &mut self.hasher;
        hasher.update(&(time.as_nanos() as u64).to_le_bytes());
        hasher.update(host.as_bytes());
        hasher.update(event.metadata().target().as_bytes());
        event.record(&mut HashVisitor(hasher));
        self.events += 1;
    }

    pub fn value(&self) -> u64 {
        self.hasher.digest()
    }

    pub fn events(&self) -> u64 {
        self.events
    }
}

struct HashVisitor<'a>(&'a mut Xxh3);

impl std::fmt::Write for HashVisitor<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.0.update(s.as_bytes());
        Ok(())
    }
}

impl tracing::field::Visit for HashVisitor<'_> {
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.update(field.name().as_bytes());
        self.0.update(&value.to_le_bytes());
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.update(field.name().as_bytes());
        self.0.update(value.as_bytes());
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.update(field.name().as_bytes());
        let _ = write!(self, "{value:?}");
    }
}
