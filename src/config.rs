//! confd.toml + conf.d/*.toml + flags + CONFD_* environment → one validated [`Config`].
//! Precedence, as confd documents it: flag > confd.toml > environment > default.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use tracing_subscriber::filter::LevelFilter;

use crate::cli::{Cli, ColorChoice, LogFormat, PASSWORD_ENV};
use crate::render::{Syntax, ValueCheck};
use crate::{keypath, logging};

const DEFAULT_CONFDIR: &str = "/etc/confd";
const DEFAULT_NODE: &str = "http://127.0.0.1:2379";
const DEFAULT_INTERVAL_SECS: u64 = 600;
const DEFAULT_COMMAND_TIMEOUT_SECS: u64 = 60;
const DEFAULT_COALESCE_WINDOW_MS: u64 = 100;
const DEFAULT_COALESCE_MAX_MS: u64 = 2000;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{path}: {error}")]
    Read {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("{path}:{line}: {message}")]
    Toml {
        path: PathBuf,
        line: usize,
        message: String,
    },
    #[error("{path}: {message}")]
    Invalid { path: PathBuf, message: String },
    #[error("{0}")]
    Flag(String),
}

#[derive(Debug, Clone)]
pub struct Config {
    pub confdir: PathBuf,
    /// Colour the diffs `--noop` prints.
    pub color: bool,
    /// What a running daemon reloads on edit: conf.d, templates and confd.toml.
    pub watched_paths: Vec<PathBuf>,
    pub backend: Backend,
    pub onetime: bool,
    pub noop: bool,
    pub exit_code: bool,
    pub sync_only: bool,
    pub watch: bool,
    pub interval: Duration,
    pub log_level: LevelFilter,
    pub log_format: LogFormat,
    pub command_timeout: Duration,
    pub coalesce: Coalesce,
    pub metrics_addr: Option<std::net::SocketAddr>,
    pub resources: Vec<Resource>,
    /// conf.d resources that could not be loaded: the others run without them.
    pub broken: Vec<Broken>,
    /// What the configuration sets that confd-rs ignores; logged once logging is set up.
    pub warnings: Vec<String>,
}

impl Resource {
    /// Whether a change to `key` (absolute) can change this resource's output.
    pub fn reads(&self, key: &str) -> bool {
        self.keys.iter().any(|p| key.starts_with(p.as_str()))
    }

    /// Why `dynamic` cannot work for this resource: its template writes no balancer directive,
    /// so every change takes the reload path.
    pub fn balancer_missing(&self) -> Option<String> {
        let writes = ["dynamic_upstream", "balancer_by_lua_block"];
        (self.dynamic.is_some() && !writes.iter().any(|w| self.template.contains(w))).then(|| {
            format!(
                "{}: template.dynamic is set but {} writes no balancer directive, so every change \
                 reloads: add {{{{ dynamic_upstream(name) }}}} inside each upstream block",
                self.name,
                self.src.display()
            )
        })
    }
}

impl Config {
    pub fn log_warnings(&self) {
        for w in &self.warnings {
            tracing::warn!("{w}");
        }
    }

    /// Every store prefix some resource reads.
    pub fn prefixes(&self) -> Vec<String> {
        self.resources
            .iter()
            .flat_map(|r| r.keys.iter().cloned())
            .collect()
    }

    /// Whether some resource hands server lists to nginx's balancer (`dynamic`).
    pub fn is_dynamic(&self) -> bool {
        self.resources.iter().any(|r| r.dynamic.is_some())
    }
}

/// How the daemon batches changes: a change after a quiet `window` applies at once; changes
/// that follow within `window` of the last one (or of the last apply) wait until the store has
/// been quiet for `window`, but never longer than `max_delay` after the first of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Coalesce {
    pub window: Duration,
    pub max_delay: Duration,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Backend {
    Etcd(EtcdConfig),
    File(Vec<PathBuf>),
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EtcdConfig {
    /// Every member, in the order given; which one serves is decided at connect time.
    pub nodes: Vec<String>,
    pub user: Option<Credentials>,
    pub tls: Option<TlsFiles>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    pub user: String,
    password: Password,
}

/// Where the password comes from. A password file is read again at every connect (as the TLS
/// files are), so a rotated password is picked up at the next reconnect, without a restart.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Password {
    Given(Secret),
    File(PathBuf),
}

impl Credentials {
    /// The password as of now; an unreadable or empty password file names its path.
    pub fn password(&self) -> Result<Secret, ConfigError> {
        match &self.password {
            Password::Given(secret) => Ok(secret.clone()),
            Password::File(path) => read_password_file(path),
        }
    }
}

/// A password: its `Debug` never shows it, so no log line or error can carry it by accident.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsFiles {
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    pub ca: Option<PathBuf>,
}

impl TlsFiles {
    /// Each file holds what its key promises. They are read again at every connect, so a
    /// renewed certificate is picked up without a restart.
    fn check(&self) -> Result<(), String> {
        use rustls::pki_types::{pem::PemObject, CertificateDer, PrivateKeyDer};
        let read = |key: &str, path: &Path| {
            fs::read(path).map_err(|e| format!("{key} {}: {e}", path.display()))
        };
        for (key, path) in [("client_cakeys", &self.ca), ("client_cert", &self.cert)] {
            let Some(path) = path else { continue };
            if CertificateDer::pem_slice_iter(&read(key, path)?).all(|c| c.is_err()) {
                return Err(format!(
                    "{key} {}: no PEM certificate in it",
                    path.display()
                ));
            }
        }
        if let Some(path) = &self.key {
            if PrivateKeyDer::from_pem_slice(&read("client_key", path)?).is_err() {
                return Err(format!(
                    "client_key {}: no PEM private key in it",
                    path.display()
                ));
            }
        }
        Ok(())
    }
}

