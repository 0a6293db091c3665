//! One pass, as confd's `process()` reads: for each unit, render → plan → stage → check → swap
//! → commit (or roll back); then each distinct reload_cmd once. `--onetime` makes one pass, the
//! daemon one per batch, `--noop` stops after the plan. There is no second apply path.
//!
//! A pass is synchronous code: the daemon runs it on a blocking thread ([`run`]) over shared,
//! immutable inputs (an `Arc<Prepared>` and an `Arc<Snapshot>`), so the event loop, signals and
//! `/healthz` never wait for a render, a file write or a DNS lookup.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use tokio::runtime::Handle;
use tokio::sync::watch;

use crate::apply::{self, ApplyError, Plan, Target};
use crate::command;
use crate::config::{Config, Resource};
use crate::render::{KeySpace, RenderError, Template};
use crate::store::Snapshot;

/// What gets applied: a resource (its conf.d name), and within it one part when a resource
/// fans out (none yet). Pending work, retries and reports are keyed by it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UnitId {
    pub resource: Arc<str>,
    pub part: Option<String>,
}

impl std::fmt::Display for UnitId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.part {
            Some(part) => write!(f, "{}[{part}]", self.resource),
            None => f.write_str(&self.resource),
        }
    }
}

/// A configuration with its templates compiled: made once per configuration, shared by passes.
pub struct Prepared {
    pub cfg: Config,
    templates: Vec<Template>,
    by_name: BTreeMap<Arc<str>, usize>,
}

impl Prepared {
    /// Compiles every template; a syntax error names the template and line.
    pub fn new(cfg: Config) -> Result<Prepared, RenderError> {
        let templates = cfg
            .resources
            .iter()
            .map(|r| Template::compile(&r.src.display().to_string(), &r.template))
            .collect::<Result<Vec<_>, _>>()?;
        let by_name = cfg
            .resources
            .iter()
            .enumerate()
            .map(|(i, r)| (Arc::from(r.name.as_str()), i))
            .collect();
        Ok(Prepared {
            cfg,
            templates,
            by_name,
        })
    }

    /// Every unit, in conf.d order.
    pub fn units(&self) -> Vec<UnitId> {
        self.cfg.resources.iter().map(unit).collect()
    }

    /// The units whose output may depend on `key`.
    pub fn reading<'a>(&'a self, key: &'a str) -> impl Iterator<Item = UnitId> + 'a {
        self.cfg
            .resources
            .iter()
            .filter(move |r| r.reads(key))
            .map(unit)
    }

    pub fn contains(&self, u: &UnitId) -> bool {
        self.by_name.contains_key(&u.resource)
    }

    fn get(&self, u: &UnitId) -> Option<(&Resource, &Template)> {
        let i = *self.by_name.get(&u.resource)?;
        Some((&self.cfg.resources[i], &self.templates[i]))
    }
}

/// Where and how a resource's render is installed.
fn target(r: &Resource) -> Target {
    Target {
        dest: r.dest.clone(),
        mode: r.mode,
        uid: r.uid,
        gid: r.gid,
        keep_stage_file: r.keep_stage_file,
    }
}

fn unit(r: &Resource) -> UnitId {
    UnitId {
        resource: Arc::from(r.name.as_str()),
        part: None,
    }
}

