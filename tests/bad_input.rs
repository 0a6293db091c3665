//! Every bad input: a one-line error naming the file, key or line, its documented exit code, and
//! every existing file left as it was.

mod support;

use std::path::PathBuf;

use support::*;

const OLD: &str = "# previous content\n";

/// A file-backend confdir whose one resource renders `tmpl` into a dest that already holds OLD.
struct Case {
    confdir: Confdir,
    dest: PathBuf,
    keys: PathBuf,
}

impl Case {
    fn new(tmpl: &str) -> Case {
        let confdir = Confdir::new("backend = \"file\"\n");
        let keys = confdir.path().join("keys.yaml");
        std::fs::write(&keys, "app:\n  port: \"8080\"\n").expect("keys");
        let dest = confdir.path().join("app.conf");
        std::fs::write(&dest, OLD).expect("dest");
        confdir.template("app.tmpl", tmpl);
        let case = Case {
            confdir,
            dest,
            keys,
        };
        case.resource("");
        case
    }

    fn resource(&self, extra: &str) -> &Case {
        self.confdir.resource(
            "app.toml",
            &format!(
                "[template]\nsrc = \"app.tmpl\"\ndest = \"{}\"\nkeys = [\"/app\"]\n{extra}",
                self.dest.display()
            ),
        );
        self
    }

    /// Runs --onetime and checks the exit code, that stderr is one line containing every
    /// `needle`, and that dest was not touched.
    fn fails(&self, code: i32, needles: &[&str]) {
        let out = self
            .confdir
            .run(&["--onetime", "--file", self.keys.to_str().expect("utf8")]);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(code), "{err}");
        assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
        for n in needles {
            assert!(err.contains(n), "{n:?} not in: {err}");
        }
        assert_eq!(
            std::fs::read_to_string(&self.dest).expect("dest"),
            OLD,
            "dest untouched"
        );
    }
}

#[test]
fn missing_confdir() {
    let out = std::process::Command::new(BIN)
        .args(["--confdir", "/no/such/confdir", "--onetime"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        stderr(&out),
        "confd-rs: error: /no/such/confdir: confdir does not exist or is not a directory (set it with --confdir)\n"
    );
}

/// Runs confd-rs on a confdir that holds only `confd_toml` (no conf.d), with `arg` after it.
fn without_conf_d(confd_toml: &str, arg: &str) -> (tempfile::TempDir, std::process::Output) {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("confd.toml"), confd_toml).expect("confd.toml");
    let out = std::process::Command::new(BIN)
        .arg("--confdir")
        .arg(dir.path())
        .arg(arg)
        .output()
        .expect("run");
    (dir, out)
}

/// `--onetime` connects while conf.d loads; a conf.d that cannot be read is still the error
/// reported (exit 2, naming it), not the store that is down as well.
#[test]
fn unreadable_conf_d_is_reported_before_an_unreachable_store() {
    let (dir, out) = without_conf_d("nodes = [\"http://127.0.0.1:1\"]\n", "--onetime");
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert_eq!(
        stderr(&out),
        format!(
            "confd-rs: error: {}: No such file or directory (os error 2)\n",
            dir.path().join("conf.d").display()
        )
    );
}

/// `status` needs only confd.toml's metrics address: a confdir whose conf.d cannot be read still
/// asks the daemon (here nobody answers: exit 6, naming what it asked).
#[test]
fn status_reads_confd_toml_only() {
    let toml = format!("metrics_addr = \"127.0.0.1:{}\"\n", free_port());
    let (_dir, out) = without_conf_d(&toml, "status");
    assert_eq!(out.status.code(), Some(6), "{}", stderr(&out));
    assert!(
        stderr(&out).starts_with("confd-rs: error: asking the daemon for /status: "),
        "{}",
        stderr(&out)
    );
}