/// A conf.d resource that could not be loaded, and why (the error names file and line).
#[derive(Debug, Clone)]
pub struct Broken {
    pub name: String,
    pub reason: String,
}

/// One `conf.d/*.toml` `[template]` table, resolved against the confdir and the global prefix.
#[derive(Debug, Clone)]
pub struct Resource {
    /// The conf.d file it came from, as it appears in logs.
    pub name: String,
    pub src: PathBuf,
    /// The template's text, read once at load so rendering never touches the disk.
    pub template: String,
    pub dest: PathBuf,
    /// Effective prefix (global prefix + resource prefix): keys in the template are relative to it.
    pub prefix: String,
    /// Absolute store prefixes this resource reads (prefix + each of `keys`).
    pub keys: Vec<String>,
    pub mode: Option<u32>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    pub check_cmd: Option<String>,
    pub reload_cmd: Option<String>,
    /// The pid file of the reloaded server's master: a reload counts only once it starts new
    /// workers (see `procs`).
    pub reload_pidfile: Option<PathBuf>,
    pub keep_stage_file: bool,
    /// Fan-out: one dest per directory (as the template sees keys) matching this Go
    /// `path.Match` pattern; `dest` names the directory's base name as `{{ dir }}`.
    pub each: Option<String>,
    /// The template's language, and what decided it (for the debug log).
    pub syntax: Syntax,
    pub syntax_from: &'static str,
    /// Holds renders that would drop too many of a service's servers (off unless set).
    pub shrink: Option<ShrinkGuard>,
    /// What every printed value must be (nginx-safe for nginx config, see `nginx_config`).
    pub value_check: ValueCheck,
    /// The Lua balancer's admin socket: membership changes are sent there instead of reloading
    /// (see `dynamic`).
    pub dynamic: Option<PathBuf>,
}

/// Whether a resource writes nginx config, when it does not say (`value_check`): its dest is a
/// `*.conf` under a directory named for nginx, or its check or reload command runs nginx.
fn nginx_config(dest: &Path, check_cmd: Option<&str>, reload_cmd: Option<&str>) -> bool {
    let conf_under_nginx = dest.extension().is_some_and(|e| e == "conf")
        && dest
            .parent()
            .into_iter()
            .flat_map(Path::components)
            .any(|c| c.as_os_str().to_string_lossy().contains("nginx"));
    let runs_nginx = |cmd: Option<&str>| {
        cmd.is_some_and(|c| {
            c.split(|ch: char| ch.is_whitespace() || ";&|()".contains(ch))
                .any(|word| word == "nginx" || word.ends_with("/nginx"))
        })
    };
    conf_under_nginx || runs_nginx(check_cmd) || runs_nginx(reload_cmd)
}

/// `max_shrink`, `min_servers` and `shrink_hold` of a conf.d resource. A render that would drop
/// more than `max_shrink` of a service's servers (as `hostports()` counts them, against what
/// was last applied), or leave fewer than `min_servers`, waits `hold` and is applied only if the
/// view still says so then. Removing one server is never held.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ShrinkGuard {
    /// A fraction of the servers, 0–1 (1: no fraction is too much).
    pub max_shrink: f64,
    pub min_servers: usize,
    pub hold: Duration,
}

/// How long a shrink is held when `shrink_hold` is not set.
pub const DEFAULT_SHRINK_HOLD_SECS: u64 = 60;

/// `syntax` in a conf.d file or confd.toml: a language, or `auto` (see `Syntax::detect`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
enum SyntaxKey {
    Auto,
    Go,
    Jinja,
}

