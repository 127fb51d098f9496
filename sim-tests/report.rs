//! The HTML reports, opened in a real browser: a failing run's report
//! (written by `replisim run`), `replisim report` on its saved scenario and
//! `replisim report --history` on a recorded history each render in
//! headless Chromium (`data-rendered="ok"`) with the operations the
//! evidence names marked. Needs Debian's `chromium`: without it these
//! tests fail, saying so.

use std::{
    path::{Path, PathBuf},
    process::{Command, Output},
};

fn replisim(args: &[&str], out: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_replisim"))
        .args(args)
        .env("REPLISIM_OUT", out)
        .output()
        .expect("replisim runs")
}

/// The page as headless Chromium leaves it once its scripts have run.
fn rendered_dom(page: &Path) -> String {
    let chromium = which("chromium").unwrap_or_else(|| {
        panic!(
            "these tests open the reports in a browser: install Debian's chromium \
             (apt-get install -y chromium); .ci/run installs it when missing"
        )
    });
    let profile = tempfile::tempdir().unwrap();
    let page = page.canonicalize().unwrap();
    let output = Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg("--dump-dom")
        .arg(format!("file://{}", page.display()))
        .output()
        .expect("chromium runs");
    assert!(
        output.status.success(),
        "chromium failed on {}: {}",
        page.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

fn which(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|dir| Path::new(dir).join(program))
        .find(|path| path.is_file())
}

/// Asserts the page rendered; returns its DOM and the operation indexes
/// it marks as named by the evidence.
fn assert_rendered(page: &Path) -> (String, Vec<usize>) {
    let dom = rendered_dom(page);
    let body = dom
        .split("<body")
        .nth(1)
        .and_then(|rest| rest.split('>').next())
        .unwrap_or_default();
    assert!(
        body.contains(r#"data-rendered="ok""#),
        "{} did not render: <body{body}>",
        page.display()
    );
    let marked = dom
        .split(r#"<g class="op "#)
        .skip(1)
        .filter_map(|g| {
            let (class, rest) = g.split_once('"')?;
            let index = rest.split(r#"data-op-index=""#).nth(1)?.split('"').next()?;
            class
                .split(' ')
                .any(|c| c == "violation")
                .then(|| index.parse().unwrap())
        })
        .collect();
    (dom, marked)
}

/// The line of `stdout` starting with `prefix`, without it.
fn line_after<'a>(stdout: &'a str, prefix: &str) -> &'a str {
    stdout
        .lines()
        .find_map(|line| line.strip_prefix(prefix))
        .unwrap_or_else(|| panic!("no `{prefix}` line in:\n{stdout}"))
}

#[test]
fn a_failing_run_writes_a_report_that_renders_its_evidence_and_so_does_report() {
    let out = tempfile::tempdir().unwrap();
    let run = replisim(
        &[
            "run",
            "--protocol",
            "async",
            "--seed",
            "4",
            "--crash-primary-at",
            "300",
        ],
        out.path(),
    );
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert_eq!(run.status.code(), Some(1), "{stdout}");
    let page = PathBuf::from(line_after(&stdout, "report: "));
    assert!(page.is_file(), "{} missing", page.display());
    let (dom, marked) = assert_rendered(&page);
    // The read that cannot follow the linearizable prefix and the lost write.
    assert!(marked.contains(&79) && marked.contains(&73), "{marked:?}");
    // The lost primary, and the backup the operator promoted.
    assert!(dom.contains(">primary e1<") && dom.contains(">primary e2<"));
    assert!(dom.contains(">replica-0 lost<"));

    let scenario = line_after(&stdout, "scenario saved: ");
    let again = out.path().join("again.html");
    let report = replisim(
        &["report", scenario, "-o", again.to_str().unwrap()],
        out.path(),
    );
    assert_eq!(report.status.code(), Some(0), "{report:?}");
    assert_eq!(
        std::fs::read_to_string(&again).unwrap(),
        std::fs::read_to_string(&page).unwrap(),
        "the rerun draws the same report"
    );
}

#[test]
fn report_draws_a_recorded_history_with_its_verdict() {
    let out = tempfile::tempdir().unwrap();
    let history = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/histories/kv/c10-bad.txt");
    let page = out.path().join("history.html");
    let report = replisim(
        &[
            "report",
            "--history",
            history.to_str().unwrap(),
            "--format",
            "porcupine-kv",
            "-o",
            page.to_str().unwrap(),
        ],
        out.path(),
    );
    let stdout = String::from_utf8_lossy(&report.stdout);
    assert_eq!(report.status.code(), Some(0), "{stdout}");
    assert!(stdout.starts_with("not linearizable"), "{stdout}");
    assert!(!assert_rendered(&page).1.is_empty(), "no operation marked");

    let missing = replisim(
        &["report", "--history", "no-such-file", "-o", "x.html"],
        out.path(),
    );
    assert_eq!(missing.status.code(), Some(3));
}
