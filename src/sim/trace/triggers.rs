//! Event triggers: the faults armed to fire at a trace event
//! ([`Trigger`]: a host, a target, a message, field values), and the ones
//! that fired since the harness last asked. An event's fields are only read
//! as text while a trigger that may match it is armed.

use tracing::{Event, field::Field};

use super::{STATE, with_state};
use crate::sim::fault::Trigger;

/// Armed triggers and the ones that fired.
#[derive(Default)]
pub(super) struct Triggers {
    armed: Vec<Armed>,
    fired: Vec<usize>,
}

struct Armed {
    id: usize,
    /// The host that must emit the event (any when `None`).
    host: Option<String>,
    trigger: Trigger,
    /// Matching events still to let pass before the one that fires it.
    skip: u64,
}

impl Triggers {
    /// Fires every armed trigger that `event`, emitted by `host`, matches.
    pub fn watch(&mut self, host: &str, event: &Event<'_>) {
        if self.armed.is_empty() {
            return;
        }
        let target = event.metadata().target();
        let may_match = |armed: &Armed| {
            armed.host.as_deref().is_none_or(|h| h == host) && armed.trigger.matches_target(target)
        };
        if !self.armed.iter().any(may_match) {
            return;
        }
        let texts = Texts::of(event);
        let fired = &mut self.fired;
        self.armed.retain_mut(|armed| {
            if !(may_match(armed) && armed.trigger.matches_fields(|name| texts.get(name))) {
                return true;
            }
            if armed.skip > 0 {
                armed.skip -= 1;
                return true;
            }
            fired.push(armed.id);
            false
        });
    }
}

/// An event's message and fields as text: strings as they are, other
/// values as `Debug` shows them (which for `%` fields is their `Display`).
#[derive(Default)]
pub(super) struct Texts(Vec<(&'static str, String)>);

impl Texts {
    /// The texts of `event`'s message and fields.
    pub(super) fn of(event: &Event<'_>) -> Self {
        let mut texts = Texts::default();
        event.record(&mut texts);
        texts
    }

    pub(super) fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(field, _)| *field == name)
            .map(|(_, text)| text.as_str())
    }
}

impl tracing::field::Visit for Texts {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.push((field.name(), value.to_string()));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.push((field.name(), format!("{value:?}")));
    }
}

/// Arms trigger `id`: it fires at the next event `trigger` matches, emitted
/// by `host` (any host when `None`; the harness resolves the trigger's own
/// host).
pub(crate) fn arm(id: usize, host: Option<String>, trigger: Trigger) {
    let skip = trigger.nth.saturating_sub(1);
    with_state(|state| {
        state.triggers.armed.push(Armed {
            id,
            host,
            trigger,
            skip,
        })
    });
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::trace::{begin, finish};

    /// Arms the triggers (each for events of any host, or of the host
    /// named), emits three events outside any host (so from "harness"), and
    /// says which triggers fired after each.
    fn fired_after_each(triggers: Vec<(Option<&str>, Trigger)>) -> Vec<Vec<usize>> {
        let subscriber = begin(false, None);
        for (id, (host, trigger)) in triggers.into_iter().enumerate() {
            arm(id, host.map(str::to_string), trigger);
        }
        let mut fired = Vec::new();
        tracing::subscriber::with_default(subscriber, || {
            tracing::debug!(target: "replisim::engine", from = 0, count = 1, "applied replicated entries");
            fired.push(take_fired());
            tracing::debug!(target: "replisim::engine", from = 0, count = 2, "applied replicated entries");
            fired.push(take_fired());
            tracing::info!(target: "replisim::nemesis", fault = %"crash replica-1", "fault");
            fired.push(take_fired());
        });
        finish();
        fired
    }

    #[test]
    fn triggers_match_message_target_and_field_texts() {
        let fired = fired_after_each(vec![
            (
                None,
                Trigger::message("applied replicated entries").with_field("count", 2),
            ),
            (
                None,
                Trigger::message("applied replicated entries").with_target("replisim"),
            ),
            (
                Some("harness"),
                Trigger::target("replisim::nemesis").with_field("fault", "crash replica-1"),
            ),
            (
                None,
                Trigger::target("replisim::engine").with_field("count", 1),
            ),
            (None, Trigger::message("applied replicated entries").nth(2)),
        ]);
        assert_eq!(fired, vec![vec![1, 3], vec![0, 4], vec![2]]);
    }

    #[test]
    fn triggers_that_match_no_event_never_fire() {
        let fired = fired_after_each(vec![
            // A prefix of the message, of a target segment; a value no event
            // has, a field no event has.
            (None, Trigger::message("applied")),
            (None, Trigger::target("replisim::eng")),
            (
                None,
                Trigger::message("applied replicated entries").with_field("count", 3),
            ),
            (
                None,
                Trigger::target("replisim::engine").with_field("missing", 1),
            ),
            // Emitted, but by another host.
            (Some("replica-1"), Trigger::message("fault")),
        ]);
        assert_eq!(fired, vec![Vec::<usize>::new(); 3]);
    }
}
