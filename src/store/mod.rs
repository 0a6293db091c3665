//! Where keys come from: etcd v3 or key files. Every read is a [`Snapshot`] at one revision.

pub mod etcd;
pub mod file;
pub mod keypath;
pub mod watch;

use std::collections::BTreeMap;
use std::ops::Bound;

use crate::config::Backend;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("etcd unreachable at {endpoints}: {reason}")]
    Unreachable { endpoints: String, reason: String },
    #[error("etcd at {endpoints}: {reason}")]
    Etcd { endpoints: String, reason: String },
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
    /// effective `prefix` (as confd's template store does).
    pub fn view(&self, prefix: &str, keys: &[String]) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        for key_prefix in keys {
            for (k, v) in self
                .kvs
                .range::<str, _>((Bound::Included(key_prefix.as_str()), Bound::Unbounded))
            {
                if !k.starts_with(key_prefix.as_str()) {
                    break;
                }
                out.insert(keypath::relative(k, prefix), v.clone());
            }
        }
        out
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
            Backend::Etcd(cfg) => Store::Etcd(Box::new(etcd::EtcdStore::connect(cfg).await?)),
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
        let view = snap.view("/prod", &["/prod/web".to_string()]);
        let keys: Vec<&str> = view.keys().map(String::as_str).collect();
        assert_eq!(keys, ["/web/a", "/web/b"]);
    }
}
