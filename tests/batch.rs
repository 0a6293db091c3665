//! Batch validation against real etcd and nginx, with the origin team's layout: one resource,
//! one template and one file per app, every one checked with `nginx -t`.

mod support;

use std::path::{Path, PathBuf};

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
        let prefix = tmp.path().join("nginx");
        let apps_dir = prefix.join("conf.d/apps");
        std::fs::create_dir_all(&apps_dir).expect("apps dir");
        for d in ["conf", "logs", "tmp"] {
            std::fs::create_dir_all(prefix.join(d)).expect("nginx dirs");
        }
        let p = prefix.display();
        let includes = includes.replace("{apps}", &apps_dir.display().to_string());
        std::fs::write(
            prefix.join("conf/nginx.conf"),
            format!(
                "worker_processes 1;\npid {p}/logs/nginx.pid;\nerror_log {p}/logs/error.log warn;\n\
                 events {{ worker_connections 64; }}\nhttp {{\n  access_log off;\n\
                 client_body_temp_path {p}/tmp/b; proxy_temp_path {p}/tmp/p; fastcgi_temp_path {p}/tmp/f;\n\
                 uwsgi_temp_path {p}/tmp/u; scgi_temp_path {p}/tmp/s;\n{includes}\n}}\n"
            ),
        )
        .expect("nginx.conf");
        let (check, _) = Nginx::commands(&prefix);
        let checks = tmp.path().join("checks");
        let reloads = tmp.path().join("reloads");
        let confdir = Confdir::new(&format!("nodes = [\"{}\"]\n", etcd.endpoint));
        for i in 0..APPS {
            let name = app(i);
            let body = if Some(i) == bad {
                "    bogus_directive on;\n".to_owned()
            } else {
                "{% for s in hostports('/*') %}    server {{ s }};\n{% endfor %}".to_owned()
            };
            confdir
                .template(&format!("{name}.tmpl"), &format!("upstream {name} {{\n{body}}}\n"))
                .resource(
                    &format!("{name}.toml"),
                    &format!(
                        "[template]\nsrc = \"{name}.tmpl\"\ndest = \"{}\"\nprefix = \"/{name}\"\nkeys = [\"/\"]\n\
                         check_cmd = \"echo check >> {} && {check}\"\nreload_cmd = \"echo reload >> {}\"\n",
                        apps_dir.join(format!("{name}.conf")).display(),
                        checks.display(),
                        reloads.display()
                    ),
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
        .filter(|n| n.starts_with('.'))
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
