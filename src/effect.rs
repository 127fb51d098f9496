//! Fault effects: counters that show what a fault actually did.
//!
//! Any layer records an effect with [`record`] (a `tracing` event on the
//! [`TARGET`] target, so the transport and storage need not know about the
//! harness); the simulation's trace layer adds them up per kind into the
//! outcome's statistics. A fault whose effects stay at zero did nothing,
//! and the tests say so.

/// The tracing target effects are recorded on.
pub const TARGET: &str = "replisim::effect";

/// The counter of messages delivered by the transport; the harness also
/// keeps their times, for messages per operation in each fault phase.
pub const MESSAGES_DELIVERED: &str = "messages_delivered";

/// Adds `amount` to the effect counter `kind`.
pub fn record(kind: &'static str, amount: u64) {
    tracing::trace!(target: "replisim::effect", kind, amount);
}
