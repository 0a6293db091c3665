//! The watch daemon against a real etcd (and nginx where routing is the point).

mod support;

use std::path::{Path, PathBuf};
use std::time::Duration;

use support::*;

const SOON: Duration = Duration::from_secs(10);

/// A confdir rendering the shipped template from `endpoints` into `<tmp>/upstreams.conf`, with a
/// reload_cmd that counts reloads (and reloads `nginx` when given its prefix).
struct Setup {
    confdir: Confdir,
    dest: PathBuf,
    reloads: PathBuf,
    tmp: tempfile::TempDir,
}

impl Setup {
    fn new(endpoints: &[&str], nginx: Option<&Path>, extra: &str) -> Setup {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dest = match nginx {
            Some(prefix) => prefix.join("conf.d/upstreams.conf"),
            None => tmp.path().join("upstreams.conf"),
        };
        let reloads = tmp.path().join("reloads.log");
        let commands = match nginx {
            Some(prefix) => {
                let (check, reload) = Nginx::commands(prefix);
                format!(
                    "check_cmd = \"{check}\"\nreload_cmd = \"echo reload >> {} && {reload}\"\n",
                    reloads.display()
                )
            }
            None => format!("reload_cmd = \"echo reload >> {}\"\n", reloads.display()),
        };
        let nodes: Vec<String> = endpoints.iter().map(|e| format!("\"{e}\"")).collect();
        let confdir = Confdir::new(&format!("nodes = [{}]\n{extra}", nodes.join(", ")));
        confdir.resource("nginx.toml", &upstreams_resource(&dest, &commands));
        Setup {
            confdir,
            dest,
            reloads,
            tmp,
        }
    }

    fn reload_count(&self) -> usize {
        std::fs::read_to_string(&self.reloads)
            .map(|s| s.lines().count())
            .unwrap_or(0)
    }

    fn text(&self) -> String {
        std::fs::read_to_string(&self.dest).unwrap_or_default()
    }

    fn wait_text(&self, what: &str, cond: impl Fn(&str) -> bool) -> String {
        wait_for(what, SOON, || {
            let t = self.text();
            cond(&t).then_some(t)
        })
    }

    fn leftovers(&self) -> Vec<String> {
        std::fs::read_dir(self.dest.parent().expect("dir"))
            .expect("ls")
            .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
            .filter(|n| n.ends_with(".stage"))
            .collect()
    }
}

fn server(addr: &str) -> String {
    format!("server {addr};")
}

#[test]
fn put_and_delete_reach_the_file_and_nginx() {
    let etcd = Etcd::start();
    let tmp = tempfile::tempdir().expect("tempdir");
    let (prefix, port) = Nginx::configure(tmp.path());
    std::fs::write(prefix.join("conf.d/upstreams.conf"), "").expect("empty upstreams");
    let _nginx = Nginx::start(&prefix, port);
    let s = Setup::new(&[&etcd.endpoint], Some(&prefix), "");
    let _d = s.confdir.daemon(&[]);
    s.wait_text("the first render", |t| t.starts_with("# Generated"));

    let (a, b) = (Backend::start(), Backend::start());
    etcd.put(&format!("/search_PRE/127.0.0.1-{}", a.port), &a.addr());
    s.wait_text("backend a in the file", |t| t.contains(&server(&a.addr())));
    wait_for("nginx to route to a", SOON, || {
        (http_get(port, "/search_PRE/")? == (200, a.name())).then_some(())
    });

    etcd.put(&format!("/search_PRE/127.0.0.1-{}", b.port), &b.addr());
    etcd.ctl(&["del", &format!("/search_PRE/127.0.0.1-{}", a.port)]);
    s.wait_text("a gone, b in", |t| {
        !t.contains(&server(&a.addr())) && t.contains(&server(&b.addr()))
    });
    // nginx -s reload returns before the new workers serve: wait for a steady answer.
    wait_for("nginx to route to b only", SOON, || {
        (0..10)
            .all(|_| http_get(port, "/search_PRE/") == Some((200, b.name())))
            .then_some(())
    });
}

