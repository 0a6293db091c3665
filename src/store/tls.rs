//! Why a connection to an etcd member failed, when TLS is the reason. tonic reports a rejected
//! client certificate as one of several unrelated transport errors ("BadCertificate",
//! "connection closed", "broken pipe", depending on timing), so after a failed connect the
//! handshake is redone here, synchronously and bounded, and its outcome put in words. The same
//! probe names a cleartext port that answers in HTTP/1 (not etcd: h2 only says "invalid frame
//! size").

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{AlertDescription, CertificateError, ClientConfig, ClientConnection, RootCertStore};

use crate::config::TlsFiles;

const TIMEOUT: Duration = Duration::from_secs(1);
/// What an HTTP/2 client sends first; a server that rejected our certificate after a TLS 1.3
/// handshake answers it with an alert.
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00";

/// A sentence naming what is wrong with TLS between us and `endpoint`, or None when TLS is not
/// the problem (or it cannot be told).
pub fn diagnose(endpoint: &str, files: Option<&TlsFiles>) -> Option<String> {
    let (tls, hostport) = match endpoint.split_once("://") {
        Some(("https", rest)) => (true, rest),
        Some((_, rest)) => (false, rest),
        None => (files.is_some(), endpoint),
    };
    let hostport = hostport.split('/').next().unwrap_or(hostport);
    let host = hostport
        .rsplit_once(':')
        .map_or(hostport, |(h, _)| h)
        .trim_start_matches('[')
        .trim_end_matches(']');
    let name = ServerName::try_from(host.to_owned()).ok()?;
    let addr = hostport.to_socket_addrs().ok()?.next()?;
    let sock = TcpStream::connect_timeout(&addr, TIMEOUT).ok()?;
    sock.set_read_timeout(Some(TIMEOUT)).ok()?;
    sock.set_write_timeout(Some(TIMEOUT)).ok()?;
    if tls {
        handshake(sock, name, host, files).or_else(|| {
            speaks_h2(&addr).then(|| "the member does not speak TLS: use an http:// URL".into())
        })
    } else if speaks_tls(sock, name) {
        Some(
            "the member speaks TLS: use an https:// URL (or scheme = \"https\") and client_cakeys"
                .to_owned(),
        )
    } else {
        // etcd's metrics port, a web server, an HTTP/1 proxy: h2 only says "invalid frame size".
        preface_answer(&addr, 7)
            .is_some_and(|a| a == b"HTTP/1.")
            .then(|| "answers in HTTP/1, not HTTP/2: not an etcd client URL".to_owned())
    }
}

/// Sends a TLS ClientHello and looks at the first byte of the answer: a handshake (22) or alert
/// (21) record means a TLS server.
fn speaks_tls(mut sock: TcpStream, name: ServerName<'static>) -> bool {
    let Ok(config) = config(RootCertStore::empty(), None) else {
        return false;
    };
    let Ok(mut conn) = ClientConnection::new(Arc::new(config), name) else {
        return false;
    };
    if conn.write_tls(&mut sock).is_err() {
        return false;
    }
    let mut first = [0u8; 1];
    matches!(sock.read(&mut first), Ok(1) if first[0] == 22 || first[0] == 21)
}

/// Whether a cleartext HTTP/2 server answers the preface with its SETTINGS frame.
fn speaks_h2(addr: &std::net::SocketAddr) -> bool {
    preface_answer(addr, 9).is_some_and(|frame| frame[3] == 4)
}

/// The first `n` bytes a cleartext server answers to the HTTP/2 preface.
fn preface_answer(addr: &std::net::SocketAddr, n: usize) -> Option<Vec<u8>> {
    let mut sock = TcpStream::connect_timeout(addr, TIMEOUT).ok()?;
    sock.set_read_timeout(Some(TIMEOUT)).ok()?;
    sock.write_all(H2_PREFACE).ok()?;
    let mut answer = vec![0u8; n];
    sock.read_exact(&mut answer).ok()?;
    Some(answer)
}

