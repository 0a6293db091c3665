//! etcd v3: consistent multi-prefix reads (every prefix at the revision of the first read).

use std::time::Duration;

use etcd_client::{
    Certificate, Client, ConnectOptions, GetOptions, Identity, TlsOptions, WatchOptions,
    WatchStream,
};

use super::{Snapshot, StoreError};
use crate::config::{EtcdConfig, TlsFiles};

/// Connecting is lazy in etcd-client; every RPC is bounded instead, so a dead etcd is an error
/// naming the endpoints within this time, never a hang.
const RPC_TIMEOUT: Duration = Duration::from_secs(5);
// gRPC status codes (etcd-client does not re-export tonic's Code).
const GRPC_DEADLINE_EXCEEDED: i32 = 4;
const GRPC_UNAVAILABLE: i32 = 14;
/// Keys per range request: well under gRPC's 4 MiB response cap even with long values.
const PAGE: i64 = 5_000;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

pub struct EtcdStore {
    client: Client,
    endpoints: String,
}

impl EtcdStore {
    pub async fn connect(cfg: &EtcdConfig) -> Result<EtcdStore, StoreError> {
        let endpoints = cfg.nodes.join(", ");
        let mut opts = ConnectOptions::new()
            .with_connect_timeout(CONNECT_TIMEOUT)
            .with_timeout(RPC_TIMEOUT)
            .with_keep_alive(Duration::from_secs(10), Duration::from_secs(5))
            // A member cut off from its cluster must fail our watch, not keep it silently stale.
            .with_require_leader(true)
            // An expired auth token is renewed, not the end of updates.
            .with_auto_token_refresh(true);
        if let Some((user, password)) = &cfg.user {
            opts = opts.with_user(user.clone(), password.clone());
        }
        if let Some(tls) = &cfg.tls {
            opts = opts.with_tls(tls_options(tls)?);
        }
        let connect = Client::connect(&cfg.nodes, Some(opts));
        let client = tokio::time::timeout(RPC_TIMEOUT, connect)
            .await
            .map_err(|_| unreachable(&endpoints, "timed out connecting"))?
            .map_err(|e| classify(&endpoints, e))?;
        Ok(EtcdStore { client, endpoints })
    }

    /// Reads every prefix at one revision: the first read fixes it, the others ask for it.
    pub async fn snapshot(&mut self, prefixes: &[String]) -> Result<Snapshot, StoreError> {
        let mut snap = Snapshot::default();
        for prefix in prefixes {
            self.read_prefix(prefix, &mut snap).await?;
        }
        if prefixes.is_empty() {
            snap.revision = self.current_revision().await?;
        }
        Ok(snap)
    }

    /// Reads one prefix into `snap` in pages (a single response is capped at 4 MiB by gRPC), all
    /// at `snap.revision` once the first page has fixed it.
    async fn read_prefix(&mut self, prefix: &str, snap: &mut Snapshot) -> Result<(), StoreError> {
        let end = prefix_end(prefix);
        let mut from = prefix.as_bytes().to_vec();
        loop {
            let mut opts = GetOptions::new().with_range(end.clone()).with_limit(PAGE);
            if snap.revision > 0 {
                opts = opts.with_revision(snap.revision);
            }
            let get = self.client.get(from.clone(), Some(opts));
            let resp = tokio::time::timeout(RPC_TIMEOUT, get)
                .await
                .map_err(|_| unreachable(&self.endpoints, "timed out reading keys"))?
                .map_err(|e| classify(&self.endpoints, e))?;
            if snap.revision == 0 {
                snap.revision = resp.header().map_or(0, |h| h.revision());
            }
            for kv in resp.kvs() {
                let key = String::from_utf8_lossy(kv.key()).into_owned();
                snap.kvs
                    .insert(key, String::from_utf8_lossy(kv.value()).into_owned());
            }
            match resp.kvs().last() {
                Some(last) if resp.more() => {
                    from = last.key().to_vec();
                    from.push(0); // the next key after `last`
                }
                _ => return Ok(()),
            }
        }
    }

    async fn current_revision(&mut self) -> Result<i64, StoreError> {
        Ok(self.header().await?.revision)
    }

