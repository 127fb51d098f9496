//! The `replisim` command-line tool, over any [`Registry`] of systems.
//!
//! The `replisim` binary calls [`main`] with the built-in protocols; a
//! user's crate builds the same tool over its own systems in a few lines,
//! so `run`, `replay FILE`, `replay --record FILE` and `explore` work for
//! its systems exactly as for the built-in ones:
//!
//! ```no_run
//! fn main() -> std::process::ExitCode {
//!     let mut registry = replisim::registry::Registry::new();
//!     // registry.register("my-store", "my-store (what it is)", |spec| ...);
//!     replisim::cli::main(registry)
//! }
//! ```
//!
//! Subcommands: `simulate` (run, replay), `explore` (the seed sweep),
//! `check` (recorded histories), `report` (HTML timelines), `real` (serve, kv). Exit statuses: 0 all
//! good, 1 a property failed, 2 undecided, 3 bad input or a failure to run,
//! [`EX_USAGE`] (64) a command line clap refuses (`--help` and `--version`
//! exit 0).

mod check;
mod explore;
mod real;
mod report;
mod simulate;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::registry::Registry;

#[derive(Parser)]
#[command(
    name = "replisim",
    version,
    about = "Deterministic simulation testing of replication code"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run one simulated scenario of a registered system and check it:
    /// exit 0 every claimed guarantee holds, 1 one failed, 3 bad input.
    Run(simulate::RunArgs),
    /// Run a saved scenario file again and check it: exit 0 every claimed
    /// guarantee holds, 1 one failed, 3 the file is malformed or cannot run.
    Replay(simulate::ReplayArgs),
    /// Sweep random scenarios over registered systems and compare what each
    /// keeps and loses; or merge the JSON summaries of a sweep's shards.
    Explore(explore::ExploreArgs),
    /// Check a recorded history for linearizability: exit 0 linearizable,
    /// 1 not linearizable, 2 unknown, 3 malformed file.
    Check(check::CheckArgs),
    /// Draw a saved scenario (rerun) or a recorded history (--history) as a
    /// self-contained HTML timeline: exit 0 written, 3 bad input.
    Report(report::ReportArgs),
    /// Run one replica of a registered system as a real server (real TCP,
    /// fsync'd files), until killed.
    Serve(real::ServeArgs),
    /// Perform one operation against real replicas started with `serve`:
    /// exit 0 ok, 1 fail, 2 unknown outcome, 3 bad input.
    Kv(real::KvArgs),
}

/// Parses the command line and runs the subcommand over `registry`.
pub fn main(registry: Registry) -> ExitCode {
    // Die quietly when the reader of our output goes away (`| head`), as
    // command-line tools do, instead of panicking on a broken pipe.
    #[cfg(unix)]
    // SAFETY: restoring the default disposition of SIGPIPE before any other
    // thread exists.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => return usage(&error),
    };
    match cli.command {
        Command::Run(args) => args.run(&registry),
        Command::Replay(args) => args.run(&registry),
        Command::Explore(args) => args.run(&registry),
        Command::Check(args) => args.run(),
        Command::Report(args) => args.run(&registry),
        Command::Serve(args) => args.run(&registry),
        Command::Kv(args) => args.run(&registry),
    }
}

/// Exit status for a command line that cannot be parsed (`EX_USAGE` of
/// BSD's `sysexits.h`): 2, clap's own, means "unknown" here.
pub const EX_USAGE: u8 = 64;

/// Prints clap's message: help and version on stdout (exit 0), usage
/// errors on stderr (exit [`EX_USAGE`]).
fn usage(error: &clap::Error) -> ExitCode {
    // Failing to print (a closed stdout or stderr) leaves only the status to say it.
    let _ = error.print();
    if error.use_stderr() {
        ExitCode::from(EX_USAGE)
    } else {
        ExitCode::SUCCESS
    }
}

/// Exit status for bad input or a failure to run.
fn bad_input(message: impl std::fmt::Display) -> ExitCode {
    eprintln!("error: {message}");
    ExitCode::from(3)
}
