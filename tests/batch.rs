//! Batch validation against real etcd and nginx, with the origin team's layout: one resource,
//! one template and one file per app, every one checked with `nginx -t`.

mod support;

use std::path::{Path, PathBuf};
use std::time::Duration;

use support::*;

const APPS: usize = 20;

fn app(i: usize) -> String {
    format!("svc{i:02}_PRE")
}

/// etcd with one instance per app, an nginx prefix whose http block includes `includes`, and a
/// confdir with one resource per app (`bad` renders a directive nginx refuses). Checks and
/// reloads are counted.
struct Layout {
    etcd: Etcd,
    confdir: Confdir,
    prefix: PathBuf,
    apps_dir: PathBuf,
    checks: PathBuf,
    reloads: PathBuf,
    _tmp: tempfile::TempDir,
}

impl Layout {
    fn new(includes: &str, bad: Option<usize>) -> Layout {
        let etcd = Etcd::start();
        for i in 0..APPS {
            etcd.put(
                &format!("/{}/127.0.0.1-{}", app(i), 9000 + i),
                &format!("127.0.0.1:{}", 9000 + i),
            );
        }
        let tmp = tempfile::tempdir().expect("tempdir");
        let apps = tmp.path().join("nginx/conf.d/apps");
        let prefix = Nginx::minimal(
            tmp.path(),
            &includes.replace("{apps}", &apps.display().to_string()),
        );
        let apps_dir = prefix.join("conf.d/apps");
        let (check, _) = Nginx::commands(&prefix);
        let checks = tmp.path().join("checks");
        let reloads = tmp.path().join("reloads");
        let confdir = Confdir::new(&format!("nodes = [\"{}\"]\n", etcd.endpoint));
        for i in 0..APPS {
            let name = app(i);
            let body = if Some(i) == bad {
                "    bogus_directive on;\n"
            } else {
                SERVERS
            };
            let extra = format!(
                "check_cmd = \"echo check >> {} && {check}\"\nreload_cmd = \"echo reload >> {}\"\n",
                checks.display(),
                reloads.display()
            );
            per_app_resource(
                &confdir,
                &name,
                body,
                &apps_dir.join(format!("{name}.conf")),
                &extra,
            );
        }
        Layout {
            etcd,
            confdir,
            prefix,
            apps_dir,
            checks,
            reloads,
            _tmp: tmp,
        }
    }

    fn count(path: &Path) -> usize {
        std::fs::read_to_string(path).map_or(0, |s| s.lines().count())
    }

    fn written(&self) -> usize {
        std::fs::read_dir(&self.apps_dir)
            .expect("ls")
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().ends_with(".conf"))
            .count()
    }

    fn nginx_accepts(&self) -> bool {
        let (check, _) = Nginx::commands(&self.prefix);
        std::process::Command::new("sh")
            .args(["-c", &check])
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }
}

