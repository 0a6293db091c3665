//! The balancer's admin endpoint (`lua/confd_rs.lua`'s `admin()`), over nginx's unix socket:
//! `GET /upstreams` (every set nginx holds), `POST /upstreams/NAME` (one set).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::client::conn::http1::{self, SendRequest};
use hyper::{Method, Request};
use hyper_util::rt::TokioIo;

use super::layout::Set;

/// How long one request may take, connecting included: a delivery that cannot finish in this
/// time takes the reload path.
pub const TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Debug, Clone, thiserror::Error)]
pub enum EndpointError {
    #[error("balancer endpoint {socket}: cannot connect: {error}")]
    Connect { socket: PathBuf, error: String },
    #[error("balancer endpoint {socket}: no answer within {} s", TIMEOUT.as_secs())]
    Timeout { socket: PathBuf },
    #[error("balancer endpoint {socket}: {error}")]
    Http { socket: PathBuf, error: String },
    #[error("balancer endpoint {socket}: {what} answered {status}: {body}")]
    Refused {
        socket: PathBuf,
        what: String,
        status: u16,
        body: String,
    },
}

/// One connection to the endpoint, kept for the requests of one delivery or resync.
pub struct Endpoint {
    socket: PathBuf,
    sender: SendRequest<Full<Bytes>>,
}

impl Endpoint {
    pub async fn connect(socket: &Path) -> Result<Endpoint, EndpointError> {
        let bounded = tokio::time::timeout(TIMEOUT, async {
            let stream = tokio::net::UnixStream::connect(socket).await.map_err(|e| {
                EndpointError::Connect {
                    socket: socket.to_owned(),
                    error: e.to_string(),
                }
            })?;
            let (sender, conn) = http1::handshake(TokioIo::new(stream))
                .await
                .map_err(|e| http_error(socket, e))?;
            tokio::spawn(conn);
            Ok(sender)
        });
        let sender = bounded.await.map_err(|_| EndpointError::Timeout {
            socket: socket.to_owned(),
        })??;
        Ok(Endpoint {
            socket: socket.to_owned(),
            sender,
        })
    }

    /// Every set nginx holds, by name.
    pub async fn held(&mut self) -> Result<BTreeMap<String, Set>, EndpointError> {
        let body = self.request(Method::GET, "/upstreams".into(), None).await?;
        let mut sets: BTreeMap<String, Set> =
            serde_json::from_str(&body).map_err(|e| EndpointError::Http {
                socket: self.socket.clone(),
                error: format!("GET /upstreams: {e}"),
            })?;
        for (name, set) in &mut sets {
            set.name.clone_from(name);
        }
        Ok(sets)
    }

    /// Sends one set; `force` replaces a newer one (the file is the truth: after a reload, or
    /// when etcd's revisions went backwards).
    pub async fn send(&mut self, set: &Set, force: bool) -> Result<(), EndpointError> {
        #[derive(serde::Serialize)]
        struct Post<'a> {
            #[serde(flatten)]
            set: &'a Set,
            force: bool,
        }
        let body =
            serde_json::to_string(&Post { set, force }).map_err(|e| EndpointError::Http {
                socket: self.socket.clone(),
                error: e.to_string(),
            })?;
        let path = format!("/upstreams/{}", set.name);
        self.request(Method::POST, path, Some(body)).await?;
        Ok(())
    }

    /// The body of a 200 answer.
    async fn request(
        &mut self,
        method: Method,
        path: String,
        body: Option<String>,
    ) -> Result<String, EndpointError> {
        let what = format!("{method} {path}");
        let socket = self.socket.clone();
        let req = Request::builder()
            .method(method)
            .uri(path)
            .header(hyper::header::HOST, "confd-rs")
            .header(hyper::header::CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from(body.unwrap_or_default())))
            .map_err(|e| http_error(&socket, e))?;
        let exchange = async {
            self.sender
                .ready()
                .await
                .map_err(|e| http_error(&socket, e))?;
            let resp = self
                .sender
                .send_request(req)
                .await
                .map_err(|e| http_error(&socket, e))?;
            let status = resp.status().as_u16();
            let bytes = resp
                .into_body()
                .collect()
                .await
                .map_err(|e| http_error(&socket, e))?
                .to_bytes();
            Ok::<_, EndpointError>((status, String::from_utf8_lossy(&bytes).into_owned()))
        };
        let (status, text) = tokio::time::timeout(TIMEOUT, exchange)
            .await
            .map_err(|_| EndpointError::Timeout {
                socket: socket.clone(),
            })??;
        if status != 200 {
            return Err(EndpointError::Refused {
                socket,
                what,
                status,
                body: text.trim().chars().take(300).collect(),
            });
        }
        Ok(text)
    }
}

fn http_error(socket: &Path, e: impl std::fmt::Display) -> EndpointError {
    EndpointError::Http {
        socket: socket.to_owned(),
        error: e.to_string(),
    }
}
