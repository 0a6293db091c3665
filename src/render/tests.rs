//! confd's template functions, pinned to confd's semantics.

use std::collections::BTreeMap;

use super::*;

/// Compiles and renders `source` over every key of `keys`.
fn render(
    name: &str,
    source: &str,
    keys: BTreeMap<String, String>,
) -> Result<Rendered, RenderError> {
    Template::compile(name, source)?.render(KeySpace::all(Arc::new(keys)), &[])
}

fn keys(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn seed() -> BTreeMap<String, String> {
    keys(&[
        ("/search_PRE/172.18.100.31-86", "172.18.100.31:86"),
        ("/search_PRE/172.18.100.32-86", "172.18.100.32:86"),
        ("/web_PRO/10.0.0.1-80", "10.0.0.1:80"),
        ("/app/config", r#"{"a": 1, "b": [1, 2]}"#),
        ("/app/list", r#"["x", "y"]"#),
        ("/app/nested/deep/key", "v"),
        ("/leaf", "root leaf"),
    ])
}

fn r(src: &str) -> String {
    render("t.tmpl", src, seed())
        .map(|r| r.text)
        .unwrap_or_else(|e| format!("ERROR {e}"))
}

#[test]
fn getv_with_and_without_default() {
    assert_eq!(
        r("{{ getv('/search_PRE/172.18.100.31-86') }}"),
        "172.18.100.31:86"
    );
    assert_eq!(r("{{ getv('/missing', 'dflt') }}"), "dflt");
    assert_eq!(
        r("{{ getv('/missing') }}"),
        "ERROR t.tmpl:1: invalid operation: key does not exist: /missing"
    );
}

#[test]
fn get_and_gets_expose_key_and_value_both_spellings() {
    assert_eq!(
        r("{% set kv = get('/leaf') %}{{ kv.key }}={{ kv.Value }}"),
        "/leaf=root leaf"
    );
    assert_eq!(
        r("{% for kv in gets('/search_PRE/*') %}{{ kv.Key }} {{ kv.value }};{% endfor %}"),
        "/search_PRE/172.18.100.31-86 172.18.100.31:86;/search_PRE/172.18.100.32-86 172.18.100.32:86;"
    );
}

#[test]
fn glob_star_does_not_cross_slashes() {
    assert_eq!(
        r("{{ getvs('/app/*') | join(',') }}"),
        r#"["x", "y"],{"a": 1, "b": [1, 2]}"#
    );
    assert_eq!(r("{{ gets('/*') | length }}"), "1");
    assert_eq!(r("{{ getvs('/*/*-80') }}"), "['10.0.0.1:80']");
    assert!(r("{{ getvs('/app/[') }}")
        .starts_with("ERROR t.tmpl:1: invalid operation: syntax error in pattern"));
}

#[test]
fn getvs_sorts_by_value() {
    let r = render(
        "t",
        "{{ getvs('/s/*') }}",
        keys(&[("/s/a", "9"), ("/s/b", "10"), ("/s/c", "1")]),
    )
    .expect("renders");
    assert_eq!(r.text, "['1', '10', '9']");
}

#[test]
fn ls_and_lsdir_work_at_the_root() {
    assert_eq!(
        r("{{ ls('/') }}"),
        "['app', 'leaf', 'search_PRE', 'web_PRO']"
    );
    assert_eq!(r("{{ lsdir('/') }}"), "['app', 'search_PRE', 'web_PRO']");
    assert_eq!(r("{{ ls('/app') }}"), "['config', 'list', 'nested']");
    assert_eq!(r("{{ lsdir('/app/') }}"), "['nested']");
    assert_eq!(r("{{ ls('/nothing') }}"), "[]");
}

#[test]
fn ls_is_by_directory_not_by_string_prefix() {
    let k = keys(&[("/a/x", "1"), ("/a-b/y", "2"), ("/ab/z", "3")]);
    assert_eq!(
        render("t", "{{ ls('/a') }}", k).expect("renders").text,
        "['x']"
    );
}

#[test]
fn exists_and_missing() {
    assert_eq!(
        r("{{ exists('/leaf') }} {{ exists('/nope') }}"),
        "true false"
    );
}

#[test]
fn json_and_json_array() {
    assert_eq!(r("{{ json(getv('/app/config')).b[1] }}"), "2");
    assert_eq!(r("{{ jsonArray(getv('/app/list')) | join('+') }}"), "x+y");
    assert!(r("{{ json(getv('/app/list')) }}")
        .starts_with("ERROR t.tmpl:1: invalid operation: json: unexpected"));
}

#[test]
fn string_functions_follow_go() {
    assert_eq!(
        r("{{ base('/a/b/') }} {{ dir('/a/b') }} {{ dir('a') }}"),
        "b /a ."
    );
    assert_eq!(r("{{ split('a:b:c', ':') }}"), "['a', 'b', 'c']");
    assert_eq!(r("{{ split('', ':') }}"), "['']");
    assert_eq!(r("{{ join(['a', 1], '-') }}"), "a-1");
    assert_eq!(r("{{ toUpper('aB') }}{{ toLower('Cd') }}"), "ABcd");
    assert_eq!(
        r("{{ replace('aaa', 'a', 'b', 2) }} {{ replace('aaa', 'a', 'b', -1) }}"),
        "bba bbb"
    );
    assert_eq!(
        r("{{ contains('search_PRE', 'PRE') }} {{ trimSuffix('a.conf', '.conf') }}"),
        "true a"
    );
    assert_eq!(
        r("{{ base64Encode('hi') }} {{ base64Decode('aGk=') }}"),
        "aGk= hi"
    );
}

#[test]
fn numbers_and_lists() {
    assert_eq!(r("{{ atoi('42') + 1 }} {{ add(1, 2) }} {{ sub(1, 2) }} {{ mul(3, 4) }} {{ div(7, 2) }} {{ mod(7, 2) }}"), "43 3 -1 12 3 1");
    assert!(r("{{ div(1, 0) }}").contains("division by zero"));
    assert!(r("{{ atoi('x') }}").contains("atoi: invalid syntax"));
    assert_eq!(r("{{ seq(1, 3) }} {{ seq(3, 1) }}"), "[1, 2, 3] []");
    assert_eq!(r("{{ reverse(['a', 'b']) }}"), "['b', 'a']");
    assert_eq!(
        r("{{ sortByLength(['ccc', 'a', 'bb']) }}"),
        "['a', 'bb', 'ccc']"
    );
    assert_eq!(r("{% for kv in sortKVByLength(gets('/*/*')) %}{{ kv.key }} {% endfor %}"),
        "/app/list /app/config /web_PRO/10.0.0.1-80 /search_PRE/172.18.100.31-86 /search_PRE/172.18.100.32-86 ");
    assert_eq!(r("{{ map('a', 1, 'b', 2).b }}"), "2");
}

#[test]
fn parse_bool_like_strconv() {
    assert_eq!(
        r("{{ parseBool('T') }} {{ parseBool('0') }} {{ parseBool('False') }}"),
        "true false false"
    );
    assert!(r("{{ parseBool('yes') }}").contains("parseBool: invalid syntax"));
}

#[test]
fn host_functions() {
    assert_eq!(r("{{ getenv('CONFD_RS_SURELY_UNSET', 'd') }}"), "d");
    assert_eq!(
        r("{{ fileExists('/') }} {{ fileExists('/surely/not/here') }}"),
        "true false"
    );
    assert_eq!(
        r("{{ lookupIP('127.0.0.1') }} {{ lookupIPV6('127.0.0.1') }}"),
        "['127.0.0.1'] []"
    );
    assert_eq!(r("{{ datetime() | length }}"), "20");
}

#[test]
fn undefined_variables_are_errors_and_newline_is_kept() {
    assert_eq!(
        r("{{ nope }}"),
        "ERROR t.tmpl:1: undefined value: `nope` is undefined"
    );
    assert_eq!(r("x\n"), "x\n");
    assert_eq!(r("{{ nope | default('d') }}"), "d");
}

#[test]
fn syntax_errors_name_template_and_line() {
    let err = Template::compile("nginx.tmpl", "ok\n{% for x in y %}\n")
        .map(|_| ())
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("nginx.tmpl:2: syntax error"), "{err}");
}

#[test]
fn hostports_drops_invalid_values_by_key() {
    let k = keys(&[
        ("/s/a", "10.0.0.2:80"),
        ("/s/b", "10.0.0.1:80"),
        (
            "/s/c",
            "127.0.0.1:1; } server { listen 1; } upstream x { server 127.0.0.1:2",
        ),
        ("/s/d", "10.0.0.1:80"),
        ("/s/e", " 10.0.0.3:80\n"),
        ("/s/f\nforged", &"x".repeat(500)),
    ]);
    let out = render("t", "{{ hostports('/s/*') }}", k).expect("renders");
    assert_eq!(out.text, "['10.0.0.1:80', '10.0.0.2:80', '10.0.0.3:80']");
    assert_eq!(out.dropped.len(), 2);
    assert!(
        out.dropped[0].starts_with("key \"/s/c\": value "),
        "{:?}",
        out.dropped
    );
    assert_eq!(
        out.dropped[1],
        format!(
            "key \"/s/f\\nforged\": value \"{}\"… (500 bytes) is not a valid host:port; left out",
            "x".repeat(120)
        )
    );
}

#[test]
fn ten_thousand_keys_render_by_range_scans() {
    let mut k = BTreeMap::new();
    for s in 0..1000 {
        for i in 0..10 {
            k.insert(
                format!("/svc{s:04}_PRE/10.0.{s}.{i}-80"),
                format!("10.0.{}.{i}:80", s % 250),
            );
        }
    }
    let src = include_str!("../../templates/nginx-upstreams.conf.tmpl");
    let out = render("nginx-upstreams.conf.tmpl", src, k).expect("renders");
    assert_eq!(out.text.matches("upstream ").count(), 1000);
    assert_eq!(out.text.matches("server ").count(), 10_000);
}

#[test]
fn only_keys_within_the_given_prefixes_are_visible() {
    let ks = KeySpace::within(Arc::new(seed()), vec!["/search_PRE".into(), "/leaf".into()]);
    let t = Template::compile(
        "t",
        "{{ ls('/') }} {{ exists('/web_PRO/10.0.0.1-80') }} {{ getvs('/*/*') }} {{ getv('/leaf') }}",
    )
    .expect("compiles");
    assert_eq!(
        t.render(ks, &[]).expect("renders").text,
        "['leaf', 'search_PRE'] false ['172.18.100.31:86', '172.18.100.32:86'] root leaf"
    );
}

#[test]
fn a_compiled_template_renders_many_times_with_its_own_keys_each_time() {
    let t = Template::compile("t", "{{ getvs('/*') | join(',') }}").expect("compiles");
    let a = keys(&[("/a", "1")]);
    let b = keys(&[("/b", "2"), ("/c", "3")]);
    assert_eq!(
        t.render(KeySpace::all(Arc::new(a)), &[]).expect("a").text,
        "1"
    );
    assert_eq!(
        t.render(KeySpace::all(Arc::new(b)), &[]).expect("b").text,
        "2,3"
    );
}

#[test]
fn the_language_of_a_template_is_detected() {
    for shipped in ["nginx-upstreams.conf.tmpl", "nginx-upstream.conf.tmpl"] {
        let path = format!("{}/templates/{shipped}", env!("CARGO_MANIFEST_DIR"));
        let text = std::fs::read_to_string(&path).expect("shipped template");
        assert_eq!(Syntax::detect(&text), Syntax::Jinja, "{shipped}");
    }
    for jinja in [
        "{{ getv('/a') }}",
        "{{ getvs(\"/a/*\")|join(\",\") }}",
        "{% if exists(\"/a\") %}x{% endif %}",
        "{{ path }}",
        // A tag in the text before the first action settles it, whatever follows.
        "upstream a {\n{% for s in getvs(\"/*\") %}{{ s }}{% endfor %}}",
        "{# c #}{{getv \"/a\"}}",
    ] {
        assert_eq!(Syntax::detect(jinja), Syntax::Jinja, "{jinja}");
    }
    for go in [
        "{{getv \"/a\"}}",
        "{{range gets \"/a/*\"}}{{.Value}}{{end}}",
        "{{- /* c */ -}}\n{{$x := 1}}{{$x}}",
        "plain text",
        // `{%` inside an action is Go's string, not a Jinja tag.
        "{{getv \"/a\"}} {{\"{%\"}}",
    ] {
        assert_eq!(Syntax::detect(go), Syntax::Go, "{go}");
    }
}

#[test]
fn go_templates_render_with_go_semantics() {
    let r = |src: &str| {
        Template::compile_as("t.tmpl", src, Syntax::Go)
            .and_then(|t| t.render(KeySpace::all(Arc::new(seed())), &[]))
            .map(|r| r.text)
            .unwrap_or_else(|e| format!("ERROR {e}"))
    };
    assert_eq!(
        r("{{range gets \"/search_PRE/*\"}}{{.Value}} {{end}}"),
        "172.18.100.31:86 172.18.100.32:86 "
    );
    assert_eq!(
        r("{{$x := 1}}{{range seq 1 3}}{{$x = .}}{{end}}{{$x}}"),
        "3"
    );
    assert_eq!(r("{{$x := 1}}{{if true}}{{$x := 2}}{{end}}{{$x}}"), "1");
    assert_eq!(
        r("{{define \"t\"}}<{{.}}>{{end}}{{template \"t\" \"a\"}}"),
        "<a>"
    );
    assert!(
        r("{{getv \"/nope\"}}").starts_with("ERROR t.tmpl:1:3: "),
        "{}",
        r("{{getv \"/nope\"}}")
    );
    assert!(
        r("{{if}}").starts_with("ERROR t.tmpl:1:"),
        "{}",
        r("{{if}}")
    );
    // Found by the go_template fuzz target: an unclosed comment whose `*/` overlaps its `/*`.
    assert!(
        r("{{/*/").starts_with("ERROR t.tmpl:1:1: unclosed comment"),
        "{}",
        r("{{/*/")
    );
    // `{%` in Go text is text, not a Jinja tag.
    assert_eq!(r("{% {{\"x\"}} {#"), "{% x {#");
}
