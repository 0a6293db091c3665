//! etcd v3: one member at a time, failing over between them; every prefix read at one revision.
//!
//! etcd-client balances one channel over all endpoints and does not skip a dead one, so a
//! [`Cluster`] connects to each member on its own instead: the member that worked last is tried
//! first, the others after it, each with a short timeout; a member slow to answer gets the next
//! one tried beside it.

use std::sync::Arc;
use std::time::Duration;

use etcd_client::{
    Certificate, Client, ConnectOptions, GetOptions, Identity, KeyValue, KvClient, TlsOptions, Txn,
    TxnOp, TxnOpResponse, WatchClient, WatchOptions, WatchStream,
};

use super::{tls, Snapshot, StoreError};
use crate::config::{EtcdConfig, TlsFiles};

/// A member that has not served within this time gets the next one tried beside it: one that is
/// down without refusing (its host lost power, the process hangs) delays a run by this much, not
/// by its whole timeout. As happy eyeballs (RFC 8305) waits for a second address family.
const NEXT_MEMBER_AFTER: Duration = Duration::from_millis(250);
/// Members tried at once: when the cluster is merely slow (etcd checks a password with bcrypt,
/// tens of ms of CPU each), it gets at most twice the connects, never one per member.
const MEMBERS_AT_ONCE: usize = 2;
/// A member that does not accept a TCP connection within this time is skipped.
const MEMBER_CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// Connect, authenticate and one linearizable read: a member that cannot do all three within
/// this time (no leader, overloaded, blackholed) is skipped.
const MEMBER_TIMEOUT: Duration = Duration::from_secs(2);
/// Every other RPC but a snapshot's reads: a dead member is an error within this time, never a
/// hang.
const RPC_TIMEOUT: Duration = Duration::from_secs(5);
/// A snapshot's reads, the one kind of request whose answer has no size bound: etcd sends up to
/// 2 GiB in one response (840 MB took 7 s here on loopback; 2 GiB takes 17 s over 1 Gbit/s).
/// A member that stops sending is still left within 13 s, by the HTTP/2 pings, which start
/// when nothing has arrived for [`KEEPALIVE_INTERVAL`].
const SNAPSHOT_TIMEOUT: Duration = Duration::from_secs(60);
/// HTTP/2 pings: a member that stops answering without closing the connection (its host lost
/// power or network, or the process is frozen) is noticed within 13 s. etcd closes, on the third
/// ping, the connection of a client that pings more often than its --grpc-keepalive-min-time;
/// Go's gRPC clients (confd's, etcdctl's) never ping more often than every 10 s, so clusters
/// accept that. (Its reason, `too_many_pings`, reaches hyper's connection task, not our calls.)
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(10);
const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(3);
/// etcd sends up to 2 GiB (its gRPC send limit is MaxInt32); tonic would refuse anything over
/// 4 MiB, i.e. five 1 MiB values.
const MAX_MESSAGE: usize = i32::MAX as usize;
/// etcd's default --max-txn-ops: at most this many ranges ride in one transaction (fewer when
/// a member refuses that many).
const TXN_OPS: usize = 128;
/// Transactions of a snapshot in flight at once: enough to keep a few etcd cores busy, few
/// enough not to crowd out its other clients.
const TXNS_IN_FLIGHT: usize = 4;
// gRPC status codes (etcd-client does not re-export tonic's Code).
const GRPC_DEADLINE_EXCEEDED: i32 = 4;
const GRPC_NOT_FOUND: i32 = 5;
const GRPC_PERMISSION_DENIED: i32 = 7;
const GRPC_UNAVAILABLE: i32 = 14;
const GRPC_UNAUTHENTICATED: i32 = 16;

/// How tonic ends the message of a status it made from an HTTP answer that was not gRPC.
const HTTP_NOT_GRPC: &str = "while receiving response with status: ";

/// etcd's answer to a transaction of more operations than its --max-txn-ops.
const TOO_MANY_OPS: &str = "too many operations in txn request";

/// etcd's answer to an authentication request when auth is off.
const AUTH_NOT_ENABLED: &str = "authentication is not enabled";

/// How a permission error names the user when none was configured.
const NO_USER: &str = "(no user)";

/// The members of one etcd cluster, and which of them served last.
pub struct Cluster {
    cfg: Arc<EtcdConfig>,
    preferred: usize,
}

impl Cluster {
    pub fn new(cfg: EtcdConfig) -> Cluster {
        Cluster {
            cfg: Arc::new(cfg),
            preferred: 0,
        }
    }

