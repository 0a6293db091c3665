//! Reload-free membership changes (`dynamic`) against real etcd 3.4 and Debian's nginx 1.22 with
//! its Lua packages and the project's `lua/confd_rs.lua`: servers joining and leaving reach
//! nginx with no reload, a new app falls back to one, a restarted nginx serves the file and gets
//! its sets again, an endpoint that is down leaves the reload path in charge, and a peer that
//! refuses connections is skipped.

mod support;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use support::*;

const SOON: Duration = Duration::from_secs(10);

/// etcd, a Lua-enabled nginx and a daemon rendering a shipped template into nginx's upstreams
/// (one file, or one per service as the shipped example does) with `dynamic` set to `socket`
/// (nginx's admin socket unless given).
struct Stack {
    etcd: Etcd,
    prefix: PathBuf,
    per_service: bool,
    port: u16,
    nginx: Option<Nginx>,
    daemon: Daemon,
    status_port: u16,
    _confdir: Confdir,
    _tmp: tempfile::TempDir,
}

impl Stack {
    fn start(first: &Backend, socket: Option<&Path>) -> Stack {
        Stack::start_with(first, socket, false)
    }

    fn start_with(first: &Backend, socket: Option<&Path>, per_service: bool) -> Stack {
        let etcd = Etcd::start();
        etcd.put("/app_PRE/a", &first.addr());
        let tmp = tempfile::tempdir().expect("tempdir");
        let (prefix, port) = Nginx::configure_dynamic(tmp.path(), 1);
        let included = prefix.join("conf.d/upstreams.conf");
        let apps = prefix.join("conf.d/apps");
        std::fs::create_dir_all(&apps).expect("apps dir");
        let include = format!("include {}/*.conf;\n", apps.display());
        std::fs::write(&included, if per_service { include.as_str() } else { "" })
            .expect("upstreams");
        let nginx = Nginx::start(&prefix, port);
        let (check, reload) = Nginx::commands(&prefix);
        let socket = socket.map_or_else(|| Nginx::admin(&prefix), Path::to_owned);
        let confdir = Confdir::new(&format!("nodes = [\"{}\"]\n", etcd.endpoint));
        let extra = format!(
            "check_cmd = \"{check}\"\nreload_cmd = \"{reload}\"\n\
             reload_pidfile = \"{}\"\ndynamic = \"{}\"\n",
            prefix.join("logs/nginx.pid").display(),
            socket.display()
        );
        if per_service {
            let tmpl = "nginx-upstream.conf.tmpl";
            let text = std::fs::read_to_string(Path::new(REPO).join("templates").join(tmpl))
                .expect("shipped template");
            confdir.template(tmpl, &text).resource(
                "nginx.toml",
                &format!(
                    "[template]\nsrc = \"{tmpl}\"\ndest = \"{}/upstream-{{{{ dir }}}}.conf\"\n\
                     keys = [\"/\"]\neach = \"/*\"\n{extra}",
                    apps.display()
                ),
            );
        } else {
            confdir.resource("nginx.toml", &upstreams_resource(&included, &extra));
        }
        let status_port = free_port();
        let daemon = confdir.daemon(&["--metrics-addr", &format!("127.0.0.1:{status_port}")]);
        let stack = Stack {
            etcd,
            prefix,
            per_service,
            port,
            nginx: Some(nginx),
            daemon,
            status_port,
            _confdir: confdir,
            _tmp: tmp,
        };
        stack.wait_routes("app_PRE", &[first]);
        stack
    }

    fn answers(&self, app: &str) -> BTreeSet<String> {
        answers(self.port, app, 8)
    }

    fn wait_routes(&self, app: &str, backends: &[&Backend]) {
        let want: BTreeSet<String> = backends.iter().map(|b| b.name()).collect();
        let last = std::cell::RefCell::new(BTreeSet::new());
        wait_for_or(
            &format!("/{app}/ routed to {want:?}"),
            SOON,
            || format!("last answers: {:?}\n{}", last.borrow(), self.daemon.log()),
            || {
                let got = self.answers(app);
                let done = got == want;
                *last.borrow_mut() = got;
                done.then_some(())
            },
        );
    }

