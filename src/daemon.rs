//! The daemon: one loop owns the pipeline. Store changes, signals and confdir edits arrive as
//! events on one channel; changes are coalesced into batches that drive the same apply path as
//! `--onetime` ([`run::apply_batch`]); failed resources are retried with backoff.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc::{self, Receiver, Sender};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::apply::ApplyError;
use crate::cli::Cli;
use crate::config::{self, Backend, Config};
use crate::event::{Change, Event, StoreEvent, StoreTx};
use crate::fswatch::Edits;
use crate::metrics::{self, Metrics};
use crate::store::{watch, Snapshot};
use crate::{exit, run, signals};

const EVENT_QUEUE: usize = 1024;
const RETRY_FIRST: Duration = Duration::from_secs(1);
const RETRY_CAP: Duration = Duration::from_secs(60);

pub async fn run(cli: Cli, cfg: Config) -> anyhow::Result<u8> {
    let metrics = Arc::new(Metrics::new());
    if let Some(addr) = cfg.metrics_addr {
        metrics::serve(addr, metrics.clone()).await?;
    }
    let (tx, rx) = mpsc::channel(EVENT_QUEUE);
    tokio::spawn(signals::worker(tx.clone())?);
    let mut daemon = Daemon::new(cli, cfg, metrics, tx);
    daemon.start_sources();
    daemon.run(rx).await
}

struct Daemon {
    cli: Cli,
    cfg: Config,
    metrics: Arc<Metrics>,
    tx: Sender<Event>,
    store_source: Option<JoinHandle<()>>,
    /// Which store source is current: events from an earlier one are dropped.
    store_epoch: u64,
    confdir_source: Option<JoinHandle<()>>,
    /// The store as of the last event; None until a complete snapshot has arrived, so nothing is
    /// ever rendered from an empty or partial view.
    view: Option<Snapshot>,
    batch: Batch,
    retries: BTreeMap<usize, Retry>,
    /// Resources (by name, stable across reconfiguration) whose file is in place but whose
    /// reload_cmd failed: their next apply reloads even though the file is unchanged.
    owed_reloads: BTreeSet<String>,
}

/// Resources waiting to be applied, and when.
#[derive(Default)]
struct Batch {
    pending: BTreeSet<usize>,
    /// When the first change of this batch arrived.
    since: Option<Instant>,
    /// When the latest change arrived.
    last_change: Option<Instant>,
    /// The batch started after a quiet spell: apply at once (the leading edge).
    immediate: bool,
    /// When the last change arrived or the last apply finished, whichever is later.
    last_activity: Option<Instant>,
}

struct Retry {
    attempts: u32,
    at: Instant,
}

impl Daemon {
    fn new(cli: Cli, cfg: Config, metrics: Arc<Metrics>, tx: Sender<Event>) -> Daemon {
        Daemon {
            cli,
            cfg,
            metrics,
            tx,
            store_source: None,
            store_epoch: 0,
            confdir_source: None,
            view: None,
            batch: Batch::default(),
            retries: BTreeMap::new(),
            owed_reloads: BTreeSet::new(),
        }
    }

    async fn run(mut self, mut rx: Receiver<Event>) -> anyhow::Result<u8> {
        loop {
            let deadline = self.deadline();
            let event = tokio::select! {
                ev = rx.recv() => ev,
                _ = sleep_until(deadline) => None,
            };
            // Everything already queued joins this round, so a burst lands in one batch.
            for ev in event
                .into_iter()
                .chain(std::iter::from_fn(|| rx.try_recv().ok()))
            {
                if let Event::Shutdown(why) = ev {
                    tracing::info!("{why}: exiting");
                    return Ok(exit::OK);
                }
                self.handle(ev);
            }
            self.apply_due().await;
        }
    }

    fn handle(&mut self, event: Event) {
        let now = Instant::now();
        match event {
            Event::Store { epoch, .. } if epoch != self.store_epoch => {}
            Event::Store { event, .. } => self.store(event, now),
            Event::Reconfigure(why) => self.reconfigure(why, now),
            Event::Shutdown(_) => {}
        }
    }

    fn store(&mut self, event: StoreEvent, now: Instant) {
        match event {
            StoreEvent::Snapshot(snap) => {
                tracing::debug!(revision = snap.revision, keys = snap.kvs.len(), "snapshot");
                self.metrics.revision(snap.revision);
                self.metrics.store(Ok(()));
                self.view = Some(snap);
                self.mark(0..self.cfg.resources.len(), now);
            }
            StoreEvent::Changes { revision, changes } => self.changes(revision, changes, now),
            StoreEvent::Down(reason) => self.metrics.store(Err(reason)),
            StoreEvent::Up => self.metrics.store(Ok(())),
        }
    }

    fn changes(&mut self, revision: i64, changes: Vec<Change>, now: Instant) {
        let Some(view) = &mut self.view else { return };
        let touched: Vec<usize> = (0..self.cfg.resources.len())
            .filter(|&i| changes.iter().any(|c| self.cfg.resources[i].reads(&c.key)))
            .collect();
        view.apply(revision, changes);
        self.metrics.revision(revision);
        self.mark(touched, now);
    }

