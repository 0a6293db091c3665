//! Real-cluster etcd access: a dead member, big values, TLS failures, least-privilege roles,
//! secrets kept off the command line, and an agent that does not tie the app to etcd.

mod support;

use std::path::Path;
use std::process::Output;
use std::time::{Duration, Instant};

use support::*;

const SOON: Duration = Duration::from_secs(10);

/// A confdir whose one resource renders every key under `keys` as `key=value` lines.
fn listing(confd_toml: &str, keys: &[&str]) -> (Confdir, std::path::PathBuf) {
    let confdir = Confdir::new(confd_toml);
    let dest = confdir.path().join("out.txt");
    let keys: Vec<String> = keys.iter().map(|k| format!("\"{k}\"")).collect();
    confdir
        .template(
            "list.tmpl",
            "{% for kv in gets(\"/*/*\") %}{{ kv.key }}={{ kv.value }}\n{% endfor %}",
        )
        .resource(
            "list.toml",
            &format!(
                "[template]\nsrc = \"list.tmpl\"\ndest = \"{}\"\nkeys = [{}]\n",
                dest.display(),
                keys.join(", ")
            ),
        );
    (confdir, dest)
}

/// Waits until `d`'s file at `dest` lists `value`; `what` names the moment in a failure.
fn wait_listed(d: &Daemon, dest: &Path, value: &str, what: &str, deadline: Duration) {
    wait_for_or(
        what,
        deadline,
        || d.log(),
        || read(dest).contains(value).then_some(()),
    );
}

/// Waits until `d`'s log holds `text`; `what` names the moment in a failure.
fn wait_logged(d: &Daemon, text: &str, what: &str) {
    wait_for_or(
        what,
        SOON,
        || d.log(),
        || d.log().contains(text).then_some(()),
    );
}

/// Which of `endpoints` the daemon says it watches through.
fn watched_through(d: &Daemon, endpoints: &[&str]) -> usize {
    wait_for("the daemon to say which member serves", SOON, || {
        endpoints
            .iter()
            .position(|e| d.log().contains(&format!("watching etcd endpoint={e}")))
    })
}

