//! Entry points for the fuzz targets (`fuzz/`) and property tests: each feeds untrusted input
//! to confd-rs the way a run does, and must return (an error is fine) rather than panic.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use crate::render::{KeySpace, Pattern, Syntax, Template};

/// A confdir holding `confd_toml`, one conf.d resource and its template, loaded and compiled as
/// at start.
pub fn load_config(confd_toml: &str, resource_toml: &str, template: &str) {
    let Ok(dir) = tempfile::tempdir() else { return };
    let write = |rel: &str, text: &str| std::fs::write(dir.path().join(rel), text);
    if std::fs::create_dir_all(dir.path().join("conf.d")).is_err()
        || std::fs::create_dir_all(dir.path().join("templates")).is_err()
        || write("confd.toml", confd_toml).is_err()
        || write("conf.d/r.toml", resource_toml).is_err()
        || write("templates/t.tmpl", template).is_err()
    {
        return;
    }
    let args = ["confd-rs", "--onetime", "--confdir"].map(std::ffi::OsString::from);
    let Ok(cli) = crate::cli::parse(args.into_iter().chain([dir.path().as_os_str().into()])) else {
        return;
    };
    if let Ok(cfg) = crate::config::load(&cli) {
        let _ = crate::pipeline::Prepared::new(cfg);
    }
}

/// A key file's text, as `--backend file` reads it (`ext` picks the format).
pub fn key_file(ext: &str, text: &str) {
    let _ = crate::store::file::parse(Path::new(&format!("keys.{ext}")), text);
}

/// A glob against a key, as `getvs`/`gets`/`each` use them.
pub fn glob(pattern: &str, key: &str) -> Option<bool> {
    Pattern::new(pattern).ok().map(|p| p.matches(key))
}

/// `source` compiled as `syntax` and rendered over `keys`, with `a` and `b` as variables.
pub fn render(
    source: &str,
    syntax: Syntax,
    keys: BTreeMap<String, String>,
    a: &str,
    b: &str,
) -> Option<String> {
    let t = Template::compile_as("fuzz.tmpl", source, syntax).ok()?;
    t.render(KeySpace::all(Arc::new(keys)), &[("a", a), ("b", b)])
        .ok()
        .map(|r| r.text)
}
