//! The reload path against the dynamic path (`dynamic = SOCKET`: server lists sent to the Lua
//! balancer instead of a reload), side by side in one run on the same nginx binary. Three
//! stacks, each its own etcd, nginx (worker_processes 1) and daemon:
//! - reload, plain nginx: today's setup (`Nginx::configure`, `proxy_next_upstream off`);
//! - reload, Lua-enabled nginx: `Nginx::configure_dynamic` without `dynamic =` in the resource;
//! - dynamic: the same nginx config with `dynamic = "<admin socket>"`.
//!
//! Measured: put → routed latency (add, remove; interleaved trials), worker churn and PSS over
//! 50 changes while long streaming responses keep arriving, idle keep-alive connections closed
//! by 50 changes, and failed requests and closed keep-alive connections under steady load while
//! the membership slides. Reloads during the dynamic runs are counted (there should be none).
//! Run: `cargo bench --bench dynamic` (BENCH_TRIALS, default 25; BENCH_LOAD_SECS, default 20;
//! BENCH_STREAMS, default 200). The last line printed is one JSON object.

#[path = "../tests/support/mod.rs"]
mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use etcd_client::{Client, Txn, TxnOp};
use serde_json::{json, Map, Value};
use support::{
    http_get, unix_http, upstreams_resource, wait_for_or, Backend, Confdir, Daemon, Etcd, Nginx,
};

