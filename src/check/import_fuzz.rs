//! Fuzzing the importers: arbitrary bytes and mutated valid histories
//! (truncation, byte flips, line deletion and duplication, inserted bytes)
//! in every format. No input panics or hangs the reader or the checker
//! beyond its time limit, and every accepted file round-trips: written back
//! in its format and read again, it gives the same events (times aside in
//! the formats whose times are positions). Generated histories of every
//! operation a format holds, with arbitrary keys and values, round-trip
//! through each writer too.

use std::path::Path;
use std::time::{Duration, Instant};

use proptest::prelude::*;

use super::linearizable::SearchLimits;
use super::{CheckOptions, check_imported};
use crate::history::{Completion, ETCD_KEY, Event, Format, History, Imported, Op, parse};

/// A valid history per format, to mutate.
fn seeds() -> Vec<(Format, Vec<u8>)> {
    let fixture = |name: &str| {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/histories");
        std::fs::read(dir.join(name)).unwrap()
    };
    let jepsen = "; every shape Jepsen writes\n\
        [#jepsen.history.Op{:index 0, :time 10, :process 0, :type :invoke, :f :write, :value 3}\n\
         {:index 1, :time 11, :process :nemesis, :type :info, :f :start, :value nil}\n\
         #jepsen.history.Op{:index 2, :time 12, :process 1, :type :invoke, :f :cas, :value [3 4]}\n\
         {:index 3, :time 13, :process 0, :type :ok, :f :write, :value 3}\n\
         {:index 4, :time 14, :process 1, :type :fail, :f :cas, :value [3 4], :error :mismatch}\n\
         {:index 5, :time 15, :process 2, :type :invoke, :f :read, :value nil}\n\
         {:index 6, :time 16, :process 2, :type :ok, :f :read, :value 3} ; a comment\n\
         {:index 7, :time 17, :process 0, :type :invoke, :f :write, :value \"a\\\"b\"}\n\
         {:index 8, :time 18, :process 0, :type :info, :f :write, :value \"a\\\"b\"}]\n";
    let json = serde_json::to_string(&super::generate::Spec::new(40, 2, 3, 7).generate()).unwrap();
    vec![
        (Format::PorcupineEtcd, fixture("etcd/etcd_002.log")),
        (Format::PorcupineKv, fixture("kv/c01-bad.txt")),
        (Format::JepsenEdn, jepsen.as_bytes().to_vec()),
        (Format::Json, json.into_bytes()),
    ]
}

#[derive(Debug, Clone)]
enum Mutation {
    Truncate(usize),
    TruncateLines(usize),
    Flip(usize, u8),
    DeleteLine(usize),
    DuplicateLine(usize),
    Insert(usize, Vec<u8>),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        any::<usize>().prop_map(Mutation::Truncate),
        any::<usize>().prop_map(Mutation::TruncateLines),
        (any::<usize>(), 1..=255u8).prop_map(|(at, bits)| Mutation::Flip(at, bits)),
        any::<usize>().prop_map(Mutation::DeleteLine),
        any::<usize>().prop_map(Mutation::DuplicateLine),
        (
            any::<usize>(),
            prop::collection::vec(
                prop::sample::select(b"{}[]()#;:\" \n\t,xN0-9".to_vec()),
                1..8
            )
        )
            .prop_map(|(at, bytes)| Mutation::Insert(at, bytes)),
    ]
}

fn mutate(mut bytes: Vec<u8>, mutation: &Mutation) -> Vec<u8> {
    let len = bytes.len().max(1);
    let lines = |bytes: &[u8]| -> Vec<Vec<u8>> {
        bytes
            .split_inclusive(|&b| b == b'\n')
            .map(<[u8]>::to_vec)
            .collect()
    };
    match mutation {
        Mutation::Truncate(at) => bytes.truncate(at % len),
        Mutation::Flip(at, bits) => {
            if let Some(byte) = bytes.get_mut(at % len) {
                *byte ^= bits;
            }
        }
        Mutation::TruncateLines(i) => {
            let lines = lines(&bytes);
            bytes = lines[..i % (lines.len() + 1)].concat();
        }
        Mutation::DeleteLine(i) | Mutation::DuplicateLine(i) => {
            let mut lines = lines(&bytes);
            let i = i % lines.len().max(1);
            if i < lines.len() {
                match mutation {
                    Mutation::DeleteLine(_) => drop(lines.remove(i)),
                    _ => lines.insert(i, lines[i].clone()),
                }
            }
            bytes = lines.concat();
        }
        Mutation::Insert(at, inserted) => {
            let at = at % (bytes.len() + 1);
            bytes.splice(at..at, inserted.iter().copied());
        }
    }
    bytes
}

/// The events without their times, for the formats whose times are
/// positions.
fn untimed(imported: &Imported) -> Vec<Event> {
    let keep_time = imported.format == Format::Json;
    imported
        .history
        .events
        .iter()
        .map(|e| Event {
            time: if keep_time { e.time } else { 0 },
            ..e.clone()
        })
        .collect()
}

