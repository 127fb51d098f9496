//! The replicated key-value state machine: applies one [`Op`] at a time
//! ([`KvStore`]), and at most once per client request ([`KvMachine`], with
//! the clients' sessions), whichever protocol orders the operations.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::{
    check::convergence::ReplicaState,
    history::{Completion, Op},
};

/// Names a client request across retries and duplicates: replicas apply
/// each client's requests at most once, in `seq` order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestId {
    pub client: u64,
    pub seq: u64,
}

/// A [`KvStore`] with client sessions: a request applied before (a retry,
/// a duplicate) is not applied again but answered with its first result;
/// an older request of the same client fails.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KvMachine {
    store: KvStore,
    /// Per client, the last request applied and its result.
    sessions: BTreeMap<u64, (u64, Completion)>,
}

impl KvMachine {
    /// Applies request `id` (unless it already was) and returns its result.
    pub fn apply(&mut self, id: RequestId, op: &Op) -> Completion {
        if let Some(result) = self.duplicate_result(id) {
            return result;
        }
        let result = self.store.apply(op);
        self.sessions.insert(id.client, (id.seq, result.clone()));
        result
    }

    /// The result of a request already applied (a duplicate), if it was.
    pub fn duplicate_result(&self, id: RequestId) -> Option<Completion> {
        let (seq, result) = self.sessions.get(&id.client)?;
        match id.seq.cmp(seq) {
            std::cmp::Ordering::Greater => None,
            std::cmp::Ordering::Equal => Some(result.clone()),
            std::cmp::Ordering::Less => Some(Completion::Fail("stale duplicate request".into())),
        }
    }

    /// The store the requests were applied to.
    pub fn store(&self) -> &KvStore {
        &self.store
    }
}

/// String keys to string values, applied in log order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KvStore {
    data: ReplicaState,
}

impl KvStore {
    /// Applies `op` and returns its result. A compare-and-set whose expected
    /// value does not match changes nothing and completes as `Fail`.
    pub fn apply(&mut self, op: &Op) -> Completion {
        match op {
            Op::Read { key, .. } => Completion::Ok(self.data.get(key).cloned()),
            Op::Write { key, value } => {
                self.set(key, value);
                Completion::Ok(None)
            }
            Op::Append { key, value } => {
                self.data.entry(key.clone()).or_default().push_str(value);
                Completion::Ok(None)
            }
            Op::Cas { key, from, to } => match self.data.get(key) {
                Some(current) if current == from => {
                    self.set(key, to);
                    Completion::Ok(None)
                }
                current => Completion::Fail(format!("cas expected {from:?}, found {current:?}")),
            },
            other => Completion::Fail(format!(
                "a key-value store has no {} operation",
                other.name()
            )),
        }
    }

    /// Sets `key` to `value`, overwriting in place (no allocation when the
    /// old value has room).
    fn set(&mut self, key: &str, value: &str) {
        match self.data.get_mut(key) {
            Some(current) => value.clone_into(current),
            None => {
                self.data.insert(key.to_owned(), value.to_owned());
            }
        }
    }

    /// The current value of `key`.
    pub fn get(&self, key: &str) -> Option<&String> {
        self.data.get(key)
    }

    /// A copy of the whole contents.
    pub fn snapshot(&self) -> ReplicaState {
        self.data.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op_write(key: &str, value: &str) -> Op {
        Op::Write {
            key: key.into(),
            value: value.into(),
        }
    }

    #[test]
    fn applies_every_operation_kind() {
        let mut kv = KvStore::default();
        assert_eq!(kv.apply(&op_write("k", "a")), Completion::Ok(None));
        kv.apply(&Op::Append {
            key: "k".into(),
            value: "b".into(),
        });
        assert_eq!(kv.get("k").map(String::as_str), Some("ab"));
        let cas = |from: &str| Op::Cas {
            key: "k".into(),
            from: from.into(),
            to: "c".into(),
        };
        assert!(matches!(kv.apply(&cas("zz")), Completion::Fail(_)));
        assert_eq!(kv.apply(&cas("ab")), Completion::Ok(None));
        let read = Op::Read {
            key: "k".into(),
            value: None,
        };
        assert_eq!(kv.apply(&read), Completion::Ok(Some("c".into())));
    }
}
