//! Durability: no write acknowledged `ok` is missing from the final state.
//!
//! The final state of a key is what the final read (after heal and
//! quiesce) returned. An acknowledged mutation `w` of key `k` survives when
//!
//! - `w` is a write (or a successful compare-and-set) and the final value
//!   starts with its value (later appends may follow it), or `w` is an
//!   append and the final value contains its token; or
//! - the final value was produced by another write or compare-and-set `o`
//!   of `k` that *may have followed* `w`: `o` completed `ok` or is
//!   indeterminate, and did not complete before `w` was invoked. Such an
//!   `o` legitimately overwrote `w`.
//!
//! Anything else is a lost write. An unset final value loses every
//! acknowledged mutation of that key; a key whose final read failed makes
//! the verdict `unknown`.
//!
//! This module checks key-value histories and owns the evidence
//! ([`LostWrites`], [`LostWrite`]) and the helpers that the counter's and
//! the set's durability checks ([`super::counter::durability`],
//! [`super::set::durability`]) share with it.

use std::{collections::BTreeMap, fmt};

use serde::{Deserialize, Serialize};

use super::Verdict;
use crate::history::{EventType, Op, Operation};

/// An acknowledged write that the final state does not reflect.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LostWrite {
    pub process: u64,
    pub op: Op,
    pub invoke_ns: u64,
    pub complete_ns: u64,
    pub final_value: Option<String>,
}

impl LostWrite {
    /// `w` (an `ok` operation), lost from the final value read.
    pub(crate) fn new(w: &Operation, final_value: Option<String>) -> Self {
        LostWrite {
            process: w.process,
            op: w.op.clone(),
            invoke_ns: w.invoke_time,
            complete_ns: w.complete_time.unwrap_or_default(),
            final_value,
        }
    }
}

/// Every lost write. Where the final state cannot say which write it
/// misses (a counter's sum), `summary` says what is wrong instead, and
/// `lost` lists the acknowledged writes it involves.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LostWrites {
    pub lost: Vec<LostWrite>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub summary: Vec<String>,
}

impl fmt::Display for LostWrites {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.summary.is_empty() {
            true => write!(f, "{} acknowledged write(s) lost", self.lost.len())?,
            false => write!(
                f,
                "{}; the acknowledged writes involved:",
                self.summary.join("; ")
            )?,
        }
        for lost in &self.lost {
            write!(
                f,
                "\n    process {} {:?} acknowledged at {:.3} ms; final value {:?}",
                lost.process,
                lost.op,
                lost.complete_ns as f64 / 1e6,
                lost.final_value
            )?;
        }
        Ok(())
    }
}

/// The value a write or compare-and-set leaves behind.
fn installed_value(op: &Op) -> Option<&str> {
    match op {
        Op::Write { value, .. } => Some(value),
        Op::Cas { to, .. } => Some(to),
        _ => None,
    }
}

fn reflected(op: &Op, final_value: &str) -> bool {
    match op {
        Op::Append { value, .. } => final_value.contains(value.as_str()),
        op => installed_value(op).is_some_and(|v| final_value.starts_with(v)),
    }
}

/// Checks `history` against the final reads (key to value; absent keys'
/// reads failed).
pub fn check(
    operations: &[Operation],
    final_reads: &BTreeMap<String, Option<String>>,
) -> Verdict<LostWrites> {
    let mut lost = Vec::new();
    for w in operations
        .iter()
        .filter(|o| o.is_ok() && o.op.is_mutation())
    {
        let key = w.op.key();
        let (final_value, ()) = match final_read(final_reads, key, |_| Ok(())) {
            Ok(read) => read,
            Err(reason) => return Verdict::Unknown(reason),
        };
        let survives = final_value
            .as_deref()
            .is_some_and(|f| reflected(&w.op, f) || overwritten_later(operations, w, f));
        if !survives {
            lost.push(LostWrite::new(w, final_value.clone()));
        }
    }
    verdict(lost, None)
}

/// A violation if anything was lost (a definite answer even when some key
/// could not be judged), else `unknown` with the first reason, if any.
pub(crate) fn verdict(lost: Vec<LostWrite>, unknown: Option<String>) -> Verdict<LostWrites> {
    summarised(lost, Vec::new(), unknown)
}

