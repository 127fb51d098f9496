//! Harness overhead: runs per second and simulated-to-wall time for the
//! standard scenario (3 replicas, `sync`, one client doing 200 writes,
//! 1–5 ms link latency, 1 ms tick), next to a bare turmoil program that
//! exchanges the same messages with no storage, history or checks.
//!
//! `cargo bench --bench harness` runs `BENCH_ROUNDS` rounds (default 15),
//! each timing `BENCH_RUNS` runs (default 5) of the bare program, then as
//! many of the harness, and ends with `harness/bare: X.XX`, the median over
//! rounds of the harness's wall time per run over the bare program's.
//! `BENCH_ONLY=bare` or `BENCH_ONLY=harness` runs one side alone, for
//! profiling it (`perf stat`, `valgrind --tool=callgrind`).
//! Short interleaved rounds and the median keep the ratio steady on a
//! shared, noisy machine; no time is asserted. The harness's runs include recording the
//! history and the trace digest, not the checkers (they are benchmarked
//! apart).

use std::{
    hint::black_box,
    time::{Duration, Instant},
};

use replisim::{registry::Registry, replication, sim::Scenario, workload::Mix};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const WRITES: usize = 200;

fn standard_scenario(seed: u64) -> Scenario {
    let mut scenario = Scenario::new("sync", seed);
    scenario.clients = 1;
    scenario.workload.ops_per_client = WRITES;
    scenario.workload.think_time = Duration::ZERO;
    scenario.workload.mix = Mix::new([("write", 1)]);
    scenario.limits.quiesce = Duration::from_millis(100);
    scenario
}

/// One bare simulation: client -> primary -> both backups -> primary ->
/// client for every write, over turmoil TCP with 4-byte length framing.
fn bare_run(seed: u64) -> Duration {
    let mut sim = turmoil::Builder::new()
        .rng_seed(seed)
        .tick_duration(Duration::from_millis(1))
        .min_message_latency(Duration::from_millis(1))
        .max_message_latency(Duration::from_millis(5))
        .build();
    for backup in ["backup-1", "backup-2"] {
        sim.host(backup, || async {
            let listener = turmoil::net::TcpListener::bind("0.0.0.0:7000").await?;
            let (mut stream, _) = listener.accept().await?;
            while let Ok(frame) = read_frame(&mut stream).await {
                write_frame(&mut stream, &frame[..8.min(frame.len())]).await?;
            }
            Ok(())
        });
    }
    sim.host("primary", || async {
        let listener = turmoil::net::TcpListener::bind("0.0.0.0:7000").await?;
        let mut b1 = turmoil::net::TcpStream::connect("backup-1:7000").await?;
        let mut b2 = turmoil::net::TcpStream::connect("backup-2:7000").await?;
        let (mut client, _) = listener.accept().await?;
        while let Ok(frame) = read_frame(&mut client).await {
            write_frame(&mut b1, &frame).await?;
            write_frame(&mut b2, &frame).await?;
            read_frame(&mut b1).await?;
            read_frame(&mut b2).await?;
            write_frame(&mut client, b"ok").await?;
        }
        Ok(())
    });
    sim.client("client", async {
        let mut primary = turmoil::net::TcpStream::connect("primary:7000").await?;
        for i in 0..WRITES {
            let request = format!(r#"{{"id":{i},"body":{{"Client":{{"op":{{"f":"write","key":"k0","value":"c0-{i}"}}}}}}}}"#);
            write_frame(&mut primary, request.as_bytes()).await?;
            read_frame(&mut primary).await?;
        }
        Ok(())
    });
    sim.run().expect("bare simulation");
    sim.elapsed()
}

async fn read_frame(stream: &mut turmoil::net::TcpStream) -> std::io::Result<Vec<u8>> {
    let len = stream.read_u32().await? as usize;
    let mut frame = vec![0; len];
    stream.read_exact(&mut frame).await?;
    Ok(frame)
}

async fn write_frame(stream: &mut turmoil::net::TcpStream, frame: &[u8]) -> std::io::Result<()> {
    stream.write_u32(frame.len() as u32).await?;
    stream.write_all(frame).await
}

/// Runs `f` for `runs` seeds; returns wall time per run and simulated / wall time.
fn measure(runs: u64, mut f: impl FnMut(u64) -> Duration) -> (Duration, f64) {
    let started = Instant::now();
    let simulated: Duration = (0..runs).map(|seed| black_box(f(seed))).sum();
    let wall = started.elapsed();
    (
        wall / runs as u32,
        simulated.as_secs_f64() / wall.as_secs_f64(),
    )
}

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(default)
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    match values.len() % 2 {
        1 => values[mid],
        _ => (values[mid - 1] + values[mid]) / 2.0,
    }
}

fn main() {
    let rounds = env("BENCH_ROUNDS", 15).max(1);
    let runs = env("BENCH_RUNS", 5).max(1);
    let registry: Registry = replication::registry();
    let only = std::env::var("BENCH_ONLY").ok();
    let harness_run = |seed| {
        let outcome = registry
            .run(&standard_scenario(seed))
            .expect("standard scenario runs");
        Duration::from_millis(outcome.stats.simulated_ms)
    };
    // The checkers are not the harness: check one run outside the timing
    // (it also warms both programs up).
    let outcome = registry
        .run(&standard_scenario(0))
        .expect("standard scenario runs");
    assert!(outcome.verdicts().passed(), "{}", outcome.verdicts());
    bare_run(0);
    match only.as_deref() {
        Some("bare") => return println!("bare {:?}/run", measure(rounds * runs, bare_run).0),
        Some("harness") => {
            return println!("harness {:?}/run", measure(rounds * runs, harness_run).0);
        }
        _ => {}
    }
    println!(
        "standard scenario: 3 replicas, sync, 1 client x {WRITES} writes, 1-5 ms latency, 1 ms tick; {rounds} rounds of {runs} runs each"
    );
    let mut ratios = Vec::new();
    for round in 1..=rounds {
        // Interleaved, so a change of load on a shared machine strikes both.
        let (bare, bare_speed) = measure(runs, bare_run);
        let (harness, speed) = measure(runs, harness_run);
        let ratio = harness.as_secs_f64() / bare.as_secs_f64();
        println!(
            "round {round}: bare {:6.2} ms/run ({bare_speed:5.1}x simulated/wall), harness {:6.2} ms/run ({speed:5.1}x), harness/bare {ratio:.2}",
            bare.as_secs_f64() * 1e3,
            harness.as_secs_f64() * 1e3,
        );
        ratios.push(ratio);
    }
    // The median over rounds of the harness's wall time per run over the
    // bare program's.
    println!("harness/bare: {:.2}", median(ratios));
}