/// The one upstream every stack serves; its servers are what changes.
const APP: &str = "app_PRE";
const LONG: Duration = Duration::from_secs(30);
/// Changes per churn and idle run, and their spacing.
const CHANGES: usize = 50;
const EVERY: Duration = Duration::from_millis(200);
/// Live backends, and how many of them the sliding set holds at a time.
const POOL: usize = 10;
const WINDOW: usize = 4;
/// Between a trial's end and the next change on the same stack: beyond the daemon's 100 ms
/// coalescing window, so every change is a lone one that applies at once.
const GAP: Duration = Duration::from_millis(250);
const WORKER_CONNECTIONS: &str = "worker_connections 4096;";
const KEEPALIVE_REQUESTS: &str = "access_log off;\n  keepalive_requests 100000;";
const IDLE_CONNS: usize = 200;
const LOAD_THREADS: usize = 4;
const LOAD_RATE: f64 = 50.0; // requests per second per thread
const SMALL_STACK: usize = 128 * 1024;

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let trials = env_or("BENCH_TRIALS", 25).max(1);
    let load_secs = env_or("BENCH_LOAD_SECS", 20).max(1);
    let slots = env_or("BENCH_STREAMS", 200).max(1);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let nginx_version = std::process::Command::new("nginx")
        .arg("-v")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stderr).trim().to_owned())
        .unwrap_or_default();
    let load_before = loadavg();
    let started = Instant::now();

    let pool: Vec<Backend> = (0..POOL).map(|_| streaming_backend()).collect();
    let (a, b, c) = (pool[0].port, pool[1].port, pool[2].port);
    let mut stacks: Vec<Stack> = Kind::ALL
        .iter()
        .map(|&kind| Stack::start(kind, &rt, &[a, b]))
        .collect();
    for s in &stacks {
        s.settle();
    }
    let marks: Vec<usize> = stacks.iter().map(Stack::reloads).collect();
    let dyn_workers = Nginx::workers(&stacks[2].prefix);

    // 1. put → routed, interleaved: each round, every path's add, then every path's remove,
    //    the order of paths rotating from round to round.
    let mut add: Vec<Vec<Duration>> = vec![Vec::new(); 3];
    let mut remove: Vec<Vec<Duration>> = vec![Vec::new(); 3];
    // put (or delete) call → etcd's acknowledgement, the part of each trial before confd-rs.
    let mut acks: Vec<Vec<Duration>> = vec![Vec::new(); 3];
    for round in 0..trials {
        for adding in [true, false] {
            for j in 0..3 {
                let i = (round + j) % 3;
                let s = &mut stacks[i];
                s.settle();
                let (took, acked) = s.route_trial(&rt, adding, [a, b, c]);
                acks[i].push(acked);
                if adding {
                    add[i].push(took);
                } else {
                    remove[i].push(took);
                }
            }
        }
    }
    for s in &stacks {
        s.settle();
    }

    // 2–4, one path after the other.
    let churn: Vec<Churn> = stacks
        .iter_mut()
        .map(|s| arrivals(s, &rt, &pool, slots))
        .collect();
    let idle: Vec<usize> = stacks.iter_mut().map(|s| idle(s, &rt, &pool)).collect();
    let mut load: Vec<LoadStats> = stacks
        .iter_mut()
        .map(|s| steady_load(s, &rt, &pool, load_secs))
        .collect();

    let reloads: Vec<usize> = stacks
        .iter()
        .zip(&marks)
        .map(|(s, m)| s.reloads() - m)
        .collect();
    let dyn_workers_changed = Nginx::workers(&stacks[2].prefix) != dyn_workers;
    let load_after = loadavg();

    // The report.
    println!();
    println!(
        "dynamic upstreams: reload path vs dynamic path ({nginx_version}, worker_processes 1, \
         1-min load {load_before:.2} → {load_after:.2}, {:.0} s)",
        started.elapsed().as_secs_f64()
    );
    println!();
    println!("put → routed (ms), {trials} trials per row, interleaved; add: batches of 3 fresh requests until C answers; remove: batches of 6 until none is C");
    println!(
        "{:<28} {:<7} {:>7} {:>7} {:>7} {:>7}   (etcd ack p50, both events)",
        "path", "event", "min", "p50", "p99", "max"
    );
    for (i, kind) in Kind::ALL.iter().enumerate() {
        acks[i].sort();
        for (event, v) in [("add", &mut add[i]), ("remove", &mut remove[i])] {
            v.sort();
            println!(
                "{:<28} {:<7} {:>7.1} {:>7.1} {:>7.1} {:>7.1}{}",
                kind.label(),
                event,
                ms(v[0]),
                pct(v, 50),
                pct(v, 99),
                ms(v[v.len() - 1]),
                if event == "add" {
                    format!("   ({:.1})", pct(&acks[i], 50))
                } else {
                    String::new()
                }
            );
        }
    }
    println!();
    println!("{CHANGES} changes {} ms apart, {slots} client slots each opening 5–15 s streaming responses (1 byte/s), reopening until the last change", EVERY.as_millis());
    println!(
        "{:<28} {:>22} {:>26} {:>11} {:>22} {:>8}",
        "path",
        "procs before→peak→after",
        "PSS MB before→peak→after",
        "new workers",
        "streams done/cut/err",
        "reloads"
    );
    for (kind, c) in Kind::ALL.iter().zip(&churn) {
        println!(
            "{:<28} {:>22} {:>26} {:>11} {:>22} {:>8}",
            kind.label(),
            format!("{} → {} → {}", c.before.0, c.peak.0, c.after.0),
            format!(
                "{:.1} → {:.1} → {:.1}",
                mb(c.before.1),
                mb(c.peak.1),
                mb(c.after.1)
            ),
            c.new_workers,
            format!("{}/{}/{}", c.completed, c.cut, c.errors),
            c.reloads
        );
    }
    println!();
    println!(
        "{IDLE_CONNS} idle keep-alive client connections (one request each) across {CHANGES} changes"
    );
    for (kind, closed) in Kind::ALL.iter().zip(&idle) {
        println!(
            "{:<28} closed by nginx: {closed} / {IDLE_CONNS}",
            kind.label()
        );
    }
    println!();
    println!(
        "steady load: {LOAD_THREADS} keep-alive clients × {LOAD_RATE} req/s for {load_secs} s, \
         a sliding membership change every {} ms (no backend ever stops)",
        EVERY.as_millis()
    );
    println!(
        "{:<28} {:>6} {:>7} {:>7} {:>7} {:>8} {:>8} {:>8} {:>8}",
        "path", "sent", "failed", "non2xx", "closed", "p50 ms", "p99 ms", "max ms", "changes"
    );
    for (kind, l) in Kind::ALL.iter().zip(load.iter_mut()) {
        l.latencies.sort();
        let lat = |p| {
            if l.latencies.is_empty() {
                0.0
            } else {
                pct(&l.latencies, p)
            }
        };
        println!(
            "{:<28} {:>6} {:>7} {:>7} {:>7} {:>8.2} {:>8.2} {:>8.2} {:>8}",
            kind.label(),
            l.sent,
            l.failed,
            l.non2xx,
            l.closed,
            lat(50),
            lat(99),
            l.latencies.last().map_or(0.0, |d| ms(*d)),
            l.changes
        );
    }
    for (kind, l) in Kind::ALL.iter().zip(&load) {
        if !l.causes.is_empty() {
            println!("  {} failures: {:?}", kind.label(), l.causes);
        }
    }
    println!();
    println!(
        "reloads (daemon log \"reloaded\" lines) after setup: {}",
        Kind::ALL
            .iter()
            .zip(&reloads)
            .map(|(k, r)| format!("{}: {r}", k.label()))
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!("dynamic nginx worker pids changed during the run: {dyn_workers_changed}");
    let warnings: Vec<Vec<String>> = stacks
        .iter()
        .map(|s| {
            s.daemon
                .log()
                .lines()
                .filter(|l| l.contains("WARN") || l.contains("ERROR"))
                .map(str::to_owned)
                .collect()
        })
        .collect();
    println!(
        "daemon warnings/errors: {}",
        Kind::ALL
            .iter()
            .zip(&warnings)
            .map(|(k, w)| format!("{}: {}", k.label(), w.len()))
            .collect::<Vec<_>>()
            .join(", ")
    );
    for (kind, w) in Kind::ALL.iter().zip(&warnings) {
        for line in w.iter().take(5) {
            println!("  {}: {line}", kind.key());
        }
    }
    if reloads[2] > 0 || dyn_workers_changed {
        println!("dynamic daemon's reload lines:");
        for line in stacks[2].daemon.log().lines().filter(|l| is_reload_line(l)) {
            println!("  {line}");
        }
    }

    let mut out = Map::new();
    out.insert("trials".into(), json!(trials));
    out.insert("load_secs".into(), json!(load_secs));
    out.insert("stream_slots".into(), json!(slots));
    out.insert("loadavg_before".into(), json!(load_before));
    out.insert("loadavg_after".into(), json!(load_after));
    for (i, kind) in Kind::ALL.iter().enumerate() {
        let k = kind.key();
        let mut pooled: Vec<Duration> = add[i].iter().chain(&remove[i]).copied().collect();
        pooled.sort();
        let mut put = |name: &str, v: Value| {
            out.insert(format!("{k}_{name}"), v);
        };
        put("route_p50_ms", json!(round2(pct(&pooled, 50))));
        put("route_p99_ms", json!(round2(pct(&pooled, 99))));
        put("etcd_ack_p50_ms", json!(round2(pct(&acks[i], 50))));
        for (event, v) in [("add", &add[i]), ("remove", &remove[i])] {
            put(&format!("{event}_min_ms"), json!(round2(ms(v[0]))));
            put(&format!("{event}_p50_ms"), json!(round2(pct(v, 50))));
            put(&format!("{event}_p99_ms"), json!(round2(pct(v, 99))));
            put(
                &format!("{event}_max_ms"),
                json!(round2(ms(v[v.len() - 1]))),
            );
        }
        let c = &churn[i];
        put("nginx_processes_before", json!(c.before.0));
        put("nginx_processes_peak", json!(c.peak.0));
        put("nginx_processes_after", json!(c.after.0));
        put("pss_mb_before", json!(round2(mb(c.before.1))));
        put("pss_mb_peak", json!(round2(mb(c.peak.1))));
        put("pss_mb_after", json!(round2(mb(c.after.1))));
        put("churn_new_workers", json!(c.new_workers));
        put("streams_completed", json!(c.completed));
        put("streams_cut", json!(c.cut));
        put("stream_errors", json!(c.errors));
        put("idle_closed", json!(idle[i]));
        let l = &load[i];
        put("load_sent", json!(l.sent));
        put("failed_requests", json!(l.failed));
        put("non2xx", json!(l.non2xx));
        put("load_closed", json!(l.closed));
        put("closed_connections", json!(idle[i] as u64 + l.closed));
        put("reloads", json!(reloads[i]));
        put("daemon_warnings", json!(warnings[i].len()));
    }
    out.insert(
        "dynamic_worker_pids_changed".into(),
        json!(dyn_workers_changed),
    );
    drop(stacks);
    drop(pool);
    println!("{}", Value::Object(out));
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Plain,
    Lua,
    Dynamic,
}