    /// nginx's worker, once the old ones of a reload have left (the stacks run one worker).
    fn workers(&self) -> BTreeSet<u32> {
        wait_for("one generation of nginx workers", SOON, || {
            Some(Nginx::workers(&self.prefix)).filter(|w| w.len() == 1)
        })
    }

    fn status(&self) -> serde_json::Value {
        let (_, body) = http_get(self.status_port, "/status").expect("/status");
        serde_json::from_str(&body).expect("/status is JSON")
    }

    /// The upstream's entry in /status once it says `path` and nginx holds the file's version.
    fn wait_upstream(&self, name: &str, path: &str) -> serde_json::Value {
        wait_for_or(
            &format!("/status: {name} by {path}, held by nginx"),
            SOON,
            || format!("{}\n{}", self.status(), self.daemon.log()),
            || {
                let status = self.status();
                let u = status["upstreams"]
                    .as_array()?
                    .iter()
                    .find(|u| u["name"] == name)?
                    .clone();
                (u["path"] == path && u["nginx_version"] == u["version"]).then_some(u)
            },
        )
    }

    /// What the balancer holds for `name` (its JSON), if anything.
    fn held(&self, name: &str) -> Option<serde_json::Value> {
        let (status, body) = unix_http(&Nginx::admin(&self.prefix), "GET", "/upstreams", "")?;
        assert_eq!(status, 200, "{body}");
        let all: serde_json::Value = serde_json::from_str(&body).expect("JSON");
        all.get(name).cloned()
    }

    /// The file holding `name`'s upstream.
    fn file(&self, name: &str) -> PathBuf {
        match self.per_service {
            true => self
                .prefix
                .join(format!("conf.d/apps/upstream-{name}.conf")),
            false => self.prefix.join("conf.d/upstreams.conf"),
        }
    }

    /// The version the file carries for `name`, from its balancer directive.
    fn file_version(&self, name: &str) -> i64 {
        let text = std::fs::read_to_string(self.file(name)).expect("file");
        let call = format!("balance(\"{name}\", ");
        let at = text.find(&call).expect("a balancer directive") + call.len();
        text[at..]
            .split(')')
            .next()
            .expect("version")
            .parse()
            .expect("number")
    }
}

/// Who answers `n` requests to `/app/` (a backend's name, or the status when not 200).
fn answers(port: u16, app: &str, n: usize) -> BTreeSet<String> {
    (0..n)
        .filter_map(|_| http_get(port, &format!("/{app}/")))
        .map(|(status, body)| match status {
            200 => body,
            _ => status.to_string(),
        })
        .collect()
}

#[test]
fn servers_joining_and_leaving_reach_nginx_without_a_reload_and_a_new_app_reloads() {
    let (a, b, c) = (Backend::start(), Backend::start(), Backend::start());
    let s = Stack::start(&a, None);
    s.wait_upstream("app_PRE", "reload");
    let workers = s.workers();

    s.etcd.put("/app_PRE/b", &b.addr());
    s.wait_routes("app_PRE", &[&a, &b]);
    let u = s.wait_upstream("app_PRE", "dynamic");
    assert_eq!(u["version"], s.file_version("app_PRE"), "{u}");
    assert_eq!(
        Nginx::workers(&s.prefix),
        workers,
        "no reload: the same workers"
    );
    let file = std::fs::read_to_string(s.file("app_PRE")).expect("file");
    assert!(
        file.contains(&format!("server {};", b.addr())),
        "the file follows: {file}"
    );

    s.etcd.ctl(&["del", "/app_PRE/a"]);
    s.wait_routes("app_PRE", &[&b]);
    assert_eq!(
        Nginx::workers(&s.prefix),
        workers,
        "no reload for a removal either"
    );
    assert_eq!(
        s.held("app_PRE").expect("a set")["peers"],
        serde_json::json!([b.addr()])
    );

    // A new app is a new upstream block: that is config, so nginx reloads.
    s.etcd.put("/new_PRE/c", &c.addr());
    s.wait_routes("new_PRE", &[&c]);
    assert_ne!(Nginx::workers(&s.prefix), workers, "a new upstream reloads");
    s.wait_upstream("new_PRE", "reload");
    // The reload carried the whole file, app_PRE's set too; after it the balancer holds every
    // set again, at the file's version.
    s.wait_upstream("app_PRE", "reload");
    s.wait_routes("app_PRE", &[&b]);
    let log = s.daemon.log();
    assert!(
        log.contains("reload path: more than server lists changed"),
        "{log}"
    );
}

