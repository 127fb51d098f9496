//! Linearizability of a register whose written values are unique, decided
//! in O(n log n) without a search: Gibbons and Korach, "Testing shared
//! memories" (SIAM J. Computing, 1997), in the zone form of Golab, Li and
//! Shah, "Analyzing consistency properties for fun and profit" (PODC 2011),
//! extended to compare-and-set.
//!
//! It applies when no two operations write the same value and none writes
//! the initial value. Then every operation that observes a value names the
//! one write it observed (the *read-mapping*), and once a value is
//! replaced it never returns. What each operation becomes:
//! - a read observes its value's write;
//! - a write, or a successful compare-and-set, is a write; a
//!   compare-and-set also observes the write of its `from` value, and must
//!   be the very next write after it (so two of them from one value, or a
//!   cycle of them, refute the history);
//! - an indeterminate write or compare-and-set (`info`, or never
//!   completed) took effect if some operation observes its value (with no
//!   bound on when, after its call); if none does, it is dropped, which
//!   changes no verdict;
//! - anything else (an append, a failed compare-and-set that says "the
//!   value was not `from`", a value written twice or equal to the initial
//!   value) does not fit: [`decide`] answers `None` and the caller searches.
//!
//! A write and the writes that replace it by compare-and-set, with all
//! their reads, form a *chain*: in any linearization its operations are
//! one contiguous stretch, in chain order (a write, its reads, the next
//! compare-and-set, its reads, ...). The initial value heads a chain of its
//! own, at the very start. A chain must fit in its own operations'
//! intervals in that order (checked greedily, earliest points first). Its
//! *zone* runs from the earliest completion `f` among its operations to
//! the latest invocation `s`: when `f < s` (a forward zone) the chain must
//! cover all of `[f, s]`; otherwise all its operations overlap `[s, f]`
//! and it can take effect at any single point there. The history is
//! linearizable iff every chain fits, no two forward zones overlap, and no
//! backward zone lies inside a forward zone. Times are doubled so that a
//! call and a return at the same time never coincide (calls come first:
//! operations that touch are concurrent, as in the search).
//!
//! When it refutes, the evidence is a [`Conflict`]: a minimal set of
//! operations that cannot all linearize, and why (`conflict` finds and
//! words it).

use super::Verdict;
use super::explain::{Conflict, NonLinearizable, op_info};
use super::model::{CellOp, Model, Register};
use super::search::Timed;

/// The initial value's write, where an operation's position would be.
const INITIAL: usize = usize::MAX;
/// No operation.
const NONE: usize = usize::MAX - 1;

/// Decides a register's operations if its written values are unique
/// (`None`: they are not, or some operation does not fit; search instead).
/// `index` maps a position in `ops` to the index the evidence reports.
pub(crate) fn decide(
    model: &Register,
    ops: &[Timed<CellOp>],
    index: impl Fn(usize) -> usize,
) -> Option<Verdict<NonLinearizable>> {
    let mut mapping = Mapping::new(ops, model.initial)?;
    let Err(refutation) = mapping.check() else {
        return Some(Verdict::Ok);
    };
    let (_, conflict) = mapping.account(model, &refutation, &index);
    // Explain the smallest conflict within it, by what the operations
    // left say, renumbered back to `ops`.
    let set = conflict::minimal(&mapping, conflict);
    let sub = mapping.sub_history(&set);
    let mut small = Mapping::new(&sub, model.initial)?;
    small.real = set.len();
    let refutation = small.check().err()?;
    let index = |j: usize| index(set[j]);
    let (reason, conflict) = small.account(model, &refutation, &index);
    Some(Verdict::Violation(NonLinearizable {
        key: None,
        operations: ops.len(),
        initial_state: model.describe_state(&model.initial),
        prefix: Vec::new(),
        blocked: Vec::new(),
        conflict: Some(Conflict {
            reason,
            ops: conflict
                .iter()
                .map(|&j| op_info(model, &sub, j, &index))
                .collect(),
        }),
    }))
}

/// The value an operation writes.
fn written(op: &CellOp) -> Option<u32> {
    match *op {
        CellOp::Write(v) | CellOp::Cas { to: v, .. } | CellOp::MaybeCas { to: v, .. } => Some(v),
        _ => None,
    }
}

/// The value an operation observes (`Some(None)`: unset).
fn observed(op: &CellOp) -> Option<Option<u32>> {
    match *op {
        CellOp::Read(v) => Some(v),
        CellOp::Cas { from, .. } | CellOp::MaybeCas { from, .. } => Some(Some(from)),
        _ => None,
    }
}

