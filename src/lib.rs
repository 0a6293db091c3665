//! confd-rs: keeps files (nginx upstreams, mostly) in step with keys in etcd v3.
//!
//! The pipeline, in the order data flows: [`config`] → [`store`] → [`render`] → [`apply`] →
//! [`pipeline`], driven once by [`oneshot`] or continuously by [`daemon`]. See ARCHITECTURE.md.

pub mod apply;
pub mod check;
pub mod cli;
pub mod config;
pub mod convert;
pub mod daemon;
pub mod dynamic;
pub mod error;
#[doc(hidden)]
pub mod fuzzing;
pub mod generate;
pub mod keypath;
pub mod logging;
pub mod metrics;
pub mod oneshot;
pub mod pipeline;
pub mod register;
pub mod render;
pub mod status;
pub mod store;

mod command;
mod event;
mod fswatch;
mod procs;
mod signals;

use error::Error;
use rayon::prelude::*;

/// The runtime every mode runs on: one thread for IO; passes and DNS go to the blocking pool.
pub fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
}

/// `f` of each item, in order, computed over the cores. A single item (the daemon's usual
/// pass: one changed resource) stays on this thread, where waking the pool would cost more
/// than it saves.
pub(crate) fn over_cores<T: Sync, R: Send>(
    items: &[T],
    f: impl Fn(&T) -> R + Sync + Send,
) -> Vec<R> {
    if items.len() < 2 {
        return items.iter().map(f).collect();
    }
    items.par_iter().map(f).collect()
}

/// `--onetime`/`--noop`, or the daemon until SIGTERM/SIGINT.
pub fn run(cli: cli::Cli, settings: config::Settings) -> Result<u8, Error> {
    let rt = runtime().map_err(Error::host("starting the async runtime"))?;
    if settings.onetime() {
        return rt.block_on(oneshot::run(settings));
    }
    let cfg = settings.with_resources()?;
    cfg.log_warnings();
    let prepared = prepare(cfg);
    rt.block_on(async {
        // One daemon writes a confdir's files; a shadow (--noop) writes nothing and may run
        // beside it.
        let _lock = match prepared.cfg.noop {
            true => None,
            false => Some(daemon::lock(&prepared.cfg.confdir)?),
        };
        let (stop_tx, stop) = tokio::sync::watch::channel(false);
        let (tx, rx) = tokio::sync::mpsc::channel(16);
        let signals = signals::worker(stop_tx, tx.clone())
            .map_err(Error::host("installing signal handlers"))?;
        tokio::spawn(signals);
        daemon::serve(cli, prepared, stop, tx, rx).await?;
        Ok(error::OK)
    })
}

/// Checks the templates and says what runs: the daemon's start line at info (operators read
/// it), --onetime's at debug (quiet for CI); each resource that cannot run at error.
pub(crate) fn prepare(cfg: config::Config) -> pipeline::Prepared {
    let prepared = pipeline::Prepared::new(cfg);
    let store = match &prepared.cfg.backend {
        config::Backend::Etcd(e) => format!("etcd {}", e.nodes.join(",")),
        config::Backend::File(f) => format!("files {}", f.len()),
    };
    let mode = match (prepared.cfg.onetime, prepared.cfg.noop, prepared.cfg.watch) {
        (true, true, _) => "noop",
        (true, false, _) => "onetime",
        (false, true, _) => "shadow (--noop: diffs logged, nothing written or run)",
        (false, false, true) => "watch",
        _ => "poll",
    };
    let starting = format!(
        "confd-rs {} starting: {mode}, {store}, {} resources ({} unusable)",
        cli::VERSION,
        prepared.cfg.resources.len(),
        prepared.unusable.len()
    );
    if !prepared.cfg.onetime {
        tracing::info!("{starting}");
    } else {
        tracing::debug!("{starting}");
    }
    prepared.log_unusable();
    prepared
}
