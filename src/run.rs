//! One pass over every resource, as confd's `process()`: snapshot → render → install → reload.
//! `--onetime` and `--noop` make one pass; otherwise passes repeat every `interval`.

use anyhow::Context;

use crate::apply::{self, Outcome};
use crate::config::{Config, Resource};
use crate::exit;
use crate::render;
use crate::store::{Snapshot, Store};

pub fn main(cfg: Config) -> anyhow::Result<u8> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    rt.block_on(async {
        let mut store = Store::open(&cfg.backend).await?;
        if cfg.onetime || cfg.noop {
            return pass(&cfg, &mut store).await;
        }
        if cfg.watch {
            tracing::warn!("watch mode is not available yet: polling instead");
        }
        tracing::info!(interval_secs = cfg.interval.as_secs(), "polling the store");
        loop {
            if let Err(e) = pass(&cfg, &mut store).await {
                tracing::error!("{e:#}");
            }
            tokio::time::sleep(cfg.interval).await;
        }
    })
}

/// Reads every resource's keys at one revision, then processes the resources in order. A failing
/// resource does not stop the others; the exit code is that of the first failure.
async fn pass(cfg: &Config, store: &mut Store) -> anyhow::Result<u8> {
    let prefixes: Vec<String> = cfg
        .resources
        .iter()
        .flat_map(|r| r.keys.iter().cloned())
        .collect();
    let snap = store.snapshot(&prefixes).await?;
    tracing::debug!(revision = snap.revision, keys = snap.kvs.len(), "snapshot");
    if cfg.noop {
        return Ok(noop(cfg, &snap));
    }
    let opts = apply::Options {
        sync_only: cfg.sync_only,
        command_timeout: cfg.command_timeout,
    };
    let mut code = exit::OK;
    let mut reloads: Vec<(&str, Vec<&Resource>)> = Vec::new();
    for res in &cfg.resources {
        match process(res, &snap, opts).await {
            Ok(Outcome::Unchanged) => tracing::debug!(dest = %res.dest.display(), "in sync"),
            Ok(Outcome::Installed) => {
                tracing::info!(dest = %res.dest.display(), revision = snap.revision, "updated");
                if let Some(cmd) = res.reload_cmd.as_deref().filter(|_| !cfg.sync_only) {
                    match reloads.iter_mut().find(|(c, _)| *c == cmd) {
                        Some((_, group)) => group.push(res),
                        None => reloads.push((cmd, vec![res])),
                    }
                }
            }
            Err(e) => {
                tracing::error!(resource = %res.name, "{e:#}");
                keep_first(&mut code, exit::of(&e));
            }
        }
    }
    // One reload per distinct command, after every file it covers is in place.
    for (cmd, group) in reloads {
        match apply::reload(cmd, cfg.command_timeout).await {
            Ok(()) => tracing::info!(cmd, "reloaded"),
            Err(e) => {
                let names: Vec<&str> = group.iter().map(|r| r.name.as_str()).collect();
                tracing::error!(resources = ?names, "{e}");
                keep_first(&mut code, exit::APPLY);
            }
        }
    }
    Ok(code)
}

async fn process(res: &Resource, snap: &Snapshot, opts: apply::Options) -> anyhow::Result<Outcome> {
    let text = render_resource(res, snap)?;
    Ok(apply::install(res, &text, opts).await?)
}

fn render_resource(res: &Resource, snap: &Snapshot) -> anyhow::Result<String> {
    let rendered = render::render(
        &res.src.display().to_string(),
        &res.template,
        snap.view(&res.prefix, &res.keys),
    )?;
    for msg in &rendered.dropped {
        tracing::error!(resource = %res.name, "{msg}");
    }
    Ok(rendered.text)
}

/// Prints a unified diff per resource that would change; writes nothing, runs nothing.
fn noop(cfg: &Config, snap: &Snapshot) -> u8 {
    let mut code = exit::OK;
    let mut changed = false;
    for res in &cfg.resources {
        let diff = render_resource(res, snap).and_then(|text| Ok(apply::diff(res, &text)?));
        match diff {
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
