//! Running replicas and clients for real: the same [`System`] code as in
//! the simulation, over real TCP ([`TcpNetwork`]) and `std::fs` with fsync
//! ([`RealDisk`]), on a single-threaded tokio runtime (replica code is
//! `!Send`, as inside turmoil).

use std::{path::PathBuf, rc::Rc};

use crate::{
    history::{Completion, Op},
    net::TcpNetwork,
    node::{ClientContext, Clock, Directory, NodeContext, Roles, StateProbe, System},
    storage::RealDisk,
};

/// Why a real replica or client could not run.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("replica id {id} is not in the list of {count} replica addresses")]
    BadId { id: usize, count: usize },
    #[error("cannot start the runtime: {0}")]
    Runtime(#[from] std::io::Error),
    #[error("the replica stopped: {0}")]
    Replica(String),
}

/// Where a real replica lives.
#[derive(Debug, Clone)]
pub struct ReplicaConfig {
    /// This replica's index into `replicas`.
    pub id: usize,
    /// Every replica's `host:port`; this one listens on its own entry's port.
    pub replicas: Vec<String>,
    /// Its data directory (write-ahead log and metadata).
    pub data_dir: PathBuf,
}

fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
}

/// Runs replica `config.id` of `system` until it stops (normally never).
pub fn run_replica(system: Rc<dyn System>, config: ReplicaConfig) -> Result<(), ServeError> {
    let count = config.replicas.len();
    let own = config.replicas.get(config.id).ok_or(ServeError::BadId {
        id: config.id,
        count,
    })?;
    let bind_ip = own
        .rsplit_once(':')
        .map(|(host, _)| host)
        .unwrap_or("127.0.0.1");
    let node = NodeContext {
        id: config.id,
        replicas: config.replicas.clone().into(),
        net: Rc::new(TcpNetwork {
            bind_ip: bind_ip.to_string(),
        }),
        disk: Rc::new(RealDisk::new(config.data_dir)),
        clock: Clock::system(),
        state: StateProbe::default(),
        roles: Roles::default(),
        seed: rand::random(), // determinism-ok: real servers only
    };
    let local = tokio::task::LocalSet::new();
    local
        .block_on(&runtime()?, system.replica(node))
        .map_err(|e| ServeError::Replica(e.to_string()))
}

/// Performs one operation against real replicas, `primary` being the one
/// the caller believes is primary.
pub fn call(
    system: Rc<dyn System>,
    replicas: Vec<String>,
    primary: usize,
    op: &Op,
) -> Result<Completion, ServeError> {
    let directory = Directory::default();
    directory.set_primary(primary);
    let ctx = ClientContext {
        // A fresh client identity per call: replicas deduplicate requests by
        // (client, sequence number), so two calls must never share one.
        process: rand::random(), // determinism-ok: real clients only
        replicas: replicas.into(),
        net: Rc::new(TcpNetwork::default()),
        directory,
    };
    let local = tokio::task::LocalSet::new();
    Ok(local.block_on(
        &runtime()?,
        async move { system.client(ctx).call(op).await },
    ))
}