#[test]
fn a_burst_is_coalesced_and_nothing_is_dropped() {
    let etcd = Etcd::start();
    // A generous window: etcdctl puts on a loaded CI machine can be ~100 ms apart.
    let s = Setup::new(&[&etcd.endpoint], None, "coalesce_window_ms = 400\n");
    let d = s.confdir.daemon(&[]);
    s.wait_text("the first render", |t| t.starts_with("# Generated"));
    // The first render creates the file and reloads once; count from after that reload.
    wait_for("the first reload", SOON, || {
        (s.reload_count() >= 1).then_some(())
    });
    let before = s.reload_count();

    for i in 1..=50 {
        etcd.put(
            &format!("/burst_PRE/10.0.0.{i}-80"),
            &format!("10.0.0.{i}:80"),
        );
    }
    let text = s.wait_text("all 50 instances", |t| {
        t.matches("server 10.0.0.").count() == 50
    });
    assert!(text.contains(&server("10.0.0.50:80")), "{text}");
    wait_for("the reload after the last apply", SOON, || {
        (s.reload_count() > before).then_some(())
    });
    let reloads = s.reload_count() - before;
    assert!(
        (1..=2).contains(&reloads),
        "50 puts caused {reloads} reloads\n{}",
        d.log()
    );
}

#[test]
fn unchanged_renders_do_not_reload() {
    let etcd = Etcd::start();
    let s = Setup::new(&[&etcd.endpoint], None, "");
    let d = s.confdir.daemon(&[]);
    etcd.put("/web_PRE/10.0.0.1-80", "10.0.0.1:80");
    // Keys the template ignores (an invalid service name) and a put of the same value.
    etcd.put("/bad name/x", "10.0.0.9:80");
    etcd.put("/web_PRE/10.0.0.1-80", "10.0.0.1:80");
    etcd.put("/web_PRE/10.0.0.2-80", "10.0.0.2:80");
    s.wait_text("the second instance", |t| t.contains("10.0.0.2:80"));
    // Events apply in order, so once the last change's reload is in, every reload is counted:
    // at most one per distinct file (empty, one instance, two instances), none for the no-ops.
    let distinct_files = 3;
    wait_for("the last reload", SOON, || {
        (s.reload_count() >= distinct_files - 1).then_some(())
    });
    assert!(s.reload_count() <= distinct_files, "{}", d.log());
}

#[test]
fn etcd_killed_and_restarted_then_changed_right_away() {
    let mut etcd = Etcd::start();
    let s = Setup::new(&[&etcd.endpoint], None, "");
    let d = s.confdir.daemon(&[]);
    etcd.put("/a_PRE/10.0.0.1-80", "10.0.0.1:80");
    s.wait_text("first instance", |t| t.contains("10.0.0.1:80"));

    etcd.kill();
    wait_for("the outage to be logged", SOON, || {
        d.log()
            .contains("keeping the last good files")
            .then_some(())
    });
    assert!(
        s.text().contains("10.0.0.1:80"),
        "files kept during the outage"
    );
    etcd.restart();
    etcd.put("/a_PRE/10.0.0.2-80", "10.0.0.2:80");
    s.wait_text("the change made right after the restart", |t| {
        t.contains("10.0.0.2:80")
    });
    assert_eq!(
        d.log().matches("keeping the last good files").count(),
        1,
        "logged once per state change\n{}",
        d.log()
    );
}

#[test]
fn etcd_rebuilt_empty_under_a_running_daemon_is_resynced() {
    let mut etcd = Etcd::start();
    let s = Setup::new(&[&etcd.endpoint], None, "");
    let d = s.confdir.daemon(&[]);
    for i in 1..=5 {
        etcd.put(
            &format!("/old_PRE/10.0.0.{i}-80"),
            &format!("10.0.0.{i}:80"),
        );
    }
    s.wait_text("old instances", |t| t.contains("10.0.0.5:80"));

    etcd.rebuild_empty();
    etcd.put("/new_PRE/10.0.1.1-80", "10.0.1.1:80");
    let text = s.wait_text("the rebuilt store's content", |t| t.contains("10.0.1.1:80"));
    assert!(!text.contains("old_PRE"), "{text}");
    assert!(d.log().contains("revision went back"), "{}", d.log());
}

#[test]
fn compaction_past_the_daemons_revision_resyncs() {
    let mut etcd = Etcd::start();
    let s = Setup::new(&[&etcd.endpoint], None, "");
    let d = s.confdir.daemon(&[]);
    etcd.put("/c_PRE/10.0.0.1-80", "10.0.0.1:80");
    s.wait_text("first instance", |t| t.contains("10.0.0.1:80"));

    // Freeze the daemon, change history behind its back and compact it away.
    d.signal("STOP");
    etcd.kill();
    etcd.restart();
    etcd.put("/c_PRE/10.0.0.2-80", "10.0.0.2:80");
    etcd.ctl(&["del", "/c_PRE/10.0.0.1-80"]);
    let rev = etcd.revision().to_string();
    etcd.ctl(&["compact", &rev]);
    d.signal("CONT");

    let text = s.wait_text("the post-compaction state", |t| {
        t.contains("10.0.0.2:80") && !t.contains("10.0.0.1:80")
    });
    assert!(text.contains("upstream c_PRE"), "{text}");
    assert!(d.log().contains("was compacted"), "{}", d.log());
}

