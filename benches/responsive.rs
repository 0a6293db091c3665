//! The daemon stays responsive while it works: `/healthz` latency while passes over 100,000 keys
//! run back to back, and how long SIGTERM takes to end the daemon in the middle of a
//! 10,000-key burst. Run: `cargo bench --bench responsive`.

#[path = "../tests/support/mod.rs"]
mod support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use support::{free_port, http_get, upstreams_resource, wait_for, Confdir, Etcd};

const LONG: Duration = Duration::from_secs(60);

fn main() {
    healthz_during_passes();
    sigterm_during_a_burst();
}

fn healthz_during_passes() {
    let etcd = Etcd::start();
    etcd.load_instances(100_000);
    let tmp = tempfile::tempdir().expect("tempdir");
    let dest = tmp.path().join("upstreams.conf");
    let confdir = Confdir::new(&format!("nodes = [\"{}\"]\n", etcd.endpoint));
    confdir.resource("nginx.toml", &upstreams_resource(&dest, ""));
    let port = free_port();
    let d = confdir.daemon(&["--metrics-addr", &format!("127.0.0.1:{port}")]);
    wait_for("the first render", LONG, || {
        std::fs::read_to_string(&dest)
            .ok()?
            .contains("svc9999_PRE")
            .then_some(())
    });
    // Changes every 100 ms: each one is a pass over all 100,000 keys.
    let done = Arc::new(AtomicBool::new(false));
    let writer = {
        let (done, endpoint) = (done.clone(), etcd.endpoint.clone());
        std::thread::spawn(move || {
            let mut i = 0;
            while !done.load(Ordering::SeqCst) {
                i += 1;
                let ip = format!("10.250.{}.{}", i / 250 % 250, i % 250);
                let _ = std::process::Command::new("etcdctl")
                    .args(["--endpoints", &endpoint, "put"])
                    .arg(format!("/svc0000_PRE/{ip}-80"))
                    .arg(format!("{ip}:80"))
                    .output();
                std::thread::sleep(Duration::from_millis(100));
            }
        })
    };
    let mut times = Vec::new();
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(10) {
        let t = Instant::now();
        http_get(port, "/healthz").expect("/healthz answers");
        times.push(t.elapsed());
        std::thread::sleep(Duration::from_millis(5));
    }
    done.store(true, Ordering::SeqCst);
    writer.join().expect("writer");
    times.sort();
    let passes = d.log().matches("updated").count();
    let pct = |p: usize| times[(times.len() * p / 100).min(times.len() - 1)].as_secs_f64() * 1000.0;
    println!(
        "/healthz during {passes} passes over 100,000 keys (n={}): p50 {:.2} ms  p99 {:.2} ms  max {:.2} ms",
        times.len(),
        pct(50),
        pct(99),
        times[times.len() - 1].as_secs_f64() * 1000.0
    );
}

fn sigterm_during_a_burst() {
    let etcd = Etcd::start();
    let tmp = tempfile::tempdir().expect("tempdir");
    let dest = tmp.path().join("upstreams.conf");
    let confdir = Confdir::new(&format!("nodes = [\"{}\"]\n", etcd.endpoint));
    // A check per pass, so passes take a while and the store events pile up behind them.
    confdir.resource(
        "nginx.toml",
        &upstreams_resource(&dest, "check_cmd = \"sleep 0.1\"\n"),
    );
    let mut results = Vec::new();
    for _ in 0..5 {
        let mut d = confdir.daemon(&[]);
        wait_for("the first render", LONG, || dest.exists().then_some(()));
        let burst = {
            let endpoint = etcd.endpoint.clone();
            std::thread::spawn(move || load(&endpoint, 10_000))
        };
        std::thread::sleep(Duration::from_millis(300));
        let t = Instant::now();
        d.signal("TERM");
        let code = d.wait_exit(LONG);
        results.push((t.elapsed(), code));
        burst.join().expect("burst");
        std::fs::remove_file(&dest).expect("rm");
    }
    let worst = results.iter().map(|r| r.0).max().unwrap_or_default();
    println!(
        "SIGTERM during a 10,000-key burst: exit after {} (worst {:.0} ms), exit codes {:?}",
        results
            .iter()
            .map(|r| format!("{:.0} ms", r.0.as_secs_f64() * 1000.0))
            .collect::<Vec<_>>()
            .join(", "),
        worst.as_secs_f64() * 1000.0,
        results.iter().map(|r| r.1).collect::<Vec<_>>()
    );
}

/// `n` puts, one per request, as separate registrations would arrive.
fn load(endpoint: &str, n: usize) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let mut client = etcd_client::Client::connect([endpoint], None)
            .await
            .expect("connect");
        for i in 0..n {
            let ip = format!("10.1.{}.{}", i / 250 % 250, i % 250 + 1);
            let _ = client
                .put(format!("/burst_PRE/{ip}-{i}"), format!("{ip}:80"), None)
                .await;
        }
    });
}
