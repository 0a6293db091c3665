//! Properties over generated key spaces and templates: renders never panic, and confd's key
//! functions agree with naive reference implementations written here from their definitions.

use std::collections::{BTreeMap, BTreeSet};

use confd_rs::fuzzing::{glob, render};
use confd_rs::render::Syntax;
use proptest::prelude::*;

/// Keys of one to three segments over a small alphabet (so they collide into directories), and
/// values that are sometimes host:port, sometimes not.
fn key_space() -> impl Strategy<Value = BTreeMap<String, String>> {
    let segment = prop::sample::select(vec!["a", "b", "ab", "a_PRE", "x-1", "10.0.0.1-80"]);
    let key = prop::collection::vec(segment, 1..=3).prop_map(|s| format!("/{}", s.join("/")));
    let value = prop_oneof![
        (1u8..=254, 1u16..=65535).prop_map(|(h, p)| format!("10.0.0.{h}:{p}")),
        Just(" 10.0.0.9:80\n".to_owned()),
        Just("10.0.0.1:80; }".to_owned()),
        Just("".to_owned()),
        "[a-z:;{} ]{0,8}",
    ];
    prop::collection::btree_map(key, value, 0..24)
}

fn dir_query() -> impl Strategy<Value = String> {
    prop::sample::select(vec![
        "/", "/a", "/b", "/ab", "/a/b", "/a_PRE", "/x-1", "/a/",
    ])
    .prop_map(str::to_owned)
}

fn glob_query() -> impl Strategy<Value = String> {
    prop::sample::select(vec![
        "/*", "/*/*", "/a/*", "/a*", "/?", "/a/?", "/*/b", "/*_PRE/*",
    ])
    .prop_map(str::to_owned)
}

/// `path.Match` for `*` and `?` (no classes), by definition: neither crosses a `/`.
fn naive_match(pattern: &[u8], name: &[u8]) -> bool {
    match (pattern.split_first(), name.split_first()) {
        (None, None) => true,
        (Some((b'*', rest)), _) => {
            naive_match(rest, name)
                || matches!(name.split_first(), Some((c, tail)) if *c != b'/' && naive_match(pattern, tail))
        }
        (Some((b'?', rest)), Some((c, tail))) => *c != b'/' && naive_match(rest, tail),
        (Some((p, rest)), Some((c, tail))) => p == c && naive_match(rest, tail),
        _ => false,
    }
}

/// `ls`: names one level below `dir` (and `dir`'s own name when it is a key), sorted, once each.
fn naive_ls(keys: &BTreeMap<String, String>, dir: &str, dirs_only: bool) -> Vec<String> {
    let base = if dir.ends_with('/') {
        dir.to_owned()
    } else {
        format!("{dir}/")
    };
    let mut out = BTreeSet::new();
    let trimmed = dir.trim_end_matches('/');
    if !dirs_only && dir != "/" && keys.contains_key(dir) {
        out.insert(trimmed.rsplit('/').next().unwrap_or_default().to_owned());
    }
    for k in keys.keys() {
        if let Some(rest) = k.strip_prefix(&base) {
            match rest.split_once('/') {
                Some((seg, _)) if !seg.is_empty() => {
                    out.insert(seg.to_owned());
                }
                None if !dirs_only && !rest.is_empty() => {
                    out.insert(rest.to_owned());
                }
                _ => {}
            }
        }
    }
    out.into_iter().collect()
}

fn lines(text: &str) -> Vec<String> {
    text.lines().map(str::to_owned).collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn getvs_agrees_with_a_naive_glob(keys in key_space(), pattern in glob_query()) {
        let got = render("{% for v in getvs(a) %}{{ v }}\u{1}{% endfor %}", Syntax::Jinja, keys.clone(), &pattern, "")
            .expect("renders");
        let mut want: Vec<&String> = keys
            .iter()
            .filter(|(k, _)| naive_match(pattern.as_bytes(), k.as_bytes()))
            .map(|(_, v)| v)
            .collect();
        want.sort();
        let got: Vec<&str> = got.split_terminator('\u{1}').collect();
        prop_assert_eq!(got, want.iter().map(|s| s.as_str()).collect::<Vec<_>>());
    }

    #[test]
    fn glob_matches_like_the_naive_matcher(key in "/[ab/]{0,6}", pattern in glob_query()) {
        prop_assert_eq!(glob(&pattern, &key), Some(naive_match(pattern.as_bytes(), key.as_bytes())));
    }

    #[test]
    fn ls_and_lsdir_agree_with_naive_listings(keys in key_space(), dir in dir_query()) {
        let ls = render("{% for n in ls(a) %}{{ n }}\n{% endfor %}", Syntax::Jinja, keys.clone(), &dir, "")
            .expect("renders");
        prop_assert_eq!(lines(&ls), naive_ls(&keys, &dir, false));
        let lsdir = render("{% for n in lsdir(a) %}{{ n }}\n{% endfor %}", Syntax::Jinja, keys.clone(), &dir, "")
            .expect("renders");
        prop_assert_eq!(lines(&lsdir), naive_ls(&keys, &dir, true));
    }

    #[test]
    fn hostports_keeps_exactly_the_valid_ip_host_ports(keys in key_space(), pattern in glob_query()) {
        let got = render("{% for h in hostports(a) %}{{ h }}\n{% endfor %}", Syntax::Jinja, keys.clone(), &pattern, "")
            .expect("renders");
        let valid = |v: &str| {
            let Some((ip, port)) = v.rsplit_once(':') else { return false };
            ip.parse::<std::net::Ipv4Addr>().is_ok()
                && !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit())
                && port.parse::<u32>().is_ok_and(|p| (1..=65535).contains(&p))
        };
        let want: BTreeSet<String> = keys
            .iter()
            .filter(|(k, _)| naive_match(pattern.as_bytes(), k.as_bytes()))
            .map(|(_, v)| v.trim().to_owned())
            .filter(|v| valid(v))
            .collect();
        prop_assert_eq!(lines(&got), want.into_iter().collect::<Vec<_>>());
    }

    #[test]
    fn jinja_renders_never_panic(keys in key_space(), body in "[{}%#a-z()\"', .|]{0,40}", a in ".{0,8}") {
        let _ = render(&format!("{{{{ {body} }}}}"), Syntax::Jinja, keys.clone(), &a, "");
        let _ = render(&format!("{{% {body} %}}x{{% endif %}}"), Syntax::Jinja, keys, &a, "");
    }

    #[test]
    fn go_renders_never_panic(keys in key_space(), body in "[{}$.a-z()\"`' |:=0-9-]{0,40}") {
        let _ = render(&format!("{{{{{body}}}}}"), Syntax::Go, keys.clone(), "", "");
        let _ = render(&format!("{{{{range {body}}}}}x{{{{end}}}}"), Syntax::Go, keys, "", "");
    }
}
