//! Real components for integration tests: etcd, nginx and tiny HTTP backends, each on free
//! loopback ports in a temp dir, stopped when dropped. A missing binary fails the test loudly.
#![allow(dead_code)] // each test binary uses a different part of this harness

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_confd-rs");
pub const REPO: &str = env!("CARGO_MANIFEST_DIR");

/// The origin team's layout over `Etcd::load_instances`'s keys: one resource (conf.d file +
/// template) per app `svcNNNN_PRE`, each reading its own prefix, writing `out/svcNNNN_PRE.conf`.
pub fn per_app_confdir(endpoint: &str, apps: usize, out: &Path) -> Confdir {
    let confdir = Confdir::new(&format!("nodes = [\"{endpoint}\"]\n"));
    for s in 0..apps {
        let app = format!("svc{s:04}_PRE");
        let template = format!("{app}.tmpl");
        // `prefix` makes the app's keys relative; the template names its app literally, as the
        // origin team's generated templates did.
        let text = format!(
            "upstream {app} {{\n{{% for s in getvs(\"/*\") %}}    server {{{{ s }}}};\n{{% endfor %}}}}\n"
        );
        confdir.template(&template, &text).resource(
            &format!("{app}.toml"),
            &format!(
                "[template]\nsrc = \"{template}\"\ndest = \"{}\"\nprefix = \"/{app}\"\nkeys = [\"/\"]\n",
                out.join(format!("{app}.conf")).display()
            ),
        );
    }
    confdir
}

/// A free loopback port below Linux's ephemeral range (32768+), so no outgoing connection can
/// take it between now and the server's bind; a per-process counter keeps parallel tests apart.
pub fn free_port() -> u16 {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let base = std::process::id() as usize * 7_919;
    loop {
        let port = 20_000 + (base + NEXT.fetch_add(1, Ordering::SeqCst)) % 12_000;
        let port = u16::try_from(port).expect("port range");
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// Polls `f` every 20 ms until it returns Some, or panics with `what` after `deadline`.
pub fn wait_for<T>(what: &str, deadline: Duration, f: impl FnMut() -> Option<T>) -> T {
    wait_for_or(what, deadline, String::new, f)
}

/// [`wait_for`], with `context()` (a log, say) in the panic message.
pub fn wait_for_or<T>(
    what: &str,
    deadline: Duration,
    context: impl Fn() -> String,
    mut f: impl FnMut() -> Option<T>,
) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            start.elapsed() < deadline,
            "timed out after {deadline:?} waiting for {what}\n{}",
            context()
        );
        thread::sleep(Duration::from_millis(20));
    }
}

pub fn require(bin: &str, package: &str) -> PathBuf {
    for dir in ["/usr/bin", "/usr/sbin", "/usr/local/bin", "/usr/local/sbin"] {
        let p = Path::new(dir).join(bin);
        if p.exists() {
            return p;
        }
    }
    panic!("`{bin}` not found: these tests need a real one (apt-get install -y {package})");
}

/// One etcd member on loopback ports, with its data in a temp dir; killed when dropped.
pub struct Etcd {
    child: Option<Child>,
    extra: Vec<String>,
    user: Option<String>,
    /// etcdctl's TLS flags, for a member serving TLS.
    ctl_tls: Vec<String>,
    pub name: String,
    pub endpoint: String,
    peer_url: String,
    cluster: String,
    dir: tempfile::TempDir,
}

impl Etcd {
    /// A single-member cluster, serving.
    pub fn start() -> Etcd {
        Etcd::start_with(&[])
    }

    /// A single-member cluster started with extra etcd flags.
    pub fn start_with(extra: &[&str]) -> Etcd {
        Etcd::cluster_with(1, extra).remove(0)
    }

    /// `n` members forming one cluster, all serving.
    pub fn cluster(n: usize) -> Vec<Etcd> {
        Etcd::cluster_with(n, &[])
    }