#[test]
fn a_fresh_host_converges_in_one_pass_with_one_check_and_one_reload() {
    // The site names every app's file, so nginx -t passes only once all of them exist.
    let includes: String = (0..APPS)
        .map(|i| format!("  include {{apps}}/{}.conf;\n", app(i)))
        .collect();
    let l = Layout::new(&includes, None);
    assert!(!l.nginx_accepts(), "nothing is written yet");
    let out = l.confdir.run(&["--onetime"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(l.written(), APPS);
    assert_eq!(Layout::count(&l.checks), 1, "one check for the batch");
    assert_eq!(Layout::count(&l.reloads), 1, "one reload");
    assert!(l.nginx_accepts());
}

#[test]
fn one_bad_service_is_found_by_bisection_and_never_blocks_the_others() {
    let bad = 5;
    let l = Layout::new("  include {apps}/*.conf;", Some(bad));
    let out = l.confdir.run(&["--onetime"]);
    assert_eq!(out.status.code(), Some(5), "{}", stderr(&out));
    let err = stderr(&out);
    let bad_file = l.apps_dir.join(format!("{}.conf", app(bad)));
    assert!(
        err.contains(&format!(
            "{}: check_cmd failed, previous file kept",
            bad_file.display()
        )) && err.contains("unknown directive \"bogus_directive\""),
        "the rejected file is named with nginx's own message: {err}"
    );
    assert_eq!(l.written(), APPS - 1, "every other file is in place");
    assert!(!bad_file.exists());
    let checks = Layout::count(&l.checks);
    assert!(
        checks <= 2 * 5 + 1,
        "O(log n) checks for one bad file among {APPS}: {checks}"
    );
    assert_eq!(Layout::count(&l.reloads), 1, "one reload");
    assert!(l.nginx_accepts());
    let leftovers: Vec<String> = std::fs::read_dir(&l.apps_dir)
        .expect("ls")
        .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
        .filter(|n| n.starts_with('.') && !n.ends_with(".confd-owned"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    // The others keep updating while the bad one stays refused.
    l.etcd
        .put(&format!("/{}/127.0.0.1-9999", app(7)), "127.0.0.1:9999");
    let out = l.confdir.run(&["--onetime"]);
    assert_eq!(out.status.code(), Some(5), "{}", stderr(&out));
    let seven =
        std::fs::read_to_string(l.apps_dir.join(format!("{}.conf", app(7)))).expect("app 7");
    assert!(seven.contains("server 127.0.0.1:9999;"), "{seven}");
    assert_eq!(Layout::count(&l.reloads), 2);
}

/// nginx including one upstream file per service (plus `site`), and a confdir with the shipped
/// fan-out example rendering into it, checked by `check(nginx -t …)`.
fn fan_out(
    etcd: &Etcd,
    dir: &Path,
    site: &str,
    check: impl Fn(&str) -> String,
) -> (Confdir, PathBuf) {
    let (prefix, _) = Nginx::configure(dir);
    // Nginx::configure includes one upstreams file; this layout includes one per service.
    let conf = prefix.join("conf/nginx.conf");
    let text = std::fs::read_to_string(&conf).expect("nginx.conf").replace(
        &format!("include {}/conf.d/upstreams.conf;", prefix.display()),
        &format!(
            "include {}/conf.d/upstream-*.conf;\n  {site}",
            prefix.display()
        ),
    );
    std::fs::write(&conf, text).expect("nginx.conf");
    let (nginx_t, _) = Nginx::commands(&prefix);
    let confdir = Confdir::new(&format!("nodes = [\"{}\"]\n", etcd.endpoint));
    let shipped = std::fs::read_to_string(
        Path::new(REPO).join("etc-confd/templates/nginx-upstream.conf.tmpl"),
    )
    .expect("shipped template");
    confdir.template("nginx-upstream.conf.tmpl", &shipped).resource(
        "nginx-upstreams.toml",
        &format!(
            "[template]\nsrc = \"nginx-upstream.conf.tmpl\"\ndest = \"{}\"\nkeys = [\"/\"]\neach = \"/*\"\n\
             check_cmd = \"{}\"\n",
            prefix.join("conf.d/upstream-{{ dir }}.conf").display(),
            check(&nginx_t).replace('"', "\\\"")
        ),
    );
    (confdir, prefix)
}

/// The shipped fan-out example (one file per service directory), under a daemon.
#[test]
fn fan_out_creates_updates_and_removes_one_file_per_service() {
    let etcd = Etcd::start();
    for svc in ["a_PRE", "b_PRE", "c_PRE"] {
        etcd.put(&format!("/{svc}/127.0.0.1-9001"), "127.0.0.1:9001");
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let (confdir, prefix) = fan_out(&etcd, tmp.path(), "", |check| check.to_owned());
    let file = |svc: &str| prefix.join(format!("conf.d/upstream-{svc}.conf"));
    let read = |svc: &str| std::fs::read_to_string(file(svc)).unwrap_or_default();
    let d = confdir.daemon(&[]);
    wait_for_or(
        "three files",
        Duration::from_secs(10),
        || d.log(),
        || {
            ["a_PRE", "b_PRE", "c_PRE"]
                .iter()
                .all(|s| read(s).contains("server 127.0.0.1:9001;"))
                .then_some(())
        },
    );
    assert!(
        read("a_PRE").contains("upstream a_PRE {"),
        "{}",
        read("a_PRE")
    );
    let b_before = std::fs::metadata(file("b_PRE"))
        .and_then(|m| m.modified())
        .expect("b");

    etcd.put("/a_PRE/127.0.0.1-9002", "127.0.0.1:9002");
    wait_for_or(
        "a's change",
        Duration::from_secs(10),
        || d.log(),
        || {
            read("a_PRE")
                .contains("server 127.0.0.1:9002;")
                .then_some(())
        },
    );
    let b_after = std::fs::metadata(file("b_PRE"))
        .and_then(|m| m.modified())
        .expect("b");
    assert_eq!(b_before, b_after, "a change to a re-renders only a's file");

    etcd.ctl(&["del", "/c_PRE/127.0.0.1-9001"]);
    wait_for_or(
        "c's file to go",
        Duration::from_secs(10),
        || d.log(),
        || (!file("c_PRE").exists()).then_some(()),
    );
    etcd.put("/d_PRE/127.0.0.1-9004", "127.0.0.1:9004");
    wait_for_or(
        "d's new file",
        Duration::from_secs(10),
        || d.log(),
        || {
            read("d_PRE")
                .contains("server 127.0.0.1:9004;")
                .then_some(())
        },
    );
    // Once the check passed and the pass committed, nothing is left beside the files.
    let hidden = || -> Vec<String> {
        std::fs::read_dir(prefix.join("conf.d"))
            .expect("ls")
            .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
            .filter(|n| n.starts_with('.') && !n.ends_with(".confd-owned"))
            .collect()
    };
    wait_for_or(
        "the pass to commit",
        Duration::from_secs(10),
        || format!("{:?}", hidden()),
        || hidden().is_empty().then_some(()),
    );
}

/// A service the site config names keeps its file, with the template's placeholder, when its
/// last instance leaves; one nobody names loses its file. nginx -t resolves a missing upstream
/// name as a host name, so the check runs in a private mount namespace whose resolv.conf points
/// at 127.0.0.1: no query leaves the host.
#[test]
fn a_named_service_keeps_its_file_with_a_placeholder_and_an_unnamed_one_goes() {
    let etcd = Etcd::start();
    etcd.put("/a_PRE/127.0.0.1-9001", "127.0.0.1:9001");
    etcd.put("/c_PRE/127.0.0.1-9003", "127.0.0.1:9003");
    let tmp = tempfile::tempdir().expect("tempdir");
    let site = "server { listen 127.0.0.1:1; location / { proxy_pass http://c_PRE; } }";
    let (confdir, prefix) = fan_out(&etcd, tmp.path(), site, |check| {
        dns_isolated(check, tmp.path())
    });
    let file = |svc: &str| prefix.join(format!("conf.d/upstream-{svc}.conf"));
    let read = |svc: &str| std::fs::read_to_string(file(svc)).unwrap_or_default();
    let d = confdir.daemon(&[]);
    wait_for_or(
        "both files",
        Duration::from_secs(10),
        || d.log(),
        || (read("a_PRE").contains("9001") && read("c_PRE").contains("9003")).then_some(()),
    );

    etcd.ctl(&["del", "/c_PRE/127.0.0.1-9003"]);
    etcd.ctl(&["del", "/a_PRE/127.0.0.1-9001"]);
    wait_for_or(
        "a's file to go",
        Duration::from_secs(10),
        || d.log(),
        || (!file("a_PRE").exists()).then_some(()),
    );
    let c = wait_for_or(
        "c's placeholder",
        Duration::from_secs(10),
        || d.log(),
        || Some(read("c_PRE")).filter(|c| c.contains("server 127.0.0.1:1;")),
    );
    assert!(
        c.contains("upstream c_PRE {") && !c.contains("9003"),
        "{c}\n{}",
        d.log()
    );
    assert!(d.log().contains("the config still names it"), "{}", d.log());
}

/// A service that vanished while confd-rs was not running loses its file at the next run: the
/// fan-out resource keeps a list of the files it wrote, and removes nothing else.
#[test]
fn fan_out_removes_the_file_of_a_service_that_vanished_between_runs() {
    let etcd = Etcd::start();
    etcd.put("/a_PRE/127.0.0.1-9001", "127.0.0.1:9001");
    etcd.put("/b_PRE/127.0.0.1-9002", "127.0.0.1:9002");
    let tmp = tempfile::tempdir().expect("tempdir");
    let out_dir = tmp.path().join("upstreams");
    std::fs::create_dir_all(&out_dir).expect("dir");
    std::fs::write(
        out_dir.join("upstream-manual.conf"),
        "# an operator's own file\n",
    )
    .expect("own");
    let confdir = Confdir::new(&format!("nodes = [\"{}\"]\n", etcd.endpoint));
    confdir.template("one.tmpl", "upstream {{ dir }} {\n{% for s in hostports(path ~ '/*') %}    server {{ s }};\n{% endfor %}}\n").resource(
        "fan.toml",
        &format!(
            "[template]\nsrc = \"one.tmpl\"\ndest = \"{}/upstream-{{{{ dir }}}}.conf\"\nkeys = [\"/\"]\neach = \"/*\"\n",
            out_dir.display()
        ),
    );
    let out = confdir.run(&["--onetime"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        out_dir.join("upstream-a_PRE.conf").exists()
            && out_dir.join("upstream-b_PRE.conf").exists()
    );

    etcd.ctl(&["del", "/b_PRE/127.0.0.1-9002"]);
    let out = confdir.run(&["--onetime"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(out_dir.join("upstream-a_PRE.conf").exists());
    assert!(
        !out_dir.join("upstream-b_PRE.conf").exists(),
        "b vanished: its file goes"
    );
    assert!(
        out_dir.join("upstream-manual.conf").exists(),
        "a file it did not write stays"
    );
    let out = confdir.run(&["--onetime", "--noop", "--exit-code"]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
}
