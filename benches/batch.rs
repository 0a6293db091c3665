//! Batch validation at the origin team's scale: 1,000 apps, one resource, template and upstream
//! file each, all checked with `nginx -t`, on a fresh host whose site config names every file.
//! Prints the time of the converging `--onetime`, and its checks and reloads; then the same
//! with one bad service. Then the fan-out layout at 100,000 keys (10,000 services × 10, the
//! shipped one-file-per-service template, no check): the first pass (10,000 files) and lone put
//! → its file. Run: `cargo bench --bench batch`.

#[path = "../tests/support/mod.rs"]
mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use support::{per_app_resource, Confdir, Etcd, Nginx, BIN, SERVERS};

const APPS: usize = 1_000;

fn main() {
    per_app();
    batch_of_100();
    fan_out_at_scale();
}

/// The fan-out layout over 1,000 services checked by nginx -t: 100 services change at once
/// (one put each, back to back): how long until all 100 files hold their change, and how many
/// checks and reloads that took.
fn batch_of_100() {
    let etcd = Etcd::start();
    etcd.load_instances(10_000);
    let tmp = tempfile::tempdir().expect("tempdir");
    let apps = tmp.path().join("nginx/conf.d/apps");
    let prefix = Nginx::minimal(
        tmp.path(),
        &format!("  include {}/*.conf;\n", apps.display()),
    );
    let (check, _) = Nginx::commands(&prefix);
    let confdir = Confdir::new(&format!("nodes = [\"{}\"]\n", etcd.endpoint));
    let template = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("templates/nginx-upstream.conf.tmpl"),
    )
    .expect("shipped template");
    let d = tmp.path().display();
    confdir.template("one.tmpl", &template).resource(
        "fan.toml",
        &format!(
            "[template]\nsrc = \"one.tmpl\"\ndest = \"{}/{{{{ dir }}}}.conf\"\nkeys = [\"/\"]\neach = \"/*\"\n\
             check_cmd = \"echo x >> {d}/checks && {check}\"\nreload_cmd = \"echo x >> {d}/reloads\"\n",
            apps.display()
        ),
    );
    let count =
        |f: &str| std::fs::read_to_string(tmp.path().join(f)).map_or(0, |s| s.lines().count());
    let daemon = confdir.daemon(&[]);
    let deadline = Instant::now() + Duration::from_secs(60);
    while count("reloads") == 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    let (checks0, reloads0) = (count("checks"), count("reloads"));
    let (rt, mut client) = client(&etcd);
    let start = Instant::now();
    for s in 0..100 {
        let svc = s * 10;
        rt.block_on(client.put(
            format!("/svc{svc:04}_PRE/10.251.0.1-80"),
            "10.251.0.1:80",
            None,
        ))
        .expect("put");
    }
    let all_in = || {
        (0..100).all(|s| {
            std::fs::read_to_string(apps.join(format!("svc{:04}_PRE.conf", s * 10)))
                .is_ok_and(|t| t.contains("10.251.0.1:80"))
        })
    };
    while !all_in() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    let took = start.elapsed();
    // Let the pass finish its reload before counting.
    std::thread::sleep(Duration::from_millis(300));
    println!(
        "fan-out, 1,000 services checked by nginx -t: 100 services changed at once → all files in {:.0} ms, {} checks, {} reloads",
        took.as_secs_f64() * 1000.0,
        count("checks") - checks0,
        count("reloads") - reloads0
    );
    drop(daemon);
}

fn per_app() {
    let etcd = Etcd::start();
    etcd.load_instances(APPS * 10);
    for bad in [None, Some(APPS / 3)] {
        let tmp = tempfile::tempdir().expect("tempdir");
        let confdir = layout(&etcd, tmp.path(), bad);
        let start = Instant::now();
        let out = std::process::Command::new(BIN)
            .arg("--confdir")
            .arg(confdir.path())
            .arg("--onetime")
            .output()
            .expect("run");
        let took = start.elapsed();
        let count =
            |f: &str| std::fs::read_to_string(tmp.path().join(f)).map_or(0, |s| s.lines().count());
        let written = std::fs::read_dir(tmp.path().join("nginx/conf.d/apps"))
            .expect("ls")
            .filter(|e| {
                e.as_ref()
                    .is_ok_and(|e| e.file_name().to_string_lossy().ends_with(".conf"))
            })
            .count();
        println!(
            "fresh host, {APPS} per-app files checked by nginx -t{}: {:.2} s, {written} files written, {} checks, {} reload(s), exit {:?}",
            if bad.is_some() { ", one bad service" } else { "" },
            took.as_secs_f64(),
            count("checks"),
            count("reloads"),
            out.status.code()
        );
    }
}