/// confd.toml. Every key confd knows is accepted; those for backends confd-rs does not have are
/// ignored with a warning, and anything else is an error (confd ignores typos silently).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfdToml {
    backend: Option<String>,
    confdir: Option<PathBuf>,
    nodes: Option<Vec<String>>,
    prefix: Option<String>,
    interval: Option<u64>,
    watch: Option<bool>,
    noop: Option<bool>,
    #[serde(rename = "sync-only")]
    sync_only: Option<bool>,
    #[serde(rename = "log-level")]
    log_level: Option<String>,
    client_cert: Option<PathBuf>,
    client_key: Option<PathBuf>,
    client_cakeys: Option<PathBuf>,
    client_insecure: Option<bool>,
    username: Option<String>,
    password: Option<String>,
    basic_auth: Option<bool>,
    scheme: Option<String>,
    file: Option<Vec<PathBuf>>,
    keep_stage_file: Option<bool>,
    command_timeout: Option<u64>,
    coalesce_window_ms: Option<u64>,
    coalesce_max_ms: Option<u64>,
    metrics_addr: Option<std::net::SocketAddr>,
    /// confd-rs: the template language of resources that do not set one.
    syntax: Option<SyntaxKey>,
    // confd keys of backends confd-rs does not implement (consul, vault, dynamodb, redis, ssm, …).
    auth_token: Option<toml::Value>,
    auth_type: Option<toml::Value>,
    app_id: Option<toml::Value>,
    user_id: Option<toml::Value>,
    role_id: Option<toml::Value>,
    secret_id: Option<toml::Value>,
    table: Option<toml::Value>,
    separator: Option<toml::Value>,
    filter: Option<toml::Value>,
    path: Option<toml::Value>,
    srv_domain: Option<toml::Value>,
    srv_record: Option<toml::Value>,
    secret_keyring: Option<toml::Value>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ResourceToml {
    template: TemplateToml,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TemplateToml {
    src: String,
    dest: PathBuf,
    #[serde(default)]
    keys: Vec<String>,
    #[serde(default)]
    prefix: String,
    mode: Option<String>,
    uid: Option<u32>,
    gid: Option<u32>,
    /// confd's `owner`: a user name, for `uid`.
    owner: Option<String>,
    check_cmd: Option<String>,
    reload_cmd: Option<String>,
    keep_stage_file: Option<bool>,
    /// confd-rs: one dest per directory matching this pattern (dest names it `{{ dir }}`).
    each: Option<String>,
    /// confd-rs: "go", "jinja" or "auto".
    syntax: Option<SyntaxKey>,
    /// confd-rs: confirm each reload by the new workers of the master this file names.
    reload_pidfile: Option<PathBuf>,
    /// confd-rs: "nginx" (printed values may not break nginx syntax) or "none".
    value_check: Option<ValueCheck>,
    /// confd-rs: the Lua balancer's admin socket; server-list changes go there, not to a reload.
    dynamic: Option<PathBuf>,
    /// confd-rs shrink guard: "50%".
    max_shrink: Option<String>,
    min_servers: Option<usize>,
    shrink_hold: Option<u64>,
}

/// Reads and validates everything the run needs; no store is contacted. Templates are read
/// here and checked by the pipeline.
pub fn load(cli: &Cli) -> Result<Config, ConfigError> {
    settings(cli)?.with_resources()
}

/// confd.toml, flags and environment, checked: everything a run needs but conf.d's resources,
/// which [`Settings::with_resources`] adds. Enough to reach the store while conf.d loads.
pub struct Settings {
    /// Its resources are not loaded yet.
    cfg: Config,
    defaults: Defaults,
}

impl Settings {
    pub fn backend(&self) -> &Backend {
        &self.cfg.backend
    }

    pub fn onetime(&self) -> bool {
        self.cfg.onetime
    }

    pub fn log_level(&self) -> LevelFilter {
        self.cfg.log_level
    }

    pub fn log_format(&self) -> LogFormat {
        self.cfg.log_format
    }

    pub fn metrics_addr(&self) -> Option<std::net::SocketAddr> {
        self.cfg.metrics_addr
    }

    /// Loads conf.d: the whole configuration.
    pub fn with_resources(self) -> Result<Config, ConfigError> {
        let Settings { mut cfg, defaults } = self;
        let (resources, broken) = load_resources(&cfg.confdir, &defaults)?;
        cfg.warnings
            .extend(resources.iter().filter_map(Resource::balancer_missing));
        if resources.is_empty() && broken.is_empty() {
            cfg.warnings.push(format!(
                "{}: no *.toml resources: nothing to render",
                cfg.confdir.join("conf.d").display()
            ));
        }
        cfg.resources = resources;
        cfg.broken = broken;
        Ok(cfg)
    }
}

/// Reads and checks confd.toml, flags and environment; conf.d is left for
/// [`Settings::with_resources`].
pub fn settings(cli: &Cli) -> Result<Settings, ConfigError> {
    let Confdir {
        confdir,
        config_file,
        file,
        defaults,
    } = read_confdir(cli)?;
    let path = config_file.as_path();
    let coalesce = Coalesce {
        window: Duration::from_millis(
            cli.coalesce_window_ms
                .or(file.coalesce_window_ms)
                .unwrap_or(DEFAULT_COALESCE_WINDOW_MS),
        ),
        max_delay: Duration::from_millis(positive(
            pick(
                cli.coalesce_max_ms,
                file.coalesce_max_ms,
                path,
                COALESCE_MAX,
            ),
            DEFAULT_COALESCE_MAX_MS,
        )?),
    };
    let interval = positive(
        pick(cli.interval, file.interval, path, INTERVAL),
        DEFAULT_INTERVAL_SECS,
    )?;
    let command_timeout = positive(
        pick(
            cli.command_timeout,
            file.command_timeout,
            path,
            COMMAND_TIMEOUT,
        ),
        DEFAULT_COMMAND_TIMEOUT_SECS,
    )?;
    let log_level = match pick(
        cli.log_level.clone(),
        file.log_level.clone(),
        path,
        LOG_LEVEL,
    ) {
        Some((level, from)) => logging::level(&level).map_err(|e| from.error(e))?,
        None => LevelFilter::INFO,
    };
    let mut warnings = foreign_keys(&config_file, &file);
    let nodes_given = !cli.nodes.is_empty() || file.nodes.as_ref().is_some_and(|n| !n.is_empty());
    if (file.srv_domain.is_some() || file.srv_record.is_some()) && !nodes_given {
        return Err(ConfigError::Invalid {
            path: config_file.clone(),
            message: "srv_domain/srv_record: confd-rs does not look up etcd members by SRV: \
                      list them in `nodes` (or --node)"
                .into(),
        });
    }
    let noop = cli.noop.or(file.noop).unwrap_or(false);
    if cli.exit_code && !noop {
        return Err(ConfigError::Flag(
            "--exit-code works only with --noop (it says whether anything would change)".into(),
        ));
    }
    let watch = cli.watch.or(file.watch).unwrap_or(true);
    if watch && (cli.interval.is_some() || file.interval.is_some()) {
        warnings.push(
            "interval is used only when polling (watch = false); the daemon watches etcd".into(),
        );
    }
    let cfg = Config {
        warnings,
        confdir: confdir.clone(),
        color: match cli.color {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => {
                std::io::IsTerminal::is_terminal(&std::io::stdout())
                    && std::env::var_os("NO_COLOR").is_none()
            }
        },
        watched_paths: vec![
            confdir.join("conf.d"),
            confdir.join("templates"),
            config_file.clone(),
        ],
        coalesce,
        metrics_addr: cli.metrics_addr.or(file.metrics_addr),
        backend: backend(cli, &file, path)?,
        onetime: cli.onetime.unwrap_or(false),
        noop,
        exit_code: cli.exit_code,
        sync_only: cli.sync_only.or(file.sync_only).unwrap_or(false),
        watch,
        interval: Duration::from_secs(interval),
        log_level,
        log_format: cli.log_format,
        command_timeout: Duration::from_secs(command_timeout),
        resources: Vec::new(),
        broken: Vec::new(),
    };
    Ok(Settings { cfg, defaults })
}

fn read_confd_toml(cli: &Cli, path: &Path) -> Result<ConfdToml, ConfigError> {
    let path = path.to_owned();
    match fs::read_to_string(&path) {
        Ok(text) => parse_toml(&path, &text),
        // confd runs without a confd.toml; a file named explicitly must exist.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && cli.config_file.is_none() => {
            Ok(ConfdToml::default())
        }
        Err(error) => Err(ConfigError::Read { path, error }),
    }
}

