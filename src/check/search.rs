//! The linearizability search of Wing & Gong, with Lowe's memoisation, laid
//! out as Porcupine lays it out.
//!
//! Every operation becomes a call entry and a return entry in one doubly
//! linked list ordered by time (calls before returns at equal times, so
//! operations that touch are concurrent). An operation whose return is
//! unknown (`ret: None`) gets its return entry after every other entry: it
//! may take effect at any time after its call, and placing it last is the
//! same as "never" for the operations that matter. The search walks the
//! list from the head: at a call entry it tries to linearize that
//! operation next (the model accepts it and the pair (linearized set,
//! state) is new), lifting both entries out of the list; at a return entry
//! it backtracks, since that operation should already have been
//! linearized. It succeeds when the list is empty and fails when it must
//! backtrack with nothing linearized.
//!
//! The linearized set is a bitset with an incrementally maintained
//! Zobrist hash; the memo stores each (bitset, state) once in flat arrays
//! indexed by a hash table. The time limit is checked every
//! [`CHECK_EVERY`] steps, and so is the memo's size against the memory
//! limit.

use std::hash::{Hash, Hasher};
use std::time::Instant;

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
    Memory,
}

/// Bounds on one search.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    pub(crate) deadline: Option<Instant>,
    pub(crate) memory_bytes: usize,
}

pub(crate) enum Outcome {
    Linearizable,
    /// Not linearizable; `longest` is the longest linearizable prefix found
    /// (indexes into the operations, in linearization order).
    Illegal {
        longest: Vec<u32>,
    },
    Stopped(Limit),
}

/// How often (in search steps) the limits are checked.
const CHECK_EVERY: u64 = 1024;
const NIL: u32 = u32::MAX;
const HEAD: u32 = 0;
/// An empty memo table cell, and the hash bits a cell keeps.
const EMPTY: u64 = u64::MAX;
const TAG: u64 = 0xffff_ffff_0000_0000;

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
    /// For a call, its return's node; `NIL` for a return.
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

/// Runs the search.
pub(crate) fn search<M: Model>(model: &M, ops: &[Timed<M::Op>], limits: Limits) -> Outcome {
    let mut list = List::new(ops);
    let mut linearized = Bitset::new(ops.len());
    let mut memo = Memo::new();
    let mut calls: Vec<(u32, M::State)> = Vec::new();
    let mut longest = Longest::default();
    let mut state = model.init();
    let mut node = list.first();
    let mut steps = 0u64;
    while list.first() != NIL {
        if steps.is_multiple_of(CHECK_EVERY) {
            if limits.deadline.is_some_and(|d| Instant::now() >= d) {
                return Outcome::Stopped(Limit::Time);
            }
            if memo.bytes > limits.memory_bytes {
                return Outcome::Stopped(Limit::Memory);
            }
        }
        steps += 1;
        let entry = list.nodes[node as usize];
        if entry.partner != NIL {
            if let Some(next) = model.step(&state, &ops[entry.op as usize].op) {
                linearized.toggle(entry.op);
                let key = mix(linearized.hash ^ fx_hash(&next));
                if memo.insert(key, &linearized, &next, model.heap_bytes(&next)) {
                    longest.push(calls.len(), entry.op);
                    calls.push((node, std::mem::replace(&mut state, next)));
                    list.lift(node);
                    node = list.first();
                    continue;
                }
                linearized.toggle(entry.op);
            }
            node = entry.next;
        } else {
            longest.record(&calls, &list);
            let Some((call, previous)) = calls.pop() else {
                return Outcome::Illegal {
                    longest: longest.ops,
                };
            };
            longest.pop(calls.len());
            state = previous;
            linearized.toggle(list.nodes[call as usize].op);
            list.unlift(call);
            node = list.nodes[call as usize].next;
        }
    }
    Outcome::Linearizable
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

    fn record<S>(&mut self, calls: &[(u32, S)], list: &List) {
        if calls.len() > self.ops.len() {
            self.ops.truncate(self.agree);
            let tail = calls[self.agree..].iter();
            self.ops
                .extend(tail.map(|&(n, _)| list.nodes[n as usize].op));
            self.agree = calls.len();
        }
    }
}

/// A set of operation indexes with a Zobrist hash kept up to date, and the
/// span of words that its canonical form needs: every word before `low` is
/// full, every word from `high` on is empty. The search linearizes roughly
/// in call order, so the span stays short however long the history.
struct Bitset {
    words: Vec<u64>,
    hash: u64,
    low: usize,
    high: usize,
}

impl Bitset {
    fn new(len: usize) -> Self {
        Bitset {
            words: vec![0; len.div_ceil(64)],
            hash: 0,
            low: 0,
            high: 0,
        }
    }

