//! Fault effect counters: the [`crate::effect`] events any layer records,
//! the effects the harness counts itself ([`add_effect`]), turmoil's own
//! "message dropped" and "message held" events, and the times of message
//! deliveries (for messages per operation in each fault phase).

use std::{collections::BTreeMap, time::Duration};

use tracing::{Event, Metadata, field::Field};

use super::with_state;

/// The counters of one run.
#[derive(Default)]
pub(super) struct Effects {
    pub counters: BTreeMap<String, u64>,
    /// When each message was delivered (simulated ns).
    pub message_times: Vec<u64>,
    /// The kind of the effect event being read (kept to save allocations).
    kind: String,
}

impl Effects {
    pub fn add(&mut self, kind: &str, amount: u64) {
        match self.counters.get_mut(kind) {
            Some(count) => *count += amount,
            None => {
                self.counters.insert(kind.to_string(), amount);
            }
        }
    }

    /// Counts `event` if it records an effect.
    pub fn count(&mut self, time: Duration, event: &Event<'_>) {
        if event.metadata().target() != crate::effect::TARGET {
            return;
        }
        let mut kind = std::mem::take(&mut self.kind);
        kind.clear();
        let mut effect = EffectVisitor {
            kind: &mut kind,
            amount: 0,
        };
        event.record(&mut effect);
        let amount = effect.amount;
        if !kind.is_empty() {
            if kind == crate::effect::MESSAGES_DELIVERED {
                self.message_times.push(time.as_nanos() as u64);
            }
            self.add(&kind, amount);
        }
        self.kind = kind;
    }
}

/// Counts an effect the harness itself observed.
pub(crate) fn add_effect(kind: &str, amount: u64) {
    with_state(|state| state.effects.add(kind, amount));
}

/// The sum of every effect counter so far: a fault whose application did
/// not raise it changed nothing.
pub(crate) fn effects_total() -> u64 {
    let mut total = 0;
    with_state(|state| total = state.effects.counters.values().sum());
    total
}

/// Whether a callsite may be turmoil's drop or hold event.
pub(super) fn maybe_turmoil(meta: &Metadata<'_>) -> bool {
    turmoil_kind(meta).is_some()
}

/// The effect a turmoil event counts, if any.
pub(super) fn turmoil_effect(event: &Event<'_>) -> Option<&'static str> {
    turmoil_kind(event.metadata())
}

/// turmoil 0.7.2 logs a dropped message at `src/top.rs:394` and a held one
/// at line 390 (`trace!` events with no other way to tell them apart); the
/// test `partitions_count_dropped_messages` notices if an upgrade moves them.
fn turmoil_kind(meta: &Metadata<'_>) -> Option<&'static str> {
    if meta.target() != "turmoil" || !meta.file().is_some_and(|f| f.ends_with("top.rs")) {
        return None;
    }
    match meta.line() {
        Some(394) => Some("messages_dropped"),
        Some(390) => Some("messages_held"),
        _ => None,
    }
}

/// Reads an effect event's `kind` and `amount`.
struct EffectVisitor<'a> {
    kind: &'a mut String,
    amount: u64,
}

impl tracing::field::Visit for EffectVisitor<'_> {
    fn record_u64(&mut self, field: &Field, value: u64) {
        if field.name() == "amount" {
            self.amount = value;
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "kind" {
            self.kind.push_str(value);
        }
    }

    fn record_debug(&mut self, _field: &Field, _value: &dyn std::fmt::Debug) {}
}
