//! Client histories with Jepsen semantics.
//!
//! A [`History`] is the ordered list of [`Event`]s that clients recorded:
//! every operation is an [`EventType::Invoke`] followed by exactly one
//! completion from the same process: `Ok` (it happened, with its result),
//! `Fail` (it definitely did not happen) or `Info` (unknown: it may take
//! effect at any time after its invocation, or never). Times are simulated
//! nanoseconds since the start of the run.
//!
//! Operations act on a key-value store of string keys and string values:
//! read, write, append (string concatenation) and compare-and-set. Written
//! values are unique per run so that a read identifies the write it saw.
//!
//! The JSON form of a history (`serde_json` of [`History`]) is the
//! documented export format: `{"events":[{"process":0,"time":1000,
//! "type":"invoke","op":{"f":"write","key":"k1","value":"c0-1;"}}, ...]}`.
//! Each event has `process` (integer), `time` (nanoseconds), `type`
//! (`invoke`, `ok`, `fail` or `info`) and `op`, whose `f` is `read`
//! (`key`, and in an `ok` completion `value`: the string read, or `null`
//! when the key was unset), `write` or `append` (`key`, `value`) or `cas`
//! (`key`, `from`, `to`). A completion repeats its invocation's op. An
//! invocation without a completion is indeterminate, like `info`.
//!
//! Submodules read histories recorded elsewhere: [`import`] (formats,
//! detection, the reading [`Conventions`] of each tool), `porcupine`
//! (Porcupine's etcd logs), `jepsen` (EDN operation maps: Jepsen register
//! histories and Porcupine's key-value logs) and `edn` (the EDN reader).

mod edn;
pub mod import;
mod jepsen;
mod porcupine;

pub use import::{Conventions, FailedCas, Format, ImportError, Imported, NilRead, parse};
pub use jepsen::REGISTER_KEY;
pub use porcupine::ETCD_KEY;

use serde::{Deserialize, Serialize};

/// One key-value operation, as invoked or as completed.
///
/// For a read, `value` is `None` in the invocation; in an `Ok` completion it
/// is the value read (`None` when the key was unset).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "f", rename_all = "kebab-case")]
pub enum Op {
    /// Read a key.
    Read {
        key: String,
        #[serde(default)]
        value: Option<String>,
    },
    /// Overwrite a key.
    Write { key: String, value: String },
    /// Concatenate `value` to the end of the key's current value (unset reads as "").
    Append { key: String, value: String },
    /// Set the key to `to` if its current value is `from` (unset never matches).
    Cas {
        key: String,
        from: String,
        to: String,
    },
}

impl Op {
    /// The key this operation acts on.
    pub fn key(&self) -> &str {
        match self {
            Op::Read { key, .. }
            | Op::Write { key, .. }
            | Op::Append { key, .. }
            | Op::Cas { key, .. } => key,
        }
    }

    /// Whether the operation can change the store.
    pub fn is_mutation(&self) -> bool {
        !matches!(self, Op::Read { .. })
    }

    /// A short name: `read`, `write`, `append` or `cas`.
    pub fn name(&self) -> &'static str {
        match self {
            Op::Read { .. } => "read",
            Op::Write { .. } => "write",
            Op::Append { .. } => "append",
            Op::Cas { .. } => "cas",
        }
    }
}

/// Which step of an operation an [`Event`] records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EventType {
    Invoke,
    Ok,
    Fail,
    Info,
}

/// One line of a history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// The client process that issued the operation (one operation at a time).
    pub process: u64,
    /// Simulated nanoseconds since the start of the run.
    pub time: u64,
    #[serde(rename = "type")]
    pub kind: EventType,
    pub op: Op,
}

/// How one operation ended.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Completion {
    /// It happened; for a read, the value read.
    Ok(Option<String>),
    /// It definitely did not happen, with the reason.
    Fail(String),
    /// Unknown whether it happened (timeout, broken connection), with the reason.
    Info(String),
}

/// An invocation paired with its completion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Operation {
    pub process: u64,
    /// The operation as invoked.
    pub op: Op,
    pub invoke_time: u64,
    /// `None` when the history ended before the operation completed
    /// (treated like `Info` by the checkers).
    pub complete_time: Option<u64>,
    pub kind: EventType,
    /// For an `Ok` read, the value read.
    pub result: Option<String>,
}

impl Operation {
    /// Whether the operation definitely took effect.
    pub fn is_ok(&self) -> bool {
        self.kind == EventType::Ok
    }

    /// Whether the operation may have taken effect (`ok` or indeterminate).
    pub fn may_have_happened(&self) -> bool {
        matches!(
            self.kind,
            EventType::Ok | EventType::Info | EventType::Invoke
        )
    }
}

/// A whole client history.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct History {
    pub events: Vec<Event>,
}

impl History {
    /// Records an invocation.
    pub fn invoke(&mut self, process: u64, time: u64, op: Op) {
        self.events.push(Event {
            process,
            time,
            kind: EventType::Invoke,
            op,
        });
    }

    /// Records the completion of `process`'s outstanding operation `op`.
    pub fn complete(&mut self, process: u64, time: u64, op: Op, completion: &Completion) {
        let (kind, op) = match (completion, op) {
            (Completion::Ok(value), Op::Read { key, .. }) => (
                EventType::Ok,
                Op::Read {
                    key,
                    value: value.clone(),
                },
            ),
            (Completion::Ok(_), op) => (EventType::Ok, op),
            (Completion::Fail(_), op) => (EventType::Fail, op),
            (Completion::Info(_), op) => (EventType::Info, op),
        };
        self.events.push(Event {
            process,
            time,
            kind,
            op,
        });
    }

    /// Pairs every invocation with its process's next completion, in
    /// invocation order.
    pub fn operations(&self) -> Vec<Operation> {
        let mut open: std::collections::BTreeMap<u64, usize> = Default::default();
        let mut ops: Vec<Operation> = Vec::new();
        for event in &self.events {
            if event.kind == EventType::Invoke {
                open.insert(event.process, ops.len());
                ops.push(Operation {
                    process: event.process,
                    op: event.op.clone(),
                    invoke_time: event.time,
                    complete_time: None,
                    kind: EventType::Invoke,
                    result: None,
                });
            } else if let Some(i) = open.remove(&event.process) {
                let operation = &mut ops[i];
                operation.complete_time = Some(event.time);
                operation.kind = event.kind;
                if let Op::Read { value, .. } = &event.op {
                    operation.result = value.clone();
                }
            }
        }
        ops
    }
}
