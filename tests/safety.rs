//! Safety rails against a real etcd: the shrink guard holds a mass deregistration, the status
//! view says what the daemon did, and each update's diff is logged as one escaped field.

mod support;

use std::path::PathBuf;
use std::time::Duration;

use support::*;

const SOON: Duration = Duration::from_secs(10);

/// A daemon rendering the shipped template from `etcd` into `<tmp>/upstreams.conf` with the
/// shrink guard set by `guard`, serving /status on a free port.
struct Guarded {
    confdir: Confdir,
    dest: PathBuf,
    port: u16,
    daemon: Daemon,
    _tmp: tempfile::TempDir,
}

impl Guarded {
    fn start(etcd: &Etcd, guard: &str) -> Guarded {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dest = tmp.path().join("upstreams.conf");
        let confdir = Confdir::new(&format!("nodes = [\"{}\"]\n", etcd.endpoint));
        confdir.resource("nginx.toml", &upstreams_resource(&dest, guard));
        let port = free_port();
        let daemon = confdir.daemon(&["--metrics-addr", &format!("127.0.0.1:{port}")]);
        Guarded {
            confdir,
            dest,
            port,
            daemon,
            _tmp: tmp,
        }
    }

    fn text(&self) -> String {
        std::fs::read_to_string(&self.dest).unwrap_or_default()
    }

    fn servers(&self) -> usize {
        self.text().matches("server 10.").count()
    }

    fn wait_servers(&self, n: usize) {
        wait_for(&format!("{n} servers in the file"), SOON, || {
            (self.servers() == n).then_some(())
        });
    }

    fn wait_status(&self, what: &str, needle: &str) -> String {
        wait_for(what, SOON, || {
            http_get(self.port, "/status")
                .map(|(_, body)| body)
                .filter(|b| b.contains(needle))
        })
    }
}

fn register(etcd: &Etcd, hosts: std::ops::RangeInclusive<u32>) {
    for i in hosts {
        etcd.put(&format!("/s_PRE/10.0.0.{i}-80"), &format!("10.0.0.{i}:80"));
    }
}

#[test]
fn a_mass_deregistration_is_held_then_applied_when_the_view_still_says_so() {
    let etcd = Etcd::start();
    register(&etcd, 1..=10);
    let g = Guarded::start(
        &etcd,
        "max_shrink = \"50%\"\nmin_servers = 1\nshrink_hold = 3\n",
    );
    g.wait_servers(10);

    etcd.ctl(&["del", "--prefix", "/s_PRE/"]);
    let status = g.wait_status("the shrink to be held", "\"result\": \"held\"");
    assert!(status.contains("/s_PRE/*: 10 -> 0 servers"), "{status}");
    assert_eq!(g.servers(), 10, "nothing applied during the hold");
    let (code, health) = http_get(g.port, "/healthz").expect("healthz");
    assert_eq!(code, 200, "a hold is the guard working: {health}");
    assert!(health.contains("held by the shrink guard"), "{health}");
    let (_, metrics) = http_get(g.port, "/metrics").expect("metrics");
    assert!(
        metrics.contains("confd_shrink_held{resource=") && metrics.contains("} 1"),
        "{metrics}"
    );
    let table = std::process::Command::new(BIN)
        .args(["status", "--metrics-addr", &format!("127.0.0.1:{}", g.port)])
        .output()
        .expect("confd-rs status");
    assert!(table.status.success(), "{}", stderr(&table));
    assert!(
        stdout(&table).contains("held") && stdout(&table).contains("10 -> 0 servers"),
        "{}",
        stdout(&table)
    );

    // The hold ends and etcd still says the service is gone: applied.
    g.wait_servers(0);
    // The update's diff is in the log (written just after the file), as one escaped field: no
    // line of its own.
    let log = wait_for("the update's log line", SOON, || {
        let log = g.daemon.log();
        log.contains("-    server 10.0.0.1:80;").then_some(log)
    });
    assert!(log.contains("applying the shrink"), "{log}");
    assert!(!log.lines().any(|l| l.starts_with("-    server")), "{log}");
    drop(g.confdir);
}

