//! `--onetime` and `--noop` against a real etcd and a real nginx.

mod support;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use support::*;

/// etcd, a stopped-or-running nginx whose upstreams file confd-rs renders, and a confdir for it.
struct World {
    etcd: Etcd,
    confdir: Confdir,
    prefix: PathBuf,
    port: u16,
    dest: PathBuf,
    reloads: PathBuf,
    _tmp: tempfile::TempDir,
}

impl World {
    fn new() -> World {
        let etcd = Etcd::start();
        let tmp = tempfile::tempdir().expect("tempdir");
        let (prefix, port) = Nginx::configure(tmp.path());
        let dest = prefix.join("conf.d/upstreams.conf");
        std::fs::write(&dest, "").expect("empty upstreams");
        let reloads = tmp.path().join("reloads.log");
        let (check, reload) = Nginx::commands(&prefix);
        let confdir = Confdir::new(&format!(
            "backend = \"etcdv3\"\nnodes = [\"{}\"]\n",
            etcd.endpoint
        ));
        confdir.resource(
            "nginx.toml",
            &upstreams_resource(
                &dest,
                &format!(
                    "check_cmd = \"{check}\"\nreload_cmd = \"echo reload >> {} && {reload}\"\n",
                    reloads.display()
                ),
            ),
        );
        World {
            etcd,
            confdir,
            prefix,
            port,
            dest,
            reloads,
            _tmp: tmp,
        }
    }

    fn reload_count(&self) -> usize {
        std::fs::read_to_string(&self.reloads)
            .map(|s| s.lines().count())
            .unwrap_or(0)
    }

    fn dest_text(&self) -> String {
        std::fs::read_to_string(&self.dest).expect("dest readable")
    }

    fn leftovers(&self) -> Vec<String> {
        std::fs::read_dir(self.dest.parent().expect("dest dir"))
            .expect("list dest dir")
            .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
            .filter(|n| n != "upstreams.conf")
            .collect()
    }
}

fn upstream(name: &str, servers: &[String]) -> String {
    let lines: String = servers
        .iter()
        .map(|s| format!("    server {s};\n"))
        .collect();
    format!("upstream {name} {{\n{lines}}}\n")
}

#[test]
fn onetime_renders_seed_keys_and_nginx_routes_to_them() {
    let w = World::new();
    let (a, b) = (Backend::start(), Backend::start());
    for be in [&a, &b] {
        w.etcd
            .put(&format!("/search_PRE/127.0.0.1-{}", be.port), &be.addr());
    }
    w.etcd.put("/web_PRO/127.0.0.1-9", "127.0.0.1:9");
    let _nginx = Nginx::start(&w.prefix, w.port);

    let out = w.confdir.run(&["--onetime"]);
    assert!(out.status.success(), "{}", stderr(&out));

    let mut servers = vec![a.addr(), b.addr()];
    servers.sort();
    let text = w.dest_text();
    assert!(text.contains(&upstream("search_PRE", &servers)), "{text}");
    assert!(
        text.contains(&upstream("web_PRO", &["127.0.0.1:9".to_string()])),
        "{text}"
    );
    assert!(
        text.find("search_PRE") < text.find("web_PRO"),
        "services sorted: {text}"
    );
    assert_eq!(w.reload_count(), 1);
    assert!(
        w.leftovers().is_empty(),
        "stage files left: {:?}",
        w.leftovers()
    );

    // nginx now round-robins over both registered backends.
    let mut seen = std::collections::BTreeSet::new();
    wait_for(
        "nginx to route to both backends",
        Duration::from_secs(10),
        || {
            if let Some((200, body)) = http_get(w.port, "/search_PRE/") {
                seen.insert(body);
            }
            (seen.len() == 2).then_some(())
        },
    );
    assert_eq!(seen, [a.name(), b.name()].into_iter().collect());
}