/// Why the operations are not linearizable.
#[derive(Debug)]
enum Refutation {
    /// `op` observes a value nothing that took effect writes.
    Unwritten { op: usize },
    /// Two compare-and-sets replaced the value `source` wrote.
    SameFrom {
        source: usize,
        first: usize,
        second: usize,
    },
    /// Compare-and-sets each from the value the previous one wrote.
    Cycle { ops: Vec<usize> },
    /// `after` must take effect after `before` (same chain), but completed
    /// before `before` was invoked.
    Order {
        chain: usize,
        before: usize,
        after: usize,
    },
    /// Two chains' forward zones overlap.
    Overlap { first: usize, second: usize },
    /// Chain `inner`'s backward zone lies inside `outer`'s forward zone.
    Inside { inner: usize, outer: usize },
}

/// A chain: its writes in order, and its zone's ends.
struct Chain {
    heads: Vec<usize>,
    /// The earliest completion and the operation with it.
    f: (u128, usize),
    /// The latest invocation and the operation with it.
    s: (u128, usize),
}

impl Chain {
    fn forward(&self) -> bool {
        self.f.0 < self.s.0
    }
}

/// The read-mapping of one register's operations.
struct Mapping<'a> {
    ops: &'a [Timed<CellOp>],
    /// Operations from this position on stand for writes outside a
    /// conflict (see [`Mapping::sub_history`]).
    real: usize,
    initial: Option<u32>,
    /// By value: the operation writing it, or `NONE`.
    writer: Vec<usize>,
    /// By operation: whether it took effect.
    happens: Vec<bool>,
    /// By operation of unknown outcome that took effect: the operation
    /// observing it, which proves it (else `NONE`).
    proof: Vec<usize>,
    /// By operation: the write it observes (`INITIAL`, an operation, or `NONE`).
    source: Vec<usize>,
    /// By write (operation, then the initial value last): its reads.
    readers: Vec<Vec<usize>>,
    chains: Vec<Chain>,
}

impl<'a> Mapping<'a> {
    fn new(ops: &'a [Timed<CellOp>], initial: Option<u32>) -> Option<Self> {
        let mut writer = Vec::new();
        for (i, op) in ops.iter().enumerate() {
            if matches!(op.op, CellOp::Append(_) | CellOp::CasFailed { .. }) {
                return None;
            }
            let Some(value) = written(&op.op) else {
                continue;
            };
            let value = value as usize;
            if value >= writer.len() {
                writer.resize(value + 1, NONE);
            }
            if writer[value] != NONE || initial == Some(value as u32) {
                return None;
            }
            writer[value] = i;
        }
        Some(Mapping {
            ops,
            real: ops.len(),
            initial,
            writer,
            happens: ops.iter().map(|o| o.ret.is_some()).collect(),
            proof: vec![NONE; ops.len()],
            source: vec![NONE; ops.len()],
            readers: vec![Vec::new(); ops.len() + 1],
            chains: Vec::new(),
        })
    }

    /// Where `i` sits in the per-write tables.
    fn slot(&self, i: usize) -> usize {
        if i == INITIAL { self.ops.len() } else { i }
    }

    /// The write of `value` (`INITIAL` or an operation), if any.
    fn write_of(&self, value: Option<u32>) -> Option<usize> {
        if value == self.initial {
            return Some(INITIAL);
        }
        let i = *self.writer.get(value? as usize)?;
        (i != NONE).then_some(i)
    }

    fn call(&self, i: usize) -> u128 {
        if i == INITIAL {
            0
        } else {
            2 * u128::from(self.ops[i].call) + 2
        }
    }

    fn ret(&self, i: usize) -> u128 {
        if i == INITIAL {
            return 1;
        }
        let op = &self.ops[i];
        op.ret
            .map_or(u128::MAX, |r| 2 * u128::from(r.max(op.call)) + 3)
    }

    fn check(&mut self) -> Result<(), Refutation> {
        self.observe()?;
        self.link()?;
        for chain in 0..self.chains.len() {
            self.fit(chain)?;
        }
        self.zones()
    }

    /// Maps every operation that took effect to the write it observes,
    /// marking the indeterminate writes that an observation proves.
    fn observe(&mut self) -> Result<(), Refutation> {
        let mut todo: Vec<usize> = (0..self.ops.len())
            .rev()
            .filter(|&i| self.happens[i])
            .collect();
        while let Some(i) = todo.pop() {
            let Some(observed) = observed(&self.ops[i].op) else {
                continue;
            };
            let source = self
                .write_of(observed)
                .ok_or(Refutation::Unwritten { op: i })?;
            self.source[i] = source;
            if source != INITIAL && !self.happens[source] {
                self.happens[source] = true;
                self.proof[source] = i;
                todo.push(source);
            }
        }
        Ok(())
    }

