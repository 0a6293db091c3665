//! `confd-rs --onetime` against a real etcd: wall time, CPU time and peak RSS of the process, and
//! the CPU time etcd spends serving it (on a shared machine the CPU figures move far less than
//! the wall times, so they show what a change did). Three layouts:
//! - 10,000 keys (1,000 services × 10) rendered by the shipped template, one resource;
//! - 100,000 keys (10,000 services × 10), the same;
//! - 1,000 per-app resources (one conf.d file and one prefix per service) over 10,000 keys.
//!
//! Run: `cargo bench --bench onetime`.

#[path = "../tests/support/mod.rs"]
mod support;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nix::libc;
use support::{per_app_confdir, upstreams_resource, Confdir, Etcd, BIN};

const PER_SERVICE: usize = 10;
const RUNS: usize = 20;

fn main() {
    let etcd = Etcd::start();
    etcd.load_instances(1_000 * PER_SERVICE);
    one_resource(&etcd, "10,000 keys (1,000 services x 10), one resource");
    per_app_resources(&etcd, 1_000);
    drop(etcd);

    let etcd = Etcd::start();
    etcd.load_instances(10_000 * PER_SERVICE);
    one_resource(&etcd, "100,000 keys (10,000 services x 10), one resource");
}

fn one_resource(etcd: &Etcd, title: &str) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dest = tmp.path().join("upstreams.conf");
    let confdir = Confdir::new(&format!("nodes = [\"{}\"]\n", etcd.endpoint));
    confdir.resource("nginx.toml", &upstreams_resource(&dest, ""));
    report(title, etcd, &confdir);
}

/// The origin team's layout: one resource (conf.d file + template) per app, each reading its
/// own prefix.
fn per_app_resources(etcd: &Etcd, apps: usize) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let confdir = per_app_confdir(&etcd.endpoint, apps, tmp.path());
    report(
        &format!("{apps} per-app resources over {} keys", apps * PER_SERVICE),
        etcd,
        &confdir,
    );
}

fn report(title: &str, etcd: &Etcd, confdir: &Confdir) {
    let first = time_run(etcd, confdir);
    let runs: Vec<Run> = (0..RUNS).map(|_| time_run(etcd, confdir)).collect();
    let mut wall: Vec<Duration> = runs.iter().map(|r| r.wall).collect();
    wall.sort();
    let mut etcd_cpu: Vec<Duration> = runs.iter().map(|r| r.etcd_cpu).collect();
    etcd_cpu.sort();
    let mut cpu: Vec<Duration> = runs.iter().map(|r| r.cpu).collect();
    cpu.sort();
    let rss_kib = runs.iter().map(|r| r.rss_kib).chain([first.rss_kib]).max();
    println!("onetime, {title}");
    println!(
        "  first run (render + write):   {:>7.1} ms  (etcd CPU {:.0} ms)",
        ms(first.wall),
        ms(first.etcd_cpu)
    );
    println!(
        "  unchanged runs (n={RUNS}):      min {:.1} ms  median {:.1} ms  max {:.1} ms",
        ms(wall[0]),
        ms(wall[RUNS / 2]),
        ms(wall[RUNS - 1])
    );
    println!(
        "  confd-rs CPU per run:          median {:.1} ms  min {:.1} ms",
        ms(cpu[RUNS / 2]),
        ms(cpu[0])
    );
    println!(
        "  etcd CPU per run:              median {:.0} ms  max {:.0} ms (10 ms ticks)",
        ms(etcd_cpu[RUNS / 2]),
        ms(etcd_cpu[RUNS - 1])
    );
    println!(
        "  peak RSS:                      {:>7.1} MB",
        rss_kib.unwrap_or(0) as f64 / 1024.0
    );
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

struct Run {
    wall: Duration,
    /// User + system CPU of the confd-rs process, all its threads.
    cpu: Duration,
    rss_kib: i64,
    etcd_cpu: Duration,
}

/// One `confd-rs --onetime`: wall time, CPU time and peak RSS (KiB) measured by wait4 on that
/// child alone, and the CPU time etcd used meanwhile.
#[allow(clippy::zombie_processes)] // reaped by wait4, which clippy does not see
fn time_run(etcd: &Etcd, confdir: &Confdir) -> Run {
    let etcd_before = etcd.cpu_time();
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
    let wall = start.elapsed();
    assert!(
        pid > 0 && libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "confd-rs --onetime failed"
    );
    let tv =
        |t: libc::timeval| Duration::from_micros(t.tv_sec as u64 * 1_000_000 + t.tv_usec as u64);
    Run {
        wall,
        cpu: tv(usage.ru_utime) + tv(usage.ru_stime),
        rss_kib: usage.ru_maxrss,
        etcd_cpu: etcd.cpu_time().saturating_sub(etcd_before),
    }
}