#[test]
fn unchanged_render_does_not_reload() {
    let w = World::new();
    w.etcd.put("/search_PRE/127.0.0.1-86", "127.0.0.1:86");
    let _nginx = Nginx::start(&w.prefix, w.port);
    for _ in 0..3 {
        let out = w.confdir.run(&["--onetime"]);
        assert!(out.status.success(), "{}", stderr(&out));
    }
    assert_eq!(w.reload_count(), 1, "only the first run changed anything");
    w.etcd.put("/search_PRE/127.0.0.1-87", "127.0.0.1:87");
    assert!(w.confdir.run(&["-onetime"]).status.success());
    assert_eq!(w.reload_count(), 2);
}

#[test]
fn failing_check_puts_the_previous_file_back_byte_for_byte() {
    let w = World::new();
    w.etcd.put("/search_PRE/127.0.0.1-86", "127.0.0.1:86");
    let _nginx = Nginx::start(&w.prefix, w.port);
    assert!(w.confdir.run(&["--onetime"]).status.success());
    let before = std::fs::read(&w.dest).expect("dest");

    // A check that refuses one server (as nginx -t refuses what it cannot load), with its reason.
    let (check, reload) = Nginx::commands(&w.prefix);
    let refuse = format!(
        "{check} && if grep -q 127.0.0.1:99 {}; then echo refusing 127.0.0.1:99 >&2; exit 1; fi",
        w.dest.display()
    );
    w.confdir.resource(
        "nginx.toml",
        &upstreams_resource(
            &w.dest,
            &format!(
                "check_cmd = \"{refuse}\"\nreload_cmd = \"echo reload >> {} && {reload}\"\n",
                w.reloads.display()
            ),
        ),
    );
    w.etcd.put("/search_PRE/x-99", "127.0.0.1:99");
    let out = w.confdir.run(&["--onetime"]);
    assert_eq!(out.status.code(), Some(5), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("check_cmd failed, previous file kept"),
        "{err}"
    );
    assert!(
        err.contains("refusing 127.0.0.1:99"),
        "the check's complaint is logged: {err}"
    );
    assert_eq!(
        std::fs::read(&w.dest).expect("dest"),
        before,
        "previous file back byte for byte"
    );
    assert_eq!(w.reload_count(), 1, "no reload after a failed check");
    assert!(
        w.leftovers().is_empty(),
        "stage files left: {:?}",
        w.leftovers()
    );
    assert_eq!(
        http_get(w.port, "/search_PRE/").map(|r| r.0),
        Some(502),
        "nginx still serves the old config"
    );
}

