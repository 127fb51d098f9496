//! Points in the code under test that the harness knows of before they
//! run: `buggify!` points (faults from inside the code, as FoundationDB's
//! `BUGGIFY` and madsim's `buggify!`) and `sometimes!` assertions (what an
//! exploration must reach, as Antithesis's and moonpool's).
//!
//! Every expansion of either macro puts a [`Point`] in [`POINTS`], a slice
//! the linker assembles from every crate of the binary (`linkme`): the
//! library's points and those of a user's crate or `sim-tests/` binary
//! alike. So a point that never runs is still known, and an exploration can
//! say it never reached it ([`registered`]).
//!
//! Outside a simulation `buggify!()` is `false` and `sometimes!` evaluates
//! nothing: both cost one relaxed load of a process-wide counter of the
//! threads running a simulation (nothing measurable over a loop of 200
//! million calls), and, while another thread of the process simulates, one
//! thread-local read (about 7 ns in the dev profile). Inside a simulation
//! the run's own state (in `run`, begun and finished by the harness)
//! decides and counts:
//!
//! - a buggify point is reached, and is enabled or not once per run by a
//!   hash of the run's seed and the point's identity (its name if it has
//!   one, else its file, line and column), so the decision does not depend
//!   on which other points exist or ran first; an enabled point fires with
//!   the scenario's probability, drawn from a ChaCha RNG of its own seeded
//!   from the same two. A scenario without [`crate::sim::Buggify`] fires
//!   nothing, so scenarios recorded before buggify existed replay with
//!   their recorded digests. Each firing is recorded as the effect
//!   `buggify_fired` ([`crate::effect::record`]), which the trace digest
//!   folds with its host and simulated time: a replay that fires
//!   differently has another digest.
//! - a sometimes-assertion counts the times it was evaluated and held.
//!   It changes nothing in the run.
//!
//! Counts come back in [`crate::sim::RunStats`]'s `buggify` and `sometimes`,
//! keyed by [`Point::label`]. Which points an exploration answers for is
//! a list of module prefixes: [`crates`] gives the binary's crates that
//! have points (the user's, and replisim's when asked), [`declared`] the
//! zero counts an exploration starts from, [`never_reached`] and
//! [`never_reached_where_run`] what it reports.

mod run;

use std::{
    collections::BTreeMap,
    fmt,
    sync::atomic::{AtomicUsize, Ordering},
};

use serde::{Deserialize, Serialize};

pub(crate) use run::{begin, finish};

#[doc(hidden)]
pub use linkme as __linkme;

/// Every `buggify!` and `sometimes!` of the binary, in link order.
#[linkme::distributed_slice]
pub static POINTS: [Point];

/// Which macro a point is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    Buggify,
    Sometimes,
}

/// One `buggify!` or `sometimes!` in the source.
#[derive(Debug)]
pub struct Point {
    pub kind: Kind,
    /// `buggify!("name")`'s name; a sometimes-assertion's (always set).
    pub name: Option<&'static str>,
    pub file: &'static str,
    pub line: u32,
    pub column: u32,
    /// `module_path!()` where the macro was expanded.
    pub module: &'static str,
}

impl Point {
    /// How summaries name it: a sometimes-assertion by its name, a buggify
    /// point by `file:line` (`name at file:line` when named).
    pub fn label(&self) -> String {
        match (self.kind, self.name) {
            (Kind::Sometimes, Some(name)) => name.to_string(),
            (Kind::Buggify, Some(name)) => format!("{name} at {}:{}", self.file, self.line),
            (_, None) => format!("{}:{}", self.file, self.line),
        }
    }

    /// What the per-run decisions hash: the name, else the position.
    fn identity(&self) -> String {
        match self.name {
            Some(name) => name.to_string(),
            None => format!("{}:{}:{}", self.file, self.line, self.column),
        }
    }

    /// Whether the point is in one of the modules under `prefixes` (a
    /// prefix `a::b` takes `a::b` and `a::b::c`, not `a::bc`).
    fn is_under(&self, prefixes: &[String]) -> bool {
        prefixes.iter().any(|prefix| {
            self.module
                .strip_prefix(prefix.as_str())
                .is_some_and(|rest| rest.is_empty() || rest.starts_with("::"))
        })
    }
}

