//! Sequential specifications that histories are checked against.
//!
//! A [`Model`] is Porcupine's model in Rust: an initial state and a step
//! function that says whether an operation (its input together with the
//! output observed) is legal in a state, and the state after it. States are
//! hashed: the search memoises (linearized set, state) pairs, and a cheap
//! state hash is what makes that memo fast.
//!
//! Two models cover key-value histories checked one key at a time, both
//! over [`CellOp`]s whose values are interned to `u32` indexes into the
//! model's value table:
//! - [`Register`]: read, write, compare-and-set (the etcd histories, and
//!   any key without appends); the state is one interned value;
//! - [`StringCell`]: read, write, append, compare-and-set (Porcupine's
//!   key-value logs and replisim's own store); the state is a string.
//!
//! Other data types plug in by implementing [`Model`] and calling
//! [`super::linearizable::check_model`].

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hash};

use super::memo::Fx;

/// A sequential specification.
pub trait Model {
    /// The abstract state; equal states must hash equally.
    type State: Clone + Eq + Hash;
    /// One completed operation: its input and the output observed.
    type Op;

    fn init(&self) -> Self::State;

    /// The state after `op` when `op` is legal in `state`, else `None`.
    fn step(&self, state: &Self::State, op: &Self::Op) -> Option<Self::State>;

    fn describe_op(&self, op: &Self::Op) -> String;

    fn describe_state(&self, state: &Self::State) -> String;

    /// Whether `op` never changes any state (a read): the search then
    /// linearizes it as soon as it is legal, without trying alternatives.
    /// Answer `true` only if `step` returns the state unchanged whenever
    /// it accepts `op`, in every state.
    fn is_read_only(&self, _op: &Self::Op) -> bool {
        false
    }

    /// Heap bytes a state owns, counted against the search's memory limit.
    fn heap_bytes(&self, _state: &Self::State) -> usize {
        0
    }
}

/// A single-key operation with its observed outcome; values are indexes
/// into the model's value table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CellOp {
    /// A read that returned this value (`None`: the key was unset).
    Read(Option<u32>),
    Write(u32),
    /// Concatenates to the current value (unset counts as "").
    Append(u32),
    /// A compare-and-set that succeeded: the value was `from`, became `to`.
    Cas {
        from: u32,
        to: u32,
    },
    /// A compare-and-set of unknown outcome: sets `to` if the value is
    /// `from`, else changes nothing.
    MaybeCas {
        from: u32,
        to: u32,
    },
    /// A compare-and-set whose comparison failed: the value was not `from`.
    CasFailed {
        from: u32,
    },
}

impl CellOp {
    /// Reads and failed comparisons observe the value without changing it.
    pub fn is_read_only(&self) -> bool {
        matches!(self, CellOp::Read(_) | CellOp::CasFailed { .. })
    }
}

/// Interned values of one key.
#[derive(Debug, Clone, Default)]
pub struct Values {
    strings: Vec<String>,
    index: HashMap<String, u32, BuildHasherDefault<Fx>>,
}

impl Values {
    /// The index of `value`, interning it on first sight.
    pub fn intern(&mut self, value: &str) -> u32 {
        if let Some(&i) = self.index.get(value) {
            return i;
        }
        let i = u32::try_from(self.strings.len()).unwrap_or(u32::MAX);
        self.strings.push(value.to_string());
        self.index.insert(value.to_string(), i);
        i
    }

    pub fn get(&self, i: u32) -> &str {
        self.strings.get(i as usize).map_or("?", String::as_str)
    }

    fn describe(&self, op: &CellOp) -> String {
        let show = |v: Option<u32>| {
            v.map_or_else(|| "unset".to_string(), |v| format!("{:?}", self.get(v)))
        };
        match *op {
            CellOp::Read(v) => format!("read -> {}", show(v)),
            CellOp::Write(v) => format!("write {}", show(Some(v))),
            CellOp::Append(v) => format!("append {}", show(Some(v))),
            CellOp::Cas { from, to } => format!("cas {} -> {}", show(Some(from)), show(Some(to))),
            CellOp::MaybeCas { from, to } => {
                format!(
                    "cas {} -> {} (outcome unknown)",
                    show(Some(from)),
                    show(Some(to))
                )
            }
            CellOp::CasFailed { from } => format!("cas from {} failed", show(Some(from))),
        }
    }
}