#[test]
fn unknown_flag_is_a_usage_error() {
    let out = std::process::Command::new(BIN)
        .args(["-onetme"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("unexpected argument '-o' found") || stderr(&out).contains("-onetme"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn confd_toml_syntax_error_names_file_and_line() {
    let case = Case::new("x\n");
    std::fs::write(
        case.confdir.path().join("confd.toml"),
        "backend = \"file\"\nnodes = [\n",
    )
    .expect("write");
    case.fails(
        2,
        &[
            "confd.toml:2: unclosed array, expected `]`",
            "confd-rs: error:",
        ],
    );
}

#[test]
fn confd_toml_unknown_key() {
    let case = Case::new("x\n");
    std::fs::write(
        case.confdir.path().join("confd.toml"),
        "backend = \"file\"\nlog_level = \"debug\"\n",
    )
    .expect("write");
    case.fails(
        2,
        &["confd.toml:2: unknown field `log_level`, expected one of"],
    );
}

#[test]
fn unsupported_backend() {
    let case = Case::new("x\n");
    std::fs::write(
        case.confdir.path().join("confd.toml"),
        "backend = \"consul\"\n",
    )
    .expect("write");
    case.fails(
        2,
        &["confd.toml: backend: \"consul\" is not supported: expected \"etcdv3\" (or \"etcd\") or \"file\""],
    );
}

#[test]
fn resource_unknown_key_names_file_and_line() {
    let case = Case::new("x\n");
    case.resource("reload_cmd_typo = \"nginx -s reload\"\n");
    case.fails(2, &["conf.d/app.toml:5: unknown field `reload_cmd_typo`"]);
}

#[test]
fn resource_wrong_type() {
    let case = Case::new("x\n");
    case.resource("uid = \"root\"\n");
    case.fails(
        2,
        &["conf.d/app.toml:5: invalid type: string \"root\", expected u32"],
    );
}

#[test]
fn resource_missing_src() {
    let case = Case::new("x\n");
    std::fs::write(
        case.confdir.path().join("conf.d/app.toml"),
        "[template]\ndest = \"/tmp/x\"\n",
    )
    .expect("write");
    case.fails(2, &["conf.d/app.toml:1: missing field `src`"]);
}

#[test]
fn resource_src_that_does_not_exist() {
    let case = Case::new("x\n");
    std::fs::write(
        case.confdir.path().join("conf.d/app.toml"),
        format!(
            "[template]\nsrc = \"nope.tmpl\"\ndest = \"{}\"\n",
            case.dest.display()
        ),
    )
    .expect("write");
    case.fails(
        2,
        &[
            "conf.d/app.toml: template.src ",
            "templates/nope.tmpl: No such file or directory",
        ],
    );
}

#[test]
fn fan_out_without_a_dir_in_dest() {
    let case = Case::new("x\n");
    case.resource("each = \"/*\"\n");
    case.fails(
        2,
        &["conf.d/app.toml: template.dest must name the directory as {{ dir }} when template.each is set"],
    );
}

#[test]
fn resource_bad_mode() {
    let case = Case::new("x\n");
    case.resource("mode = \"rw-r--r--\"\n");
    case.fails(
        2,
        &["conf.d/app.toml: template.mode \"rw-r--r--\": expected an octal file mode"],
    );
}

#[test]
fn dynamic_needs_an_absolute_socket_and_a_reload_to_fall_back_to() {
    let case = Case::new("x\n");
    case.resource("dynamic = \"admin.sock\"\nreload_cmd = \"true\"\n");
    case.fails(
        2,
        &["conf.d/app.toml: template.dynamic must be the absolute path of the balancer's admin socket, not \"admin.sock\""],
    );
    case.resource("dynamic = \"/run/confd-rs/nginx/admin.sock\"\n");
    case.fails(
        2,
        &["conf.d/app.toml: template.dynamic needs reload_cmd: the reload path is its fallback"],
    );
}

#[test]
fn template_syntax_error_names_template_and_line() {
    let case = Case::new("line one\n{% for x in %}\n");
    case.fails(4, &["templates/app.tmpl:2: syntax error"]);
}

#[test]
fn getv_of_a_missing_key_names_the_key() {
    let case = Case::new("a\nport = {{ getv('/port') }}\n");
    case.fails(
        4,
        &["templates/app.tmpl:2: invalid operation: key does not exist: /port"],
    );
}

#[test]
fn unwritable_dest_dir() {
    let case = Case::new("port = {{ getv('/app/port') }}\n");
    let blocker = case.confdir.path().join("missing-dir");
    std::fs::write(
        case.confdir.path().join("conf.d/zz.toml"),
        format!(
            "[template]\nsrc = \"app.tmpl\"\ndest = \"{}/x.conf\"\nkeys = [\"/\"]\n",
            blocker.display()
        ),
    )
    .expect("write");
    // The good resource is still processed; the bad one fails the run.
    let out = case
        .confdir
        .run(&["--onetime", "--file", case.keys.to_str().expect("utf8")]);
    assert_eq!(out.status.code(), Some(5), "{}", stderr(&out));
    assert!(
        stderr(&out)
            .contains("missing-dir/x.conf: cannot stage the new file in its directory: directory ")
            && stderr(&out).contains("missing-dir does not exist"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        std::fs::read_to_string(&case.dest).expect("dest"),
        "port = 8080\n"
    );
}

#[test]
fn failing_reload_is_reported_after_the_file_is_installed() {
    let case = Case::new("port = {{ getv('/app/port') }}\n");
    case.resource("reload_cmd = \"echo cannot reload >&2; exit 7\"\n");
    let out = case
        .confdir
        .run(&["--onetime", "--file", case.keys.to_str().expect("utf8")]);
    assert_eq!(out.status.code(), Some(5), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(
            "reload_cmd failed: `echo cannot reload >&2; exit 7` exit status: 7: cannot reload"
        ),
        "{}",
        stderr(&out)
    );
}

#[test]
fn invalid_log_level() {
    let case = Case::new("x\n");
    let out = case.confdir.run(&[
        "--onetime",
        "-log-level",
        "loud",
        "--file",
        case.keys.to_str().expect("utf8"),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("--log-level: \"loud\": expected debug, info, warn, error"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn bad_values_in_confd_toml_name_the_file_and_key() {
    for (toml, needle) in [
        (
            "backend = \"file\"\nlog-level = \"verbose\"\n",
            "confd.toml: log-level: \"verbose\": expected debug",
        ),
        (
            "backend = \"file\"\ninterval = 0\n",
            "confd.toml: interval: must be greater than 0",
        ),
        (
            "backend = \"file\"\ncommand_timeout = 0\n",
            "confd.toml: command_timeout: must be greater than 0",
        ),
        (
            "backend = \"etcd\"\nusername = \"u\"\n",
            "confd.toml: etcd username given without a password",
        ),
    ] {
        let case = Case::new("x\n");
        std::fs::write(case.confdir.path().join("confd.toml"), toml).expect("write");
        case.fails(2, &[needle]);
    }
    // The same values as flags name the flag.
    let case = Case::new("x\n");
    let out = case.confdir.run(&[
        "--onetime",
        "--interval",
        "0",
        "--file",
        case.keys.to_str().expect("utf8"),
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("--interval: must be greater than 0"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn confd_keys_of_other_backends_are_accepted_with_a_warning() {
    let case = Case::new("port = {{ getv('/app/port') }}\n");
    std::fs::write(
        case.confdir.path().join("confd.toml"),
        "backend = \"file\"\ntable = \"confd\"\n",
    )
    .expect("write");
    let out = case
        .confdir
        .run(&["--onetime", "--file", case.keys.to_str().expect("utf8")]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("confd.toml: table: ignored"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        std::fs::read_to_string(&case.dest).expect("dest"),
        "port = 8080\n"
    );
}

#[test]
fn register_durations_are_checked_before_anything_starts() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let started = tmp.path().join("started");
    let touch = format!("touch {}", started.display());
    for (flag, value, expect) in [
        (
            "--drain",
            "inf",
            "--drain inf: expected a number of seconds, 0 or more",
        ),
        (
            "--drain",
            "-1",
            "--drain -1.0: expected a number of seconds, 0 or more",
        ),
        (
            "--health-interval",
            "1e300",
            "--health-interval 1e300: expected a positive number of seconds",
        ),
        (
            "--health-interval",
            "0",
            "--health-interval 0.0: expected a positive number of seconds",
        ),
        (
            "--health-timeout",
            "nan",
            "--health-timeout NaN: expected a positive number of seconds",
        ),
    ] {
        let out = std::process::Command::new(BIN)
            .args([
                "register",
                "--node",
                "http://127.0.0.1:1",
                "--key",
                "/k",
                "--value",
                "v",
            ])
            .args([
                "--health-cmd",
                "true",
                flag,
                value,
                "--",
                "sh",
                "-c",
                &touch,
            ])
            .output()
            .expect("run");
        assert_eq!(
            out.status.code(),
            Some(2),
            "{flag} {value}: {}",
            stderr(&out)
        );
        assert_eq!(stderr(&out), format!("confd-rs: error: {expect}\n"));
        assert!(!started.exists(), "{flag} {value}: nothing started");
    }
}

/// Every numeric flag, fed the values a fuzzer tries first: a clear exit, never a panic.
#[test]
fn numeric_flags_never_panic() {
    let values = [
        "0",
        "-1",
        "1",
        "inf",
        "-inf",
        "nan",
        "1e300",
        "1e-300",
        "18446744073709551616",
        "4294967296",
        "0x10",
        "",
        " 1",
        "1.5",
        "abc",
    ];
    let case = Case::new("x\n");
    let keys = case.keys.to_str().expect("utf8").to_owned();
    for flag in [
        "--interval",
        "--command-timeout",
        "--coalesce-window",
        "--coalesce-max",
    ] {
        for v in values {
            let out = case
                .confdir
                .run(&["--onetime", "--noop", flag, v, "--file", &keys]);
            let err = stderr(&out);
            assert!(
                matches!(out.status.code(), Some(0..=2)),
                "{flag} {v:?}: {err}"
            );
            assert!(!err.contains("panicked"), "{flag} {v:?}: {err}");
        }
    }
    for flag in [
        "--ttl",
        "--health-fails",
        "--health-interval",
        "--health-timeout",
        "--drain",
    ] {
        for v in values {
            let out = std::process::Command::new(BIN)
                .args(["register", "--node", "http://127.0.0.1:1", "--require-etcd"])
                .args([
                    "--key",
                    "/k",
                    "--value",
                    "v",
                    "--health-cmd",
                    "true",
                    flag,
                    v,
                ])
                .args(["--", "true"])
                .output()
                .expect("run");
            let err = stderr(&out);
            assert!(
                matches!(out.status.code(), Some(2 | 3)),
                "{flag} {v:?}: {err}"
            );
            assert!(!err.contains("panicked"), "{flag} {v:?}: {err}");
        }
    }
}
