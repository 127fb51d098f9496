//! Client histories with Jepsen semantics.
//!
//! A [`History`] is the ordered list of [`Event`]s that clients recorded:
//! every operation is an [`EventType::Invoke`] followed by exactly one
//! completion from the same process: `Ok` (it happened, with its result),
//! `Fail` (it definitely did not happen) or `Info` (unknown: it may take
//! effect at any time after its invocation, or never). Times are simulated
//! nanoseconds since the start of the run.
//!
//! Operations act on keys; each workload uses its own family of them:
//!
//! - key-value: read, write, append (string concatenation) and
//!   compare-and-set on string values;
//! - counter: `add` (an amount, possibly negative) and read (the decimal value);
//! - set: `insert` and `remove` of an element, and read (the elements as a
//!   sorted JSON array of strings, `["a","b"]`);
//! - a user's own workload: `call`, an operation named by the workload
//!   with an optional argument and, once `ok`, an optional result.
//!
//! Written values are unique per run so that a read identifies the write it
//! saw.
//!
//! The JSON form of a history (`serde_json` of [`History`]) is the
//! documented export format: `{"events":[{"process":0,"time":1000,
//! "type":"invoke","op":{"f":"write","key":"k1","value":"c0-1;"}}, ...]}`.
//! Each event has `process` (integer), `time` (nanoseconds), `type`
//! (`invoke`, `ok`, `fail` or `info`) and `op`, whose `f` is `read`
//! (`key`, and in an `ok` completion `value`: the string read, or `null`
//! when the key was unset), `write` or `append` (`key`, `value`) or `cas`
//! (`key`, `from`, `to`). A completion repeats its invocation's op. An
//! invocation without a completion is indeterminate, like `info`. An `ok`
//! read that returned several concurrent values (siblings) carries the
//! first in its op's `value` and the others in the event's `siblings`
//! (`"siblings":["c1-4"]`), a field absent from every other event.
//!
//! Submodules read and write histories recorded elsewhere: `import`
//! (formats, detection, the reading [`Conventions`] of each tool, [`parse`]
//! and its errors, [`Format::write`]), `porcupine` (Porcupine's etcd logs),
//! `jepsen` (EDN operation maps: Jepsen register histories and Porcupine's
//! key-value logs), `edn` (the EDN reader). The importers are fuzzed in
//! `check`'s tests, which read and check what they accept.

mod edn;
mod import;
mod jepsen;
mod op_de;
mod porcupine;

pub use import::{
    Conventions, FailedCas, Format, ImportError, Imported, NilRead, WriteError, parse,
};
pub use jepsen::REGISTER_KEY;
pub use porcupine::ETCD_KEY;

use serde::{Deserialize, Serialize};

/// One key-value operation, as invoked or as completed.
///
/// For a read, `value` is `None` in the invocation; in an `Ok` completion it
/// is the value read (`None` when the key was unset).
///
/// Its `Deserialize` is written by hand (`op_de.rs`, for speed): a new
/// variant or field must be added there too.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
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
    /// Add `amount` (possibly negative) to a counter (unset counts as 0).
    Add { key: String, amount: i64 },
    /// Put `element` into a set.
    Insert { key: String, element: String },
    /// Take `element` out of a set (absent: nothing changes).
    Remove { key: String, element: String },
    /// An operation of a user-defined workload: `name` says which, `arg`
    /// carries its input; in an `ok` completion `value` is its result.
    Call {
        key: String,
        name: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        arg: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        value: Option<String>,
    },
}

impl Op {
    /// The key this operation acts on.
    pub fn key(&self) -> &str {
        match self {
            Op::Read { key, .. }
            | Op::Write { key, .. }
            | Op::Append { key, .. }
            | Op::Cas { key, .. }
            | Op::Add { key, .. }
            | Op::Insert { key, .. }
            | Op::Remove { key, .. }
            | Op::Call { key, .. } => key,
        }
    }

    /// Whether the operation can change the store (a user's `call` is
    /// assumed to).
    pub fn is_mutation(&self) -> bool {
        !matches!(self, Op::Read { .. })
    }