impl Kind {
    const ALL: [Kind; 3] = [Kind::Plain, Kind::Lua, Kind::Dynamic];

    fn label(self) -> &'static str {
        match self {
            Kind::Plain => "reload, plain nginx",
            Kind::Lua => "reload, Lua-enabled nginx",
            Kind::Dynamic => "dynamic (Lua balancer)",
        }
    }

    fn key(self) -> &'static str {
        match self {
            Kind::Plain => "reload",
            Kind::Lua => "reload_lua",
            Kind::Dynamic => "dynamic",
        }
    }
}

/// etcd, nginx and a daemon rendering the shipped template into nginx's upstreams. Fields drop
/// in order: the daemon first, then nginx (SIGTERM, its workers with it), then etcd.
struct Stack {
    kind: Kind,
    daemon: Daemon,
    _nginx: Nginx,
    client: Client,
    _etcd: Etcd,
    prefix: PathBuf,
    port: u16,
    /// The backend ports etcd holds under /app_PRE.
    members: BTreeSet<u16>,
    /// Where the sliding set starts (see [`Stack::slide`]).
    step: usize,
    /// When this stack's last change was acknowledged, or its last trial ended.
    quiet_since: Instant,
    _confdir: Confdir,
    _tmp: tempfile::TempDir,
}

fn key(port: u16) -> String {
    format!("/{APP}/127.0.0.1-{port}")
}

fn addr(port: u16) -> String {
    format!("127.0.0.1:{port}")
}

fn name(port: u16) -> String {
    format!("backend-{port}")
}

