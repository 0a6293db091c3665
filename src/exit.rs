//! The one place that turns an outcome into a process exit code (documented in README).

use std::process::ExitCode;

use crate::{
    apply::ApplyError, config::ConfigError, register::RegisterError, render::RenderError,
    store::StoreError,
};

/// Everything was applied (or nothing needed to change).
pub const OK: u8 = 0;
/// `--noop --exit-code`: at least one resource would change.
pub const CHANGES: u8 = 1;
/// Bad command line, confd.toml, conf.d resource or missing confdir/template file.
pub const CONFIG: u8 = 2;
/// The store (etcd or key files) could not be read.
pub const STORE: u8 = 3;
/// A template failed to parse or render (syntax error, missing key, bad function argument).
pub const TEMPLATE: u8 = 4;
/// A dest file could not be written, or its check_cmd / reload_cmd failed.
pub const APPLY: u8 = 5;

/// The exit code an error stands for: the first typed error found in its chain.
pub fn of(err: &anyhow::Error) -> u8 {
    for cause in err.chain() {
        if let Some(ConfigError::Template(_)) = cause.downcast_ref() {
            return TEMPLATE;
        }
        match cause.downcast_ref() {
            Some(RegisterError::Usage(_)) => return CONFIG,
            Some(RegisterError::Spawn { code, .. }) => return *code,
            None => {}
        }
        if cause.is::<ConfigError>() {
            return CONFIG;
        }
        if cause.is::<StoreError>() {
            return STORE;
        }
        if cause.is::<RenderError>() {
            return TEMPLATE;
        }
        if cause.is::<ApplyError>() {
            return APPLY;
        }
    }
    CONFIG
}

/// Prints a top-level error as one line on stderr and returns its exit code.
pub fn code(outcome: anyhow::Result<u8>) -> ExitCode {
    match outcome {
        Ok(code) => ExitCode::from(code),
        Err(err) => {
            eprintln!("confd-rs: error: {err:#}");
            ExitCode::from(of(&err))
        }
    }
}