#[test]
fn a_recovery_inside_the_hold_changes_nothing_and_one_deregistration_is_never_held() {
    let etcd = Etcd::start();
    register(&etcd, 1..=10);
    let g = Guarded::start(
        &etcd,
        "max_shrink = \"50%\"\nmin_servers = 1\nshrink_hold = 60\n",
    );
    g.wait_servers(10);

    // The registration agent's normal deregistration: one at a time, applied at once.
    etcd.ctl(&["del", "/s_PRE/10.0.0.10-80"]);
    g.wait_servers(9);

    let before = std::fs::metadata(&g.dest)
        .expect("dest")
        .modified()
        .expect("mtime");
    etcd.ctl(&["del", "--prefix", "/s_PRE/"]);
    g.wait_status("the shrink to be held", "\"result\": \"held\"");
    register(&etcd, 1..=9);
    g.wait_status(
        "the hold to end with the recovery",
        "\"result\": \"unchanged\"",
    );
    assert_eq!(g.servers(), 9);
    let after = std::fs::metadata(&g.dest)
        .expect("dest")
        .modified()
        .expect("mtime");
    assert_eq!(before, after, "the file was never rewritten");
    let status = http_get(g.port, "/status").expect("status").1;
    for field in [
        "\"dest\":",
        "\"keys_read\":",
        "\"revision\":",
        "\"last_success\":",
    ] {
        assert!(status.contains(field), "{field} in {status}");
    }
}

#[test]
fn shrink_guard_settings_are_checked() {
    let confdir = Confdir::new("backend = \"file\"\n");
    let keys = confdir.path().join("keys.yaml");
    std::fs::write(&keys, "a: \"1\"\n").expect("keys");
    let dest = confdir.path().join("out");
    for (bad, needle) in [
        (
            "max_shrink = \"half\"",
            "template.max_shrink \"half\": expected a percentage",
        ),
        (
            "max_shrink = \"150%\"",
            "expected a percentage from 0% to 100%",
        ),
        (
            "min_servers = 1\nshrink_hold = 0",
            "template.shrink_hold: must be greater than 0",
        ),
        (
            "shrink_hold = 5",
            "shrink_hold is set without max_shrink or min_servers",
        ),
    ] {
        confdir.resource("r.toml", &upstreams_resource(&dest, &format!("{bad}\n")));
        let out = confdir.run(&["--onetime", "--file", keys.to_str().expect("utf8")]);
        assert_eq!(out.status.code(), Some(2), "{bad}: {}", stderr(&out));
        assert!(stderr(&out).contains(needle), "{bad}: {}", stderr(&out));
        assert!(!dest.exists());
    }
}

#[test]
fn stage_debris_of_a_service_that_appears_later_is_removed_before_it_is_staged() {
    let etcd = Etcd::start();
    etcd.put("/a_PRE/10.0.0.1-80", "10.0.0.1:80");
    let tmp = tempfile::tempdir().expect("tempdir");
    let confdir = Confdir::new(&format!("nodes = [\"{}\"]\n", etcd.endpoint));
    let fan_out = std::fs::read_to_string(
        std::path::Path::new(REPO).join("templates/nginx-upstream.conf.tmpl"),
    )
    .expect("template");
    confdir.template("nginx-upstream.conf.tmpl", &fan_out).resource(
        "up.toml",
        &format!(
            "[template]\nsrc = \"nginx-upstream.conf.tmpl\"\ndest = \"{}/upstream-{{{{ dir }}}}.conf\"\nkeys = [\"/\"]\neach = \"/*\"\n",
            tmp.path().display()
        ),
    );
    let _d = confdir.daemon(&[]);
    let a = tmp.path().join("upstream-a_PRE.conf");
    wait_for("a_PRE's file", SOON, || a.exists().then_some(()));

    // A stage file a killed run left for b_PRE, which did not exist when this daemon started.
    let debris = tmp.path().join(".upstream-b_PRE.conf.Xy12Z9.stage");
    std::fs::write(&debris, "half a file").expect("debris");
    let operators = tmp.path().join(".upstream-b_PRE.conf.mine.stage");
    std::fs::write(&operators, "not ours").expect("operator's file");
    etcd.put("/b_PRE/10.0.0.2-80", "10.0.0.2:80");
    let b = tmp.path().join("upstream-b_PRE.conf");
    wait_for("b_PRE's file", SOON, || b.exists().then_some(()));
    assert!(!debris.exists(), "the earlier run's stage file is gone");
    assert!(operators.exists(), "a file not of confd-rs's naming stays");
}

