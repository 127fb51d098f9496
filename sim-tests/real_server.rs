//! The same protocols over real sockets and real fsync'd files: three
//! `replisim serve` processes on loopback, a replica killed with SIGKILL in
//! the middle of the run, and nothing acknowledged lost (the four-stage
//! engine's `sync`, and Raft); with `primary-backup:fenced`, the primary
//! killed for good and a backup taking over by itself; with `crdt-counter`,
//! a replica's acknowledged adds surviving its SIGKILL and reaching the
//! others by gossip; with `dynamo:3/2/2`, concurrent writes kept as
//! siblings, and writes acknowledged by two nodes while the third is
//! killed reading back.

use std::{
    net::TcpListener,
    process::{Child, Command, Stdio},
    thread::sleep,
    time::Duration,
};

use replisim::{
    history::{Completion, Op},
    replication, serve,
};

struct Cluster {
    protocol: &'static str,
    replicas: Vec<String>,
    data: tempfile::TempDir,
    processes: Vec<Option<Child>>,
}

impl Cluster {
    fn start(protocol: &'static str, n: usize) -> Cluster {
        let replicas = (0..n)
            .map(|_| {
                let port = TcpListener::bind("127.0.0.1:0")
                    .unwrap()
                    .local_addr()
                    .unwrap()
                    .port();
                format!("127.0.0.1:{port}")
            })
            .collect();
        let mut cluster = Cluster {
            protocol,
            replicas,
            data: tempfile::tempdir().unwrap(),
            processes: (0..n).map(|_| None).collect(),
        };
        for id in 0..n {
            cluster.spawn(id);
        }
        cluster
    }

    fn spawn(&mut self, id: usize) {
        let child = Command::new(env!("CARGO_BIN_EXE_replisim"))
            .args([
                "serve",
                "--protocol",
                self.protocol,
                "--id",
                &id.to_string(),
            ])
            .arg("--replicas")
            .arg(self.replicas.join(","))
            .arg("--data")
            .arg(self.data.path().join(format!("replica-{id}")))
            .env("RUST_LOG", "error")
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        self.processes[id] = Some(child);
    }

    fn kill(&mut self, id: usize) {
        if let Some(mut child) = self.processes[id].take() {
            child.kill().unwrap();
            child.wait().unwrap();
        }
    }

    /// Performs `op`, retrying while the servers are still starting.
    fn call(&self, op: Op) -> Completion {
        let system = replication::registry()
            .build(self.protocol, &serde_json::Value::Null, None)
            .unwrap();
        serve::call(system, self.replicas.clone(), 0, &op).unwrap()
    }

    fn call_until_ok(&self, op: Op) -> Completion {
        for _ in 0..100 {
            match self.call(op.clone()) {
                Completion::Ok(value) => return Completion::Ok(value),
                _ => sleep(Duration::from_millis(100)),
            }
        }
        panic!("{op:?} never succeeded");
    }

    /// Writes `k{i}` = `v{i}` for each `i` once; the acknowledged ones.
    fn write_each(&self, keys: std::ops::RangeInclusive<usize>) -> Vec<(String, String)> {
        keys.map(|i| (format!("k{i}"), format!("v{i}")))
            .filter(|(key, value)| self.call(write(key, value)) == Completion::Ok(None))
            .collect()
    }

