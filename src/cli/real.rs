//! `replisim serve` and `replisim kv`: the built-in systems on real sockets
//! and disks.

use std::{path::PathBuf, process::ExitCode};

use crate::{
    history::{Completion, Op},
    registry::Registry,
    serve::{self, ReplicaConfig},
};
use tracing_subscriber::EnvFilter;

use super::bad_input;

#[derive(clap::Args)]
pub struct ServeArgs {
    /// The system, as registered (the built-in ones: sync, semi-sync:K, async,
    /// primary-backup, primary-backup:fenced).
    #[arg(long, visible_alias = "system")]
    protocol: String,
    /// This replica's index in --replicas.
    #[arg(long)]
    id: usize,
    /// Every replica's host:port, comma-separated, in id order.
    #[arg(long, value_delimiter = ',', required = true)]
    replicas: Vec<String>,
    /// Data directory for the write-ahead log.
    #[arg(long)]
    data: PathBuf,
}

impl ServeArgs {
    pub fn run(self, registry: &Registry) -> ExitCode {
        tracing_subscriber::fmt()
            .with_env_filter(
                EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
            )
            .init();
        let system = match registry.build(&self.protocol, &serde_json::Value::Null, None) {
            Ok(system) => system,
            Err(error) => return bad_input(error),
        };
        let config = ReplicaConfig {
            id: self.id,
            replicas: self.replicas,
            data_dir: self.data,
        };
        match serve::run_replica(system, config) {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => bad_input(error),
        }
    }
}

#[derive(clap::Args)]
pub struct KvArgs {
    /// The system, as registered (the built-in ones: sync, semi-sync:K, async,
    /// primary-backup, primary-backup:fenced).
    #[arg(long, visible_alias = "system")]
    protocol: String,
    /// Every replica's host:port, comma-separated, in id order.
    #[arg(long, value_delimiter = ',', required = true)]
    replicas: Vec<String>,
    /// The replica to send it to (the primary; with automatic failover, the
    /// first guess: the client follows redirects).
    #[arg(long, default_value_t = 0)]
    primary: usize,
    #[command(subcommand)]
    op: KvOp,
}

#[derive(clap::Subcommand)]
enum KvOp {
    Read {
        key: String,
    },
    Write {
        key: String,
        value: String,
    },
    Append {
        key: String,
        value: String,
    },
    Cas {
        key: String,
        from: String,
        to: String,
    },
}

impl From<KvOp> for Op {
    fn from(op: KvOp) -> Op {
        match op {
            KvOp::Read { key } => Op::Read { key, value: None },
            KvOp::Write { key, value } => Op::Write { key, value },
            KvOp::Append { key, value } => Op::Append { key, value },
            KvOp::Cas { key, from, to } => Op::Cas { key, from, to },
        }
    }
}

impl KvArgs {
    pub fn run(self, registry: &Registry) -> ExitCode {
        if self.primary >= self.replicas.len() {
            return bad_input(format!(
                "--primary {} is not one of the {} replicas",
                self.primary,
                self.replicas.len()
            ));
        }
        let system = match registry.build(&self.protocol, &serde_json::Value::Null, None) {
            Ok(system) => system,
            Err(error) => return bad_input(error),
        };
        match serve::call(system, self.replicas, self.primary, &self.op.into()) {
            Ok(Completion::Ok(value)) => {
                println!("ok {}", value.as_deref().unwrap_or(""));
                ExitCode::SUCCESS
            }
            Ok(Completion::Siblings(values)) => {
                println!("ok {} (siblings)", values.join(" "));
                ExitCode::SUCCESS
            }
            Ok(Completion::Fail(reason)) => {
                println!("fail {reason}");
                ExitCode::FAILURE
            }
            Ok(Completion::Info(reason)) => {
                println!("info {reason}");
                ExitCode::from(2)
            }
            Err(error) => bad_input(error),
        }
    }
}