    fn cluster_with(n: usize, extra: &[&str]) -> Vec<Etcd> {
        let mut members = Etcd::plan(n, extra);
        for m in &mut members {
            m.spawn();
        }
        for m in &members {
            m.wait_ready();
        }
        members
    }

    /// A member on free ports, not started yet: `restart()` starts it.
    pub fn unstarted() -> Etcd {
        Etcd::plan(1, &[]).remove(0)
    }

    /// One member serving clients over TLS only, with `pki`'s `server` certificate, and
    /// requiring client certificates signed by `pki`'s CA.
    pub fn start_tls(pki: &Pki, server: &str) -> Etcd {
        let mut etcd = Etcd::unstarted();
        etcd.endpoint = etcd.endpoint.replace("http://", "https://");
        etcd.extra = vec![
            format!("--cert-file={}", pki.cert(server).display()),
            format!("--key-file={}", pki.key(server).display()),
            "--client-cert-auth".into(),
            format!("--trusted-ca-file={}", pki.cert("ca").display()),
        ];
        etcd.ctl_tls = vec![
            format!("--cacert={}", pki.cert("ca").display()),
            format!("--cert={}", pki.cert("client").display()),
            format!("--key={}", pki.key("client").display()),
            // The harness reaches every member, the one whose certificate names another host too.
            "--insecure-skip-tls-verify".into(),
        ];
        etcd.restart();
        etcd
    }

    fn plan(n: usize, extra: &[&str]) -> Vec<Etcd> {
        require("etcd", "etcd-server");
        require("etcdctl", "etcd-client");
        let ports: Vec<(u16, u16)> = (0..n).map(|_| (free_port(), free_port())).collect();
        let cluster = ports
            .iter()
            .enumerate()
            .map(|(i, (_, peer))| format!("m{i}=http://127.0.0.1:{peer}"))
            .collect::<Vec<_>>()
            .join(",");
        ports
            .iter()
            .enumerate()
            .map(|(i, (client, peer))| Etcd {
                child: None,
                extra: extra.iter().map(|s| s.to_string()).collect(),
                user: None,
                ctl_tls: Vec::new(),
                name: format!("m{i}"),
                endpoint: format!("http://127.0.0.1:{client}"),
                peer_url: format!("http://127.0.0.1:{peer}"),
                cluster: cluster.clone(),
                dir: tempfile::tempdir().expect("tempdir"),
            })
            .collect()
    }

    fn spawn(&mut self) {
        let child = Command::new("etcd")
            .args(["--name", &self.name, "--data-dir"])
            .arg(self.dir.path().join("data"))
            .args([
                "--listen-client-urls",
                &self.endpoint,
                "--advertise-client-urls",
                &self.endpoint,
            ])
            .args([
                "--listen-peer-urls",
                &self.peer_url,
                "--initial-advertise-peer-urls",
                &self.peer_url,
            ])
            .args([
                "--initial-cluster",
                &self.cluster,
                "--logger=zap",
                "--log-level=error",
            ])
            .args(&self.extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start etcd");
        self.child = Some(child);
    }

    fn wait_ready(&self) {
        wait_for("etcd to serve", Duration::from_secs(30), || {
            self.try_ctl(&["endpoint", "health"]).ok()
        });
    }

    /// The member's process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// CPU time (user + system) the member has used so far, from /proc.
    pub fn cpu_time(&self) -> Duration {
        let pid = self.pid().expect("etcd runs");
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("/proc stat");
        // Fields after the parenthesised command name; utime and stime are the 12th and 13th.
        let rest = &stat[stat.rfind(')').expect("stat format") + 2..];
        let fields: Vec<u64> = rest
            .split(' ')
            .skip(11)
            .take(2)
            .map(|f| f.parse().expect("clock ticks"))
            .collect();
        // SAFETY: sysconf has no preconditions.
        let hz = unsafe { nix::libc::sysconf(nix::libc::_SC_CLK_TCK) } as u64;
        Duration::from_millis((fields[0] + fields[1]) * 1000 / hz)
    }

    /// SIGKILL, as a crash would.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Stops the member without closing its connections (SIGSTOP): to its clients it looks like
    /// a host that lost power or network. Dropping it still kills it.
    pub fn freeze(&self) {
        let pid = self.child.as_ref().expect("a running member").id();
        let pid = nix::unistd::Pid::from_raw(i32::try_from(pid).expect("pid"));
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGSTOP).expect("SIGSTOP etcd");
    }