#[test]
fn losing_the_leader_of_a_three_member_cluster() {
    let mut members = Etcd::cluster(3);
    let endpoints: Vec<String> = members.iter().map(|m| m.endpoint.clone()).collect();
    let refs: Vec<&str> = endpoints.iter().map(String::as_str).collect();
    let s = Setup::new(&refs, None, "");
    let d = s.confdir.daemon(&[]);
    members[0].put("/l_PRE/10.0.0.1-80", "10.0.0.1:80");
    s.wait_text("first instance", |t| t.contains("10.0.0.1:80"));

    let leader = members.iter().position(Etcd::is_leader).expect("a leader");
    members[leader].kill();
    let survivor = &members[(leader + 1) % 3];
    for i in 2..=4 {
        let (key, value) = (format!("/l_PRE/10.0.0.{i}-80"), format!("10.0.0.{i}:80"));
        wait_for("a put through a new leader", SOON, || {
            survivor.try_ctl(&["put", &key, &value]).ok()
        });
    }
    s.wait_text("updates after the leader died", |t| {
        t.contains("10.0.0.4:80")
    });
    drop(d);
}

#[test]
fn template_edits_and_sighup_are_picked_up_and_a_broken_edit_keeps_running() {
    let etcd = Etcd::start();
    let s = Setup::new(&[&etcd.endpoint], None, "");
    let d = s.confdir.daemon(&[]);
    etcd.put("/t_PRE/10.0.0.1-80", "10.0.0.1:80");
    s.wait_text("first render", |t| t.contains("10.0.0.1:80"));
    let tmpl = s.confdir.path().join("templates/nginx-upstreams.conf.tmpl");
    let original = std::fs::read_to_string(&tmpl).expect("template");

    std::fs::write(&tmpl, format!("{original}# edited\n")).expect("edit");
    s.wait_text("the edited template, by itself", |t| {
        t.ends_with("# edited\n")
    });

    std::fs::write(&tmpl, "{% for x in %}\n").expect("break");
    wait_for("the broken edit to be reported", SOON, || {
        d.log()
            .contains("keeping the running configuration")
            .then_some(())
    });
    etcd.put("/t_PRE/10.0.0.2-80", "10.0.0.2:80");
    let text = s.wait_text("changes still applied with the running template", |t| {
        t.contains("10.0.0.2:80")
    });
    assert!(text.ends_with("# edited\n"), "{text}");

    // SIGHUP re-reads everything too (the watcher may also see this edit; either way it lands).
    std::fs::write(&tmpl, format!("{original}# hup\n")).expect("fix");
    d.signal("HUP");
    s.wait_text("the fixed template", |t| t.ends_with("# hup\n"));
}

#[test]
fn sigterm_during_a_burst_leaves_a_complete_file_and_exits_zero() {
    let etcd = Etcd::start();
    let s = Setup::new(&[&etcd.endpoint], None, "coalesce_window_ms = 20\n");
    // A slow reload: SIGTERM is likely to land mid-apply.
    std::fs::write(
        s.confdir.path().join("conf.d/nginx.toml"),
        upstreams_resource(&s.dest, "check_cmd = \"sleep 0.05\"\n"),
    )
    .expect("resource");
    let mut d = s.confdir.daemon(&[]);
    s.wait_text("first render", |t| t.starts_with("# Generated"));
    let endpoint = etcd.endpoint.clone();
    let burst = std::thread::spawn(move || {
        for i in 1..=30 {
            let (key, value) = (format!("/s_PRE/10.0.0.{i}-80"), format!("10.0.0.{i}:80"));
            let ctl = || {
                std::process::Command::new("etcdctl")
                    .args(["--endpoints", &endpoint, "put", &key, &value])
                    .output()
            };
            let _ = ctl();
        }
    });
    s.wait_text("the burst to start landing", |t| {
        t.contains("upstream s_PRE")
    });
    d.signal("TERM");
    assert_eq!(d.wait_exit(SOON), Some(0), "{}", d.log());
    let text = s.text();
    assert!(
        text.starts_with("# Generated") && text.ends_with("}\n"),
        "complete file:\n{text}"
    );
    assert_eq!(
        text.matches('{').count(),
        text.matches('}').count(),
        "{text}"
    );
    assert!(s.leftovers().is_empty(), "{:?}", s.leftovers());
    assert!(
        d.log()
            .contains("SIGTERM: finishing the unit in flight, then exiting"),
        "{}",
        d.log()
    );
    burst.join().expect("burst thread");
}