impl Stack {
    fn start(kind: Kind, rt: &tokio::runtime::Runtime, first: &[u16]) -> Stack {
        let etcd = Etcd::start();
        let mut client = rt
            .block_on(Client::connect([etcd.endpoint.as_str()], None))
            .expect("connect to etcd");
        for &p in first {
            rt.block_on(client.put(key(p), addr(p), None)).expect("put");
        }
        let tmp = tempfile::tempdir().expect("tempdir");
        let (prefix, port) = match kind {
            Kind::Plain => Nginx::configure(tmp.path()),
            Kind::Lua | Kind::Dynamic => Nginx::configure_dynamic(tmp.path(), 1),
        };
        // Room for the streaming and idle connections (each proxied one takes two), and no
        // keep-alive connection closed for reaching keepalive_requests (1000 by default) during
        // the steady load: every close counted there is then the change mechanism's.
        let conf_path = prefix.join("conf/nginx.conf");
        let conf = std::fs::read_to_string(&conf_path).expect("nginx.conf");
        assert!(
            conf.contains("worker_connections 256;")
                && conf.matches("access_log off;").count() == 1,
            "the harness's nginx.conf changed: {conf}"
        );
        let conf = conf
            .replace("worker_connections 256;", WORKER_CONNECTIONS)
            .replace("access_log off;", KEEPALIVE_REQUESTS);
        std::fs::write(&conf_path, conf).expect("nginx.conf");
        let dest = prefix.join("conf.d/upstreams.conf");
        std::fs::write(&dest, "").expect("empty upstreams");
        let nginx = Nginx::start(&prefix, port);
        let (check, reload) = Nginx::commands(&prefix);
        let dynamic = match kind {
            Kind::Dynamic => format!("dynamic = \"{}\"\n", Nginx::admin(&prefix).display()),
            _ => String::new(),
        };
        let confdir = Confdir::new(&format!("nodes = [\"{}\"]\n", etcd.endpoint));
        confdir.resource(
            "nginx.toml",
            &upstreams_resource(
                &dest,
                &format!(
                    "check_cmd = \"{check}\"\nreload_cmd = \"{reload}\"\n\
                     reload_pidfile = \"{}\"\n{dynamic}",
                    prefix.join("logs/nginx.pid").display()
                ),
            ),
        );
        let daemon = confdir.daemon(&[]);
        let stack = Stack {
            kind,
            daemon,
            _nginx: nginx,
            client,
            _etcd: etcd,
            prefix,
            port,
            members: first.iter().copied().collect(),
            step: 0,
            quiet_since: Instant::now(),
            _confdir: confdir,
            _tmp: tmp,
        };
        let want: BTreeSet<String> = first.iter().map(|&p| name(p)).collect();
        wait_for_or(
            &format!("{} to route /{APP}/ to {want:?}", kind.label()),
            LONG,
            || stack.log_tail(),
            || {
                let got: BTreeSet<String> = (0..8)
                    .filter_map(|_| http_get(port, &format!("/{APP}/")))
                    .map(|(_, body)| body)
                    .collect();
                (got == want).then_some(())
            },
        );
        if kind == Kind::Dynamic {
            // The balancer holds the set (sent after the first render's reload).
            wait_for_or(
                "the balancer to hold the set",
                LONG,
                || stack.log_tail(),
                || {
                    let (_, body) =
                        unix_http(&Nginx::admin(&stack.prefix), "GET", "/upstreams", "")?;
                    body.contains(APP).then_some(())
                },
            );
        }
        stack
    }

