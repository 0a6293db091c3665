//! Applying resources, as confd's `process()`: render → install → reload. `--onetime` and
//! `--noop` make one pass over a fresh snapshot; otherwise the daemon drives [`apply_batch`].

use std::collections::BTreeSet;

use anyhow::Context;

use crate::apply::{self, ApplyError, Outcome};
use crate::cli::Cli;
use crate::config::{Config, Resource};
use crate::store::{Snapshot, Store};
use crate::{command, daemon, exit, render};

pub fn main(cli: Cli, cfg: Config) -> anyhow::Result<u8> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    rt.block_on(async {
        if cfg.onetime || cfg.noop {
            let mut store = Store::open(&cfg.backend).await?;
            once(&cfg, &mut store).await
        } else {
            daemon::run(cli, cfg).await
        }
    })
}

/// Reads every resource's keys at one revision, then processes them all. A failing resource
/// does not stop the others; the exit code is that of the first failure.
async fn once(cfg: &Config, store: &mut Store) -> anyhow::Result<u8> {
    let snap = store.snapshot(&cfg.prefixes()).await?;
    tracing::debug!(revision = snap.revision, keys = snap.kvs.len(), "snapshot");
    if cfg.noop {
        return Ok(noop(cfg, &snap));
    }
    let mut code = exit::OK;
    for report in apply_batch(cfg, 0..cfg.resources.len(), &snap, &BTreeSet::new()).await {
        if let Err(e) = &report.result {
            keep_first(&mut code, exit::of(e));
        }
    }
    Ok(code)
}

/// What became of one resource in a batch.
pub struct Report {
    pub index: usize,
    pub result: anyhow::Result<Outcome>,
    /// Values the render left out (already logged by key).
    pub dropped: usize,
}

/// Renders and installs the resources at `indices` from `snap`, then runs each distinct
/// reload_cmd once, after every file it covers is in place. `owed` are resources whose earlier
/// reload failed: they are reloaded even when their file is already in place, since nginx may
/// still run the old one. Failures are logged here.
pub async fn apply_batch(
    cfg: &Config,
    indices: impl IntoIterator<Item = usize>,
    snap: &Snapshot,
    owed: &BTreeSet<usize>,
) -> Vec<Report> {
    let opts = apply::Options {
        sync_only: cfg.sync_only,
        command_timeout: cfg.command_timeout,
    };
    let mut reports = Vec::new();
    let mut reloads: Vec<(&str, Vec<usize>)> = Vec::new();
    for index in indices {
        let res = &cfg.resources[index];
        let (result, dropped) = match render_resource(res, snap) {
            Ok((text, dropped)) => (
                apply::install(res, &text, opts)
                    .await
                    .map_err(anyhow::Error::from),
                dropped,
            ),
            Err(e) => (Err(e), 0),
        };
        let reload = match &result {
            Ok(Outcome::Unchanged) => {
                tracing::debug!(dest = %res.dest.display(), "in sync");
                owed.contains(&index)
            }
            Ok(Outcome::Installed) => {
                tracing::info!(dest = %res.dest.display(), revision = snap.revision, "updated");
                true
            }
            Err(e) => {
                tracing::error!(resource = %res.name, "{e:#}");
                false
            }
        };
        if let Some(cmd) = res
            .reload_cmd
            .as_deref()
            .filter(|_| reload && !cfg.sync_only)
        {
            match reloads.iter_mut().find(|(c, _)| *c == cmd) {
                Some((_, group)) => group.push(reports.len()),
                None => reloads.push((cmd, vec![reports.len()])),
            }
        }
        reports.push(Report {
            index,
            result,
            dropped,
        });
    }
    for (cmd, group) in reloads {
        match command::run(cmd, cfg.command_timeout).await {
            Ok(()) => tracing::info!(cmd, "reloaded"),
            Err(e) => {
                tracing::error!("reload_cmd failed: {e}");
                for i in group {
                    reports[i].result = Err(ApplyError::Reload(e.clone()).into());
                }
            }
        }
    }
    reports
}

fn render_resource(res: &Resource, snap: &Snapshot) -> anyhow::Result<(String, usize)> {
    let name = res.src.display().to_string();
    let (keys, refused) = snap.view(&res.prefix, &res.keys);
    for key in &refused {
        tracing::warn!(resource = %res.name, key = ?key, "key left out: its path is not clean");
    }
    let rendered = render::render(&name, &res.template, keys)?;
    for msg in &rendered.dropped {
        tracing::error!(resource = %res.name, "{msg}");
    }
    Ok((rendered.text, rendered.dropped.len()))
}

/// Prints a unified diff per resource that would change; writes nothing, runs nothing.
fn noop(cfg: &Config, snap: &Snapshot) -> u8 {
    let mut code = exit::OK;
    let mut changed = false;
    for res in &cfg.resources {
        match render_resource(res, snap).and_then(|(text, _)| Ok(apply::diff(res, &text)?)) {
            Ok(Some(d)) => {
                changed = true;
                print!("{d}");
            }
            Ok(None) => tracing::info!(dest = %res.dest.display(), "no change"),
            Err(e) => {
                tracing::error!(resource = %res.name, "{e:#}");
                keep_first(&mut code, exit::of(&e));
            }
        }
    }
    if code == exit::OK && changed && cfg.exit_code {
        exit::CHANGES
    } else {
        code
    }
}

/// The exit code of a pass is that of its first failure.
fn keep_first(code: &mut u8, new: u8) {
    if *code == exit::OK {
        *code = new;
    }
}
