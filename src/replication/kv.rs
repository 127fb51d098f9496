//! The replicated key-value state machine: applies one [`Op`] at a time.

use crate::{
    check::convergence::ReplicaState,
    history::{Completion, Op},
};

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
                self.data.insert(key.clone(), value.clone());
                Completion::Ok(None)
            }
            Op::Append { key, value } => {
                self.data.entry(key.clone()).or_default().push_str(value);
                Completion::Ok(None)
            }
            Op::Cas { key, from, to } => match self.data.get(key) {
                Some(current) if current == from => {
                    self.data.insert(key.clone(), to.clone());
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
