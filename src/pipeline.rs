//! One pass, as confd's `process()` reads: for each unit, render → plan → stage → check → swap
//! → commit (or roll back); then each distinct reload_cmd once. `--onetime` makes one pass, the
//! daemon one per batch, `--noop` stops after the plan. There is no second apply path.
//!
//! A pass is synchronous code: the daemon runs it on a blocking thread ([`run`]) over shared,
//! immutable inputs (an `Arc<Prepared>` and an `Arc<Snapshot>`), so the event loop, signals and
//! `/healthz` never wait for a render, a file write or a DNS lookup.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::runtime::Handle;
use tokio::sync::watch;

use crate::apply::{self, ApplyError, Plan, Sameness, Swapped, Target, Undo, Write};
use crate::command::{self, CommandError};
use crate::config::{Config, Resource, ShrinkGuard};
use crate::dynamic;
use crate::keypath;
use crate::render::{KeySpace, Pattern, RenderError, Template};
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

/// A configuration with its templates checked: made once per configuration, shared by passes.
pub struct Prepared {
    /// Its `resources` are those that can run.
    pub cfg: Config,
    templates: Vec<Template>,
    /// A fan-out resource's directory pattern, and how many path segments a directory has.
    each: Vec<Option<(Pattern, usize)>>,
    by_name: BTreeMap<Arc<str>, usize>,
    /// Resources that cannot run (a bad conf.d file or template): the others run without them.
    pub unusable: Vec<Unusable>,
    /// What each unit's last render left out, so a value is logged when it appears or changes,
    /// not on every render (a flood of large bad values would otherwise fill the log).
    dropped: std::sync::Mutex<BTreeMap<UnitId, BTreeSet<String>>>,
    /// The shrink guard's memory: servers per service as last applied, and holds in progress.
    guard: std::sync::Mutex<BTreeMap<UnitId, GuardState>>,
    /// Dests whose leftovers of earlier runs were looked for (see [`recover`]). Hashed: every
    /// unit of every pass looks its dest up here, and ordered paths compare component-wise.
    recovered: std::sync::Mutex<std::collections::HashSet<PathBuf>>,
    /// Renders (by hash) whose reload the server did not take, and why: not installed again
    /// until the render changes.
    refused: std::sync::Mutex<BTreeMap<UnitId, (u64, crate::procs::Unconfirmed)>>,
}

#[derive(Debug, Default, Clone)]
struct GuardState {
    /// Servers per `hostports` glob in the file as last applied.
    applied: BTreeMap<String, usize>,
    /// What the render now being applied has; becomes `applied` when it is in place.
    pending: Option<BTreeMap<String, usize>>,
    /// When the shrink now held was first seen.
    held_since: Option<std::time::Instant>,
}

/// A render the shrink guard holds back.
#[derive(Debug, Clone, thiserror::Error)]
#[error(
    "held by the shrink guard ({detail}): applied after {hold_secs} s if the view still says so"
)]
pub struct Held {
    pub detail: String,
    pub hold_secs: u64,
    /// When the hold ends.
    pub until: std::time::Instant,
    /// The hold started with this render.
    pub new: bool,
}

/// A resource left out of the configuration, and why.
#[derive(Debug, Clone)]
pub struct Unusable {
    pub name: String,
    pub reason: String,
    /// Its template failed to compile (else its conf.d file or template file is at fault).
    pub template: bool,
}

/// One resource's template, checked, and its fan-out pattern (with its depth) if it has one.
fn compile(r: &Resource) -> Result<(Template, Option<(Pattern, usize)>), String> {
    let pattern = r.each.as_deref().map(|e| {
        Pattern::new(e)
            .map(|p| Some((p, e.matches('/').count())))
            .map_err(|bad| format!("{}: template.each: {bad}", r.name))
    });
    tracing::debug!(resource = %r.name, syntax = ?r.syntax, from = r.syntax_from, "template language");
    Template::compile_as(&r.src.display().to_string(), &r.template, r.syntax)
        .map(|t| t.checking(r.value_check))
        .map_err(|e| e.to_string())
        .and_then(|t| Ok((t, pattern.transpose()?.flatten())))
}

impl Prepared {
    /// Checks every template (compiles it once). A resource whose conf.d file could not be
    /// loaded or whose template does not compile is set apart (the error names the file and
    /// line).
    pub fn new(mut cfg: Config) -> Prepared {
        let mut unusable: Vec<Unusable> = cfg
            .broken
            .iter()
            .map(|b| Unusable {
                name: b.name.clone(),
                reason: b.reason.clone(),
                template: false,
            })
            .collect();
        let mut templates = Vec::new();
        let mut each = Vec::new();
        // Templates compile independently: over the cores, kept in the resources' order.
        let compiled = crate::over_cores(&cfg.resources, compile);
        let mut kept = Vec::new();
        for (r, compiled) in std::mem::take(&mut cfg.resources).into_iter().zip(compiled) {
            match compiled {
                Ok((t, pattern)) => {
                    templates.push(t);
                    each.push(pattern);
                    kept.push(r);
                }
                Err(reason) => unusable.push(Unusable {
                    name: r.name,
                    reason,
                    template: true,
                }),
            }
        }
        cfg.resources = kept;
        let by_name = cfg
            .resources
            .iter()
            .enumerate()
            .map(|(i, r)| (Arc::from(r.name.as_str()), i))
            .collect();
        Prepared {
            cfg,
            templates,
            each,
            by_name,
            unusable,
            dropped: std::sync::Mutex::default(),
            guard: std::sync::Mutex::default(),
            recovered: std::sync::Mutex::default(),
            refused: std::sync::Mutex::default(),
        }
    }

