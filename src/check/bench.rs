//! The checker benchmark: per-file and total check time on the golden
//! histories (parsing excluded, as Porcupine's benchmarks exclude it), and
//! on generated 100k-operation histories.
//!
//! [`generate_history`] simulates a linearizable key-value store: each
//! client runs one operation at a time, each operation takes effect at a
//! random point inside its interval, and some operations time out
//! (`info`), having taken effect or not. The benchmark checks one history
//! spread over many keys and one on a single key (the hard case for the
//! search); both must finish or report `unknown` within the time limit.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::file::{CheckError, CheckOptions, CheckReport, check_imported};
use super::linearizable::{SearchLimits, check_history};
use crate::history::{Completion, Conventions, History, Op, parse};

/// How many times each golden file is checked; the median is reported.
const RUNS: usize = 5;

/// Runs the benchmark on `fixtures` (a directory holding `etcd/` and
/// `kv/`) and returns the report as text.
pub fn bench_checker(fixtures: &Path, limits: &SearchLimits) -> Result<String, CheckError> {
    let mut out = String::new();
    for group in ["etcd", "kv"] {
        let mut files = list(&fixtures.join(group))?;
        files.sort();
        let mut total = Duration::ZERO;
        for path in &files {
            let (report, median) = bench_file(path, limits)?;
            total += median;
            let name = path
                .file_name()
                .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
            let verdict = report.to_string();
            let verdict = verdict.lines().next().unwrap_or("");
            let _ = writeln!(out, "{group}/{name}: {:>9.3} ms  {verdict}", ms(median));
        }
        let _ = writeln!(
            out,
            "{group} total ({} files): {:.3} ms",
            files.len(),
            ms(total)
        );
    }
    for keys in [100, 1] {
        let history = generate_history(100_000, keys, 10, 1);
        let start = Instant::now(); // determinism-ok: not simulated
        let verdict = check_history(&history, &Conventions::default(), limits);
        let verdict = match verdict {
            super::Verdict::Ok => "linearizable".to_string(),
            super::Verdict::Violation(_) => "not linearizable".to_string(),
            super::Verdict::Unknown(reason) => format!("unknown ({reason})"),
        };
        let _ = writeln!(
            out,
            "generated 100000 ops, {keys} key(s), 10 clients: {:.3} ms  {verdict}",
            ms(start.elapsed())
        );
    }
    Ok(out)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn list(dir: &Path) -> Result<Vec<PathBuf>, CheckError> {
    let io = |source| CheckError::Io {
        path: dir.to_path_buf(),
        source,
    };
    std::fs::read_dir(dir)
        .map_err(io)?
        .map(|entry| entry.map(|e| e.path()).map_err(io))
        .collect()
}

/// Checks one file [`RUNS`] times: the last report and the median time.
fn bench_file(path: &Path, limits: &SearchLimits) -> Result<(CheckReport, Duration), CheckError> {
    let text = std::fs::read_to_string(path).map_err(|source| CheckError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let imported = parse(&text, None).map_err(|source| CheckError::Malformed {
        path: path.to_path_buf(),
        source,
    })?;
    let opts = CheckOptions {
        limits: *limits,
        ..CheckOptions::default()
    };
    let mut times = Vec::with_capacity(RUNS);
    let mut report = check_imported(path, &imported, &opts);
    times.push(report.elapsed);
    for _ in 1..RUNS {
        report = check_imported(path, &imported, &opts);
        times.push(report.elapsed);
    }
    times.sort();
    Ok((report, times[RUNS / 2]))
}

/// A linearizable history of `ops` operations by `clients` clients over
/// `keys` keys (reads, writes, compare-and-sets; about 2% time out),
/// deterministic in `seed`. Times are nanoseconds.
pub fn generate_history(ops: usize, keys: usize, clients: usize, seed: u64) -> History {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let keys = keys.max(1);
    let mut free: BinaryHeap<Reverse<(u64, u64)>> = (0..clients.max(1) as u64)
        .map(|c| Reverse((0, c)))
        .collect();
    // (invoke, effect point, complete, client, op, takes effect, times out)
    let mut planned = Vec::with_capacity(ops);
    for n in 0..ops {
        let Some(Reverse((start, client))) = free.pop() else {
            break;
        };
        let invoke = start + rng.random_range(1..1_000);
        let complete = invoke + rng.random_range(1_000..100_000);
        let effect = rng.random_range(invoke..=complete);
        let key = format!("k{}", rng.random_range(0..keys));
        let op = match rng.random_range(0..10) {
            0..5 => Op::Read { key, value: None },
            5..8 => Op::Write {
                key,
                value: format!("v{n}"),
            },
            _ => Op::Cas {
                key,
                from: format!("v{}", n.saturating_sub(rng.random_range(1..50))),
                to: format!("v{n}"),
            },
        };
        let timed_out = rng.random_bool(0.02);
        let happens = !timed_out || rng.random_bool(0.5);
        planned.push((invoke, effect, complete, client, op, happens, timed_out));
        free.push(Reverse((complete, client)));
    }
    let mut by_effect: Vec<usize> = (0..planned.len()).collect();
    by_effect.sort_by_key(|&i| planned[i].1);
    let mut store: BTreeMap<String, String> = BTreeMap::new();
    let mut outcome = vec![Completion::Ok(None); planned.len()];
    for i in by_effect {
        let (_, _, _, _, op, happens, timed_out) = &planned[i];
        let current = store.get(op.key()).cloned();
        outcome[i] = match op {
            Op::Read { .. } => Completion::Ok(current),
            Op::Write { key, value } | Op::Append { key, value } => {
                if *happens {
                    store.insert(key.clone(), value.clone());
                }
                Completion::Ok(None)
            }
            Op::Cas { key, from, to } => {
                if current.as_ref() != Some(from) {
                    Completion::Fail("mismatch".into())
                } else {
                    if *happens {
                        store.insert(key.clone(), to.clone());
                    }
                    Completion::Ok(None)
                }
            }
            other => unreachable!("the generator draws key-value operations only, not {other:?}"),
        };
        if *timed_out {
            outcome[i] = Completion::Info("timeout".into());
        }
    }
    let mut events: Vec<(u64, bool, usize)> = planned
        .iter()
        .enumerate()
        .flat_map(|(i, p)| [(p.0, false, i), (p.2, true, i)])
        .collect();
    events.sort_unstable();
    let mut history = History::default();
    for (time, is_completion, i) in events {
        let (_, _, _, client, op, _, _) = &planned[i];
        if is_completion {
            history.complete(*client, time, op.clone(), &outcome[i]);
        } else {
            history.invoke(*client, time, op.clone());
        }
    }
    history
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::Verdict;

    #[test]
    fn generated_histories_are_linearizable_and_deterministic() {
        let history = generate_history(2_000, 3, 5, 7);
        assert_eq!(history, generate_history(2_000, 3, 5, 7));
        assert_eq!(history.operations().len(), 2_000);
        let verdict = check_history(&history, &Conventions::default(), &SearchLimits::default());
        assert_eq!(verdict, Verdict::Ok);
    }
}
