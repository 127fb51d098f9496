//! Building small histories by hand in the checkers' unit tests: one
//! operation at a time, each with its invocation and completion times.

use crate::history::{Completion, History, Op};

/// Records `op` by process `p`, invoked at `t.0` and completed at `t.1`
/// as `c`.
pub fn run(h: &mut History, p: u64, t: (u64, u64), op: Op, c: Completion) {
    h.invoke(p, t.0, op.clone());
    h.complete(p, t.1, op, &c);
}

/// A read of `key` that returned `value`.
pub fn read(h: &mut History, p: u64, t: (u64, u64), key: &str, value: Option<&str>) {
    let op = Op::Read {
        key: key.into(),
        value: None,
    };
    run(h, p, t, op, Completion::Ok(value.map(String::from)));
}

/// A write of `value` to key `k` that ended as `c`.
pub fn write(h: &mut History, p: u64, t: (u64, u64), value: &str, c: Completion) {
    let op = Op::Write {
        key: "k".into(),
        value: value.into(),
    };
    run(h, p, t, op, c);
}

pub fn ok() -> Completion {
    Completion::Ok(None)
}

pub fn info() -> Completion {
    Completion::Info("timeout".into())
}
