//! The watch daemon against a real etcd and nginx: put → dest file and put → nginx latency,
//! reloads per 50-put burst, and idle CPU and RSS at 10, 1,000 and 10,000 instance keys, and with
//! 1,000 per-app resources (one template each).
//! Run: `cargo bench --bench daemon` (BENCH_IDLE_SECS shortens the 60 s idle measurement).

#[path = "../tests/support/mod.rs"]
mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use etcd_client::Client;
use support::{
    http_get, per_app_confdir, upstreams_resource, wait_for, Backend, Confdir, Etcd, Nginx,
};

const LONG: Duration = Duration::from_secs(20);

fn main() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    latency_and_bursts(&rt);
    let idle_secs: u64 = std::env::var("BENCH_IDLE_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    for keys in [10, 1_000, 10_000] {
        idle(&rt, keys, idle_secs);
    }
    idle_per_app(1_000, idle_secs);
}

struct Rig {
    etcd: Etcd,
    client: Client,
    confdir: Confdir,
    dest: std::path::PathBuf,
    reloads: std::path::PathBuf,
    _tmp: tempfile::TempDir,
}

/// etcd, and a confdir rendering the shipped template into `nginx`'s upstreams (or a plain file).
fn rig(rt: &tokio::runtime::Runtime, nginx: Option<&Path>) -> Rig {
    let etcd = Etcd::start();
    let client = rt
        .block_on(Client::connect([etcd.endpoint.as_str()], None))
        .expect("connect");
    let tmp = tempfile::tempdir().expect("tempdir");
    let reloads = tmp.path().join("reloads.log");
    let (dest, commands) = match nginx {
        Some(prefix) => {
            let (check, reload) = Nginx::commands(prefix);
            let cmds = format!(
                "check_cmd = \"{check}\"\nreload_cmd = \"echo x >> {} && {reload}\"\n",
                reloads.display()
            );
            (prefix.join("conf.d/upstreams.conf"), cmds)
        }
        None => (
            tmp.path().join("upstreams.conf"),
            format!("reload_cmd = \"echo x >> {}\"\n", reloads.display()),
        ),
    };
    let confdir = Confdir::new(&format!("nodes = [\"{}\"]\n", etcd.endpoint));
    confdir.resource("nginx.toml", &upstreams_resource(&dest, &commands));
    Rig {
        etcd,
        client,
        confdir,
        dest,
        reloads,
        _tmp: tmp,
    }
}

fn put(rt: &tokio::runtime::Runtime, client: &mut Client, key: &str, value: &str) {
    rt.block_on(client.put(key, value, None)).expect("put");
}

fn contains(path: &Path, needle: &str) -> bool {
    std::fs::read_to_string(path).is_ok_and(|t| t.contains(needle))
}

/// Polls tightly (0.2 ms) so the figure is the daemon's, not the poll's.
fn time_until(mut cond: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < LONG, "condition never met");
        std::thread::sleep(Duration::from_micros(200));
    }
    start.elapsed()
}

fn percentile(sorted: &[Duration], p: usize) -> f64 {
    sorted[(sorted.len() * p / 100).min(sorted.len() - 1)].as_secs_f64() * 1000.0
}