    /// Connects to the first member that serves, starting with the one that served last. A
    /// member that fails is followed by the next at once; one that has not answered within
    /// [`NEXT_MEMBER_AFTER`] gets the next one tried beside it (never more than
    /// [`MEMBERS_AT_ONCE`]), and the first to serve wins (the others are dropped). The error
    /// names every member with its own cause, in that order. Wrong credentials, a missing
    /// permission or an unreadable TLS file are the same on every member, so they end the
    /// search; any other failure is the member's own (an address in `nodes` may not even be
    /// etcd: a wrong port).
    pub async fn connect(&mut self) -> Result<EtcdStore, StoreError> {
        let n = self.cfg.nodes.len();
        let order: Vec<usize> = (0..n).map(|i| (self.preferred + i) % n).collect();
        let mut causes: Vec<Option<String>> = vec![None; n];
        let mut tries = tokio::task::JoinSet::new();
        let mut started = 0;
        loop {
            if started < n && tries.len() < MEMBERS_AT_ONCE {
                let (cfg, k, at) = (self.cfg.clone(), started, order[started]);
                tries.spawn(async move { (k, connect_member(&cfg, &cfg.nodes[at]).await) });
                started += 1;
            }
            let joined = if started < n && tries.len() < MEMBERS_AT_ONCE {
                match tokio::time::timeout(NEXT_MEMBER_AFTER, tries.join_next()).await {
                    Ok(joined) => joined,
                    // Still no answer: the next member joins in.
                    Err(_) => continue,
                }
            } else {
                tries.join_next().await
            };
            let Some(joined) = joined else { break };
            let (k, result) = joined.map_err(|e| StoreError::Unreachable(e.to_string()))?;
            match result {
                Ok(store) => {
                    self.preferred = order[k];
                    return Ok(store);
                }
                // The same on every member: credentials, permissions, our own TLS files.
                Err(
                    e @ (StoreError::Auth { .. }
                    | StoreError::Denied { .. }
                    | StoreError::File { .. }),
                ) => return Err(e),
                Err(StoreError::Etcd { endpoint, reason }) => {
                    causes[k] = Some(format!("{endpoint}: {reason}"));
                }
                Err(StoreError::Unreachable(cause)) => causes[k] = Some(cause),
                Err(other) => causes[k] = Some(other.to_string()),
            }
        }
        let causes: Vec<String> = causes.into_iter().flatten().collect();
        Err(StoreError::Unreachable(causes.join("; ")))
    }

    /// The member that served last has failed: start with the next one.
    pub fn failed(&mut self) {
        self.preferred = (self.preferred + 1) % self.cfg.nodes.len().max(1);
    }
}

async fn connect_member(cfg: &EtcdConfig, endpoint: &str) -> Result<EtcdStore, StoreError> {
    let attempt = async {
        // Authenticates when a user is set; otherwise lazy, and the read below is the probe.
        let mut user = cfg.user.as_ref().map(|c| c.user.clone());
        let client = match Client::connect([endpoint], Some(options(cfg, true)?)).await {
            // etcd's own client goes on without credentials when auth is off; so does confd.
            Err(e) if user.is_some() && e.to_string().contains(AUTH_NOT_ENABLED) => {
                tracing::warn!(%endpoint, "etcd has authentication off: connecting without a user");
                user = None;
                Client::connect([endpoint], Some(options(cfg, false)?)).await
            }
            other => other,
        }
        .map_err(|e| classify(endpoint, user.as_deref(), e))?;
        let mut store = EtcdStore::new(client, endpoint, user);
        store.header().await?;
        Ok(store)
    };
    let result = tokio::time::timeout(MEMBER_TIMEOUT, attempt)
        .await
        .unwrap_or_else(|_| {
            Err(unreachable(
                endpoint,
                &format!("no answer within {MEMBER_TIMEOUT:?}"),
            ))
        });
    match result {
        Err(StoreError::Unreachable(cause)) if !refused_or_silent(&cause) => {
            let (at, files) = (endpoint.to_owned(), cfg.tls.clone());
            let diagnosis = tokio::task::spawn_blocking(move || tls::diagnose(&at, files.as_ref()))
                .await
                .ok()
                .flatten();
            Err(match diagnosis {
                Some(why) => unreachable(endpoint, &why),
                None => StoreError::Unreachable(cause),
            })
        }
        other => other,
    }
}

/// Causes that say nothing about TLS: nobody listens, or nobody answers.
fn refused_or_silent(cause: &str) -> bool {
    cause.contains("Connection refused") || cause.contains("no answer within")
}

