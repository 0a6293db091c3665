//! Real components for integration tests: etcd, nginx and tiny HTTP backends, each on free
//! loopback ports in a temp dir, stopped when dropped. A missing binary fails the test loudly.
#![allow(dead_code)] // each test binary uses a different part of this harness

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_confd-rs");
pub const REPO: &str = env!("CARGO_MANIFEST_DIR");

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free loopback port")
        .port()
}

/// Polls `f` every 20 ms until it returns Some, or panics with `what` after `deadline`.
pub fn wait_for<T>(what: &str, deadline: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            start.elapsed() < deadline,
            "timed out after {deadline:?} waiting for {what}"
        );
        thread::sleep(Duration::from_millis(20));
    }
}

fn require(bin: &str, package: &str) -> PathBuf {
    for dir in ["/usr/bin", "/usr/sbin", "/usr/local/bin", "/usr/local/sbin"] {
        let p = Path::new(dir).join(bin);
        if p.exists() {
            return p;
        }
    }
    panic!("`{bin}` not found: these tests need a real one (apt-get install -y {package})");
}

pub struct Etcd {
    child: Child,
    pub endpoint: String,
    _dir: tempfile::TempDir,
}

impl Etcd {
    pub fn start() -> Etcd {
        let bin = require("etcd", "etcd-server");
        require("etcdctl", "etcd-client");
        let dir = tempfile::tempdir().expect("tempdir");
        let (client, peer) = (free_port(), free_port());
        let endpoint = format!("http://127.0.0.1:{client}");
        let peer_url = format!("http://127.0.0.1:{peer}");
        let child = Command::new(bin)
            .args(["--name", "t", "--data-dir"])
            .arg(dir.path().join("data"))
            .args([
                "--listen-client-urls",
                &endpoint,
                "--advertise-client-urls",
                &endpoint,
            ])
            .args([
                "--listen-peer-urls",
                &peer_url,
                "--initial-advertise-peer-urls",
                &peer_url,
            ])
            .args([
                "--initial-cluster",
                &format!("t={peer_url}"),
                "--logger=zap",
                "--log-level=error",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start etcd");
        let etcd = Etcd {
            child,
            endpoint,
            _dir: dir,
        };
        wait_for("etcd to serve", Duration::from_secs(20), || {
            etcd.try_ctl(&["put", "/__ready", "1"]).ok()
        });
        etcd.ctl(&["del", "/__ready"]);
        etcd
    }

    fn try_ctl(&self, args: &[&str]) -> Result<String, String> {
        let out = Command::new("etcdctl")
            .env("ETCDCTL_API", "3")
            .args(["--endpoints", &self.endpoint, "--command-timeout=2s"])
            .args(args)
            .output()
            .map_err(|e| e.to_string())?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    }

    /// Runs etcdctl against this etcd; panics on failure.
    pub fn ctl(&self, args: &[&str]) -> String {
        self.try_ctl(args)
            .unwrap_or_else(|e| panic!("etcdctl {args:?}: {e}"))
    }

    pub fn put(&self, key: &str, value: &str) {
        self.ctl(&["put", key, value]);
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A tiny HTTP backend answering every request with `backend-<port>`.
pub struct Backend {
    pub port: u16,
    stop: Arc<AtomicBool>,
}

impl Backend {
    pub fn start() -> Backend {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind backend");
        let port = listener.local_addr().expect("addr").port();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        thread::spawn(move || {
            for conn in listener.incoming() {
                if flag.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(mut conn) = conn else { continue };
                let mut buf = [0u8; 4096];
                let _ = conn.read(&mut buf);
                let body = format!("backend-{port}");
                let _ = write!(
                    conn,
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        Backend { port, stop }
    }

    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn name(&self) -> String {
        format!("backend-{}", self.port)
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

/// GET http://127.0.0.1:port/path → (status, body).
pub fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut resp = String::new();
    s.read_to_string(&mut resp).ok()?;
    let status = resp.split_whitespace().nth(1)?.parse().ok()?;
    let body = resp
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    Some((status, body))
}

/// nginx with its own prefix, serving `/<upstream>/…` through `proxy_pass http://<upstream>`,
/// with the upstreams from `upstreams` (the file confd-rs renders).
pub struct Nginx {
    child: Child,
    pub port: u16,
    pub prefix: PathBuf,
    pub upstreams: PathBuf,
}

impl Nginx {
    /// Writes the config; nginx itself is started by [`Nginx::start`] once upstreams exist.
    pub fn configure(dir: &Path) -> (PathBuf, u16) {
        require("nginx", "nginx");
        let prefix = dir.join("nginx");
        for d in ["conf", "logs", "tmp", "conf.d"] {
            std::fs::create_dir_all(prefix.join(d)).expect("nginx dirs");
        }
        let port = free_port();
        let p = prefix.display();
        let user = if nix_is_root() { "user root root;" } else { "" };
        let conf = format!(
            "{user}\nworker_processes 1;\npid {p}/logs/nginx.pid;\nerror_log {p}/logs/error.log warn;\n\
             events {{ worker_connections 256; }}\n\
             http {{\n  access_log off;\n  client_body_temp_path {p}/tmp/body;\n  proxy_temp_path {p}/tmp/proxy;\n\
             fastcgi_temp_path {p}/tmp/fastcgi;\n  uwsgi_temp_path {p}/tmp/uwsgi;\n  scgi_temp_path {p}/tmp/scgi;\n\
             include {p}/conf.d/upstreams.conf;\n\
             server {{\n    listen 127.0.0.1:{port};\n\
             location ~ ^/(?<svc>[A-Za-z0-9_.-]+)/ {{ proxy_pass http://$svc; proxy_next_upstream off; }}\n  }}\n}}\n"
        );
        std::fs::write(prefix.join("conf/nginx.conf"), conf).expect("nginx.conf");
        (prefix, port)
    }

    /// `nginx -t` and `nginx -s reload` for this prefix, as check_cmd and reload_cmd.
    pub fn commands(prefix: &Path) -> (String, String) {
        let args = format!("-p {p} -c {p}/conf/nginx.conf", p = prefix.display());
        (
            format!("nginx -q -t {args}"),
            format!("nginx -s reload {args}"),
        )
    }

    pub fn start(prefix: &Path, port: u16) -> Nginx {
        let child = Command::new("nginx")
            .args(["-p"])
            .arg(prefix)
            .args(["-c"])
            .arg(prefix.join("conf/nginx.conf"))
            .args(["-g", "daemon off;"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start nginx");
        let nginx = Nginx {
            child,
            port,
            prefix: prefix.to_owned(),
            upstreams: prefix.join("conf.d/upstreams.conf"),
        };
        wait_for("nginx to listen", Duration::from_secs(10), || {
            TcpStream::connect(("127.0.0.1", port)).ok()
        });
        nginx
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn nix_is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| o.stdout.starts_with(b"0\n"))
        .unwrap_or(false)
}

/// A confdir in a temp dir: confd.toml, conf.d/<name>.toml and the repo's templates.
pub struct Confdir {
    pub dir: tempfile::TempDir,
}

impl Confdir {
    pub fn new(confd_toml: &str) -> Confdir {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(dir.path().join("conf.d")).expect("conf.d");
        std::fs::create_dir_all(dir.path().join("templates")).expect("templates");
        std::fs::write(dir.path().join("confd.toml"), confd_toml).expect("confd.toml");
        let tmpl = "nginx-upstreams.conf.tmpl";
        std::fs::copy(
            Path::new(REPO).join("templates").join(tmpl),
            dir.path().join("templates").join(tmpl),
        )
        .expect("copy template");
        Confdir { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn resource(&self, name: &str, toml: &str) -> &Confdir {
        std::fs::write(self.path().join("conf.d").join(name), toml).expect("resource");
        self
    }

    pub fn template(&self, name: &str, text: &str) -> &Confdir {
        std::fs::write(self.path().join("templates").join(name), text).expect("template");
        self
    }

    /// Runs `confd-rs --confdir <dir> ARGS` to completion.
    pub fn run(&self, args: &[&str]) -> Output {
        Command::new(BIN)
            .arg("--confdir")
            .arg(self.path())
            .args(args)
            .output()
            .expect("run confd-rs")
    }
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}
