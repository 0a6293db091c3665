//! `confd-rs --onetime` over 10,000 instance keys (1,000 services × 10) in a real etcd:
//! wall time and peak RSS of the process. Run: `cargo bench --bench onetime`.

#[path = "../tests/support/mod.rs"]
mod support;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nix::libc;
use support::{upstreams_resource, Confdir, Etcd, BIN};

const SERVICES: usize = 1000;
const PER_SERVICE: usize = 10;
const RUNS: usize = 20;

fn main() {
    let etcd = Etcd::start();
    etcd.load_instances(SERVICES * PER_SERVICE);
    let tmp = tempfile::tempdir().expect("tempdir");
    let dest = tmp.path().join("upstreams.conf");
    let confdir = Confdir::new(&format!("nodes = [\"{}\"]\n", etcd.endpoint));
    confdir.resource("nginx.toml", &upstreams_resource(&dest, ""));

    let (first, first_rss) = time_run(&confdir);
    let lines = std::fs::read_to_string(&dest)
        .expect("dest")
        .lines()
        .count();
    let runs: Vec<(Duration, i64)> = (0..RUNS).map(|_| time_run(&confdir)).collect();
    let mut unchanged: Vec<Duration> = runs.iter().map(|r| r.0).collect();
    unchanged.sort();
    let rss_kib = runs
        .iter()
        .map(|r| r.1)
        .chain([first_rss])
        .max()
        .unwrap_or(0);

    println!(
        "onetime over {} keys ({SERVICES} services x {PER_SERVICE}), {lines} lines rendered",
        SERVICES * PER_SERVICE
    );
    println!("  first run (render + write):   {:>7.1} ms", ms(first));
    println!(
        "  unchanged runs (n={RUNS}):      min {:.1} ms  median {:.1} ms  max {:.1} ms",
        ms(unchanged[0]),
        ms(unchanged[RUNS / 2]),
        ms(unchanged[RUNS - 1])
    );
    println!(
        "  peak RSS:                      {:>7.1} MB",
        rss_kib as f64 / 1024.0
    );
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Wall time and peak RSS (KiB) of one `confd-rs --onetime`, measured by wait4 on that child alone.
#[allow(clippy::zombie_processes)] // reaped by wait4, which clippy does not see
fn time_run(confdir: &Confdir) -> (Duration, i64) {
    let start = Instant::now();
    let child = Command::new(BIN)
        .arg("--confdir")
        .arg(confdir.path())
        .arg("--onetime")
        .stderr(Stdio::null())
        .spawn()
        .expect("run");
    let mut status = 0;
    // SAFETY: plain syscall on our own child's pid with valid out-pointers.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let pid = unsafe { libc::wait4(child.id() as libc::pid_t, &mut status, 0, &mut usage) };
    let took = start.elapsed();
    assert!(
        pid > 0 && libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "confd-rs --onetime failed"
    );
    (took, usage.ru_maxrss)
}