#[test]
fn check_naming_the_staged_file_runs_before_the_swap() {
    let etcd = Etcd::start();
    etcd.put("/app/port", "8080");
    let tmp = tempfile::tempdir().expect("tempdir");
    let dest = tmp.path().join("app.conf");
    std::fs::write(&dest, "old\n").expect("dest");
    let confdir = Confdir::new(&format!("nodes = [\"{}\"]\n", etcd.endpoint));
    confdir.template("app.tmpl", "port = {{ getv('/app/port') }}\n");
    let resource = |check: &str, keep: bool| {
        format!(
            "[template]\nsrc = \"app.tmpl\"\ndest = \"{}\"\nkeys = [\"/app\"]\ncheck_cmd = \"{check}\"\nkeep_stage_file = {keep}\n",
            dest.display()
        )
    };
    confdir.resource("app.toml", &resource("grep -q 9090 {{.src}}", false));
    let out = confdir.run(&["--onetime"]);
    assert_eq!(out.status.code(), Some(5), "{}", stderr(&out));
    assert_eq!(std::fs::read_to_string(&dest).expect("dest"), "old\n");
    assert_eq!(
        std::fs::read_dir(tmp.path()).expect("ls").count(),
        1,
        "no stage file left"
    );

    confdir.resource("app.toml", &resource("grep -q 9090 {{src}}", true));
    assert_eq!(confdir.run(&["--onetime"]).status.code(), Some(5));
    assert_eq!(
        std::fs::read_dir(tmp.path()).expect("ls").count(),
        2,
        "keep_stage_file keeps it"
    );

    confdir.resource("app.toml", &resource("grep -q 8080 {{ src }}", false));
    let out = confdir.run(&["--onetime"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        std::fs::read_to_string(&dest).expect("dest"),
        "port = 8080\n"
    );
}

#[test]
fn noop_prints_a_diff_and_exit_code_gates_on_it() {
    let w = World::new();
    w.etcd.put("/search_PRE/127.0.0.1-86", "127.0.0.1:86");
    std::fs::write(&w.dest, "# old\n").expect("dest");

    let out = w.confdir.run(&["--onetime", "--noop", "--exit-code"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let diff = stdout(&out);
    let dest = w.dest.display().to_string();
    assert!(
        diff.starts_with(&format!("--- {dest}\n+++ {dest} (rendered)\n")),
        "{diff}"
    );
    assert!(diff.contains("-# old\n"), "{diff}");
    assert!(diff.contains("+    server 127.0.0.1:86;\n"), "{diff}");
    assert_eq!(w.dest_text(), "# old\n", "noop writes nothing");
    assert_eq!(w.reload_count(), 0, "noop runs no command");

    assert_eq!(
        w.confdir.run(&["-onetime", "-noop"]).status.code(),
        Some(0),
        "without --exit-code a diff is success"
    );
    let _nginx = Nginx::start(&w.prefix, w.port);
    assert!(w.confdir.run(&["--onetime"]).status.success());
    let out = w.confdir.run(&["--onetime", "--noop", "--exit-code"]);
    assert_eq!(out.status.code(), Some(0), "in sync: {}", stdout(&out));
    assert_eq!(stdout(&out), "");
}

#[test]
fn invalid_values_are_left_out_and_named_and_an_empty_service_stays_valid() {
    let w = World::new();
    w.etcd.put("/search_PRE/127.0.0.1-86", "127.0.0.1:86");
    let evil = "127.0.0.1:1; } server { listen 127.0.0.1:38090; location / { return 200 pwned; } } upstream x { server 127.0.0.1:2";
    w.etcd.put("/search_PRE/evil", evil);
    w.etcd.put("/broken_PRE/10.0.0.1-80", "not an address");
    let _nginx = Nginx::start(&w.prefix, w.port);

    let out = w.confdir.run(&["--onetime"]);
    assert!(
        out.status.success(),
        "the valid rest still renders: {}",
        stderr(&out)
    );
    let err = stderr(&out);
    assert!(err.contains("key \"/search_PRE/evil\": value"), "{err}");
    assert!(
        err.contains(
            "key \"/broken_PRE/10.0.0.1-80\": value \"not an address\" is not a valid host:port"
        ),
        "{err}"
    );
    let text = w.dest_text();
    assert!(!text.contains("pwned"), "{text}");
    assert!(
        text.contains("upstream broken_PRE {\n    # no live instance"),
        "{text}"
    );
    assert!(text.contains("server 127.0.0.1:1;"), "{text}");
    assert_eq!(
        w.reload_count(),
        1,
        "nginx -t accepted the empty service's block"
    );
}

#[test]
fn keys_with_dot_segments_are_refused_not_cleaned_into_another_service() {
    let w = World::new();
    w.etcd.put("/search_PRE/10.0.0.1-80", "10.0.0.1:80");
    w.etcd.put("/search_PRE/zz/../10.0.0.1-80", "6.6.6.7:80");
    w.etcd
        .put("/attacker_PRE/../search_PRE/6.6.6.6-80", "6.6.6.6:80");
    let _nginx = Nginx::start(&w.prefix, w.port);
    let out = w.confdir.run(&["--onetime"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = w.dest_text();
    assert!(
        text.contains(&upstream("search_PRE", &["10.0.0.1:80".to_string()])),
        "{text}"
    );
    assert!(!text.contains("6.6.6."), "{text}");
    let err = stderr(&out);
    for key in [
        "/attacker_PRE/../search_PRE/6.6.6.6-80",
        "/search_PRE/zz/../10.0.0.1-80",
    ] {
        assert!(
            err.lines()
                .any(|l| l.contains("key left out: its path is not clean")
                    && l.contains(&format!("key=\"{key}\""))),
            "{err}"
        );
    }
}

#[test]
fn file_backend_renders_an_etcdctl_dump_and_yaml() {
    let etcd = Etcd::start();
    etcd.put("/search_PRE/172.18.100.31-86", "172.18.100.31:86");
    let tmp = tempfile::tempdir().expect("tempdir");
    let dump = tmp.path().join("dump.json");
    std::fs::write(&dump, etcd.ctl(&["get", "--prefix", "/", "-w", "json"])).expect("dump");
    let yaml = tmp.path().join("keys.yaml");
    std::fs::write(&yaml, "web_PRO:\n  10.0.0.1-80: 10.0.0.1:80\n").expect("yaml");
    drop(etcd);

    let dest = tmp.path().join("upstreams.conf");
    let confdir = Confdir::new("backend = \"file\"\n");
    confdir.resource("nginx.toml", &upstreams_resource(&dest, ""));
    let out = confdir.run(&[
        "-onetime",
        "-file",
        dump.to_str().expect("utf8"),
        "--file",
        yaml.to_str().expect("utf8"),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = std::fs::read_to_string(&dest).expect("dest");
    assert!(
        text.contains(&upstream("search_PRE", &["172.18.100.31:86".to_string()])),
        "{text}"
    );
    assert!(
        text.contains(&upstream("web_PRO", &["10.0.0.1:80".to_string()])),
        "{text}"
    );
}

#[test]
fn unreachable_etcd_is_a_prompt_error_naming_the_endpoints() {
    let port = free_port();
    let confdir = Confdir::new(&format!("nodes = [\"http://127.0.0.1:{port}\"]\n"));
    let dest = confdir.path().join("out.conf");
    confdir.resource("nginx.toml", &upstreams_resource(&dest, ""));
    let start = Instant::now();
    let out = confdir.run(&["--onetime"]);
    assert!(
        start.elapsed() < Duration::from_secs(15),
        "bounded: {:?}",
        start.elapsed()
    );
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains(&format!(
            "etcd unreachable: http://127.0.0.1:{port}: Connection refused"
        )),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    assert!(!dest.exists());
}

/// `confd-rs --confdir etc-confd --noop` from the repo root, over a key file holding `keys`.
fn example_noop(keys: &str, extra: &[&str]) -> std::process::Output {
    let tmp = tempfile::tempdir().expect("tempdir");
    let file = tmp.path().join("keys.yaml");
    std::fs::write(&file, keys).expect("keys");
    std::process::Command::new(BIN)
        .current_dir(REPO)
        .args([
            "--confdir",
            "etc-confd",
            "--onetime",
            "--noop",
            "--backend",
            "file",
            "--file",
        ])
        .arg(&file)
        .args(extra)
        .output()
        .expect("run")
}

#[test]
fn shipped_example_confdir_loads_and_renders_from_the_repo_root() {
    let out = example_noop("search_PRE:\n  172.18.100.31-86: 172.18.100.31:86\n", &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("+upstream search_PRE {\n+    server 172.18.100.31:86;\n+}\n"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn json_logs_are_one_object_per_line_for_log_shippers() {
    let out = example_noop("a_PRE:\n  x: not-an-address\n", &["--log-format", "json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let lines: Vec<serde_json::Value> = stderr(&out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let dropped = lines
        .iter()
        .find(|l| l["level"] == "ERROR")
        .expect("an error line");
    assert_eq!(
        dropped["message"],
        "key \"/a_PRE/x\": value \"not-an-address\" is not a valid host:port; left out"
    );
    assert!(dropped["resource"]
        .as_str()
        .is_some_and(|r| r.ends_with("conf.d/nginx-upstreams.toml")));
}

#[test]
fn sync_only_writes_files_and_runs_no_command() {
    let confdir = Confdir::new("backend = \"file\"\n");
    let keys = confdir.path().join("keys.yaml");
    std::fs::write(&keys, "sync_PRE:\n  a: 10.0.0.1:80\n").expect("keys");
    let dest = confdir.path().join("upstreams.conf");
    confdir.resource(
        "nginx.toml",
        &upstreams_resource(&dest, "check_cmd = \"exit 1\"\nreload_cmd = \"exit 1\"\n"),
    );
    let file = keys.to_str().expect("utf-8");
    let out = confdir.run(&["--onetime", "-sync-only", "--file", file]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(std::fs::read_to_string(&dest)
        .expect("dest")
        .contains("server 10.0.0.1:80;"));

    // Without it the same commands run, and the failing check keeps the file as it was.
    std::fs::write(&keys, "sync_PRE:\n  a: 10.0.0.2:80\n").expect("keys");
    let out = confdir.run(&["--onetime", "--file", file]);
    assert_eq!(out.status.code(), Some(5), "{}", stderr(&out));
    assert!(std::fs::read_to_string(&dest)
        .expect("dest")
        .contains("server 10.0.0.1:80;"));
}

#[test]
fn more_keys_than_one_range_page_are_all_read_at_one_revision() {
    let etcd = Etcd::start();
    etcd.load_instances(12_000);
    let tmp = tempfile::tempdir().expect("tempdir");
    let dest = tmp.path().join("upstreams.conf");
    let confdir = Confdir::new(&format!("nodes = [\"{}\"]\n", etcd.endpoint));
    confdir.resource("nginx.toml", &upstreams_resource(&dest, ""));
    let out = confdir.run(&["--onetime"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = std::fs::read_to_string(&dest).expect("dest");
    assert_eq!(text.matches("upstream ").count(), 1_200);
    assert_eq!(text.matches("    server ").count(), 12_000);
    assert!(
        text.contains("upstream svc1199_PRE {") && text.contains("server 10.4.199.1:8080;"),
        "the last page too"
    );
}

/// A file-backend confdir (keys in `keys.yaml`) rendering the shipped template into
/// `upstreams.conf`, with `extra` resource lines.
fn file_setup(extra: &str) -> (Confdir, PathBuf, Vec<String>) {
    let confdir = Confdir::new("backend = \"file\"\n");
    let keys = confdir.path().join("keys.yaml");
    std::fs::write(&keys, "web_PRO:\n  10.0.0.1-80: 10.0.0.1:80\n").expect("keys");
    let dest = confdir.path().join("upstreams.conf");
    confdir.resource("nginx.toml", &upstreams_resource(&dest, extra));
    let args = vec!["--file".to_string(), keys.display().to_string()];
    (confdir, dest, args)
}

fn run_with(confdir: &Confdir, args: &[String], more: &[&str]) -> std::process::Output {
    let all: Vec<&str> = more
        .iter()
        .copied()
        .chain(args.iter().map(String::as_str))
        .collect();
    confdir.run(&all)
}

#[test]
fn noop_and_onetime_agree_on_a_mode_only_change() {
    use std::os::unix::fs::PermissionsExt;
    let (confdir, dest, args) = file_setup("mode = \"0644\"\n");
    let out = run_with(&confdir, &args, &["--onetime"]);
    assert!(out.status.success(), "{}", stderr(&out));
    std::fs::set_permissions(&dest, std::fs::Permissions::from_mode(0o600)).expect("chmod");

    let noop = run_with(&confdir, &args, &["--onetime", "--noop", "--exit-code"]);
    assert_eq!(noop.status.code(), Some(1), "{}", stderr(&noop));
    assert!(
        stdout(&noop).contains("mode 0600 -> 0644"),
        "{}",
        stdout(&noop)
    );
    let out = run_with(&confdir, &args, &["--onetime"]);
    assert!(stderr(&out).contains("updated"), "{}", stderr(&out));
    let mode = std::fs::metadata(&dest).expect("md").permissions().mode() & 0o7777;
    assert_eq!(mode, 0o644);
    let noop = run_with(&confdir, &args, &["--onetime", "--noop", "--exit-code"]);
    assert_eq!(noop.status.code(), Some(0), "{}", stdout(&noop));
}

#[test]
fn a_run_killed_between_swap_and_check_is_undone_and_checked_at_the_next_start() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let checking = tmp.path().join("checking");
    let check = format!("touch {} && sleep 2", checking.display());
    let (confdir, dest, args) = file_setup(&format!("check_cmd = \"{check}\"\n"));
    std::fs::write(&dest, "# the last good file\n").expect("old dest");

    // Killed while its check runs: the new, unchecked file is in place.
    let mut child = std::process::Command::new(BIN)
        .arg("--confdir")
        .arg(confdir.path())
        .arg("--onetime")
        .args(&args)
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start");
    wait_for("the check to start", Duration::from_secs(10), || {
        checking.exists().then_some(())
    });
    child.kill().expect("SIGKILL");
    child.wait().expect("reap");
    assert!(read(&dest).contains("upstream web_PRO"), "swapped in");

    // The next start puts the last good file back and checks the render again: a refusing
    // check now keeps the old file, instead of taking the unchecked one as "unchanged".
    confdir.resource(
        "nginx.toml",
        &upstreams_resource(&dest, "check_cmd = \"false\"\n"),
    );
    let out = run_with(&confdir, &args, &["--onetime"]);
    assert_eq!(out.status.code(), Some(5), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("an earlier run stopped before checking this file"),
        "{}",
        stderr(&out)
    );
    assert_eq!(read(&dest), "# the last good file\n");
    let names: Vec<String> = std::fs::read_dir(confdir.path())
        .expect("ls")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".upstreams"))
        .collect();
    assert!(names.is_empty(), "nothing left beside dest: {names:?}");
}

#[test]
fn a_failed_reload_is_still_owed_after_a_restart() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let reloads = tmp.path().join("reloads");
    let (confdir, dest, args) = file_setup("reload_cmd = \"false\"\n");
    let out = run_with(&confdir, &args, &["--onetime"]);
    assert_eq!(out.status.code(), Some(5), "{}", stderr(&out));
    assert!(
        read(&dest).contains("upstream web_PRO"),
        "the file is in place"
    );

    let ok = format!("reload_cmd = \"echo reload >> {}\"\n", reloads.display());
    confdir.resource("nginx.toml", &upstreams_resource(&dest, &ok));
    let out = run_with(&confdir, &args, &["--onetime"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        read(&reloads),
        "reload\n",
        "the unchanged file's reload was owed"
    );
    let out = run_with(&confdir, &args, &["--onetime"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(read(&reloads), "reload\n", "and is not owed any more");
}

fn read(path: &std::path::Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// A host name that does not resolve is left out (nginx would refuse the whole config for it),
/// while names that resolve and the other services render. confd-rs and its nginx -t run in a
/// private mount namespace with their own /etc/hosts and a resolv.conf pointing at 127.0.0.1:
/// no DNS query leaves the host.
#[test]
fn an_unresolvable_host_name_is_left_out_and_the_rest_still_renders() {
    let w = World::new();
    w.etcd.put("/search_PRE/good-80", "good.test:80");
    w.etcd.put("/search_PRE/nope-80", "nope.invalid:80");
    w.etcd.put("/web_PRE/10.0.0.1-80", "10.0.0.1:80");
    // nginx -t checks in the namespace; no running nginx is reloaded (it would resolve outside).
    let (check, _) = Nginx::commands(&w.prefix);
    w.confdir.resource(
        "nginx.toml",
        &upstreams_resource(&w.dest, &format!("check_cmd = \"{check}\"\n")),
    );
    let hosts = w.confdir.path().join("hosts");
    std::fs::write(&hosts, "127.0.0.1 localhost\n127.0.0.1 good.test\n").expect("hosts");
    let run = dns_isolated(
        &format!(
            "mount --bind {} /etc/hosts && exec {BIN} --confdir {} --onetime",
            hosts.display(),
            w.confdir.path().display()
        ),
        w.confdir.path(),
    );
    let out = std::process::Command::new("sh")
        .args(["-c", &run])
        .output()
        .expect("run");
    assert!(out.status.success(), "{}", stderr(&out));
    let text = w.dest_text();
    assert!(text.contains("server good.test:80;"), "{text}");
    assert!(!text.contains("nope.invalid"), "{text}");
    assert!(text.contains("server 10.0.0.1:80;"), "{text}");
    assert!(
        stderr(&out).contains("host \"nope.invalid\" does not resolve"),
        "{}",
        stderr(&out)
    );
}