    /// Keeps what `old` learned of the units both share (values already logged, servers as
    /// last applied, holds in progress) across a reconfiguration.
    pub fn carry_over(&self, old: &Prepared) {
        self.keep_units(&self.dropped, &old.dropped);
        self.keep_units(&self.guard, &old.guard);
        self.keep_units(&self.refused, &old.refused);
        if let (Ok(mut mine), Ok(theirs)) = (self.recovered.lock(), old.recovered.lock()) {
            mine.extend(theirs.iter().cloned());
        }
    }

    /// `theirs`' entries for units this configuration still has, into `mine`.
    fn keep_units<T: Clone>(
        &self,
        mine: &std::sync::Mutex<BTreeMap<UnitId, T>>,
        theirs: &std::sync::Mutex<BTreeMap<UnitId, T>>,
    ) {
        if let (Ok(mut mine), Ok(theirs)) = (mine.lock(), theirs.lock()) {
            mine.extend(
                theirs
                    .iter()
                    .filter(|(u, _)| self.contains(u))
                    .map(|(u, v)| (u.clone(), v.clone())),
            );
        }
    }

    /// The shrink guard: Err while a render drops too many of a service's servers and its
    /// hold has not ended.
    fn guard(
        &self,
        u: &UnitId,
        policy: &ShrinkGuard,
        servers: &BTreeMap<String, usize>,
    ) -> Result<(), Held> {
        let now = std::time::Instant::now();
        let mut all = self.guard.lock().unwrap_or_else(|p| p.into_inner());
        let state = all.entry(u.clone()).or_default();
        let shrinks = shrinking(policy, &state.applied, servers);
        if shrinks.is_empty() {
            if state.held_since.take().is_some() {
                tracing::info!(resource = %u, "the shrink it held recovered: nothing to apply for it");
            }
            state.pending = Some(servers.clone());
            return Ok(());
        }
        let detail = shrinks.join("; ");
        let new = state.held_since.is_none();
        let since = *state.held_since.get_or_insert(now);
        if now >= since + policy.hold {
            tracing::warn!(resource = %u, hold_secs = policy.hold.as_secs(), "the view still says so after the hold: applying the shrink ({detail})");
            state.held_since = None;
            state.pending = Some(servers.clone());
            return Ok(());
        }
        let held = Held {
            detail,
            hold_secs: policy.hold.as_secs(),
            until: since + policy.hold,
            new,
        };
        if new {
            tracing::warn!(resource = %u, "{held}");
        }
        Err(held)
    }

    /// A unit's render is in place: its servers are the guard's new baseline.
    fn guard_applied(&self, u: &UnitId) {
        let mut all = self.guard.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(state) = all.get_mut(u) {
            if let Some(servers) = state.pending.take() {
                state.applied = servers;
            }
        }
    }

    /// Logs every resource that cannot run, by name and cause.
    pub fn log_unusable(&self) {
        for u in &self.unusable {
            tracing::error!(resource = %u.name, "{}; the other resources run without it", u.reason);
        }
    }

    /// Every unit, in conf.d order: a resource, or each directory of a fan-out resource that
    /// has keys in `snap`.
    pub fn units(&self, snap: &Snapshot) -> Vec<UnitId> {
        let mut units = Vec::new();
        for (r, each) in self.cfg.resources.iter().zip(&self.each) {
            match each {
                None => units.push(unit(r, None)),
                Some((pattern, segments)) => {
                    let (kvs, within) = snap.keys_for(&r.prefix, &r.keys);
                    let mut dirs: BTreeSet<String> = kvs
                        .keys()
                        .filter(|k| within.iter().any(|w| k.starts_with(w.as_str())))
                        .filter_map(|k| dir_of(k, pattern, *segments))
                        .collect();
                    // Directories it wrote before and that are gone now: their files go.
                    dirs.extend(apply::Owned::of(&r.dest).read());
                    units.extend(dirs.into_iter().map(|d| unit(r, Some(d))));
                }
            }
        }
        units
    }

    /// The units whose output may depend on `key` (for a fan-out resource, only the directory
    /// the key is in).
    pub fn reading<'a>(&'a self, key: &'a str) -> impl Iterator<Item = UnitId> + 'a {
        self.cfg
            .resources
            .iter()
            .zip(&self.each)
            .filter(move |(r, _)| r.reads(key))
            .filter_map(move |(r, each)| match each {
                None => Some(unit(r, None)),
                Some((pattern, segments)) => {
                    let rel = keypath::relative(key, &r.prefix);
                    dir_of(&rel, pattern, *segments).map(|d| unit(r, Some(d)))
                }
            })
    }

    /// Of what a render of `u` left out, what its previous render did not (all of it the first
    /// time).
    fn newly_dropped(&self, u: &UnitId, dropped: &[String]) -> Vec<String> {
        let now: BTreeSet<String> = dropped.iter().cloned().collect();
        let Ok(mut seen) = self.dropped.lock() else {
            return dropped.to_vec();
        };
        let before = if now.is_empty() {
            seen.remove(u)
        } else {
            seen.insert(u.clone(), now.clone())
        };
        now.difference(&before.unwrap_or_default())
            .cloned()
            .collect()
    }

    pub fn contains(&self, u: &UnitId) -> bool {
        self.by_name.contains_key(&u.resource)
    }

    fn get(&self, u: &UnitId) -> Option<(&Resource, &Template)> {
        let i = *self.by_name.get(&u.resource)?;
        Some((&self.cfg.resources[i], &self.templates[i]))
    }
}