    fn log_tail(&self) -> String {
        let log = self.daemon.log();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    /// The daemon's reloads so far (its "reloaded" log lines).
    fn reloads(&self) -> usize {
        self.daemon
            .log()
            .lines()
            .filter(|l| is_reload_line(l))
            .count()
    }

    /// Waits until nginx has no old workers left.
    fn settle(&self) {
        wait_for_or(
            &format!("{}: old nginx workers to exit", self.kind.label()),
            Duration::from_secs(60),
            || format!("{:?}\n{}", Nginx::workers(&self.prefix), self.log_tail()),
            || (Nginx::workers(&self.prefix).len() <= 1).then_some(()),
        );
    }

    /// Makes etcd hold exactly `want` under /app_PRE in one request (one revision).
    fn set_members(&mut self, rt: &tokio::runtime::Runtime, want: &BTreeSet<u16>) {
        let gone: Vec<u16> = self.members.difference(want).copied().collect();
        let new: Vec<u16> = want.difference(&self.members).copied().collect();
        match (gone.as_slice(), new.as_slice()) {
            ([], []) => return,
            ([], [p]) => {
                rt.block_on(self.client.put(key(*p), addr(*p), None))
                    .expect("put");
            }
            ([p], []) => {
                rt.block_on(self.client.delete(key(*p), None))
                    .expect("delete");
            }
            _ => {
                let ops: Vec<TxnOp> = gone
                    .iter()
                    .map(|&p| TxnOp::delete(key(p), None))
                    .chain(new.iter().map(|&p| TxnOp::put(key(p), addr(p), None)))
                    .collect();
                rt.block_on(self.client.txn(Txn::new().and_then(ops)))
                    .expect("txn");
            }
        }
        self.members = want.clone();
        self.quiet_since = Instant::now();
    }

    /// Sets the sliding window at `step`: WINDOW consecutive backends of the pool.
    fn slide_to(&mut self, rt: &tokio::runtime::Runtime, pool: &[Backend], step: usize) {
        let want: BTreeSet<u16> = (0..WINDOW).map(|i| pool[(step + i) % POOL].port).collect();
        self.step = step;
        self.set_members(rt, &want);
    }

    /// One in, one out.
    fn slide(&mut self, rt: &tokio::runtime::Runtime, pool: &[Backend]) {
        self.slide_to(rt, pool, self.step + 1);
    }

    /// Puts the sliding window back at its start and waits for a quiet, settled stack.
    fn prepare(&mut self, rt: &tokio::runtime::Runtime, pool: &[Backend]) {
        self.settle();
        sleep_until(self.quiet_since + GAP);
        self.slide_to(rt, pool, 0);
        let want: BTreeSet<String> = self.members.iter().map(|&p| name(p)).collect();
        wait_for_or(
            "the sliding set to be routed",
            LONG,
            || self.log_tail(),
            || {
                let got: BTreeSet<String> = (0..16)
                    .filter_map(|_| http_get(self.port, &format!("/{APP}/")))
                    .map(|(_, body)| body)
                    .collect();
                (got == want).then_some(())
            },
        );
        self.settle();
        sleep_until(Instant::now() + GAP);
    }

    /// From {A,B}: put C and poll with batches of 3 fresh requests until one comes from C.
    /// From {A,B,C}: delete C and poll with batches of 6 until all come from A or B.
    /// Returns (start → routed, start → etcd acknowledged the change).
    fn route_trial(
        &mut self,
        rt: &tokio::runtime::Runtime,
        adding: bool,
        [a, b, c]: [u16; 3],
    ) -> (Duration, Duration) {
        sleep_until(self.quiet_since + GAP);
        let mut want = BTreeSet::from([a, b]);
        if adding {
            want.insert(c);
        }
        let (ab, cn) = ([name(a), name(b)], name(c));
        let path = format!("/{APP}/");
        let start = Instant::now();
        self.set_members(rt, &want);
        let acked = start.elapsed();
        loop {
            let done = if adding {
                let replies: Vec<_> = (0..3).map(|_| http_get(self.port, &path)).collect();
                replies
                    .iter()
                    .any(|r| matches!(r, Some((200, body)) if *body == cn))
            } else {
                let replies: Vec<_> = (0..6).map(|_| http_get(self.port, &path)).collect();
                replies
                    .iter()
                    .all(|r| matches!(r, Some((200, body)) if ab.contains(body)))
            };
            if done {
                break;
            }
            assert!(
                start.elapsed() < LONG,
                "{}: never routed after {} C\n{}",
                self.kind.label(),
                if adding { "adding" } else { "removing" },
                self.log_tail()
            );
        }
        let took = start.elapsed();
        self.quiet_since = Instant::now();
        (took, acked)
    }
}

fn is_reload_line(line: &str) -> bool {
    line.contains(" reloaded")
}

fn sleep_until(t: Instant) {
    let now = Instant::now();
    if t > now {
        thread::sleep(t - now);
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn mb(kb: u64) -> f64 {
    kb as f64 / 1000.0
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// Nearest rank over a sorted sample, in ms.
fn pct(sorted: &[Duration], p: usize) -> f64 {
    let rank = (sorted.len() * p).div_ceil(100).max(1);
    ms(sorted[rank.min(sorted.len()) - 1])
}

fn loadavg() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0.0)
}

/// The master and its children (pids), and their summed PSS in kB.
fn nginx_procs(prefix: &Path) -> (BTreeSet<u32>, u64) {
    let Some(master) = Nginx::master(prefix) else {
        return Default::default();
    };
    let mut pids = Nginx::workers(prefix);
    let workers = pids.clone();
    pids.insert(master);
    let pss = pids.iter().map(|&p| pss_kb(p)).sum();
    (workers, pss)
}

fn pss_kb(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Pss:"))?
                .split_whitespace()
                .next()?
                .parse()
                .ok()
        })
        .unwrap_or(0)
}

