//! Prometheus `/metrics` and `/healthz` for the daemon.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::{Request, Response, StatusCode};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::{Metric, Registry};

/// What became of one resource in a pass, as the metrics count it.
pub enum Applied<'a> {
    Updated,
    Unchanged,
    Failed {
        reason: &'a str,
        /// check_cmd refused the render (the previous file was kept).
        check: bool,
        /// reload_cmd failed (the file is in place).
        reload: bool,
    },
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResourceLabel {
    resource: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ApplyLabel {
    resource: String,
    result: &'static str,
}

pub struct Metrics {
    registry: Registry,
    renders: Family<ResourceLabel, Counter>,
    applies: Family<ApplyLabel, Counter>,
    check_failures: Family<ResourceLabel, Counter>,
    reload_failures: Family<ResourceLabel, Counter>,
    dropped: Family<ResourceLabel, Counter>,
    last_success: Family<ResourceLabel, Gauge<f64, AtomicU64>>,
    connected: Gauge,
    revision: Gauge,
    latency: Histogram,
    health: Mutex<Health>,
}

#[derive(Default)]
struct Health {
    store: Option<Result<(), String>>,
    /// The last error of every resource whose last apply failed.
    failing: BTreeMap<String, String>,
}

impl Metrics {
    pub fn new() -> Metrics {
        let r = &mut Registry::with_prefix("confd");
        Metrics {
            renders: registered(r, "renders", "Templates rendered", Family::default()),
            applies: registered(
                r,
                "applies",
                "Resources processed, by result (updated, unchanged, failed)",
                Family::default(),
            ),
            check_failures: registered(
                r,
                "check_failures",
                "check_cmd failures (previous file kept)",
                Family::default(),
            ),
            reload_failures: registered(
                r,
                "reload_failures",
                "reload_cmd failures",
                Family::default(),
            ),
            dropped: registered(
                r,
                "dropped_values",
                "Values left out of a render as invalid",
                Family::default(),
            ),
            last_success: registered(
                r,
                "last_successful_apply_timestamp_seconds",
                "When each resource was last applied successfully (Unix time)",
                Family::default(),
            ),
            connected: registered(
                r,
                "store_connected",
                "1 when the store answers",
                Gauge::default(),
            ),
            revision: registered(
                r,
                "watch_revision",
                "The store revision the daemon's view is at",
                Gauge::default(),
            ),
            latency: registered(
                r,
                "event_to_apply_seconds",
                "From a store change arriving to its apply finishing",
                Histogram::new(exponential_buckets(0.001, 2.0, 14)),
            ),
            health: Mutex::default(),
            registry: std::mem::take(r),
        }
    }

    pub fn record(&self, resource: &str, applied: Applied, dropped: usize) {
        let label = ResourceLabel {
            resource: resource.to_owned(),
        };
        self.renders.get_or_create(&label).inc();
        self.dropped.get_or_create(&label).inc_by(dropped as u64);
        let result = match &applied {
            Applied::Updated => "updated",
            Applied::Unchanged => "unchanged",
            Applied::Failed { .. } => "failed",
        };
        self.applies
            .get_or_create(&ApplyLabel {
                resource: resource.to_owned(),
                result,
            })
            .inc();
        let mut health = self.lock();
        match applied {
            Applied::Failed {
                reason,
                check,
                reload,
            } => {
                if check {
                    self.check_failures.get_or_create(&label).inc();
                }
                if reload {
                    self.reload_failures.get_or_create(&label).inc();
                }
                health
                    .failing
                    .insert(resource.to_owned(), reason.to_owned());
            }
            Applied::Updated | Applied::Unchanged => {
                let now = SystemTime::now()
                    .duration_since(SystemTime::UNIX_EPOCH)
                    .unwrap_or_default();
                self.last_success
                    .get_or_create(&label)
                    .set(now.as_secs_f64());
                health.failing.remove(resource);
            }
        }
    }

    /// A resource that cannot run (bad conf.d file or template) is failing until it runs.
    pub fn cannot_run(&self, resource: &str, reason: &str) {
        self.lock()
            .failing
            .insert(resource.to_owned(), reason.to_owned());
    }

    /// Forgets resources that are no longer configured.
    pub fn retain(&self, resources: &[String]) {
        self.lock().failing.retain(|r, _| resources.contains(r));
    }

    pub fn store(&self, state: Result<(), String>) {
        self.connected.set(i64::from(state.is_ok()));
        self.lock().store = Some(state);
    }

    pub fn revision(&self, revision: i64) {
        self.revision.set(revision);
    }

    pub fn latency(&self, d: Duration) {
        self.latency.observe(d.as_secs_f64());
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Health> {
        self.health
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Healthy when the store answers and every resource's last apply succeeded.
    fn health(&self) -> Result<(), String> {
        let h = self.lock();
        match &h.store {
            None => return Err("no snapshot of the store yet".into()),
            Some(Err(e)) => return Err(format!("store not connected: {e}")),
            Some(Ok(())) => {}
        }
        if h.failing.is_empty() {
            return Ok(());
        }
        let failing: Vec<String> = h
            .failing
            .iter()
            .map(|(resource, e)| format!("{resource}: last apply failed: {e}"))
            .collect();
        Err(failing.join("; "))
    }

    fn encode(&self) -> String {
        let mut out = String::new();
        match prometheus_client::encoding::text::encode(&mut out, &self.registry) {
            Ok(()) => out,
            Err(e) => format!("# encoding failed: {e}\n"),
        }
    }
}

fn registered<M: Metric + Clone>(registry: &mut Registry, name: &str, help: &str, metric: M) -> M {
    registry.register(name, help, metric.clone());
    metric
}

/// Binds `addr` (an error if it cannot) and serves /metrics and /healthz in the background.
pub async fn serve(addr: SocketAddr, metrics: Arc<Metrics>) -> std::io::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    tracing::info!(addr = %bound, "serving /metrics and /healthz");
    tokio::spawn(async move {
        loop {
            let stream = match listener.accept().await {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of file descriptors, say: wait rather than spin.
                    tracing::warn!("metrics: accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let metrics = metrics.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req| {
                    let metrics = metrics.clone();
                    async move { Ok::<_, Infallible>(respond(&req, &metrics)) }
                });
                let io = hyper_util::rt::TokioIo::new(stream);
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(io, service)
                    .await;
            });
        }
    });
    Ok(bound)
}

fn respond(req: &Request<hyper::body::Incoming>, metrics: &Metrics) -> Response<Full<Bytes>> {
    let (status, content_type, body) = match req.uri().path() {
        "/metrics" => (
            StatusCode::OK,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
            metrics.encode(),
        ),
        "/healthz" => match metrics.health() {
            Ok(()) => (StatusCode::OK, "text/plain", "ok\n".to_owned()),
            Err(reason) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "text/plain",
                format!("{}\n", reason.replace('\n', " ")),
            ),
        },
        _ => (
            StatusCode::NOT_FOUND,
            "text/plain",
            "not found: try /metrics or /healthz\n".to_owned(),
        ),
    };
    let mut resp = Response::new(Full::new(Bytes::from(body)));
    *resp.status_mut() = status;
    if let Ok(v) = hyper::header::HeaderValue::from_str(content_type) {
        resp.headers_mut().insert(hyper::header::CONTENT_TYPE, v);
    }
    resp
}
