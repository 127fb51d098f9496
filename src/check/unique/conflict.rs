//! What a refutation shows: the smallest set of operations that conflict
//! on their own, and why, in words.
//!
//! A refutation first names the operations that pin it (a chain's zone
//! ends and the writes linking them, an operation and the observations
//! that prove it took effect). [`minimal`] then takes operations out, each
//! with those that observe what it wrote, for as long as the rest is still
//! refuted, judging a set by its operations and, for each value they
//! observe from a write outside the set, a write that may take effect at
//! any time, or never ([`Mapping::sub_history`]): the conflict holds
//! whatever the rest of the history did.

use super::{INITIAL, Mapping, NONE, Refutation, observed, written};
use crate::check::model::{CellOp, Model, Register};
use crate::check::search::Timed;

/// Shrinks `conflict` (positions in `mapping`'s operations, refuted
/// however the writes they observe from outside it behave: see
/// [`Mapping::sub_history`]) until taking out any operation, with the
/// operations that observe what it wrote, leaves operations that
/// linearize.
pub(super) fn minimal(mapping: &Mapping, mut conflict: Vec<usize>) -> Vec<usize> {
    let ops = mapping.ops;
    let refuted = |set: &[usize]| {
        let sub = mapping.sub_history(set);
        Mapping::new(&sub, mapping.initial).is_some_and(|mut m| m.check().is_err())
    };
    let mut at = 0;
    while let Some(&out) = conflict.get(at) {
        let mut gone = vec![out];
        let mut next = 0;
        while let Some(&g) = gone.get(next) {
            next += 1;
            let written = written(&ops[g].op);
            for &i in &conflict {
                if written.is_some() && observed(&ops[i].op) == Some(written) && !gone.contains(&i)
                {
                    gone.push(i);
                }
            }
        }
        let rest: Vec<usize> = conflict
            .iter()
            .copied()
            .filter(|i| !gone.contains(i))
            .collect();
        if refuted(&rest) {
            conflict = rest;
        } else {
            at += 1;
        }
    }
    conflict
}

