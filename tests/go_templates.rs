//! confd's Go templates run unchanged: the project's corpus (tests/go-templates, outputs
//! recorded with real Go text/template) renders byte for byte, `convert` turns each into Jinja
//! that renders the same, and confd's conformance suite (../shared/go-conformance) passes.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use support::*;

fn corpus() -> Vec<PathBuf> {
    let dir = Path::new(REPO).join("tests/go-templates");
    let mut cases: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("tests/go-templates")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("template.tmpl").is_file())
        .collect();
    cases.sort();
    assert!(cases.len() >= 8, "corpus cases: {cases:?}");
    cases
}

/// A confdir whose one resource renders the case's template (as it is, no `syntax` set).
fn confdir_for(case: &Path) -> (Confdir, PathBuf) {
    let confdir = Confdir::new("backend = \"file\"\n");
    let dest = confdir.path().join("out.conf");
    confdir
        .template(
            "t.tmpl",
            &std::fs::read_to_string(case.join("template.tmpl")).expect("template"),
        )
        .resource(
            "t.toml",
            &format!(
                "[template]\nsrc = \"t.tmpl\"\ndest = \"{}\"\nkeys = [\"/\"]\n",
                dest.display()
            ),
        );
    (confdir, dest)
}

/// `confd-rs ARGS` with nothing in the environment but PATH (the corpus reads getenv).
fn run_clean(args: &[&str]) -> Output {
    Command::new(BIN)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .args(args)
        .output()
        .expect("run confd-rs")
}

fn onetime(confdir: &Confdir, keys: &Path) -> Output {
    run_clean(&[
        "--confdir",
        confdir.path().to_str().expect("utf8"),
        "--onetime",
        "--file",
        keys.to_str().expect("utf8"),
    ])
}

#[test]
fn every_corpus_template_renders_as_go_text_template_did() {
    for case in corpus() {
        let (confdir, dest) = confdir_for(&case);
        let out = onetime(&confdir, &case.join("keys.json"));
        assert!(out.status.success(), "{}: {}", case.display(), stderr(&out));
        let want = std::fs::read_to_string(case.join("expected")).expect("expected");
        let got = std::fs::read_to_string(&dest).expect("dest");
        assert_eq!(got, want, "{}", case.display());
    }
}

#[test]
fn convert_write_turns_each_corpus_template_into_jinja_that_renders_the_same() {
    for case in corpus() {
        let (confdir, dest) = confdir_for(&case);
        let dir = confdir.path().to_str().expect("utf8");
        let keys = case.join("keys.json");
        let keys = keys.to_str().expect("utf8");

        let check = run_clean(&["convert", "--confdir", dir, "--data", keys]);
        assert_eq!(check.status.code(), Some(0), "{}", stdout(&check));
        assert!(
            stdout(&check).ends_with(": identical\n"),
            "{}",
            stdout(&check)
        );

        let write = run_clean(&["convert", "--confdir", dir, "--write"]);
        assert_eq!(write.status.code(), Some(0), "{}", stderr(&write));
        let tmpl = confdir.path().join("templates/t.tmpl");
        let go = std::fs::read_to_string(case.join("template.tmpl")).expect("go");
        assert_eq!(
            std::fs::read_to_string(tmpl.with_extension("tmpl.orig")).expect(".orig"),
            go
        );
        let toml = std::fs::read_to_string(confdir.path().join("conf.d/t.toml")).expect("toml");
        assert!(toml.contains("syntax = \"jinja\""), "{toml}");

        let out = onetime(&confdir, Path::new(keys));
        assert!(out.status.success(), "{}: {}", case.display(), stderr(&out));
        let want = std::fs::read_to_string(case.join("expected")).expect("expected");
        assert_eq!(
            std::fs::read_to_string(&dest).expect("dest"),
            want,
            "{}",
            case.display()
        );
    }
}

#[test]
fn convert_prints_plain_jinja_where_jinja_does_the_same() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("up.tmpl");
    std::fs::write(
        &file,
        "{{range $svc := lsdir \"/apps\"}}upstream {{$svc}} {\n\
         {{range gets (printf \"/apps/%s/*\" $svc)}}    server {{.Value}};\n{{end}}}\n{{end}}",
    )
    .expect("write");
    let out = Command::new(BIN)
        .args(["convert"])
        .arg(&file)
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        "{% for svc in lsdir(\"/apps\") %}upstream {{ svc }} {\n\
         {% for kv in gets(\"/apps/\" ~ svc ~ \"/*\") %}    server {{ kv.value }};\n{% endfor %}}\n{% endfor %}"
    );
}

