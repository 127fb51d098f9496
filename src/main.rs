//! The `replisim` command-line tool: argument parsing and dispatch. Each
//! subcommand lives in its own module under `cli/`.

mod cli;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

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
    /// Run one simulated scenario of a built-in protocol and check it:
    /// exit 0 every check holds, 1 one failed, 3 bad input.
    Run(cli::simulate::RunArgs),
    /// Run a saved scenario file again and check it: exit 0 every check
    /// holds, 1 a check failed, 3 the file is malformed or cannot run.
    Replay(cli::simulate::ReplayArgs),
    /// Sweep random scenarios over the built-in protocols and compare what
    /// each keeps and loses.
    Explore(cli::explore::ExploreArgs),
    /// Check a recorded history for linearizability: exit 0 linearizable,
    /// 1 not linearizable, 2 unknown, 3 malformed file.
    Check(cli::check::CheckArgs),
    /// Run one replica of a built-in protocol as a real server (real TCP,
    /// fsync'd files), until killed.
    Serve(cli::real::ServeArgs),
    /// Perform one operation against real replicas started with `serve`:
    /// exit 0 ok, 1 fail, 2 unknown outcome, 3 bad input.
    Kv(cli::real::KvArgs),
}

fn main() -> ExitCode {
    // Die quietly when the reader of our output goes away (`| head`), as
    // command-line tools do, instead of panicking on a broken pipe.
    #[cfg(unix)]
    // SAFETY: restoring the default disposition of SIGPIPE before any other
    // thread exists.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    match Cli::parse().command {
        Command::Run(args) => args.run(),
        Command::Replay(args) => args.run(),
        Command::Explore(args) => args.run(),
        Command::Check(args) => args.run(),
        Command::Serve(args) => args.run(),
        Command::Kv(args) => args.run(),
    }
}
