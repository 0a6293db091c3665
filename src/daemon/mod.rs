//! The daemon: one loop owns the state. Store events arrive on the current store source's own
//! channel, confdir edits and SIGHUP as [`Event`]s, and the stop request (SIGTERM/SIGINT) on a
//! watch channel selected first. Changes are coalesced into batches (see `batch`) that run the
//! same pass as `--onetime` ([`pipeline::run`], off the loop's thread); failed units are retried
//! with backoff.

mod batch;

use std::sync::Arc;

use tokio::sync::mpsc::{self, Receiver, Sender};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::apply::ApplyError;
use crate::cli::Cli;
use crate::config::{self, Backend, Config};
use crate::error::Error;
use crate::event::Event;
use crate::fswatch::Edits;
use crate::metrics::{self, Applied, Metrics};
use crate::pipeline::{self, Prepared, Report, ResourceError, Stop, UnitId};
use crate::store::{watch, Change, Snapshot, StoreEvent};
use batch::{Batch, Retries};

/// Takes the confdir's daemon lock (`CONFDIR/.confd-rs.lock`, holding the daemon's pid), or
/// says which daemon holds it. A confdir that cannot hold the file is run unlocked (logged).
pub fn lock(confdir: &std::path::Path) -> Result<Option<nix::fcntl::Flock<std::fs::File>>, Error> {
    use std::io::{Read, Seek, Write};
    let path = confdir.join(".confd-rs.lock");
    let file = match std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
    {
        Ok(f) => f,
        Err(e) => {
            tracing::warn!(lock = %path.display(), "cannot create the daemon lock ({e}): running without it");
            return Ok(None);
        }
    };
    match nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusiveNonblock) {
        Ok(mut held) => {
            let _ = held.set_len(0);
            let _ = held.rewind();
            let _ = writeln!(held, "{}", std::process::id());
            Ok(Some(held))
        }
        Err((mut file, _)) => {
            let mut pid = String::new();
            let _ = file.read_to_string(&mut pid);
            Err(config::ConfigError::Invalid {
                path,
                message: format!(
                    "another confd-rs daemon (pid {}) runs on this confdir; stop it first \
                     (a --noop shadow may run beside it)",
                    pid.trim()
                ),
            }
            .into())
        }
    }
}

/// Store events in flight. When it is full the source waits, and so stops reading etcd: etcd
/// buffers or replays the watch from history (a resync if that was compacted). Nothing is lost.
const STORE_QUEUE: usize = 1024;

/// Runs until `stop` is set: then the unit in flight finishes, and its reload runs.
pub async fn serve(
    cli: Cli,
    p: Prepared,
    stop: Stop,
    tx: Sender<Event>,
    rx: Receiver<Event>,
) -> Result<(), Error> {
    let metrics = Arc::new(Metrics::new());
    if let Some(addr) = p.cfg.metrics_addr {
        metrics::serve(addr, metrics.clone())
            .await
            .map_err(Error::host("binding --metrics-addr"))?;
    }
    for u in &p.unusable {
        metrics.cannot_run(&u.name, &u.reason);
    }
    let mut daemon = Daemon {
        cli,
        p: Arc::new(p),
        metrics,
        tx,
        store: None,
        confdir: None,
        view: None,
        batch: Batch::default(),
        retries: Retries::default(),
        recovered: false,
        nginx: None,
        resync: true,
    };
    daemon.start_store();
    daemon.start_confdir();
    daemon.start_nginx_watch();
    daemon.run(rx, stop).await;
    Ok(())
}

struct Daemon {
    cli: Cli,
    p: Arc<Prepared>,
    metrics: Arc<Metrics>,
    tx: Sender<Event>,
    /// The current store source and its channel; replacing it drops the receiver, so a
    /// replaced source's leftovers cannot arrive.
    store: Option<(JoinHandle<()>, Receiver<StoreEvent>)>,
    confdir: Option<JoinHandle<()>>,
    /// The store as of the last event; None until a complete snapshot has arrived, so nothing is
    /// ever rendered from an empty or partial view. Shared with the pass in flight.
    view: Option<Arc<Snapshot>>,
    batch: Batch,
    retries: Retries,
    /// Whether leftovers of an earlier run were looked for (at the first snapshot, which says
    /// which files fan-out resources own).
    recovered: bool,
    /// The nginx watcher of dynamic resources (see `dynamic::watch_nginx`).
    nginx: Option<JoinHandle<()>>,
    /// Whether nginx's balancers are to be compared with the files after the next pass (or
    /// now, when none is due): at start, after a reload, when asked by the nginx watcher.
    resync: bool,
}

