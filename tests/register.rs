//! `confd-rs register` against a real etcd (and nginx + the daemon for the rolling restart).

mod support;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use support::*;

const SOON: Duration = Duration::from_secs(10);

fn agent(etcd: &Etcd, dir: &Path, name: &str, args: &[&str]) -> Daemon {
    let all: Vec<&str> = ["register", "--node", etcd.endpoint.as_str()]
        .into_iter()
        .chain(args.iter().copied())
        .collect();
    Daemon::start(&all, dir.join(format!("{name}.log")))
}

/// (value, lease id) of `key`, or None when absent.
fn get(etcd: &Etcd, key: &str) -> Option<(String, String)> {
    let out = etcd.ctl(&["get", key, "-w", "fields"]);
    let field = |name: &str| {
        out.lines()
            .find_map(|l| l.strip_prefix(&format!("\"{name}\" : ")))
            .map(|v| v.trim_matches('"').to_owned())
    };
    Some((field("Value")?, field("Lease")?))
}

fn present(etcd: &Etcd, key: &str) -> bool {
    get(etcd, key).is_some()
}

/// Waits for `key` to be present (or absent); a timeout shows the agent's log.
fn wait_present(etcd: &Etcd, key: &str, want: bool, agent: &Daemon) {
    let what = format!("{key} to be {}", if want { "registered" } else { "gone" });
    wait_for_or(
        &what,
        SOON,
        || agent.log(),
        || (present(etcd, key) == want).then_some(()),
    );
}

fn alive(pid: &str) -> bool {
    std::process::Command::new("kill")
        .args(["-0", pid.trim()])
        .status()
        .is_ok_and(|s| s.success())
}

#[test]
fn the_key_lives_on_a_lease_and_outlives_two_ttls() {
    let etcd = Etcd::start();
    let tmp = tempfile::tempdir().expect("tempdir");
    let a = agent(
        &etcd,
        tmp.path(),
        "a",
        &["--key", "/reg/a", "--value", "10.0.0.1:80", "--ttl", "1"],
    );
    wait_present(&etcd, "/reg/a", true, &a);
    let (value, lease) = get(&etcd, "/reg/a").expect("registered");
    assert_eq!(value, "10.0.0.1:80");
    assert_ne!(lease, "0", "the key is bound to a lease");
    let start = Instant::now();
    while start.elapsed() < Duration::from_millis(2500) {
        assert!(
            present(&etcd, "/reg/a"),
            "kept alive past its 1 s TTL\n{}",
            a.log()
        );
    }
}

/// An agent registering `key_args` for a long-running instance; returns it and the instance's pid
/// once the key is there.
fn agent_with_instance(etcd: &Etcd, dir: &Path, key_args: &[&str], key: &str) -> (Daemon, String) {
    let pidfile = dir.join("child.pid");
    let script = format!("echo $$ > {}; exec sleep 300", pidfile.display());
    let args: Vec<&str> = key_args
        .iter()
        .copied()
        .chain(["--", "sh", "-c", &script])
        .collect();
    let a = agent(etcd, dir, "a", &args);
    wait_present(etcd, key, true, &a);
    let pid = wait_for("the instance's pid", SOON, || {
        std::fs::read_to_string(&pidfile)
            .ok()
            .filter(|p| !p.is_empty())
    });
    (a, pid)
}

#[test]
fn sigterm_removes_the_key_at_once_then_stops_the_instance() {
    let etcd = Etcd::start();
    let tmp = tempfile::tempdir().expect("tempdir");
    let key = "/search_PRE/172.18.100.31-86";
    let parts = [
        "--app",
        "search",
        "--env",
        "PRE",
        "--ip",
        "172.18.100.31",
        "--port",
        "86",
        "--ttl",
        "10",
    ];
    let (mut a, pid) = agent_with_instance(&etcd, tmp.path(), &parts, key);
    assert_eq!(get(&etcd, key).expect("registered").0, "172.18.100.31:86");

    let start = Instant::now();
    a.signal("TERM");
    wait_present(&etcd, key, false, &a);
    let gone = start.elapsed();
    // The TTL is 10 s: the key went because the lease was revoked, not because it expired.
    assert!(gone < Duration::from_secs(2), "key gone after {gone:?}");
    assert_eq!(
        a.wait_exit(SOON),
        Some(128 + 15),
        "the instance's own exit (killed by SIGTERM)\n{}",
        a.log()
    );
    assert!(!alive(&pid), "the instance was stopped");
}

