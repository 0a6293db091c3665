//! Prometheus `/metrics`, `/healthz` and the `/status` view (JSON) for the daemon.

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
    /// In place, its server lists sent to nginx's balancer instead of a reload.
    Delivered,
    Unchanged,
    Failed {
        reason: &'a str,
        /// check_cmd refused the render (the previous file was kept).
        check: bool,
        /// reload_cmd failed (the file is in place).
        reload: bool,
    },
    /// The shrink guard holds the render back; `new`: the hold starts now.
    Held {
        reason: &'a str,
        new: bool,
    },
}

/// One unit as a pass saw it: what `/status` shows beside the outcome.
pub struct Seen<'a> {
    /// The unit: a resource, or `resource[dir]` of a fan-out resource.
    pub unit: &'a str,
    pub resource: &'a str,
    pub dest: Option<&'a std::path::Path>,
    pub keys_read: usize,
    pub dropped: usize,
    pub revision: i64,
}

/// A unit in the `/status` view.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct UnitStatus {
    pub unit: String,
    pub dest: String,
    /// RFC 3339, UTC.
    pub last_apply: String,
    pub result: String,
    pub last_error: Option<String>,
    pub last_success: Option<String>,
    pub keys_read: usize,
    pub dropped: usize,
    pub held: Option<String>,
    pub revision: i64,
}

/// The `/status` document.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct Status {
    pub store: String,
    pub revision: i64,
    pub units: Vec<UnitStatus>,
    /// Upstreams balanced by the Lua balancer (`dynamic`).
    #[serde(default)]
    pub upstreams: Vec<UpstreamStatus>,
}