/// What woke the loop.
enum Wake {
    Stop,
    Store(Option<StoreEvent>),
    Event(Option<Event>),
    Due,
}

impl Daemon {
    async fn run(mut self, mut rx: Receiver<Event>, mut stop: Stop) {
        let mut stop_open = true;
        while !*stop.borrow() {
            let deadline = self.deadline();
            let wake = tokio::select! {
                biased;
                changed = stop.changed(), if stop_open => {
                    stop_open = changed.is_ok();
                    Wake::Stop
                }
                ev = store_event(&mut self.store) => Wake::Store(ev),
                ev = rx.recv() => Wake::Event(ev),
                () = sleep_until(deadline) => Wake::Due,
            };
            let now = Instant::now();
            match wake {
                Wake::Stop | Wake::Due | Wake::Event(None) => {}
                Wake::Store(None) => self.store = None,
                Wake::Store(Some(ev)) => self.store_event(ev, now),
                Wake::Event(Some(ev)) => self.event(ev, now),
            }
            // Everything already queued joins this round, so a burst lands in one batch.
            while let Some(ev) = self.store.as_mut().and_then(|(_, rx)| rx.try_recv().ok()) {
                self.store_event(ev, now);
            }
            while let Ok(ev) = rx.try_recv() {
                self.event(ev, now);
            }
            if !*stop.borrow() {
                self.apply_due(&stop).await;
            }
        }
        let pending = self.batch.len() + self.retries.len();
        tracing::info!(pending, "exiting");
    }

    fn event(&mut self, ev: Event, now: Instant) {
        match ev {
            Event::Reconfigure(why) => self.reconfigure(why, now),
            Event::Resync(why) => {
                tracing::debug!(why, "resync due");
                self.resync = true;
            }
        }
    }

    fn store_event(&mut self, event: StoreEvent, now: Instant) {
        match event {
            StoreEvent::Snapshot(snap) => {
                tracing::debug!(revision = snap.revision, keys = snap.len(), "snapshot");
                self.metrics.revision(snap.revision);
                self.metrics.store(Ok(()));
                if !self.recovered && !self.p.cfg.noop {
                    pipeline::recover(&self.p, &snap);
                    self.recovered = true;
                }
                let units = self.p.units(&snap);
                self.view = Some(Arc::new(snap));
                self.mark(units, now);
            }
            StoreEvent::Changes { revision, changes } => self.changes(revision, changes, now),
            StoreEvent::Down(reason) => self.metrics.store(Err(reason)),
            StoreEvent::Up => self.metrics.store(Ok(())),
        }
    }

    fn changes(&mut self, revision: i64, changes: Vec<Change>, now: Instant) {
        let Some(view) = &mut self.view else { return };
        let touched: Vec<UnitId> = changes
            .iter()
            .flat_map(|c| self.p.reading(&c.key))
            .collect();
        // No pass holds the view between passes, so this updates it in place.
        Arc::make_mut(view).apply(revision, changes);
        self.metrics.revision(revision);
        self.mark(touched, now);
    }

    fn mark(&mut self, units: Vec<UnitId>, now: Instant) {
        self.batch.mark(units, now, self.p.cfg.coalesce.window);
    }

    /// The next moment something is due: the pending batch or a retry.
    fn deadline(&self) -> Option<Instant> {
        self.view.as_ref()?;
        let batch = self.batch.deadline(self.p.cfg.coalesce);
        batch.into_iter().chain(self.retries.next()).min()
    }

