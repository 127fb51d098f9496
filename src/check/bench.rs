//! The checker benchmark: check time (parsing excluded, as Porcupine's
//! benchmarks exclude it) and peak memory, set by set, on the golden
//! histories and on generated ones ([`super::generate`]).
//!
//! The generated sets that Porcupine's key-value log can hold (reads and
//! writes, no timeouts) are written out in that format and read back, so
//! that the very files checked here can be given to Porcupine
//! ([`bench_checker`]'s `write_kv`). Each set is checked `RUNS` (5) times
//! (once when a check takes over a second) and its median reported.
//! Peak memory is the process's peak resident set (`VmHWM`), reset before
//! each set through `/proc/self/clear_refs` where Linux allows it; it
//! includes the history itself.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::file::{CheckError, CheckOptions, CheckReport, check_imported};
use super::generate::{Spec, porcupine_kv};
use super::linearizable::SearchLimits;
use crate::history::{Format, Imported, parse};

/// How many times each set is checked; the median is reported.
const RUNS: usize = 5;

/// One measured set.
struct Measured {
    name: String,
    time: Duration,
    verdict: String,
    peak_rss_mb: Option<f64>,
}

/// Runs the benchmark on `fixtures` (a directory holding `etcd/` and
/// `kv/`) and returns the report as text: a line per file or history, then
/// a final line per set, `SET: X ms`, with its verdict and peak memory.
/// With `write_kv`, the generated key-value histories are also written
/// there, one Porcupine log each, named after their set.
pub fn bench_checker(
    fixtures: &Path,
    limits: &SearchLimits,
    write_kv: Option<&Path>,
) -> Result<String, CheckError> {
    let mut out = String::new();
    let mut sets = Vec::new();
    let etcd = read_dir(&fixtures.join("etcd"))?;
    sets.push(measure_files("etcd 000-079", &etcd, limits, &mut out)?);
    let kv = read_dir(&fixtures.join("kv"))?;
    let (c50, small): (Vec<_>, Vec<_>) = kv
        .into_iter()
        .partition(|(p, _)| name(p).starts_with("c50"));
    sets.push(measure_files(
        "kv c01+c10 (4 files)",
        &small,
        limits,
        &mut out,
    )?);
    for file in &c50 {
        let set = format!("kv {}", name(&file.0).trim_end_matches(".txt"));
        sets.push(measure_files(
            &set,
            std::slice::from_ref(file),
            limits,
            &mut out,
        )?);
    }
    for keys in [100, 1] {
        let spec = Spec::new(100_000, keys, 10, 1);
        let set = format!("100k ops, {keys} key(s), 10 clients, cas and timeouts");
        sets.push(measure_generated(&set, &spec, limits, None)?);
    }
    let repeated = Spec {
        unique: false,
        ..Spec::new(10_000, 1, 10, 1)
    };
    let set = "10k ops, 1 key, 10 clients, values 0-4 (search)";
    sets.push(measure_generated(set, &repeated, limits, None)?);
    for (ops, clients) in [(10_000, 20), (10_000, 50), (100_000, 50)] {
        for stale_read in [false, true] {
            let spec = Spec {
                cas: false,
                timeouts: false,
                stale_read,
                ..Spec::new(ops, 1, clients, 1)
            };
            let stale = if stale_read { ", one stale read" } else { "" };
            let set = format!(
                "{}k ops, 1 key, {clients} clients, unique{stale}",
                ops / 1000
            );
            let file = write_kv.map(|dir| {
                let stale = if stale_read { "-stale" } else { "" };
                dir.join(format!("gen-{}k-c{clients}{stale}.txt", ops / 1000))
            });
            sets.push(measure_generated(&set, &spec, limits, file.as_deref())?);
        }
    }
    for set in &sets {
        let _ = writeln!(out, "{}: {}", set.name, set.line());
    }
    Ok(out)
}

