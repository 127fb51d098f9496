//! The `replisim` binary's exit statuses: `replisim check` on good,
//! refuted, malformed and nemesis-only histories (0, 1, 3, 0), and command
//! lines clap refuses, for every subcommand (64, never 2: 2 means
//! "unknown").

use std::path::Path;
use std::process::{Command, Output};

fn replisim(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_replisim"))
        .args(args)
        .output()
        .expect("replisim runs")
}

/// `replisim check` on a file holding `content`, with extra arguments.
fn check(content: &str, args: &[&str]) -> Output {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("history");
    std::fs::write(&file, content).unwrap();
    let mut all = vec!["check", file.to_str().unwrap()];
    all.extend_from_slice(args);
    replisim(&all)
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn fixture(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/histories")
        .join(name)
        .to_string_lossy()
        .into_owned()
}

#[test]
fn check_exits_by_verdict() {
    for (file, code) in [("kv/c01-ok.txt", 0), ("kv/c01-bad.txt", 1)] {
        let output = replisim(&["check", &fixture(file)]);
        assert_eq!(output.status.code(), Some(code), "{file}: {output:?}");
    }
    let nemesis = check(
        "({:process :nemesis, :type :info, :f :start, :value nil})\n",
        &[],
    );
    assert_eq!(nemesis.status.code(), Some(0), "{nemesis:?}");
    assert!(
        text(&nemesis.stdout).contains("no client operation"),
        "{nemesis:?}"
    );
}

#[test]
fn malformed_histories_exit_3_with_one_line_naming_the_line() {
    let read = "INFO  jepsen.util - 0\t:invoke\t:read\tnil\n";
    let knossos = "{:process 0, :type :invoke, :f :write, :value 1}\n\
                   {:process 0, :type :ok, :f :write, :value 1}\n";
    let cases: [(String, &[&str], &str); 6] = [
        (String::new(), &[], "the file is empty"),
        (
            format!("{read}INFO  jepsen.util - 0\t:ok\t:write\t3\n"),
            &[],
            "line 2: process 0 completes a write but invoked a read",
        ),
        (
            format!("{read}INFO  jepsen.ut"),
            &[],
            "line 2: expected a log line",
        ),
        (
            knossos.into(),
            &["--format", "porcupine-kv"],
            "line 1: :f must be :get, :put, :append in porcupine-kv",
        ),
        (
            format!("{read}garbage\n"),
            &[],
            "line 2: expected a log line",
        ),
        ("\u{1}binary".into(), &[], "cannot tell the history format"),
    ];
    for (content, args, message) in cases {
        let output = check(&content, args);
        let stderr = text(&output.stderr);
        assert_eq!(output.status.code(), Some(3), "{content:?}: {stderr}");
        assert!(stderr.contains(message), "{content:?}: {stderr}");
        assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    }
}

#[test]
fn usage_errors_exit_64_for_every_subcommand() {
    let subcommands = ["run", "replay", "explore", "check", "report", "serve", "kv"];
    for subcommand in subcommands {
        let output = replisim(&[subcommand, "--no-such-option"]);
        assert_eq!(output.status.code(), Some(64), "{subcommand}: {output:?}");
        assert!(
            text(&output.stderr).contains("--no-such-option"),
            "{output:?}"
        );
        let help = replisim(&[subcommand, "--help"]);
        assert_eq!(help.status.code(), Some(0), "{subcommand}: {help:?}");
    }
    for args in [
        &[][..],
        &["no-such-command"],
        &["check"],
        &["check", "f", "--format", "xml"],
    ] {
        let output = replisim(args);
        assert_eq!(output.status.code(), Some(64), "{args:?}: {output:?}");
    }
    for args in [["--help"], ["--version"]] {
        let output = replisim(&args);
        assert_eq!(output.status.code(), Some(0), "{args:?}: {output:?}");
        assert!(!output.stdout.is_empty());
    }
}