/// Reads `bytes`; whatever is accepted must write back and read the same,
/// and check within its time limit.
fn read_and_round_trip(bytes: &[u8], format: Option<Format>) -> Result<(), TestCaseError> {
    let started = Instant::now(); // determinism-ok: a test's wall-clock bound on one check, outside any simulation
    let Ok(imported) = parse(bytes, format) else {
        prop_assert!(started.elapsed() < Duration::from_secs(1));
        return Ok(());
    };
    if imported.history.events.is_empty() {
        prop_assert!(imported.others > 0);
        return Ok(());
    }
    let written = imported.format.write(&imported.history);
    prop_assert!(written.is_ok(), "{written:?}");
    let written = written.unwrap_or_default();
    let again = parse(&written, Some(imported.format));
    prop_assert!(again.is_ok(), "{again:?}\n{written}");
    if let Ok(again) = again {
        prop_assert_eq!(untimed(&again), untimed(&imported), "{}", written);
    }
    let limit = Duration::from_millis(20);
    let opts = CheckOptions {
        limits: SearchLimits {
            time_limit: Some(limit),
            ..SearchLimits::default()
        },
        ..CheckOptions::default()
    };
    let started = Instant::now(); // determinism-ok: a test's wall-clock bound on the checker, outside any simulation
    check_imported(Path::new("fuzzed"), &imported, &opts);
    prop_assert!(started.elapsed() < limit + Duration::from_secs(2));
    Ok(())
}

/// One step of a generated history: a process invokes an operation (what,
/// key, text, number) or, if it has one open, completes it (how, and
/// whether a read returned something).
type Step = (u64, usize, String, String, i64, usize, bool);

/// A history of the operations `format` holds, built from `steps`.
fn history_of(format: Format, steps: Vec<Step>) -> History {
    let mut history = History::default();
    let mut open = std::collections::BTreeMap::new();
    for (time, (process, what, key, text, number, how, returns)) in steps.into_iter().enumerate() {
        let time = time as u64;
        if let Some(op) = open.remove(&process) {
            let completion = match how {
                0 => Completion::Ok(returns.then(|| match format {
                    Format::PorcupineEtcd => number.to_string(),
                    _ => text,
                })),
                1 => Completion::Fail(String::new()),
                _ => Completion::Info(String::new()),
            };
            history.complete(process, time, op, &completion);
            continue;
        }
        let n = number.to_string();
        let op = match (format, what % 8) {
            (Format::PorcupineEtcd, 0) => Op::Read {
                key: ETCD_KEY.into(),
                value: None,
            },
            (Format::PorcupineEtcd, 1) => Op::Write {
                key: ETCD_KEY.into(),
                value: n,
            },
            (Format::PorcupineEtcd, _) => Op::Cas {
                key: ETCD_KEY.into(),
                from: n,
                to: (number / 2).to_string(),
            },
            (_, 0) => Op::Read { key, value: None },
            (_, 1) => Op::Write { key, value: text },
            (Format::JepsenEdn, _) => Op::Cas {
                key,
                from: text,
                to: n,
            },
            (Format::PorcupineKv, _) | (_, 2) => Op::Append { key, value: text },
            (_, 3) => Op::Cas {
                key,
                from: text,
                to: n,
            },
            (_, 4) => Op::Add {
                key,
                amount: number,
            },
            (_, 5) => Op::Insert { key, element: text },
            (_, 6) => Op::Remove { key, element: text },
            _ => Op::Call {
                key,
                name: text,
                arg: Some(n),
                value: None,
            },
        };
        open.insert(process, op.clone());
        history.invoke(process, time, op);
    }
    history
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        for format in Format::ALL.into_iter().map(Some).chain([None]) {
            read_and_round_trip(&bytes, format)?;
        }
    }

    #[test]
    fn generated_histories_round_trip_through_every_writer(
        format in prop::sample::select(Format::ALL.to_vec()),
        steps in prop::collection::vec(
            (0..4u64, any::<usize>(), "[a-z]{0,3}|(?s).{0,4}", "(?s).{0,8}", any::<i64>(), 0..3usize, any::<bool>()),
            1..40,
        ),
    ) {
        let history = history_of(format, steps);
        let written = format.write(&history);
        prop_assert!(written.is_ok(), "{written:?}");
        let written = written.unwrap_or_default();
        let read = parse(&written, Some(format));
        prop_assert!(read.is_ok(), "{read:?}\n{written}");
        if let Ok(read) = read {
            let original = Imported { history, ..read.clone() };
            prop_assert_eq!(untimed(&read), untimed(&original), "{}", written);
        }
    }

    #[test]
    fn mutated_histories_are_refused_or_round_trip(
        seed in 0..4usize,
        mutations in prop::collection::vec(mutation(), 1..4),
    ) {
        let (format, bytes) = seeds().swap_remove(seed);
        prop_assert!(parse(&bytes, Some(format)).is_ok(), "the seed of {} reads", format);
        let mutated = mutations.iter().fold(bytes, mutate);
        read_and_round_trip(&mutated, Some(format))?;
        read_and_round_trip(&mutated, None)?;
    }
}
