//! confd's functions (and the Go-compatibility ones) called with arbitrary arguments over
//! arbitrary keys: input = function index, then NUL-separated a, b, and key/value pairs.
#![no_main]
use std::collections::BTreeMap;

use confd_rs::render::Syntax;
use libfuzzer_sys::fuzz_target;

const CALLS: &[&str] = &[
    "getv(a)", "getv(a, b)", "getvs(a)", "gets(a)", "get(a)", "exists(a)", "ls(a)", "lsdir(a)",
    "hostports(a)", "split(a, b)", "base(a)", "dir(a)", "replace(a, b, \"x\", -1)", "json(a)",
    "jsonArray(a)", "atoi(a)", "parseBool(a)", "base64Decode(a)", "toUpper(a)", "toLower(a)",
    "trimSuffix(a, b)", "go_printf(a, b, 1, 2.5)", "go_json(a)|go_fmt", "go_field(go_json(a), b)",
    "go_index(split(a, b), 1)", "go_slice(a, 1, 2)", "go_len(a)", "go_html(a, b)", "go_js(a)",
    "go_urlquery(a)", "go_eq(a, b)", "go_lt(a, b)", "go_ls(a)", "go_lsdir(a)", "a is nginx_name",
];

fuzz_target!(|data: &[u8]| {
    let Some((pick, rest)) = data.split_first() else { return };
    let call = CALLS[usize::from(*pick) % CALLS.len()];
    let text = String::from_utf8_lossy(rest);
    let mut parts = text.split('\0');
    let a = parts.next().unwrap_or_default();
    let b = parts.next().unwrap_or_default();
    let mut keys = BTreeMap::new();
    while let (Some(k), Some(v)) = (parts.next(), parts.next()) {
        keys.insert(k.to_owned(), v.to_owned());
    }
    let source = format!("{{{{ {call} }}}}");
    let _ = confd_rs::fuzzing::render(&source, Syntax::Jinja, keys, a, b);
});
