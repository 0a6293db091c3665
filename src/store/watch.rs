//! The store as an event source for the daemon: etcd watched from a snapshot's revision, or
//! polled. Each is a worker sending [`StoreEvent`]s on its own channel until the daemon drops
//! the receiver (which it does when it replaces the source).

use std::hash::{BuildHasher, Hasher};
use std::time::Duration;

use etcd_client::EventType;

use super::etcd::{self, Cluster, EtcdStore, Header};
use tokio::sync::mpsc::Sender;

use super::{covering_prefixes, Change, News, Reported, Snapshot, Store, StoreError, StoreEvent};
use crate::config::{Backend, EtcdConfig};

type StoreTx = Sender<StoreEvent>;

/// Reconnect attempts start fast and are capped at about a second, so a restarted etcd is
/// picked up within ~1 s of serving again.
const BACKOFF_FIRST: Duration = Duration::from_millis(50);
const BACKOFF_CAP: Duration = Duration::from_secs(1);

/// Why a watch session ended.
enum End {
    /// The daemon is gone: stop.
    Closed,
    /// The revision we watch from is gone (compacted) or meaningless (restored, rebuilt): read
    /// a fresh snapshot.
    Resync(String),
    Failed(StoreError),
}

impl From<StoreError> for End {
    fn from(e: StoreError) -> End {
        End::Failed(e)
    }
}

/// Watches etcd: a snapshot at R, then every change from R+1 on. Reconnects with capped,
/// jittered backoff, resumes from the last revision seen, and resyncs when that revision was
/// compacted or the cluster was restored or rebuilt.
pub async fn watch_etcd(cfg: EtcdConfig, prefixes: Vec<String>, tx: StoreTx) {
    if prefixes.is_empty() {
        // No resource reads any key: an empty view renders what there is, and nothing can change.
        let _ = tx.send(StoreEvent::Snapshot(Snapshot::default())).await;
        return;
    }
    let mut w = Watcher {
        prefixes: covering_prefixes(&prefixes),
        tx,
        seen: None,
        reported: Reported::default(),
    };
    let mut backoff = Backoff::default();
    let mut cluster = Cluster::new(cfg);
    let mut store = None;
    loop {
        let client = match &mut store {
            Some(s) => s,
            None => match cluster.connect().await {
                Ok(s) => store.insert(s),
                Err(e) => {
                    if w.down(&e).await.is_err() {
                        return;
                    }
                    tokio::time::sleep(backoff.next()).await;
                    continue;
                }
            },
        };
        match w.session(client, &mut backoff).await {
            End::Closed => return,
            End::Resync(why) => {
                tracing::warn!("{why}: reading a fresh snapshot");
                w.seen = None;
            }
            End::Failed(e) => {
                // Start over on another member: this one may be the reason.
                store = None;
                cluster.failed();
                // Watchers of different prefixes catch up independently, so no one revision
                // says what every prefix has seen: with several, read a fresh snapshot.
                if w.prefixes.len() > 1 {
                    w.seen = None;
                }
                if w.down(&e).await.is_err() {
                    return;
                }
                tokio::time::sleep(backoff.next()).await;
            }
        }
    }
}

struct Watcher {
    prefixes: Vec<String>,
    tx: StoreTx,
    /// The store's identity and the last revision we hold, once a snapshot was read.
    seen: Option<Header>,
    reported: Reported,
}

impl Watcher {
    async fn send(&self, ev: StoreEvent) -> Result<(), End> {
        self.tx.send(ev).await.map_err(|_| End::Closed)
    }

    async fn down(&mut self, e: &StoreError) -> Result<(), End> {
        if let Some(ev) = went_down(&mut self.reported, e) {
            self.send(ev).await?;
        }
        Ok(())
    }

    async fn session(&mut self, store: &mut EtcdStore, backoff: &mut Backoff) -> End {
        match self.watch(store, backoff).await {
            Ok(()) => End::Failed(etcd::unreachable(store.endpoint(), "watch stream ended")),
            Err(end) => end,
        }
    }

    async fn watch(&mut self, store: &mut EtcdStore, backoff: &mut Backoff) -> Result<(), End> {
        let now = store.header().await?;
        if let Some(why) = self.seen.and_then(|seen| lost_history(seen, now)) {
            return Err(End::Resync(why));
        }
        if self.seen.is_none() {
            let snap = store.snapshot(&self.prefixes).await?;
            self.seen = Some(Header {
                revision: snap.revision,
                cluster_id: now.cluster_id,
            });
            self.send(StoreEvent::Snapshot(snap)).await?;
        }
        let from = self.seen.map_or(0, |s| s.revision) + 1;
        let mut stream = store.watch(&self.prefixes, from).await?;
        let endpoint = store.endpoint().to_owned();
        while let Some(resp) = stream
            .message()
            .await
            .map_err(|e| End::Failed(store.classify(e)))?
        {
            if self.reported.up() {
                tracing::info!(endpoint = %endpoint, revision = from - 1, "watching etcd");
                backoff.reset();
                self.send(StoreEvent::Up).await?;
            }
            if resp.canceled() {
                let prefix = usize::try_from(resp.watch_id())
                    .ok()
                    .and_then(|i| self.prefixes.get(i))
                    .map_or("", String::as_str);
                return Err(canceled(store, &resp, prefix, from));
            }
            let mut revision = 0;
            let mut changes = Vec::new();
            for ev in resp.events() {
                let Some(kv) = ev.kv() else { continue };
                revision = revision.max(kv.mod_revision());
                let key = String::from_utf8_lossy(kv.key()).into_owned();
                if !self.prefixes.iter().any(|p| key.starts_with(p.as_str())) {
                    continue;
                }
                let value = match ev.event_type() {
                    EventType::Put => Some(String::from_utf8_lossy(kv.value()).into_owned()),
                    EventType::Delete => None,
                };
                changes.push(Change { key, value });
            }
            if let Some(seen) = &mut self.seen {
                seen.revision = seen.revision.max(revision);
            }
            if !changes.is_empty() {
                self.send(StoreEvent::Changes { revision, changes }).await?;
            }
        }
        Ok(())
    }
}

