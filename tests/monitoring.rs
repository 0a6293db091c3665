//! The shipped monitoring files (etc-confd/monitoring): the alert rules and their unit tests pass
//! promtool and the dashboard is valid (scripts/check-monitoring.sh), and every `confd_*` metric
//! the dashboard or the rules name is one a running daemon really exports.
//!
//! prometheus-client (0.26) leaves a family with no series out of `/metrics` altogether, HELP and
//! TYPE lines included, and a labelled family has no series until it is first used. So the daemon
//! here is made to use them all (a check_cmd and a reload_cmd that fail, a held shrink), and the
//! test first waits until `/metrics` shows every family src/metrics.rs registers.

mod support;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use support::*;

const DEADLINE: Duration = Duration::from_secs(20);
const DASHBOARD: &str = "etc-confd/monitoring/confd-rs-dashboard.json";
const RULES: &str = "etc-confd/monitoring/confd-rs-alerts.yml";

#[test]
fn the_monitoring_files_pass_promtool_and_the_dashboard_is_valid() {
    let out = Command::new("bash")
        .arg("scripts/check-monitoring.sh")
        .current_dir(REPO)
        .output()
        .expect("run bash scripts/check-monitoring.sh");
    assert!(
        out.status.success(),
        "scripts/check-monitoring.sh failed ({}):\n{}\n{}",
        out.status,
        stdout(&out),
        stderr(&out)
    );
}

#[test]
fn the_dashboard_and_the_alerts_name_only_metrics_the_daemon_exports() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let keys = tmp.path().join("keys.yaml");
    write_keys(&keys, 4);
    let guarded = tmp.path().join("guarded.conf");
    let confdir = Confdir::new("backend = \"file\"\n");
    confdir
        .resource(
            "guarded.toml",
            &upstreams_resource(
                &guarded,
                "max_shrink = \"50%\"\nmin_servers = 1\nshrink_hold = 600\n",
            ),
        )
        .resource(
            "checked.toml",
            &upstreams_resource(&tmp.path().join("checked.conf"), "check_cmd = \"false\"\n"),
        )
        .resource(
            "reloaded.toml",
            &upstreams_resource(
                &tmp.path().join("reloaded.conf"),
                // A balancer endpoint that is not there: its resync fails (confd_balancer_synced).
                &format!(
                    "reload_cmd = \"false\"\ndynamic = \"{}\"\n",
                    tmp.path().join("nowhere.sock").display()
                ),
            ),
        );
    let port = free_port();
    let d = confdir.daemon(&[
        "--file",
        keys.to_str().expect("utf-8 path"),
        "--metrics-addr",
        &format!("127.0.0.1:{port}"),
    ]);
    wait_for_or(
        "the guarded resource's first render",
        DEADLINE,
        || d.log(),
        || {
            std::fs::read_to_string(&guarded)
                .ok()
                .filter(|t| t.contains("server 10.0.0.4:80;"))
        },
    );
    // Three of the four servers leave at once: the shrink guard holds that render.
    write_keys(&keys, 1);

    let registered = registered_families();
    assert!(
        registered.contains("confd_store_connected"),
        "no families read from src/metrics.rs: {registered:?}"
    );
    let scrape = wait_for_or(
        "/metrics to show every registered family",
        DEADLINE,
        || {
            let (_, body) = http_get(port, "/metrics").unwrap_or_default();
            format!(
                "missing: {:?}\n/metrics:\n{body}\nlog:\n{}",
                registered
                    .difference(&families_in(&body))
                    .collect::<Vec<_>>(),
                d.log()
            )
        },
        || {
            http_get(port, "/metrics")
                .filter(|(status, body)| {
                    *status == 200 && families_in(body).is_superset(&registered)
                })
                .map(|(_, body)| body)
        },
    );

    let exported = exported_names(&scrape);
    for file in [DASHBOARD, RULES] {
        let named = metric_names(&read(file));
        assert!(!named.is_empty(), "{file} names no confd_ metric");
        let unknown: Vec<&String> = named.difference(&exported).collect();
        assert!(
            unknown.is_empty(),
            "{file} names metrics the daemon does not export: {unknown:?}\nexported: {exported:?}"
        );
    }
    let shown: BTreeSet<String> = metric_names(&read(DASHBOARD))
        .iter()
        .map(|n| family(n).to_owned())
        .collect();
    let not_shown: Vec<&String> = registered.difference(&shown).collect();
    assert!(
        not_shown.is_empty(),
        "{DASHBOARD} shows nothing of {not_shown:?}"
    );
}

/// Writes the key file with `servers` instances under /s_PRE (10.0.0.1:80, …) and one invalid
/// value, by rename, as an editor saves.
fn write_keys(path: &Path, servers: u8) {
    let mut text = String::from("s_PRE:\n  bad: \"not-an-address\"\n");
    for i in 1..=servers {
        text.push_str(&format!("  10.0.0.{i}-80: \"10.0.0.{i}:80\"\n"));
    }
    let new = path.with_extension("new");
    std::fs::write(&new, text).expect("write the key file");
    std::fs::rename(&new, path).expect("rename the key file into place");
}

/// A file of the repository.
fn read(file: &str) -> String {
    std::fs::read_to_string(Path::new(REPO).join(file)).expect(file)
}

/// The families src/metrics.rs registers, as `/metrics` names them: `confd_<name>` for each
/// `registered(r, "<name>", …)`.
fn registered_families() -> BTreeSet<String> {
    read("src/metrics.rs")
        .split("registered(")
        .skip(1)
        .filter_map(|call| call.split('"').nth(1))
        .map(|name| format!("confd_{name}"))
        .collect()
}

/// The families of a scrape: the names on its `# TYPE` lines.
fn families_in(scrape: &str) -> BTreeSet<String> {
    scrape
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split(' ').next())
        .map(str::to_owned)
        .collect()
}

/// The names of a scrape's samples, histogram series as their base name.
fn exported_names(scrape: &str) -> BTreeSet<String> {
    scrape
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split(['{', ' ']).next())
        .filter(|n| n.starts_with("confd_"))
        .map(|n| base(n).to_owned())
        .collect()
}

/// Every `confd_[a-z_]+` in `text` that is a word of its own, histogram series as their base
/// name.
fn metric_names(text: &str) -> BTreeSet<String> {
    const PREFIX: &str = "confd_";
    let mut names = BTreeSet::new();
    let mut rest = text;
    while let Some(at) = rest.find(PREFIX) {
        let glued = rest[..at]
            .chars()
            .next_back()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
        let tail = &rest[at + PREFIX.len()..];
        let len = tail
            .find(|c: char| !(c.is_ascii_lowercase() || c == '_'))
            .unwrap_or(tail.len());
        if len > 0 && !glued {
            names.insert(base(&rest[at..at + PREFIX.len() + len]).to_owned());
        }
        rest = &tail[len..];
    }
    names
}

/// A histogram series' base name (`_bucket`, `_sum`, `_count` stripped); other names as they are.
fn base(name: &str) -> &str {
    ["_bucket", "_sum", "_count"]
        .iter()
        .find_map(|suffix| name.strip_suffix(suffix))
        .unwrap_or(name)
}

/// The family a series name belongs to: its base name, and a counter's without `_total`.
fn family(name: &str) -> &str {
    let name = base(name);
    name.strip_suffix("_total").unwrap_or(name)
}