#[test]
fn a_go_template_error_names_file_line_and_column_and_leaves_dest() {
    let confdir = Confdir::new("backend = \"file\"\n");
    let dest = confdir.path().join("out.conf");
    std::fs::write(&dest, "previous\n").expect("dest");
    confdir
        .template(
            "bad.tmpl",
            "ok\n  {{getv \"/app/port\"}} {{getv \"/missing\"}}\n",
        )
        .resource(
            "bad.toml",
            &format!(
                "[template]\nsrc = \"bad.tmpl\"\ndest = \"{}\"\nkeys = [\"/\"]\n",
                dest.display()
            ),
        );
    let keys = confdir.path().join("keys.yaml");
    std::fs::write(&keys, "app:\n  port: \"80\"\n").expect("keys");
    let out = confdir.run(&["--onetime", "--file", keys.to_str().expect("utf8")]);
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("bad.tmpl:2:26: ") && stderr(&out).contains("/missing"),
        "{}",
        stderr(&out)
    );
    assert_eq!(std::fs::read_to_string(&dest).expect("dest"), "previous\n");

    // A parse error too, before anything renders.
    confdir.template("bad.tmpl", "{{range getvs \"/a/*\"}}\n{{.}}\n");
    let out = confdir.run(&["--onetime", "--file", keys.to_str().expect("utf8")]);
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    assert!(stderr(&out).contains("bad.tmpl:"), "{}", stderr(&out));
    assert_eq!(std::fs::read_to_string(&dest).expect("dest"), "previous\n");
}

#[test]
fn syntax_key_picks_the_language_and_a_bad_value_is_named() {
    let confdir = Confdir::new("backend = \"file\"\n");
    let dest = confdir.path().join("out.conf");
    let keys = confdir.path().join("keys.yaml");
    std::fs::write(&keys, "app:\n  port: \"80\"\n").expect("keys");
    // Valid in both languages, with different output: `{{ "a" }}` vs Go's `{{"a"|printf "%q"}}`.
    let both = "{{ \"x\" | printf \"%q\" }}\n";
    confdir.template("t.tmpl", both);
    let resource = |syntax: &str| {
        confdir.resource(
            "t.toml",
            &format!(
                "[template]\nsrc = \"t.tmpl\"\ndest = \"{}\"\nkeys = [\"/\"]\n{syntax}",
                dest.display()
            ),
        );
    };
    let run = || confdir.run(&["--onetime", "--file", keys.to_str().expect("utf8")]);

    resource("");
    assert!(run().status.success());
    assert_eq!(std::fs::read_to_string(&dest).expect("dest"), "\"x\"\n");

    resource("syntax = \"jinja\"\n");
    let out = run();
    assert_eq!(
        out.status.code(),
        Some(4),
        "jinja has no printf: {}",
        stderr(&out)
    );

    resource("syntax = \"golang\"\n");
    let out = run();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out)
            .contains("t.toml:5: unknown variant `golang`, expected one of `auto`, `go`, `jinja`"),
        "{}",
        stderr(&out)
    );

    // confd.toml sets the default for resources that do not say.
    std::fs::write(
        confdir.path().join("confd.toml"),
        "backend = \"file\"\nsyntax = \"jinja\"\n",
    )
    .expect("confd.toml");
    resource("");
    assert_eq!(run().status.code(), Some(4));
}

#[test]
fn confd_conformance_suite_passes() {
    let suite = Path::new(REPO).join("../shared/go-conformance/run.sh");
    assert!(
        suite.is_file(),
        "{} is missing: the shared conformance suite must sit beside the project",
        suite.display()
    );
    let out = Command::new("bash")
        .arg(&suite)
        .arg(BIN)
        .output()
        .expect("run.sh");
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert!(
        stdout(&out).contains("121 passed, 0 failed"),
        "{}",
        stdout(&out)
    );
}