/// The points of `kind` declared in the modules under `prefixes`, sorted
/// and without duplicates by label (a macro expanded twice at one place
/// counts once).
pub fn registered(kind: Kind, prefixes: &[String]) -> Vec<&'static Point> {
    let mut points: Vec<&'static Point> = POINTS
        .iter()
        .filter(|point| point.kind == kind && point.is_under(prefixes))
        .collect();
    points.sort_by_key(|point| point.label());
    points.dedup_by_key(|point| point.label());
    points
}

/// Every point of `kind` under `modules`, by label, reached in no run yet:
/// where an exploration's counts start, so that a point that never runs
/// stays in them.
pub fn declared(kind: Kind, modules: &[String]) -> BTreeMap<String, PointCount> {
    registered(kind, modules)
        .into_iter()
        .map(|point| (point.label(), PointCount::default()))
        .collect()
}

/// Adds a run's (or a shard's) counts to `total`.
pub fn add_counts(total: &mut BTreeMap<String, PointCount>, more: &BTreeMap<String, PointCount>) {
    for (label, count) in more {
        total.entry(label.clone()).or_default().add(*count);
    }
}

/// The labels in `counts` that no run reached.
pub fn never_reached(counts: &BTreeMap<String, PointCount>) -> Vec<String> {
    counts
        .iter()
        .filter(|(_, count)| count.reached == 0)
        .map(|(label, _)| label.clone())
        .collect()
}

/// The buggify points in `counts` never reached, of the crates that had a
/// point reached: what the code that ran never got to. (A sweep counts
/// the points of every crate of the binary, most of which a given system
/// never runs.)
pub fn never_reached_where_run(counts: &BTreeMap<String, PointCount>) -> Vec<String> {
    let points = registered(Kind::Buggify, &crates(true));
    let crate_of = |label: &str| {
        let point = points.iter().find(|point| point.label() == label)?;
        point.module.split("::").next()
    };
    let run: Vec<&str> = counts
        .iter()
        .filter(|(_, count)| count.reached > 0)
        .filter_map(|(label, _)| crate_of(label))
        .collect();
    never_reached(counts)
        .into_iter()
        .filter(|label| crate_of(label).is_some_and(|name| run.contains(&name)))
        .collect()
}

/// The running binary's name without the hash cargo gives a test binary
/// (`target/.../deps/<target>-<hash>`).
pub fn binary_name() -> String {
    let exe = std::env::current_exe().unwrap_or_default();
    let stem = exe.file_stem().and_then(|s| s.to_str()).unwrap_or_default();
    match stem.rsplit_once('-') {
        Some((target, hash)) if hash.chars().all(|c| c.is_ascii_hexdigit()) => target.to_string(),
        _ => stem.to_string(),
    }
}

/// The crates of the binary that have points, by name (the module prefix
/// of their points), replisim itself only `with_replisim`: without it,
/// the user's code (their library, their `tests/` or `sim-tests/`
/// binary), not the built-in protocols.
pub fn crates(with_replisim: bool) -> Vec<String> {
    let mut crates: Vec<String> = POINTS
        .iter()
        .map(|point| point.module.split("::").next().unwrap_or_default())
        .filter(|name| with_replisim || *name != env!("CARGO_CRATE_NAME"))
        .map(str::to_string)
        .collect();
    crates.sort();
    crates.dedup();
    crates
}

/// A point's counts over a run or an exploration: how often it was
/// reached, and how often a buggify point fired or a sometimes-assertion
/// held.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PointCount {
    pub reached: u64,
    pub hits: u64,
}

impl PointCount {
    pub fn add(&mut self, other: PointCount) {
        self.reached += other.reached;
        self.hits += other.hits;
    }
}

/// `hits/reached`.
impl fmt::Display for PointCount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.hits, self.reached)
    }
}

/// How a scenario's buggify points behave: each point is enabled in a run
/// with probability `enabled`, and an enabled point fires each time it is
/// reached with probability `fires`. The defaults are FoundationDB's (a
/// quarter each): most points stay quiet in a run, so the bugs of a few
/// at a time are found, and an enabled point on a hot path still lets most
/// requests through.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Buggify {
    #[serde(default = "quarter")]
    pub enabled: f64,
    #[serde(default = "quarter")]
    pub fires: f64,
}

fn quarter() -> f64 {
    0.25
}

impl Default for Buggify {
    fn default() -> Self {
        Buggify {
            enabled: quarter(),
            fires: quarter(),
        }
    }
}

