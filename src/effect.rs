//! Fault effects: counters that show what a fault actually did.
//!
//! Any layer records an effect with [`record`], so the transport and
//! storage need not know about the harness. While a simulation runs on the
//! thread, its trace takes the effect directly (it adds them up per kind
//! into the outcome's statistics, and folds and logs them as it would a
//! `trace` event on the [`TARGET`] target with fields `kind` and `amount`,
//! without the cost of one); elsewhere the effect is such a `tracing`
//! event. They show what the faults did in aggregate;
//! whether each fault was effective is judged per fault by the nemesis
//! (see [`crate::sim::Fault`]).
//!
//! Counters: the nemesis counts `nodes_crashed`, `nodes_restarted`,
//! `nodes_lost`, `nodes_paused`, `links_cut`, `links_repaired`,
//! `links_held`, `links_slowed`, `links_lossy`, `nodes_duplicating`,
//! `clocks_skewed`, `faults_triggered` and `replica_exits`; the trace layer
//! `messages_dropped` and `messages_held` (turmoil's own events) and
//! `skewed_clock_reads`; the transport (replisim's framing, and
//! [`crate::net::Network::message`] for a system's own) `duplicates_sent`,
//! `connect_failures`, `connections_broken`, `requests_timed_out`,
//! `requests_unsent`, `late_responses`, `bad_frames` and
//! [`MESSAGES_DELIVERED`]; the simulated disk `disk_io_errors`; the
//! write-ahead log and metadata file `disk_damage_detected` (a read whose
//! checksum failed; it is read again) and `disk_bytes_dropped` (a torn or
//! corrupt tail cut off on recovery); the built-in engine
//! `log_entries_truncated` (a backup's entries that disagreed with a new
//! primary's log).

/// The tracing target effects are recorded on.
pub const TARGET: &str = "replisim::effect";

/// The counter of messages: delivered by replisim's framing, or about to be
/// written by a system's own ([`crate::net::Network::message`]). The
/// harness also keeps their times, for messages per operation in each fault
/// phase, and a run without any makes the duplication fault not applicable.
pub const MESSAGES_DELIVERED: &str = "messages_delivered";

use std::cell::Cell;

/// What takes an effect instead of `tracing`: its kind and amount.
pub(crate) type Sink = fn(&'static str, u64);

thread_local! {
    /// Where this thread's effects go while a simulation's trace takes them.
    static SINK: Cell<Option<Sink>> = const { Cell::new(None) };
}

/// Adds `amount` to the effect counter `kind`.
pub fn record(kind: &'static str, amount: u64) {
    match SINK.get() {
        Some(sink) => sink(kind, amount),
        None => tracing::trace!(target: "replisim::effect", kind, amount),
    }
}

/// Hands this thread's effects to `sink` (`None`: back to `tracing`).
pub(crate) fn divert(sink: Option<Sink>) {
    SINK.set(sink);
}