    /// A short name: `read`, `write`, `append`, `cas`, `add`, `insert`,
    /// `remove`, or a user operation's own name.
    pub fn name(&self) -> &str {
        match self {
            Op::Read { .. } => "read",
            Op::Write { .. } => "write",
            Op::Append { .. } => "append",
            Op::Cas { .. } => "cas",
            Op::Add { .. } => "add",
            Op::Insert { .. } => "insert",
            Op::Remove { .. } => "remove",
            Op::Call { name, .. } => name,
        }
    }

    /// The same operation with `result` as the value it returned (reads and
    /// user calls carry one; other operations are returned unchanged).
    pub fn with_result(self, result: Option<String>) -> Op {
        match self {
            Op::Read { key, .. } => Op::Read { key, value: result },
            Op::Call { key, name, arg, .. } => Op::Call {
                key,
                name,
                arg,
                value: result,
            },
            op => op,
        }
    }

    /// The value a read or user call returned, as recorded in its completion.
    pub fn result(&self) -> Option<&String> {
        match self {
            Op::Read { value, .. } | Op::Call { value, .. } => value.as_ref(),
            _ => None,
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

impl EventType {
    /// The type's name: `invoke`, `ok`, `fail` or `info`.
    pub fn name(self) -> &'static str {
        match self {
            EventType::Invoke => "invoke",
            EventType::Ok => "ok",
            EventType::Fail => "fail",
            EventType::Info => "info",
        }
    }
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
    /// In an `ok` read that returned several concurrent values (siblings,
    /// [`Completion::Siblings`]), the values beside the one in `op`'s
    /// `value`; absent from the JSON when empty (every other event).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub siblings: Vec<String>,
}

/// How one operation ended.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Completion {
    /// It happened; for a read, the value read.
    Ok(Option<String>),
    /// It happened: a read that returned several concurrent values
    /// (siblings, as a Dynamo-style store keeps them), at least two, in the
    /// system's order. The history records the first as the read's `value`
    /// (what a check of a register sees) and the others as its
    /// [`Event::siblings`].
    Siblings(Vec<String>),
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
    /// For an `Ok` read or user call, the value returned.
    pub result: Option<String>,
    /// For an `Ok` read that returned siblings, the values beside `result`
    /// (empty otherwise).
    pub siblings: Vec<String>,
}

impl Operation {
    /// Whether the operation definitely took effect.
    pub fn is_ok(&self) -> bool {
        self.kind == EventType::Ok
    }

    /// Every value an `ok` read returned: its result (`None`: the key was
    /// unset), then its siblings.
    pub fn values(&self) -> Vec<Option<&str>> {
        std::iter::once(self.result.as_deref())
            .chain(self.siblings.iter().map(|v| Some(v.as_str())))
            .collect()
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
            siblings: Vec::new(),
        });
    }

    /// Records the completion of `process`'s outstanding operation `op`.
    pub fn complete(&mut self, process: u64, time: u64, op: Op, completion: &Completion) {
        let mut siblings = Vec::new();
        let (kind, op) = match (completion, op) {
            (Completion::Ok(value), op) => (EventType::Ok, op.with_result(value.clone())),
            (Completion::Siblings(values), op) => {
                let mut values = values.iter().cloned();
                let first = values.next();
                siblings.extend(values);
                (EventType::Ok, op.with_result(first))
            }
            (Completion::Fail(_), op) => (EventType::Fail, op),
            (Completion::Info(_), op) => (EventType::Info, op),
        };
        self.events.push(Event {
            process,
            time,
            kind,
            op,
            siblings,
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
                    siblings: Vec::new(),
                });
            } else if let Some(i) = open.remove(&event.process) {
                let operation = &mut ops[i];
                operation.complete_time = Some(event.time);
                operation.kind = event.kind;
                operation.result = event.op.result().cloned();
                operation.siblings.clone_from(&event.siblings);
            }
        }
        ops
    }
}
