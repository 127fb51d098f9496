//! Search modes side by side: how soon `random`, `swarm` and `guided`
//! find each planted bug of every built-in protocol.
//!
//! The bugs are listed from the registry ([`Registry::every_planted_bug`]),
//! so a bug added to a protocol's bug enum is benchmarked without being
//! named here. Each bug is searched with each mode from 5 runner seeds;
//! a trial draws cases of the bug's system (fitted to its declaration,
//! every fault kind, up to 3 at once) until a claimed guarantee is
//! violated in a way the same scenario without the bug is not (a
//! violation the bug-free system shows too is not the bug's), or until
//! its cap of CPU seconds on its own thread is spent. Trials run on 2
//! threads; per bug and mode the benchmark prints, as they finish, the
//! median and worst cases and seconds to the first violation, and it ends
//! with one line per mode:
//!
//! `search MODE: median X s, worst Y s, found K of N`
//!
//! where N is the number of planted bugs, a bug counts as found when all
//! seeds found it within the cap, X is the median over bugs of each bug's
//! median over seeds, and Y the worst single trial (a trial that hit the
//! cap counts as the cap). Then how much faster guided is than random on
//! the bugs random needs more than 100 cases for.
//!
//! The cap defaults to 45 s of one core, or less when there are so many
//! trials that the whole benchmark would not fit in 40 minutes on its
//! threads if every trial hit the cap (10 bugs, 3 modes, 5 seeds: 150
//! trials, 32 s each on 2 threads). Knobs:
//!
//! | variable | effect |
//! |---|---|
//! | `REPLISIM_BENCH_BUGS=a,b` | only these bugs (by bug name, or `system/bug`) |
//! | `REPLISIM_BENCH_MODES=random,guided` | only these modes |
//! | `REPLISIM_BENCH_SEEDS=N` | N runner seeds (default 5) |
//! | `REPLISIM_BENCH_CAP=S` | cap each trial at S CPU seconds (default 45, or what fits 40 minutes; the 120) |
//! | `REPLISIM_BENCH_THREADS=N` | trials side by side (default 2) |

use std::{
    collections::BTreeMap,
    env,
    sync::{
        Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    thread,
    time::Duration,
};

use replisim::{
    guided::{Cases, Reached},
    registry::Registry,
    replication,
    strategy::{FaultKinds, ScenarioSpace, Search},
    testing::HOLDS_LIMITS,
};

/// The default cap keeps the whole benchmark within 40 minutes of wall
/// time even when every trial hits it.
const BUDGET_SECS: u64 = 40 * 60;

/// A planted bug: its system and its name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Bug {
    system: String,
    name: String,
}

/// One search of one bug with one mode from one seed.
#[derive(Debug, Clone, Copy)]
struct Trial {
    bug: usize,
    mode: Search,
    seed: u64,
}

/// How a trial ended: the cases run and the CPU seconds spent, and
/// whether it found the bug within the cap.
#[derive(Debug, Clone, Copy)]
struct Result {
    cases: u64,
    seconds: f64,
    found: bool,
}