#[test]
fn a_reload_nginx_refuses_at_run_time_is_detected_and_the_previous_file_put_back() {
    let etcd = Etcd::start();
    etcd.put("/s_PRE/127.0.0.1-1", "127.0.0.1:1");
    let tmp = tempfile::tempdir().expect("tempdir");
    let (prefix, port) = Nginx::configure(tmp.path());
    std::fs::write(prefix.join("conf.d/upstreams.conf"), "").expect("empty upstreams");
    let _nginx = Nginx::start(&prefix, port);
    let dest = prefix.join("conf.d/upstreams.conf");
    let (check, reload) = Nginx::commands(&prefix);
    let confdir = Confdir::new(&format!("nodes = [\"{}\"]\n", etcd.endpoint));
    // A config nginx -t accepts but a running nginx cannot load when the port is taken.
    confdir
        .template(
            "t.tmpl",
            "upstream s_PRE {\n{%- for a in hostports(\"/s_PRE/*\") %}\n    server {{ a }};\n{%- endfor %}\n}\n\
             {%- if exists(\"/extra/listen\") %}\nserver { listen 127.0.0.1:{{ getv(\"/extra/listen\") }}; }\n{%- endif %}\n",
        )
        .resource(
            "t.toml",
            &format!(
                "[template]\nsrc = \"t.tmpl\"\ndest = \"{}\"\nkeys = [\"/\"]\ncheck_cmd = \"{check}\"\n\
                 reload_cmd = \"{reload}\"\nreload_pidfile = \"{}\"\n",
                dest.display(),
                prefix.join("logs/nginx.pid").display()
            ),
        );
    let status_port = free_port();
    let d = confdir.daemon(&["--metrics-addr", &format!("127.0.0.1:{status_port}")]);
    wait_for("a confirmed reload", SOON, || {
        d.log().contains("confirmed=true").then_some(())
    });
    let good = std::fs::read_to_string(&dest).expect("dest");
    assert!(good.contains("server 127.0.0.1:1;"), "{good}");

    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("hold a port");
    let taken_port = taken.local_addr().expect("addr").port();
    etcd.put("/extra/listen", &taken_port.to_string());
    let log = wait_for("the unconfirmed reload", Duration::from_secs(30), || {
        let log = d.log();
        log.contains("reload not confirmed").then_some(log)
    });
    assert!(log.contains("started no new workers"), "{log}");
    assert_eq!(
        std::fs::read_to_string(&dest).expect("dest"),
        good,
        "the previous file is back byte for byte"
    );
    let errors = std::fs::read_to_string(prefix.join("logs/error.log")).unwrap_or_default();
    assert!(
        errors.contains("Address already in use"),
        "nginx refused it: {errors}"
    );
    let status = wait_for("/status to say so", SOON, || {
        http_get(status_port, "/status")
            .map(|(_, b)| b)
            .filter(|b| b.contains("reload not confirmed"))
    });
    assert!(status.contains("\"result\": \"failed\""), "{status}");
    drop(taken);
}

/// A balanced injection: `nginx -t` accepts it, and nginx would then listen where the writer says.
const INJECTION: &str =
    "10.0.0.1:80; } server { listen 127.0.0.1:9; } upstream x { server 10.0.0.2:80";