fn handshake(
    mut sock: TcpStream,
    name: ServerName<'static>,
    host: &str,
    files: Option<&TlsFiles>,
) -> Option<String> {
    let mut roots = RootCertStore::empty();
    if let Some(ca) = files.and_then(|f| f.ca.as_ref()) {
        for cert in CertificateDer::pem_file_iter(ca).ok()?.flatten() {
            roots.add(cert).ok()?;
        }
    }
    let identity = match files.map(|f| (&f.cert, &f.key)) {
        Some((Some(cert), Some(key))) => {
            let chain: Vec<_> = CertificateDer::pem_file_iter(cert)
                .ok()?
                .flatten()
                .collect();
            Some((chain, PrivateKeyDer::from_pem_file(key).ok()?))
        }
        _ => None,
    };
    let has_identity = identity.is_some();
    let config = config(roots, identity).ok()?;
    let mut conn = ClientConnection::new(Arc::new(config), name).ok()?;
    let tls_err = match exchange(&mut conn, &mut sock) {
        Ok(()) => return None,
        Err(Failure::Tls(e)) => Some(e),
        Err(Failure::Io(e)) => {
            match e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) {
                Some(inner) => Some(inner.clone()),
                // Closed on our ClientHello: a cleartext member does that (see `speaks_h2`).
                None => return None,
            }
        }
    };
    match tls_err {
        Some(rustls::Error::InvalidCertificate(c)) => Some(server_certificate(c, host)),
        Some(rustls::Error::AlertReceived(alert)) => Some(alert_received(alert, has_identity)),
        Some(rustls::Error::InvalidMessage(_)) => {
            Some("the member does not speak TLS: use an http:// URL".into())
        }
        Some(other) => Some(format!("TLS handshake failed: {other}")),
        None => None,
    }
}

enum Failure {
    Tls(rustls::Error),
    Io(std::io::Error),
}

impl From<std::io::Error> for Failure {
    fn from(e: std::io::Error) -> Failure {
        Failure::Io(e)
    }
}

/// The handshake, then our first bytes and the member's first answer. TLS 1.3 ends the
/// client's handshake before the server has checked our certificate: its verdict comes as
/// the answer to our first bytes.
fn exchange(conn: &mut ClientConnection, sock: &mut TcpStream) -> Result<(), Failure> {
    while conn.is_handshaking() {
        conn.complete_io(sock)?;
    }
    conn.writer().write_all(H2_PREFACE)?;
    while conn.wants_write() {
        conn.write_tls(sock)?;
    }
    loop {
        if conn.read_tls(sock)? == 0 {
            return Err(Failure::Io(std::io::ErrorKind::UnexpectedEof.into()));
        }
        let state = conn.process_new_packets().map_err(Failure::Tls)?;
        if state.plaintext_bytes_to_read() > 0 {
            return Ok(());
        }
    }
}

fn config(
    roots: RootCertStore,
    identity: Option<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)>,
) -> Result<ClientConfig, rustls::Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots);
    match identity {
        Some((chain, key)) => builder.with_client_auth_cert(chain, key),
        None => Ok(builder.with_no_client_auth()),
    }
}

fn server_certificate(err: CertificateError, host: &str) -> String {
    match err {
        CertificateError::UnknownIssuer => {
            "the member's certificate is not signed by a CA in client_cakeys (unknown CA)".into()
        }
        CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
            format!("the member's certificate is not valid for {host:?} (name mismatch)")
        }
        CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
            "the member's certificate has expired".into()
        }
        other => format!("the member's certificate was refused: {other:?}"),
    }
}

fn alert_received(alert: AlertDescription, has_identity: bool) -> String {
    use AlertDescription as A;
    let about_our_certificate = matches!(
        alert,
        A::BadCertificate
            | A::UnknownCA
            | A::CertificateRequired
            | A::CertificateUnknown
            | A::UnsupportedCertificate
            | A::CertificateExpired
            | A::CertificateRevoked
            | A::HandshakeFailure
    );
    match (about_our_certificate, has_identity) {
        (true, true) => format!(
            "the member rejected our client certificate ({alert:?}): it must be signed by a CA \
             the member trusts (its --trusted-ca-file)"
        ),
        (true, false) => {
            format!("the member requires a client certificate ({alert:?}): set client_cert and client_key")
        }
        (false, _) => format!("the member ended the TLS handshake: {alert:?}"),
    }
}