    /// Builds the chains: each write that took effect heads one unless a
    /// compare-and-set made it, and each compare-and-set follows the write
    /// it observed.
    fn link(&mut self) -> Result<(), Refutation> {
        let mut next = vec![NONE; self.ops.len() + 1];
        for i in (0..self.ops.len()).filter(|&i| self.happens[i]) {
            let source = self.slot(self.source[i]);
            match self.ops[i].op {
                CellOp::Read(_) => self.readers[source].push(i),
                CellOp::Cas { .. } | CellOp::MaybeCas { .. } => {
                    if next[source] != NONE {
                        return Err(Refutation::SameFrom {
                            source: self.source[i],
                            first: next[source],
                            second: i,
                        });
                    }
                    next[source] = i;
                }
                _ => {}
            }
        }
        let roots = (0..self.ops.len())
            .filter(|&i| self.happens[i] && matches!(self.ops[i].op, CellOp::Write(_)));
        let mut chained = vec![false; self.ops.len()];
        for root in std::iter::once(INITIAL).chain(roots) {
            let mut heads = vec![root];
            while let Some(&h) = heads.last().filter(|&&h| next[self.slot(h)] != NONE) {
                let n = next[self.slot(h)];
                chained[n] = true;
                heads.push(n);
            }
            let ops = heads.iter().flat_map(|&h| {
                let reads = self.readers[self.slot(h)].iter().copied();
                std::iter::once(h).chain(reads)
            });
            let f = ops
                .clone()
                .map(|i| (self.ret(i), i))
                .min()
                .unwrap_or((1, INITIAL));
            let s = ops.map(|i| (self.call(i), i)).max().unwrap_or((0, INITIAL));
            self.chains.push(Chain { heads, f, s });
        }
        let unchained = (0..self.ops.len()).find(|&i| {
            self.happens[i]
                && !chained[i]
                && matches!(self.ops[i].op, CellOp::Cas { .. } | CellOp::MaybeCas { .. })
        });
        match unchained {
            // Not reached from a chain's head, so on a cycle: follow it.
            Some(start) => {
                let mut ops = vec![start];
                let mut at = self.source[start];
                while at < self.ops.len() && at != start {
                    ops.push(at);
                    at = self.source[at];
                }
                Err(Refutation::Cycle { ops })
            }
            None => Ok(()),
        }
    }

    /// Checks that the chain's operations can take effect in chain order,
    /// each as early as it can.
    fn fit(&self, chain: usize) -> Result<(), Refutation> {
        // The earliest point the next operation can take, and whose call set it.
        let mut low = (0, NONE);
        for &head in &self.chains[chain].heads {
            let reads = &self.readers[self.slot(head)];
            for group in [std::slice::from_ref(&head), reads.as_slice()] {
                for &i in group.iter().filter(|&&i| i != INITIAL) {
                    if low.0 > self.ret(i) {
                        return Err(Refutation::Order {
                            chain,
                            before: low.1,
                            after: i,
                        });
                    }
                }
                for &i in group.iter().filter(|&&i| i != INITIAL) {
                    low = low.max((self.call(i), i));
                }
            }
        }
        Ok(())
    }

    /// Checks the chains' zones against each other.
    fn zones(&self) -> Result<(), Refutation> {
        let mut forward: Vec<usize> = (0..self.chains.len())
            .filter(|&c| self.chains[c].forward())
            .collect();
        forward.sort_by_key(|&c| (self.chains[c].f, c));
        let mut reach: Option<usize> = None;
        for &c in &forward {
            if let Some(r) = reach
                && self.chains[c].f.0 <= self.chains[r].s.0
            {
                return Err(Refutation::Overlap {
                    first: r,
                    second: c,
                });
            }
            if reach.is_none_or(|r| self.chains[c].s.0 > self.chains[r].s.0) {
                reach = Some(c);
            }
        }
        for (inner, chain) in self.chains.iter().enumerate().filter(|(_, c)| !c.forward()) {
            let before = forward.partition_point(|&c| self.chains[c].f.0 <= chain.s.0);
            if let Some(&outer) = before.checked_sub(1).and_then(|b| forward.get(b))
                && chain.f.0 <= self.chains[outer].s.0
            {
                return Err(Refutation::Inside { inner, outer });
            }
        }
        Ok(())
    }
}

mod conflict;
#[cfg(test)]
mod tests;