/// The services a render would shrink too far, as "glob: before -> after servers". Dropping a
/// single server (the agent's normal deregistration) never counts.
fn shrinking(
    policy: &ShrinkGuard,
    before: &BTreeMap<String, usize>,
    now: &BTreeMap<String, usize>,
) -> Vec<String> {
    before
        .iter()
        .filter_map(|(glob, &b)| {
            let a = now.get(glob).copied().unwrap_or(0);
            let removed = b.saturating_sub(a);
            let too_many = removed as f64 > policy.max_shrink * b as f64;
            (removed > 1 && (too_many || a < policy.min_servers))
                .then(|| format!("{glob}: {b} -> {a} servers"))
        })
        .collect()
}

/// The directory of `key` that a fan-out pattern of `segments` path segments names, when the key
/// lies below it, the directory matches, and its base name is a safe file name.
fn dir_of(key: &str, pattern: &Pattern, segments: usize) -> Option<String> {
    let rest = key.strip_prefix('/')?;
    let mut parts = rest.splitn(segments + 1, '/');
    let dir: Vec<&str> = parts.by_ref().take(segments).collect();
    parts.next()?; // the key is below the directory, not the directory itself
    let dir = format!("/{}", dir.join("/"));
    let safe = |b: &str| {
        !b.starts_with('.')
            && b.chars()
                .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
    };
    (pattern.matches(&dir) && safe(&keypath::base(&dir))).then_some(dir)
}

/// Where and how a unit's render is installed.
fn target(r: &Resource, dir: Option<&str>) -> Target {
    Target {
        dest: match dir {
            Some(dir) => r.dest_of(&keypath::base(dir)),
            None => r.dest.clone(),
        },
        mode: r.mode,
        uid: r.uid,
        gid: r.gid,
        keep_stage_file: r.keep_stage_file,
        same: if r.dynamic.is_some() {
            Sameness::BalancerVersionsAside
        } else {
            Sameness::Bytes
        },
    }
}

fn unit(r: &Resource, part: Option<String>) -> UnitId {
    UnitId {
        resource: Arc::from(r.name.as_str()),
        part,
    }
}

