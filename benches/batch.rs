//! Batch validation at the origin team's scale: 1,000 apps, one resource, template and upstream
//! file each, all checked with `nginx -t`, on a fresh host whose site config names every file.
//! Prints the time of the converging `--onetime`, and its checks and reloads; then the same
//! with one bad service. Run: `cargo bench --bench batch`.

#[path = "../tests/support/mod.rs"]
mod support;

use std::path::Path;
use std::time::Instant;

use support::{per_app_resource, Confdir, Etcd, Nginx, BIN, SERVERS};

const APPS: usize = 1_000;

fn main() {
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
