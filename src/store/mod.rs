//! Where keys come from: etcd v3 or key files. Every read is a [`Snapshot`] at one revision.

pub mod etcd;
pub mod file;
pub mod keypath;
mod tls;
pub mod watch;

use std::collections::BTreeMap;
use std::ops::Bound;

use crate::config::Backend;

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
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    pub revision: i64,
    pub kvs: BTreeMap<String, String>,
}

impl Snapshot {
    /// The keys one resource sees: those under its `keys` prefixes, named relative to its
    /// effective `prefix` (as confd's template store does), and the keys it refuses.
    ///
    /// Keys are taken as written: one whose path is not clean (`..`, `.`, `//`, a trailing `/`)
    /// is refused, never cleaned, since cleaning `/a_PRE/../b_PRE/x` would let a writer confined
    /// to `/a_PRE/` put a server into `b_PRE`'s upstream.
    pub fn view(&self, prefix: &str, keys: &[String]) -> (BTreeMap<String, String>, Vec<String>) {
        let mut out = BTreeMap::new();
        let mut refused = Vec::new();
        for key_prefix in keys {
            for (k, v) in self
                .kvs
                .range::<str, _>((Bound::Included(key_prefix.as_str()), Bound::Unbounded))
            {
                if !k.starts_with(key_prefix.as_str()) {
                    break;
                }
                if keypath::clean(k) != *k {
                    refused.push(k.clone());
                    continue;
                }
                out.insert(keypath::relative(k, prefix), v.clone());
            }
        }
        (out, refused)
    }
}

impl Snapshot {
    /// Applies watched changes: the result is the store as it was at `revision`.
    pub fn apply(&mut self, revision: i64, changes: Vec<crate::event::Change>) {
        for c in changes {
            match c.value {
                Some(v) => self.kvs.insert(c.key, v),
                None => self.kvs.remove(&c.key),
            };
        }
        self.revision = self.revision.max(revision);
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

pub enum Store {
    Etcd(Box<etcd::EtcdStore>),
    File(file::FileStore),
}

impl Store {
    pub async fn open(backend: &Backend) -> Result<Store, StoreError> {
        Ok(match backend {
            Backend::Etcd(cfg) => {
                Store::Etcd(Box::new(etcd::Cluster::new(cfg.clone()).connect().await?))
            }
            Backend::File(paths) => Store::File(file::FileStore::new(paths.clone())),
        })
    }

    /// Reads every key under `prefixes` at one revision.
    pub async fn snapshot(&mut self, prefixes: &[String]) -> Result<Snapshot, StoreError> {
        let prefixes = covering_prefixes(prefixes);
        match self {
            Store::Etcd(s) => s.snapshot(&prefixes).await,
            Store::File(s) => s.snapshot(&prefixes),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn covering_prefixes_drops_covered_ones() {
        let p: Vec<String> = ["/a/b", "/a", "/c", "/a", "/ab"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(covering_prefixes(&p), ["/a", "/c"]);
    }

    #[test]
    fn view_is_relative_to_the_prefix_and_limited_to_keys() {
        let snap = Snapshot {
            revision: 7,
            kvs: [
                ("/prod/web/a", "1"),
                ("/prod/web/b", "2"),
                ("/prod/db/x", "3"),
                ("/other", "4"),
            ]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        };
        let (view, _) = snap.view("/prod", &["/prod/web".to_string()]);
        let keys: Vec<&str> = view.keys().map(String::as_str).collect();
        assert_eq!(keys, ["/web/a", "/web/b"]);
    }

    #[test]
    fn keys_that_are_not_clean_are_refused_never_cleaned_into_another_directory() {
        let snap = Snapshot {
            revision: 1,
            kvs: [
                ("/search_PRE/10.0.0.1-80", "10.0.0.1:80"),
                ("/search_PRE/zz/../10.0.0.1-80", "6.6.6.7:80"),
                ("/search_PRE/../web_PRO/6.6.6.6-80", "6.6.6.6:80"),
                ("/search_PRE/./x", "1"),
                ("/search_PRE//y", "2"),
                ("/search_PRE/z/", "3"),
            ]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        };
        let (view, refused) = snap.view("", &["/search_PRE".to_string()]);
        assert_eq!(
            view.into_iter().collect::<Vec<_>>(),
            [(
                "/search_PRE/10.0.0.1-80".to_string(),
                "10.0.0.1:80".to_string()
            )]
        );
        assert_eq!(refused.len(), 5, "{refused:?}");
    }
}