/// Why one unit was not applied.
#[derive(Debug, thiserror::Error)]
pub enum ResourceError {
    #[error(transparent)]
    Render(#[from] RenderError),
    #[error(transparent)]
    Apply(#[from] ApplyError),
    #[error(transparent)]
    Held(#[from] Held),
}

/// What became of one unit in a pass.
#[derive(Debug)]
pub struct Report {
    pub unit: UnitId,
    pub result: Result<Outcome, ResourceError>,
    /// What its render read and left out.
    pub rendering: Rendering,
    /// Its dest file.
    pub dest: Option<PathBuf>,
    /// Whether a reload ran for it in this pass.
    pub reloaded: bool,
    /// For a dynamic resource's written file: its balanced upstreams.
    pub upstreams: Vec<Upstream>,
}

impl Report {
    fn new(
        unit: &UnitId,
        result: Result<Outcome, ResourceError>,
        rendering: Rendering,
        dest: PathBuf,
    ) -> Report {
        Report {
            unit: unit.clone(),
            result,
            rendering,
            dest: Some(dest),
            reloaded: false,
            upstreams: Vec::new(),
        }
    }
}

/// A balanced upstream as a pass left it: its version (the file's), and whether the change
/// reached nginx through the balancer (else by a reload).
#[derive(Debug, Clone)]
pub struct Upstream {
    pub name: String,
    pub version: i64,
    pub dynamic: bool,
}

/// What a render read and left out (each left-out value is already logged by key).
#[derive(Debug, Default, Clone, Copy)]
pub struct Rendering {
    pub dropped: usize,
    pub keys_read: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Unchanged,
    /// In place; its reload_cmd runs.
    Installed,
    /// In place, and its new server lists are in nginx's balancer: no reload.
    Delivered,
}

/// Set when the process should stop: a pass starts no new unit once it is.
pub type Stop = watch::Receiver<bool>;

/// A stop that never comes (`--onetime`).
pub fn never() -> Stop {
    watch::channel(false).1
}

/// Renders one unit and compares it with its dest: what `--noop` prints and what the real run
/// installs.
pub fn plan(p: &Prepared, u: &UnitId, snap: &Snapshot) -> Result<(Plan, Rendering), ResourceError> {
    let Some((res, template)) = p.get(u) else {
        return Ok((Plan::Unchanged, Rendering::default()));
    };
    let (kvs, within) = snap.keys_for(&res.prefix, &res.keys);
    let keys = |kvs, within| match res.dynamic {
        Some(_) => KeySpace::within(kvs, within).balanced_at(snap.revision),
        None => KeySpace::within(kvs, within),
    };
    let rendered = match &u.part {
        None => template.render(keys(kvs, within), &[])?,
        Some(dir) => {
            let under = format!("{dir}/");
            let visible = |k: &String| within.iter().any(|w| k.starts_with(w.as_str()));
            let has_keys = kvs
                .range::<str, _>((Bound::Included(under.as_str()), Bound::Unbounded))
                .take_while(|(k, _)| k.starts_with(under.as_str()))
                .any(|(k, _)| visible(k));
            if !has_keys {
                if let Some(policy) = &res.shrink {
                    p.guard(u, policy, &BTreeMap::new())?;
                }
                // Its last key is gone: so is its file.
                let plan = apply::plan_removal(&target(res, Some(dir)))?;
                return Ok((plan, Rendering::default()));
            }
            let base = keypath::base(dir);
            let vars = [("dir", base.as_str()), ("path", dir.as_str())];
            template.render(keys(kvs, vec![under]), &vars)?
        }
    };
    for msg in p.newly_dropped(u, &rendered.dropped) {
        match &u.part {
            None => tracing::error!(resource = %res.name, "{msg}"),
            Some(dir) => tracing::error!(resource = %res.name, dir = %dir, "{msg}"),
        }
    }
    if let Some(policy) = &res.shrink {
        p.guard(u, policy, &rendered.servers)?;
    }
    let plan = apply::plan(&target(res, u.part.as_deref()), rendered.text)?;
    let rendering = Rendering {
        dropped: rendered.dropped.len(),
        keys_read: rendered.keys_read,
    };
    Ok((plan, rendering))
}

/// Undoes swaps an earlier run never committed and removes its stage files (see `apply`), for
/// every unit of `snap`.
pub fn recover(p: &Prepared, snap: &Snapshot) {
    let dests: Vec<PathBuf> = p
        .units(snap)
        .iter()
        .filter_map(|u| {
            let (res, _) = p.get(u)?;
            Some(target(res, u.part.as_deref()).dest)
        })
        .collect();
    apply::recover(dests.iter().map(PathBuf::as_path));
    if let Ok(mut seen) = p.recovered.lock() {
        seen.extend(dests);
    }
}

/// Recovers a dest the start-up recovery did not know of (a service that appeared since),
/// before it is first planned: its debris from earlier runs goes before anything is staged.
fn recover_new(p: &Prepared, dest: &Path) {
    // Every unit of every pass comes here: allocate only for a dest not seen before.
    let new = p
        .recovered
        .lock()
        .map(|mut seen| !seen.contains(dest) && seen.insert(dest.to_owned()))
        .unwrap_or(false);
    if new {
        apply::recover([dest]);
    }
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
/// covers is in place. Files whose check_cmd checks the whole config (nginx -t, which does not
/// name `{{src}}`) are swapped in together and checked once per command; when that fails, the
/// files it refuses are found by bisection and put back, and the rest stay. A unit whose earlier
/// reload failed is reloaded even when its file is already in place, since nginx may still run
/// the old one. Once `stop` is set no further unit starts; the reloads of those already in place
/// still run. Failures are logged here.
pub fn apply_batch(
    p: &Prepared,
    units: &[UnitId],
    snap: &Snapshot,
    stop: &Stop,
    rt: &Handle,
) -> Vec<Report> {
    if p.cfg.noop {
        return shadow(p, units, snap, stop);
    }
    let run = |cmd: &str| rt.block_on(command::run(cmd, p.cfg.command_timeout));
    let mut reports = Vec::new();
    let mut together: Vec<(Option<&str>, Planned)> = Vec::new();
    let mut diffs: BTreeMap<usize, String> = BTreeMap::new();
    let mut undos: BTreeMap<usize, (Undo, u64)> = BTreeMap::new();
    let mut deliveries: BTreeMap<usize, Delivery> = BTreeMap::new();
    let mut balanced: BTreeMap<usize, Vec<(String, i64)>> = BTreeMap::new();
    // Rendering and comparing are each unit's own (no two units share a dest): over the cores,
    // before anything is installed in the units' order.
    let plans = crate::over_cores(units, |u| {
        let (res, _) = p.get(u).filter(|_| !*stop.borrow())?;
        let dest = target(res, u.part.as_deref()).dest;
        recover_new(p, &dest);
        Some((res, dest, plan(p, u, snap)))
    });
    for (u, planned) in units.iter().zip(plans) {
        if *stop.borrow() {
            break;
        }
        let Some((res, dest, planned)) = planned else {
            continue;
        };
        let (result, rendering) = match planned {
            Ok((Plan::Write(w), rendering)) => {
                let hash = res.reload_pidfile.as_ref().map(|_| text_hash(w.text()));
                if let Some(why) = hash.and_then(|h| p.still_refused(u, h)) {
                    // The server refused this very render: installing it again would only
                    // leave a config it cannot load on disk for another confirmation wait.
                    let result = Err(ApplyError::Unconfirmed(why).into());
                    reports.push(Report::new(u, result, rendering, dest));
                    continue;
                }
                diffs.insert(reports.len(), capped(w.diff()));
                if let Some(h) = hash {
                    undos.insert(reports.len(), (w.undo(), h));
                }
                // A dynamic file is read once: for its route and for what the report says.
                let layout = res
                    .dynamic
                    .as_ref()
                    .and_then(|_| w.text())
                    .map(dynamic::Layout::parse);
                let delivery = res
                    .dynamic
                    .as_deref()
                    .zip(layout.as_ref())
                    .and_then(|(socket, layout)| membership(socket, &w, layout, &dest));
                if let Some(layout) = layout {
                    let sets = layout.sets.into_iter().map(|s| (s.name, s.version));
                    balanced.insert(reports.len(), sets.collect());
                }
                let check = match delivery {
                    // Only addresses moved, each parsed as one: nothing for a check to find.
                    Some(d) => {
                        deliveries.insert(reports.len(), d);
                        Check::Together(None)
                    }
                    None => check_of(&p.cfg, res),
                };
                match check {
                    Check::OfStage => {
                        (install(&p.cfg, res, w, &run).map_err(Into::into), rendering)
                    }
                    Check::Together(cmd) => {
                        let trial = (reports.len(), w);
                        match together.iter_mut().find(|(c, _)| *c == cmd) {
                            Some((_, group)) => group.push(trial),
                            None => together.push((cmd, vec![trial])),
                        }
                        // Settled below, with the others this check (or none) covers.
                        (Ok(Outcome::Installed), rendering)
                    }
                }
            }
            Ok((Plan::Unchanged, rendering)) => (Ok(Outcome::Unchanged), rendering),
            Err(e) => (Err(e), Rendering::default()),
        };
        reports.push(Report::new(u, result, rendering, dest));
    }
    for (cmd, writes) in together {
        settle(p, cmd, writes, &mut reports, &run);
    }
    deliver(&mut reports, deliveries, rt);
    for (i, sets) in balanced {
        let dynamic = match reports[i].result {
            Ok(Outcome::Delivered) => true,
            Ok(Outcome::Installed) => false,
            _ => continue,
        };
        reports[i].upstreams = sets
            .into_iter()
            .map(|(name, version)| Upstream {
                name,
                version,
                dynamic,
            })
            .collect();
    }
    for r in &reports {
        if matches!(
            r.result,
            Ok(_) | Err(ResourceError::Apply(ApplyError::Reload(_)))
        ) {
            p.guard_applied(&r.unit);
        }
    }
    record_owned(p, &reports);
    reload(p, snap, &mut reports, &diffs, undos, &run);
    reports
}

/// A dynamic unit's change that only moved servers: the sets to send instead of reloading.
struct Delivery {
    socket: PathBuf,
    sets: Vec<dynamic::Set>,
}

/// The delivery a write needs instead of a reload, if it only changes server lists of upstreams
/// nginx already has (so not when dest's reload is still owed: nginx may not have the old file).
fn membership(socket: &Path, w: &Write, new: &dynamic::Layout, dest: &Path) -> Option<Delivery> {
    let old = w.previous_text()?;
    if apply::reload_owed(dest) {
        return None;
    }
    match dynamic::route(old, new) {
        dynamic::Route::Dynamic(sets) => Some(Delivery {
            socket: socket.to_owned(),
            sets,
        }),
        dynamic::Route::Reload(why) => {
            tracing::info!(dest = %dest.display(), "reload path: {why}");
            None
        }
    }
}

/// Sends each delivery whose file is in place; one that fails leaves its unit `Installed`, so
/// the reload path runs for it with the file already there.
fn deliver(reports: &mut [Report], deliveries: BTreeMap<usize, Delivery>, rt: &Handle) {
    for (i, d) in deliveries {
        if !matches!(reports[i].result, Ok(Outcome::Installed)) {
            continue;
        }
        match rt.block_on(dynamic::deliver(&d.socket, &d.sets)) {
            Ok(()) => reports[i].result = Ok(Outcome::Delivered),
            Err(e) => {
                tracing::warn!(resource = %reports[i].unit, "{e}: taking the reload path, the file is in place");
            }
        }
    }
}

/// What a resync did at one balancer endpoint: the sets of the files (name, version), and how
/// many it sent, or why it could not.
#[derive(Debug)]
pub struct Resynced {
    pub socket: PathBuf,
    pub sets: Vec<(String, i64)>,
    pub result: Result<usize, dynamic::EndpointError>,
}

/// Compares the sets each balancer holds with the installed files of every dynamic unit, and
/// sends what differs (see `dynamic::resync`): at start, after every pass that reloaded, when
/// the nginx master changes, and periodically.
pub async fn resync(p: Arc<Prepared>, snap: Arc<Snapshot>) -> Vec<Resynced> {
    let files = tokio::task::spawn_blocking(move || balanced_files(&p, &snap))
        .await
        .unwrap_or_default();
    let mut out = Vec::new();
    for (socket, sets) in files {
        let result = dynamic::resync(&socket, &sets).await;
        match &result {
            Ok(0) => tracing::debug!(socket = %socket.display(), "balancer in sync"),
            Ok(sent) => tracing::info!(socket = %socket.display(), sent, "balancer resynced"),
            Err(e) => tracing::warn!("resync: {e}; nginx serves the files' lists"),
        }
        let sets = sets.into_iter().map(|s| (s.name, s.version)).collect();
        out.push(Resynced {
            socket,
            sets,
            result,
        });
    }
    out
}

/// Every dynamic unit's installed sets, by balancer socket.
fn balanced_files(p: &Prepared, snap: &Snapshot) -> BTreeMap<PathBuf, Vec<dynamic::Set>> {
    let mut by_socket: BTreeMap<PathBuf, Vec<dynamic::Set>> = BTreeMap::new();
    for u in p.units(snap) {
        let Some((res, _)) = p.get(&u) else { continue };
        let Some(socket) = &res.dynamic else { continue };
        let sets = by_socket.entry(socket.clone()).or_default();
        if let Ok(text) = std::fs::read_to_string(target(res, u.part.as_deref()).dest) {
            sets.extend(dynamic::Layout::parse(&text).sets);
        }
    }
    by_socket
}

/// The daemon's `--noop` (shadow mode): each unit's plan, its diff logged; nothing is written,
/// checked or reloaded.
fn shadow(p: &Prepared, units: &[UnitId], snap: &Snapshot, stop: &Stop) -> Vec<Report> {
    let mut reports = Vec::new();
    for u in units {
        if *stop.borrow() {
            break;
        }
        let Some((res, _)) = p.get(u) else { continue };
        let dest = target(res, u.part.as_deref()).dest;
        let (result, rendering) = match plan(p, u, snap) {
            Ok((Plan::Write(w), rendering)) => {
                let diff = capped(w.diff());
                tracing::info!(dest = %dest.display(), revision = snap.revision, diff = ?diff, "would update (--noop)");
                (Ok(Outcome::Unchanged), rendering)
            }
            Ok((Plan::Unchanged, rendering)) => (Ok(Outcome::Unchanged), rendering),
            Err(e) => {
                tracing::error!(resource = %u, "{e}");
                (Err(e), Rendering::default())
            }
        };
        reports.push(Report::new(u, result, rendering, dest));
    }
    reports
}

/// How much of a diff an "updated" log line carries.
const LOGGED_DIFF: usize = 4096;

/// A diff cut to LOGGED_DIFF bytes, with the size of the rest.
fn capped(diff: String) -> String {
    if diff.len() <= LOGGED_DIFF {
        return diff;
    }
    let mut cut = LOGGED_DIFF;
    while !diff.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}… ({} bytes more)", &diff[..cut], diff.len() - cut)
}

/// Writes `writes` together under `cmd` (see [`check_together`]) into their reports. A removal
/// the check refuses (the config still names that service) is kept instead, rendered from no
/// keys: the template's placeholder.
fn settle(
    p: &Prepared,
    cmd: Option<&str>,
    writes: Planned,
    reports: &mut [Report],
    run: &impl Fn(&str) -> Result<(), CommandError>,
) {
    let removals: BTreeSet<usize> = writes
        .iter()
        .filter(|(_, w)| w.is_removal())
        .map(|(i, _)| *i)
        .collect();
    let mut kept = Vec::new();
    for (i, result) in check_together(cmd, writes, run) {
        let refused = matches!(result, Err(ApplyError::Check { .. }));
        if refused && removals.contains(&i) {
            match placeholder(p, &reports[i].unit) {
                Ok(Some(w)) => {
                    tracing::warn!(resource = %reports[i].unit, "the check refuses removing this file (the config still names it): keeping it with no servers");
                    kept.push((i, w));
                    continue;
                }
                Ok(None) => {}
                Err(e) => {
                    reports[i].result = Err(e);
                    continue;
                }
            }
        }
        reports[i].result = result.map_err(Into::into);
    }
    for (i, result) in check_together(cmd, kept, run) {
        reports[i].result = result.map_err(Into::into);
    }
}

/// Updates each fan-out resource's list of the files it owns after a pass: a directory whose
/// file is in place is owned, one whose file is gone is not.
fn record_owned(p: &Prepared, reports: &[Report]) {
    let mut touched: BTreeMap<&str, Vec<(&str, bool)>> = BTreeMap::new();
    for report in reports {
        let (Some((res, _)), Some(dir)) = (p.get(&report.unit), report.unit.part.as_deref()) else {
            continue;
        };
        let present = target(res, Some(dir)).dest.exists();
        touched.entry(&res.name).or_default().push((dir, present));
    }
    for (name, dirs) in touched {
        let Some(res) = p.cfg.resources.iter().find(|r| r.name == name) else {
            continue;
        };
        let owned = apply::Owned::of(&res.dest);
        let before = owned.read();
        let mut after = before.clone();
        for (dir, present) in dirs {
            if present {
                after.insert(dir.to_owned());
            } else {
                after.remove(dir);
            }
        }
        if after != before {
            if let Err(e) = owned.write(&after) {
                tracing::warn!(resource = %name, "cannot record which files it owns: {e}");
            }
        }
    }
}

/// A fan-out unit's file rendered from no keys at all (the template's placeholder), for a
/// directory whose file the check will not let go.
fn placeholder(p: &Prepared, u: &UnitId) -> Result<Option<Write>, ResourceError> {
    let (Some((res, template)), Some(dir)) = (p.get(u), u.part.as_deref()) else {
        return Ok(None);
    };
    let base = keypath::base(dir);
    let vars = [("dir", base.as_str()), ("path", dir)];
    let nothing = KeySpace::within(Arc::new(BTreeMap::new()), Vec::new());
    let rendered = template.render(nothing, &vars)?;
    Ok(match apply::plan(&target(res, Some(dir)), rendered.text)? {
        Plan::Write(w) => Some(w),
        Plan::Unchanged => None,
    })
}

/// Logs every outcome and runs each distinct reload_cmd once for the files now in place.
fn reload(
    p: &Prepared,
    snap: &Snapshot,
    reports: &mut [Report],
    diffs: &BTreeMap<usize, String>,
    mut undos: BTreeMap<usize, (Undo, u64)>,
    run: &impl Fn(&str) -> Result<(), CommandError>,
) {
    let mut reloads: Vec<(&str, Vec<usize>)> = Vec::new();
    // An unchanged file may still owe a reload from an earlier pass: one stat per file, over
    // the cores (a per-app confdir has 1,000 of them in every pass).
    let owed = crate::over_cores(reports, |r| {
        matches!(r.result, Ok(Outcome::Unchanged))
            && r.dest.as_deref().is_some_and(apply::reload_owed)
    });
    for (i, report) in reports.iter().enumerate() {
        let Some((res, _)) = p.get(&report.unit) else {
            continue;
        };
        let dest = target(res, report.unit.part.as_deref()).dest;
        let reload = match &report.result {
            Ok(Outcome::Unchanged) => {
                tracing::debug!(dest = %dest.display(), "in sync");
                owed[i]
            }
            Ok(outcome @ (Outcome::Installed | Outcome::Delivered)) => {
                // The diff is one escaped field: a value in it cannot start a log line of its own.
                let diff = diffs.get(&i).map_or("", String::as_str);
                let path = if *outcome == Outcome::Delivered {
                    "dynamic"
                } else {
                    "reload"
                };
                tracing::info!(dest = %dest.display(), revision = snap.revision, path, diff = ?diff, "updated");
                *outcome == Outcome::Installed
            }
            // Logged when the hold started.
            Err(ResourceError::Held(_)) => false,
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
                Some((_, group)) => group.push(i),
                None => reloads.push((cmd, vec![i])),
            }
        }
    }
    for (cmd, group) in reloads {
        let pidfile = group.iter().find_map(|i| {
            let (res, _) = p.get(&reports[*i].unit)?;
            res.reload_pidfile.clone()
        });
        let hashes: BTreeMap<usize, u64> = group
            .iter()
            .filter_map(|i| undos.get(i).map(|(_, h)| (*i, *h)))
            .collect();
        let result = reload_confirmed(cmd, pidfile.as_deref(), &group, &mut undos, run);
        match &result {
            Ok(()) => tracing::info!(cmd, confirmed = pidfile.is_some(), "reloaded"),
            Err(e) => tracing::error!("{e}"),
        }
        for i in group {
            reports[i].reloaded = true;
            let unit = &reports[i].unit;
            let Some((res, _)) = p.get(unit) else {
                continue;
            };
            owe(&target(res, unit.part.as_deref()).dest, result.is_err());
            p.remember_refusal(unit, hashes.get(&i).copied(), &result);
            if let Err(e) = &result {
                reports[i].result = Err(ApplyError::from(e.clone()).into());
            }
        }
    }
}

/// Runs a reload_cmd; with a pid file, waits for the server's master to start new workers,
/// and when it does not, puts the group's previous files back and reloads again.
fn reload_confirmed(
    cmd: &str,
    pidfile: Option<&Path>,
    group: &[usize],
    undos: &mut BTreeMap<usize, (Undo, u64)>,
    run: &impl Fn(&str) -> Result<(), CommandError>,
) -> Result<(), ReloadFailure> {
    let before = pidfile.map(crate::procs::before);
    run(cmd).map_err(ReloadFailure::Command)?;
    let Some(why) = before.and_then(|b| b.confirm(crate::procs::CONFIRM_TIMEOUT).err()) else {
        return Ok(());
    };
    for i in group {
        if let Some((undo, _)) = undos.remove(i) {
            let dest = undo.dest().display().to_string();
            if let Err(e) = undo.apply() {
                tracing::error!(dest, "{e}");
            }
        }
    }
    if let Err(e) = run(cmd) {
        tracing::error!("reload_cmd after putting the previous files back: {e}");
    }
    Err(ReloadFailure::Unconfirmed(why))
}

/// A render's identity, to know it again.
fn text_hash(text: Option<&str>) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    text.hash(&mut h);
    h.finish()
}

impl Prepared {
    /// Why the server refused this unit's render `hash`, if it did.
    fn still_refused(&self, u: &UnitId, hash: u64) -> Option<crate::procs::Unconfirmed> {
        let refused = self.refused.lock().ok()?;
        refused
            .get(u)
            .filter(|(h, _)| *h == hash)
            .map(|(_, why)| why.clone())
    }