impl Buggify {
    /// The field (`enabled`, `fires`) that is not a probability, if any.
    pub fn invalid_field(&self) -> Option<&'static str> {
        let probability = |p: f64| (0.0..=1.0).contains(&p);
        match (probability(self.enabled), probability(self.fires)) {
            (false, _) => Some("enabled"),
            (_, false) => Some("fires"),
            _ => None,
        }
    }
}

/// Threads of this process running a simulation now: zero makes every
/// point a no-op without touching a thread-local.
static SIMULATING: Padded = Padded(AtomicUsize::new(0));

/// A cache line of its own: the counter is read at every point and must
/// not share a line with data a simulating thread writes.
#[repr(align(128))]
struct Padded(AtomicUsize);

/// Whether a run is live on this thread: the process-wide counter first,
/// so a process that never simulates reads no thread-local.
#[inline(always)]
fn simulating() -> bool {
    SIMULATING.0.load(Ordering::Relaxed) != 0 && run::live()
}

/// What `buggify!()` expands to: whether `point` fires now.
#[doc(hidden)]
#[inline(always)]
pub fn __buggify(point: &'static Point) -> bool {
    simulating() && run::fire(point)
}

/// What `sometimes!` expands to: `holds` is called only inside a simulation.
#[doc(hidden)]
#[inline(always)]
pub fn __sometimes(point: &'static Point, holds: impl FnOnce() -> bool) {
    if simulating() {
        run::observe(point, holds);
    }
}

/// The point a macro expands at: a static in [`POINTS`].
#[doc(hidden)]
#[macro_export]
macro_rules! __point {
    ($kind:ident, $name:expr) => {{
        #[$crate::points::__linkme::distributed_slice($crate::points::POINTS)]
        #[linkme(crate = $crate::points::__linkme)]
        static POINT: $crate::points::Point = $crate::points::Point {
            kind: $crate::points::Kind::$kind,
            name: $name,
            file: ::core::file!(),
            line: ::core::line!(),
            column: ::core::column!(),
            module: ::core::module_path!(),
        };
        &POINT
    }};
}

/// A fault from inside the code: `true` when this point fires. Always
/// `false` outside a simulation and in scenarios without
/// [`crate::sim::Buggify`]; inside, the point is enabled or not once per
/// run from the run's seed, and an enabled point fires with the scenario's
/// probability. Name a point (`buggify!("slow reply")`) to keep its
/// per-run decision when the code around it moves.
///
/// ```
/// async fn reply(answer: u64) -> u64 {
///     if replisim::buggify!("slow reply") {
///         tokio::time::sleep(std::time::Duration::from_millis(50)).await;
///     }
///     answer
/// }
/// ```
#[macro_export]
macro_rules! buggify {
    () => {
        $crate::points::__buggify($crate::__point!(Buggify, ::core::option::Option::None))
    };
    ($name:literal) => {
        $crate::points::__buggify($crate::__point!(
            Buggify,
            ::core::option::Option::Some($name)
        ))
    };
}

/// A property the exploration must see hold at least once:
/// `sometimes!("a failover happened", promoted)`. Inside a simulation the
/// condition is evaluated and counted; outside, it is not evaluated. An
/// [`crate::testing::Explorer`] fails an exploration in which an assertion
/// of the code it explores never held, with its name and place.
#[macro_export]
macro_rules! sometimes {
    ($name:literal, $holds:expr $(,)?) => {
        $crate::points::__sometimes(
            $crate::__point!(Sometimes, ::core::option::Option::Some($name)),
            || $holds,
        )
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outside_a_simulation_nothing_fires_or_is_evaluated() {
        assert!(!crate::buggify!());
        crate::sometimes!(
            "never evaluated here",
            panic!("evaluated outside a simulation")
        );
    }

    #[test]
    fn expanded_points_are_registered_under_their_module() {
        let here = vec![module_path!().to_string()];
        let _ = crate::buggify!("registered in a test");
        let buggify = registered(Kind::Buggify, &here);
        assert!(
            buggify
                .iter()
                .any(|point| point.name == Some("registered in a test")),
            "{buggify:?}"
        );
        let sometimes = registered(Kind::Sometimes, &here);
        assert_eq!(sometimes.len(), 1, "{sometimes:?}");
        assert_eq!(sometimes[0].label(), "never evaluated here");
        assert!(registered(Kind::Buggify, &["replisim::point".into()]).is_empty());
        assert!(crates(true).contains(&"replisim".to_string()));
        assert!(!crates(false).contains(&"replisim".to_string()));
    }
}