    /// Queues resources for the next batch, deciding when it runs (see `config::Coalesce`).
    fn mark(&mut self, indices: impl IntoIterator<Item = usize>, now: Instant) {
        let window = self.cfg.coalesce.window;
        let b = &mut self.batch;
        let was_empty = b.pending.is_empty();
        b.pending.extend(indices);
        if b.pending.is_empty() {
            return;
        }
        if was_empty {
            b.since = Some(now);
            b.immediate = b
                .last_activity
                .is_none_or(|t| now.duration_since(t) >= window);
        }
        b.last_change = Some(now);
        b.last_activity = Some(now);
    }

    /// The next moment something is due: the pending batch or a retry.
    fn deadline(&self) -> Option<Instant> {
        self.view.as_ref()?;
        let b = &self.batch;
        let batch = match (b.pending.is_empty(), b.since, b.last_change) {
            (false, Some(since), _) if b.immediate => Some(since),
            (false, Some(since), Some(last)) => {
                Some((last + self.cfg.coalesce.window).min(since + self.cfg.coalesce.max_delay))
            }
            _ => None,
        };
        let retry = self.retries.values().map(|r| r.at).min();
        batch.into_iter().chain(retry).min()
    }

    async fn apply_due(&mut self) {
        let now = Instant::now();
        let due_retries: Vec<usize> = self
            .retries
            .iter()
            .filter(|(_, r)| r.at <= now)
            .map(|(i, _)| *i)
            .collect();
        if !due_retries.is_empty() {
            self.batch.pending.extend(due_retries.iter().copied());
            self.batch.since.get_or_insert(now);
            self.batch.immediate = true;
        }
        if self.deadline().is_none_or(|d| d > now) || self.batch.pending.is_empty() {
            return;
        }
        let Some(view) = &self.view else { return };
        let indices = std::mem::take(&mut self.batch.pending);
        let since = self.batch.since.take();
        let owed: BTreeSet<usize> = (0..self.cfg.resources.len())
            .filter(|&i| self.owed_reloads.contains(&self.cfg.resources[i].name))
            .collect();
        let reports = run::apply_batch(&self.cfg, indices, view, &owed).await;
        let done = Instant::now();
        for report in &reports {
            let name = &self.cfg.resources[report.index].name;
            self.metrics.record(name, report);
            let reload_failed = report
                .result
                .as_ref()
                .is_err_and(|e| matches!(e.downcast_ref(), Some(ApplyError::Reload(_))));
            if reload_failed {
                self.owed_reloads.insert(name.clone());
            }
            if report.result.is_ok() {
                self.retries.remove(&report.index);
                self.owed_reloads.remove(name);
            } else {
                let attempts = self.retries.get(&report.index).map_or(0, |r| r.attempts) + 1;
                let wait = RETRY_FIRST
                    .saturating_mul(1 << (attempts - 1).min(6))
                    .min(RETRY_CAP);
                tracing::warn!(resource = %name, retry_in = ?wait, "will retry");
                self.retries.insert(
                    report.index,
                    Retry {
                        attempts,
                        at: done + wait,
                    },
                );
            }
        }
        if let Some(since) = since {
            self.metrics.latency(done.duration_since(since));
        }
        self.batch.immediate = false;
        self.batch.last_activity = Some(done);
    }

    /// Re-reads confd.toml, conf.d and templates; a broken edit keeps the running config.
    fn reconfigure(&mut self, why: &str, now: Instant) {
        let cfg = match config::load(&self.cli) {
            Ok(cfg) => cfg,
            Err(e) => {
                tracing::error!("{why}: {e:#}; keeping the running configuration");
                return;
            }
        };
        tracing::info!(
            resources = cfg.resources.len(),
            "{why}: configuration reloaded"
        );
        let restart_store = cfg.backend != self.cfg.backend
            || cfg.prefixes() != self.cfg.prefixes()
            || cfg.watch != self.cfg.watch
            || cfg.interval != self.cfg.interval;
        let restart_confdir = cfg.watched_paths != self.cfg.watched_paths;
        self.metrics.retain(
            &cfg.resources
                .iter()
                .map(|r| r.name.clone())
                .collect::<Vec<_>>(),
        );
        self.cfg = cfg;
        self.retries.clear();
        self.batch.pending.clear();
        if restart_store {
            self.view = None;
            self.restart(true, false);
        } else {
            self.mark(0..self.cfg.resources.len(), now);
        }
        if restart_confdir {
            self.restart(false, true);
        }
    }

    fn start_sources(&mut self) {
        self.restart(true, true);
    }

    fn restart(&mut self, store: bool, confdir: bool) {
        if store {
            if let Some(old) = self.store_source.take() {
                old.abort();
            }
            self.store_epoch += 1;
            let tx = StoreTx::new(self.store_epoch, self.tx.clone());
            self.store_source = Some(tokio::spawn(store_source(&self.cfg, tx)));
        }
        if confdir {
            if let Some(old) = self.confdir_source.take() {
                old.abort();
            }
            self.confdir_source = Some(tokio::spawn(confdir_source(
                self.cfg.watched_paths.clone(),
                self.tx.clone(),
            )));
        }
    }
}

/// The store as an event source: etcd watched, etcd polled, or key files re-read on edit.
fn store_source(cfg: &Config, tx: StoreTx) -> impl std::future::Future<Output = ()> + use<> {
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
