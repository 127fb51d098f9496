//! `replisim explore --json` from a test: the summary as JSON and what the
//! sweep printed. Shared by the sim-tests that check the command's output.

use std::{path::Path, process::Command};

use serde_json::Value;

/// Runs `replisim explore` with `args`, writing traces under `out` and the
/// summary to `json`; asserts it succeeded and returns the summary and the
/// printed table.
pub fn explore(out: &Path, json: &Path, args: &[&str]) -> (Value, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_replisim"))
        .arg("explore")
        .args(args)
        .arg("--json")
        .arg(json)
        .env("REPLISIM_OUT", out)
        .output()
        .expect("the replisim binary runs");
    let stdout = String::from_utf8_lossy(&output.stdout).to_string();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{args:?}\n{stdout}\n{stderr}");
    let summary = serde_json::from_str(&std::fs::read_to_string(json).unwrap()).unwrap();
    (summary, stdout)
}