#[test]
fn sigkill_of_the_agent_lets_the_key_expire_with_its_lease() {
    let etcd = Etcd::start();
    let tmp = tempfile::tempdir().expect("tempdir");
    let (mut a, pid) = agent_with_instance(
        &etcd,
        tmp.path(),
        &["--key", "/reg/k", "--value", "v", "--ttl", "1"],
        "/reg/k",
    );
    a.signal("KILL");
    wait_present(&etcd, "/reg/k", false, &a);
    wait_for("the orphaned instance to be stopped", SOON, || {
        (!alive(&pid)).then_some(())
    });
    let _ = a.wait_exit(SOON);
}

#[test]
fn the_instances_exit_code_is_passed_on_and_the_key_removed() {
    let etcd = Etcd::start();
    let tmp = tempfile::tempdir().expect("tempdir");
    let gate = tmp.path().join("go");
    let script = format!(
        "while [ ! -e {} ]; do sleep 0.05; done; exit 7",
        gate.display()
    );
    let mut a = agent(
        &etcd,
        tmp.path(),
        "a",
        &["--key", "/reg/x", "--value", "v", "--", "sh", "-c", &script],
    );
    wait_present(&etcd, "/reg/x", true, &a);
    std::fs::write(&gate, "").expect("gate");
    assert_eq!(a.wait_exit(SOON), Some(7), "{}", a.log());
    assert!(!present(&etcd, "/reg/x"));

    let mut b = agent(
        &etcd,
        tmp.path(),
        "b",
        &[
            "--key",
            "/reg/y",
            "--value",
            "v",
            "--",
            "sh",
            "-c",
            "kill -9 $$",
        ],
    );
    assert_eq!(b.wait_exit(SOON), Some(128 + 9), "{}", b.log());
    assert!(!present(&etcd, "/reg/y"));
}

#[test]
fn a_rebuilt_etcd_gets_the_key_again() {
    let mut etcd = Etcd::start();
    let tmp = tempfile::tempdir().expect("tempdir");
    let a = agent(
        &etcd,
        tmp.path(),
        "a",
        &["--key", "/reg/r", "--value", "v", "--ttl", "2"],
    );
    wait_present(&etcd, "/reg/r", true, &a);
    etcd.rebuild_empty();
    wait_present(&etcd, "/reg/r", true, &a);
    assert!(
        a.log().contains("lease lost; registering again"),
        "{}",
        a.log()
    );
}

#[test]
fn health_gating_registers_only_while_healthy() {
    let etcd = Etcd::start();
    let tmp = tempfile::tempdir().expect("tempdir");
    let ok = tmp.path().join("healthy");
    let check = format!("test -e {}", ok.display());
    let a = agent(
        &etcd,
        tmp.path(),
        "a",
        &[
            "--key",
            "/reg/h",
            "--value",
            "v",
            "--health-cmd",
            &check,
            "--health-interval",
            "0.1",
            "--health-fails",
            "2",
            "--log-level",
            "debug",
        ],
    );
    wait_for("failing health checks", SOON, || {
        a.log().contains("health check failed").then_some(())
    });
    assert!(
        !present(&etcd, "/reg/h"),
        "not registered before it is healthy"
    );
    std::fs::write(&ok, "").expect("healthy");
    wait_present(&etcd, "/reg/h", true, &a);
    std::fs::remove_file(&ok).expect("unhealthy");
    wait_present(&etcd, "/reg/h", false, &a);
    std::fs::write(&ok, "").expect("healthy again");
    wait_present(&etcd, "/reg/h", true, &a);
}

