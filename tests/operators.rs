//! What an operator switching from confd meets: confd's flags and keys either work or are
//! refused by name, a confdir is validated in one run (`check`), `--noop` runs as a shadow
//! daemon beside the real one, one daemon per confdir, and the CLI documents itself.

mod support;

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use support::*;

const SOON: Duration = Duration::from_secs(10);

/// A file-backend confdir with keys for one service and `resource` as conf.d/r.toml.
fn file_confdir(resource: &str) -> (Confdir, PathBuf) {
    let confdir = Confdir::new("backend = \"file\"\n");
    let keys = confdir.path().join("keys.yaml");
    std::fs::write(&keys, "s_PRE:\n  10.0.0.1-80: \"10.0.0.1:80\"\n").expect("keys");
    confdir.resource("r.toml", resource);
    (confdir, keys)
}

fn onetime(confdir: &Confdir, keys: &std::path::Path, extra: &[&str]) -> std::process::Output {
    let mut args = vec!["--onetime", "--file", keys.to_str().expect("utf8")];
    args.extend_from_slice(extra);
    confdir.run(&args)
}

#[test]
fn confd_owner_is_a_user_name_and_unknown_users_are_named() {
    let dir = tempfile::tempdir().expect("tempdir");
    let dest = dir.path().join("up.conf");
    let (confdir, keys) = file_confdir(&upstreams_resource(&dest, "owner = \"root\"\n"));
    let out = onetime(&confdir, &keys, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(std::fs::read_to_string(&dest)
        .expect("dest")
        .contains("10.0.0.1:80"));

    confdir.resource(
        "r.toml",
        &upstreams_resource(&dest, "owner = \"no-such-user-x\"\n"),
    );
    let out = onetime(&confdir, &keys, &[]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("template.owner \"no-such-user-x\": no such user"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn confd_only_flags_and_keys_are_refused_by_name() {
    let out = Command::new(BIN)
        .args(["-onetime", "-srv-domain", "example.com"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("`-srv-domain` is a confd flag that confd-rs does not support (list the etcd members with --node or `nodes`)"),
        "{}",
        stderr(&out)
    );

    let (confdir, keys) = file_confdir("");
    std::fs::write(
        confdir.path().join("confd.toml"),
        "backend = \"file\"\nsrv_domain = \"example.com\"\n",
    )
    .expect("confd.toml");
    let out = onetime(&confdir, &keys, &[]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("srv_domain/srv_record"),
        "{}",
        stderr(&out)
    );

    std::fs::write(confdir.path().join("confd.toml"), "backend = \"file\"\n").expect("confd.toml");
    let out = confdir.run(&[
        "--exit-code",
        "--onetime",
        "--file",
        keys.to_str().expect("utf8"),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("--exit-code works only with --noop"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_config_file_elsewhere_moves_the_confdir_and_duplicate_dests_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let dest = dir.path().join("up.conf");
    let (confdir, keys) = file_confdir(&upstreams_resource(&dest, ""));
    let elsewhere = dir.path().join("confd.toml");
    std::fs::write(
        &elsewhere,
        format!(
            "backend = \"file\"\nconfdir = \"{}\"\n",
            confdir.path().display()
        ),
    )
    .expect("config file");
    let out = Command::new(BIN)
        .args(["--onetime", "--config-file"])
        .arg(&elsewhere)
        .arg("--file")
        .arg(&keys)
        .output()
        .expect("run");
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        dest.exists(),
        "rendered from the confdir the config file names"
    );

    confdir.resource("r2.toml", &upstreams_resource(&dest, ""));
    let out = onetime(&confdir, &keys, &[]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    for name in ["r.toml", "r2.toml"] {
        assert!(
            stderr(&out).contains(&format!("conf.d/{name}: template.dest {}", dest.display())),
            "{name}: {}",
            stderr(&out)
        );
    }
}

#[test]
fn check_validates_a_confdir_in_one_run_without_etcd() {
    let dir = tempfile::tempdir().expect("tempdir");
    let dest = dir.path().join("up.conf");
    let confdir = Confdir::new("nodes = [\"http://127.0.0.1:9\"]\n");
    confdir
        .resource("good.toml", &upstreams_resource(&dest, ""))
        .resource(
            "typo.toml",
            "[template]\nsrc = \"x\"\ndest = \"/tmp/x\"\nreload_cmd_typo = 1\n",
        )
        .template("bad.tmpl", "{% for x in %}\n")
        .resource(
            "bad.toml",
            "[template]\nsrc = \"bad.tmpl\"\ndest = \"/no/such/dir/x.conf\"\nkeys = [\"/\"]\n",
        )
        .template("plain.tmpl", "upstream a { server 10.0.0.1:80; }\n")
        .resource(
            "plain.toml",
            &format!(
                "[template]\nsrc = \"plain.tmpl\"\ndest = \"{}\"\nkeys = [\"/\"]\n\
                 reload_cmd = \"true\"\ndynamic = \"/run/confd-rs/nginx/admin.sock\"\n",
                dir.path().join("plain.conf").display()
            ),
        );
    let run = |extra: &[&str]| {
        Command::new(BIN)
            .arg("check")
            .arg("--confdir")
            .arg(confdir.path())
            .args(extra)
            .output()
            .expect("run check")
    };
    let out = run(&[]);
    let report = stdout(&out);
    assert_eq!(out.status.code(), Some(2), "{report}{}", stderr(&out));
    assert!(
        report.contains("typo.toml") && report.contains("reload_cmd_typo"),
        "{report}"
    );
    assert!(report.contains("bad.tmpl:1"), "{report}");
    assert!(report.contains("/no/such/dir does not exist"), "{report}");
    assert!(
        report.contains("plain.toml: template.dynamic is set but")
            && report.contains("writes no balancer directive, so every change reloads"),
        "{report}"
    );
    assert!(report.ends_with("4 resources, 4 problems\n"), "{report}");
    assert!(!dest.exists(), "check writes nothing");

    // With keys: each template renders and a check_cmd naming the stage runs on it.
    std::fs::remove_file(confdir.path().join("conf.d/typo.toml")).expect("rm");
    std::fs::remove_file(confdir.path().join("conf.d/bad.toml")).expect("rm");
    std::fs::remove_file(confdir.path().join("conf.d/plain.toml")).expect("rm");
    confdir.resource(
        "good.toml",
        &upstreams_resource(&dest, "check_cmd = \"grep -q 10.0.0.9 {{src}}\"\n"),
    );
    let keys = confdir.path().join("keys.yaml");
    std::fs::write(&keys, "s_PRE:\n  10.0.0.1-80: \"10.0.0.1:80\"\n").expect("keys");
    let out = run(&["--data", keys.to_str().expect("utf8")]);
    assert_eq!(out.status.code(), Some(5), "{}", stdout(&out));
    assert!(
        stdout(&out).contains("check_cmd refuses the render"),
        "{}",
        stdout(&out)
    );
    std::fs::write(&keys, "s_PRE:\n  10.0.0.9-80: \"10.0.0.9:80\"\n").expect("keys");
    let out = run(&["--data", keys.to_str().expect("utf8")]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    assert!(!dest.exists(), "check writes nothing");
}

#[test]
fn noop_alone_is_a_shadow_daemon_beside_the_real_one_and_a_second_daemon_is_refused() {
    let etcd = Etcd::start();
    etcd.put("/s_PRE/10.0.0.1-80", "10.0.0.1:80");
    let dir = tempfile::tempdir().expect("tempdir");
    let dest = dir.path().join("up.conf");
    let confdir = Confdir::new(&format!("nodes = [\"{}\"]\n", etcd.endpoint));
    confdir.resource("r.toml", &upstreams_resource(&dest, ""));
    let mut real = confdir.daemon(&[]);
    wait_for("the real daemon's file", SOON, || {
        std::fs::read_to_string(&dest)
            .ok()
            .filter(|t| t.contains("10.0.0.1:80"))
    });

    // A second real daemon on the same confdir is refused, naming the first.
    let out = confdir.run(&[]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(&format!(
            "another confd-rs daemon (pid {})",
            real.child.id()
        )),
        "{}",
        stderr(&out)
    );

    // The shadow runs beside it, logs what it would change, and writes nothing.
    let shadow_log = dir.path().join("shadow.log");
    let confdir_arg = confdir.path().to_str().expect("utf8").to_owned();
    let shadow = Daemon::start(&["--confdir", &confdir_arg, "--noop"], shadow_log);
    real.signal("TERM");
    assert_eq!(real.wait_exit(SOON), Some(0));
    etcd.put("/s_PRE/10.0.0.2-80", "10.0.0.2:80");
    let log = wait_for("the shadow's diff", SOON, || {
        let log = shadow.log();
        log.contains("would update (--noop)").then_some(log)
    });
    assert!(log.contains("+    server 10.0.0.2:80;"), "{log}");
    assert!(!std::fs::read_to_string(&dest)
        .expect("dest")
        .contains("10.0.0.2"));
}

#[test]
fn noop_reports_a_missing_dest_directory_as_the_real_run_would() {
    let (confdir, keys) = file_confdir(&upstreams_resource(
        std::path::Path::new("/no/such/dir/up.conf"),
        "",
    ));
    for extra in [&["--noop"][..], &[][..]] {
        let out = onetime(&confdir, &keys, extra);
        assert_eq!(out.status.code(), Some(5), "{extra:?}: {}", stderr(&out));
        assert!(
            stderr(&out).contains("directory /no/such/dir does not exist"),
            "{extra:?}: {}",
            stderr(&out)
        );
    }
}

#[test]
fn version_names_the_commit_and_help_shows_defaults() {
    let out = Command::new(BIN).arg("--version").output().expect("run");
    let version = stdout(&out);
    assert!(version.starts_with("confd-rs 0."), "{version}");
    assert!(
        version.contains(" (") && version.trim_end().ends_with(')'),
        "{version}"
    );
    let help = stdout(&Command::new(BIN).arg("--help").output().expect("run"));
    for default in ["[default: 600]", "[default: 60]", "[default: /etc/confd]"] {
        assert!(help.contains(default), "{default} in {help}");
    }
}

#[test]
fn man_pages_and_completions_come_from_the_cli_definition() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = Command::new(BIN)
        .args(["generate", "man"])
        .arg(dir.path())
        .output()
        .expect("run");
    assert!(out.status.success(), "{}", stderr(&out));
    for page in [
        "confd-rs.1",
        "confd-rs-register.1",
        "confd-rs-convert.1",
        "confd-rs-check.1",
    ] {
        let text = std::fs::read_to_string(dir.path().join(page)).expect(page);
        assert!(text.starts_with(".ie") || text.contains(".TH"), "{page}");
    }
    for shell in ["bash", "zsh", "fish"] {
        let out = Command::new(BIN)
            .args(["generate", "completions", shell])
            .output()
            .expect("run");
        assert!(
            out.status.success() && stdout(&out).contains("onetime"),
            "{shell}"
        );
    }
}

#[test]
fn the_agents_supervisor_example_is_a_valid_register_line_with_the_graceful_exit_codes() {
    let text = std::fs::read_to_string(
        std::path::Path::new(REPO).join("etc-confd/confd-rs-register.supervisor.conf"),
    )
    .expect("shipped example");
    assert!(text.lines().any(|l| l == "exitcodes=0,143"), "{text}");
    assert!(text.lines().any(|l| l == "stopsignal=TERM"), "{text}");
    let command = text
        .lines()
        .find_map(|l| l.strip_prefix("command="))
        .expect("a command= line");
    let args: Vec<std::ffi::OsString> = command.split_whitespace().map(Into::into).collect();
    let cli = confd_rs::cli::parse(args).expect("the example's flags parse");
    assert!(
        matches!(cli.command, Some(confd_rs::cli::Command::Register(_))),
        "{command}"
    );
    assert!(
        !command.contains("--password "),
        "no password on the command line: {command}"
    );
}