impl Measured {
    fn line(&self) -> String {
        let rss = self
            .peak_rss_mb
            .map_or_else(|| "n/a".to_string(), |mb| format!("{mb:.0} MB"));
        format!("{:.3} ms  {}, peak RSS {rss}", ms(self.time), self.verdict)
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn name(path: &Path) -> String {
    path.file_name()
        .map_or_else(String::new, |n| n.to_string_lossy().into_owned())
}

/// The files of `dir`, parsed, in name order.
fn read_dir(dir: &Path) -> Result<Vec<(PathBuf, Imported)>, CheckError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| CheckError::Io { path, source }
    };
    let mut paths = std::fs::read_dir(dir)
        .map_err(io(dir))?
        .map(|entry| entry.map(|e| e.path()).map_err(io(dir)))
        .collect::<Result<Vec<_>, _>>()?;
    paths.sort();
    paths
        .into_iter()
        .map(|path| {
            let text = std::fs::read_to_string(&path).map_err(io(&path))?;
            let imported = parse(&text, None).map_err(|source| CheckError::Malformed {
                path: path.clone(),
                source,
            })?;
            Ok((path, imported))
        })
        .collect()
}

/// Checks every file; the set's time is the sum of the files' medians.
fn measure_files(
    set: &str,
    files: &[(PathBuf, Imported)],
    limits: &SearchLimits,
    out: &mut String,
) -> Result<Measured, CheckError> {
    reset_peak_rss();
    let mut total = Duration::ZERO;
    let mut counts = [0; 3];
    let mut words = String::new();
    for (path, imported) in files {
        let (report, median) = check_repeatedly(path, imported, limits);
        total += median;
        counts[report.exit_code().clamp(0, 2) as usize] += 1;
        words = verdict_words(&report);
        let first = words.split(" (").next().unwrap_or("");
        let _ = writeln!(out, "{}: {:>9.3} ms  {first}", name(path), ms(median));
    }
    if files.len() != 1 {
        let [ok, bad, unknown] = counts;
        words = format!("{ok} linearizable, {bad} not, {unknown} unknown");
    }
    Ok(Measured {
        name: set.to_string(),
        time: total,
        verdict: words,
        peak_rss_mb: peak_rss_mb(),
    })
}

/// The verdict in words: its first line, and an unknown's reason.
fn verdict_words(report: &CheckReport) -> String {
    let text = report.to_string();
    let mut lines = text.lines();
    match (lines.next(), report.exit_code()) {
        (Some(first), 2) => format!("{first} ({})", lines.next().unwrap_or("")),
        (first, _) => first.unwrap_or("").to_string(),
    }
}

/// Generates `spec`'s history; when `file` is given, writes it as a
/// Porcupine log there and checks what reads back from it.
fn measure_generated(
    set: &str,
    spec: &Spec,
    limits: &SearchLimits,
    file: Option<&Path>,
) -> Result<Measured, CheckError> {
    let history = spec.generate();
    let path = file.map_or_else(|| PathBuf::from(set), Path::to_path_buf);
    let imported = match porcupine_kv(&history) {
        Ok(text) => {
            if let Some(file) = file {
                std::fs::write(file, &text).map_err(|source| CheckError::Io {
                    path: path.clone(),
                    source,
                })?;
            }
            parse(&text, Some(Format::PorcupineKv)).map_err(|source| CheckError::Malformed {
                path: path.clone(),
                source,
            })?
        }
        Err(_) => Imported {
            format: Format::Json,
            conventions: Format::Json.conventions(),
            history,
            others: 0,
        },
    };
    reset_peak_rss();
    let (report, median) = check_repeatedly(&path, &imported, limits);
    Ok(Measured {
        name: set.to_string(),
        time: median,
        verdict: verdict_words(&report),
        peak_rss_mb: peak_rss_mb(),
    })
}

fn options(limits: &SearchLimits) -> CheckOptions {
    CheckOptions {
        limits: *limits,
        ..CheckOptions::default()
    }
}

/// Checks [`RUNS`] times (once if that takes over a second): the last
/// report and the median time.
fn check_repeatedly(
    path: &Path,
    imported: &Imported,
    limits: &SearchLimits,
) -> (CheckReport, Duration) {
    let opts = options(limits);
    let mut report = check_imported(path, imported, &opts);
    let mut times = vec![report.elapsed];
    while times.len() < RUNS && report.elapsed < Duration::from_secs(1) {
        report = check_imported(path, imported, &opts);
        times.push(report.elapsed);
    }
    times.sort();
    (report, times[times.len() / 2])
}

/// Resets the process's peak resident set to its current one (Linux 4.0+;
/// elsewhere the peak stays the process's).
fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// The process's peak resident set since the last reset, in MB.
fn peak_rss_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}