    /// The store's current revision and cluster id, from the cheapest request there is.
    pub async fn header(&mut self) -> Result<Header, StoreError> {
        let opts = GetOptions::new().with_count_only();
        let get = self.client.get("/", Some(opts));
        let resp = tokio::time::timeout(RPC_TIMEOUT, get)
            .await
            .map_err(|_| unreachable(&self.endpoints, "timed out"))?
            .map_err(|e| classify(&self.endpoints, e))?;
        Ok(resp.header().map_or(Header::default(), |h| Header {
            revision: h.revision(),
            cluster_id: h.cluster_id(),
        }))
    }

    /// One watch over the key range spanning `prefixes` (sorted, non-overlapping), from
    /// revision `from`: one stream keeps events in revision order across all prefixes.
    pub async fn watch(
        &mut self,
        prefixes: &[String],
        from: i64,
    ) -> Result<WatchStream, StoreError> {
        let (Some(first), Some(last)) = (prefixes.first(), prefixes.last()) else {
            return Err(StoreError::Etcd {
                endpoints: self.endpoints.clone(),
                reason: "nothing to watch".into(),
            });
        };
        let opts = WatchOptions::new()
            .with_range(prefix_end(last))
            .with_start_revision(from)
            .with_progress_notify();
        let watch = self.client.watch(first.as_str(), Some(opts));
        tokio::time::timeout(RPC_TIMEOUT, watch)
            .await
            .map_err(|_| unreachable(&self.endpoints, "timed out starting a watch"))?
            .map_err(|e| classify(&self.endpoints, e))
    }

    /// The underlying client, for what this store does not wrap (leases).
    pub fn client(&self) -> Client {
        self.client.clone()
    }

    pub fn endpoints(&self) -> &str {
        &self.endpoints
    }
}

/// What a response header tells about the store itself.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Header {
    pub revision: i64,
    pub cluster_id: u64,
}

/// The end of etcd's prefix range: the prefix with its last byte incremented.
fn prefix_end(prefix: &str) -> Vec<u8> {
    let mut end = prefix.as_bytes().to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0] // every key
}

fn tls_options(files: &TlsFiles) -> Result<TlsOptions, StoreError> {
    let read = |p: &std::path::Path| {
        std::fs::read(p).map_err(|e| StoreError::File {
            path: p.display().to_string(),
            reason: e.to_string(),
        })
    };
    let mut tls = TlsOptions::new();
    if let Some(ca) = &files.ca {
        tls = tls.ca_certificate(Certificate::from_pem(read(ca)?));
    }
    if let (Some(cert), Some(key)) = (&files.cert, &files.key) {
        tls = tls.identity(Identity::from_pem(read(cert)?, read(key)?));
    }
    Ok(tls)
}

pub fn unreachable(endpoints: &str, reason: &str) -> StoreError {
    StoreError::Unreachable {
        endpoints: endpoints.to_owned(),
        reason: reason.to_owned(),
    }
}

pub fn classify(endpoints: &str, err: etcd_client::Error) -> StoreError {
    use etcd_client::Error as E;
    match &err {
        E::TransportError(_) | E::IoError(_) => unreachable(endpoints, &one_line(&err)),
        E::GRpcStatus(s)
            if matches!(s.code() as i32, GRPC_UNAVAILABLE | GRPC_DEADLINE_EXCEEDED) =>
        {
            unreachable(endpoints, &one_line(&err))
        }
        _ => StoreError::Etcd {
            endpoints: endpoints.to_owned(),
            reason: one_line(&err),
        },
    }
}

/// The innermost cause says it best ("Connection refused"); gRPC wrappers repeat it at length.
/// The error contract is one line.
fn one_line(err: &etcd_client::Error) -> String {
    let text = match err {
        etcd_client::Error::GRpcStatus(status) => {
            let mut cause = std::error::Error::source(status);
            let mut innermost = None;
            while let Some(c) = cause {
                innermost = Some(c.to_string());
                cause = c.source();
            }
            innermost.unwrap_or_else(|| format!("{:?}: {}", status.code(), status.message()))
        }
        other => other.to_string(),
    };
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}