/// The seed's keys (`/svcNNNN_PRE/…`), one resource per service; the site includes every file
/// by name (so nginx -t passes only once all exist), except with a bad service, where it
/// includes them by glob.
fn layout(etcd: &Etcd, dir: &Path, bad: Option<usize>) -> Confdir {
    let apps = dir.join("nginx/conf.d/apps");
    let includes: String = match bad {
        None => (0..APPS)
            .map(|s| format!("  include {}/svc{s:04}_PRE.conf;\n", apps.display()))
            .collect(),
        Some(_) => format!("  include {}/*.conf;\n", apps.display()),
    };
    let prefix = Nginx::minimal(dir, &includes);
    let (check, _) = Nginx::commands(&prefix);
    let confdir = Confdir::new(&format!("nodes = [\"{}\"]\n", etcd.endpoint));
    for s in 0..APPS {
        let name = format!("svc{s:04}_PRE");
        let body = if Some(s) == bad {
            "    bogus_directive on;\n"
        } else {
            SERVERS
        };
        let extra = format!(
            "check_cmd = \"echo x >> {d}/checks && {check}\"\nreload_cmd = \"echo x >> {d}/reloads\"\n",
            d = dir.display()
        );
        per_app_resource(
            &confdir,
            &name,
            body,
            &apps.join(format!("{name}.conf")),
            &extra,
        );
    }
    confdir
}

fn fan_out_at_scale() {
    let etcd = Etcd::start();
    etcd.load_instances(100_000);
    let tmp = tempfile::tempdir().expect("tempdir");
    let confdir = Confdir::new(&format!("nodes = [\"{}\"]\n", etcd.endpoint));
    let template = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("templates/nginx-upstream.conf.tmpl"),
    )
    .expect("shipped template");
    confdir.template("one.tmpl", &template).resource(
        "fan.toml",
        &format!(
            "[template]\nsrc = \"one.tmpl\"\ndest = \"{}/upstream-{{{{ dir }}}}.conf\"\nkeys = [\"/\"]\neach = \"/*\"\n",
            tmp.path().display()
        ),
    );
    let file = |s: usize| tmp.path().join(format!("upstream-svc{s:04}_PRE.conf"));
    let start = Instant::now();
    let d = confdir.daemon(&[]);
    let deadline = Instant::now() + Duration::from_secs(120);
    while !file(9999).exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    // The pass commits after the last file is in place: wait until nothing hidden is left.
    let hidden = || {
        std::fs::read_dir(tmp.path())
            .map(|d| {
                d.filter_map(Result::ok).any(|e| {
                    let n = e.file_name().to_string_lossy().into_owned();
                    n.starts_with('.') && !n.ends_with(".confd-owned")
                })
            })
            .unwrap_or(false)
    };
    while hidden() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    let first = start.elapsed();
    let (rt, mut client) = client(&etcd);
    let mut times = Vec::new();
    for i in 0..40 {
        let svc = i * 250;
        let ip = format!("10.250.{}.{}", i / 250, i % 250 + 1);
        let t = Instant::now();
        rt.block_on(client.put(
            format!("/svc{svc:04}_PRE/{ip}-80"),
            format!("{ip}:80"),
            None,
        ))
        .expect("put");
        let deadline = Instant::now() + Duration::from_secs(10);
        while !std::fs::read_to_string(file(svc)).is_ok_and(|t| t.contains(&ip))
            && Instant::now() < deadline
        {
            std::hint::spin_loop();
        }
        times.push(t.elapsed());
        // Lone puts: further apart than the coalescing window (100 ms), so none is batched.
        std::thread::sleep(Duration::from_millis(300));
    }
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "fan-out, 100,000 keys: first pass (10,000 files, no check) {:.2} s; lone put → its file (n={}): p50 {:.1} ms  p99 {:.1} ms",
        first.as_secs_f64(),
        times.len(),
        ms(times[times.len() / 2]),
        ms(times[times.len() * 99 / 100])
    );
    drop(d);
}

/// A runtime and an etcd client on it, to put keys from the bench itself.
fn client(etcd: &Etcd) -> (tokio::runtime::Runtime, etcd_client::Client) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let client = rt
        .block_on(etcd_client::Client::connect([etcd.endpoint.as_str()], None))
        .expect("connect");
    (rt, client)
}
