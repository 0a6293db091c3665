//! Where keys come from: etcd v3 or key files. Every read is a [`Snapshot`] at one revision.

pub mod etcd;
pub mod file;
mod tls;
pub mod watch;
mod yaml11;

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::config::Backend;
use crate::keypath;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// No member could serve: each named with its own cause ("URL: cause; URL: cause").
    #[error("etcd unreachable: {0}")]
    Unreachable(String),
    #[error("etcd at {endpoint}: {reason}")]
    Etcd { endpoint: String, reason: String },
    #[error("etcd at {endpoint}: user {user:?} may not {what} (permission denied)")]
    Denied {
        endpoint: String,
        user: String,
        what: String,
    },
    #[error("etcd at {endpoint}: user {user:?}: {reason}")]
    Auth {
        endpoint: String,
        user: String,
        reason: String,
    },
    /// A lease expired or was revoked (or etcd was rebuilt): the registration starts over.
    #[error("etcd: lease not found")]
    LeaseNotFound,
    #[error("{path}: {reason}")]
    File { path: String, reason: String },
}

/// Every key under the requested prefixes, all read at one store revision.
///
/// Keys are taken as written: one whose path is not clean (`..`, `.`, `//`, a trailing `/`) is
/// left out (and logged) as it is read, never cleaned, since cleaning `/a_PRE/../b_PRE/x` would
/// let a writer confined to `/a_PRE/` put a server into `b_PRE`'s upstream.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    pub revision: i64,
    /// Shared with the renders of a pass; changes copy it only while a pass still holds it.
    kvs: Arc<BTreeMap<String, String>>,
}

/// One key's new value, or its deletion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub key: String,
    pub value: Option<String>,
}

/// What a store source tells the daemon.
#[derive(Debug)]
pub enum StoreEvent {
    /// A complete, consistent view of the watched keys (first read, resync, or a poll).
    Snapshot(Snapshot),
    /// Changes to watched keys, in revision order, up to and including `revision`.
    Changes { revision: i64, changes: Vec<Change> },
    /// The store stopped answering; the last good files stay as they are.
    Down(String),
    /// The store answers again (a Snapshot or Changes follow if anything moved).
    Up,
}

impl Snapshot {
    pub fn new(revision: i64, kvs: impl IntoIterator<Item = (String, String)>) -> Snapshot {
        // Collecting builds the tree in bulk (etcd sends keys sorted): far cheaper than inserts.
        let map: BTreeMap<String, String> = kvs.into_iter().filter(|(k, _)| taken(k)).collect();
        Snapshot {
            revision,
            kvs: Arc::new(map),
        }
    }

    pub fn kvs(&self) -> &BTreeMap<String, String> {
        &self.kvs
    }

    pub fn len(&self) -> usize {
        self.kvs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.kvs.is_empty()
    }

    /// The keys one resource sees and the prefixes they must be under: the whole map, shared,
    /// when the resource's keys are named as stored (no `prefix`); otherwise a copy of its own
    /// keys named relative to `prefix`, as confd's template store names them.
    pub fn keys_for(
        &self,
        prefix: &str,
        keys: &[String],
    ) -> (Arc<BTreeMap<String, String>>, Vec<String>) {
        if prefix.is_empty() || prefix == "/" {
            return (self.kvs.clone(), keys.to_vec());
        }
        let mut out = BTreeMap::new();
        for key_prefix in keys {
            for (k, v) in self
                .kvs
                .range::<str, _>((
                    std::ops::Bound::Included(key_prefix.as_str()),
                    std::ops::Bound::Unbounded,
                ))
                .take_while(|(k, _)| k.starts_with(key_prefix.as_str()))
            {
                out.insert(keypath::relative(k, prefix), v.clone());
            }
        }
        (Arc::new(out), vec![String::new()])
    }

    /// Applies watched changes: the result is the store as it was at `revision`.
    pub fn apply(&mut self, revision: i64, changes: Vec<Change>) {
        let map = Arc::make_mut(&mut self.kvs);
        for c in changes {
            match c.value {
                Some(v) if taken(&c.key) => map.insert(c.key, v),
                Some(_) => None,
                None => map.remove(&c.key),
            };
        }
        self.revision = self.revision.max(revision);
    }
}

/// Whether a key is taken as written; one that is not is logged (escaped) and left out.
fn taken(key: &str) -> bool {
    let clean = keypath::is_clean(key);
    if !clean {
        tracing::warn!(key = ?key, "key left out: its path is not clean");
    }
    clean
}

/// Whether the store was last reported up, or down and why. A failure of a new kind is news
/// (up before; or refused, then a password etcd no longer takes); the same kind in other words
/// is a detail (a broken stream, then refused connections: one outage); a repeat is nothing.
#[derive(Debug, Default)]
pub struct Reported(Option<Result<(), (std::mem::Discriminant<StoreError>, String)>>);

/// What a report changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum News {
    Nothing,
    Detail,
    Cause,
}

impl Reported {
    /// Whether being up is news.
    pub fn up(&mut self) -> bool {
        let news = !self.is_up();
        self.0 = Some(Ok(()));
        news
    }

    pub fn is_up(&self) -> bool {
        matches!(self.0, Some(Ok(())))
    }

    pub fn down(&mut self, e: &StoreError) -> News {
        let (kind, text) = (std::mem::discriminant(e), e.to_string());
        let news = match &self.0 {
            Some(Err((was, said))) if *was == kind && *said == text => News::Nothing,
            Some(Err((was, _))) if *was == kind => News::Detail,
            _ => News::Cause,
        };
        self.0 = Some(Err((kind, text)));
        news
    }
}