/// [`verdict`], with a summary of what is wrong.
pub(crate) fn summarised(
    lost: Vec<LostWrite>,
    summary: Vec<String>,
    unknown: Option<String>,
) -> Verdict<LostWrites> {
    match (lost.is_empty(), unknown) {
        (false, _) => Verdict::Violation(LostWrites { lost, summary }),
        (true, Some(reason)) => Verdict::Unknown(reason),
        (true, None) => Verdict::Ok,
    }
}

/// The final read of `key` and its parse; `Err` is why the key cannot be
/// judged (the read failed, or `parse` rejected what it returned).
pub(crate) fn final_read<'a, T>(
    final_reads: &'a BTreeMap<String, Option<String>>,
    key: &str,
    parse: impl FnOnce(Option<&str>) -> Result<T, String>,
) -> Result<(&'a Option<String>, T), String> {
    let read = final_reads
        .get(key)
        .ok_or_else(|| format!("the final read of {key} did not succeed"))?;
    let state = parse(read.as_deref()).map_err(|e| format!("the final read of {key}: {e}"))?;
    Ok((read, state))
}

/// Whether `o` may have taken effect after `w` did: it completed `ok` and
/// not before `w` was invoked, or it is indeterminate. An indeterminate
/// operation may take effect any time after its invocation (Jepsen's
/// `:info`): the time its client gave up bounds nothing, since a request
/// still in flight, or re-sent by the transport, may land later.
pub(crate) fn may_follow(o: &Operation, w: &Operation) -> bool {
    match o.kind {
        EventType::Info | EventType::Invoke => true,
        EventType::Ok => o.complete_time.is_none_or(|done| done >= w.invoke_time),
        _ => false,
    }
}

/// Whether the final value came from a write that may have followed `w`.
fn overwritten_later(operations: &[Operation], w: &Operation, final_value: &str) -> bool {
    operations.iter().any(|o| {
        o.op.key() == w.op.key()
            && !std::ptr::eq(o, w)
            && may_follow(o, w)
            && installed_value(&o.op).is_some_and(|v| final_value.starts_with(v))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::test_history::write;
    use crate::history::{Completion, History};

    fn finals(value: Option<&str>) -> BTreeMap<String, Option<String>> {
        BTreeMap::from([("k".to_string(), value.map(String::from))])
    }

    #[test]
    fn acknowledged_write_missing_is_lost() {
        let mut h = History::default();
        write(&mut h, 0, (1, 2), "a", Completion::Ok(None));
        write(&mut h, 0, (3, 4), "b", Completion::Ok(None));
        assert!(check(&h.operations(), &finals(Some("a"))).is_violation());
        assert!(check(&h.operations(), &finals(None)).is_violation());
        assert!(check(&h.operations(), &finals(Some("b"))).is_ok());
    }

    #[test]
    fn overwrite_by_a_write_that_may_follow_is_fine() {
        let mut h = History::default();
        write(&mut h, 0, (1, 5), "a", Completion::Ok(None));
        write(&mut h, 1, (2, 3), "b", Completion::Info("timeout".into()));
        assert!(check(&h.operations(), &finals(Some("b"))).is_ok());
        let mut h = History::default();
        write(&mut h, 1, (1, 2), "b", Completion::Ok(None));
        write(&mut h, 0, (3, 4), "a", Completion::Ok(None));
        assert!(
            check(&h.operations(), &finals(Some("b"))).is_violation(),
            "b finished before a began"
        );
    }

    /// A write its client gave up on before `a` began may still land after
    /// `a` (a request in flight, or re-sent by the transport): it may have
    /// overwritten `a`.
    #[test]
    fn an_indeterminate_write_may_land_after_a_later_one() {
        let mut h = History::default();
        write(
            &mut h,
            1,
            (1, 2),
            "b",
            Completion::Info("connect failed".into()),
        );
        write(&mut h, 0, (3, 4), "a", Completion::Ok(None));
        assert!(check(&h.operations(), &finals(Some("b"))).is_ok());
    }

    #[test]
    fn failed_final_read_is_unknown() {
        let mut h = History::default();
        write(&mut h, 0, (1, 2), "a", Completion::Ok(None));
        assert!(matches!(
            check(&h.operations(), &BTreeMap::new()),
            Verdict::Unknown(_)
        ));
    }
}
