//! The one top-level error, and the one mapping from it to the process exit code (README).

use crate::config::ConfigError;
use crate::pipeline::{ResourceError, Unusable};
use crate::register::RegisterError;
use crate::render::RenderError;
use crate::store::StoreError;

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
/// The host refused something confd-rs needs to run: the async runtime, signal handlers, the
/// metrics address.
pub const HOST: u8 = 6;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Template(#[from] RenderError),
    #[error(transparent)]
    Register(#[from] RegisterError),
    #[error("{about}: {source}")]
    Host {
        about: &'static str,
        source: std::io::Error,
    },
}

impl ResourceError {
    pub fn exit_code(&self) -> u8 {
        match self {
            ResourceError::Render(_) => TEMPLATE,
            ResourceError::Apply(_) => APPLY,
            // Only the daemon holds (a pass of --onetime has no earlier apply to compare with).
            ResourceError::Held(_) => APPLY,
        }
    }
}

impl Error {
    pub fn host(about: &'static str) -> impl FnOnce(std::io::Error) -> Error {
        move |source| Error::Host { about, source }
    }

    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Config(_) => CONFIG,
            Error::Store(_) => STORE,
            Error::Template(_) => TEMPLATE,
            Error::Register(e) => match e {
                RegisterError::Usage(_) | RegisterError::Config(_) => CONFIG,
                RegisterError::Store(_) => STORE,
                RegisterError::Spawn { code, .. } => *code,
                RegisterError::Host { .. } => HOST,
            },
            Error::Host { .. } => HOST,
        }
    }
}

impl Unusable {
    pub fn exit_code(&self) -> u8 {
        if self.template {
            TEMPLATE
        } else {
            CONFIG
        }
    }
}