    async fn apply_due(&mut self, stop: &Stop) {
        let now = Instant::now();
        let Some(view) = self.view.clone() else {
            return;
        };
        self.batch.force(self.retries.due(now), now);
        let Some((units, since)) = self.batch.take_due(now, self.p.cfg.coalesce) else {
            self.resync_balancers(view, stop).await;
            return;
        };
        let reports =
            pipeline::run(self.p.clone(), units.clone(), view.clone(), stop.clone()).await;
        let done = Instant::now();
        for report in &reports {
            self.record(report, done);
        }
        self.resync |= reports.iter().any(|r| r.reloaded);
        self.resync_balancers(view, stop).await;
        // Units a stop request kept from starting stay pending (counted at exit).
        let skipped = units
            .into_iter()
            .filter(|u| !reports.iter().any(|r| &r.unit == u));
        self.batch.force(skipped, done);
        self.metrics.latency(done.duration_since(since));
        self.batch.applied(done);
    }

    /// Compares nginx's balancers with the files, when due and the config has dynamic
    /// resources (a shadow daemon sends nothing).
    async fn resync_balancers(&mut self, view: Arc<Snapshot>, stop: &Stop) {
        if !std::mem::take(&mut self.resync) || self.p.cfg.noop || !self.p.cfg.is_dynamic() {
            return;
        }
        // Each request is bounded, but an endpoint that answers slowly must not hold up a stop.
        let mut stop = stop.clone();
        let resynced = tokio::select! {
            biased;
            _ = stop.wait_for(|s| *s) => return,
            r = pipeline::resync(self.p.clone(), view) => r,
        };
        for r in resynced {
            let endpoint = r.socket.display().to_string();
            let result = r.result.as_ref().map(|_| ()).map_err(ToString::to_string);
            self.metrics.resynced(&endpoint, &r.sets, result);
        }
    }

    fn record(&mut self, report: &Report, now: Instant) {
        for u in &report.upstreams {
            self.metrics.balanced(&u.name, u.version, u.dynamic);
        }
        let reason;
        let applied = match &report.result {
            Ok(pipeline::Outcome::Installed) => Applied::Updated,
            Ok(pipeline::Outcome::Delivered) => Applied::Delivered,
            Ok(pipeline::Outcome::Unchanged) => Applied::Unchanged,
            Err(ResourceError::Held(held)) => {
                reason = held.to_string();
                self.retries.at(&report.unit, Instant::from_std(held.until));
                Applied::Held {
                    reason: &reason,
                    new: held.new,
                }
            }
            Err(e) => {
                reason = e.to_string();
                Applied::Failed {
                    reason: &reason,
                    check: matches!(
                        e,
                        ResourceError::Apply(ApplyError::Check { .. } | ApplyError::Restore { .. })
                    ),
                    reload: matches!(
                        e,
                        ResourceError::Apply(ApplyError::Reload(_) | ApplyError::Unconfirmed(_))
                    ),
                }
            }
        };
        let unit = report.unit.to_string();
        let revision = self.view.as_ref().map_or(0, |v| v.revision);
        let seen = metrics::Seen {
            unit: &unit,
            resource: &report.unit.resource,
            dest: report.dest.as_deref(),
            keys_read: report.rendering.keys_read,
            dropped: report.rendering.dropped,
            revision,
        };
        self.metrics.record(seen, applied);
        if report.result.is_ok() {
            self.retries.succeeded(&report.unit);
        } else if !matches!(report.result, Err(ResourceError::Held(_))) {
            let wait = self.retries.failed(&report.unit, now);
            tracing::warn!(resource = %report.unit, retry_in = ?wait, "will retry");
        }
    }

