//! Fault effect counters: the effects any layer records
//! ([`crate::effect::record`], handed to the trace directly), the effects
//! the harness counts itself ([`add_effect`]), turmoil's own "message
//! dropped" and "message held" events, and the times of message deliveries
//! (for messages per operation in each fault phase).
//!
//! turmoil's events are recognised by what they carry, not where they sit
//! in turmoil's source: target `turmoil`, the fields of a message in flight
//! (`src`, `dst`, `protocol`), and the message "Send" (a message put on a
//! link), "Drop" (a cut link dropped it) or "Hold" (a held link queued it).
//! Receipts and deliveries carry the same fields, one event per message:
//! each callsite logs one fixed word, so its first event judges it. A
//! callsite of another word is quiet: after that step of the simulation it
//! is never enabled again in the process. While the nemesis watches links
//! ([`watch_links`]), each send, hold and drop is kept with its link's ends
//! ([`take_link_messages`]), so effects are credited to the faults in force
//! there; a send counts nothing, so once judged its callsite is enabled only
//! on a thread whose run watches links (one event per message otherwise
//! paid for nothing). The test
//! `partitions_count_dropped_messages` notices if turmoil stops logging
//! drops and holds so.

use std::{
    collections::BTreeMap,
    sync::{Mutex, PoisonError},
    time::Duration,
};

use tracing::{Event, Metadata, field::Field, subscriber::Interest};

use super::with_state;
use crate::sim::links::{LinkEvent, LinkMessage};

/// The counters of one run.
#[derive(Default)]
pub(super) struct Effects {
    pub counters: BTreeMap<String, u64>,
    /// When each message was delivered (simulated ns).
    pub message_times: Vec<u64>,
    /// Whether this run judged a callsite (see [`JUDGED`]) since the last
    /// `take_judged`.
    judged: bool,
    /// turmoil's message events, while the nemesis watches links.
    link_messages: Option<Vec<LinkMessage>>,
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

    /// Counts an effect a layer recorded (`crate::effect::record`) at
    /// `time`.
    pub fn record(&mut self, time: Duration, kind: &str, amount: u64) {
        if kind == crate::effect::MESSAGES_DELIVERED {
            self.message_times.push(time.as_nanos() as u64);
        }
        self.add(kind, amount);
    }
}

/// Counts an effect the harness itself observed.
pub(crate) fn add_effect(kind: &str, amount: u64) {
    with_state(|state| state.effects.add(kind, amount));
}

/// Starts (or stops) keeping turmoil's message events with their links.
pub(crate) fn watch_links(on: bool) {
    with_state(|state| match (on, &state.effects.link_messages) {
        (true, None) => state.effects.link_messages = Some(Vec::new()),
        (false, _) => state.effects.link_messages = None,
        (true, Some(_)) => {}
    });
}

/// The message events kept since the last call.
pub(crate) fn take_link_messages() -> Vec<LinkMessage> {
    let mut taken = Vec::new();
    with_state(|state| {
        if let Some(messages) = state.effects.link_messages.as_mut() {
            taken = std::mem::take(messages);
        }
    });
    taken
}

/// What the first event of one of turmoil's callsites of messages in
/// flight showed it to be, when that is not a drop or a hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Judged {
    /// Neither a send, a drop nor a hold: never enabled again.
    Quiet,
    /// A send: enabled only while links are watched.
    Send,
}

/// The callsites judged so far in the process, by the address of their
/// metadata.
static JUDGED: Mutex<Vec<(usize, Judged)>> = Mutex::new(Vec::new());

fn address(meta: &Metadata<'_>) -> usize {
    meta as *const Metadata<'_> as usize
}

fn judged(meta: &Metadata<'_>) -> Option<Judged> {
    let judged = JUDGED.lock().unwrap_or_else(PoisonError::into_inner);
    judged
        .iter()
        .find(|(callsite, _)| *callsite == address(meta))
        .map(|&(_, judged)| judged)
}

/// What the effects need of a `turmoil` callsite: every event of one that
/// may be a message sent, dropped or held; a send's only while links are
/// watched, which the subscriber's `enabled` asks ([`enabled`]).
pub(super) fn interest(meta: &Metadata<'_>) -> Interest {
    if !in_flight(meta) {
        return Interest::never();
    }
    match judged(meta) {
        None => Interest::always(),
        Some(Judged::Send) => Interest::sometimes(),
        Some(Judged::Quiet) => Interest::never(),
    }
}