    #[inline]
    fn toggle(&mut self, i: u32) {
        let w = (i / 64) as usize;
        self.words[w] ^= 1 << (i % 64);
        self.hash ^= mix(u64::from(i).wrapping_add(0x9e37_79b9_7f4a_7c15));
        if self.words[w] & (1 << (i % 64)) != 0 {
            self.high = self.high.max(w + 1);
            while self.low < self.words.len() && self.words[self.low] == u64::MAX {
                self.low += 1;
            }
        } else {
            self.low = self.low.min(w);
            while self.high > 0 && self.words[self.high - 1] == 0 {
                self.high -= 1;
            }
        }
    }

    fn span(&self) -> &[u64] {
        &self.words[self.low..self.high.max(self.low)]
    }
}

/// One memo entry: the pair's hash, the linearized set's span (inline
/// when it is one word or none, else in the arena) and the state, side by
/// side so that a probe touches one cache line.
struct Slot<S> {
    key: u64,
    low: u32,
    len: u32,
    /// The span's only word, or its start in the arena.
    word: u64,
    state: S,
}

impl<S> Slot<S> {
    fn span<'a>(&'a self, arena: &'a [u64]) -> &'a [u64] {
        match self.len {
            0 => &[],
            1 => std::slice::from_ref(&self.word),
            len => &arena[self.word as usize..self.word as usize + len as usize],
        }
    }
}

/// The memo of visited (linearized set, state) pairs: slots in insertion
/// order, and an open-addressing table (linear probing, at most half
/// full) whose cells hold a slot index and the top half of its hash, so
/// that most probes of other entries never touch their slot.
struct Memo<S> {
    table: Vec<u64>,
    slots: Vec<Slot<S>>,
    arena: Vec<u64>,
    entry_bytes: usize,
    bytes: usize,
}

impl<S: Eq + Clone> Memo<S> {
    fn new() -> Self {
        Memo {
            table: vec![EMPTY; 1 << 12],
            slots: Vec::new(),
            arena: Vec::new(),
            // the slot and two table cells
            entry_bytes: std::mem::size_of::<Slot<S>>() + 16,
            bytes: 0,
        }
    }

    /// Adds the pair unless present; returns whether it was new.
    #[inline]
    fn insert(&mut self, key: u64, set: &Bitset, state: &S, state_heap: usize) -> bool {
        let span = set.span();
        let mask = self.table.len() - 1;
        let tag = key & TAG;
        let mut pos = key as usize & mask;
        loop {
            let cell = self.table[pos];
            if cell == EMPTY {
                break;
            }
            let slot = &self.slots[(cell & !TAG) as usize];
            if cell & TAG == tag
                && slot.key == key
                && slot.low as usize == set.low
                && slot.state == *state
                && same(slot.span(&self.arena), span)
            {
                return false;
            }
            pos = (pos + 1) & mask;
        }
        self.table[pos] = tag | self.slots.len() as u64;
        let word = match span {
            [] => 0,
            [only] => *only,
            _ => {
                self.arena.extend_from_slice(span);
                (self.arena.len() - span.len()) as u64
            }
        };
        self.slots.push(Slot {
            key,
            low: set.low as u32,
            len: span.len() as u32,
            word,
            state: state.clone(),
        });
        self.bytes += self.entry_bytes + span.len() * 8 + state_heap;
        if self.slots.len() * 2 > self.table.len() {
            self.grow();
        }
        true
    }

    fn grow(&mut self) {
        let mut table = vec![EMPTY; self.table.len() * 2];
        let mask = table.len() - 1;
        for (i, slot) in self.slots.iter().enumerate() {
            let mut pos = slot.key as usize & mask;
            while table[pos] != EMPTY {
                pos = (pos + 1) & mask;
            }
            table[pos] = (slot.key & TAG) | i as u64;
        }
        self.table = table;
    }
}

/// Slice equality without a `memcmp` call: spans are a few words long.
#[inline]
fn same(a: &[u64], b: &[u64]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x == y)
}

/// The FxHash function (rustc's): fast, deterministic, fine for states.
#[derive(Default)]
pub(crate) struct Fx(u64);

impl Fx {
    #[inline]
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

impl Hasher for Fx {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            self.add(u64::from_le_bytes(word));
        }
        for &b in chunks.remainder() {
            self.add(u64::from(b));
        }
    }

    fn write_u8(&mut self, n: u8) {
        self.add(u64::from(n));
    }

    fn write_u32(&mut self, n: u32) {
        self.add(u64::from(n));
    }

    fn write_u64(&mut self, n: u64) {
        self.add(n);
    }

    fn write_usize(&mut self, n: usize) {
        self.add(n as u64);
    }
}

fn fx_hash<T: Hash>(value: &T) -> u64 {
    let mut h = Fx::default();
    value.hash(&mut h);
    h.finish()
}

/// SplitMix64's finaliser: spreads every input bit over the output.
#[inline]
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
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
        let past = Limits {
            deadline: Some(Instant::now()),
            memory_bytes: usize::MAX,
        };
        assert!(matches!(
            search(&model, &ops, past),
            Outcome::Stopped(Limit::Time)
        ));
    }
}