#[test]
fn port_auto_hands_a_usable_port_to_the_instance() {
    let etcd = Etcd::start();
    let tmp = tempfile::tempdir().expect("tempdir");
    let out = tmp.path().join("env");
    let script = format!("echo $PORT $APP_PORT > {}; exec sleep 300", out.display());
    let a = agent(
        &etcd,
        tmp.path(),
        "a",
        &[
            "--app",
            "auto",
            "--env",
            "T",
            "--ip",
            "127.0.0.1",
            "--port",
            "auto",
            "--port-env",
            "APP_PORT",
            "--",
            "sh",
            "-c",
            &script,
        ],
    );
    let env = wait_for("the instance's environment", SOON, || {
        std::fs::read_to_string(&out).ok().filter(|s| !s.is_empty())
    });
    let ports: Vec<u16> = env
        .split_whitespace()
        .map(|p| p.parse().expect("a port"))
        .collect();
    assert_eq!(ports.len(), 2, "{env}");
    assert_eq!(ports[0], ports[1]);
    let key = format!("/auto_T/127.0.0.1-{}", ports[0]);
    wait_present(&etcd, &key, true, &a);
    assert_eq!(
        get(&etcd, &key).expect("registered").0,
        format!("127.0.0.1:{}", ports[0])
    );
    std::net::TcpListener::bind(("127.0.0.1", ports[0]))
        .expect("the port is free for the instance to take");
}

