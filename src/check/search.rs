//! The linearizability search of Wing & Gong, with Lowe's memoisation, laid
//! out as Porcupine lays it out.
//!
//! Every operation becomes a call entry and a return entry in one doubly
//! linked list ordered by time (calls before returns at equal times, so
//! operations that touch are concurrent). An operation whose return is
//! unknown (`ret: None`) gets an open return entry after every other
//! entry: it may take effect at any time after its call, or never. The
//! search walks the list from the head: at a call entry it tries to
//! linearize that operation next (the model accepts it and the pair
//! (linearized set, state) is new), lifting both entries out of the list;
//! at a return entry it backtracks, since that operation should already
//! have been linearized. It succeeds when it reaches an open return entry
//! or the end of the list (every completed operation is linearized; the
//! open ones left never took effect) and fails when it must backtrack with
//! nothing linearized. One pruning beyond Porcupine's: a
//! legal read-only operation is never followed by alternatives (see the
//! comment in [`search`]).
//!
//! The linearized set and the memo of visited (set, state) pairs live in
//! `memo`.
//!
//! A step is one turn of the walk: one visit of a list entry, whether it
//! tries to linearize a call or backtracks from a return. The steps a
//! search takes are a function of the operations alone. So are the memo's
//! bytes for a given build: they are the memo's own accounting (entry
//! size, span words, the model's [`Model::heap_bytes`]), never asked of
//! the allocator. The step and memory limits therefore stop a search at
//! the same point on every run and every machine. The step budget is
//! checked before every step; the time limit, the memory limit and the
//! cancellation flag (another key's search refuted the history) every
//! [`CHECK_EVERY`] steps. Only the time limit and cancellation depend on
//! the machine.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant; // determinism-ok: the checker's wall-clock limit, never simulated

use super::memo::{Bitset, Memo, fx_hash, mix};
use super::model::Model;

/// One operation for the search: the model operation and its interval.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Timed<O> {
    pub op: O,
    /// The client that ran it (for explanations).
    pub client: u64,
    pub call: u64,
    /// `None`: unknown whether or when it completed (Jepsen's `info`).
    pub ret: Option<u64>,
}

/// What stopped a search before it reached a verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Limit {
    Time,
    Steps,
    Memory,
    /// Its flag was raised: the answer no longer matters.
    Cancelled,
}

/// Bounds on one search, and the steps it has taken.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Bounds<'a> {
    pub(crate) deadline: Option<Instant>,
    /// The most steps the search may take.
    pub(crate) step_limit: Option<u64>,
    /// Bytes of the search's memo.
    pub(crate) memory_bytes: usize,
    /// Steps taken so far.
    pub(crate) steps: u64,
    /// Raised when the search should stop.
    pub(crate) cancel: Option<&'a AtomicBool>,
}

pub(crate) enum SearchOutcome {
    Linearizable,
    /// Not linearizable; `longest` is the longest linearizable prefix found
    /// (indexes into the operations, in linearization order).
    Illegal {
        longest: Vec<u32>,
    },
    Stopped(Limit),
}

/// How often (in search steps) the time and memory limits are checked.
const CHECK_EVERY: u64 = 1024;
const NIL: u32 = u32::MAX;
const OPEN: u32 = u32::MAX - 1;
const HEAD: u32 = 0;

/// One list entry: the call or the return of operation `op`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ListEntry {
    pub(crate) op: u32,
    pub(crate) is_return: bool,
}

/// The entries in list order.
pub(crate) fn entries<O>(ops: &[Timed<O>]) -> Vec<ListEntry> {
    let mut timed: Vec<(u64, bool, u32)> = Vec::with_capacity(ops.len() * 2);
    let mut open_ended = Vec::new();
    for (i, op) in ops.iter().enumerate() {
        let i = i as u32;
        timed.push((op.call, false, i));
        match op.ret {
            Some(ret) => timed.push((ret.max(op.call), true, i)),
            None => open_ended.push(i),
        }
    }
    timed.sort_unstable();
    let closed = timed
        .into_iter()
        .map(|(_, is_return, op)| ListEntry { op, is_return });
    let open = open_ended.into_iter().map(|op| ListEntry {
        op,
        is_return: true,
    });
    closed.chain(open).collect()
}