#[test]
fn metrics_and_healthz() {
    let mut etcd = Etcd::start();
    let s = Setup::new(&[&etcd.endpoint], None, "");
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let d = s.confdir.daemon(&["--metrics-addr", &addr]);
    etcd.put("/m_PRE/10.0.0.1-80", "10.0.0.1:80");
    etcd.put("/m_PRE/bad", "not-an-address");
    s.wait_text("first instance", |t| t.contains("10.0.0.1:80"));
    wait_for("healthy", SOON, || {
        (http_get(port, "/healthz")? == (200, "ok\n".to_string())).then_some(())
    });

    let res = s
        .confdir
        .path()
        .join("conf.d/nginx.toml")
        .display()
        .to_string();
    let dropped = format!("confd_dropped_values_total{{resource=\"{res}\"}} 1");
    let (status, body) = wait_for("the invalid value to be counted", SOON, || {
        http_get(port, "/metrics").filter(|(_, body)| body.contains(&dropped))
    });
    assert_eq!(status, 200);
    for needle in [
        format!("confd_applies_total{{resource=\"{res}\",result=\"updated\"}}"),
        format!("confd_last_successful_apply_timestamp_seconds{{resource=\"{res}\"}}"),
        "confd_store_connected 1".to_string(),
        "confd_watch_revision ".to_string(),
        "confd_event_to_apply_seconds_bucket".to_string(),
    ] {
        assert!(body.contains(&needle), "{needle} not in\n{body}");
    }

    etcd.kill();
    let (status, reason) = wait_for("unhealthy", SOON, || {
        http_get(port, "/healthz").filter(|r| r.0 == 503)
    });
    assert_eq!(status, 503);
    assert!(reason.starts_with("store not connected: "), "{reason}");
    assert_eq!(reason.lines().count(), 1);
    drop(d);
}

#[test]
fn a_failed_apply_is_retried_without_a_new_change() {
    let etcd = Etcd::start();
    let s = Setup::new(&[&etcd.endpoint], None, "");
    let gate = s.tmp.path().join("fail");
    std::fs::write(&gate, "").expect("gate");
    std::fs::write(
        s.confdir.path().join("conf.d/nginx.toml"),
        upstreams_resource(
            &s.dest,
            &format!("check_cmd = \"test ! -e {}\"\n", gate.display()),
        ),
    )
    .expect("resource");
    let d = s.confdir.daemon(&[]);
    etcd.put("/r_PRE/10.0.0.1-80", "10.0.0.1:80");
    wait_for("a failed check", SOON, || {
        d.log().contains("will retry").then_some(())
    });
    assert!(!s.text().contains("10.0.0.1:80"));
    std::fs::remove_file(&gate).expect("open the gate");
    s.wait_text("the retried apply", |t| t.contains("10.0.0.1:80"));
}

#[test]
fn polling_mode_still_works() {
    let etcd = Etcd::start();
    let s = Setup::new(&[&etcd.endpoint], None, "watch = false\ninterval = 1\n");
    let d = s.confdir.daemon(&[]);
    etcd.put("/p_PRE/10.0.0.1-80", "10.0.0.1:80");
    s.wait_text("the polled change", |t| t.contains("10.0.0.1:80"));
    assert!(d.log().contains("polling the store"), "{}", d.log());
}

#[test]
fn with_auth_an_expired_token_is_renewed_not_the_end_of_updates() {
    let mut etcd = Etcd::start_with(&["--auth-token-ttl=1"]);
    etcd.ctl(&["user", "add", "root:rootpw"]);
    etcd.enable_auth("confd", "s3cret");
    let s = Setup::new(
        &[&etcd.endpoint],
        None,
        "username = \"confd\"\npassword = \"s3cret\"\n",
    );
    let d = s.confdir.daemon(&[]);
    etcd.put("/auth_PRE/10.0.0.1-80", "10.0.0.1:80");
    s.wait_text("the first instance", |t| t.contains("10.0.0.1:80"));

    // A restart forgets every token; the watch must come back with a fresh one.
    etcd.kill();
    etcd.restart();
    etcd.put("/auth_PRE/10.0.0.2-80", "10.0.0.2:80");
    s.wait_text("a change after the token was lost", |t| {
        t.contains("10.0.0.2:80")
    });
    drop(d);
}