/// A dynamic upstream in the `/status` view.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct UpstreamStatus {
    pub name: String,
    /// How its last change reached nginx: "dynamic" (the balancer, no reload) or "reload".
    pub path: String,
    /// RFC 3339, UTC.
    pub last_change: String,
    /// The version (etcd revision) of its file.
    pub version: i64,
    /// The balancer endpoint, and the version nginx's balancer holds as of the last resync.
    pub endpoint: String,
    pub nginx_version: Option<i64>,
    pub last_error: Option<String>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResourceLabel {
    resource: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EndpointLabel {
    endpoint: String,
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
    holds: Family<ResourceLabel, Counter>,
    held: Family<ResourceLabel, Gauge>,
    balancer_synced: Family<EndpointLabel, Gauge>,
    connected: Gauge,
    revision: Gauge,
    latency: Histogram,
    health: Mutex<Health>,
}

#[derive(Default)]
struct Health {
    store: Option<Result<(), String>>,
    /// The last error of every unit whose last apply failed (or that cannot run).
    failing: BTreeMap<String, String>,
    /// Units the shrink guard holds, and why.
    held: BTreeMap<String, String>,
    units: BTreeMap<String, UnitStatus>,
    upstreams: BTreeMap<String, UpstreamStatus>,
    revision: i64,
}

impl Default for Metrics {
    fn default() -> Metrics {
        Metrics::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let r = &mut Registry::with_prefix("confd");
        Metrics {
            renders: registered(r, "renders", "Templates rendered", Family::default()),
            applies: registered(
                r,
                "applies",
                "Resources processed, by result (updated, unchanged, failed, held)",
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
            holds: registered(
                r,
                "shrink_holds",
                "Renders the shrink guard held back (each hold counted once)",
                Family::default(),
            ),
            held: registered(
                r,
                "shrink_held",
                "Units of each resource the shrink guard holds now",
                Family::default(),
            ),
            balancer_synced: registered(
                r,
                "balancer_synced",
                "1 when the last resync with a Lua balancer endpoint (dynamic) succeeded",
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

    pub fn record(&self, seen: Seen, applied: Applied) {
        let label = ResourceLabel {
            resource: seen.resource.to_owned(),
        };
        self.renders.get_or_create(&label).inc();
        self.dropped
            .get_or_create(&label)
            .inc_by(seen.dropped as u64);
        let result = match &applied {
            Applied::Updated => "updated",
            Applied::Delivered => "delivered",
            Applied::Unchanged => "unchanged",
            Applied::Failed { .. } => "failed",
            Applied::Held { .. } => "held",
        };
        self.applies
            .get_or_create(&ApplyLabel {
                resource: seen.resource.to_owned(),
                result,
            })
            .inc();
        let now = SystemTime::now();
        let mut health = self.lock();
        let was_held = health.held.remove(seen.unit).is_some();
        let status = health.units.entry(seen.unit.to_owned()).or_default();
        status.unit = seen.unit.to_owned();
        status.dest = seen
            .dest
            .map(|d| d.display().to_string())
            .unwrap_or_default();
        status.last_apply = rfc3339(now);
        status.result = result.to_owned();
        status.keys_read = seen.keys_read;
        status.dropped = seen.dropped;
        status.revision = seen.revision;
        status.held = None;
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
                status.last_error = Some(reason.to_owned());
                health
                    .failing
                    .insert(seen.unit.to_owned(), reason.to_owned());
            }
            Applied::Held { reason, new } => {
                if new {
                    self.holds.get_or_create(&label).inc();
                }
                if !was_held {
                    self.held.get_or_create(&label).inc();
                }
                status.held = Some(reason.to_owned());
                health.held.insert(seen.unit.to_owned(), reason.to_owned());
                return;
            }
            Applied::Updated | Applied::Delivered | Applied::Unchanged => {
                let secs = now
                    .duration_since(SystemTime::UNIX_EPOCH)
                    .unwrap_or_default();
                self.last_success
                    .get_or_create(&label)
                    .set(secs.as_secs_f64());
                status.last_success = Some(rfc3339(now));
                status.last_error = None;
                health.failing.remove(seen.unit);
            }
        }
        if was_held {
            self.held.get_or_create(&label).dec();
        }
    }

    /// A dynamic upstream's change reached nginx by the balancer (`dynamic`: then nginx holds
    /// this version) or a reload (nginx's balancer learns it at the resync that follows).
    pub fn balanced(&self, name: &str, version: i64, dynamic: bool) {
        let mut h = self.lock();
        let u = h.upstreams.entry(name.to_owned()).or_default();
        u.name = name.to_owned();
        u.path = if dynamic { "dynamic" } else { "reload" }.to_owned();
        u.version = version;
        u.last_change = rfc3339(SystemTime::now());
        if dynamic {
            u.nginx_version = Some(version);
            u.last_error = None;
        }
    }

    /// A resync at a balancer endpoint of the files' sets (name, version): nginx holds them
    /// now, or the resync failed and what nginx holds is unknown.
    pub fn resynced(&self, endpoint: &str, sets: &[(String, i64)], result: Result<(), String>) {
        self.balancer_synced
            .get_or_create(&EndpointLabel {
                endpoint: endpoint.to_owned(),
            })
            .set(i64::from(result.is_ok()));
        let mut h = self.lock();
        for (name, version) in sets {
            let u = h.upstreams.entry(name.clone()).or_default();
            u.name.clone_from(name);
            u.version = *version;
            u.endpoint = endpoint.to_owned();
            u.nginx_version = result.as_ref().ok().map(|()| *version);
            u.last_error = result.as_ref().err().cloned();
        }
    }

    /// A resource that cannot run (bad conf.d file or template) is failing until it runs.
    pub fn cannot_run(&self, resource: &str, reason: &str) {
        self.lock()
            .failing
            .insert(resource.to_owned(), reason.to_owned());
    }

    /// Forgets units of resources that are no longer configured.
    pub fn retain(&self, resources: &[String]) {
        let keep = |unit: &String| {
            let resource = unit.split_once('[').map_or(unit.as_str(), |(r, _)| r);
            resources.iter().any(|r| r == resource)
        };
        let mut h = self.lock();
        h.failing.retain(|u, _| keep(u));
        h.held.retain(|u, _| keep(u));
        h.units.retain(|u, _| keep(u));
    }

    pub fn store(&self, state: Result<(), String>) {
        self.connected.set(i64::from(state.is_ok()));
        self.lock().store = Some(state);
    }

    pub fn revision(&self, revision: i64) {
        self.revision.set(revision);
        self.lock().revision = revision;
    }

    pub fn latency(&self, d: Duration) {
        self.latency.observe(d.as_secs_f64());
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Health> {
        self.health
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Healthy when the store answers and every unit's last apply succeeded; either way the
    /// text also names every unit the shrink guard holds (a hold is the guard working, not a
    /// failure: it is 200, and `confd_shrink_held` is there to alert on).
    fn health(&self) -> (bool, String) {
        let h = self.lock();
        let mut lines: Vec<String> = Vec::new();
        match &h.store {
            None => lines.push("no snapshot of the store yet".into()),
            Some(Err(e)) => lines.push(format!("store not connected: {e}")),
            Some(Ok(())) => {}
        }
        lines.extend(
            h.failing
                .iter()
                .map(|(unit, e)| format!("{unit}: last apply failed: {e}")),
        );
        let healthy = lines.is_empty();
        if healthy {
            lines.push("ok".into());
        }
        lines.extend(h.held.iter().map(|(unit, why)| format!("{unit}: {why}")));
        // One line per problem; a reason never spans lines.
        let text: Vec<String> = lines.iter().map(|l| l.replace('\n', " ")).collect();
        (healthy, text.join("\n") + "\n")
    }

    /// The `/status` view: every unit the daemon has applied, held or failed.
    pub fn status(&self) -> Status {
        let h = self.lock();
        let mut units: BTreeMap<String, UnitStatus> = h.units.clone();
        for (unit, reason) in &h.failing {
            let s = units.entry(unit.clone()).or_default();
            s.unit = unit.clone();
            if s.result.is_empty() {
                s.result = "cannot run".into();
            }
            s.last_error = Some(reason.clone());
        }
        Status {
            store: match &h.store {
                None => "no snapshot yet".into(),
                Some(Ok(())) => "connected".into(),
                Some(Err(e)) => format!("not connected: {e}"),
            },
            revision: h.revision,
            units: units.into_values().collect(),
            upstreams: h.upstreams.values().cloned().collect(),
        }
    }

    fn encode(&self) -> String {
        let mut out = String::new();
        match prometheus_client::encoding::text::encode(&mut out, &self.registry) {
            Ok(()) => out,
            Err(e) => format!("# encoding failed: {e}\n"),
        }
    }
}

/// `t` as RFC 3339 in UTC, to the second.
fn rfc3339(t: SystemTime) -> String {
    humantime::format_rfc3339_seconds(t).to_string()
}

fn registered<M: Metric + Clone>(registry: &mut Registry, name: &str, help: &str, metric: M) -> M {
    registry.register(name, help, metric.clone());
    metric
}

/// Binds `addr` (an error if it cannot) and serves /metrics and /healthz in the background.
pub async fn serve(addr: SocketAddr, metrics: Arc<Metrics>) -> std::io::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    tracing::info!(addr = %bound, "serving /metrics, /healthz and /status");
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
            (true, text) => (StatusCode::OK, "text/plain", text),
            (false, text) => (StatusCode::SERVICE_UNAVAILABLE, "text/plain", text),
        },
        "/status" => (
            StatusCode::OK,
            "application/json",
            serde_json::to_string_pretty(&metrics.status()).unwrap_or_default() + "\n",
        ),
        _ => (
            StatusCode::NOT_FOUND,
            "text/plain",
            "not found: try /metrics, /healthz or /status\n".to_owned(),
        ),
    };
    let mut resp = Response::new(Full::new(Bytes::from(body)));
    *resp.status_mut() = status;
    if let Ok(v) = hyper::header::HeaderValue::from_str(content_type) {
        resp.headers_mut().insert(hyper::header::CONTENT_TYPE, v);
    }
    resp
}