/// confd keys set in `t` that confd-rs ignores, as warnings.
fn foreign_keys(path: &Path, t: &ConfdToml) -> Vec<String> {
    let foreign = [
        ("auth_token", t.auth_token.is_some()),
        ("auth_type", t.auth_type.is_some()),
        ("app_id", t.app_id.is_some()),
        ("user_id", t.user_id.is_some()),
        ("role_id", t.role_id.is_some()),
        ("secret_id", t.secret_id.is_some()),
        ("table", t.table.is_some()),
        ("separator", t.separator.is_some()),
        ("filter", t.filter.is_some()),
        ("path", t.path.is_some()),
        ("srv_domain", t.srv_domain.is_some()),
        ("srv_record", t.srv_record.is_some()),
        ("secret_keyring", t.secret_keyring.is_some()),
        ("client_insecure", t.client_insecure.is_some()),
    ];
    foreign
        .iter()
        .filter(|(_, set)| *set)
        .map(|(key, _)| {
            format!(
                "{}: {key}: ignored (a confd key for a backend or feature confd-rs does not have)",
                path.display()
            )
        })
        .collect()
}

/// A setting's flag and confd.toml key, for errors about its value.
type Names = (&'static str, &'static str);
const INTERVAL: Names = ("--interval", "interval");
const COMMAND_TIMEOUT: Names = ("--command-timeout", "command_timeout");
const COALESCE_MAX: Names = ("--coalesce-max", "coalesce_max_ms");
const LOG_LEVEL: Names = ("--log-level", "log-level");
const BACKEND: Names = ("--backend", "backend");
const NODES: Names = ("--node", "nodes");

/// Where a setting's value came from: a flag, or confd.toml (then errors name the file).
struct Origin<'a> {
    names: Names,
    file: Option<&'a Path>,
}

impl Origin<'_> {
    fn error(&self, message: impl std::fmt::Display) -> ConfigError {
        match self.file {
            Some(path) => ConfigError::Invalid {
                path: path.to_owned(),
                message: format!("{}: {message}", self.names.1),
            },
            None => ConfigError::Flag(format!("{}: {message}", self.names.0)),
        }
    }
}

/// The flag's value, else confd.toml's, with where it came from.
fn pick<'a, T>(
    flag: Option<T>,
    key: Option<T>,
    path: &'a Path,
    names: Names,
) -> Option<(T, Origin<'a>)> {
    match (flag, key) {
        (Some(v), _) => Some((v, Origin { names, file: None })),
        (None, Some(v)) => Some((
            v,
            Origin {
                names,
                file: Some(path),
            },
        )),
        (None, None) => None,
    }
}

/// A member's client URL, checked as tonic will read it: `http(s)://HOST:PORT` (a bare
/// `HOST:PORT`, as confd takes it, gets `scheme`). A URL that etcd could not be reached at is an
/// error here, not a connect failure at every run.
fn node_url(node: &str, scheme: &str) -> Result<String, String> {
    // Schemes are case-insensitive; the rest of the program compares them in lower case.
    let url = match node.split_once("://") {
        Some((given, rest)) => format!("{}://{rest}", given.to_ascii_lowercase()),
        None => format!("{}://{node}", scheme.to_ascii_lowercase()),
    };
    let shown = without_userinfo(&url);
    let expected = "expected http://HOST:PORT or https://HOST:PORT";
    let uri: hyper::Uri = url
        .parse()
        .map_err(|e| format!("{shown:?} is not a URL ({e}): {expected}"))?;
    let authority = uri.authority().map(|a| a.as_str()).unwrap_or_default();
    if authority.contains('@') {
        return Err(format!(
            "{shown:?} holds a user and password, which etcd v3 does not read from a URL: \
             give them as --username (or username) and --password-file (or ${PASSWORD_ENV})"
        ));
    }
    let host = uri.host().unwrap_or_default();
    let port = authority
        .strip_prefix(host)
        .and_then(|p| p.strip_prefix(':'));
    let why = match uri.scheme_str() {
        Some("http" | "https") => match port.map(str::parse::<u16>) {
            _ if host.is_empty() => "no host",
            None => "no port (etcd's client port is usually 2379)",
            Some(Err(_) | Ok(0)) => "an invalid port",
            Some(Ok(_)) if !matches!(uri.path(), "" | "/") => "a path",
            Some(Ok(_)) if uri.query().is_some() => "a query",
            Some(Ok(_)) => return Ok(url.trim_end_matches('/').to_owned()),
        },
        _ => "another scheme",
    };
    Err(format!("{shown:?} has {why}: {expected}"))
}

/// The URL with any `user:password@` shown as `***@`, for errors.
fn without_userinfo(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    match rest[..end].rfind('@') {
        Some(at) => format!("{scheme}://***{}", &rest[at..]),
        None => url.to_owned(),
    }
}

