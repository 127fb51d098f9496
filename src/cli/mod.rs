//! The subcommands: `simulate` (run, replay), `explore` (the seed sweep),
//! `check` (recorded histories), `real` (serve, kv). Exit statuses: 0 all
//! good, 1 a property failed, 2 undecided, 3 bad input or a failure to run.

pub mod check;
pub mod explore;
pub mod real;
pub mod simulate;

use std::process::ExitCode;

/// Exit status for bad input or a failure to run.
pub fn bad_input(message: impl std::fmt::Display) -> ExitCode {
    eprintln!("error: {message}");
    ExitCode::from(3)
}