fn main() {
    if env::var_os("RUST_LOG").is_none() {
        // SAFETY: no other thread exists yet to read the environment.
        // The replicas' error lines (a planted bug's refusals) would bury
        // the benchmark's own; `RUST_LOG=error` shows them.
        unsafe { env::set_var("RUST_LOG", "off") };
    }
    let registry = replication::registry();
    let bugs = selected_bugs(&registry);
    let modes: Vec<Search> = match env::var("REPLISIM_BENCH_MODES") {
        Ok(list) => list
            .split(',')
            .map(|name| name.trim().parse().unwrap_or_else(|e| panic!("{e}")))
            .collect(),
        Err(_) => Search::ALL.to_vec(),
    };
    let seeds = number("REPLISIM_BENCH_SEEDS", 5);
    let threads = number("REPLISIM_BENCH_THREADS", 2) as usize;
    let trial_count = (bugs.len() * modes.len()) as u64 * seeds;
    let fitting = (BUDGET_SECS * threads as u64 / trial_count.max(1)).clamp(1, 45);
    let cap = Duration::from_secs(number("REPLISIM_BENCH_CAP", fitting));
    println!(
        "search benchmark: {} planted bugs x {} modes x {seeds} seeds, each trial capped at {} s \
         of one core, {threads} threads",
        bugs.len(),
        modes.len(),
        cap.as_secs()
    );
    let trials: Vec<Trial> = (0..bugs.len())
        .flat_map(|bug| {
            modes
                .iter()
                .flat_map(move |&mode| (0..seeds).map(move |seed| Trial { bug, mode, seed }))
        })
        .collect();
    let next = AtomicUsize::new(0);
    let done: Mutex<BTreeMap<(usize, Search), Vec<Result>>> = Mutex::default();
    thread::scope(|scope| {
        for _ in 0..threads.max(1) {
            scope.spawn(|| {
                while let Some(&trial) = trials.get(next.fetch_add(1, Ordering::Relaxed)) {
                    let result = run_trial(&registry, &bugs[trial.bug], trial, cap);
                    let mut done = done.lock().expect("a trial panicked");
                    let group = done.entry((trial.bug, trial.mode)).or_default();
                    group.push(result);
                    if group.len() == seeds as usize {
                        println!("{}", group_line(&bugs[trial.bug], trial.mode, group));
                    }
                }
            });
        }
    });
    let done = done.into_inner().expect("a trial panicked");
    println!();
    println!("{}", table(&bugs, &modes, &done));
    for &mode in &modes {
        println!("{}", mode_line(mode, bugs.len(), seeds, &done));
    }
    if let Some(line) = guided_over_random(&bugs, &done) {
        println!("{line}");
    }
}

/// The bugs of every built-in protocol, narrowed by `REPLISIM_BENCH_BUGS`.
fn selected_bugs(registry: &Registry) -> Vec<Bug> {
    let all = registry
        .every_planted_bug()
        .expect("the built-in systems build");
    let wanted: Option<Vec<String>> = env::var("REPLISIM_BENCH_BUGS")
        .ok()
        .map(|list| list.split(',').map(|s| s.trim().to_string()).collect());
    all.into_iter()
        .map(|(system, name)| Bug { system, name })
        .filter(|bug| {
            wanted.as_ref().is_none_or(|wanted| {
                wanted
                    .iter()
                    .any(|w| *w == bug.name || *w == format!("{}/{}", bug.system, bug.name))
            })
        })
        .collect()
}

/// Searches `bug` until a run violates a claimed guarantee that the same
/// scenario without the bug keeps, or the cap is spent.
fn run_trial(registry: &Registry, bug: &Bug, trial: Trial, cap: Duration) -> Result {
    let kinds = FaultKinds::everything().simultaneous(3);
    let space = ScenarioSpace::registered(registry, &bug.system, kinds)
        .expect("a built-in system")
        .bug(&bug.name)
        .search(trial.mode);
    let mut cases = Cases::new(&space, 0x5EA2C4 + trial.seed);
    let started = cpu_time();
    let mut result = Result {
        cases: 0,
        seconds: 0.0,
        found: false,
    };
    while !result.found && cpu_time() - started < cap {
        let scenario = cases.next_case().expect("the space draws scenarios");
        result.cases += 1;
        let Ok(outcome) = registry.run_with(&scenario, cases.run_options()) else {
            continue;
        };
        if outcome.verdicts_within(&HOLDS_LIMITS).violated() {
            let mut fixed = scenario.clone();
            fixed.bug = None;
            result.found = registry
                .run(&fixed)
                .is_ok_and(|fixed| !fixed.verdicts_within(&HOLDS_LIMITS).violated());
        }
        cases.ran(&scenario, &Reached::of(&outcome));
    }
    result.seconds = match result.found {
        true => (cpu_time() - started).as_secs_f64(),
        false => cap.as_secs_f64(),
    };
    result
}

/// A numeric knob from the environment, or `default`.
fn number(name: &str, default: u64) -> u64 {
    match env::var(name) {
        Ok(value) => value
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{name}={value:?} is not a non-negative integer")),
        Err(_) => default,
    }
}

/// The CPU time of the calling thread (a trial runs on one thread: the
/// simulation, and the checkers of histories this small).
fn cpu_time() -> Duration {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `now` is a valid timespec for the call to fill.
    let status = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut now) };
    assert_eq!(status, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID) failed");
    Duration::new(now.tv_sec as u64, now.tv_nsec as u32)
}

