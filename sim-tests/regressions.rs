//! The regression corpus and the reproduction contract: committed scenario
//! files replay to their recorded digests, `replisim replay` runs them and
//! rejects malformed ones with the field and the problem, and the command a
//! failing property prints reruns exactly the failing case.

use std::{
    path::{Path, PathBuf},
    process::{Command, Output},
};

use replisim::{
    replication,
    sim::{Outcome, Scenario},
    strategy::{FaultKinds, ScenarioSpace},
    testing::{self, Explorer},
};

/// Every scenario file under `fixtures/regressions/`, in every test's folder.
fn corpus() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/regressions");
    let dirs = std::fs::read_dir(&root).unwrap_or_else(|e| panic!("{}: {e}", root.display()));
    let mut files: Vec<PathBuf> = dirs
        .flatten()
        .flat_map(|dir| testing::scenario_files(&dir.path()))
        .collect();
    files.sort();
    files
}

fn replisim(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_replisim"))
        .args(args)
        .output()
        .expect("the replisim binary runs")
}

#[test]
fn every_saved_scenario_replays_to_its_recorded_digest() {
    let files = corpus();
    assert!(!files.is_empty(), "the corpus is empty");
    for file in files {
        let scenario = Scenario::from_json(&std::fs::read_to_string(&file).unwrap())
            .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let recorded = scenario
            .recorded_digest
            .clone()
            .unwrap_or_else(|| panic!("{} has no recorded_digest", file.display()));
        let outcome = replication::registry().run(&scenario).unwrap();
        assert_eq!(
            outcome.digest_hex(),
            recorded,
            "{} replays to another digest; if the change of behaviour is intended, \
             re-record it with `cargo run -- replay --record {}`",
            file.display(),
            file.display()
        );
    }
}

#[test]
fn replisim_replay_runs_a_saved_scenario_and_checks_its_digest() {
    let file = corpus().remove(0);
    let output = replisim(&["replay", file.to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    assert!(
        stdout.contains("digest matches the one recorded"),
        "{stdout}"
    );
}

#[test]
fn replisim_replay_of_a_malformed_file_names_the_field_and_exits_3() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            r#"{"seed": 1, "protocol": "sync", "replicas": "3", "clients": 2}"#,
            "replicas: invalid type: string \"3\", expected usize",
        ),
        (
            r#"{"seed": 1, "protocol": "sync", "replicas": 3, "clients": 2, "workload": {"ops": 3}}"#,
            "workload.ops: unknown field `ops`",
        ),
        (
            r#"{"seed": 1, "protocol": "sync", "replicas": 3, "clients": 0}"#,
            "clients: 0 is not between 1 and 64",
        ),
        (
            r#"{"seed": 1, "protocol": "paxos", "replicas": 3, "clients": 1}"#,
            "unknown system \"paxos\"",
        ),
        (
            r#"{"seed": 1, "system": "sync", "replicas": 3, "clients": 1, "config": {"batch": "x"}}"#,
            "config.batch: invalid type: string \"x\"",
        ),
        (
            r#"{"seed": 1, "system": "sync", "bug": "typo", "replicas": 3, "clients": 1}"#,
            "bug: \"typo\" is not a planted bug of sync",
        ),
        (
            r#"{"seed": 1, "system": "sync", "replicas": 3, "clients": 1, "faults": [{"at_ms": 1, "kind": "crash", "node": "leader"}]}"#,
            "faults[0].node: sync publishes no role \"leader\" (its roles: primary)",
        ),
        (
            r#"{"seed": 1, "system": "sync", "replicas": 3, "clients": 1, "workload": {"ops_per_client": 3, "keys": 1, "mix": {"add": 1}, "think_time": 1}}"#,
            "workload.mix: the kv workload has no operation \"add\"",
        ),
    ];
    for (i, (text, message)) in cases.into_iter().enumerate() {
        let file = dir.path().join(format!("bad-{i}.json"));
        std::fs::write(&file, text).unwrap();
        let output = replisim(&["replay", file.to_str().unwrap()]);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(3), "{text}: {stderr}");
        assert!(stderr.contains(message), "{text}: {stderr}");
    }
}

/// A property that fails as soon as any fault is applied, so the search
/// fails fast and shrinks to a single fault.
fn no_fault_applied(outcome: &Outcome) -> Result<(), String> {
    match outcome.stats.faults_applied {
        0 => Ok(()),
        n => Err(format!("{n} fault(s) applied")),
    }
}

const NAME: &str = "printed_command_reruns_the_failing_case";

fn explorer(corpus: &Path) -> Explorer {
    Explorer::new(NAME, 50)
        .registry(replication::registry())
        .corpus(corpus)
}

