//! Event triggers: the faults armed to fire at a trace event, and the ones
//! that fired since the harness last asked.

use tracing::Event;

use super::{STATE, log::LineVisitor, with_state};

/// Armed triggers and the ones that fired.
#[derive(Default)]
pub(super) struct Triggers {
    /// (id, host that must emit it or any, text the event's message must
    /// contain).
    armed: Vec<(usize, Option<String>, String)>,
    fired: Vec<usize>,
}

impl Triggers {
    /// Fires every armed trigger that `event`, emitted by `host`, matches.
    pub fn watch(&mut self, host: &str, event: &Event<'_>) {
        if self.armed.is_empty() {
            return;
        }
        let mut message = String::new();
        event.record(&mut LineVisitor(&mut message));
        let fired: Vec<usize> = self
            .armed
            .iter()
            .filter(|(_, on, text)| {
                on.as_deref().is_none_or(|h| h == host) && message.contains(text.as_str())
            })
            .map(|(id, ..)| *id)
            .collect();
        self.armed.retain(|(id, ..)| !fired.contains(id));
        self.fired.extend(fired);
    }
}

/// Arms trigger `id`: it fires at the next event whose message contains
/// `text`, emitted by `host` (any host when `None`).
pub(crate) fn arm(id: usize, host: Option<String>, text: String) {
    with_state(|state| state.triggers.armed.push((id, host, text)));
}

/// The triggers that fired since the last call (each fires once).
pub(crate) fn take_fired() -> Vec<usize> {
    STATE.with(|state| {
        state
            .borrow_mut()
            .as_mut()
            .map(|state| std::mem::take(&mut state.triggers.fired))
            .unwrap_or_default()
    })
}