/// A register with compare-and-set. It has no append: use [`StringCell`]
/// for keys with appends (an append is never legal here).
#[derive(Debug, Clone)]
pub struct Register {
    pub values: Values,
    /// The initial value (`None`: unset).
    pub initial: Option<u32>,
}

impl Model for Register {
    type State = Option<u32>;
    type Op = CellOp;

    fn init(&self) -> Self::State {
        self.initial
    }

    #[inline]
    fn step(&self, state: &Self::State, op: &CellOp) -> Option<Self::State> {
        let state = *state;
        match *op {
            CellOp::Read(v) => (v == state).then_some(state),
            CellOp::Write(v) => Some(Some(v)),
            CellOp::Append(_) => None,
            CellOp::Cas { from, to } => (state == Some(from)).then_some(Some(to)),
            CellOp::MaybeCas { from, to } => {
                Some(if state == Some(from) { Some(to) } else { state })
            }
            CellOp::CasFailed { from } => (state != Some(from)).then_some(state),
        }
    }

    fn is_read_only(&self, op: &CellOp) -> bool {
        op.is_read_only()
    }

    fn describe_op(&self, op: &CellOp) -> String {
        self.values.describe(op)
    }

    fn describe_state(&self, state: &Self::State) -> String {
        state.map_or_else(
            || "unset".to_string(),
            |v| format!("{:?}", self.values.get(v)),
        )
    }
}

/// A string value with read, write, append and compare-and-set.
#[derive(Debug, Clone)]
pub struct StringCell {
    pub values: Values,
    /// The initial value (`None`: unset).
    pub initial: Option<String>,
}

impl Model for StringCell {
    type State = Option<String>;
    type Op = CellOp;

    fn init(&self) -> Self::State {
        self.initial.clone()
    }

    fn step(&self, state: &Self::State, op: &CellOp) -> Option<Self::State> {
        let current = state.as_deref();
        let is = |v: u32| current == Some(self.values.get(v));
        match *op {
            CellOp::Read(None) => current.is_none().then(|| state.clone()),
            CellOp::Read(Some(v)) => is(v).then(|| state.clone()),
            CellOp::Write(v) => Some(Some(self.values.get(v).to_string())),
            CellOp::Append(v) => {
                let (current, add) = (current.unwrap_or(""), self.values.get(v));
                let mut appended = String::with_capacity(current.len() + add.len());
                appended.push_str(current);
                appended.push_str(add);
                Some(Some(appended))
            }
            CellOp::Cas { from, to } => is(from).then(|| Some(self.values.get(to).to_string())),
            CellOp::MaybeCas { from, to } => Some(if is(from) {
                Some(self.values.get(to).to_string())
            } else {
                state.clone()
            }),
            CellOp::CasFailed { from } => (!is(from)).then(|| state.clone()),
        }
    }

    fn is_read_only(&self, op: &CellOp) -> bool {
        op.is_read_only()
    }

    fn describe_op(&self, op: &CellOp) -> String {
        self.values.describe(op)
    }

    fn describe_state(&self, state: &Self::State) -> String {
        state
            .as_ref()
            .map_or_else(|| "unset".to_string(), |s| format!("{s:?}"))
    }

    fn heap_bytes(&self, state: &Self::State) -> usize {
        state.as_ref().map_or(0, String::capacity)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn register_and_string_cell_agree_without_appends() {
        let mut values = Values::default();
        let (a, b) = (values.intern("a"), values.intern("b"));
        let register = Register {
            values: values.clone(),
            initial: None,
        };
        let cell = StringCell {
            values,
            initial: None,
        };
        let ops = [
            CellOp::Read(None),
            CellOp::CasFailed { from: a },
            CellOp::Write(a),
            CellOp::Read(Some(a)),
            CellOp::MaybeCas { from: b, to: a },
            CellOp::Cas { from: a, to: b },
            CellOp::Read(Some(b)),
        ];
        let (mut r, mut c) = (register.init(), cell.init());
        for op in &ops {
            r = register.step(&r, op).unwrap();
            c = cell.step(&c, op).unwrap();
            assert_eq!(register.describe_state(&r), cell.describe_state(&c));
        }
        assert_eq!(register.step(&r, &CellOp::Read(Some(a))), None);
        assert_eq!(cell.step(&c, &CellOp::Cas { from: a, to: b }), None);
        assert_eq!(cell.step(&c, &CellOp::Append(a)), Some(Some("ba".into())));
        assert_eq!(
            register.describe_op(&CellOp::Cas { from: a, to: b }),
            "cas \"a\" -> \"b\""
        );
    }
}