    /// Remembers a render the server refused; forgets the refusal once a reload is confirmed.
    fn remember_refusal(&self, u: &UnitId, hash: Option<u64>, result: &Result<(), ReloadFailure>) {
        let Ok(mut refused) = self.refused.lock() else {
            return;
        };
        match (result, hash) {
            (Err(ReloadFailure::Unconfirmed(why)), Some(h)) => {
                refused.insert(u.clone(), (h, why.clone()));
            }
            (Ok(()), _) => {
                refused.remove(u);
            }
            _ => {}
        }
    }
}

/// Why a reload failed, for every unit of its group.
#[derive(Debug, Clone, thiserror::Error)]
enum ReloadFailure {
    #[error("reload_cmd failed: {0}")]
    Command(CommandError),
    #[error("reload not confirmed: {0}; the previous files are back")]
    Unconfirmed(crate::procs::Unconfirmed),
}

impl From<ReloadFailure> for ApplyError {
    fn from(f: ReloadFailure) -> ApplyError {
        match f {
            ReloadFailure::Command(e) => ApplyError::Reload(e),
            ReloadFailure::Unconfirmed(e) => ApplyError::Unconfirmed(e),
        }
    }
}

/// How a resource's writes are checked.
enum Check<'a> {
    /// Each staged file on its own, before its swap (the command names `{{src}}`).
    OfStage,
    /// With the others under the same command (`nginx -t` checks the whole configuration), or
    /// not at all (None): either way they are written, and synced, together.
    Together(Option<&'a str>),
}

fn check_of<'a>(cfg: &Config, res: &'a Resource) -> Check<'a> {
    match res.check_cmd.as_deref().filter(|_| !cfg.sync_only) {
        Some(cmd) if names_stage(cmd) => Check::OfStage,
        cmd => Check::Together(cmd),
    }
}

