//! Go `path.Match` globs against keys: pattern and key split at the first NUL.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let (pattern, key) = text.split_once('\0').unwrap_or((&text, "/a/b"));
    let _ = confd_rs::fuzzing::glob(pattern, key);
});