/// Why one unit was not applied.
#[derive(Debug, thiserror::Error)]
pub enum ResourceError {
    #[error(transparent)]
    Render(#[from] RenderError),
    #[error(transparent)]
    Apply(#[from] ApplyError),
}

/// What became of one unit in a pass.
#[derive(Debug)]
pub struct Report {
    pub unit: UnitId,
    pub result: Result<Outcome, ResourceError>,
    /// Values the render left out (already logged by key).
    pub dropped: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Unchanged,
    Installed,
}

/// Set when the process should stop: a pass starts no new unit once it is.
pub type Stop = watch::Receiver<bool>;

/// A stop that never comes (`--onetime`).
pub fn never() -> Stop {
    watch::channel(false).1
}

/// Renders one unit and compares it with its dest: what `--noop` prints and what the real run
/// installs.
pub fn plan(p: &Prepared, u: &UnitId, snap: &Snapshot) -> Result<(Plan, usize), ResourceError> {
    let Some((res, template)) = p.get(u) else {
        return Ok((Plan::Unchanged, 0));
    };
    let (kvs, within) = snap.keys_for(&res.prefix, &res.keys);
    let rendered = template.render(KeySpace::within(kvs, within))?;
    for msg in &rendered.dropped {
        tracing::error!(resource = %res.name, "{msg}");
    }
    let plan = apply::plan(&target(res), rendered.text)?;
    Ok((plan, rendered.dropped.len()))
}

/// Undoes swaps an earlier run never committed and removes its stage files (see `apply`).
pub fn recover(p: &Prepared) {
    apply::recover(p.cfg.resources.iter().map(|r| r.dest.as_path()));
}

/// The pass, off the runtime thread.
pub async fn run(
    p: Arc<Prepared>,
    units: Vec<UnitId>,
    snap: Arc<Snapshot>,
    stop: Stop,
) -> Vec<Report> {
    let rt = Handle::current();
    tokio::task::spawn_blocking(move || apply_batch(&p, &units, &snap, &stop, &rt))
        .await
        .unwrap_or_default()
}

/// Applies `units` from `snap`, then runs each distinct reload_cmd once, after every file it
/// covers is in place. A unit whose earlier reload failed is reloaded even when its file is
/// already in place, since nginx may still run the old one. Once `stop` is set no further unit
/// starts; the reloads of those already in place still run. Failures are logged here.
pub fn apply_batch(
    p: &Prepared,
    units: &[UnitId],
    snap: &Snapshot,
    stop: &Stop,
    rt: &Handle,
) -> Vec<Report> {
    let mut reports = Vec::new();
    let mut reloads: Vec<(&str, Vec<usize>)> = Vec::new();
    for u in units {
        if *stop.borrow() {
            break;
        }
        let Some((res, _)) = p.get(u) else { continue };
        let (result, dropped) = match plan(p, u, snap) {
            Ok((plan, dropped)) => (install(&p.cfg, res, plan, rt).map_err(Into::into), dropped),
            Err(e) => (Err(e), 0),
        };
        let reload = match &result {
            Ok(Outcome::Unchanged) => {
                tracing::debug!(dest = %res.dest.display(), "in sync");
                apply::reload_owed(&res.dest)
            }
            Ok(Outcome::Installed) => {
                tracing::info!(dest = %res.dest.display(), revision = snap.revision, "updated");
                true
            }
            Err(e) => {
                tracing::error!(resource = %res.name, "{e}");
                false
            }
        };
        if let Some(cmd) = res
            .reload_cmd
            .as_deref()
            .filter(|_| reload && !p.cfg.sync_only)
        {
            match reloads.iter_mut().find(|(c, _)| *c == cmd) {
                Some((_, group)) => group.push(reports.len()),
                None => reloads.push((cmd, vec![reports.len()])),
            }
        }
        reports.push(Report {
            unit: u.clone(),
            result,
            dropped,
        });
    }
    for (cmd, group) in reloads {
        let result = rt.block_on(command::run(cmd, p.cfg.command_timeout));
        match &result {
            Ok(()) => tracing::info!(cmd, "reloaded"),
            Err(e) => tracing::error!("reload_cmd failed: {e}"),
        }
        for i in group {
            let Some((res, _)) = p.get(&reports[i].unit) else {
                continue;
            };
            owe(&res.dest, result.is_err());
            if let Err(e) = &result {
                reports[i].result = Err(ApplyError::Reload(e.clone()).into());
            }
        }
    }
    reports
}

/// Records on disk whether dest's reload is still owed.
fn owe(dest: &Path, owed: bool) {
    let r = if owed {
        apply::owe_reload(dest)
    } else {
        apply::reload_done(dest)
    };
    if let Err(e) = r {
        tracing::warn!(dest = %dest.display(), "cannot record the reload state beside the file: {e}");
    }
}

/// Installs a planned write. With a check_cmd that names the staged file (`{{src}}`) the stage
/// is checked before the swap; otherwise (nginx -t checks the whole config that includes dest)
/// the new file is swapped in, checked, and rolled back when the check fails.
fn install(cfg: &Config, res: &Resource, plan: Plan, rt: &Handle) -> Result<Outcome, ApplyError> {
    let write = match plan {
        Plan::Unchanged => return Ok(Outcome::Unchanged),
        Plan::Write(w) => w,
    };
    let staged = write.stage()?;
    let check = res.check_cmd.as_deref().filter(|_| !cfg.sync_only);
    let check_stage = check.and_then(|cmd| with_src(cmd, staged.path()));
    let run = |cmd: &str| rt.block_on(command::run(cmd, cfg.command_timeout));
    if let Some(cmd) = &check_stage {
        if let Err(error) = run(cmd) {
            staged.discard();
            return Err(ApplyError::Check {
                dest: res.dest.clone(),
                error,
            });
        }
    }
    let swapped = staged.swap()?;
    if let (Some(cmd), None) = (check, &check_stage) {
        if let Err(error) = run(cmd) {
            swapped.rollback()?;
            return Err(ApplyError::Check {
                dest: res.dest.clone(),
                error,
            });
        }
    }
    swapped.commit();
    Ok(Outcome::Installed)
}

/// confd's check_cmd names the staged file as `{{.src}}`; `{{src}}` is the Jinja spelling.
fn with_src(cmd: &str, stage: &Path) -> Option<String> {
    let path = stage.display().to_string();
    let mut out = cmd.to_owned();
    for form in ["{{.src}}", "{{ .src }}", "{{src}}", "{{ src }}"] {
        out = out.replace(form, &path);
    }
    (out != cmd).then_some(out)
}
