//! `confd-rs register` against a real etcd: start → key registered, and SIGTERM → key deleted
//! (seen by an etcd watch). Run: `cargo bench --bench register`.

#[path = "../tests/support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use etcd_client::{Client, EventType, WatchOptions};
use support::{Daemon, Etcd};

const RUNS: usize = 20;

fn main() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let etcd = Etcd::start();
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut client = rt
        .block_on(Client::connect([etcd.endpoint.as_str()], None))
        .expect("connect");
    let (mut to_register, mut to_gone) = (Vec::new(), Vec::new());
    for i in 0..RUNS {
        let key = format!("/bench_PRE/10.0.0.1-{}", 1000 + i);
        let mut stream = rt
            .block_on(client.watch(key.as_str(), Some(WatchOptions::new())))
            .expect("watch");
        let start = Instant::now();
        let agent = Daemon::start(
            &[
                "register",
                "--node",
                &etcd.endpoint,
                "--key",
                &key,
                "--value",
                "10.0.0.1:80",
                "--ttl",
                "10",
            ],
            tmp.path().join(format!("agent{i}.log")),
        );
        to_register.push(rt.block_on(next_event(&mut stream, EventType::Put, start)));
        let start = Instant::now();
        agent.signal("TERM");
        to_gone.push(rt.block_on(next_event(&mut stream, EventType::Delete, start)));
        drop(agent);
    }
    to_register.sort();
    to_gone.sort();
    let ms =
        |v: &[Duration], p: usize| v[(v.len() * p / 100).min(v.len() - 1)].as_secs_f64() * 1000.0;
    println!("register agent (n={RUNS}, ttl 10 s):");
    println!(
        "  process start → key put:     p50 {:.1} ms  p99 {:.1} ms",
        ms(&to_register, 50),
        ms(&to_register, 99)
    );
    println!(
        "  SIGTERM → key deleted:       p50 {:.1} ms  p99 {:.1} ms",
        ms(&to_gone, 50),
        ms(&to_gone, 99)
    );
}

async fn next_event(
    stream: &mut etcd_client::WatchStream,
    kind: EventType,
    start: Instant,
) -> Duration {
    loop {
        let resp = stream.message().await.expect("watch").expect("watch open");
        if resp.events().iter().any(|e| e.event_type() == kind) {
            return start.elapsed();
        }
    }
}