/// A count of seconds or milliseconds that must not be 0 (0 would busy-poll etcd, or time out
/// every command).
fn positive(picked: Option<(u64, Origin)>, default: u64) -> Result<u64, ConfigError> {
    match picked {
        Some((0, from)) => Err(from.error("must be greater than 0")),
        Some((v, _)) => Ok(v),
        None => Ok(default),
    }
}

fn backend(cli: &Cli, file: &ConfdToml, path: &Path) -> Result<Backend, ConfigError> {
    let (name, from) = pick(cli.backend.clone(), file.backend.clone(), path, BACKEND)
        .unwrap_or_else(|| {
            (
                "etcdv3".into(),
                Origin {
                    names: BACKEND,
                    file: None,
                },
            )
        });
    match name.as_str() {
        "etcdv3" | "etcd" => Ok(Backend::Etcd(etcd_config(cli, file, Some(path))?)),
        "file" => {
            let files = if cli.files.is_empty() {
                file.file.clone().unwrap_or_default()
            } else {
                cli.files.clone()
            };
            if files.is_empty() {
                return Err(ConfigError::Flag(
                    "backend \"file\" needs at least one --file".into(),
                ));
            }
            Ok(Backend::File(files))
        }
        other => Err(from.error(format!(
            "{other:?} is not supported: expected \"etcdv3\" (or \"etcd\") or \"file\""
        ))),
    }
}

/// etcd settings from flags and CONFD_* alone (the registration agent reads no confd.toml).
pub fn etcd_from_flags(cli: &Cli) -> Result<EtcdConfig, ConfigError> {
    etcd_config(cli, &ConfdToml::default(), None)
}

/// etcd settings; `path` is confd.toml's, named in errors about settings it may have given.
fn etcd_config(
    cli: &Cli,
    file: &ConfdToml,
    path: Option<&Path>,
) -> Result<EtcdConfig, ConfigError> {
    let setting_error = |message: String| match path {
        Some(path) => ConfigError::Invalid {
            path: path.to_owned(),
            message: format!("{message} (flags, this file or the environment)"),
        },
        None => ConfigError::Flag(message),
    };
    let scheme = cli
        .scheme
        .clone()
        .or(file.scheme.clone())
        .unwrap_or_else(|| "http".into());
    let nodes = if cli.nodes.is_empty() {
        file.nodes.clone().unwrap_or_default()
    } else {
        cli.nodes.clone()
    };
    let nodes = if nodes.is_empty() {
        vec![DEFAULT_NODE.to_owned()]
    } else {
        nodes
    };
    let from = Origin {
        names: NODES,
        file: if cli.nodes.is_empty() { path } else { None },
    };
    let nodes = nodes
        .iter()
        .map(|n| node_url(n, &scheme).map_err(|why| from.error(why)))
        .collect::<Result<Vec<_>, _>>()?;
    let env = |name: &str| std::env::var_os(name).map(PathBuf::from);
    let tls = TlsFiles {
        cert: cli
            .client_cert
            .clone()
            .or(file.client_cert.clone())
            .or_else(|| env("CONFD_CLIENT_CERT")),
        key: cli
            .client_key
            .clone()
            .or(file.client_key.clone())
            .or_else(|| env("CONFD_CLIENT_KEY")),
        ca: cli
            .client_cakeys
            .clone()
            .or(file.client_cakeys.clone())
            .or_else(|| env("CONFD_CLIENT_CAKEYS")),
    };
    if tls.cert.is_some() != tls.key.is_some() {
        return Err(setting_error(
            "client_cert and client_key must be given together".into(),
        ));
    }
    let tls = (tls.cert.is_some() || tls.ca.is_some()).then_some(tls);
    if let Some(files) = &tls {
        files.check().map_err(setting_error)?;
        if let Some(plain) = nodes.iter().find(|n| !n.starts_with("https://")) {
            return Err(setting_error(format!(
                "client certificates or a CA are set, but {plain:?} is not an https:// URL"
            )));
        }
    }
    // confd only sends credentials with basic_auth = true; confd-rs sends them unless it is false.
    let basic_auth = cli.basic_auth.or(file.basic_auth).unwrap_or(true);
    let user = cli
        .username
        .clone()
        .or(file.username.clone())
        .or_else(|| std::env::var("CONFD_USERNAME").ok());
    let user = match (user, password(cli, file)?) {
        (Some(user), Some(password)) => basic_auth.then_some(Credentials { user, password }),
        (None, None) => None,
        (Some(_), None) => {
            return Err(setting_error(format!(
                "etcd username given without a password: set --password-file, {PASSWORD_ENV} or password"
            )))
        }
        (None, Some(_)) => {
            return Err(setting_error(
                "etcd password given without a username: set --username or username".into(),
            ))
        }
    };
    Ok(EtcdConfig { nodes, user, tls })
}

/// The etcd password: --password, --password-file (read now, so a bad one is an error at
/// load, and again at every connect), confd.toml's `password`, then $CONFD_PASSWORD (flag >
/// file > environment, as everywhere else).
fn password(cli: &Cli, file: &ConfdToml) -> Result<Option<Password>, ConfigError> {
    if let Some(p) = &cli.password {
        return Ok(Some(Password::Given(Secret(p.clone()))));
    }
    if let Some(path) = &cli.password_file {
        read_password_file(path)?;
        return Ok(Some(Password::File(path.clone())));
    }
    if let Some(p) = &file.password {
        return Ok(Some(Password::Given(Secret(p.clone()))));
    }
    Ok(std::env::var(PASSWORD_ENV)
        .ok()
        .filter(|p| !p.is_empty())
        .map(|p| Password::Given(Secret(p))))
}

