//! The points' state during one simulation on this thread: which buggify
//! points are enabled, their RNGs, and every point's counts. The harness
//! begins it before the run ([`begin`]) and takes the counts after it
//! ([`finish`]); dropping the guard (a run that panicked) ends it too, so
//! points on this thread go quiet again.

use std::{
    cell::{Cell, RefCell},
    collections::BTreeMap,
    sync::atomic::Ordering,
};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::{Buggify, Kind, Point, PointCount, SIMULATING};

/// The effect each firing records, folded into the trace digest.
pub(crate) const FIRED: &str = "buggify_fired";

/// The counts of one run's points, by [`Point::label`].
#[derive(Debug, Default)]
pub(crate) struct RunPoints {
    pub buggify: BTreeMap<String, PointCount>,
    pub sometimes: BTreeMap<String, PointCount>,
}

/// One run's state.
struct Run {
    seed: u64,
    buggify: Option<Buggify>,
    /// By the point's address: each expansion is one static.
    points: BTreeMap<usize, PointRun>,
}

/// A point reached in this run.
struct PointRun {
    point: &'static Point,
    count: PointCount,
    /// An enabled buggify point's RNG (its firings).
    fires: Option<ChaCha8Rng>,
}

thread_local! {
    static RUN: RefCell<Option<Run>> = const { RefCell::new(None) };
    /// Whether `RUN` is set: read without a borrow or a destructor's
    /// registration, by every point of every thread once some thread
    /// simulates.
    static LIVE: Cell<bool> = const { Cell::new(false) };
}

/// Whether a run is live on this thread.
#[inline(always)]
pub(super) fn live() -> bool {
    LIVE.get()
}

/// A run's points are live on this thread until [`finish`] or drop.
pub(crate) struct Guard(());

impl Drop for Guard {
    fn drop(&mut self) {
        if RUN.take().is_some() {
            LIVE.set(false);
            SIMULATING.0.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

/// Starts a run of `seed` on this thread; buggify points fire only with
/// `buggify`.
pub(crate) fn begin(seed: u64, buggify: Option<Buggify>) -> Guard {
    let previous = RUN.replace(Some(Run {
        seed,
        buggify,
        points: BTreeMap::new(),
    }));
    if previous.is_none() {
        LIVE.set(true);
        SIMULATING.0.fetch_add(1, Ordering::Relaxed);
    }
    Guard(())
}

/// Ends the run and returns its counts.
pub(crate) fn finish(guard: Guard) -> RunPoints {
    let run = RUN.with_borrow_mut(|run| run.as_mut().map(|run| std::mem::take(&mut run.points)));
    drop(guard);
    let mut counts = RunPoints::default();
    for reached in run.into_iter().flat_map(BTreeMap::into_values) {
        let map = match reached.point.kind {
            Kind::Buggify => &mut counts.buggify,
            Kind::Sometimes => &mut counts.sometimes,
        };
        map.entry(reached.point.label())
            .or_default()
            .add(reached.count);
    }
    counts
}

impl Run {
    fn reach(&mut self, point: &'static Point) -> &mut PointRun {
        let (seed, buggify) = (self.seed, self.buggify);
        self.points
            .entry(point as *const Point as usize)
            .or_insert_with(|| PointRun {
                point,
                count: PointCount::default(),
                fires: buggify.and_then(|buggify| enabled(point, seed, buggify)),
            })
    }
}

/// An enabled point's RNG, seeded by the run's seed and the point's
/// identity; `None` when its first draw leaves the point disabled.
fn enabled(point: &Point, seed: u64, buggify: Buggify) -> Option<ChaCha8Rng> {
    let seed = xxhash_rust::xxh3::xxh3_64_with_seed(point.identity().as_bytes(), seed);
    let mut rng = ChaCha8Rng::seed_from_u64(seed); // determinism-ok: seeded from the run's seed
    rng.random_bool(buggify.enabled).then_some(rng)
}

/// Whether a buggify point fires now; a firing is recorded as an effect.
pub(super) fn fire(point: &'static Point) -> bool {
    let fired = RUN.with_borrow_mut(|run| {
        let Some(run) = run else { return false };
        let fires = run.buggify.map_or(0.0, |buggify| buggify.fires);
        let reached = run.reach(point);
        reached.count.reached += 1;
        let fired = reached
            .fires
            .as_mut()
            .is_some_and(|rng| rng.random_bool(fires));
        reached.count.hits += u64::from(fired);
        fired
    });
    if fired {
        crate::effect::record(FIRED, 1);
    }
    fired
}

/// Counts a sometimes-assertion reached, and held when `holds()`. The
/// condition runs outside the run's state, so it may reach points itself.
pub(super) fn observe(point: &'static Point, holds: impl FnOnce() -> bool) {
    if RUN.with_borrow(Option::is_none) {
        return;
    }
    let held = holds();
    RUN.with_borrow_mut(|run| {
        if let Some(run) = run {
            let reached = run.reach(point);
            reached.count.reached += 1;
            reached.count.hits += u64::from(held);
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point_fires(seed: u64, buggify: Buggify) -> (bool, RunPoints) {
        let guard = begin(seed, Some(buggify));
        let fired = crate::buggify!("run-test point");
        crate::sometimes!("run-test assertion", fired);
        (fired, finish(guard))
    }

    #[test]
    fn a_run_decides_from_its_seed_and_counts() {
        let always = Buggify {
            enabled: 1.0,
            fires: 1.0,
        };
        let (fired, counts) = point_fires(7, always);
        assert!(fired);
        let label = counts.buggify.keys().next().expect("the point was reached");
        assert!(
            label.starts_with("run-test point at src/points/run.rs:"),
            "{label}"
        );
        assert_eq!(
            counts.sometimes["run-test assertion"],
            PointCount {
                reached: 1,
                hits: 1
            }
        );
        let never = Buggify {
            enabled: 0.0,
            fires: 1.0,
        };
        assert!(!point_fires(7, never).0);
        // A quarter enabled, always firing: the same seed decides alike,
        // and some seeds enable the point and others not.
        let quarter = Buggify {
            enabled: 0.25,
            fires: 1.0,
        };
        let decisions: Vec<bool> = (0..64).map(|seed| point_fires(seed, quarter).0).collect();
        let again: Vec<bool> = (0..64).map(|seed| point_fires(seed, quarter).0).collect();
        assert_eq!(decisions, again);
        let enabled = decisions.iter().filter(|on| **on).count();
        assert!((4..=32).contains(&enabled), "{enabled} of 64 runs");
        assert!(
            !crate::buggify!("run-test point"),
            "a finished run fires nothing"
        );
    }

    #[test]
    fn a_dropped_run_goes_quiet() {
        let always = Buggify {
            enabled: 1.0,
            fires: 1.0,
        };
        drop(begin(1, Some(always)));
        assert!(!crate::buggify!());
    }
}