/// Whether the effects need this event of a `turmoil` callsite now.
pub(super) fn enabled(meta: &Metadata<'_>) -> bool {
    let mut watching = false;
    with_state(|state| watching = state.effects.link_messages.is_some());
    wanted(meta, watching)
}

/// Whether the effects need an event of this `turmoil` callsite while
/// links are `watching` or not.
fn wanted(meta: &Metadata<'_>, watching: bool) -> bool {
    match judged(meta) {
        None => in_flight(meta),
        Some(Judged::Send) => watching,
        Some(Judged::Quiet) => false,
    }
}

/// A `turmoil` event about a message in flight.
fn in_flight(meta: &Metadata<'_>) -> bool {
    let fields = meta.fields();
    meta.target() == "turmoil"
        && ["message", "src", "dst", "protocol"]
            .iter()
            .all(|name| fields.field(name).is_some())
}

impl Effects {
    /// Counts a turmoil event if it is a drop or a hold, and keeps it (and
    /// a send) while links are watched; judges its callsite quiet if it is
    /// another message in flight.
    pub fn count_turmoil(&mut self, event: &Event<'_>) {
        let meta = event.metadata();
        if !wanted(meta, self.link_messages.is_some()) {
            return;
        }
        let mut message = Message::default();
        event.record(&mut message);
        let link_event = match message.text() {
            Some("Send") => {
                self.judge(meta, Judged::Send);
                LinkEvent::Sent
            }
            Some("Drop") => LinkEvent::Dropped,
            Some("Hold") => LinkEvent::Held,
            _ => {
                self.judge(meta, Judged::Quiet);
                return;
            }
        };
        if let Some(kind) = link_event.effect() {
            self.add(kind, 1);
        }
        if let Some(messages) = self.link_messages.as_mut() {
            messages.extend(LinkMessage::of(link_event, event));
        }
    }

    /// Records what a callsite's first event showed, unless known.
    fn judge(&mut self, meta: &Metadata<'_>, judged: Judged) {
        let mut all = JUDGED.lock().unwrap_or_else(PoisonError::into_inner);
        if !all.iter().any(|(callsite, _)| *callsite == address(meta)) {
            all.push((address(meta), judged));
            self.judged = true;
        }
    }

    /// Whether callsites were judged since the last call: their interest
    /// must be recomputed once no event is being dispatched.
    pub fn take_judged(&mut self) -> bool {
        std::mem::take(&mut self.judged)
    }
}

/// An event's message, when it is short: turmoil's are single words.
#[derive(Default)]
struct Message {
    text: [u8; 8],
    len: usize,
    too_long: bool,
}

impl Message {
    fn text(&self) -> Option<&str> {
        match self.too_long {
            true => None,
            false => std::str::from_utf8(&self.text[..self.len]).ok(),
        }
    }
}

impl std::fmt::Write for Message {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let end = self.len + s.len();
        match self.text.get_mut(self.len..end) {
            Some(room) if !self.too_long => {
                room.copy_from_slice(s.as_bytes());
                self.len = end;
            }
            _ => self.too_long = true,
        }
        Ok(())
    }
}

impl tracing::field::Visit for Message {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            use std::fmt::Write as _;
            let _ = write!(self, "{value:?}");
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::sim::trace::{begin, finish};

    /// Events shaped as turmoil 0.7.2's: drops and holds count, sends and
    /// deliveries do not, nor events without a message's fields; a callsite
    /// of another word is judged by its first event and goes quiet. None
    /// enters the digest.
    #[test]
    fn turmoil_drops_and_holds_are_counted_by_their_message() {
        tracing::subscriber::with_default(begin(false, None), || {
            for _ in 0..2 {
                for word in ["Deliver", "Drop", "Hold"] {
                    tracing::trace!(target: "turmoil", src = 1, dst = 2, protocol = %"TCP", "{word}");
                }
                tracing::trace!(target: "turmoil", src = 1, dst = 2, protocol = %"TCP", "Send");
                tracing::trace!(target: "turmoil", src = 1, dst = 2, protocol = %"TCP", "Drop");
                tracing::trace!(target: "turmoil", src = 1, dst = 2, protocol = %"TCP", "Hold");
                tracing::trace!(target: "turmoil", src = 1, "Drop");
            }
        });
        let summary = finish();
        let counted: Vec<_> = summary.effects.into_iter().collect();
        let expected = [("messages_dropped", 2), ("messages_held", 2)];
        assert_eq!(counted, expected.map(|(kind, n)| (kind.to_string(), n)));
        assert_eq!(summary.events, 0);
    }
}