    /// Starts the killed member again on the same ports and data.
    pub fn restart(&mut self) {
        self.spawn();
        self.wait_ready();
    }

    /// Kills the member, deletes its data and starts an empty one on the same ports.
    pub fn rebuild_empty(&mut self) {
        self.kill();
        std::fs::remove_dir_all(self.dir.path().join("data")).expect("wipe etcd data");
        self.restart();
    }

    /// Creates `user:password` as root and turns authentication on; etcdctl then uses them.
    pub fn enable_auth(&mut self, user: &str, password: &str) {
        self.ctl(&["user", "add", &format!("{user}:{password}")]);
        self.ctl(&["user", "grant-role", user, "root"]);
        self.ctl(&["auth", "enable"]);
        self.user = Some(format!("{user}:{password}"));
    }

    pub fn try_ctl(&self, args: &[&str]) -> Result<String, String> {
        let user: Vec<String> = self.user.iter().map(|u| format!("--user={u}")).collect();
        let out = Command::new("etcdctl")
            .env("ETCDCTL_API", "3")
            .args(["--endpoints", &self.endpoint, "--command-timeout=3s"])
            .args(&self.ctl_tls)
            .args(&user)
            .args(args)
            .output()
            .map_err(|e| e.to_string())?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    }

    /// Runs etcdctl against this member; panics on failure.
    pub fn ctl(&self, args: &[&str]) -> String {
        self.try_ctl(args)
            .unwrap_or_else(|e| panic!("etcdctl {args:?}: {e}"))
    }

    pub fn put(&self, key: &str, value: &str) {
        self.ctl(&["put", key, value]);
    }

    /// The store's current revision.
    pub fn revision(&self) -> i64 {
        let out = self.ctl(&["get", "/", "-w", "json"]);
        let start = out.find("\"revision\":").expect("revision in header") + "\"revision\":".len();
        out[start..]
            .split(|c: char| !c.is_ascii_digit())
            .next()
            .and_then(|n| n.parse().ok())
            .expect("revision")
    }

    /// Registers `keys` instance keys the seed's way, 10 per service
    /// (`/svcNNNN_PRE/<ip>-8080` = `<ip>:8080`), in transactions of one service each.
    pub fn load_instances(&self, keys: usize) {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async {
            let mut client = etcd_client::Client::connect([self.endpoint.as_str()], None)
                .await
                .expect("connect");
            for service in (0..keys).collect::<Vec<_>>().chunks(10) {
                let ops: Vec<etcd_client::TxnOp> = service
                    .iter()
                    .map(|i| {
                        let s = i / 10;
                        let ip = format!("10.{}.{}.{}", s / 250, s % 250, i % 10 + 1);
                        etcd_client::TxnOp::put(
                            format!("/svc{s:04}_PRE/{ip}-8080"),
                            format!("{ip}:8080"),
                            None,
                        )
                    })
                    .collect();
                client
                    .txn(etcd_client::Txn::new().and_then(ops))
                    .await
                    .expect("txn");
            }
        });
    }

    /// Whether this member is the raft leader.
    pub fn is_leader(&self) -> bool {
        let out = self.ctl(&["endpoint", "status", "-w", "json"]);
        let field = |name: &str| {
            let start = out.find(&format!("\"{name}\":")).expect("status field") + name.len() + 3;
            out[start..]
                .split(|c: char| !c.is_ascii_digit())
                .next()
                .unwrap_or("")
                .to_owned()
        };
        field("leader") == field("member_id")
    }
}