/// Drops prefixes that another prefix in the list already covers, so each key is fetched once.
pub fn covering_prefixes<'a>(prefixes: impl IntoIterator<Item = &'a String>) -> Vec<String> {
    let mut sorted: Vec<&String> = prefixes.into_iter().collect();
    sorted.sort();
    sorted.dedup();
    let mut out: Vec<String> = Vec::new();
    for p in sorted {
        if !out.last().is_some_and(|last| p.starts_with(last.as_str())) {
            out.push(p.clone());
        }
    }
    out
}

/// How long a read keeps trying other members after one failed (a leader election takes
/// about a second).
const READ_RETRY_FOR: std::time::Duration = std::time::Duration::from_secs(5);
const READ_RETRY_PAUSE: std::time::Duration = std::time::Duration::from_millis(200);

pub enum Store {
    Etcd(Box<(etcd::Cluster, Option<etcd::EtcdStore>)>),
    File(file::FileStore),
}

impl Store {
    /// Connects (a member that serves, or an error naming each member's cause).
    pub async fn open(backend: &Backend) -> Result<Store, StoreError> {
        Ok(match backend {
            Backend::Etcd(cfg) => {
                let mut cluster = etcd::Cluster::new(cfg.clone());
                let conn = cluster.connect().await?;
                Store::Etcd(Box::new((cluster, Some(conn))))
            }
            Backend::File(paths) => Store::File(file::FileStore::new(paths.clone())),
        })
    }

    /// Reads every key under `prefixes` at one revision. A member that fails mid-read (it died,
    /// or its cluster is electing a leader) is left for another, for up to READ_RETRY_FOR.
    pub async fn snapshot(&mut self, prefixes: &[String]) -> Result<Snapshot, StoreError> {
        let prefixes = covering_prefixes(prefixes);
        let (cluster, conn) = match self {
            Store::File(s) => return s.snapshot(&prefixes),
            Store::Etcd(etcd) => &mut **etcd,
        };
        let deadline = tokio::time::Instant::now() + READ_RETRY_FOR;
        loop {
            let store = match conn {
                Some(store) => store,
                None => conn.insert(cluster.connect().await?),
            };
            match store.snapshot(&prefixes).await {
                Err(StoreError::Unreachable(e)) if tokio::time::Instant::now() < deadline => {
                    tracing::warn!("etcd unreachable: {e}; reading from another member");
                    *conn = None;
                    cluster.failed();
                    tokio::time::sleep(READ_RETRY_PAUSE).await;
                }
                result => return result,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_outage_is_news_once_per_kind_of_cause() {
        let refused = StoreError::Unreachable("a: Connection refused".into());
        let broken = StoreError::Unreachable("a: stream closed because of a broken pipe".into());
        let auth = StoreError::Auth {
            endpoint: "a".into(),
            user: "confd".into(),
            reason: "authentication failed".into(),
        };
        let mut r = Reported::default();
        assert_eq!(r.down(&broken), News::Cause);
        assert_eq!(r.down(&refused), News::Detail);
        assert_eq!(r.down(&refused), News::Nothing);
        assert_eq!(r.down(&auth), News::Cause);
        assert!(r.up() && !r.up() && r.is_up());
        assert_eq!(r.down(&auth), News::Cause);
    }

    #[test]
    fn covering_prefixes_drops_covered_ones() {
        let p: Vec<String> = ["/a/b", "/a", "/c", "/a", "/ab"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(covering_prefixes(&p), ["/a", "/c"]);
    }

    fn snap(pairs: &[(&str, &str)]) -> Snapshot {
        Snapshot::new(7, pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())))
    }

    #[test]
    fn keys_for_a_prefixed_resource_are_relative_and_limited_to_its_keys() {
        let s = snap(&[
            ("/prod/web/a", "1"),
            ("/prod/web/b", "2"),
            ("/prod/db/x", "3"),
            ("/other", "4"),
        ]);
        let (kvs, within) = s.keys_for("/prod", &["/prod/web".to_string()]);
        let keys: Vec<&str> = kvs.keys().map(String::as_str).collect();
        assert_eq!(keys, ["/web/a", "/web/b"]);
        assert_eq!(within, [""]);
        let (all, within) = s.keys_for("", &["/prod/web".to_string()]);
        assert!(Arc::ptr_eq(&all, &s.kvs), "shared, not copied");
        assert_eq!(within, ["/prod/web"]);
    }

    #[test]
    fn keys_that_are_not_clean_are_refused_never_cleaned_into_another_directory() {
        let mut s = snap(&[
            ("/search_PRE/10.0.0.1-80", "10.0.0.1:80"),
            ("/search_PRE/zz/../10.0.0.1-80", "6.6.6.7:80"),
            ("/search_PRE/../web_PRO/6.6.6.6-80", "6.6.6.6:80"),
            ("/search_PRE/./x", "1"),
            ("/search_PRE//y", "2"),
        ]);
        s.apply(
            8,
            vec![Change {
                key: "/search_PRE/z/".into(),
                value: Some("3".into()),
            }],
        );
        assert_eq!(
            s.kvs().iter().collect::<Vec<_>>(),
            [(
                &"/search_PRE/10.0.0.1-80".to_string(),
                &"10.0.0.1:80".to_string()
            )]
        );
    }
}
