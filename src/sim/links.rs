//! turmoil's message events on links, as the trace layer picks them out
//! for the nemesis: a message sent, held or dropped, between two hosts'
//! addresses. The nemesis credits them to the link faults in force there.

use std::net::{IpAddr, SocketAddr};

use tracing::{Event, field::Field};

/// What happened to a message on a link, as turmoil logs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LinkEvent {
    Sent,
    Held,
    Dropped,
}

impl LinkEvent {
    /// The effect counter it adds to, if any.
    pub fn effect(self) -> Option<&'static str> {
        match self {
            LinkEvent::Sent => None,
            LinkEvent::Held => Some("messages_held"),
            LinkEvent::Dropped => Some("messages_dropped"),
        }
    }
}

/// One of turmoil's message events, with its link's ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LinkMessage {
    pub event: LinkEvent,
    pub src: IpAddr,
    pub dst: IpAddr,
}

impl LinkMessage {
    /// The message `event` of turmoil's logs, read from its `src` and `dst`
    /// fields.
    pub fn of(event: LinkEvent, logged: &Event<'_>) -> Option<LinkMessage> {
        let mut ends = Ends::default();
        logged.record(&mut ends);
        Some(LinkMessage {
            event,
            src: ends.src?,
            dst: ends.dst?,
        })
    }
}

/// The ends of a turmoil message event (`src` and `dst` socket addresses).
#[derive(Default)]
struct Ends {
    src: Option<IpAddr>,
    dst: Option<IpAddr>,
}

impl tracing::field::Visit for Ends {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        let end = match field.name() {
            "src" => &mut self.src,
            "dst" => &mut self.dst,
            _ => return,
        };
        *end = format!("{value:?}")
            .parse::<SocketAddr>()
            .ok()
            .map(|addr| addr.ip());
    }
}