/// A backend: HTTP/1.1 with keep-alive, answering `backend-<port>`; `…/stream/N` sends one
/// byte per second for N seconds (chunked to an HTTP/1.1 request, until close to HTTP/1.0, as
/// nginx's proxy asks by default), with `X-Accel-Buffering: no` as streaming apps do.
fn streaming_backend() -> Backend {
    Backend::serving(|conn, port, flag| {
        let flag = flag.clone();
        let _ = thread::Builder::new()
            .stack_size(SMALL_STACK)
            .spawn(move || {
                let _ = serve(conn, port, &flag);
            });
    })
}

fn serve(conn: TcpStream, port: u16, stop: &AtomicBool) -> io::Result<()> {
    conn.set_read_timeout(Some(Duration::from_secs(60)))?;
    conn.set_nodelay(true)?;
    let mut reader = BufReader::new(conn.try_clone()?);
    let mut w = conn;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let mut parts = line.split_whitespace();
        let (path, version) = (
            parts.nth(1).unwrap_or("/").to_owned(),
            parts.next().unwrap_or("HTTP/1.0").to_owned(),
        );
        let mut close = version != "HTTP/1.1";
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h)? == 0 {
                return Ok(());
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                if k.trim().eq_ignore_ascii_case("connection") {
                    close = v.trim().eq_ignore_ascii_case("close");
                }
            }
        }
        let chunked = version == "HTTP/1.1";
        if let Some(n) = path
            .rsplit_once("/stream/")
            .and_then(|(_, n)| n.parse::<u64>().ok())
        {
            let framing = if chunked {
                "Transfer-Encoding: chunked\r\n"
            } else {
                "Connection: close\r\n"
            };
            write!(
                w,
                "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nX-Accel-Buffering: no\r\n{framing}\r\n"
            )?;
            for i in 0..n {
                if stop.load(Ordering::SeqCst) {
                    return Ok(());
                }
                if i > 0 {
                    thread::sleep(Duration::from_secs(1));
                }
                w.write_all(if chunked { b"1\r\nx\r\n" } else { b"x" })?;
            }
            thread::sleep(Duration::from_secs(1));
            if !chunked {
                return Ok(());
            }
            w.write_all(b"0\r\n\r\n")?;
        } else {
            let body = name(port);
            let conn = if close { "close" } else { "keep-alive" };
            write!(
                w,
                "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: {conn}\r\n\r\n{body}",
                body.len()
            )?;
        }
        if close {
            return Ok(());
        }
    }
}

/// Reads one response: (status, body, whether the server closes the connection after it).
fn read_response(r: &mut BufReader<TcpStream>) -> io::Result<(u16, Vec<u8>, bool)> {
    let eof = || io::Error::new(io::ErrorKind::UnexpectedEof, "closed mid-response");
    let mut line = String::new();
    if r.read_line(&mut line)? == 0 {
        return Err(eof());
    }
    let status: u16 = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, line.clone()))?;
    let mut close = line.starts_with("HTTP/1.0");
    let (mut length, mut chunked) = (None, false);
    loop {
        line.clear();
        if r.read_line(&mut line)? == 0 {
            return Err(eof());
        }
        let h = line.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            let (k, v) = (k.trim().to_ascii_lowercase(), v.trim());
            match k.as_str() {
                "content-length" => length = v.parse::<usize>().ok(),
                "transfer-encoding" => chunked = v.eq_ignore_ascii_case("chunked"),
                "connection" => close = v.eq_ignore_ascii_case("close"),
                _ => {}
            }
        }
    }
    let mut body = Vec::new();
    if chunked {
        loop {
            line.clear();
            if r.read_line(&mut line)? == 0 {
                return Err(eof());
            }
            let size = usize::from_str_radix(line.trim(), 16)
                .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "chunk size"))?;
            if size == 0 {
                line.clear();
                r.read_line(&mut line)?;
                break;
            }
            let start = body.len();
            body.resize(start + size + 2, 0);
            r.read_exact(&mut body[start..])?;
            body.truncate(start + size);
        }
    } else if let Some(n) = length {
        body.resize(n, 0);
        r.read_exact(&mut body)?;
    } else {
        r.read_to_end(&mut body)?;
        close = true;
    }
    Ok((status, body, close))
}

/// Whether a pooled connection was closed by the server (readable while idle: EOF, a reset
/// or stray data), checked without blocking, as urllib3 does before reusing one.
fn dropped(c: &BufReader<TcpStream>) -> bool {
    if !c.buffer().is_empty() {
        return true;
    }
    let s = c.get_ref();
    if s.set_nonblocking(true).is_err() {
        return true;
    }
    let mut b = [0u8; 1];
    let r = s.peek(&mut b);
    let _ = s.set_nonblocking(false);
    !matches!(r, Err(e) if e.kind() == io::ErrorKind::WouldBlock)
}

/// One keep-alive client connection after its first request, or why it has none.
fn keepalive_conn(port: u16) -> io::Result<BufReader<TcpStream>> {
    let s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    s.set_write_timeout(Some(Duration::from_secs(5)))?;
    s.set_nodelay(true)?;
    Ok(BufReader::new(s))
}