fn read_password_file(path: &Path) -> Result<Secret, ConfigError> {
    let text = fs::read_to_string(path).map_err(|error| ConfigError::Read {
        path: path.to_owned(),
        error,
    })?;
    // One trailing newline is how `echo secret > file` writes it, not part of the password.
    let p = text.strip_suffix('\n').unwrap_or(&text);
    let p = p.strip_suffix('\r').unwrap_or(p);
    if p.is_empty() {
        return Err(ConfigError::Invalid {
            path: path.to_owned(),
            message: "the password file is empty".into(),
        });
    }
    Ok(Secret(p.to_owned()))
}

/// A confdir's confd.toml as read, and what it sets for every conf.d resource.
struct Confdir {
    confdir: PathBuf,
    config_file: PathBuf,
    file: ConfdToml,
    defaults: Defaults,
}

/// The conf.d resources of `cli`'s confdir (with confd.toml's defaults), and those that could
/// not be loaded; nothing about stores or the daemon (for `convert`).
pub fn resources(cli: &Cli) -> Result<(Vec<Resource>, Vec<Broken>), ConfigError> {
    let c = read_confdir(cli)?;
    load_resources(&c.confdir, &c.defaults)
}

fn read_confdir(cli: &Cli) -> Result<Confdir, ConfigError> {
    let confdir = cli
        .confdir
        .clone()
        .unwrap_or_else(|| PathBuf::from(DEFAULT_CONFDIR));
    let config_file = cli
        .config_file
        .clone()
        .unwrap_or_else(|| confdir.join("confd.toml"));
    let file = read_confd_toml(cli, &config_file)?;
    // confd.toml may move the confdir (a --config-file elsewhere, say); a flag still wins.
    let confdir = cli
        .confdir
        .clone()
        .or(file.confdir.clone())
        .unwrap_or(confdir);
    if !confdir.is_dir() {
        return Err(ConfigError::Invalid {
            path: confdir,
            message: "confdir does not exist or is not a directory (set it with --confdir)".into(),
        });
    }
    let prefix = cli
        .prefix
        .clone()
        .or(file.prefix.clone())
        .unwrap_or_default();
    let keep_stage_file = cli
        .keep_stage_file
        .or(file.keep_stage_file)
        .unwrap_or(false);
    let defaults = Defaults {
        prefix,
        keep_stage_file,
        syntax: file.syntax.unwrap_or(SyntaxKey::Auto),
    };
    Ok(Confdir {
        confdir,
        config_file,
        file,
        defaults,
    })
}

/// What confd.toml (or a flag) sets for every resource.
struct Defaults {
    prefix: String,
    keep_stage_file: bool,
    syntax: SyntaxKey,
}

/// Every conf.d resource; one that cannot be loaded is returned apart, so the others still run.
fn load_resources(
    confdir: &Path,
    defaults: &Defaults,
) -> Result<(Vec<Resource>, Vec<Broken>), ConfigError> {
    let dir = confdir.join("conf.d");
    let mut paths = Vec::new();
    collect_tomls(&dir, &mut paths)?;
    // Each file (and its template) is read and parsed on its own: over the cores, in order.
    let loaded = crate::over_cores(&paths, |p| load_resource(confdir, p, defaults));
    let mut resources = Vec::new();
    let mut broken = Vec::new();
    for (p, loaded) in paths.iter().zip(loaded) {
        match loaded {
            Ok(r) => resources.push(r),
            Err(e) => broken.push(Broken {
                name: p.display().to_string(),
                reason: e.to_string(),
            }),
        }
    }
    // Two resources writing one dest would overwrite each other on every pass: neither runs.
    let mut by_dest: std::collections::HashMap<&Path, Vec<String>> = Default::default();
    for r in &resources {
        by_dest.entry(&r.dest).or_default().push(r.name.clone());
    }
    let mut clashes: Vec<(PathBuf, Vec<String>)> = by_dest
        .into_iter()
        .filter(|(_, names)| names.len() > 1)
        .map(|(dest, names)| (dest.to_owned(), names))
        .collect();
    clashes.sort();
    for (dest, names) in clashes {
        resources.retain(|r| r.dest != dest);
        for name in &names {
            let others: Vec<&str> = names
                .iter()
                .filter(|n| *n != name)
                .map(String::as_str)
                .collect();
            broken.push(Broken {
                name: name.clone(),
                reason: format!(
                    "{name}: template.dest {} is also the dest of {}: a dest has one resource",
                    dest.display(),
                    others.join(", ")
                ),
            });
        }
    }
    Ok((resources, broken))
}

/// A whole conf.d file or template. They are small: a buffer that fits most of them, filled
/// through `Take`, spares the stat and seek `File`'s own read_to_string spends sizing its buffer
/// (2,000 files a run in the per-app layout).
fn read_small(path: &Path) -> std::io::Result<String> {
    use std::io::Read;
    let mut text = String::with_capacity(2048);
    fs::File::open(path)?
        .take(u64::MAX)
        .read_to_string(&mut text)?;
    Ok(text)
}