/// Why etcd canceled the watcher of `prefix`: its history is gone (resync), or it refused.
fn canceled(store: &EtcdStore, resp: &etcd_client::WatchResponse, prefix: &str, from: i64) -> End {
    let reason = resp.cancel_reason();
    if resp.compact_revision() != 0 {
        End::Resync(format!(
            "revision {from} was compacted (now {})",
            resp.compact_revision()
        ))
    } else if reason.contains("permission denied") {
        End::Failed(store.denied_reading(prefix))
    } else {
        End::Failed(etcd::unreachable(
            store.endpoint(),
            &format!("watch of {prefix:?} canceled: {reason}"),
        ))
    }
}

/// Whether the store we reconnected to can still replay what we missed: not when it is another
/// cluster, or when its revision is behind ours (restored from a backup, or rebuilt).
fn lost_history(seen: Header, now: Header) -> Option<String> {
    if now.cluster_id != seen.cluster_id {
        Some(format!(
            "etcd cluster id changed ({:x} → {:x})",
            seen.cluster_id, now.cluster_id
        ))
    } else if now.revision < seen.revision {
        Some(format!(
            "etcd revision went back from {} to {} (restored or rebuilt)",
            seen.revision, now.revision
        ))
    } else {
        None
    }
}

/// The event for a failure that changes what was reported; a new kind of cause is logged too.
fn went_down(reported: &mut Reported, e: &StoreError) -> Option<StoreEvent> {
    let news = reported.down(e);
    if news == News::Cause {
        tracing::error!("{e}; keeping the last good files and retrying");
    }
    (news != News::Nothing).then(|| StoreEvent::Down(e.to_string()))
}

/// Polls the store every `interval` (confd's mode); sends a snapshot when anything changed.
pub async fn poll(backend: Backend, prefixes: Vec<String>, interval: Duration, tx: StoreTx) {
    let mut store: Option<Store> = None;
    let mut last: Option<Snapshot> = None;
    let mut reported = Reported::default();
    loop {
        let mut events: Vec<StoreEvent> = Vec::new();
        match read(&backend, &mut store, &prefixes).await {
            Ok(snap) => {
                if reported.up() {
                    events.push(StoreEvent::Up);
                }
                if last.as_ref().map(Snapshot::kvs) != Some(snap.kvs()) {
                    last = Some(snap.clone());
                    events.push(StoreEvent::Snapshot(snap));
                }
            }
            Err(e) => events.extend(went_down(&mut reported, &e)),
        }
        for ev in events {
            if tx.send(ev).await.is_err() {
                return;
            }
        }
        tokio::time::sleep(interval).await;
    }
}

async fn read(
    backend: &Backend,
    store: &mut Option<Store>,
    prefixes: &[String],
) -> Result<Snapshot, StoreError> {
    let s = match store {
        Some(s) => s,
        None => store.insert(Store::open(backend).await?),
    };
    s.snapshot(prefixes).await
}

/// Key files as a watched store: read now, and again after every edit to them.
pub async fn watch_files(paths: Vec<std::path::PathBuf>, prefixes: Vec<String>, tx: StoreTx) {
    let mut edits = crate::fswatch::Edits::new(&paths);
    let store = super::file::FileStore::new(paths);
    let mut last: Option<Snapshot> = None;
    loop {
        match store.snapshot(&covering_prefixes(&prefixes)) {
            Ok(snap) if last.as_ref().is_some_and(|l| l.kvs() == snap.kvs()) => {}
            Ok(snap) => {
                last = Some(snap.clone());
                if tx.send(StoreEvent::Snapshot(snap)).await.is_err() {
                    return;
                }
            }
            // A half-written file is not a reason to drop what was read before.
            Err(e) => tracing::error!("{e}; keeping the last good files"),
        }
        if edits.next().await.is_none() {
            return;
        }
    }
}

/// Capped exponential backoff with jitter (half to full delay), so many hosts do not reconnect
/// in lockstep.
#[derive(Default)]
struct Backoff {
    attempt: u32,
}

impl Backoff {
    fn next(&mut self) -> Duration {
        let full = BACKOFF_FIRST
            .saturating_mul(1 << self.attempt.min(10))
            .min(BACKOFF_CAP);
        self.attempt += 1;
        let jitter = std::collections::hash_map::RandomState::new()
            .build_hasher()
            .finish()
            % 1000;
        full / 2 + full / 2 * jitter as u32 / 1000
    }

    fn reset(&mut self) {
        self.attempt = 0;
    }
}