#[test]
fn the_shipped_supervisor_program_runs_the_daemon_and_stops_it_cleanly() {
    let supervisord = require("supervisord", "supervisor");
    let etcd = Etcd::start();
    let s = Setup::new(&[&etcd.endpoint], None, "");
    let dir = s.tmp.path();
    let shipped =
        std::fs::read_to_string(Path::new(REPO).join("etc-confd/confd-rs.supervisor.conf"))
            .expect("program file");
    let log = dir.join("confd-rs.log");
    let program = shipped
        .replace(
            "/usr/bin/confd-rs -confdir /etc/confd-rs",
            &format!("{BIN} -confdir {}", s.confdir.path().display()),
        )
        .replace(
            "/var/log/supervisor/confd-rs.log",
            &log.display().to_string(),
        );
    std::fs::write(dir.join("program.conf"), program).expect("program");
    let d = dir.display();
    let conf = format!(
        "[supervisord]\nnodaemon=true\nlogfile={d}/supervisord.log\npidfile={d}/supervisord.pid\n\
         [unix_http_server]\nfile={d}/supervisor.sock\n[supervisorctl]\nserverurl=unix://{d}/supervisor.sock\n\
         [rpcinterface:supervisor]\nsupervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface\n\
         [include]\nfiles = {d}/program.conf\n"
    );
    let conf_path = dir.join("supervisord.conf");
    std::fs::write(&conf_path, conf).expect("supervisord.conf");
    let mut sup = std::process::Command::new(supervisord)
        .arg("-c")
        .arg(&conf_path)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("supervisord");
    let ctl = |args: &[&str]| {
        let out = std::process::Command::new("supervisorctl")
            .arg("-c")
            .arg(&conf_path)
            .args(args)
            .output()
            .expect("supervisorctl");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };

    etcd.put("/sup_PRE/10.0.0.1-80", "10.0.0.1:80");
    s.wait_text("the daemon under supervisor to render", |t| {
        t.contains("10.0.0.1:80")
    });
    wait_for("supervisor to see it running (startsecs)", SOON, || {
        ctl(&["status", "confd-rs"])
            .contains("RUNNING")
            .then_some(())
    });
    assert!(ctl(&["stop", "confd-rs"]).contains("confd-rs: stopped"));
    let sup_log = dir.join("supervisord.log");
    wait_for("supervisor to report the exit", SOON, || {
        std::fs::read_to_string(&sup_log)
            .ok()?
            .contains("stopped: confd-rs (exit status 0)")
            .then_some(())
    });
    assert!(std::fs::read_to_string(&log)
        .expect("captured log")
        .contains("SIGTERM: finishing the unit in flight, then exiting"));
    ctl(&["shutdown"]);
    let _ = sup.wait();
}

#[test]
fn a_failed_reload_is_retried_even_though_the_file_is_in_place() {
    let etcd = Etcd::start();
    let s = Setup::new(&[&etcd.endpoint], None, "");
    let gate = s.tmp.path().join("reload-fails");
    std::fs::write(&gate, "").expect("gate");
    std::fs::write(
        s.confdir.path().join("conf.d/nginx.toml"),
        upstreams_resource(
            &s.dest,
            &format!(
                "reload_cmd = \"test ! -e {} && echo reload >> {}\"\n",
                gate.display(),
                s.reloads.display()
            ),
        ),
    )
    .expect("resource");
    let d = s.confdir.daemon(&[]);
    etcd.put("/o_PRE/10.0.0.1-80", "10.0.0.1:80");
    s.wait_text("the file", |t| t.contains("10.0.0.1:80"));
    wait_for("a failed reload", SOON, || {
        d.log().contains("reload_cmd failed").then_some(())
    });
    assert_eq!(s.reload_count(), 0);
    std::fs::remove_file(&gate).expect("let reloads work");
    wait_for_or(
        "the owed reload, with no new change",
        SOON,
        || d.log(),
        || (s.reload_count() == 1).then_some(()),
    );
}