/// A failing `explore` saves the shrunk scenario with its digest and ends
/// its panic message with the seed, the file and the command; that command
/// (run here as the test binary `cargo test` would run) fails again on
/// exactly that case, with the same digest.
#[test]
fn printed_command_reruns_the_failing_case() {
    let space = ScenarioSpace::new("sync", FaultKinds::crashes())
        .replicas(3)
        .ops_per_client(5..=10);
    if std::env::var_os("REPLISIM_REPLAY").is_some() {
        // The rerun: replays the file and panics like the original.
        explorer(Path::new("unused")).explore(space.strategy(), no_fault_applied);
        return;
    }
    let corpus = tempfile::tempdir().unwrap();
    let panic = std::panic::catch_unwind(|| {
        explorer(corpus.path()).explore(space.strategy(), no_fault_applied)
    })
    .expect_err("the property fails");
    let message = panic
        .downcast_ref::<String>()
        .expect("a formatted panic message");
    assert!(
        message.contains("failed at case ") && message.contains(" of 50 after "),
        "{message}"
    );
    let lines: Vec<&str> = message.lines().collect();
    let tail = &lines[lines.len() - 5..];
    assert!(tail[0].starts_with("runner seed: "), "{message}");
    let saved = tail[1].strip_prefix("saved: ").expect("the saved file");
    let command = tail[2]
        .strip_prefix("reproduce with: ")
        .expect("the command");
    assert!(tail[3].contains("cargo run -- replay "), "{message}");
    assert!(tail[4].contains("REPLISIM_SEED="), "{message}");
    assert!(
        command.starts_with(&format!(
            "REPLISIM_REPLAY={saved} cargo test --test regressions -- --exact {NAME}"
        )),
        "{command}"
    );

    let scenario = Scenario::from_json(&std::fs::read_to_string(saved).unwrap()).unwrap();
    assert_eq!(
        scenario.faults.len(),
        1,
        "shrunk to one fault: {:?}",
        scenario.faults
    );
    let digest = scenario
        .recorded_digest
        .clone()
        .expect("the digest is recorded");
    assert!(message.contains(&format!("digest: {digest}")), "{message}");

    // What `cargo test --test regressions -- --exact NAME` runs.
    let rerun = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", NAME])
        .env("REPLISIM_REPLAY", saved)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&rerun.stdout);
    assert!(!rerun.status.success(), "the rerun passed:\n{stdout}");
    assert!(
        stdout.contains(&format!("digest {digest}, as recorded")),
        "{stdout}"
    );
}

/// Replays the corpus named by `RECORD_CORPUS` (only when run by
/// `replisim_record_rewrites_a_corpus_digest`, in a process of its own).
#[test]
fn replay_a_corpus_to_record() {
    let Some(dir) = std::env::var_os("RECORD_CORPUS") else {
        return;
    };
    let space = ScenarioSpace::new("sync", FaultKinds::none());
    Explorer::new("record", 0)
        .registry(replication::registry())
        .corpus(PathBuf::from(dir))
        .explore(space.strategy(), testing::holds);
}

/// `REPLISIM_RECORD=1` rewrites each corpus file's digest while replaying
/// it, from the user's own tests.
#[test]
fn replisim_record_rewrites_a_corpus_digest() {
    let source = corpus().remove(0);
    let dir = tempfile::tempdir().unwrap();
    let mut scenario = Scenario::from_json(&std::fs::read_to_string(&source).unwrap()).unwrap();
    let real = scenario.recorded_digest.replace("0000000000000000".into());
    let file = dir.path().join("stale.json");
    std::fs::write(&file, scenario.to_json()).unwrap();
    let run = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "replay_a_corpus_to_record"])
        .env("RECORD_CORPUS", dir.path())
        .env("REPLISIM_RECORD", "1")
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stdout)
    );
    let recorded = Scenario::from_json(&std::fs::read_to_string(&file).unwrap()).unwrap();
    assert_eq!(recorded.recorded_digest, real);
}

/// A scenario saved before systems were plug-ins (`protocol` and `engine`
/// fields) still reads and replays to its recorded digest.
#[test]
fn a_scenario_in_the_old_format_still_replays() {
    let file = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/legacy/protocol-and-engine-fields.json");
    let scenario = Scenario::from_json(&std::fs::read_to_string(&file).unwrap()).unwrap();
    assert_eq!(scenario.system, "sync");
    let outcome = replication::registry().run(&scenario).unwrap();
    assert_eq!(Some(outcome.digest_hex()), scenario.recorded_digest);
}