fn request(c: &mut BufReader<TcpStream>) -> io::Result<(u16, Vec<u8>, bool)> {
    c.get_mut()
        .write_all(format!("GET /{APP}/ HTTP/1.1\r\nHost: t\r\n\r\n").as_bytes())?;
    read_response(c)
}

struct Churn {
    /// (processes, summed PSS kB)
    before: (usize, u64),
    peak: (usize, u64),
    after: (usize, u64),
    /// Worker pids seen during the changes that were not there before them.
    new_workers: usize,
    completed: u64,
    cut: u64,
    errors: u64,
    reloads: usize,
}

#[derive(Default)]
struct StreamStats {
    completed: AtomicU64,
    cut: AtomicU64,
    errors: AtomicU64,
}

/// A client slot: opens a 5–15 s stream, reads it to its end, opens the next, until `stop`.
fn stream_slot(port: u16, slot: usize, stop: &AtomicBool, stats: &StreamStats) {
    let mut seed = (slot as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    while !stop.load(Ordering::SeqCst) {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let n = 5 + seed % 11;
        let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
            stats.errors.fetch_add(1, Ordering::SeqCst);
            thread::sleep(Duration::from_millis(100));
            continue;
        };
        let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
        let req = format!("GET /{APP}/stream/{n} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
        if s.write_all(req.as_bytes()).is_err() {
            stats.errors.fetch_add(1, Ordering::SeqCst);
            continue;
        }
        let (mut got, mut buf) = (Vec::new(), [0u8; 4096]);
        let ended = loop {
            if stop.load(Ordering::SeqCst) {
                break None; // aborted by the bench: neither completed nor cut
            }
            match s.read(&mut buf) {
                Ok(0) => break Some(got.ends_with(b"\r\n0\r\n\r\n")),
                Ok(k) => got.extend_from_slice(&buf[..k]),
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) => {}
                Err(_) => break Some(false),
            }
        };
        if !got.starts_with(b"HTTP/1.1 200") && ended.is_some() {
            stats.errors.fetch_add(1, Ordering::SeqCst);
            thread::sleep(Duration::from_millis(100));
        } else if ended == Some(true) {
            stats.completed.fetch_add(1, Ordering::SeqCst);
        } else if ended == Some(false) {
            stats.cut.fetch_add(1, Ordering::SeqCst);
        }
    }
}

/// 50 changes 200 ms apart while streaming responses keep arriving: nginx processes and PSS
/// before, at peak (sampled every 50 ms) and right after (200 ms after) the 50th change.
fn arrivals(s: &mut Stack, rt: &tokio::runtime::Runtime, pool: &[Backend], slots: usize) -> Churn {
    s.prepare(rt, pool);
    let reloads0 = s.reloads();
    let stop = Arc::new(AtomicBool::new(false));
    let stats = Arc::new(StreamStats::default());
    let ramp = Duration::from_secs(2);
    let clients: Vec<_> = (0..slots)
        .map(|slot| {
            let (stop, stats, port) = (stop.clone(), stats.clone(), s.port);
            let delay = ramp.mul_f64(slot as f64 / slots as f64);
            thread::Builder::new()
                .stack_size(SMALL_STACK)
                .spawn(move || {
                    thread::sleep(delay);
                    stream_slot(port, slot, &stop, &stats);
                })
                .expect("client thread")
        })
        .collect();
    thread::sleep(ramp + Duration::from_secs(1));
    let (workers0, pss0) = nginx_procs(&s.prefix);
    let before = (workers0.len() + 1, pss0);

    let sampling = Arc::new(AtomicBool::new(true));
    let sampler = {
        let (sampling, prefix, known) = (sampling.clone(), s.prefix.clone(), workers0.clone());
        thread::spawn(move || {
            let (mut peak, mut seen) = ((0usize, 0u64), BTreeSet::new());
            while sampling.load(Ordering::SeqCst) {
                let (workers, pss) = nginx_procs(&prefix);
                peak = (peak.0.max(workers.len() + 1), peak.1.max(pss));
                seen.extend(workers.difference(&known).copied());
                thread::sleep(Duration::from_millis(50));
            }
            (peak, seen.len())
        })
    };
    let t0 = Instant::now();
    for k in 0..CHANGES {
        sleep_until(t0 + EVERY * k as u32);
        s.slide(rt, pool);
    }
    thread::sleep(EVERY);
    let (workers, pss) = nginx_procs(&s.prefix);
    let after = (workers.len() + 1, pss);
    sampling.store(false, Ordering::SeqCst);
    let (peak, new_workers) = sampler.join().expect("sampler");
    let peak = (peak.0.max(after.0), peak.1.max(after.1));
    stop.store(true, Ordering::SeqCst);
    for c in clients {
        c.join().expect("client slot");
    }
    let reloads = s.reloads() - reloads0;
    s.settle();
    Churn {
        before,
        peak,
        after,
        new_workers,
        completed: stats.completed.load(Ordering::SeqCst),
        cut: stats.cut.load(Ordering::SeqCst),
        errors: stats.errors.load(Ordering::SeqCst),
        reloads,
    }
}