/// Test certificates made with openssl: a CA etcd trusts (`ca`), one it does not (`rogue-ca`),
/// server certificates for 127.0.0.1 (`server`) and for another name (`wrong-name`), and client
/// certificates signed by each CA (`client`, `rogue-client`). `cert(n)`/`key(n)` name the files.
pub struct Pki {
    dir: tempfile::TempDir,
}

impl Pki {
    pub fn new() -> Pki {
        require("openssl", "openssl");
        let pki = Pki {
            dir: tempfile::tempdir().expect("tempdir"),
        };
        pki.ca("ca");
        pki.ca("rogue-ca");
        pki.leaf(
            "server",
            "ca",
            "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth",
        );
        pki.leaf(
            "wrong-name",
            "ca",
            "subjectAltName=DNS:etcd.invalid\nextendedKeyUsage=serverAuth",
        );
        pki.leaf("client", "ca", "extendedKeyUsage=clientAuth");
        pki.leaf("rogue-client", "rogue-ca", "extendedKeyUsage=clientAuth");
        pki
    }

    pub fn cert(&self, name: &str) -> PathBuf {
        self.dir.path().join(format!("{name}.pem"))
    }

    pub fn key(&self, name: &str) -> PathBuf {
        self.dir.path().join(format!("{name}.key"))
    }

    fn openssl(&self, args: &[&str]) {
        let out = Command::new("openssl")
            .current_dir(self.dir.path())
            .args(args)
            .output()
            .expect("openssl");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// A new EC key, and a self-signed CA certificate (`ca`) or a request for one (`leaf`).
    fn new_key(&self, name: &str, how: &[&str]) {
        let (key, subj) = (format!("{name}.key"), format!("/CN={name}"));
        let ec = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
        ];
        let args: Vec<&str> = ["req"]
            .iter()
            .chain(how)
            .chain(&ec)
            .chain(&["-keyout", key.as_str(), "-subj", subj.as_str()])
            .copied()
            .collect();
        self.openssl(&args);
    }

    fn ca(&self, name: &str) {
        let cert = format!("{name}.pem");
        self.new_key(name, &["-x509", "-days", "2", "-out", &cert]);
    }

