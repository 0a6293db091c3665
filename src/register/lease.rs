//! The key on a lease: granted and put once healthy, kept alive well inside the TTL, granted and
//! put again when the lease was lost (etcd outage longer than the TTL, etcd rebuilt), revoked on
//! the way out so the key disappears at once. Every state change is logged once.

use std::time::Duration;

use etcd_client::{LeaseKeepAliveStream, LeaseKeeper, PutOptions};

use super::spec::Spec;
use crate::config::EtcdConfig;
use crate::store::etcd::{unreachable, Cluster, EtcdStore};
use crate::store::{News, Reported, StoreError};

/// Each lease call is bounded tighter than the store's RPCs: a keep-alive that waits longer
/// risks the TTL, and SIGTERM's revoke should not hold the instance's exit.
const RPC_TIMEOUT: Duration = Duration::from_secs(2);
const RETRY: Duration = Duration::from_millis(500);

pub struct Registration {
    cluster: Cluster,
    /// The member we talk to; None until reached, and again after it failed.
    store: Option<EtcdStore>,
    key: String,
    value: String,
    ttl: i64,
    /// A lease granted for the key, whether or not the put that follows has landed yet, so
    /// that deregistering revokes it either way.
    granted: Option<i64>,
    /// The lease the key was put with: registered.
    lease: Option<i64>,
    keeper: Option<(LeaseKeeper, LeaseKeepAliveStream)>,
    /// Whether the last attempt worked, and if not, why (as logged).
    reported: Reported,
}

impl Registration {
    /// Nothing is contacted yet: etcd is reached by [`reach`](Self::reach) or the first
    /// [`maintain`](Self::maintain).
    pub fn new(cfg: &EtcdConfig, spec: &Spec, ttl: i64) -> Registration {
        Registration {
            cluster: Cluster::new(cfg.clone()),
            store: None,
            key: spec.key.clone(),
            value: spec.value.clone(),
            ttl,
            granted: None,
            lease: None,
            keeper: None,
            reported: Reported::default(),
        }
    }

    /// Connects to a member that serves, or says why none does.
    pub async fn reach(&mut self) -> Result<&mut EtcdStore, StoreError> {
        let store = match self.store.take() {
            Some(store) => store,
            None => self.cluster.connect().await?,
        };
        Ok(self.store.insert(store))
    }

    /// Retries [`reach`](Self::reach) until a member serves; each new kind of failure logged.
    pub async fn wait_until_reachable(&mut self) {
        let mut reported = Reported::default();
        while let Err(e) = self.reach().await {
            if reported.down(&e) == News::Cause {
                tracing::warn!("{e}; waiting for etcd (--wait-for-etcd)");
            }
            tokio::time::sleep(RETRY).await;
        }
    }

    pub fn is_registered(&self) -> bool {
        self.lease.is_some()
    }

    /// When to call `maintain` again: a third of the TTL while things work, sooner while not.
    pub fn next_tick(&self) -> Duration {
        if self.reported.is_up() {
            Duration::from_millis((self.ttl as u64 * 1000 / 3).max(200))
        } else {
            RETRY
        }
    }

    /// Registers, or keeps the registration alive. Safe to cancel at any await: a lease granted
    /// is remembered before the put, so it is revoked (or expires) either way.
    pub async fn maintain(&mut self) {
        let result = match self.lease {
            None => self.grant_and_put().await,
            Some(id) => self.keep_alive(id).await,
        };
        match result {
            Ok(()) => {
                if self.reported.up() {
                    tracing::info!(key = %self.key, value = %self.value, ttl = self.ttl, "registered");
                }
            }
            Err(e) => {
                if self.reported.down(&e) == News::Cause {
                    tracing::error!(
                        "{e}; the instance runs, and is registered once etcd is reachable"
                    );
                }
                self.keeper = None;
                if matches!(e, StoreError::Unreachable(_)) {
                    // Another member may serve: the next attempt connects afresh.
                    self.store = None;
                    self.cluster.failed();
                }
            }
        }
    }

    async fn grant_and_put(&mut self) -> Result<(), StoreError> {
        let ttl = self.ttl;
        let id = match self.granted {
            Some(id) => id,
            None => {
                let store = self.reach().await?;
                let mut client = store.client();
                let grant = bounded(store, client.lease_grant(ttl, None)).await?;
                self.granted = Some(grant.id());
                grant.id()
            }
        };
        let (key, value) = (self.key.clone(), self.value.clone());
        let store = self.reach().await?;
        let mut client = store.client();
        let put = client.put(key.as_str(), value, Some(PutOptions::new().with_lease(id)));
        match bounded(store, put).await {
            Ok(_) => {
                self.lease = Some(id);
                Ok(())
            }
            Err(StoreError::LeaseNotFound) => {
                self.granted = None;
                Err(StoreError::LeaseNotFound)
            }
            Err(StoreError::Denied { endpoint, user, .. }) => Err(StoreError::Denied {
                endpoint,
                user,
                what: format!("write {key:?}"),
            }),
            Err(e) => Err(e),
        }
    }

    /// Renews the lease. A lost lease (expired during an outage, or etcd rebuilt) answers ttl 0
    /// on a live stream, or "lease not found" when the stream is new: start over with a new one.
    async fn keep_alive(&mut self, id: i64) -> Result<(), StoreError> {
        match self.renew(id).await {
            Ok(true) => Ok(()),
            Ok(false) | Err(StoreError::LeaseNotFound) => {
                tracing::warn!(key = %self.key, "lease lost; registering again");
                self.lease = None;
                self.granted = None;
                self.keeper = None;
                self.grant_and_put().await
            }
            Err(e) => Err(e),
        }
    }

    /// Whether the lease is still alive after one keep-alive round trip.
    async fn renew(&mut self, id: i64) -> Result<bool, StoreError> {
        self.reach().await?;
        let Some(store) = &self.store else {
            return Ok(false);
        };
        if self.keeper.is_none() {
            let mut client = store.client();
            self.keeper = Some(bounded(store, client.lease_keep_alive(id)).await?);
        }
        let Some((keeper, stream)) = &mut self.keeper else {
            return Ok(false);
        };
        let round_trip = async {
            keeper.keep_alive().await?;
            stream.message().await
        };
        let resp = bounded(store, round_trip).await?;
        Ok(resp.is_some_and(|r| r.ttl() > 0))
    }

    /// Revokes the lease: the key is deleted at once. If etcd cannot be reached it expires
    /// with the lease within the TTL.
    pub async fn deregister(&mut self) {
        self.keeper = None;
        self.lease = None;
        let Some(id) = self.granted.take() else {
            return;
        };
        let Some(store) = &self.store else {
            tracing::warn!(key = %self.key, ttl = self.ttl, "etcd unreachable; the key expires with its lease");
            return;
        };
        let mut client = store.client();
        match bounded(store, client.lease_revoke(id)).await {
            Ok(_) => tracing::info!(key = %self.key, "deregistered"),
            Err(e) => {
                tracing::warn!(key = %self.key, ttl = self.ttl, "{e}; the key expires with its lease")
            }
        }
    }
}

/// One lease call, bounded by [`RPC_TIMEOUT`].
async fn bounded<T>(
    store: &EtcdStore,
    call: impl std::future::Future<Output = Result<T, etcd_client::Error>>,
) -> Result<T, StoreError> {
    tokio::time::timeout(RPC_TIMEOUT, call)
        .await
        .map_err(|_| {
            unreachable(
                store.endpoint(),
                &format!("no answer within {RPC_TIMEOUT:?}"),
            )
        })?
        .map_err(|e| store.classify(e))
}