#[derive(Debug, Clone, Copy)]
struct Node {
    op: u32,
    /// For a call, its return's node; `NIL` for a return, `OPEN` for the
    /// return of an operation that may never have taken effect.
    partner: u32,
    prev: u32,
    next: u32,
}

struct List {
    nodes: Vec<Node>,
}

impl List {
    fn new<O>(ops: &[Timed<O>]) -> List {
        let order = entries(ops);
        let mut nodes = Vec::with_capacity(order.len() + 1);
        let link = |i: usize, len: usize| Node {
            op: NIL,
            partner: NIL,
            prev: if i == 0 { NIL } else { i as u32 - 1 },
            next: if i == len { NIL } else { i as u32 + 1 },
        };
        nodes.push(link(0, order.len()));
        let mut call_node = vec![NIL; ops.len()];
        for (i, entry) in order.iter().enumerate() {
            let index = i + 1;
            nodes.push(Node {
                op: entry.op,
                ..link(index, order.len())
            });
            if entry.is_return {
                nodes[call_node[entry.op as usize] as usize].partner = index as u32;
                if ops[entry.op as usize].ret.is_none() {
                    nodes[index].partner = OPEN;
                }
            } else {
                call_node[entry.op as usize] = index as u32;
            }
        }
        List { nodes }
    }

    fn first(&self) -> u32 {
        self.nodes[HEAD as usize].next
    }

    fn unlink(&mut self, n: u32) {
        let Node { prev, next, .. } = self.nodes[n as usize];
        self.nodes[prev as usize].next = next;
        if next != NIL {
            self.nodes[next as usize].prev = prev;
        }
    }

    fn relink(&mut self, n: u32) {
        let Node { prev, next, .. } = self.nodes[n as usize];
        self.nodes[prev as usize].next = n;
        if next != NIL {
            self.nodes[next as usize].prev = n;
        }
    }

    /// Removes a call and its return; `unlift` undoes it exactly.
    fn lift(&mut self, call: u32) {
        self.unlink(call);
        self.unlink(self.nodes[call as usize].partner);
    }

    fn unlift(&mut self, call: u32) {
        self.relink(self.nodes[call as usize].partner);
        self.relink(call);
    }
}

/// Runs the search, adding the steps it takes to `limits.steps`.
pub(crate) fn search<M: Model>(
    model: &M,
    ops: &[Timed<M::Op>],
    limits: &mut Bounds<'_>,
) -> SearchOutcome {
    let mut list = List::new(ops);
    let mut linearized = Bitset::new(ops.len());
    let mut memo = Memo::new();
    // (call node, state before it, whether the operation is read-only)
    let mut calls: Vec<(u32, M::State, bool)> = Vec::new();
    let mut longest = Longest::default();
    let mut state = model.init();
    let mut node = list.first();
    let first_step = limits.steps;
    let step_limit = limits.step_limit.unwrap_or(u64::MAX);
    while list.first() != NIL {
        if limits.steps >= step_limit {
            return SearchOutcome::Stopped(Limit::Steps);
        }
        if (limits.steps - first_step).is_multiple_of(CHECK_EVERY) {
            let now = Instant::now(); // determinism-ok: not simulated
            if limits.deadline.is_some_and(|d| now >= d) {
                return SearchOutcome::Stopped(Limit::Time);
            }
            if memo.bytes > limits.memory_bytes {
                return SearchOutcome::Stopped(Limit::Memory);
            }
            if limits.cancel.is_some_and(|c| c.load(Ordering::Relaxed)) {
                return SearchOutcome::Stopped(Limit::Cancelled);
            }
        }
        limits.steps += 1;
        let entry = list.nodes[node as usize];
        if entry.partner == OPEN {
            return SearchOutcome::Linearizable;
        }
        if entry.partner != NIL {
            let op = &ops[entry.op as usize].op;
            let mut dead_end = false;
            if let Some(next) = model.step(&state, op) {
                let read_only = model.is_read_only(op);
                linearized.toggle(entry.op);
                let key = mix(linearized.hash ^ fx_hash(&next));
                if memo.insert(key, &linearized, &next, model.heap_bytes(&next)) {
                    longest.push(calls.len(), entry.op);
                    calls.push((node, std::mem::replace(&mut state, next), read_only));
                    list.lift(node);
                    node = list.first();
                    continue;
                }
                linearized.toggle(entry.op);
                dead_end = read_only;
            }
            if !dead_end {
                node = entry.next;
                continue;
            }
        }
        // Backtrack: at a return entry, that operation should already be
        // linearized. A read-only operation that is legal here can always
        // go first (it changes no state, and every operation that must
        // precede it already has), so when it leads nowhere, neither does
        // anything else from here: backtrack past it too.
        longest.record(&calls, &list);
        loop {
            let Some((call, previous, read_only)) = calls.pop() else {
                return SearchOutcome::Illegal {
                    longest: longest.ops,
                };
            };
            longest.pop(calls.len());
            state = previous;
            linearized.toggle(list.nodes[call as usize].op);
            list.unlift(call);
            node = list.nodes[call as usize].next;
            if !read_only {
                break;
            }
        }
    }
    SearchOutcome::Linearizable
}