impl Mapping<'_> {
    /// The operations of `set` (positions), and for each value they
    /// observe whose write is outside `set`, a write of it that may take
    /// effect at any time, or never: the sub-history that shows whether
    /// `set` conflicts on its own, whatever the writes outside it did.
    pub(super) fn sub_history(&self, set: &[usize]) -> Vec<Timed<CellOp>> {
        let mut sub: Vec<Timed<CellOp>> = set.iter().map(|&i| self.ops[i].clone()).collect();
        for &i in set {
            let outside = observed(&self.ops[i].op)
                .and_then(|v| self.write_of(v).map(|w| (v, w)))
                .filter(|&(_, w)| w != INITIAL && !set.contains(&w));
            if let Some((Some(v), _)) = outside
                && !sub[set.len()..].iter().any(|o| o.op == CellOp::Write(v))
            {
                sub.push(Timed {
                    op: CellOp::Write(v),
                    client: u64::MAX,
                    call: 0,
                    ret: None,
                });
            }
        }
        sub
    }

    /// Why `refutation` holds, naming operations by `index`, and the
    /// operations that say so (positions, in invocation order).
    pub(super) fn account(
        &self,
        model: &Register,
        refutation: &Refutation,
        index: &impl Fn(usize) -> usize,
    ) -> (String, Vec<usize>) {
        let name = |i: usize| match i {
            INITIAL => "the initial value".to_string(),
            _ if i >= self.real => format!("a write of {}", self.value(model, i)),
            _ => format!("op {}", index(i)),
        };
        let names = |ops: &[usize]| ops.iter().map(|&i| name(i)).collect::<Vec<_>>().join(", ");
        let completing = |i: usize| match i {
            INITIAL => "the start".to_string(),
            _ => format!("{} completing", name(i)),
        };
        // When chain `c`'s values must stay current (its forward zone),
        // and the operations that say so.
        let window = |c: usize| {
            let chain = &self.chains[c];
            let ops = self.stretch(c, chain.f.1, chain.s.1);
            let text = format!(
                "{} must stay current from {} to {} being invoked",
                self.values(model, &ops),
                completing(chain.f.1),
                name(chain.s.1)
            );
            (text, ops)
        };
        let (reason, mut ops) = match *refutation {
            Refutation::Unwritten { op } => (
                format!(
                    "{} observes a value that no operation which may have taken effect writes",
                    name(op)
                ),
                vec![op],
            ),
            Refutation::SameFrom {
                source,
                first,
                second,
            } => (
                format!(
                    "{} and {} both replaced {} (written by {}) by compare-and-set, but written values are unique: once one of them replaced it, the other cannot have seen it",
                    name(first),
                    name(second),
                    self.value(model, source),
                    name(source)
                ),
                vec![source, first, second],
            ),
            Refutation::Cycle { ref ops } => (
                format!(
                    "{} each replaced, by compare-and-set, the value the next one wrote: in a cycle, none of them can take effect first",
                    names(ops)
                ),
                ops.clone(),
            ),
            Refutation::Order {
                chain,
                before,
                after,
            } => (
                format!(
                    "{} must take effect after {} (a read after the write of its value, a compare-and-set after the reads of the value it replaces: written values are unique, so a replaced value never returns), but it completed before {} was invoked",
                    name(after),
                    name(before),
                    name(before)
                ),
                self.stretch(chain, before, after),
            ),
            Refutation::Overlap { first, second } => {
                let ((a, mut ops), (b, more)) = (window(first), window(second));
                ops.extend(more);
                let reason = format!(
                    "{a}, and {b}; these stretches overlap, but written values are unique, so a value never returns once replaced"
                );
                (reason, ops)
            }
            Refutation::Inside { inner, outer } => {
                let chain = &self.chains[inner];
                let (a, mut ops) = window(outer);
                let inside = self.stretch(inner, chain.f.1, chain.s.1);
                let when = match (chain.s.1, chain.f.1) {
                    (s, f) if s == f => String::new(),
                    (s, f) => format!(
                        " between {} being invoked and {} completing,",
                        name(s),
                        name(f)
                    ),
                };
                let reason = format!(
                    "{a}; but {} ({}) ran entirely{when} inside that stretch, and written values are unique: once replaced, {} cannot come back",
                    names(&dedup(inside.clone())),
                    self.values(model, &inside),
                    self.values(model, &ops),
                );
                ops.extend(inside);
                (reason, ops)
            }
        };
        ops.retain(|&i| i < self.real);
        // An operation of unknown outcome took effect only as its
        // observers prove.
        let mut at = 0;
        while let Some(&i) = ops.get(at) {
            if self.proof[i] != NONE && !ops.contains(&self.proof[i]) {
                ops.push(self.proof[i]);
            }
            at += 1;
        }
        ops.sort_unstable_by_key(|&i| (self.ops[i].call, i));
        (reason, dedup(ops))
    }

    /// Operations `a` and `b` of chain `c` and the writes from the one `a`
    /// or `b` observes (or is) to the other's: what ties them together.
    fn stretch(&self, c: usize, a: usize, b: usize) -> Vec<usize> {
        let heads = &self.chains[c].heads;
        let at = |i: usize| {
            let head = if heads.contains(&i) {
                i
            } else {
                self.source[i]
            };
            heads.iter().position(|&h| h == head).unwrap_or(0)
        };
        let (low, high) = (at(a).min(at(b)), at(a).max(at(b)));
        let mut ops = heads[low..=high].to_vec();
        ops.extend([a, b]);
        ops
    }

    /// The value `write` wrote, as the model shows it.
    fn value(&self, model: &Register, write: usize) -> String {
        let value = match write {
            INITIAL => self.initial,
            _ => written(&self.ops[write].op),
        };
        model.describe_state(&value)
    }

    /// The values the writes among `ops` wrote, in chain order: `"a"`, or
    /// `"a" then "b"` (replaced by compare-and-set).
    fn values(&self, model: &Register, ops: &[usize]) -> String {
        let mut writes: Vec<usize> = Vec::new();
        for &i in ops {
            let write = i == INITIAL || !matches!(self.ops[i].op, CellOp::Read(_));
            if write && !writes.contains(&i) {
                writes.push(i);
            }
        }
        let values: Vec<String> = writes.iter().map(|&w| self.value(model, w)).collect();
        values.join(" then ")
    }
}

/// `ops` without repeats, in first-seen order.
fn dedup(ops: Vec<usize>) -> Vec<usize> {
    let mut seen = Vec::with_capacity(ops.len());
    for i in ops {
        if !seen.contains(&i) {
            seen.push(i);
        }
    }
    seen
}
