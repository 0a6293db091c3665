//! The key on a lease: granted and put once healthy, kept alive well inside the TTL, granted and
//! put again when the lease was lost (etcd outage longer than the TTL, etcd rebuilt), revoked on
//! the way out so the key disappears at once. Every state change is logged once.

use std::time::Duration;

use etcd_client::{Client, LeaseKeepAliveStream, LeaseKeeper, PutOptions};

use super::spec::Spec;
use crate::config::EtcdConfig;
use crate::store::etcd::{classify, unreachable, EtcdStore};
use crate::store::StoreError;

const RPC_TIMEOUT: Duration = Duration::from_secs(2);
const RETRY: Duration = Duration::from_millis(500);

pub struct Registration {
    client: Client,
    endpoints: String,
    key: String,
    value: String,
    ttl: i64,
    lease: Option<i64>,
    keeper: Option<(LeaseKeeper, LeaseKeepAliveStream)>,
    /// Whether the last attempt worked; None before the first.
    up: Option<bool>,
}

impl Registration {
    /// Connects and checks that etcd answers (a bounded error otherwise), or with `wait` keeps
    /// retrying until it does.
    pub async fn connect(
        cfg: &EtcdConfig,
        spec: &Spec,
        ttl: i64,
        wait: bool,
    ) -> Result<Registration, StoreError> {
        let mut logged = false;
        let store = loop {
            let attempt = async {
                let mut store = EtcdStore::connect(cfg).await?;
                store.header().await?;
                Ok::<_, StoreError>(store)
            };
            match attempt.await {
                Ok(store) => break store,
                Err(e) if wait => {
                    if !logged {
                        tracing::warn!("{e}; waiting for etcd (--wait-for-etcd)");
                        logged = true;
                    }
                    tokio::time::sleep(RETRY).await;
                }
                Err(e) => return Err(e),
            }
        };
        Ok(Registration {
            client: store.client(),
            endpoints: store.endpoints().to_owned(),
            key: spec.key.clone(),
            value: spec.value.clone(),
            ttl,
            lease: None,
            keeper: None,
            up: None,
        })
    }

    pub fn is_registered(&self) -> bool {
        self.lease.is_some()
    }

    /// When to call `maintain` again: a third of the TTL while things work, sooner while not.
    pub fn next_tick(&self) -> Duration {
        match self.up {
            Some(true) => Duration::from_millis((self.ttl as u64 * 1000 / 3).max(200)),
            _ => RETRY,
        }
    }

    /// Registers, or keeps the registration alive.
    pub async fn maintain(&mut self) {
        let result = match self.lease {
            None => self.grant_and_put().await,
            Some(id) => self.keep_alive(id).await,
        };
        match result {
            Ok(()) if self.up != Some(true) => {
                tracing::info!(key = %self.key, value = %self.value, ttl = self.ttl, "registered");
                self.up = Some(true);
            }
            Ok(()) => {}
            Err(e) => {
                if self.up != Some(false) {
                    tracing::error!("{e}; retrying");
                    self.up = Some(false);
                }
                self.keeper = None;
            }
        }
    }

    async fn grant_and_put(&mut self) -> Result<(), StoreError> {
        let grant = bounded(&self.endpoints, self.client.lease_grant(self.ttl, None)).await?;
        let id = grant.id();
        let opts = PutOptions::new().with_lease(id);
        bounded(
            &self.endpoints,
            self.client
                .put(self.key.as_str(), self.value.as_str(), Some(opts)),
        )
        .await?;
        self.lease = Some(id);
        Ok(())
    }

    /// Renews the lease. A lost lease (expired during an outage, or etcd rebuilt) answers ttl 0
    /// on a live stream, or "lease not found" when the stream is new: start over with a new one.
    async fn keep_alive(&mut self, id: i64) -> Result<(), StoreError> {
        match self.renew(id).await {
            Ok(true) => Ok(()),
            Ok(false) | Err(StoreError::Etcd { .. }) => {
                tracing::warn!(key = %self.key, "lease lost; registering again");
                self.lease = None;
                self.keeper = None;
                self.grant_and_put().await
            }
            Err(e) => Err(e),
        }
    }

    /// Whether the lease is still alive after one keep-alive round trip.
    async fn renew(&mut self, id: i64) -> Result<bool, StoreError> {
        if self.keeper.is_none() {
            self.keeper = Some(bounded(&self.endpoints, self.client.lease_keep_alive(id)).await?);
        }
        let Some((keeper, stream)) = &mut self.keeper else {
            return Ok(false);
        };
        let round_trip = async {
            keeper.keep_alive().await?;
            stream.message().await
        };
        let resp = bounded(&self.endpoints, round_trip).await?;
        Ok(resp.is_some_and(|r| r.ttl() > 0))
    }

    /// Revokes the lease: the key is deleted at once. If etcd cannot be reached it expires
    /// with the lease within the TTL.
    pub async fn deregister(&mut self) {
        self.keeper = None;
        let Some(id) = self.lease.take() else { return };
        match bounded(&self.endpoints, self.client.lease_revoke(id)).await {
            Ok(_) => tracing::info!(key = %self.key, "deregistered"),
            Err(e) => {
                tracing::warn!(key = %self.key, ttl = self.ttl, "{e}; the key expires with its lease")
            }
        }
    }
}

/// One etcd call, bounded: an unreachable etcd is an error within RPC_TIMEOUT, never a hang.
async fn bounded<T>(
    endpoints: &str,
    call: impl std::future::Future<Output = Result<T, etcd_client::Error>>,
) -> Result<T, StoreError> {
    tokio::time::timeout(RPC_TIMEOUT, call)
        .await
        .map_err(|_| unreachable(endpoints, "timed out"))?
        .map_err(|e| classify(endpoints, e))
}
