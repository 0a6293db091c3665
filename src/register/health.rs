//! Health gating: register only once the instance answers, deregister after `--health-fails`
//! consecutive failures, register again on recovery.

use std::time::Duration;

use http_body_util::Empty;
use hyper::body::Bytes;
use hyper::{Request, Uri};

use super::spec::Spec;
use super::RegisterError;
use crate::cli::RegisterArgs;
use crate::command;

enum Check {
    Http(Uri),
    Cmd(String),
}

pub struct Health {
    check: Option<Check>,
    fails_needed: u32,
    fails: u32,
    healthy: bool,
    /// The wait for the first pass was logged at info (once: later failures go to debug).
    waiting_logged: bool,
    interval: Duration,
    timeout: Duration,
}

impl Health {
    pub fn new(args: &RegisterArgs, spec: &Spec) -> Result<Health, RegisterError> {
        let check = match (&args.health_http, &args.health_cmd) {
            (Some(url), _) => Some(Check::Http(http_uri(url, spec)?)),
            (None, Some(cmd)) => Some(Check::Cmd(cmd.clone())),
            (None, None) => None,
        };
        let secs = |flag, v| super::seconds(flag, v, super::Zero::Refused);
        Ok(Health {
            healthy: check.is_none(),
            check,
            fails_needed: args.health_fails,
            fails: 0,
            waiting_logged: false,
            interval: secs("--health-interval", args.health_interval)?,
            timeout: secs("--health-timeout", args.health_timeout)?,
        })
    }

    pub fn is_checked(&self) -> bool {
        self.check.is_some()
    }

    pub fn is_healthy(&self) -> bool {
        self.healthy
    }

    pub fn interval(&self) -> Duration {
        self.interval
    }

    /// Runs the check once and returns whether the instance should be registered now.
    pub async fn probe(&mut self) -> bool {
        let result = match &self.check {
            None => Ok(()),
            Some(Check::Http(uri)) => http_ok(uri, self.timeout).await,
            Some(Check::Cmd(cmd)) => command::run(cmd, self.timeout)
                .await
                .map_err(|e| e.to_string()),
        };
        match result {
            Ok(()) => {
                self.fails = 0;
                if !self.healthy {
                    tracing::info!("instance healthy");
                    self.healthy = true;
                    self.waiting_logged = false;
                }
            }
            Err(reason) => {
                self.fails += 1;
                if self.healthy && self.fails >= self.fails_needed {
                    tracing::warn!(failures = self.fails, "instance unhealthy: {reason}");
                    self.healthy = false;
                } else if !self.healthy && !self.waiting_logged {
                    tracing::info!(
                        "health check failed: {reason}; registration waits until it passes"
                    );
                    self.waiting_logged = true;
                } else {
                    tracing::debug!(failures = self.fails, "health check failed: {reason}");
                }
            }
        }
        self.healthy
    }
}

/// A full `http://host:port/path` URL, or a path on the instance's own address.
fn http_uri(url: &str, spec: &Spec) -> Result<Uri, RegisterError> {
    let full = match (url.starts_with('/'), spec.addr) {
        (true, Some((ip, port))) => format!("http://{}{url}", std::net::SocketAddr::new(ip, port)),
        (true, None) => {
            return Err(RegisterError::Usage(format!(
                "--health-http {url}: a bare path needs --ip and --port to say where the instance listens"
            )))
        }
        (false, _) => url.to_owned(),
    };
    let uri: Uri = full
        .parse()
        .map_err(|e| RegisterError::Usage(format!("--health-http {url}: {e}")))?;
    if uri.scheme_str() != Some("http") || uri.authority().is_none() {
        return Err(RegisterError::Usage(format!(
            "--health-http {url}: expected http://HOST:PORT/PATH or /PATH"
        )));
    }
    Ok(uri)
}

async fn http_ok(uri: &Uri, timeout: Duration) -> Result<(), String> {
    let authority = uri
        .authority()
        .map(|a| a.as_str().to_owned())
        .unwrap_or_default();
    let addr = if uri.port().is_some() {
        authority.clone()
    } else {
        format!("{authority}:80")
    };
    let attempt = async {
        let stream = tokio::net::TcpStream::connect(&addr)
            .await
            .map_err(|e| e.to_string())?;
        let (mut sender, conn) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
                .await
                .map_err(|e| e.to_string())?;
        tokio::spawn(conn);
        let path = uri.path_and_query().map_or("/", |p| p.as_str());
        let req = Request::get(path)
            .header(hyper::header::HOST, authority.as_str())
            .body(Empty::<Bytes>::new())
            .map_err(|e| e.to_string())?;
        let resp = sender.send_request(req).await.map_err(|e| e.to_string())?;
        match resp.status() {
            s if s.is_success() => Ok(()),
            s => Err(format!("{uri} answered {s}")),
        }
    };
    tokio::time::timeout(timeout, attempt)
        .await
        .map_err(|_| format!("{uri} did not answer within {timeout:?}"))?
}
