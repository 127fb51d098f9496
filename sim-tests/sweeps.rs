//! Sweeps as data: `replisim explore --json` writes a summary, `--shard I/N`
//! runs disjoint slices of the same sweep, and `--merge` adds the slices'
//! summaries up to exactly the unsharded sweep's counts.

#[path = "support/explore.rs"]
mod support;

use std::{path::Path, process::Command};

use serde_json::Value;

/// Runs `replisim explore` with `args`, writing the summary to `json`;
/// returns the summary.
fn explore(out: &Path, json: &Path, args: &[&str]) -> Value {
    support::explore(out, json, args).0
}

const SWEEP: &[&str] = &[
    "--protocols",
    "sync,async",
    "--runs",
    "10",
    "--faults",
    "crashes-with-disk-loss",
    "--seed",
    "11",
];

#[test]
fn shards_add_up_to_the_whole_sweep() {
    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str| dir.path().join(name);
    let whole = explore(dir.path(), &path("whole.json"), SWEEP);
    let first = explore(
        dir.path(),
        &path("1.json"),
        &[SWEEP, &["--shard", "1/2"]].concat(),
    );
    let second = explore(
        dir.path(),
        &path("2.json"),
        &[SWEEP, &["--shard", "2/2"]].concat(),
    );
    let runs = |summary: &Value| summary["systems"][0]["runs"].as_u64().unwrap();
    assert_eq!(runs(&first) + runs(&second), 10);
    assert!(runs(&first) > 0 && runs(&second) > 0);

    let merged = explore(
        dir.path(),
        &path("merged.json"),
        &[
            "--merge",
            path("1.json").to_str().unwrap(),
            path("2.json").to_str().unwrap(),
        ],
    );
    assert_eq!(merged, whole, "merged shards differ from the whole sweep");
}

#[test]
fn the_summary_names_each_system_with_its_claims_checks_and_faults() {
    let dir = tempfile::tempdir().unwrap();
    let summary = explore(dir.path(), &dir.path().join("s.json"), SWEEP);
    assert_eq!(summary["seed"], 11);
    assert_eq!(summary["options"]["runs"], 10);
    let systems = summary["systems"].as_array().unwrap();
    let names: Vec<&str> = systems
        .iter()
        .map(|s| s["system"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["sync", "async"]);
    for system in systems {
        assert_eq!(system["bug"], Value::Null);
        assert_eq!(
            system["claims"],
            serde_json::json!([
                "linearizable",
                "durable",
                "convergent",
                "live",
                "no-unexpected-exit"
            ])
        );
        for check in [
            "linearizable",
            "durable",
            "convergent",
            "live",
            "no-unexpected-exit",
        ] {
            let counts = &system["checks"][check];
            let total: u64 = ["ok", "violated", "unknown"]
                .iter()
                .map(|k| counts[k].as_u64().unwrap())
                .sum();
            assert_eq!(total, 10, "{check}: {counts}");
        }
        let crash = &system["faults"]["crash"];
        assert!(crash["fired"].as_u64().unwrap() >= crash["effective"].as_u64().unwrap());
        assert!(system["exits"]["expected"].is_u64(), "{}", system["exits"]);
        assert!(
            system["exits"]["unexpected"].is_u64(),
            "{}",
            system["exits"]
        );
        assert!(system.get("first_violation").is_some());
    }
}

#[test]
fn merging_summaries_of_different_sweeps_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a.json");
    let b = dir.path().join("b.json");
    explore(dir.path(), &a, &[SWEEP, &["--shard", "1/2"]].concat());
    let other_seed: Vec<&str> = SWEEP
        .iter()
        .map(|arg| if *arg == "11" { "12" } else { arg })
        .collect();
    explore(
        dir.path(),
        &b,
        &[&other_seed[..], &["--shard", "2/2"]].concat(),
    );
    let output = Command::new(env!("CARGO_BIN_EXE_replisim"))
        .args(["explore", "--merge"])
        .args([&a, &b])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("different sweeps"), "{stderr}");
}

/// A guided sweep is adaptive yet reproducible: the same seed gives the
/// same summary, on one thread or two (cases are drawn in fixed batches).
#[test]
fn guided_sweeps_are_reproducible_from_their_seed_on_any_number_of_threads() {
    let dir = tempfile::tempdir().unwrap();
    let guided = [
        "--protocols",
        "sync,async",
        "--runs",
        "20",
        "--faults",
        "crashes-with-disk-loss",
        "--seed",
        "11",
        "--search",
        "guided",
    ];
    let one = explore(
        dir.path(),
        &dir.path().join("one.json"),
        &[&guided[..], &["--threads", "1"]].concat(),
    );
    let two = explore(
        dir.path(),
        &dir.path().join("two.json"),
        &[&guided[..], &["--threads", "2"]].concat(),
    );
    assert_eq!(one["options"]["search"], "guided");
    assert_eq!(one["systems"][0]["runs"], 20);
    assert_eq!(one, two, "a guided sweep depends on its thread count");
}

/// Guided search cannot be sharded: a usage error (64) that says why.
#[test]
fn guided_sweeps_refuse_shards() {
    let output = Command::new(env!("CARGO_BIN_EXE_replisim"))
        .args([
            "explore", "--search", "guided", "--shard", "1/2", "--runs", "2",
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(64), "{stderr}");
    assert!(stderr.contains("adaptive"), "{stderr}");
    assert!(stderr.contains("--shard"), "{stderr}");
}