/// Writes waiting to be applied together, each with the index of its report.
type Planned = Vec<(usize, Write)>;

/// A file in place on trial: its report, its plan (to stage it again) and the swap.
struct Trial {
    report: usize,
    write: Write,
    swapped: Swapped,
}

type Settled = Vec<(usize, Result<Outcome, ApplyError>)>;

/// Swaps `writes` in together and runs `cmd` once (if any); if it fails, bisects (see
/// [`bisect`]).
fn check_together(
    cmd: Option<&str>,
    writes: Vec<(usize, Write)>,
    run: &impl Fn(&str) -> Result<(), CommandError>,
) -> Settled {
    let mut settled = Vec::new();
    let trials = swap_in(writes, &mut settled);
    if trials.is_empty() {
        return settled;
    }
    let Some(cmd) = cmd else {
        accept(trials, &mut settled);
        return settled;
    };
    match run(cmd) {
        Ok(()) => accept(trials, &mut settled),
        Err(failure) => {
            if trials.len() > 1 {
                tracing::warn!(
                    files = trials.len(),
                    "check_cmd refused the batch: finding the files it refuses"
                );
            }
            bisect(trials, failure, cmd, run, &mut settled);
        }
    }
    settled
}

/// `trials` are in place, with every file accepted so far, and `cmd` failed with `failure`.
/// Puts half of them back and checks again: a half that passes is kept, one that fails is split
/// further, down to single files that the check refuses on their own. One bad file among n
/// costs about 2·log2(n) checks.
fn bisect(
    mut trials: Vec<Trial>,
    failure: CommandError,
    cmd: &str,
    run: &impl Fn(&str) -> Result<(), CommandError>,
    settled: &mut Settled,
) {
    if trials.len() == 1 {
        let t = trials.remove(0);
        let dest = t.swapped.dest().to_owned();
        let result = t.swapped.rollback().and(Err(ApplyError::Check {
            dest,
            error: failure,
        }));
        settled.push((t.report, result));
        return;
    }
    let later = trials.split_off(trials.len() / 2);
    let later = withdraw(later, settled);
    match run(cmd) {
        Ok(()) => accept(trials, settled),
        Err(e) => bisect(trials, e, cmd, run, settled),
    }
    let again = swap_in(later, settled);
    if again.is_empty() {
        return;
    }
    match run(cmd) {
        Ok(()) => accept(again, settled),
        Err(e) => bisect(again, e, cmd, run, settled),
    }
}