/// The .toml files under `dir`, recursively, in path order. Each directory's entries are
/// sorted by name: the same order as sorting whole paths, without comparing them component by
/// component (a conf.d of 1,000 files took ~10,000 such comparisons).
fn collect_tomls(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), ConfigError> {
    let read = |error| ConfigError::Read {
        path: dir.to_owned(),
        error,
    };
    let mut entries = Vec::new();
    for entry in fs::read_dir(dir).map_err(read)? {
        let entry = entry.map_err(read)?;
        // The directory entry knows its type: no stat per file, only per symlink.
        let is_dir = match entry.file_type() {
            Ok(t) if !t.is_symlink() => t.is_dir(),
            _ => entry.path().is_dir(),
        };
        entries.push((entry.file_name(), is_dir));
    }
    entries.sort_unstable();
    for (name, is_dir) in entries {
        let path = dir.join(name);
        if is_dir {
            collect_tomls(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "toml") {
            out.push(path);
        }
    }
    Ok(())
}

fn load_resource(
    confdir: &Path,
    path: &Path,
    defaults: &Defaults,
) -> Result<Resource, ConfigError> {
    let text = read_small(path).map_err(|error| ConfigError::Read {
        path: path.to_owned(),
        error,
    })?;
    let t = parse_toml::<ResourceToml>(path, &text)?.template;
    let invalid = |message: String| ConfigError::Invalid {
        path: path.to_owned(),
        message,
    };
    if t.src.is_empty() {
        return Err(invalid(
            "template.src is empty: expected a file name under templates/".into(),
        ));
    }
    if t.dest.as_os_str().is_empty() {
        return Err(invalid(
            "template.dest is empty: expected the path of the file to write".into(),
        ));
    }
    let src = confdir.join("templates").join(&t.src);
    let mut template =
        read_small(&src).map_err(|e| invalid(format!("template.src {}: {e}", src.display())))?;
    // Kept for the life of the configuration (the conf.d text is dropped after parsing).
    template.shrink_to_fit();
    let name = path.display().to_string();
    let mode = t
        .mode
        .as_deref()
        .map(parse_mode)
        .transpose()
        .map_err(invalid)?;
    let names_dir = DIR_FORMS
        .iter()
        .any(|f| t.dest.to_string_lossy().contains(f));
    match (&t.each, names_dir) {
        (Some(each), _) if !each.starts_with('/') => {
            return Err(invalid(format!(
                "template.each {each:?}: expected a key pattern such as \"/*\""
            )))
        }
        (Some(_), false) => {
            return Err(invalid(
                "template.dest must name the directory as {{ dir }} when template.each is set"
                    .into(),
            ))
        }
        (None, true) => {
            return Err(invalid(
                "template.dest names {{ dir }}: set template.each (for example \"/*\")".into(),
            ))
        }
        _ => {}
    }
    let prefix = keypath::join(&defaults.prefix, &t.prefix);
    let keys = t.keys.iter().map(|k| keypath::join(&prefix, k)).collect();
    let shrink = shrink_guard(&t).map_err(invalid)?;
    let uid = match (&t.owner, t.uid) {
        (Some(_), Some(_)) => {
            return Err(invalid(
                "template.owner and template.uid both set: keep one".into(),
            ))
        }
        (Some(owner), None) => Some(uid_of(owner).map_err(invalid)?),
        (None, uid) => uid,
    };
    let check_cmd = t.check_cmd.filter(|c| !c.trim().is_empty());
    let reload_cmd = t.reload_cmd.filter(|c| !c.trim().is_empty());
    let dynamic = match (t.dynamic, &reload_cmd) {
        (Some(socket), _) if !socket.is_absolute() => {
            return Err(invalid(format!(
            "template.dynamic must be the absolute path of the balancer's admin socket, not {:?}",
            socket.display().to_string()
        )))
        }
        (Some(_), None) => {
            return Err(invalid(
                "template.dynamic needs reload_cmd: the reload path is its fallback".into(),
            ))
        }
        (dynamic, _) => dynamic,
    };
    let value_check = t.value_check.unwrap_or(
        if nginx_config(&t.dest, check_cmd.as_deref(), reload_cmd.as_deref()) {
            ValueCheck::Nginx
        } else {
            ValueCheck::None
        },
    );
    let (syntax, syntax_from) = match (t.syntax, defaults.syntax) {
        (Some(SyntaxKey::Go), _) => (Syntax::Go, "template.syntax"),
        (Some(SyntaxKey::Jinja), _) => (Syntax::Jinja, "template.syntax"),
        (None, SyntaxKey::Go) => (Syntax::Go, "confd.toml syntax"),
        (None, SyntaxKey::Jinja) => (Syntax::Jinja, "confd.toml syntax"),
        _ => (
            Syntax::detect(&template),
            "detected: Go when it parses as Go and has no {% or {# tag",
        ),
    };
    Ok(Resource {
        name,
        src,
        template,
        dest: t.dest,
        prefix,
        keys,
        mode,
        uid,
        gid: t.gid,
        check_cmd,
        reload_cmd,
        reload_pidfile: t.reload_pidfile,
        keep_stage_file: t.keep_stage_file.unwrap_or(defaults.keep_stage_file),
        each: t.each,
        syntax,
        syntax_from,
        shrink,
        value_check,
        dynamic,
    })
}

/// The shrink guard a [template] table asks for: on when `max_shrink` or `min_servers` is set.
fn shrink_guard(t: &TemplateToml) -> Result<Option<ShrinkGuard>, String> {
    if t.max_shrink.is_none() && t.min_servers.is_none() {
        if t.shrink_hold.is_some() {
            return Err("template.shrink_hold is set without max_shrink or min_servers".into());
        }
        return Ok(None);
    }
    let max_shrink = match t.max_shrink.as_deref() {
        None => 1.0,
        Some(s) => s
            .strip_suffix('%')
            .and_then(|n| n.trim().parse::<f64>().ok())
            .filter(|n| (0.0..=100.0).contains(n))
            .map(|n| n / 100.0)
            .ok_or_else(|| {
                format!("template.max_shrink {s:?}: expected a percentage from 0% to 100%, such as \"50%\"")
            })?,
    };
    let hold = t.shrink_hold.unwrap_or(DEFAULT_SHRINK_HOLD_SECS);
    if hold == 0 {
        return Err("template.shrink_hold: must be greater than 0 (seconds)".into());
    }
    Ok(Some(ShrinkGuard {
        max_shrink,
        min_servers: t.min_servers.unwrap_or(0),
        hold: Duration::from_secs(hold),
    }))
}

/// The uid of a user name (confd's `owner`).
fn uid_of(owner: &str) -> Result<u32, String> {
    match nix::unistd::User::from_name(owner) {
        Ok(Some(user)) => Ok(user.uid.as_raw()),
        Ok(None) => Err(format!(
            "template.owner {owner:?}: no such user on this host"
        )),
        Err(e) => Err(format!(
            "template.owner {owner:?}: cannot look the user up: {e}"
        )),
    }
}

/// How a fan-out dest names its directory.
pub const DIR_FORMS: [&str; 2] = ["{{ dir }}", "{{dir}}"];

impl Resource {
    /// The dest of one directory of a fan-out resource (its base name in place of `{{ dir }}`).
    pub fn dest_of(&self, dir: &str) -> PathBuf {
        let mut dest = self.dest.to_string_lossy().into_owned();
        for f in DIR_FORMS {
            dest = dest.replace(f, dir);
        }
        PathBuf::from(dest)
    }
}

/// File modes are octal with or without a leading `0`/`0o` ("0644", "644", "0o644"). confd parses
/// "644" as decimal (mode 01204); nobody means that.
fn parse_mode(s: &str) -> Result<u32, String> {
    let digits = s.strip_prefix("0o").unwrap_or(s);
    u32::from_str_radix(digits, 8)
        .ok()
        .filter(|m| *m <= 0o7777)
        .ok_or_else(|| format!("template.mode {s:?}: expected an octal file mode such as \"0644\""))
}

fn parse_toml<T: serde::de::DeserializeOwned>(path: &Path, text: &str) -> Result<T, ConfigError> {
    toml::from_str(text).map_err(|e| {
        let line = e.span().map_or(1, |s| {
            text[..s.start.min(text.len())].matches('\n').count() + 1
        });
        ConfigError::Toml {
            path: path.to_owned(),
            line,
            message: e.message().trim().replace('\n', " "),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_urls_are_checked_and_never_show_a_password() {
        for (node, url) in [
            ("10.0.0.1:2379", "https://10.0.0.1:2379"),
            ("http://10.0.0.1:2379", "http://10.0.0.1:2379"),
            ("http://etcd-1.example:2379/", "http://etcd-1.example:2379"),
            ("HTTPS://etcd-1.example:2379", "https://etcd-1.example:2379"),
            ("https://[::1]:2379", "https://[::1]:2379"),
        ] {
            assert_eq!(node_url(node, "https").as_deref(), Ok(url));
        }
        for (node, why) in [
            ("http://10.0.0.1", "\"http://10.0.0.1\" has no port"),
            ("ftp://10.0.0.1:2379", "has another scheme"),
            ("http://10.0.0.1:2379/v3", "has a path"),
            ("http://10.0.0.1:2379?x=1", "has a query"),
            ("http://10.0.0.1:port", "has an invalid port"),
            ("http://[::1", "is not a URL"),
            ("", "\"http://\" is not a URL"),
            (
                "http://u:pw@10.0.0.1:2379",
                "\"http://***@10.0.0.1:2379\" holds a user",
            ),
            ("u:pw@10.0.0.1:x", "\"http://***@10.0.0.1:x\""),
        ] {
            let err = node_url(node, "http").expect_err(node);
            assert!(err.contains(why), "{node}: {err}");
            assert!(!err.contains("pw"), "{node}: {err}");
        }
    }

    #[test]
    fn conf_d_files_load_in_path_order_across_subdirectories() {
        let dir = tempfile::tempdir().expect("tempdir");
        let files = [
            "a.toml",
            "a/b.toml",
            "a-b.toml",
            "a.b/c.toml",
            "B.toml",
            "z.toml",
        ];
        for f in files.iter().chain(&["a/notes.txt"]) {
            let path = dir.path().join(f);
            fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
            fs::write(&path, "").expect("write");
        }
        let mut found = Vec::new();
        collect_tomls(dir.path(), &mut found).expect("walk");
        let mut expected: Vec<PathBuf> = files.iter().map(|f| dir.path().join(f)).collect();
        expected.sort();
        assert_eq!(found, expected);
    }

    #[test]
    fn mode_is_octal() {
        assert_eq!(parse_mode("0644"), Ok(0o644));
        assert_eq!(parse_mode("644"), Ok(0o644));
        assert_eq!(parse_mode("0o600"), Ok(0o600));
        assert!(parse_mode("rw-r--r--").is_err());
        assert!(parse_mode("99999").is_err());
    }

    #[test]
    fn toml_errors_name_file_and_line() {
        let text = "[template]\nsrc = \"a.tmpl\"\ndest = \"/tmp/x\"\nreload_cmd_typo = \"x\"\n";
        let err = parse_toml::<ResourceToml>(Path::new("conf.d/x.toml"), text)
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("conf.d/x.toml:4: unknown field `reload_cmd_typo`"),
            "{err}"
        );
        let text = "[template]\nsrc = 3\ndest = \"/tmp/x\"\n";
        let err = parse_toml::<ResourceToml>(Path::new("x.toml"), text)
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("x.toml:2: invalid type: integer `3`, expected a string"),
            "{err}"
        );
        let err = parse_toml::<ResourceToml>(Path::new("x.toml"), "[template]\ndest = \"/x\"\n")
            .unwrap_err();
        assert!(err.to_string().contains("missing field `src`"), "{err}");
    }
}
