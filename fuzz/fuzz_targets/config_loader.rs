//! confd.toml, a conf.d resource and its template, split from the input at NUL bytes.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut parts = text.splitn(3, '\0');
    let confd = parts.next().unwrap_or_default();
    let resource = parts.next().unwrap_or("[template]\nsrc = \"t.tmpl\"\ndest = \"/dev/null\"\n");
    let template = parts.next().unwrap_or_default();
    confd_rs::fuzzing::load_config(confd, resource, template);
});