    /// Every acknowledged write reads back.
    fn assert_readable(&self, acknowledged: Vec<(String, String)>) {
        for (key, value) in acknowledged {
            assert_eq!(
                self.call_until_ok(read(&key)),
                Completion::Ok(Some(value)),
                "{key}"
            );
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for id in 0..self.processes.len() {
            self.kill(id);
        }
    }
}

fn write(key: &str, value: &str) -> Op {
    Op::Write {
        key: key.into(),
        value: value.into(),
    }
}

fn read(key: &str) -> Op {
    Op::Read {
        key: key.into(),
        value: None,
    }
}

#[test]
fn real_cluster_keeps_acknowledged_writes_across_sigkill() {
    let mut cluster = Cluster::start("sync", 3);
    cluster.call_until_ok(write("k", "v0"));
    let mut acknowledged = cluster.write_each(1..=10);
    // The primary dies without warning; it restarts from its log.
    cluster.kill(0);
    cluster.spawn(0);
    acknowledged.extend(cluster.write_each(11..=20));
    assert!(
        acknowledged.len() >= 10,
        "too few writes succeeded: {acknowledged:?}"
    );

    // A backup down: synchronous replication cannot complete writes.
    cluster.kill(2);
    assert!(!matches!(
        cluster.call(write("blocked", "x")),
        Completion::Ok(_)
    ));
    cluster.spawn(2);
    cluster.call_until_ok(write("after", "y"));
    cluster.assert_readable(acknowledged);
}

/// Automatic failover for real: the primary of `primary-backup:fenced` is
/// killed with SIGKILL and never comes back; a backup notices, wins a view
/// change and serves, with every acknowledged write still there. Clients
/// keep naming the dead replica 0 as primary and follow the redirects.
#[test]
fn real_fenced_cluster_fails_over_after_sigkill_of_the_primary() {
    let mut cluster = Cluster::start("primary-backup:fenced", 3);
    cluster.call_until_ok(write("k", "v0"));
    let mut acknowledged = cluster.write_each(1..=10);
    assert!(
        acknowledged.len() >= 5,
        "too few writes succeeded: {acknowledged:?}"
    );
    cluster.kill(0);
    for i in 11..=15 {
        let (key, value) = (format!("k{i}"), format!("v{i}"));
        cluster.call_until_ok(write(&key, &value));
        acknowledged.push((key, value));
    }
    cluster.assert_readable(acknowledged);
}

/// Raft on real sockets: clients find the leader themselves; killing
/// replicas one at a time loses nothing acknowledged; with two of three
/// down no write is acknowledged, and with them back writes go on.
#[test]
fn real_raft_cluster_keeps_acknowledged_writes_across_sigkill() {
    let mut cluster = Cluster::start("raft", 3);
    cluster.call_until_ok(write("k", "v0"));
    let mut acknowledged = Vec::new();
    for i in 1..=30 {
        let value = format!("v{i}");
        if cluster.call(write(&format!("k{i}"), &value)) == Completion::Ok(None) {
            acknowledged.push((format!("k{i}"), value));
        }
        if i % 10 == 0 {
            // Whoever leads now may be the one that dies.
            let victim = i / 10 - 1;
            cluster.kill(victim);
            cluster.spawn(victim);
        }
    }
    assert!(
        acknowledged.len() >= 10,
        "too few writes succeeded: {acknowledged:?}"
    );

    cluster.kill(1);
    cluster.kill(2);
    assert!(!matches!(
        cluster.call(write("minority", "x")),
        Completion::Ok(_)
    ));
    cluster.spawn(1);
    cluster.spawn(2);
    cluster.call_until_ok(write("after", "y"));

    cluster.assert_readable(acknowledged);
}

/// CRDT replication for real: adds acknowledged by replica 0 (fsync'd
/// before the answer) survive its SIGKILL and restart, and reach the other
/// replicas by gossip: once replica 0 is gone for good, replica 1 reads
/// their sum.
#[test]
fn real_crdt_counter_recovers_and_gossips_across_sigkill() {
    let mut cluster = Cluster::start("crdt-counter", 3);
    let add = |amount| Op::Add {
        key: "c".into(),
        amount,
    };
    cluster.call_until_ok(add(1));
    let mut sum = 1;
    for amount in [5, -2, 7] {
        assert_eq!(cluster.call(add(amount)), Completion::Ok(None));
        sum += amount;
    }
    cluster.kill(0);
    cluster.spawn(0);
    cluster.call_until_ok(add(10));
    sum += 10;
    sleep(Duration::from_millis(500));
    cluster.kill(0);
    let expected = Completion::Ok(Some(sum.to_string()));
    let read = (0..50).map(|_| cluster.call(read("c"))).find(|read| {
        sleep(Duration::from_millis(100));
        *read == expected
    });
    assert_eq!(read, Some(expected));
}

/// `dynamo:3/2/2`: two one-shot clients (each call is a new client, with
/// no context) write one key, so both values are kept as siblings and read
/// together; with one node killed, writes still reach W = 2 and read back.
#[test]
fn real_dynamo_keeps_concurrent_writes_as_siblings_and_survives_a_sigkill() {
    let mut cluster = Cluster::start("dynamo:3/2/2", 3);
    cluster.call_until_ok(write("k", "a"));
    cluster.call_until_ok(write("k", "b"));
    assert_eq!(
        cluster.call(read("k")),
        Completion::Siblings(vec!["a".into(), "b".into()])
    );
    cluster.kill(2);
    let acknowledged = cluster.write_each(1..=5);
    assert!(
        !acknowledged.is_empty(),
        "no write acknowledged by two nodes"
    );
    cluster.assert_readable(acknowledged);
}