/// A connection to one member.
pub struct EtcdStore {
    client: Client,
    kv: KvClient,
    watch: WatchClient,
    who: Who,
    /// Ranges per snapshot transaction: [`TXN_OPS`], halved while the member refuses that many.
    txn_ops: usize,
}

/// Whom a request went to, as errors name it.
struct Who {
    endpoint: String,
    user: Option<String>,
}

impl Who {
    /// One RPC, bounded by `limit` and classified.
    async fn bounded<T>(
        &self,
        limit: Duration,
        call: impl std::future::Future<Output = Result<T, etcd_client::Error>>,
    ) -> Result<T, StoreError> {
        tokio::time::timeout(limit, call)
            .await
            .map_err(|_| unreachable(&self.endpoint, &format!("no answer within {limit:?}")))?
            .map_err(|e| classify(&self.endpoint, self.user.as_deref(), e))
    }

    fn denied_reading(&self, prefix: &str) -> StoreError {
        StoreError::Denied {
            endpoint: self.endpoint.clone(),
            user: self.user.clone().unwrap_or_else(|| NO_USER.into()),
            what: format!("read keys under {prefix:?}"),
        }
    }

    /// Names the prefix in a permission error.
    fn denied(&self, err: StoreError, prefix: &str) -> StoreError {
        match err {
            StoreError::Denied { .. } => self.denied_reading(prefix),
            other => other,
        }
    }
}

impl EtcdStore {
    fn new(client: Client, endpoint: &str, user: Option<String>) -> EtcdStore {
        EtcdStore {
            kv: client.kv_client().max_decoding_message_size(MAX_MESSAGE),
            watch: client.watch_client().max_decoding_message_size(MAX_MESSAGE),
            client,
            who: Who {
                endpoint: endpoint.to_owned(),
                user,
            },
            txn_ops: TXN_OPS,
        }
    }

    /// Reads every prefix at one revision, with one range per prefix (each costs etcd exactly
    /// one read: no limit, so etcd 3.4 never walks the rest of a range for a page). One prefix
    /// is one range request, which fixes the revision. Several go as read-only transactions of
    /// up to [`TXN_OPS`] ranges, all at the revision an empty transaction reports, up to
    /// [`TXNS_IN_FLIGHT`] at a time (etcd serves concurrent reads on all its cores). That empty
    /// transaction is linearizable; the ranges are serializable, served by the member from what
    /// it has applied, which includes that revision (the same member reported it): on a follower
    /// each linearizable read would cost a round to the leader and a heartbeat to a quorum.
    pub async fn snapshot(&mut self, prefixes: &[String]) -> Result<Snapshot, StoreError> {
        match prefixes {
            [] => Ok(Snapshot::new(self.header().await?.revision, [])),
            [one] => {
                let opts = GetOptions::new().with_range(prefix_end(one));
                let get = self.kv.get(one.as_str(), Some(opts));
                let mut resp = self
                    .who
                    .bounded(SNAPSHOT_TIMEOUT, get)
                    .await
                    .map_err(|e| self.who.denied(e, one))?;
                let revision = resp.header().map_or(0, |h| h.revision());
                Ok(Snapshot::new(
                    revision,
                    resp.take_kvs().into_iter().map(pair),
                ))
            }
            many => self.snapshot_in_txns(many).await,
        }
    }

    async fn snapshot_in_txns(&mut self, prefixes: &[String]) -> Result<Snapshot, StoreError> {
        let revision = self.header().await?.revision;
        let asked = self.txn_ops;
        loop {
            match self.read_in_txns(prefixes, revision).await {
                // The cluster lowered --max-txn-ops: smaller transactions, at the same revision.
                Err(StoreError::Etcd { reason, .. })
                    if reason.contains(TOO_MANY_OPS) && self.txn_ops > 1 =>
                {
                    self.txn_ops /= 2;
                }
                Ok(snap) if self.txn_ops < asked => {
                    tracing::info!(
                        endpoint = %self.who.endpoint,
                        "etcd takes fewer than {asked} ranges per transaction \
                         (its --max-txn-ops): reading {} at a time",
                        self.txn_ops
                    );
                    return Ok(snap);
                }
                other => return other,
            }
        }
    }