fn latency_and_bursts(rt: &tokio::runtime::Runtime) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (prefix, port) = Nginx::configure(tmp.path());
    std::fs::write(prefix.join("conf.d/upstreams.conf"), "").expect("empty upstreams");
    let _nginx = Nginx::start(&prefix, port);
    let mut r = rig(rt, Some(&prefix));
    let _daemon = r.confdir.daemon(&[]);
    wait_for("the first render", LONG, || {
        contains(&r.dest, "# Generated").then_some(())
    });

    // Lone puts, spaced beyond the coalescing window: put acknowledged → dest file holds it.
    let mut to_file = Vec::new();
    for i in 0..60 {
        let addr = format!("10.1.0.{}:80", i + 1);
        std::thread::sleep(Duration::from_millis(250));
        let start = Instant::now();
        put(
            rt,
            &mut r.client,
            &format!("/lat_PRE/10.1.0.{}-80", i + 1),
            &addr,
        );
        time_until(|| contains(&r.dest, &addr));
        to_file.push(start.elapsed());
    }
    to_file.sort();

    // A new service with a live backend: put acknowledged → nginx answers from that backend.
    let mut to_nginx = Vec::new();
    for i in 0..20 {
        let backend = Backend::start();
        let svc = format!("new{i}_PRE");
        std::thread::sleep(Duration::from_millis(250));
        let start = Instant::now();
        put(
            rt,
            &mut r.client,
            &format!("/{svc}/127.0.0.1-{}", backend.port),
            &backend.addr(),
        );
        time_until(|| http_get(port, &format!("/{svc}/")) == Some((200, backend.name())));
        to_nginx.push(start.elapsed());
    }
    to_nginx.sort();

    // Bursts: 50 puts spread over one second.
    let mut per_burst = Vec::new();
    for b in 0..5 {
        std::thread::sleep(Duration::from_millis(500));
        let before = reloads(&r.reloads);
        let last = format!("10.2.{b}.50:80");
        for i in 1..=50 {
            put(
                rt,
                &mut r.client,
                &format!("/burst{b}_PRE/10.2.{b}.{i}-80"),
                &format!("10.2.{b}.{i}:80"),
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        time_until(|| contains(&r.dest, &last));
        std::thread::sleep(Duration::from_millis(500));
        per_burst.push(reloads(&r.reloads) - before);
    }
    // etcd killed and restarted: from etcd serving again to a change made then being in the file.
    let mut after_restart = Vec::new();
    for i in 0..5 {
        r.etcd.kill();
        std::thread::sleep(Duration::from_millis(500));
        r.etcd.restart();
        let start = Instant::now();
        let addr = format!("10.3.0.{}:80", i + 1);
        while rt
            .block_on(r.client.put(
                format!("/restart_PRE/10.3.0.{}-80", i + 1),
                addr.as_str(),
                None,
            ))
            .is_err()
        {
            std::thread::sleep(Duration::from_millis(10));
        }
        time_until(|| contains(&r.dest, &addr));
        after_restart.push(start.elapsed());
    }
    drop(r.etcd);

    println!("watch daemon, lone puts (n={}):", to_file.len());
    println!(
        "  put → dest file:  p50 {:.1} ms  p99 {:.1} ms",
        percentile(&to_file, 50),
        percentile(&to_file, 99)
    );
    println!(
        "  put → nginx serving the new backend (n={}): p50 {:.1} ms  p99 {:.1} ms",
        to_nginx.len(),
        percentile(&to_nginx, 50),
        percentile(&to_nginx, 99)
    );
    println!("  reloads per 50-put burst over 1 s: {per_burst:?}");
    let ms: Vec<String> = after_restart
        .iter()
        .map(|d| format!("{:.0}", d.as_secs_f64() * 1000.0))
        .collect();
    println!(
        "  etcd restarted → a change made then is in the file: {} ms",
        ms.join(", ")
    );
}

fn reloads(path: &Path) -> usize {
    std::fs::read_to_string(path)
        .map(|s| s.lines().count())
        .unwrap_or(0)
}

/// CPU seconds the daemon burns while nothing changes, and its RSS, with `keys` instance keys.
fn idle(rt: &tokio::runtime::Runtime, keys: usize, secs: u64) {
    let r = rig(rt, None);
    r.etcd.load_instances(keys);
    let d = r.confdir.daemon(&[]);
    let lines = keys + 1;
    wait_for("the full render", LONG, || {
        (std::fs::read_to_string(&r.dest)
            .ok()?
            .matches("server ")
            .count()
            + 1
            >= lines)
            .then_some(())
    });
    report_idle(d.child.id(), secs, &format!("{keys:>6} keys"));
}

/// The same with the origin team's layout: `apps` resources, one template each, over 10 keys
/// per app.
fn idle_per_app(apps: usize, secs: u64) {
    let etcd = Etcd::start();
    etcd.load_instances(apps * 10);
    let out = tempfile::tempdir().expect("tempdir");
    let confdir = per_app_confdir(&etcd.endpoint, apps, out.path());
    let d = confdir.daemon(&[]);
    // Files are installed in conf.d order: the last app's file is the end of the first pass.
    let last = out.path().join(format!("svc{:04}_PRE.conf", apps - 1));
    wait_for("every app's file", LONG, || last.exists().then_some(()));
    report_idle(d.child.id(), secs, &format!("{apps} per-app resources"));
}

/// Lets the daemon settle, then prints the CPU it burns in `secs` and its RSS.
fn report_idle(pid: u32, secs: u64, what: &str) {
    std::thread::sleep(Duration::from_secs(1));
    let (cpu0, _) = proc_stats(pid);
    std::thread::sleep(Duration::from_secs(secs));
    let (cpu1, rss_kib) = proc_stats(pid);
    println!(
        "idle {secs} s with {what}: CPU {:.3} s, RSS {:.1} MB",
        cpu1 - cpu0,
        rss_kib as f64 / 1024.0
    );
}

/// (utime + stime in seconds, VmRSS in KiB) from /proc.
fn proc_stats(pid: u32) -> (f64, u64) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("stat");
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    let ticks: f64 =
        fields[11].parse::<f64>().unwrap_or(0.0) + fields[12].parse::<f64>().unwrap_or(0.0);
    let hz = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .unwrap_or(100) as f64;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    let rss = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0);
    (ticks / hz, rss)
}