#[test]
fn with_one_file_per_service_a_new_service_reloads_and_its_instances_do_not() {
    let (a, b, c) = (Backend::start(), Backend::start(), Backend::start());
    let s = Stack::start_with(&a, None, true);
    s.etcd.put("/new_PRE/b", &b.addr());
    s.wait_routes("new_PRE", &[&b]);
    s.wait_upstream("new_PRE", "reload");
    let workers = s.workers();
    s.etcd.put("/new_PRE/c", &c.addr());
    s.wait_routes("new_PRE", &[&b, &c]);
    s.wait_upstream("new_PRE", "dynamic");
    // A rolling replacement: the new instance first. (Deleted first, the last one can land in a
    // pass of its own, and a fan-out file whose directory is gone is removed: a reload.)
    s.etcd.put("/app_PRE/c", &c.addr());
    s.etcd.ctl(&["del", "/app_PRE/a"]);
    s.wait_routes("app_PRE", &[&c]);
    assert_eq!(
        Nginx::workers(&s.prefix),
        workers,
        "only instances changed: no reload\n{}",
        s.daemon.log()
    );
    let u = s.wait_upstream("new_PRE", "dynamic");
    assert_eq!(u["version"], s.file_version("new_PRE"), "{u}");
}

#[test]
fn a_restarted_nginx_serves_the_file_then_gets_its_sets_again() {
    let (a, b, c) = (Backend::start(), Backend::start(), Backend::start());
    let mut s = Stack::start(&a, None);
    s.etcd.put("/app_PRE/b", &b.addr());
    s.wait_routes("app_PRE", &[&a, &b]);
    s.wait_upstream("app_PRE", "dynamic");

    drop(s.nginx.take());
    s.nginx = Some(Nginx::start(&s.prefix, s.port));
    // Its dict is empty: the file's list (the same set) serves at once.
    assert_eq!(
        s.answers("app_PRE"),
        [a.name(), b.name()].into_iter().collect()
    );
    // The daemon sees a new master and sends the set again.
    let version = s.file_version("app_PRE");
    wait_for("the set sent to the new nginx", SOON, || {
        s.held("app_PRE").filter(|h| h["version"] == version)
    });
    let workers = s.workers();
    s.etcd.put("/app_PRE/c", &c.addr());
    s.wait_routes("app_PRE", &[&a, &b, &c]);
    assert_eq!(
        Nginx::workers(&s.prefix),
        workers,
        "the balancer works again: no reload\n{}",
        s.daemon.log()
    );
    assert!(
        s.daemon.log().contains("balancer resynced"),
        "{}",
        s.daemon.log()
    );
}