    async fn read_in_txns(
        &mut self,
        prefixes: &[String],
        revision: i64,
    ) -> Result<Snapshot, StoreError> {
        let chunks: Vec<&[String]> = prefixes.chunks(self.txn_ops).collect();
        let mut parts: Vec<Vec<KeyValue>> = chunks.iter().map(|_| Vec::new()).collect();
        let mut reads = tokio::task::JoinSet::new();
        let mut next = 0;
        while next < chunks.len() || !reads.is_empty() {
            while next < chunks.len() && reads.len() < TXNS_IN_FLIGHT {
                let (kv, chunk, i) = (self.kv.clone(), chunks[next].to_vec(), next);
                reads.spawn(async move { (i, read_txn(kv, chunk, revision).await) });
                next += 1;
            }
            let Some(joined) = reads.join_next().await else {
                break;
            };
            let (i, result) =
                joined.map_err(|e| unreachable(&self.who.endpoint, &e.to_string()))?;
            let failed = match result {
                Ok(Ok(kvs)) => {
                    parts[i] = kvs;
                    continue;
                }
                Ok(Err(e)) => self.classify(e),
                Err(_) => unreachable(
                    &self.who.endpoint,
                    &format!("no answer within {SNAPSHOT_TIMEOUT:?}"),
                ),
            };
            return Err(self.which_denied(failed, chunks[i], revision).await);
        }
        Ok(Snapshot::new(
            revision,
            parts.into_iter().flatten().map(pair),
        ))
    }

    /// A transaction was refused: find the prefix it may not read, so the error can name it.
    async fn which_denied(&mut self, err: StoreError, prefixes: &[String], rev: i64) -> StoreError {
        if !matches!(err, StoreError::Denied { .. }) {
            return err;
        }
        for p in prefixes {
            let mut opts = GetOptions::new()
                .with_range(prefix_end(p))
                .with_keys_only()
                .with_limit(1);
            if rev > 0 {
                opts = opts.with_revision(rev);
            }
            let get = self.kv.get(p.as_str(), Some(opts));
            if let Err(StoreError::Denied { .. }) = self.who.bounded(RPC_TIMEOUT, get).await {
                return self.who.denied_reading(p);
            }
        }
        err
    }

    pub fn denied_reading(&self, prefix: &str) -> StoreError {
        self.who.denied_reading(prefix)
    }

    /// The store's current revision and cluster id: an empty read-only transaction, which is
    /// linearizable (so only a member with a leader answers) and needs no permission on any key.
    pub async fn header(&mut self) -> Result<Header, StoreError> {
        let txn = self.kv.txn(Txn::new());
        let resp = self.who.bounded(RPC_TIMEOUT, txn).await?;
        Ok(resp.header().map_or(Header::default(), |h| Header {
            revision: h.revision(),
            cluster_id: h.cluster_id(),
        }))
    }

    /// One watch stream carrying one watcher per prefix (sorted, non-overlapping), from
    /// revision `from`. Watcher `i` (etcd numbers them in creation order) watches `prefixes[i]`,
    /// so each needs read permission on its own prefix only.
    pub async fn watch(
        &mut self,
        prefixes: &[String],
        from: i64,
    ) -> Result<WatchStream, StoreError> {
        let opts = |p: &str| {
            WatchOptions::new()
                .with_range(prefix_end(p))
                .with_start_revision(from)
                .with_progress_notify()
        };
        let Some((first, rest)) = prefixes.split_first() else {
            return Err(StoreError::Etcd {
                endpoint: self.who.endpoint.clone(),
                reason: "nothing to watch".into(),
            });
        };
        let watch = self.watch.watch(first.as_str(), Some(opts(first)));
        let mut stream = self.who.bounded(RPC_TIMEOUT, watch).await?;
        for p in rest {
            let more = stream.watch(p.as_str(), Some(opts(p)));
            self.who.bounded(RPC_TIMEOUT, more).await?;
        }
        Ok(stream)
    }

    pub fn classify(&self, err: etcd_client::Error) -> StoreError {
        classify(&self.who.endpoint, self.who.user.as_deref(), err)
    }

    /// The underlying client, for what this store does not wrap (leases).
    pub fn client(&self) -> Client {
        self.client.clone()
    }

    pub fn endpoint(&self) -> &str {
        &self.who.endpoint
    }
}

