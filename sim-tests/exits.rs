//! The `no-unexpected-exit` check on a user's own system, written here
//! against the public API: a one-replica key-value store that keeps every
//! mutation in a journal of its own framing (`[u32 length][u32 crc32][JSON]`)
//! on the node's disk, and replays it when it starts.
//!
//! A replica whose software returns is restarted by the harness and the
//! exit is judged. The journal's planted bug skips the checksum when it
//! replays: a record the disk corrupted is then handed to the decoder, the
//! replica exits with "cannot decode the record at byte N", and the check
//! reports it as a violation. With the checksum verified the same runs have
//! no exit at all. A replica that stops on an injected disk I/O error,
//! keeping the error as its own error's source, fail-stops as expected:
//! counted, and not a violation.

use std::{cell::RefCell, io, rc::Rc};

use proptest::prelude::*;
use replisim::{
    LocalBoxFuture,
    check::Verdict,
    history::{Completion, Op},
    net::{Handler, RpcClient, RpcConfig, serve},
    node::{ClientContext, Declaration, KvClient, NodeContext, NodeResult, System},
    replication::kv::KvStore,
    sim::{DiskSpec, Fault, Outcome, Scenario, ScheduledFault, Target, run_system},
    storage::Disk,
    testing::{self, Explorer},
};

const JOURNAL: &str = "journal";
const HEADER_LEN: usize = 8;

/// Whether the replay verifies each record's checksum (the planted bug
/// skips it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Checksum {
    Verified,
    Skipped,
}

#[derive(Debug, thiserror::Error)]
enum JournalError {
    #[error("the journal's disk failed: {0}")]
    Disk(#[source] io::Error),
    #[error("cannot decode the record at byte {offset}: {source}")]
    Decode {
        offset: usize,
        #[source]
        source: serde_json::Error,
    },
}

struct Journaled {
    checksum: Checksum,
}

impl System for Journaled {
    fn declaration(&self) -> Declaration {
        Declaration {
            replicas: 1..=1,
            ..Declaration::default()
        }
    }

    fn replica(&self, node: NodeContext) -> LocalBoxFuture<'static, NodeResult> {
        let checksum = self.checksum;
        Box::pin(async move {
            let journal = node.disk.read(JOURNAL).await.map_err(JournalError::Disk)?;
            let mut store = KvStore::default();
            for op in replay(&journal.unwrap_or_default(), checksum)? {
                store.apply(&op);
            }
            let store = Rc::new(RefCell::new(store));
            let probe = store.clone();
            node.state.publish(move || probe.borrow().snapshot());
            let (failed, mut failures) = tokio::sync::mpsc::unbounded_channel();
            let disk = node.disk.clone();
            let handler: Handler<Op, Completion> = Rc::new(move |op: Op| {
                let (store, disk, failed) = (store.clone(), disk.clone(), failed.clone());
                Box::pin(async move {
                    if op.is_mutation()
                        && let Err(error) = record(&*disk, &op).await
                    {
                        let answer =
                            Completion::Info(format!("the journal's disk failed: {error}"));
                        let _ = failed.send(error);
                        return Some(answer);
                    }
                    Some(store.borrow_mut().apply(&op))
                })
            });
            let listener = node.net.bind(node.port()).await?;
            tokio::select! {
                served = serve(listener, handler) => Ok(served?),
                Some(error) = failures.recv() => Err(JournalError::Disk(error).into()),
            }
        })
    }

    fn client(&self, ctx: ClientContext) -> Box<dyn KvClient> {
        let rpc = RpcClient::new(ctx.net, ctx.replicas[0].clone(), RpcConfig::default());
        Box::new(JournalClient { rpc })
    }
}

/// Appends `op` to the journal durably.
async fn record(disk: &dyn Disk, op: &Op) -> io::Result<()> {
    let payload = serde_json::to_vec(op)?;
    let mut frame = Vec::with_capacity(HEADER_LEN + payload.len());
    frame.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    frame.extend_from_slice(&crc32fast::hash(&payload).to_le_bytes());
    frame.extend_from_slice(&payload);
    disk.append(JOURNAL, &frame).await?;
    disk.sync(JOURNAL).await
}

