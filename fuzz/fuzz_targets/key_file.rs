//! Key files in every format the file backend reads (the first byte picks it).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((format, rest)) = data.split_first() else { return };
    let ext = ["yaml", "json", "toml"][usize::from(*format) % 3];
    confd_rs::fuzzing::key_file(ext, &String::from_utf8_lossy(rest));
});