#[test]
fn sigterm_mid_batch_stops_after_the_resource_in_flight() {
    let etcd = Etcd::start();
    etcd.put("/s_PRE/10.0.0.1-80", "10.0.0.1:80");
    let confdir = Confdir::new(&format!("nodes = [\"{}\"]\n", etcd.endpoint));
    let tmp = tempfile::tempdir().expect("tempdir");
    let dests: Vec<PathBuf> = (0..10)
        .map(|i| tmp.path().join(format!("r{i}.conf")))
        .collect();
    // A check of each staged file (it names {{src}}) runs resource by resource, before its swap.
    for (i, dest) in dests.iter().enumerate() {
        confdir.resource(
            &format!("r{i}.toml"),
            &upstreams_resource(dest, "check_cmd = \"sleep 0.3; test -s {{src}}\"\n"),
        );
    }
    let mut d = confdir.daemon(&[]);
    wait_for_or(
        "the first resource",
        SOON,
        || d.log(),
        || dests[0].exists().then_some(()),
    );
    d.signal("TERM");
    assert_eq!(d.wait_exit(SOON), Some(0), "{}", d.log());
    let written = dests.iter().filter(|p| p.exists()).count();
    assert!(
        written < dests.len(),
        "stopped mid-batch, {written} written\n{}",
        d.log()
    );
    let log = d.log();
    let pending = log
        .lines()
        .find(|l| l.contains("exiting") && l.contains("pending="))
        .unwrap_or_default();
    assert!(!pending.contains("pending=0"), "{log}");
    let leftovers: Vec<_> = std::fs::read_dir(tmp.path())
        .expect("ls")
        .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn a_daemon_starts_with_a_broken_resource_and_runs_the_others_until_it_is_fixed() {
    let etcd = Etcd::start();
    etcd.put("/s_PRE/10.0.0.1-80", "10.0.0.1:80");
    let s = Setup::new(&[&etcd.endpoint], None, "");
    let broken_dest = s.tmp.path().join("broken.conf");
    s.confdir
        .template("broken.tmpl", "{% for x in %}\n")
        .resource(
            "broken.toml",
            &format!(
                "[template]\nsrc = \"broken.tmpl\"\ndest = \"{}\"\nkeys = [\"/\"]\n",
                broken_dest.display()
            ),
        );
    let port = free_port();
    let d = s
        .confdir
        .daemon(&["--metrics-addr", &format!("127.0.0.1:{port}")]);
    s.wait_text("the good resource", |t| t.contains("10.0.0.1:80"));
    let (status, reason) = wait_for("/healthz", SOON, || http_get(port, "/healthz"));
    assert_eq!(status, 503, "{reason}");
    assert!(
        reason.contains("broken.toml") && reason.contains("broken.tmpl:1"),
        "{reason}"
    );
    assert!(
        d.log().contains("the other resources run without it"),
        "{}",
        d.log()
    );

    etcd.put("/s_PRE/10.0.0.2-80", "10.0.0.2:80");
    s.wait_text("the others keep updating", |t| t.contains("10.0.0.2:80"));

    // Fixed: picked up by itself (an edit in the confdir), applied, and healthy again.
    s.confdir
        .template("broken.tmpl", "fixed {{ getv('/s_PRE/10.0.0.1-80') }}\n");
    wait_for_or(
        "the fixed resource",
        SOON,
        || d.log(),
        || {
            std::fs::read_to_string(&broken_dest)
                .ok()
                .filter(|t| t == "fixed 10.0.0.1:80\n")
        },
    );
    wait_for("healthy", SOON, || {
        (http_get(port, "/healthz")? == (200, "ok\n".to_string())).then_some(())
    });
}

#[test]
fn a_rejected_value_is_logged_once_not_on_every_render() {
    let etcd = Etcd::start();
    let s = Setup::new(&[&etcd.endpoint], None, "");
    let d = s.confdir.daemon(&[]);
    etcd.put("/m_PRE/bad", "not-an-address");
    etcd.put("/m_PRE/10.0.0.1-80", "10.0.0.1:80");
    s.wait_text("the first instance", |t| t.contains("10.0.0.1:80"));
    for i in 2..5 {
        etcd.put(&format!("/m_PRE/10.0.0.{i}-80"), &format!("10.0.0.{i}:80"));
        s.wait_text("another render", |t| t.contains(&format!("10.0.0.{i}:80")));
    }
    assert_eq!(
        d.log().matches("value \"not-an-address\"").count(),
        1,
        "{}",
        d.log()
    );
    // A changed value is news: logged again.
    etcd.put("/m_PRE/bad", "still-not-an-address");
    wait_for_or(
        "the changed value",
        SOON,
        || d.log(),
        || {
            d.log()
                .contains("value \"still-not-an-address\"")
                .then_some(())
        },
    );
}