/// One transaction of range reads at `revision`: every key under each of `prefixes`.
async fn read_txn(
    mut kv: KvClient,
    prefixes: Vec<String>,
    revision: i64,
) -> Result<Result<Vec<KeyValue>, etcd_client::Error>, tokio::time::error::Elapsed> {
    let ops = prefixes
        .iter()
        .map(|p| {
            let opts = GetOptions::new()
                .with_range(prefix_end(p))
                .with_revision(revision)
                .with_serializable();
            TxnOp::get(p.as_str(), Some(opts))
        })
        .collect::<Vec<_>>();
    let read = kv.txn(Txn::new().and_then(ops));
    tokio::time::timeout(SNAPSHOT_TIMEOUT, read).await.map(|r| {
        r.map(|resp| {
            resp.op_responses()
                .into_iter()
                .flat_map(|op| match op {
                    TxnOpResponse::Get(mut g) => g.take_kvs(),
                    _ => Vec::new(),
                })
                .collect()
        })
    })
}

fn pair(kv: KeyValue) -> (String, String) {
    let (k, v) = kv.into_key_value();
    (lossy(k), lossy(v))
}

fn lossy(bytes: Vec<u8>) -> String {
    String::from_utf8(bytes).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
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

/// How a member connects: bounded, pinging, leader required, with the user when `as_user`.
fn options(cfg: &EtcdConfig, as_user: bool) -> Result<ConnectOptions, StoreError> {
    let mut opts = ConnectOptions::new()
        .with_connect_timeout(MEMBER_CONNECT_TIMEOUT)
        // Only a backstop: every call has its own, shorter or equal, bound.
        .with_timeout(SNAPSHOT_TIMEOUT)
        .with_keep_alive(KEEPALIVE_INTERVAL, KEEPALIVE_TIMEOUT)
        // A member cut off from its cluster must fail our watch, not keep it silently stale.
        .with_require_leader(true)
        // An expired auth token is renewed, not the end of updates.
        .with_auto_token_refresh(true);
    if let Some(c) = cfg.user.as_ref().filter(|_| as_user) {
        // Only a password file can fail here: one deleted or emptied since the last connect.
        let password = c.password().map_err(|e| StoreError::File {
            path: "--password-file".into(),
            reason: e.to_string(),
        })?;
        opts = opts.with_user(c.user.clone(), password.expose());
    }
    if let Some(files) = &cfg.tls {
        opts = opts.with_tls(tls_options(files)?);
    }
    Ok(opts)
}

pub fn unreachable(endpoint: &str, reason: &str) -> StoreError {
    StoreError::Unreachable(format!("{endpoint}: {reason}"))
}

fn classify(endpoint: &str, user: Option<&str>, err: etcd_client::Error) -> StoreError {
    use etcd_client::Error as E;
    let status = match &err {
        // A status made from a broken connection ("connection closed") is transport, not etcd.
        E::GRpcStatus(s) if std::error::Error::source(s).is_none() => {
            Some((s.code() as i32, s.message().to_owned()))
        }
        _ => None,
    };
    let user = user.unwrap_or(NO_USER).to_owned();
    match status {
        None => match &err {
            E::LeaseKeepAliveError(m) if m.contains("lease not found") => StoreError::LeaseNotFound,
            E::InvalidArgs(_) | E::InvalidUri(_) | E::Utf8Error(_) | E::InvalidMetadataValue(_) => {
                StoreError::Etcd {
                    endpoint: endpoint.to_owned(),
                    reason: one_line(&err),
                }
            }
            _ => unreachable(endpoint, &one_line(&err)),
        },
        Some((GRPC_UNAVAILABLE | GRPC_DEADLINE_EXCEEDED, _)) => {
            unreachable(endpoint, &one_line(&err))
        }
        Some((GRPC_PERMISSION_DENIED, _)) => StoreError::Denied {
            endpoint: endpoint.to_owned(),
            user,
            what: "this request".into(),
        },
        Some((GRPC_UNAUTHENTICATED, message)) => StoreError::Auth {
            endpoint: endpoint.to_owned(),
            user,
            reason: message,
        },
        Some((_, message)) if message.contains("authentication failed") => StoreError::Auth {
            endpoint: endpoint.to_owned(),
            user,
            reason: message,
        },
        Some((GRPC_NOT_FOUND, message)) if message.contains("lease not found") => {
            StoreError::LeaseNotFound
        }
        // An answer in HTTP but not in gRPC: a web server or a proxy, at a wrong port.
        Some((_, message)) if message.contains(HTTP_NOT_GRPC) => StoreError::Etcd {
            endpoint: endpoint.to_owned(),
            reason: format!(
                "answers HTTP {}, not gRPC: not an etcd client URL",
                message.rsplit(HTTP_NOT_GRPC).next().unwrap_or_default()
            ),
        },
        Some(_) => StoreError::Etcd {
            endpoint: endpoint.to_owned(),
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
