//! Raft's wire protocol: one request enum for clients and peers, one
//! response enum, and the log entry that is both sent and stored.

use serde::{Deserialize, Serialize};

use crate::{
    history::{Completion, Op},
    replication::kv::RequestId,
};

/// What an entry asks the state machine to do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Command {
    /// A new leader's blank entry: lets entries of earlier terms commit.
    Blank,
    /// A client's operation (reads too: reads go through the log).
    Client { op: Op, request: RequestId },
}

/// One entry of the replicated log. Indexes start at 1.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub index: u64,
    /// The term of the leader that created it.
    pub term: u64,
    pub command: Command,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Request {
    /// A client's operation, for the leader.
    Client { op: Op, id: RequestId },
    /// `RequestVote`: `candidate` asks for a vote in `term`.
    Vote {
        term: u64,
        candidate: usize,
        last_index: u64,
        last_term: u64,
    },
    /// `AppendEntries`.
    Append(AppendEntries),
}

/// `AppendEntries`: `entries` follow `(prev_index, prev_term)` in the
/// leader's log; `commit` is the leader's commit index.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AppendEntries {
    pub term: u64,
    pub leader: usize,
    pub prev_index: u64,
    pub prev_term: u64,
    pub entries: Vec<Entry>,
    pub commit: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Response {
    /// The operation's result, from the leader.
    Client(Completion),
    /// Not the leader: try `leader` (if this replica knows one).
    Redirect {
        leader: Option<usize>,
    },
    Vote {
        term: u64,
        granted: bool,
    },
    /// `ok`: the follower's log matches the leader's up to `last_index`.
    /// Otherwise the leader should retry from at most `last_index + 1`.
    Append {
        term: u64,
        ok: bool,
        last_index: u64,
    },
    /// The request could not be handled (a disk failure).
    Refused(String),
}