    fn leaf(&self, name: &str, ca: &str, ext: &str) {
        let (csr, cert, extfile) = (
            format!("{name}.csr"),
            format!("{name}.pem"),
            format!("{name}.ext"),
        );
        std::fs::write(self.dir.path().join(&extfile), format!("{ext}\n")).expect("ext");
        self.new_key(name, &["-out", &csr]);
        let (ca_cert, ca_key) = (format!("{ca}.pem"), format!("{ca}.key"));
        self.openssl(&[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            &ca_cert,
            "-CAkey",
            &ca_key,
            "-CAcreateserial",
            "-out",
            &cert,
            "-days",
            "2",
            "-extfile",
            &extfile,
        ]);
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A tiny HTTP backend answering every request with `backend-<port>`.
pub struct Backend {
    pub port: u16,
    stop: Arc<AtomicBool>,
}

impl Backend {
    pub fn start() -> Backend {
        Backend::serving(|mut conn, port, _| {
            let mut buf = [0u8; 4096];
            let _ = conn.read(&mut buf);
            let body = format!("backend-{port}");
            let _ = write!(
                conn,
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        })
    }

    /// A backend on a free loopback port whose accept loop hands each connection to `handle`
    /// (with the port and the stop flag, set when the backend is dropped).
    pub fn serving(handle: impl Fn(TcpStream, u16, &Arc<AtomicBool>) + Send + 'static) -> Backend {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind backend");
        let port = listener.local_addr().expect("addr").port();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        thread::spawn(move || {
            for conn in listener.incoming() {
                if flag.load(Ordering::SeqCst) {
                    break;
                }
                if let Ok(conn) = conn {
                    handle(conn, port, &flag);
                }
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

/// One HTTP/1.0 request to a unix socket (the balancer's admin endpoint) → (status, body).
pub fn unix_http(socket: &Path, method: &str, path: &str, body: &str) -> Option<(u16, String)> {
    let s = std::os::unix::net::UnixStream::connect(socket).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    exchange(
        s,
        &format!(
            "{method} {path} HTTP/1.0\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        ),
    )
}

/// Writes one request whose answer ends with the connection → (status, body).
fn exchange(mut s: impl Read + Write, request: &str) -> Option<(u16, String)> {
    s.write_all(request.as_bytes()).ok()?;
    let mut resp = String::new();
    s.read_to_string(&mut resp).ok()?;
    let status = resp.split_whitespace().nth(1)?.parse().ok()?;
    let body = resp
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    Some((status, body))
}

/// GET http://127.0.0.1:port/path → (status, body).
pub fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    let s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    exchange(
        s,
        &format!("GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"),
    )
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
        Nginx::configure_with(dir, "", "", "proxy_next_upstream off;")
    }

    /// The same with confd-rs's Lua balancer (Debian's Lua packages, the project's
    /// `lua/confd_rs.lua`), its admin endpoint on `<prefix>/run/admin.sock` ([`Nginx::admin`])
    /// and `workers` worker processes; upstreams retry the next peer on a connect error.
    pub fn configure_dynamic(dir: &Path, workers: u32) -> (PathBuf, u16) {
        require("nginx", "nginx");
        for module in ["ndk_http_module.so", "ngx_http_lua_module.so"] {
            let path = Path::new("/usr/lib/nginx/modules").join(module);
            assert!(
                path.exists(),
                "{} is missing: install libnginx-mod-http-lua libnginx-mod-http-ndk lua-resty-core lua-cjson \
                 (.ci/run does)",
                path.display()
            );
        }
        let p = dir.join("nginx");
        std::fs::create_dir_all(p.join("run")).expect("run dir");
        let p = p.display();
        let main = format!(
            "load_module /usr/lib/nginx/modules/ndk_http_module.so;\n\
             load_module /usr/lib/nginx/modules/ngx_http_lua_module.so;\n\
             worker_processes {workers};"
        );
        let http = format!(
            "lua_package_path \"{REPO}/lua/?.lua;;\";\n  lua_shared_dict confd_rs 4m;\n\
             server {{ listen unix:{p}/run/admin.sock; client_max_body_size 1m; client_body_buffer_size 1m;\n\
             location / {{ content_by_lua_block {{ require(\"confd_rs\").admin() }} }} }}"
        );
        Nginx::configure_with(dir, &main, &http, "proxy_next_upstream error timeout;")
    }

    fn configure_with(dir: &Path, main: &str, http: &str, location: &str) -> (PathBuf, u16) {
        require("nginx", "nginx");
        let prefix = dir.join("nginx");
        for d in ["conf", "logs", "tmp", "conf.d"] {
            std::fs::create_dir_all(prefix.join(d)).expect("nginx dirs");
        }
        let port = free_port();
        let p = prefix.display();
        let user = if nix_is_root() { "user root root;" } else { "" };
        let main = if main.is_empty() {
            "worker_processes 1;"
        } else {
            main
        };
        let conf = format!(
            "{user}\n{main}\npid {p}/logs/nginx.pid;\nerror_log {p}/logs/error.log warn;\n\
             events {{ worker_connections 256; }}\n\
             http {{\n  access_log off;\n  client_body_temp_path {p}/tmp/body;\n  proxy_temp_path {p}/tmp/proxy;\n\
             fastcgi_temp_path {p}/tmp/fastcgi;\n  uwsgi_temp_path {p}/tmp/uwsgi;\n  scgi_temp_path {p}/tmp/scgi;\n\
             {http}\n  include {p}/conf.d/upstreams.conf;\n\
             server {{\n    listen 127.0.0.1:{port};\n\
             location ~ ^/(?<svc>[A-Za-z0-9_.-]+)/ {{ proxy_pass http://$svc; {location} }}\n  }}\n}}\n"
        );
        std::fs::write(prefix.join("conf/nginx.conf"), conf).expect("nginx.conf");
        (prefix, port)
    }

    /// The Lua balancer's admin socket of a prefix made by [`Nginx::configure_dynamic`].
    pub fn admin(prefix: &Path) -> PathBuf {
        prefix.join("run/admin.sock")
    }

    /// The master's pid, from its pid file.
    pub fn master(prefix: &Path) -> Option<u32> {
        std::fs::read_to_string(prefix.join("logs/nginx.pid"))
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    /// The pids of the master's children (its workers, old ones included): a reload changes them.
    pub fn workers(prefix: &Path) -> std::collections::BTreeSet<u32> {
        let Some(master) = Nginx::master(prefix) else {
            return Default::default();
        };
        std::fs::read_dir("/proc")
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| {
                let pid: u32 = e.file_name().to_str()?.parse().ok()?;
                let stat = std::fs::read_to_string(e.path().join("stat")).ok()?;
                // The parent pid is the second field after the parenthesised command name.
                let ppid: u32 = stat
                    .rsplit_once(')')?
                    .1
                    .split_whitespace()
                    .nth(1)?
                    .parse()
                    .ok()?;
                (ppid == master).then_some(pid)
            })
            .collect()
    }

    /// A prefix under `dir` with a minimal nginx.conf whose http block holds `http` (includes of
    /// upstream files, say); for `nginx -t` only (it listens nowhere unless `http` says so).
    pub fn minimal(dir: &Path, http: &str) -> PathBuf {
        let prefix = dir.join("nginx");
        for d in ["conf", "logs", "tmp", "conf.d/apps"] {
            std::fs::create_dir_all(prefix.join(d)).expect("nginx dirs");
        }
        let p = prefix.display();
        std::fs::write(
            prefix.join("conf/nginx.conf"),
            format!(
                "worker_processes 1;\npid {p}/logs/nginx.pid;\nerror_log {p}/logs/error.log warn;\n\
                 events {{ worker_connections 64; }}\nhttp {{\n  access_log off;\n\
                 client_body_temp_path {p}/tmp/b; proxy_temp_path {p}/tmp/p; fastcgi_temp_path {p}/tmp/f;\n\
                 uwsgi_temp_path {p}/tmp/u; scgi_temp_path {p}/tmp/s;\n{http}\n}}\n"
            ),
        )
        .expect("nginx.conf");
        prefix
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
    /// SIGTERM, not SIGKILL: nginx's workers outlive a killed master, so let the master stop them.
    fn drop(&mut self) {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(5);
        while self.child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(10));
        }
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

    /// Starts the daemon: `confd-rs --confdir <dir> ARGS`, logging to `<dir>/daemon.log`.
    pub fn daemon(&self, args: &[&str]) -> Daemon {
        let confdir = self.path().to_str().expect("utf-8 path");
        let all: Vec<&str> = ["--confdir", confdir]
            .into_iter()
            .chain(args.iter().copied())
            .collect();
        Daemon::start(&all, self.path().join("daemon.log"))
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

/// `cmd` run in a private mount namespace whose /etc/resolv.conf points at 127.0.0.1 (nothing
/// answers there), for a command that resolves host names (`nginx -t` resolves upstream server
/// names): no DNS query leaves the host. `dir` holds that resolv.conf.
pub fn dns_isolated(cmd: &str, dir: &Path) -> String {
    require("unshare", "util-linux");
    let resolv = dir.join("resolv.conf");
    std::fs::write(&resolv, "nameserver 127.0.0.1\n").expect("resolv.conf");
    format!(
        "unshare -m sh -c 'mount --bind {} /etc/resolv.conf && {cmd}'",
        resolv.display()
    )
}

/// The origin team's layout: app `name` gets its own template (an upstream block around `body`)
/// and conf.d resource reading `/<name>` into `dest`, with `extra` resource lines.
pub fn per_app_resource(confdir: &Confdir, name: &str, body: &str, dest: &Path, extra: &str) {
    confdir
        .template(&format!("{name}.tmpl"), &format!("upstream {name} {{\n{body}}}\n"))
        .resource(
            &format!("{name}.toml"),
            &format!(
                "[template]\nsrc = \"{name}.tmpl\"\ndest = \"{}\"\nprefix = \"/{name}\"\nkeys = [\"/\"]\n{extra}",
                dest.display()
            ),
        );
}

/// An upstream body listing the app's valid `host:port` values.
pub const SERVERS: &str = "{% for s in hostports('/*') %}    server {{ s }};\n{% endfor %}";

/// A conf.d resource rendering the shipped nginx template over every key into `dest`, plus
/// `extra` TOML lines (check_cmd, reload_cmd, …).
pub fn upstreams_resource(dest: &Path, extra: &str) -> String {
    format!(
        "[template]\nsrc = \"nginx-upstreams.conf.tmpl\"\ndest = \"{}\"\nkeys = [\"/\"]\n{extra}",
        dest.display()
    )
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// A running `confd-rs` (daemon or agent); killed when dropped.
pub struct Daemon {
    pub child: Child,
    pub log: PathBuf,
}

impl Daemon {
    /// Runs `confd-rs ARGS` in the background, stderr to `log`.
    pub fn start(args: &[&str], log: PathBuf) -> Daemon {
        let child = Command::new(BIN)
            .args(args)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log file"))
            .spawn()
            .expect("start confd-rs");
        Daemon { child, log }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args(["-s", sig, &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(ok.success(), "kill -s {sig}");
    }

    /// Waits for the daemon to exit by itself and returns its exit code.
    pub fn wait_exit(&mut self, deadline: Duration) -> Option<i32> {
        wait_for("confd-rs to exit", deadline, || {
            self.child.try_wait().ok().flatten()
        })
        .code()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Puts `count` values of `size` bytes under `prefix` (each below etcd's 1.5 MiB request limit).
pub fn put_big(etcd: &Etcd, prefix: &str, count: usize, size: usize) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let mut client = etcd_client::Client::connect([etcd.endpoint.as_str()], None)
            .await
            .expect("connect");
        for i in 0..count {
            let value = format!("{i}").repeat(size);
            client
                .put(format!("{prefix}/{i}"), value, None)
                .await
                .expect("put a big value");
        }
    });
}

/// A TCP proxy on loopback to `target` (`http://127.0.0.1:PORT`), a slow link: what the server
/// sends passes at `bytes_per_sec`, what the client sends at once. Its threads end with the
/// connections; the listener lives as long as the test process.
pub fn slow_link(target: &str, bytes_per_sec: usize) -> String {
    let target = target.trim_start_matches("http://").to_owned();
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind the slow link");
    let endpoint = format!("http://{}", listener.local_addr().expect("its address"));
    thread::spawn(move || {
        for client in listener.incoming().flatten() {
            let Ok(server) = TcpStream::connect(&target) else {
                continue;
            };
            let (Ok(mut up_from), Ok(mut up_to)) = (client.try_clone(), server.try_clone()) else {
                continue;
            };
            thread::spawn(move || std::io::copy(&mut up_from, &mut up_to));
            thread::spawn(move || throttled_copy(server, client, bytes_per_sec));
        }
    });
    endpoint
}

/// Copies `from` to `to` no faster than `bytes_per_sec`, in tenths of a second's worth.
fn throttled_copy(mut from: TcpStream, mut to: TcpStream, bytes_per_sec: usize) {
    let start = Instant::now();
    let mut sent = 0usize;
    let mut buf = vec![0u8; (bytes_per_sec / 10).max(1)];
    while let Ok(n) = from.read(&mut buf) {
        if n == 0 || to.write_all(&buf[..n]).is_err() {
            break;
        }
        sent += n;
        // The pace of the link, not a wait for an event.
        let due = Duration::from_secs_f64(sent as f64 / bytes_per_sec as f64);
        if let Some(ahead) = due.checked_sub(start.elapsed()) {
            thread::sleep(ahead);
        }
    }
    let _ = to.shutdown(std::net::Shutdown::Both);
}