/// The median of `values` (the lower middle one of an even count).
fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted
        .get((sorted.len().max(1) - 1) / 2)
        .copied()
        .unwrap_or(0.0)
}

fn worst(values: &[f64]) -> f64 {
    values.iter().copied().fold(0.0, f64::max)
}

fn seconds(group: &[Result]) -> Vec<f64> {
    group.iter().map(|r| r.seconds).collect()
}

fn cases(group: &[Result]) -> Vec<f64> {
    group.iter().map(|r| r.cases as f64).collect()
}

/// `raft/vote-without-log-check guided: cases median 40, worst 97; seconds
/// median 1.2, worst 3.1; found by 5 of 5 seeds`.
fn group_line(bug: &Bug, mode: Search, group: &[Result]) -> String {
    format!(
        "{}/{} {mode}: cases median {}, worst {}; seconds median {:.1}, worst {:.1}; found by {} of {} seeds",
        bug.system,
        bug.name,
        median(&cases(group)),
        worst(&cases(group)),
        median(&seconds(group)),
        worst(&seconds(group)),
        group.iter().filter(|r| r.found).count(),
        group.len()
    )
}

/// A markdown table: per bug, each mode's median and worst cases and
/// seconds (a `*` marks a bug not found by every seed).
fn table(bugs: &[Bug], modes: &[Search], done: &BTreeMap<(usize, Search), Vec<Result>>) -> String {
    let mut text = String::from("| planted bug |");
    for mode in modes {
        text += &format!(" {mode}: cases median/worst | {mode}: s median/worst |");
    }
    text += "\n|---|";
    text += &"---|---|".repeat(modes.len());
    for (b, bug) in bugs.iter().enumerate() {
        text += &format!("\n| {}/{} |", bug.system, bug.name);
        for &mode in modes {
            let group = &done[&(b, mode)];
            let missed = match group.iter().all(|r| r.found) {
                true => "",
                false => "*",
            };
            text += &format!(
                " {}/{} | {:.1}/{:.1}{missed} |",
                median(&cases(group)),
                worst(&cases(group)),
                median(&seconds(group)),
                worst(&seconds(group))
            );
        }
    }
    text
}

/// `search MODE: median X s, worst Y s, found K of N`.
fn mode_line(
    mode: Search,
    bugs: usize,
    seeds: u64,
    done: &BTreeMap<(usize, Search), Vec<Result>>,
) -> String {
    let groups: Vec<&Vec<Result>> = (0..bugs).map(|b| &done[&(b, mode)]).collect();
    let medians: Vec<f64> = groups.iter().map(|g| median(&seconds(g))).collect();
    let worst_trial = groups
        .iter()
        .map(|g| worst(&seconds(g)))
        .fold(0.0, f64::max);
    let found = groups
        .iter()
        .filter(|g| g.len() == seeds as usize && g.iter().all(|r| r.found))
        .count();
    format!(
        "search {mode}: median {:.1} s, worst {:.1} s, found {found} of {bugs}",
        median(&medians),
        worst_trial
    )
}

/// How much faster guided is than random (median seconds over the bugs
/// whose random median took more than 100 cases), when both ran.
fn guided_over_random(
    bugs: &[Bug],
    done: &BTreeMap<(usize, Search), Vec<Result>>,
) -> Option<String> {
    let deep: Vec<usize> = (0..bugs.len())
        .filter(|&b| {
            done.get(&(b, Search::Random))
                .is_some_and(|g| median(&cases(g)) > 100.0)
        })
        .collect();
    let over = |mode| -> Option<Vec<f64>> {
        deep.iter()
            .map(|&b| done.get(&(b, mode)).map(|g| median(&seconds(g))))
            .collect()
    };
    let (random, guided) = (over(Search::Random)?, over(Search::Guided)?);
    if deep.is_empty() {
        return Some("guided vs random: random needed more than 100 cases for no bug".into());
    }
    let names: Vec<String> = deep
        .iter()
        .map(|&b| format!("{}/{}", bugs[b].system, bugs[b].name))
        .collect();
    let (r, g) = (median(&random), median(&guided));
    Some(format!(
        "guided vs random on the {} bugs random needs more than 100 cases for ({}): median {r:.1} s \
         vs {g:.1} s, {:.2}x faster",
        deep.len(),
        names.join(", "),
        r / g.max(1e-9)
    ))
}