fn swap_in(writes: Vec<(usize, Write)>, settled: &mut Settled) -> Vec<Trial> {
    let swapped = apply::swap_all(writes.iter().map(|(_, w)| w.clone()).collect());
    let mut trials = Vec::new();
    for ((report, write), swapped) in writes.into_iter().zip(swapped) {
        match swapped {
            Ok(swapped) => trials.push(Trial {
                report,
                write,
                swapped,
            }),
            Err(e) => settled.push((report, Err(e))),
        }
    }
    trials
}

/// Puts trials back (their previous files, byte for byte), keeping their plans to try again.
fn withdraw(trials: Vec<Trial>, settled: &mut Settled) -> Vec<(usize, Write)> {
    let (plans, swapped): (Vec<_>, Vec<_>) = trials
        .into_iter()
        .map(|t| ((t.report, t.write), t.swapped))
        .unzip();
    let mut back = Vec::new();
    for ((report, write), rolled) in plans.into_iter().zip(apply::rollback_all(swapped)) {
        match rolled {
            Ok(()) => back.push((report, write)),
            Err(e) => settled.push((report, Err(e))),
        }
    }
    back
}

fn accept(trials: Vec<Trial>, settled: &mut Settled) {
    for t in trials {
        t.swapped.commit();
        settled.push((t.report, Ok(Outcome::Installed)));
    }
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

/// Installs a write whose check (if any) names the staged file (`{{src}}`): the stage is
/// checked before the swap. Writes checked with the whole configuration go through
/// [`check_together`].
fn install(
    cfg: &Config,
    res: &Resource,
    write: Write,
    run: &impl Fn(&str) -> Result<(), CommandError>,
) -> Result<Outcome, ApplyError> {
    let staged = write.stage()?;
    let check = res.check_cmd.as_deref().filter(|_| !cfg.sync_only);
    if let Some(cmd) = check.and_then(|cmd| with_src(cmd, staged.path()?)) {
        if let Err(error) = run(&cmd) {
            staged.discard();
            return Err(ApplyError::Check {
                dest: res.dest.clone(),
                error,
            });
        }
    }
    staged.swap()?.commit();
    Ok(Outcome::Installed)
}

/// The check_cmd of `res` as it would run on a staged file at `stage`: None when it does not
/// name the staged file (`nginx -t` checks the installed configuration instead).
pub fn check_of_stage(res: &Resource, stage: &Path) -> Option<String> {
    res.check_cmd
        .as_deref()
        .and_then(|cmd| with_src(cmd, stage))
}

/// The resource of a unit.
pub fn resource_of<'a>(p: &'a Prepared, u: &UnitId) -> Option<&'a Resource> {
    p.get(u).map(|(r, _)| r)
}

