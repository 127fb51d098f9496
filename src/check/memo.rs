//! The search's memory: the set of linearized operations and the memo of
//! visited (linearized set, state) pairs, built for speed.
//!
//! The set is a bitset with an incrementally maintained Zobrist hash and a
//! canonical span (see [`Bitset`]), so a memo entry stores a few words
//! even for a 100k-operation history. The memo keeps its entries in one
//! vector and finds them through an open-addressing table of tagged
//! indexes; states are hashed with FxHash.

use std::hash::{Hash, Hasher};

/// An empty memo table cell, and the hash bits a cell keeps.
const EMPTY: u64 = u64::MAX;
const TAG: u64 = 0xffff_ffff_0000_0000;

/// A set of operation indexes with a Zobrist hash kept up to date, and the
/// span of words that its canonical form needs: every word before `low` is
/// full, every word from `high` on is empty. The search linearizes roughly
/// in call order, so the span stays short however long the history.
pub(super) struct Bitset {
    words: Vec<u64>,
    pub(super) hash: u64,
    low: usize,
    high: usize,
}

impl Bitset {
    pub(super) fn new(len: usize) -> Self {
        Bitset {
            words: vec![0; len.div_ceil(64)],
            hash: 0,
            low: 0,
            high: 0,
        }
    }

    #[inline]
    pub(super) fn toggle(&mut self, i: u32) {
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
pub(super) struct Memo<S> {
    table: Vec<u64>,
    slots: Vec<Slot<S>>,
    arena: Vec<u64>,
    entry_bytes: usize,
    pub(super) bytes: usize,
}

impl<S: Eq + Clone> Memo<S> {
    pub(super) fn new() -> Self {
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
    pub(super) fn insert(&mut self, key: u64, set: &Bitset, state: &S, state_heap: usize) -> bool {
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

pub(super) fn fx_hash<T: Hash>(value: &T) -> u64 {
    let mut h = Fx::default();
    value.hash(&mut h);
    h.finish()
}

/// SplitMix64's finaliser: spreads every input bit over the output.
#[inline]
pub(super) fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_sets_share_a_canonical_span_and_one_memo_entry() {
        let mut a = Bitset::new(200);
        let mut b = Bitset::new(200);
        for i in 0..64 {
            a.toggle(i);
        }
        a.toggle(70);
        b.toggle(70);
        for i in (0..64).rev() {
            b.toggle(i);
        }
        assert_eq!((a.low, a.span(), a.hash), (1, &[1u64 << 6][..], b.hash));
        assert_eq!((b.low, b.span()), (1, &[1u64 << 6][..]));
        let mut memo = Memo::new();
        let key = mix(a.hash);
        assert!(memo.insert(key, &a, &Some(3u32), 0));
        assert!(!memo.insert(key, &b, &Some(3u32), 0));
        assert!(memo.insert(key, &b, &None, 0));
        a.toggle(70);
        assert_eq!((a.low, a.span()), (1, &[][..]));
        for i in 0..200 {
            memo.insert(mix(i), &a, &Some(i as u32), 0);
        }
        assert!(!memo.insert(mix(7), &a, &Some(7), 0));
    }
}
