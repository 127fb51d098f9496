//! Fault effects: counters that show what a fault actually did.
//!
//! Any layer records an effect with [`record`] (a `tracing` event on the
//! [`TARGET`] target, so the transport and storage need not know about the
//! harness); the simulation's trace layer adds them up per kind into the
//! outcome's statistics. A fault whose effects stay at zero did nothing,
//! and the tests say so.

/// The tracing target effects are recorded on.
pub const TARGET: &str = "replisim::effect";

/// Adds `amount` to the effect counter `kind`.
pub fn record(kind: &'static str, amount: u64) {
    tracing::trace!(target: "replisim::effect", kind, amount);
}
