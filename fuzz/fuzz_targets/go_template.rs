//! Arbitrary text as a confd Go template: parsed, translated to Jinja, rendered over a few keys.
#![no_main]
use std::collections::BTreeMap;

use confd_rs::render::Syntax;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let source = String::from_utf8_lossy(data);
    let keys: BTreeMap<String, String> = [
        ("/app/port", "80"),
        ("/app/json", "{\"a\": 1.5, \"b\": [1, \"x\", null]}"),
        ("/s_PRE/10.0.0.1-80", "10.0.0.1:80"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    let _ = confd_rs::fuzzing::render(&source, Syntax::Go, keys, "a", "b");
});