/// 200 keep-alive client connections, one request each, then idle across 50 changes: how many
/// nginx closed.
fn idle(s: &mut Stack, rt: &tokio::runtime::Runtime, pool: &[Backend]) -> usize {
    s.prepare(rt, pool);
    let conns: Vec<BufReader<TcpStream>> = (0..IDLE_CONNS)
        .map(|_| {
            let mut c = keepalive_conn(s.port).expect("connect to nginx");
            let (status, _, close) = request(&mut c).expect("a response");
            assert!(status == 200 && !close, "{status} close={close}");
            c
        })
        .collect();
    let t0 = Instant::now();
    for k in 0..CHANGES {
        sleep_until(t0 + EVERY * k as u32);
        s.slide(rt, pool);
    }
    thread::sleep(Duration::from_millis(500));
    let closed = conns.iter().filter(|c| dropped(c)).count();
    drop(conns);
    s.settle();
    closed
}

#[derive(Default)]
struct LoadStats {
    sent: u64,
    failed: u64,
    non2xx: u64,
    closed: u64,
    changes: usize,
    latencies: Vec<Duration>,
    /// Failed requests by cause: the IO error's kind, on a reused or a new connection.
    causes: BTreeMap<String, u64>,
}

/// A keep-alive client at `rate` requests per second until `stop`. A pooled connection is
/// checked before reuse; one nginx closed is replaced quietly and counted as closed. A request
/// that gets no valid response, or a non-2xx one, is failed.
fn load_client(port: u16, rate: f64, offset: Duration, stop: &AtomicBool) -> LoadStats {
    let mut st = LoadStats::default();
    let interval = Duration::from_secs_f64(1.0 / rate);
    let mut conn: Option<BufReader<TcpStream>> = None;
    let mut next = Instant::now() + offset;
    while !stop.load(Ordering::SeqCst) {
        sleep_until(next);
        next += interval;
        if conn.as_ref().is_some_and(dropped) {
            st.closed += 1;
            conn = None;
        }
        st.sent += 1;
        let reused = conn.is_some();
        let c = match conn.as_mut() {
            Some(c) => c,
            None => match keepalive_conn(port) {
                Ok(c) => conn.insert(c),
                Err(e) => {
                    st.failed += 1;
                    *st.causes
                        .entry(format!("connect {:?}", e.kind()))
                        .or_default() += 1;
                    continue;
                }
            },
        };
        let t = Instant::now();
        match request(c) {
            Ok((status, _, close)) => {
                st.latencies.push(t.elapsed());
                if !(200..300).contains(&status) {
                    st.non2xx += 1;
                    st.failed += 1;
                }
                if close {
                    st.closed += 1;
                    conn = None;
                }
            }
            Err(e) => {
                st.failed += 1;
                let on = if reused { "reused" } else { "new" };
                *st.causes
                    .entry(format!("{:?} on a {on} connection", e.kind()))
                    .or_default() += 1;
                conn = None;
            }
        }
    }
    st
}

/// Steady keep-alive load while the membership slides, one change every 200 ms.
fn steady_load(
    s: &mut Stack,
    rt: &tokio::runtime::Runtime,
    pool: &[Backend],
    secs: usize,
) -> LoadStats {
    s.prepare(rt, pool);
    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..LOAD_THREADS)
        .map(|i| {
            let (stop, port) = (stop.clone(), s.port);
            let offset = Duration::from_secs_f64(i as f64 / (LOAD_RATE * LOAD_THREADS as f64));
            thread::spawn(move || load_client(port, LOAD_RATE, offset, &stop))
        })
        .collect();
    let t0 = Instant::now();
    let end = t0 + Duration::from_secs(secs as u64);
    let mut changes = 0;
    for k in 1.. {
        let due = t0 + EVERY * k;
        if due >= end {
            break;
        }
        sleep_until(due);
        s.slide(rt, pool);
        changes += 1;
    }
    sleep_until(end);
    stop.store(true, Ordering::SeqCst);
    let mut total = LoadStats {
        changes,
        ..LoadStats::default()
    };
    for c in clients {
        let st = c.join().expect("load client");
        total.sent += st.sent;
        total.failed += st.failed;
        total.non2xx += st.non2xx;
        total.closed += st.closed;
        total.latencies.extend(st.latencies);
        for (cause, n) in st.causes {
            *total.causes.entry(cause).or_default() += n;
        }
    }
    s.settle();
    total
}