fn nodes(endpoints: &[&str]) -> String {
    let quoted: Vec<String> = endpoints.iter().map(|e| format!("\"{e}\"")).collect();
    format!("nodes = [{}]\n", quoted.join(", "))
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

#[test]
fn a_stopped_member_never_fails_a_run_in_any_node_order() {
    let mut members = Etcd::cluster(3);
    members[0].put("/svc_PRE/10.0.0.1-80", "10.0.0.1:80");
    let dead = members[0].endpoint.clone();
    members[0].kill();
    // When the stopped member led, the others elect a new leader first.
    wait_for("a leader among the members left", SOON, || {
        members[2].try_ctl(&["put", "/elected", "yes"]).ok()
    });
    let (a, b) = (members[1].endpoint.clone(), members[2].endpoint.clone());
    for order in [[&dead, &a, &b], [&a, &dead, &b], [&a, &b, &dead]] {
        let order: Vec<&str> = order.iter().map(|s| s.as_str()).collect();
        // Two prefixes: the snapshot goes as a transaction, at a revision one member reports.
        let (confdir, dest) = listing(&nodes(&order), &["/svc_PRE", "/web_PRE"]);
        for run in 0..5 {
            // Written through the last member, just before a run that may read through another:
            // the run still sees it.
            let key = format!("/web_PRE/10.0.1.{run}-80");
            members[2].put(&key, "10.0.1.9:80");
            let out = confdir.run(&["--onetime"]);
            assert_eq!(
                out.status.code(),
                Some(0),
                "order {order:?}, run {run}: {}",
                stderr(&out)
            );
            let listed = read(&dest);
            assert!(
                listed.starts_with("/svc_PRE/10.0.0.1-80=10.0.0.1:80\n")
                    && listed.contains(&format!("{key}=10.0.1.9:80\n")),
                "order {order:?}, run {run}: {listed}"
            );
            let out = confdir.run(&["--onetime", "--noop", "--exit-code"]);
            assert_eq!(
                out.status.code(),
                Some(0),
                "noop, order {order:?}: {}",
                stderr(&out)
            );
        }
    }

    // The agent registers through whichever member serves.
    let tmp = tempfile::tempdir().expect("tempdir");
    let nodes_flags: Vec<&str> = [&dead, &a, &b]
        .iter()
        .flat_map(|e| ["--node", e.as_str()])
        .collect();
    let args: Vec<&str> = ["register"]
        .into_iter()
        .chain(nodes_flags)
        .chain(["--key", "/svc_PRE/10.0.0.3-80", "--value", "10.0.0.3:80"])
        .collect();
    let agent = Daemon::start(&args, tmp.path().join("agent.log"));
    wait_for_or(
        "the agent's key",
        SOON,
        || agent.log(),
        || {
            members[1]
                .ctl(&["get", "/svc_PRE/10.0.0.3-80", "--print-value-only"])
                .contains("10.0.0.3:80")
                .then_some(())
        },
    );
    drop(agent);

    // The daemon renders at once, and fails over when the member it watches through dies.
    let (confdir, dest) = listing(&nodes(&[&dead, &a, &b]), &["/svc_PRE"]);
    let start = Instant::now();
    let d = confdir.daemon(&[]);
    wait_listed(&d, &dest, "10.0.0.1:80", "the first render", SOON);
    let first_render = start.elapsed();
    assert!(
        first_render < Duration::from_secs(3),
        "first render took {first_render:?}"
    );
    let (survivor, victim) = match watched_through(&d, &[&a, &b]) {
        0 => (2, 1),
        _ => (1, 2),
    };
    members[victim].kill();
    // Two of three members are gone: no quorum. Bring the first one back to restore it.
    members[0].restart();
    members[survivor].put("/svc_PRE/10.0.0.2-80", "10.0.0.2:80");
    wait_listed(
        &d,
        &dest,
        "10.0.0.2:80",
        "the change after failover",
        Duration::from_secs(20),
    );
}

#[test]
fn a_frozen_member_is_left_and_changes_come_through_another() {
    let members = Etcd::cluster(3);
    members[0].put("/svc_PRE/10.0.0.1-80", "10.0.0.1:80");
    let endpoints: Vec<&str> = members.iter().map(|m| m.endpoint.as_str()).collect();
    let (confdir, dest) = listing(&nodes(&endpoints), &["/svc_PRE"]);
    let d = confdir.daemon(&[]);
    wait_listed(&d, &dest, "10.0.0.1:80", "the first render", SOON);
    let watched = watched_through(&d, &endpoints);
    // Its connection stays open but nothing answers on it: only pings can tell.
    members[watched].freeze();
    let other = &members[(watched + 1) % members.len()];
    // When the frozen member led, the other two elect a new leader first.
    wait_for("a write through another member", SOON, || {
        other
            .try_ctl(&["put", "/svc_PRE/10.0.0.2-80", "10.0.0.2:80"])
            .ok()
    });
    wait_listed(
        &d,
        &dest,
        "10.0.0.2:80",
        "the change, through a member that answers",
        Duration::from_secs(30),
    );
    let frozen = &members[watched].endpoint;
    assert!(
        d.log().contains(&format!("etcd unreachable: {frozen}: ")),
        "the log names the frozen member: {}",
        d.log()
    );

    // Listed first, it holds a run up for a moment, not for its whole 2 s timeout: the next
    // member is tried beside it.
    let mut order = vec![frozen.as_str()];
    order.extend(endpoints.iter().filter(|e| **e != frozen.as_str()));
    let (confdir, dest) = listing(&nodes(&order), &["/svc_PRE"]);
    for run in 0..3 {
        let start = Instant::now();
        let out = confdir.run(&["--onetime"]);
        let took = start.elapsed();
        assert_eq!(out.status.code(), Some(0), "run {run}: {}", stderr(&out));
        assert!(read(&dest).contains("10.0.0.2:80"), "run {run}");
        assert!(took < Duration::from_secs(1), "run {run} took {took:?}");
    }
}

#[test]
fn a_cluster_tuned_for_go_clients_keeps_the_daemons_connection() {
    // etcd closes the connection of a client that pings more often than this, on its third
    // ping; Go's gRPC clients (confd's) ping every 10 s at most, so clusters are tuned to it.
    let etcd = Etcd::start_with(&["--grpc-keepalive-min-time=10s"]);
    etcd.put("/svc_PRE/10.0.0.1-80", "10.0.0.1:80");
    let (confdir, dest) = listing(&nodes(&[&etcd.endpoint]), &["/svc_PRE"]);
    let d = confdir.daemon(&[]);
    wait_listed(&d, &dest, "10.0.0.1:80", "the first render", SOON);
    // No event says "etcd did not close the connection": wait past the third ping, which came
    // 24 s in with pings every 6 s.
    std::thread::sleep(Duration::from_secs(35));
    etcd.put("/svc_PRE/10.0.0.2-80", "10.0.0.2:80");
    wait_listed(&d, &dest, "10.0.0.2:80", "the change", SOON);
    let log = d.log();
    assert!(!log.contains("unreachable"), "{log}");
    assert_eq!(
        log.matches("watching etcd").count(),
        1,
        "one connection: {log}"
    );
}

#[test]
fn an_address_that_is_not_etcd_is_passed_over_like_a_dead_member() {
    let etcd = Etcd::start();
    etcd.put("/svc_PRE/10.0.0.1-80", "10.0.0.1:80");
    // A wrong port in `nodes` that speaks HTTP/2, as a proxy or another gRPC service would, and
    // one that speaks HTTP/1, as etcd's own metrics port does.
    let tmp = tempfile::tempdir().expect("tempdir");
    let (port, http1) = (free_port(), free_port());
    let prefix = Nginx::minimal(
        tmp.path(),
        &format!(
            "server {{ listen 127.0.0.1:{port} http2; location / {{ return 404; }} }}\n\
             server {{ listen 127.0.0.1:{http1}; location / {{ return 404; }} }}"
        ),
    );
    let _nginx = Nginx::start(&prefix, port);
    let wrong = format!("http://127.0.0.1:{port}");
    let (confdir, dest) = listing(&nodes(&[&wrong, &etcd.endpoint]), &["/svc_PRE"]);
    let out = confdir.run(&["--onetime"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(read(&dest).contains("10.0.0.1:80"));

    // Alone, it is named with what it answered.
    let (confdir, dest) = listing(&nodes(&[&wrong]), &["/svc_PRE"]);
    let out = confdir.run(&["--onetime"]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert_eq!(
        stderr(&out),
        format!(
            "confd-rs: error: etcd unreachable: {wrong}: answers HTTP 404 Not Found, not gRPC: \
             not an etcd client URL\n"
        )
    );
    assert!(!dest.exists());
    let http1 = format!("http://127.0.0.1:{http1}");
    let (confdir, _) = listing(&nodes(&[&http1]), &["/svc_PRE"]);
    let out = confdir.run(&["--onetime"]);
    assert_eq!(
        stderr(&out),
        format!(
            "confd-rs: error: etcd unreachable: {http1}: answers in HTTP/1, not HTTP/2: not an \
             etcd client URL\n"
        )
    );
}

#[test]
fn a_node_url_that_cannot_reach_etcd_is_refused_at_load_without_its_password() {
    let (confdir, dest) = listing(
        "nodes = [\"http://127.0.0.1:2379\", \"http://confd:SECRETMARK@127.0.0.1:2379\"]\n",
        &["/svc_PRE"],
    );
    let out = confdir.run(&["--onetime"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert_eq!(
        stderr(&out),
        format!(
            "confd-rs: error: {}: nodes: \"http://***@127.0.0.1:2379\" holds a user and password, \
             which etcd v3 does not read from a URL: give them as --username (or \
             username) and --password-file (or $CONFD_PASSWORD)\n",
            confdir.path().join("confd.toml").display()
        )
    );
    // A flag is named as such; a port that is not one is said to be so, not "refused" later.
    let out = confdir.run(&["--onetime", "--node", "http://127.0.0.1:port"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert_eq!(
        stderr(&out),
        "confd-rs: error: --node: \"http://127.0.0.1:port\" has an invalid port: expected \
         http://HOST:PORT or https://HOST:PORT\n"
    );
    assert!(!dest.exists());
}

#[test]
fn a_cluster_that_takes_fewer_ranges_per_transaction_is_read_all_the_same() {
    let etcd = Etcd::start_with(&["--max-txn-ops=16"]);
    let prefixes: Vec<String> = (0..40).map(|i| format!("/app{i:02}_PRE")).collect();
    for p in &prefixes {
        etcd.put(&format!("{p}/10.0.0.1-80"), "10.0.0.1:80");
    }
    let keys: Vec<&str> = prefixes.iter().map(String::as_str).collect();
    let (confdir, dest) = listing(&nodes(&[&etcd.endpoint]), &keys);
    let out = confdir.run(&["--onetime"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(read(&dest).lines().count(), 40, "{}", read(&dest));
    assert!(
        stderr(&out).contains("(its --max-txn-ops): reading 16 at a time"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn every_member_down_names_each_endpoint_with_its_cause() {
    let (p1, p2) = (free_port(), free_port());
    let (e1, e2) = (
        format!("http://127.0.0.1:{p1}"),
        format!("http://127.0.0.1:{p2}"),
    );
    let (confdir, dest) = listing(&nodes(&[&e1, &e2]), &["/svc_PRE"]);
    let out = confdir.run(&["--onetime"]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert_eq!(
        stderr(&out),
        format!(
            "confd-rs: error: etcd unreachable: {e1}: Connection refused (os error 111); \
             {e2}: Connection refused (os error 111)\n"
        )
    );
    assert!(!dest.exists());
}

#[test]
fn big_values_are_read_and_watched() {
    let etcd = Etcd::start();
    put_big(&etcd, "/big", 5, 1 << 20);
    let confdir = Confdir::new(&nodes(&[&etcd.endpoint]));
    let dest = confdir.path().join("sizes.txt");
    confdir
        .template(
            "sizes.tmpl",
            "{% for kv in gets(\"/big/*\") %}{{ kv.key }} {{ kv.value|length }}\n{% endfor %}",
        )
        .resource(
            "sizes.toml",
            &format!(
                "[template]\nsrc = \"sizes.tmpl\"\ndest = \"{}\"\nkeys = [\"/big\"]\n",
                dest.display()
            ),
        );
    let out = confdir.run(&["--onetime"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let line = |i: usize| format!("/big/{i} {}\n", 1 << 20);
    let five: String = (0..5).map(line).collect();
    assert_eq!(read(&dest), five);

    // A restarted daemon reads them too, and a sixth arrives through the watch.
    let d = confdir.daemon(&[]);
    wait_logged(&d, "watching etcd", "the daemon to start");
    put_big(&etcd, "/big", 6, 1 << 20);
    let six: String = (0..6).map(line).collect();
    wait_for_or(
        "the sixth big value",
        SOON,
        || d.log(),
        || (read(&dest) == six).then_some(()),
    );
}

#[test]
fn a_snapshot_longer_than_a_request_deadline_is_read_to_the_end() {
    // 5 MiB through a link of 640 KiB/s: 8 s, longer than the 5 s any other request may take.
    // etcd may send 2 GiB in one answer; over a real link that takes as long.
    let etcd = Etcd::start();
    put_big(&etcd, "/big", 5, 1 << 20);
    let link = slow_link(&etcd.endpoint, 640 << 10);
    let (confdir, dest) = listing(&nodes(&[&link]), &["/big"]);
    let out = confdir.run(&["--onetime"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        read(&dest).lines().count(),
        5,
        "every big value in the file"
    );
}

/// `--onetime` against `endpoint` with the given TLS files (paths from `pki`).
fn tls_run(endpoint: &str, pki: &Pki, ca: Option<&str>, client: Option<&str>) -> Output {
    let mut toml = nodes(&[endpoint]);
    if let Some(ca) = ca {
        toml += &format!("client_cakeys = \"{}\"\n", pki.cert(ca).display());
    }
    if let Some(c) = client {
        toml += &format!(
            "client_cert = \"{}\"\nclient_key = \"{}\"\n",
            pki.cert(c).display(),
            pki.key(c).display()
        );
    }
    let (confdir, _) = listing(&toml, &["/svc_PRE"]);
    confdir.run(&["--onetime"])
}

/// Runs `case` five times: always exit 3, always the same one line, which holds `expect`.
fn stable_failure(what: &str, expect: &str, case: impl Fn() -> Output) {
    let first = case();
    assert_eq!(first.status.code(), Some(3), "{what}: {}", stderr(&first));
    assert!(
        stderr(&first).contains(expect),
        "{what}: {}",
        stderr(&first)
    );
    assert_eq!(
        stderr(&first).lines().count(),
        1,
        "{what}: {}",
        stderr(&first)
    );
    for _ in 0..4 {
        assert_eq!(
            stderr(&case()),
            stderr(&first),
            "{what}: the message is stable"
        );
    }
}

#[test]
fn tls_failures_each_give_one_stable_specific_message() {
    let pki = Pki::new();
    let etcd = Etcd::start_tls(&pki, "server");
    etcd.put("/svc_PRE/10.0.0.1-80", "10.0.0.1:80");
    let e = etcd.endpoint.clone();
    let ok = tls_run(&e, &pki, Some("ca"), Some("client"));
    assert_eq!(ok.status.code(), Some(0), "{}", stderr(&ok));

    stable_failure(
        "rejected client certificate",
        &format!("{e}: the member rejected our client certificate"),
        || tls_run(&e, &pki, Some("ca"), Some("rogue-client")),
    );
    stable_failure(
        "no client certificate",
        &format!("{e}: the member requires a client certificate"),
        || tls_run(&e, &pki, Some("ca"), None),
    );
    stable_failure(
        "unknown CA",
        &format!("{e}: the member's certificate is not signed by a CA in client_cakeys"),
        || tls_run(&e, &pki, Some("rogue-ca"), Some("client")),
    );
    let plain = e.replace("https://", "http://");
    stable_failure(
        "plain http against TLS",
        &format!("{plain}: the member speaks TLS: use an https:// URL"),
        || tls_run(&plain, &pki, None, None),
    );

    let wrong = Etcd::start_tls(&pki, "wrong-name");
    let w = wrong.endpoint.clone();
    stable_failure(
        "name mismatch",
        &format!("{w}: the member's certificate is not valid for \"127.0.0.1\" (name mismatch)"),
        || tls_run(&w, &pki, Some("ca"), Some("client")),
    );

    let cleartext = Etcd::start();
    let c = cleartext.endpoint.replace("http://", "https://");
    stable_failure(
        "TLS against a plain member",
        &format!("{c}: the member does not speak TLS"),
        || tls_run(&c, &pki, Some("ca"), Some("client")),
    );
}

#[test]
fn tls_files_that_cannot_work_are_refused_at_load() {
    let pki = Pki::new();
    let missing = pki.cert("ca").with_file_name("missing.pem");
    let (ca, cert, key) = (pki.cert("ca"), pki.cert("client"), pki.key("client"));
    let https = "https://127.0.0.1:2379";
    for (node, files, expect) in [
        (
            https,
            format!("client_cakeys = {missing:?}\n"),
            format!(
                "client_cakeys {}: No such file or directory",
                missing.display()
            ),
        ),
        (
            https,
            format!("client_cakeys = {key:?}\n"),
            format!("client_cakeys {}: no PEM certificate in it", key.display()),
        ),
        (
            https,
            format!("client_cert = {cert:?}\nclient_key = {cert:?}\n"),
            format!("client_key {}: no PEM private key in it", cert.display()),
        ),
        (
            "http://127.0.0.1:2379",
            format!("client_cakeys = {ca:?}\n"),
            "client certificates or a CA are set, but \"http://127.0.0.1:2379\" is not an \
             https:// URL"
                .to_owned(),
        ),
    ] {
        let (confdir, dest) = listing(&(nodes(&[node]) + &files), &["/svc_PRE"]);
        let out = confdir.run(&["--onetime"]);
        assert_eq!(out.status.code(), Some(2), "{expect}: {}", stderr(&out));
        let prefix = format!(
            "confd-rs: error: {}: ",
            confdir.path().join("confd.toml").display()
        );
        assert!(
            stderr(&out).starts_with(&(prefix + &expect)) && stderr(&out).lines().count() == 1,
            "{expect}: {}",
            stderr(&out)
        );
        assert!(!dest.exists());
    }
}

#[test]
fn a_new_reason_for_being_down_is_logged_when_it_comes() {
    let mut etcd = least_privilege_etcd();
    let w = WatchingAsConfd::start(&etcd);
    // The password changes while the daemon watches (an open watch is not asked again), then
    // etcd restarts: the daemon is refused first, then no longer let in.
    etcd.ctl(&["user", "delete", "confd"]);
    etcd.ctl(&["user", "add", "confd:changed"]);
    etcd.kill();
    wait_logged(&w.daemon, "etcd unreachable", "the outage in the log");
    etcd.restart();
    wait_logged(
        &w.daemon,
        "authentication failed",
        "the new cause in the log",
    );
    assert!(!w.daemon.log().contains("SECRETMARK"), "{}", w.daemon.log());
}

#[test]
fn a_rotated_password_file_is_read_again_at_the_next_connect() {
    // As a Vault agent or a mounted Kubernetes secret rotates it: the password changes in etcd,
    // then the file is replaced. No restart, no SIGHUP.
    let mut etcd = least_privilege_etcd();
    let w = WatchingAsConfd::start(&etcd);
    etcd.ctl(&["user", "delete", "confd"]);
    etcd.ctl(&["user", "add", "confd:rotated-SECRETMARK"]);
    etcd.ctl(&["user", "grant-role", "confd", "confd"]);
    let staged = w.pwfile.with_extension("new");
    std::fs::write(&staged, "rotated-SECRETMARK\n").expect("new password file");
    std::fs::rename(&staged, &w.pwfile).expect("rotate the password file");
    // The daemon's open watch was authorised before; a restart of etcd makes it log in again.
    etcd.kill();
    etcd.restart();
    etcd.put("/search_PRE/10.0.0.3-80", "10.0.0.3:80");
    wait_listed(
        &w.daemon,
        &w.dest,
        "10.0.0.3:80",
        "a render with the rotated password",
        SOON,
    );
    assert!(!w.daemon.log().contains("SECRETMARK"), "{}", w.daemon.log());
}

/// A daemon listing /search_PRE as etcd user `confd` (of [`least_privilege_etcd`]), its
/// password in a file, past its first render. Fields drop in order: the daemon first.
struct WatchingAsConfd {
    daemon: Daemon,
    dest: std::path::PathBuf,
    pwfile: std::path::PathBuf,
    _confdir: Confdir,
    _tmp: tempfile::TempDir,
}

impl WatchingAsConfd {
    fn start(etcd: &Etcd) -> WatchingAsConfd {
        let tmp = tempfile::tempdir().expect("tempdir");
        let pwfile = tmp.path().join("confd.pw");
        std::fs::write(&pwfile, password("confd")).expect("password file");
        let (confdir, dest) = listing(
            &(nodes(&[&etcd.endpoint]) + "username = \"confd\"\n"),
            &["/search_PRE"],
        );
        let daemon = confdir.daemon(&[&format!("--password-file={}", pwfile.display())]);
        wait_listed(&daemon, &dest, "10.0.0.1:80", "the first render", SOON);
        WatchingAsConfd {
            daemon,
            dest,
            pwfile,
            _confdir: confdir,
            _tmp: tmp,
        }
    }
}

/// etcd with auth on: `root` plus `confd` (read on /search_PRE and /web_PRE only) and `agent`
/// (readwrite on one key only). Passwords are the user names reversed, with a marker.
fn least_privilege_etcd() -> Etcd {
    let mut etcd = Etcd::start();
    etcd.put("/search_PRE/10.0.0.1-80", "10.0.0.1:80");
    etcd.put("/web_PRE/10.0.0.2-80", "10.0.0.2:80");
    etcd.put("/secret/x", "y");
    etcd.enable_auth("root", "rootpw");
    for (role, perms) in [
        (
            "confd",
            vec![("read", "/search_PRE", true), ("read", "/web_PRE", true)],
        ),
        (
            "agent",
            vec![("readwrite", "/search_PRE/10.0.0.9-80", false)],
        ),
    ] {
        etcd.ctl(&["role", "add", role]);
        for (perm, key, prefix) in perms {
            etcd.ctl(&[
                "role",
                "grant-permission",
                &format!("--prefix={prefix}"),
                role,
                perm,
                key,
            ]);
        }
        etcd.ctl(&["user", "add", &format!("{role}:{}", password(role))]);
        etcd.ctl(&["user", "grant-role", role, role]);
    }
    etcd
}

/// `confd-rs register` as etcd user `agent`, keeping `key` = `value` while `sleep 30` runs.
fn agent_as(etcd: &Etcd, dir: &Path, log: &str, key: &str, value: &str) -> Daemon {
    let pw = format!("--password={}", password("agent"));
    let args = [
        "register",
        "--node",
        &etcd.endpoint,
        "--username",
        "agent",
        &pw,
    ];
    let rest = ["--key", key, "--value", value, "--", "sleep", "30"];
    let all: Vec<&str> = args.iter().chain(rest.iter()).copied().collect();
    Daemon::start(&all, dir.join(format!("{log}.log")))
}

fn password(user: &str) -> String {
    format!("pw-{}-SECRETMARK", user.chars().rev().collect::<String>())
}

#[test]
fn credentials_for_an_etcd_with_auth_off_are_not_an_error() {
    // A host's confd.toml keeps its user when a cluster runs without auth (staging, say):
    // etcd's own client, and so confd, then go on without one.
    let etcd = Etcd::start();
    etcd.put("/svc_PRE/10.0.0.1-80", "10.0.0.1:80");
    let toml = nodes(&[&etcd.endpoint]) + "username = \"confd\"\npassword = \"pw-SECRETMARK\"\n";
    let (confdir, dest) = listing(&toml, &["/svc_PRE"]);
    let out = confdir.run(&["--onetime"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(read(&dest).contains("10.0.0.1:80"));
    assert!(
        stderr(&out).contains("etcd has authentication off: connecting without a user"),
        "{}",
        stderr(&out)
    );
    assert!(!stderr(&out).contains("SECRETMARK"));
}

#[test]
fn least_privilege_roles_are_enough_and_a_denial_names_key_and_user() {
    let etcd = least_privilege_etcd();
    let tmp = tempfile::tempdir().expect("tempdir");
    let pwfile = tmp.path().join("confd.pw");
    std::fs::write(&pwfile, format!("{}\n", password("confd"))).expect("password file");
    let toml = format!("{}username = \"confd\"\n", nodes(&[&etcd.endpoint]));
    let pw_flag = format!("--password-file={}", pwfile.display());

    let (confdir, dest) = listing(&toml, &["/search_PRE", "/web_PRE"]);
    let out = confdir.run(&["--onetime", &pw_flag]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        read(&dest),
        "/search_PRE/10.0.0.1-80=10.0.0.1:80\n/web_PRE/10.0.0.2-80=10.0.0.2:80\n"
    );

    // The daemon renders and watches with the same role (nothing on "/").
    std::fs::remove_file(&dest).expect("rm");
    let metrics = free_port();
    let d = confdir.daemon(&[&pw_flag, "--metrics-addr", &format!("127.0.0.1:{metrics}")]);
    wait_listed(&d, &dest, "10.0.0.2:80", "the daemon's first render", SOON);
    etcd.put("/web_PRE/10.0.0.3-80", "10.0.0.3:80");
    wait_listed(&d, &dest, "10.0.0.3:80", "a watched change", SOON);

    // The agent registers with readwrite on its own key only, and deregisters on SIGTERM.
    let a = agent_as(
        &etcd,
        tmp.path(),
        "agent",
        "/search_PRE/10.0.0.9-80",
        "10.0.0.9:80",
    );
    wait_listed(&a, &dest, "10.0.0.9:80", "the agent's key", SOON);
    a.signal("TERM");
    wait_for_or(
        "the agent's key to go",
        SOON,
        || a.log(),
        || (!read(&dest).contains("10.0.0.9:80")).then_some(()),
    );

    // A prefix outside the role: the error names the prefix and the user.
    let (outside, _) = listing(&toml, &["/search_PRE", "/secret"]);
    let out = outside.run(&["--onetime", &pw_flag]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert_eq!(
        stderr(&out),
        format!(
            "confd-rs: error: etcd at {}: user \"confd\" may not read keys under \"/secret\" (permission denied)\n",
            etcd.endpoint
        )
    );
    // A key outside the agent's role: named too.
    let denied = agent_as(&etcd, tmp.path(), "denied", "/search_PRE/10.0.0.8-80", "v");
    wait_for_or(
        "the denial",
        SOON,
        || denied.log(),
        || {
            denied
            .log()
            .contains(&format!(
                "etcd at {}: user \"agent\" may not write \"/search_PRE/10.0.0.8-80\" (permission denied)",
                etcd.endpoint
            ))
            .then_some(())
        },
    );
    // Wrong password: named as such, and the password is not in the message.
    let out = outside.run(&["--onetime", "--password", "wrong-SECRETMARK"]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("user \"confd\": "),
        "{}",
        stderr(&out)
    );
    assert!(
        stderr(&out).contains("authentication failed"),
        "{}",
        stderr(&out)
    );

    // No password anywhere it could leak: logs, errors, /metrics, /healthz.
    let (_, metrics_text) = http_get(metrics, "/metrics").expect("/metrics");
    let (_, health) = http_get(metrics, "/healthz").expect("/healthz");
    for (what, text) in [
        ("daemon log", d.log()),
        ("agent log", a.log()),
        ("denied agent log", denied.log()),
        ("metrics", metrics_text),
        ("healthz", health),
        ("error", stderr(&out)),
    ] {
        assert!(
            !text.contains("SECRETMARK"),
            "a password in the {what}: {text}"
        );
    }
}

#[test]
fn the_password_comes_from_the_environment_and_stays_out_of_commands() {
    let etcd = least_privilege_etcd();
    let tmp = tempfile::tempdir().expect("tempdir");
    let seen = tmp.path().join("seen");
    let a = std::process::Command::new(BIN)
        .args(["register", "--node", &etcd.endpoint, "--username", "agent"])
        .args([
            "--key",
            "/search_PRE/10.0.0.9-80",
            "--value",
            "10.0.0.9:80",
            "--",
        ])
        .args([
            "sh",
            "-c",
            &format!(
                "echo \"[$CONFD_PASSWORD]\" > {}; exec sleep 30",
                seen.display()
            ),
        ])
        .env("CONFD_PASSWORD", password("agent"))
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("register");
    let mut a = Daemon {
        child: a,
        log: tmp.path().join("none"),
    };
    wait_for("the key", SOON, || {
        etcd.ctl(&["get", "/search_PRE/10.0.0.9-80", "--print-value-only"])
            .contains("10.0.0.9:80")
            .then_some(())
    });
    assert_eq!(
        read(&seen),
        "[]\n",
        "the instance does not see the etcd password"
    );
    let cmdline = std::fs::read(format!("/proc/{}/cmdline", a.child.id())).expect("cmdline");
    assert!(!String::from_utf8_lossy(&cmdline).contains("SECRETMARK"));
    a.signal("TERM");
    a.wait_exit(SOON);
}

#[test]
fn register_starts_the_app_without_etcd_and_registers_when_it_comes() {
    let mut etcd = Etcd::unstarted();
    let tmp = tempfile::tempdir().expect("tempdir");
    let started = tmp.path().join("started");
    let agent = |name: &str, extra: &[&str]| {
        let args: Vec<&str> = ["register", "--node", etcd.endpoint.as_str()]
            .into_iter()
            .chain(["--key", "/reg/x", "--value", "10.0.0.1:80"])
            .chain(extra.iter().copied())
            .collect();
        Daemon::start(&args, tmp.path().join(format!("{name}.log")))
    };
    let touch = format!("touch {} && exec sleep 60", started.display());

    // --require-etcd keeps the old contract: exit 3, the app never started.
    let mut strict = agent("strict", &["--require-etcd", "--", "sh", "-c", &touch]);
    assert_eq!(strict.wait_exit(SOON), Some(3), "{}", strict.log());
    assert!(!started.exists());

    // --wait-for-etcd holds the app back, and SIGTERM still ends the wait at once.
    let mut waiting = agent("waiting", &["--wait-for-etcd", "--", "sh", "-c", &touch]);
    wait_logged(&waiting, "waiting for etcd", "the wait");
    let start = Instant::now();
    waiting.signal("TERM");
    assert_eq!(waiting.wait_exit(SOON), Some(0));
    assert!(
        start.elapsed() < Duration::from_secs(1),
        "took {:?}",
        start.elapsed()
    );
    assert!(!started.exists());

    // By default the app starts at once; the key follows when etcd is there.
    let mut a = agent("default", &["--", "sh", "-c", &touch]);
    wait_for_or(
        "the app to start",
        SOON,
        || a.log(),
        || started.exists().then_some(()),
    );
    wait_logged(&a, "etcd unreachable", "one log line about etcd");
    // SIGTERM works while etcd is down too, but first let etcd come and the key appear.
    etcd.restart();
    wait_for_or(
        "the key",
        SOON,
        || a.log(),
        || {
            etcd.ctl(&["get", "/reg/x", "--print-value-only"])
                .contains("10.0.0.1:80")
                .then_some(())
        },
    );
    assert_eq!(
        a.log().matches("etcd unreachable").count(),
        1,
        "{}",
        a.log()
    );
    a.signal("TERM");
    assert_eq!(a.wait_exit(SOON), Some(143), "{}", a.log());
    assert_eq!(etcd.ctl(&["get", "/reg/x", "--print-value-only"]), "");
}

#[test]
fn sigterm_is_prompt_while_etcd_is_down() {
    let port = free_port();
    let tmp = tempfile::tempdir().expect("tempdir");
    let node = format!("http://127.0.0.1:{port}");
    let mut a = Daemon::start(
        &[
            "register", "--node", &node, "--key", "/reg/y", "--value", "v", "--", "sleep", "60",
        ],
        tmp.path().join("a.log"),
    );
    wait_logged(&a, "etcd unreachable", "the first failed attempt");
    let start = Instant::now();
    a.signal("TERM");
    assert_eq!(a.wait_exit(SOON), Some(143), "{}", a.log());
    assert!(
        start.elapsed() < Duration::from_secs(1),
        "took {:?}",
        start.elapsed()
    );
}