/// The spellings of the staged file's path in a check_cmd: confd's `{{.src}}`, and Jinja's.
const STAGE_FORMS: [&str; 4] = ["{{.src}}", "{{ .src }}", "{{src}}", "{{ src }}"];

fn names_stage(cmd: &str) -> bool {
    STAGE_FORMS.iter().any(|f| cmd.contains(f))
}

/// The check_cmd with the staged file's path in place of its `{{src}}`, if it names it.
fn with_src(cmd: &str, stage: &Path) -> Option<String> {
    let path = stage.display().to_string();
    names_stage(cmd).then(|| {
        STAGE_FORMS
            .iter()
            .fold(cmd.to_owned(), |out, form| out.replace(form, &path))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_belongs_to_the_directory_the_fan_out_pattern_names() {
        let one = Pattern::new("/*").expect("pattern");
        assert_eq!(
            dir_of("/search_PRE/10.0.0.1-80", &one, 1).as_deref(),
            Some("/search_PRE")
        );
        assert_eq!(
            dir_of("/search_PRE", &one, 1),
            None,
            "a key is not a directory"
        );
        assert_eq!(dir_of("/bad name/x", &one, 1), None, "not a safe file name");
        assert_eq!(dir_of("/.hidden/x", &one, 1), None);
        let two = Pattern::new("/apps/*_PRE").expect("pattern");
        assert_eq!(
            dir_of("/apps/web_PRE/a/b", &two, 2).as_deref(),
            Some("/apps/web_PRE")
        );
        assert_eq!(dir_of("/apps/web_PRO/a", &two, 2), None);
    }
}