    /// Re-reads confd.toml, conf.d and templates. A broken edit of a running resource (or of
    /// confd.toml) keeps the running configuration; a broken new resource is set apart.
    fn reconfigure(&mut self, why: &str, now: Instant) {
        let p = match config::load(&self.cli) {
            Ok(cfg) => Prepared::new(cfg),
            Err(e) => {
                tracing::error!("{why}: {e}; keeping the running configuration");
                return;
            }
        };
        let running = |name: &str| self.p.cfg.resources.iter().any(|r| r.name == name);
        let broken_edits: Vec<_> = p.unusable.iter().filter(|u| running(&u.name)).collect();
        if !broken_edits.is_empty() {
            for u in broken_edits {
                tracing::error!(resource = %u.name, "{why}: {}; keeping the running configuration", u.reason);
            }
            return;
        }
        tracing::info!(
            resources = p.cfg.resources.len(),
            "{why}: configuration reloaded"
        );
        p.log_unusable();
        let old = &self.p.cfg;
        let restart_store = p.cfg.backend != old.backend
            || p.cfg.prefixes() != old.prefixes()
            || p.cfg.watch != old.watch
            || p.cfg.interval != old.interval;
        let restart_confdir = p.cfg.watched_paths != old.watched_paths;
        self.metrics.retain(
            &p.cfg
                .resources
                .iter()
                .map(|r| r.name.clone())
                .chain(p.unusable.iter().map(|u| u.name.clone()))
                .collect::<Vec<_>>(),
        );
        for u in &p.unusable {
            self.metrics.cannot_run(&u.name, &u.reason);
        }
        self.retries.retain(|u| p.contains(u));
        self.batch.retain(|u| p.contains(u));
        p.carry_over(&self.p);
        self.p = Arc::new(p);
        if restart_store {
            self.view = None;
            self.start_store();
        } else if let Some(view) = &self.view {
            let units = self.p.units(view);
            self.mark(units, now);
        }
        if restart_confdir {
            self.start_confdir();
        }
        self.start_nginx_watch();
        self.resync = true;
    }

    /// Watches nginx for dynamic resources (see `dynamic::watch_nginx`); none without them.
    fn start_nginx_watch(&mut self) {
        if let Some(old) = self.nginx.take() {
            old.abort();
        }
        if !self.p.cfg.is_dynamic() || self.p.cfg.noop {
            return;
        }
        let pidfiles: Vec<_> = self
            .p
            .cfg
            .resources
            .iter()
            .filter(|r| r.dynamic.is_some())
            .filter_map(|r| r.reload_pidfile.clone())
            .collect();
        self.nginx = Some(tokio::spawn(crate::dynamic::watch_nginx(
            pidfiles,
            self.tx.clone(),
        )));
    }

    fn start_store(&mut self) {
        if let Some((old, _)) = self.store.take() {
            old.abort();
        }
        let (tx, rx) = mpsc::channel(STORE_QUEUE);
        self.store = Some((tokio::spawn(store_source(&self.p.cfg, tx)), rx));
    }

    fn start_confdir(&mut self) {
        if let Some(old) = self.confdir.take() {
            old.abort();
        }
        self.confdir = Some(tokio::spawn(confdir_source(
            self.p.cfg.watched_paths.clone(),
            self.tx.clone(),
        )));
    }
}

async fn store_event(
    store: &mut Option<(JoinHandle<()>, Receiver<StoreEvent>)>,
) -> Option<StoreEvent> {
    match store {
        Some((_, rx)) => rx.recv().await,
        None => std::future::pending().await,
    }
}

/// The store as an event source: etcd watched, etcd polled, or key files re-read on edit.
fn store_source(
    cfg: &Config,
    tx: Sender<StoreEvent>,
) -> impl std::future::Future<Output = ()> + use<> {
    let (backend, prefixes, watch, interval) =
        (cfg.backend.clone(), cfg.prefixes(), cfg.watch, cfg.interval);
    async move {
        match backend {
            Backend::Etcd(etcd) if watch => watch::watch_etcd(etcd, prefixes, tx).await,
            Backend::File(files) if watch => watch::watch_files(files, prefixes, tx).await,
            backend => {
                tracing::info!(interval_secs = interval.as_secs(), "polling the store");
                watch::poll(backend, prefixes, interval, tx).await
            }
        }
    }
}

/// Edits under the confdir (confd.toml, conf.d, templates) reconfigure the daemon, as SIGHUP does.
async fn confdir_source(paths: Vec<std::path::PathBuf>, tx: Sender<Event>) {
    let mut edits = Edits::new(&paths);
    while edits.next().await.is_some() {
        if tx.send(Event::Reconfigure("confdir edited")).await.is_err() {
            return;
        }
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}