#[test]
fn an_endpoint_that_is_down_leaves_the_reload_path_in_charge() {
    let (a, b) = (Backend::start(), Backend::start());
    let nowhere = tempfile::tempdir().expect("tempdir");
    let s = Stack::start(&a, Some(&nowhere.path().join("admin.sock")));
    let workers = s.workers();
    s.etcd.put("/app_PRE/b", &b.addr());
    s.wait_routes("app_PRE", &[&a, &b]);
    wait_for("a reload", SOON, || {
        (Nginx::workers(&s.prefix) != workers).then_some(())
    });
    let log = wait_for("the fallback to be logged", SOON, || {
        let log = s.daemon.log();
        log.contains("taking the reload path, the file is in place")
            .then_some(log)
    });
    assert!(log.contains("cannot connect"), "{log}");
    let status = s.status();
    let u = &status["upstreams"][0];
    assert_eq!(
        (&u["name"], &u["path"]),
        (&"app_PRE".into(), &"reload".into()),
        "{status}"
    );
    assert!(u["nginx_version"].is_null(), "{status}");
    assert!(
        u["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("cannot connect")),
        "{status}"
    );
}

#[test]
fn a_balancer_newer_than_etcd_a_restored_cluster_say_falls_back_then_follows_the_file() {
    let (a, b) = (Backend::start(), Backend::start());
    let s = Stack::start(&a, None);
    s.wait_upstream("app_PRE", "reload");
    // What a balancer fed by an etcd whose revisions ran far ahead (before a restore) holds.
    let stale = format!(
        r#"{{"version": 1000000, "peers": ["{}"], "force": true}}"#,
        a.addr()
    );
    let (status, body) = unix_http(
        &Nginx::admin(&s.prefix),
        "POST",
        "/upstreams/app_PRE",
        &stale,
    )
    .expect("answer");
    assert_eq!(status, 200, "{body}");
    let workers = s.workers();
    s.etcd.put("/app_PRE/b", &b.addr());
    s.wait_routes("app_PRE", &[&a, &b]);
    assert_ne!(
        Nginx::workers(&s.prefix),
        workers,
        "the refused delivery reloaded"
    );
    let version = s.file_version("app_PRE");
    wait_for("the balancer to hold the file's set again", SOON, || {
        s.held("app_PRE").filter(|h| h["version"] == version)
    });
    let log = s.daemon.log();
    assert!(
        log.contains("409") && log.contains("taking the reload path, the file is in place"),
        "{log}"
    );
}

#[test]
fn a_peer_that_refuses_connections_is_skipped() {
    let (a, b) = (Backend::start(), Backend::start());
    let dead = format!("127.0.0.1:{}", free_port());
    let s = Stack::start(&a, None);
    s.etcd.put("/app_PRE/b", &b.addr());
    s.etcd.put("/app_PRE/dead", &dead);
    wait_for("the set with the dead peer in the balancer", SOON, || {
        s.held("app_PRE")
            .filter(|h| h["peers"].as_array().is_some_and(|p| p.len() == 3))
    });
    let error_log = s.prefix.join("logs/error.log");
    let before = std::fs::read_to_string(&error_log)
        .unwrap_or_default()
        .len();
    let answers: Vec<(u16, String)> = (0..60)
        .map(|_| http_get(s.port, "/app_PRE/").expect("an answer"))
        .collect();
    assert!(
        answers.iter().all(|(status, _)| *status == 200),
        "every request retried to a live peer: {answers:?}"
    );
    let log = std::fs::read_to_string(&error_log).unwrap_or_default();
    let failed = log[before..].matches("connect() failed").count();
    assert!(
        (1..=2).contains(&failed),
        "the dead peer is tried once, then skipped for fail_timeout ({failed} failed connects): {}",
        &log[before..]
    );
}

#[test]
fn a_posted_set_serves_from_every_worker_survives_a_reload_and_an_empty_one_answers_502() {
    let (a, b, c) = (Backend::start(), Backend::start(), Backend::start());
    let tmp = tempfile::tempdir().expect("tempdir");
    let (prefix, port) = Nginx::configure_dynamic(tmp.path(), 2);
    let file = |peers: &[&Backend], version: i64| {
        let servers: String = peers
            .iter()
            .map(|b| format!("  server {};\n", b.addr()))
            .collect();
        let directive = format!(
            "balancer_by_lua_block {{ require(\"confd_rs\").balance(\"app_PRE\", {version}) }}"
        );
        std::fs::write(
            prefix.join("conf.d/upstreams.conf"),
            format!("upstream app_PRE {{\n{servers}  {directive}\n}}\n"),
        )
        .expect("upstreams");
    };
    file(&[&a], 5);
    let nginx = Nginx::start(&prefix, port);
    let admin = Nginx::admin(&prefix);
    let answers = || answers(port, "app_PRE", 16);
    let post =
        |body: String| unix_http(&admin, "POST", "/upstreams/app_PRE", &body).expect("answer");
    let names = |bs: &[&Backend]| bs.iter().map(|b| b.name()).collect::<BTreeSet<_>>();

    // Older than the file nginx loaded: stored, but the file's list still serves.
    let older = format!(r#"{{"version": 4, "peers": ["{}"]}}"#, b.addr());
    assert_eq!(post(older).0, 200);
    assert_eq!(answers(), names(&[&a]));
    // As new as the file: both workers route from it at once.
    let set = format!(
        r#"{{"version": 6, "peers": ["{}", "{}"]}}"#,
        b.addr(),
        c.addr()
    );
    assert_eq!(post(set).0, 200);
    assert_eq!(answers(), names(&[&b, &c]));
    // A reload keeps the dict (the file still says version 5).
    let (_, reload_cmd) = Nginx::commands(&prefix);
    let reload = || {
        let out = std::process::Command::new("sh")
            .args(["-c", &reload_cmd])
            .output()
            .expect("reload");
        assert!(out.status.success(), "{}", stderr(&out));
    };
    let workers = Nginx::workers(&prefix);
    reload();
    wait_for("the new workers", SOON, || {
        Nginx::workers(&prefix).is_disjoint(&workers).then_some(())
    });
    assert_eq!(answers(), names(&[&b, &c]));
    // An empty set refuses at once.
    assert_eq!(post(r#"{"version": 7, "peers": []}"#.into()).0, 200);
    assert_eq!(answers(), ["502".to_string()].into_iter().collect());
    // A file newer than the set wins again after a reload.
    file(&[&a], 8);
    reload();
    wait_for("the file's list to serve", SOON, || {
        (answers() == names(&[&a])).then_some(())
    });
    drop(nginx);
}

#[test]
fn the_balancer_takes_only_addresses_and_never_goes_back_in_version() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (prefix, port) = Nginx::configure_dynamic(tmp.path(), 2);
    std::fs::write(prefix.join("conf.d/upstreams.conf"), "").expect("upstreams");
    let _nginx = Nginx::start(&prefix, port);
    let admin = Nginx::admin(&prefix);
    let post = |body: &str| unix_http(&admin, "POST", "/upstreams/app", body).expect("answer");
    for bad in [
        "not json",
        r#"{"version": 5, "peers": ["backend.local:80"]}"#,
        r#"{"version": 5, "peers": ["10.0.0.1"]}"#,
        r#"{"version": 5, "peers": ["10.0.0.256:80"]}"#,
        r#"{"version": 5, "peers": ["10.0.0.1:80; } server { listen 1"]}"#,
        r#"{"version": -1, "peers": []}"#,
        r#"{"version": 5, "peers": "10.0.0.1:80"}"#,
    ] {
        let (status, body) = post(bad);
        assert_eq!(status, 400, "{bad}: {body}");
    }
    let (status, body) = unix_http(&admin, "GET", "/upstreams", "").expect("answer");
    assert_eq!((status, body.trim()), (200, "{}"), "nothing was stored");

    let set = r#"{"version": 7, "peers": ["10.0.0.1:80", "[::1]:81"]}"#;
    assert_eq!(post(set).0, 200);
    let (status, body) = post(set);
    assert!(
        status == 200 && body.contains("unchanged"),
        "{status} {body}"
    );
    let (status, body) = post(r#"{"version": 6, "peers": ["10.0.0.2:80"]}"#);
    assert_eq!(status, 409, "an older version is refused: {body}");
    let forced = r#"{"version": 6, "peers": ["10.0.0.2:80"], "force": true}"#;
    assert_eq!(post(forced).0, 200, "unless forced (the file is the truth)");
    let (_, body) = unix_http(&admin, "GET", "/upstreams/app", "").expect("answer");
    let held: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(held["version"], 6);
    assert_eq!(held["peers"], serde_json::json!(["10.0.0.2:80"]));
}