/// The operations in a journal. A frame cut short, or failing its checksum
/// when it is verified, ends the journal (a damaged tail is dropped).
fn replay(journal: &[u8], checksum: Checksum) -> Result<Vec<Op>, JournalError> {
    let mut ops = Vec::new();
    let mut offset = 0;
    while let Some(header) = journal.get(offset..offset + HEADER_LEN) {
        let len = u32::from_le_bytes(header[..4].try_into().expect("4 bytes")) as usize;
        let crc = u32::from_le_bytes(header[4..].try_into().expect("4 bytes"));
        let Some(payload) = journal.get(offset + HEADER_LEN..offset + HEADER_LEN + len) else {
            break;
        };
        if checksum == Checksum::Verified && crc32fast::hash(payload) != crc {
            break;
        }
        let op = serde_json::from_slice(payload)
            .map_err(|source| JournalError::Decode { offset, source })?;
        ops.push(op);
        offset += HEADER_LEN + len;
    }
    Ok(ops)
}

struct JournalClient {
    rpc: RpcClient<Op, Completion>,
}

#[replisim::async_trait(?Send)]
impl KvClient for JournalClient {
    async fn call(&mut self, op: &Op) -> Completion {
        self.rpc
            .call(op)
            .await
            .unwrap_or_else(replisim::node::completion_of_error)
    }
}

/// One replica and one client performing `ops` operations on a disk with
/// the fault classes `disk`.
fn journaled(seed: u64, ops: usize, disk: DiskSpec) -> Scenario {
    let mut scenario = Scenario::new("journaled", seed);
    scenario.replicas = 1;
    scenario.clients = 1;
    scenario.workload.ops_per_client = ops;
    scenario.disk = disk;
    scenario
}

/// A disk whose every read comes back with one byte corrupted; the replica
/// crashes every 25 ms and replays its journal when it restarts (a flipped
/// byte does not always break the JSON, so it takes a few replays).
fn corrupted_reads(seed: u64, checksum: Checksum) -> Outcome {
    let disk = DiskSpec {
        corruption_probability: 1.0,
        ..DiskSpec::default()
    };
    let mut scenario = journaled(seed, 60, disk);
    let crash = Fault::Crash {
        node: Target::Replica(0),
    };
    scenario.faults = (1..=20)
        .map(|i| ScheduledFault::at(i * 25, crash.clone()).lasting(5))
        .collect();
    run_system(&scenario, Rc::new(Journaled { checksum })).unwrap()
}

/// The planted bug is caught: replaying a corrupted record without its
/// checksum, the replica exits on data it cannot decode, and the check
/// names the replica, how often and why.
#[test]
fn an_exit_on_a_record_the_checksum_should_have_caught_is_a_violation() {
    let outcome = corrupted_reads(7, Checksum::Skipped);
    let verdicts = outcome.verdicts();
    let Verdict::Violation(evidence) = &verdicts.exits else {
        panic!("the decode exits passed: {verdicts}");
    };
    let text = evidence.to_string();
    println!("no-unexpected-exit: violation: {text}");
    assert!(text.starts_with("replica-0 exited "), "{text}");
    assert!(
        text.contains(": cannot decode the record at byte "),
        "{text}"
    );
    assert!(verdicts.violated(), "claimed by default: {verdicts}");
    assert!(outcome.stats.exits.unexpected > 0, "{:?}", outcome.stats);
    assert_eq!(outcome.stats.exits.expected, 0, "{:?}", outcome.stats);
}

/// The same runs with the checksum verified: the damaged record ends the
/// replay, and the replica never exits.
#[test]
fn the_same_corruption_with_the_checksum_verified_has_no_exit() {
    let outcome = corrupted_reads(7, Checksum::Verified);
    let verdicts = outcome.verdicts();
    assert!(verdicts.exits.is_ok(), "{verdicts}");
    assert!(outcome.exits.is_empty(), "{:?}", outcome.exits);
}

/// A disk whose reads and writes fail now and then: the replica stops on
/// the first failure (fail-stop) and the harness restarts it. Every exit
/// is expected, counted as such in the Explorer's summary, and the store
/// keeps every guarantee it claims.
#[test]
fn a_fail_stop_on_an_injected_io_error_is_expected() {
    let disk = DiskSpec {
        io_error_probability: 0.1,
        ..DiskSpec::default()
    };
    let space = (0u64..1_000).prop_map(move |seed| journaled(seed, 30, disk));
    let exploration = Explorer::this_test(6)
        .system(|_| {
            Rc::new(Journaled {
                checksum: Checksum::Verified,
            })
        })
        .explore(space, |outcome| {
            match outcome
                .exits
                .iter()
                .find(|e| !e.cause.contains("injected I/O error"))
            {
                Some(exit) => Err(format!("an exit not on an injected error: {exit:?}")),
                None => testing::holds(outcome),
            }
        });
    assert!(exploration.exits.expected > 0, "{exploration}");
    assert_eq!(exploration.exits.unexpected, 0, "{exploration}");
}
