//! `replisim check`: linearizability of a history recorded elsewhere.

use std::{path::PathBuf, process::ExitCode, time::Duration};

use crate::{
    check::{CheckError, CheckOptions, check_file, linearizable::SearchLimits},
    history::Format,
};

#[derive(clap::Args)]
pub struct CheckArgs {
    file: PathBuf,
    /// porcupine-etcd, porcupine-kv, jepsen-edn or json (default: detect).
    #[arg(long)]
    format: Option<Format>,
    /// Every key's initial value (e.g. 0, as Knossos's test data assumes; default nil).
    #[arg(long)]
    initial: Option<String>,
    /// Give up with `unknown` after this many seconds.
    #[arg(long, default_value_t = 60.0)]
    time_limit: f64,
}

impl CheckArgs {
    pub fn run(self) -> ExitCode {
        let options = CheckOptions {
            format: self.format,
            initial: self.initial,
            limits: SearchLimits {
                time_limit: Some(Duration::from_secs_f64(self.time_limit.max(0.0))),
                ..SearchLimits::default()
            },
        };
        match check_file(&self.file, &options) {
            Ok(report) => {
                println!("{report}");
                ExitCode::from(report.exit_code() as u8)
            }
            Err(error) => {
                eprintln!("error: {error}");
                ExitCode::from(CheckError::EXIT_CODE as u8)
            }
        }
    }
}