#[test]
fn bad_input_fails_at_once_and_leaves_no_key() {
    let mut etcd = Etcd::start();
    let tmp = tempfile::tempdir().expect("tempdir");
    let run = |args: &[&str]| {
        std::process::Command::new(BIN)
            .arg("register")
            .args(args)
            .output()
            .expect("run")
    };
    let node = etcd.endpoint.clone();

    let out = run(&[
        "--node",
        &node,
        "--app",
        "a",
        "--env",
        "E",
        "--ip",
        "10.0.0.300",
        "--port",
        "80",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        stderr(&out),
        "confd-rs: error: --ip \"10.0.0.300\": expected an IPv4/IPv6 address or `auto`\n"
    );

    let out = run(&[
        "--node",
        &node,
        "--key",
        "/reg/bad",
        "--value",
        "v",
        "--",
        "/no/such/program",
    ]);
    assert_eq!(out.status.code(), Some(127));
    assert!(
        stderr(&out).starts_with("confd-rs: error: cannot start /no/such/program: No such file"),
        "{}",
        stderr(&out)
    );
    assert!(!present(&etcd, "/reg/bad"));

    etcd.kill();
    let start = Instant::now();
    let out = run(&[
        "--node",
        &node,
        "--key",
        "/reg/bad",
        "--value",
        "v",
        "--require-etcd",
    ]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "bounded: {:?}",
        start.elapsed()
    );
    assert_eq!(
        stderr(&out),
        format!("confd-rs: error: etcd unreachable: {node}: Connection refused (os error 111)\n")
    );

    // --wait-for-etcd keeps trying instead, and registers once etcd is there.
    let a = agent(
        &etcd,
        tmp.path(),
        "a",
        &["--key", "/reg/w", "--value", "v", "--wait-for-etcd"],
    );
    wait_for("the agent to wait", SOON, || {
        a.log().contains("waiting for etcd").then_some(())
    });
    etcd.restart();
    wait_present(&etcd, "/reg/w", true, &a);
    assert!(!present(&etcd, "/reg/bad"));
}

/// An nginx instance as the app: answers `/` with its name and `/healthz` with 200, on $PORT.
fn backend_script(dir: &Path, name: &str) -> String {
    let prefix = dir.join(name);
    for d in ["conf", "logs", "tmp"] {
        std::fs::create_dir_all(prefix.join(d)).expect("dirs");
    }
    let p = prefix.display();
    let user = if std::process::Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0\n"))
    {
        "user root root;"
    } else {
        ""
    };
    let conf = format!(
        "{user}\nworker_processes 1;\npid {p}/logs/nginx.pid;\nerror_log {p}/logs/error.log;\nevents {{ worker_connections 256; }}\n\
         http {{ access_log off; client_body_temp_path {p}/tmp/b; proxy_temp_path {p}/tmp/p; fastcgi_temp_path {p}/tmp/f;\n\
         uwsgi_temp_path {p}/tmp/u; scgi_temp_path {p}/tmp/s;\n\
         server {{ listen 127.0.0.1:__PORT__; location / {{ return 200 \"{name}\"; }} }} }}\n"
    );
    std::fs::write(prefix.join("conf/nginx.conf.in"), conf).expect("conf");
    format!(
        "sed \"s/__PORT__/$PORT/\" {p}/conf/nginx.conf.in > {p}/conf/nginx.conf && exec nginx -p {p} -c {p}/conf/nginx.conf -g 'daemon off;'"
    )
}

#[test]
fn a_rolling_restart_through_nginx_loses_no_request() {
    let etcd = Etcd::start();
    let tmp = tempfile::tempdir().expect("tempdir");
    let (prefix, port) = Nginx::configure(tmp.path());
    let upstreams = prefix.join("conf.d/upstreams.conf");
    std::fs::write(&upstreams, "").expect("empty upstreams");
    let _nginx = Nginx::start(&prefix, port);
    let (check, reload) = Nginx::commands(&prefix);
    let confdir = Confdir::new(&format!("nodes = [\"{}\"]\n", etcd.endpoint));
    confdir.resource(
        "nginx.toml",
        &upstreams_resource(
            &upstreams,
            &format!("check_cmd = \"{check}\"\nreload_cmd = \"{reload}\"\n"),
        ),
    );
    let daemon = confdir.daemon(&[]);

    let start_instance = |name: &str| -> (Daemon, PathBuf) {
        let script = backend_script(tmp.path(), name);
        let args = [
            "--app",
            "roll",
            "--env",
            "PRE",
            "--ip",
            "127.0.0.1",
            "--port",
            "auto",
            "--ttl",
            "5",
            "--drain",
            "2",
            "--health-http",
            "/",
            "--health-interval",
            "0.1",
            "--",
            "sh",
            "-c",
            &script,
        ];
        let a = agent(&etcd, tmp.path(), name, &args);
        wait_for("the instance to register", SOON, || {
            a.log().contains("registered").then_some(())
        });
        (a, upstreams.clone())
    };
    // Until a reload's old workers exit they still take connections, with the config before it
    // (the first one had no `roll_PRE` upstream: 502 "no resolver"), so one worker, then a reply.
    let in_nginx = |name: &str| {
        wait_for("nginx to route to the instance", SOON, || {
            (Nginx::workers(&prefix).len() == 1
                && (0..20).any(|_| http_get(port, "/roll_PRE/") == Some((200, name.to_owned()))))
            .then_some(())
        })
    };
    let (mut a, _) = start_instance("inst-a");
    let (mut b, _) = start_instance("inst-b");
    in_nginx("inst-a");
    in_nginx("inst-b");

    let stop = Arc::new(AtomicBool::new(false));
    let (ok, bad) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let load = {
        let (stop, ok, bad) = (stop.clone(), ok.clone(), bad.clone());
        std::thread::spawn(move || {
            let deadline = Instant::now() + Duration::from_secs(60);
            while !stop.load(Ordering::SeqCst) && Instant::now() < deadline {
                match http_get(port, "/roll_PRE/") {
                    Some((200, _)) => ok.fetch_add(1, Ordering::SeqCst),
                    other => {
                        let at = std::time::UNIX_EPOCH.elapsed().unwrap_or_default();
                        eprintln!("{:.3} (unix time) non-2xx: {other:?}", at.as_secs_f64());
                        bad.fetch_add(1, Ordering::SeqCst)
                    }
                };
            }
        })
    };
    let mut replacements = Vec::new();
    for (old, new) in [(&mut a, "inst-c"), (&mut b, "inst-d")] {
        let (replacement, _) = start_instance(new);
        in_nginx(new);
        old.signal("TERM");
        assert!(old.wait_exit(SOON).is_some());
        replacements.push(replacement);
    }
    stop.store(true, Ordering::SeqCst);
    load.join().expect("load thread");
    let (ok, bad) = (ok.load(Ordering::SeqCst), bad.load(Ordering::SeqCst));
    assert!(ok > 50, "load ran: {ok} requests");
    assert_eq!(
        bad,
        0,
        "{bad} of {} requests failed during the rolling restart\n\
         confd-rs:\n{}\nagent inst-a:\n{}\nagent inst-b:\n{}\nnginx:\n{}",
        ok + bad,
        daemon.log(),
        a.log(),
        b.log(),
        std::fs::read_to_string(prefix.join("logs/error.log")).unwrap_or_default()
    );
}