/// The longest linearized sequence seen, kept without copying the call
/// stack on every backtrack: `agree` is how many of its first operations
/// the current stack shares, so only the differing tail is ever copied.
#[derive(Default)]
struct Longest {
    ops: Vec<u32>,
    agree: usize,
}

impl Longest {
    /// The stack, of length `depth`, is about to grow by `op`.
    fn push(&mut self, depth: usize, op: u32) {
        if self.agree == depth && self.ops.get(depth) == Some(&op) {
            self.agree += 1;
        }
    }

    /// The stack shrank to `depth`.
    fn pop(&mut self, depth: usize) {
        self.agree = self.agree.min(depth);
    }

    fn record<S>(&mut self, calls: &[(u32, S, bool)], list: &List) {
        if calls.len() > self.ops.len() {
            self.ops.truncate(self.agree);
            let tail = calls[self.agree..].iter();
            self.ops
                .extend(tail.map(|&(n, _, _)| list.nodes[n as usize].op));
            self.agree = calls.len();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::model::{CellOp, Register, Values};

    fn timed(op: CellOp, call: u64, ret: Option<u64>) -> Timed<CellOp> {
        Timed {
            op,
            client: 0,
            call,
            ret,
        }
    }

    #[test]
    fn lift_and_unlift_restore_the_list() {
        let ops = [
            timed(CellOp::Write(0), 0, Some(2)),
            timed(CellOp::Read(Some(0)), 1, None),
        ];
        let mut list = List::new(&ops);
        let before: Vec<_> = list.nodes.iter().map(|n| (n.prev, n.next)).collect();
        let first = list.first();
        list.lift(first);
        assert_eq!(list.nodes[list.first() as usize].op, 1);
        list.unlift(first);
        let after: Vec<_> = list.nodes.iter().map(|n| (n.prev, n.next)).collect();
        assert_eq!(before, after);
    }

    #[test]
    fn limits_stop_the_search() {
        let mut values = Values::default();
        let v = values.intern("1");
        let model = Register {
            values,
            initial: None,
        };
        let ops = vec![timed(CellOp::Write(v), 0, Some(1))];
        let unbounded = Bounds {
            deadline: None,
            step_limit: None,
            memory_bytes: usize::MAX,
            steps: 0,
            cancel: None,
        };
        let mut past = Bounds {
            deadline: Some(Instant::now()), // determinism-ok: not simulated
            ..unbounded
        };
        assert!(matches!(
            search(&model, &ops, &mut past),
            SearchOutcome::Stopped(Limit::Time)
        ));
        let raised = AtomicBool::new(true);
        let mut cancelled = Bounds {
            cancel: Some(&raised),
            ..unbounded
        };
        assert!(matches!(
            search(&model, &ops, &mut cancelled),
            SearchOutcome::Stopped(Limit::Cancelled)
        ));
        // One step linearizes the write: a budget of one decides, and the
        // count carries over, so a second search within it has none left.
        let mut one = Bounds {
            step_limit: Some(1),
            ..unbounded
        };
        assert!(matches!(
            search(&model, &ops, &mut one),
            SearchOutcome::Linearizable
        ));
        assert_eq!(one.steps, 1);
        assert!(matches!(
            search(&model, &ops, &mut one),
            SearchOutcome::Stopped(Limit::Steps)
        ));
        assert_eq!(one.steps, 1);
    }
}