#[test]
fn a_value_that_would_break_nginx_syntax_fails_any_nginx_template_naming_its_key() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let prefix = Nginx::minimal(
        tmp.path(),
        &format!("include {}/nginx/conf.d/*.conf;", tmp.path().display()),
    );
    let dest = prefix.join("conf.d/app.conf");
    std::fs::write(&dest, "upstream app { server 10.0.0.1:80; }\n").expect("dest");
    let (check, _) = Nginx::commands(&prefix);
    let confdir = Confdir::new("backend = \"file\"\n");
    let keys = confdir.path().join("keys.yaml");
    std::fs::write(&keys, format!("app:\n  a: \"{INJECTION}\"\n")).expect("keys");
    let resource = |tmpl: &str, extra: &str| {
        confdir.resource(
            "app.toml",
            &format!(
                "[template]\nsrc = \"{tmpl}\"\ndest = \"{}\"\nkeys = [\"/app\"]\ncheck_cmd = \"{check}\"\n{extra}",
                dest.display()
            ),
        );
    };
    let run = || confdir.run(&["--onetime", "--file", keys.to_str().expect("utf8")]);
    confdir
        .template(
            "jinja.tmpl",
            "upstream app { server {{ getv(\"/app/a\") }}; }\n",
        )
        .template("go.tmpl", "upstream app { server {{getv \"/app/a\"}}; }\n");

    for tmpl in ["jinja.tmpl", "go.tmpl"] {
        resource(tmpl, "");
        let out = run();
        assert_eq!(out.status.code(), Some(4), "{tmpl}: {}", stderr(&out));
        let err = stderr(&out);
        assert!(
            err.contains("(key \"/app/a\") has ';'") && err.contains("nginx directive"),
            "{tmpl}: {err}"
        );
        assert_eq!(
            std::fs::read_to_string(&dest).expect("dest"),
            "upstream app { server 10.0.0.1:80; }\n",
            "{tmpl}: dest untouched"
        );
    }

    // The opt-out, for a file that is not nginx config: nginx -t would have taken it.
    resource("jinja.tmpl", "value_check = \"none\"\n");
    let out = run();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(std::fs::read_to_string(&dest)
        .expect("dest")
        .contains("listen 127.0.0.1:9"));
}

#[test]
fn a_key_with_a_newline_cannot_forge_a_log_line() {
    let etcd = Etcd::start();
    register(&etcd, 1..=2);
    let g = Guarded::start(&etcd, "");
    g.wait_servers(2);
    etcd.put(
        "/s_PRE/x\n2026-11-27T00:00:00Z  INFO FORGED reloaded",
        "not-an-address",
    );
    let log = wait_for("the rejected value to be logged", SOON, || {
        let log = g.daemon.log();
        log.contains("not-an-address").then_some(log)
    });
    assert!(
        log.contains("/s_PRE/x\\n2026-11-27T00:00:00Z  INFO FORGED reloaded"),
        "the key is escaped: {log}"
    );
    assert!(
        !log.lines().any(|l| l.starts_with("2026-11-27T00:00:00Z")),
        "{log}"
    );
}

#[test]
fn five_big_bad_values_do_not_flood_the_log() {
    let etcd = Etcd::start();
    register(&etcd, 1..=2);
    // Five 1 MiB values that are not host:port, under the service the template lists.
    put_big(&etcd, "/s_PRE", 5, 1 << 20);
    let g = Guarded::start(&etcd, "");
    g.wait_servers(2);
    // Twenty more renders of the same service, each of which sees the five bad values again.
    for i in 3..=22 {
        etcd.put(&format!("/s_PRE/10.0.0.{i}-80"), &format!("10.0.0.{i}:80"));
        g.wait_servers(usize::try_from(i).expect("small"));
    }
    let log = g.daemon.log();
    assert_eq!(
        log.matches("is not a valid host:port").count(),
        5,
        "once each"
    );
    assert!(
        log.contains("(1048576 bytes)"),
        "cut, with its size: {log:.2000}"
    );
    assert!(
        log.len() < 64 * 1024,
        "the log stays small: {} bytes",
        log.len()
    );
}
