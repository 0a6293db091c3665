//! Command-line flags. confd spells every flag with one dash (`-onetime`, `-node URL`); those
//! spellings are rewritten to clap's `--` form before parsing so existing supervisor lines work.

use std::ffi::OsString;
use std::path::PathBuf;

use clap::{Args, CommandFactory, Parser, Subcommand, ValueEnum};

/// Renders config files from etcd v3 (or key files) with confd's configuration and templates.
#[derive(Debug, Clone, Parser)]
#[command(name = "confd-rs", version = VERSION, about, max_term_width = 100)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    /// confd configuration directory (holds confd.toml, conf.d/ and templates/)
    /// [default: /etc/confd]
    #[arg(long, value_name = "DIR")]
    pub confdir: Option<PathBuf>,
    /// confd.toml to read [default: CONFDIR/confd.toml]
    #[arg(long, value_name = "FILE")]
    pub config_file: Option<PathBuf>,
    /// Backend: etcdv3 (alias etcd) or file [default: etcdv3]
    #[arg(long)]
    pub backend: Option<String>,
    /// etcd endpoint, repeatable [default: http://127.0.0.1:2379]
    #[arg(long = "node", value_name = "URL", global = true)]
    pub nodes: Vec<String>,
    /// Key file for the file backend (YAML, JSON, TOML or `etcdctl -w json` output), repeatable
    #[arg(long = "file", value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// Key prefix prepended to every resource's prefix (and to a registered key)
    #[arg(long, global = true)]
    pub prefix: Option<String>,
    /// Process every resource once and exit
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub onetime: Option<bool>,
    /// Render and print a diff of what would change; write nothing, run no command
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub noop: Option<bool>,
    /// With --noop: exit 1 when any resource would change
    #[arg(long)]
    pub exit_code: bool,
    /// Write files but run no check_cmd or reload_cmd
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub sync_only: Option<bool>,
    /// Keep stage files that were not installed
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub keep_stage_file: Option<bool>,
    /// Watch the store for changes (default); --watch=false polls every --interval
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub watch: Option<bool>,
    /// Seconds between polls when not watching [default: 600]
    #[arg(long, value_name = "SECS")]
    pub interval: Option<u64>,
    /// Log level: debug, info, warn or error [default: info]
    #[arg(long, global = true)]
    pub log_level: Option<String>,
    /// Log line format
    #[arg(long, value_enum, default_value_t = LogFormat::Text, global = true)]
    pub log_format: LogFormat,
    /// Seconds a check_cmd or reload_cmd may run before it is killed [default: 60]
    #[arg(long, value_name = "SECS")]
    pub command_timeout: Option<u64>,
    /// Daemon: a change arriving within this many ms of the previous one (or of an apply) is
    /// batched until the store is quiet this long [default: 100]
    #[arg(long = "coalesce-window", value_name = "MS")]
    pub coalesce_window_ms: Option<u64>,
    /// Daemon: the longest a batched change waits, in ms [default: 2000]
    #[arg(long = "coalesce-max", value_name = "MS")]
    pub coalesce_max_ms: Option<u64>,
    /// Daemon: serve Prometheus /metrics and /healthz on this address
    #[arg(long, value_name = "HOST:PORT")]
    pub metrics_addr: Option<std::net::SocketAddr>,
    /// Client certificate for etcd TLS (PEM)
    #[arg(long, value_name = "FILE", global = true)]
    pub client_cert: Option<PathBuf>,
    /// Client key for etcd TLS (PEM)
    #[arg(long, value_name = "FILE", global = true)]
    pub client_key: Option<PathBuf>,
    /// CA certificate(s) for etcd TLS (PEM)
    #[arg(long = "client-ca-keys", value_name = "FILE", global = true)]
    pub client_cakeys: Option<PathBuf>,
    /// etcd user (with --password)
    #[arg(long, global = true)]
    pub username: Option<String>,
    /// etcd password. Visible in `ps`: prefer --password-file or $CONFD_PASSWORD
    #[arg(long, global = true)]
    pub password: Option<String>,
    /// Read the etcd password from this file (one trailing newline is ignored)
    #[arg(long, value_name = "FILE", global = true, conflicts_with = "password")]
    pub password_file: Option<PathBuf>,
    /// confd's switch for etcd user/password auth; accepted for compatibility (a username enables it)
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub basic_auth: Option<bool>,
    /// URL scheme for nodes given without one (http or https)
    #[arg(long, global = true)]
    pub scheme: Option<String>,
    /// Colour --noop's diff: auto (a terminal, unless $NO_COLOR is set), always or never
    #[arg(long, value_enum, default_value_t = ColorChoice::Auto)]
    pub color: ColorChoice,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    Auto,
    Always,
    Never,
}

/// The environment variable holding the etcd password; removed from every command confd-rs
/// starts (check, reload, the registered instance), so it goes no further than confd-rs.
pub const PASSWORD_ENV: &str = "CONFD_PASSWORD";

/// The version, with the commit it was built from.
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (",
    env!("CONFD_RS_COMMIT"),
    ")"
);

#[derive(Debug, Clone, Subcommand)]
pub enum Command {
    /// Keep this instance registered in etcd (on a lease) exactly while it can serve
    Register(RegisterArgs),
    /// Print confd Go templates as minijinja (--write replaces them, keeping FILE.orig)
    Convert(ConvertArgs),
    /// Show what the running daemon did, per resource (its /status view)
    Status(StatusArgs),
    /// Validate a confdir without etcd (with --data: render each template and run its check)
    Check(CheckArgs),
    /// Write the man pages, or print shell completions (for packaging)
    #[command(hide = true)]
    Generate(GenerateArgs),
}

/// `confd-rs check [--confdir DIR] [--data KEYS]…`
#[derive(Debug, Clone, Args)]
pub struct CheckArgs {
    /// confd configuration directory [default: /etc/confd]
    #[arg(long, value_name = "DIR")]
    pub confdir: Option<PathBuf>,
    /// Key file (YAML/JSON or `etcdctl get --prefix -w json` output) to render every template
    /// from, running each check_cmd that names the staged file
    #[arg(long, value_name = "KEYS")]
    pub data: Vec<PathBuf>,
}

/// `confd-rs generate man DIR` | `confd-rs generate completions SHELL`
#[derive(Debug, Clone, Args)]
pub struct GenerateArgs {
    #[command(subcommand)]
    pub what: Generate,
}

#[derive(Debug, Clone, Subcommand)]
pub enum Generate {
    /// Write confd-rs.1 and a page per subcommand into DIR
    Man { dir: PathBuf },
    /// Print the completion script for SHELL (bash, zsh, fish)
    Completions { shell: clap_complete::Shell },
}

/// `confd-rs status [--metrics-addr HOST:PORT] [--json]`
#[derive(Debug, Clone, Args)]
pub struct StatusArgs {
    /// The daemon's metrics address [default: metrics_addr of confd.toml]
    #[arg(long, value_name = "HOST:PORT")]
    pub metrics_addr: Option<std::net::SocketAddr>,
    /// Print the /status JSON as the daemon serves it
    #[arg(long)]
    pub json: bool,
}

/// `confd-rs convert [FILE…] [--confdir DIR] [--write] [--data KEYS]`
#[derive(Debug, Clone, Args)]
pub struct ConvertArgs {
    /// Go templates to convert [default: every Go template the --confdir uses]
    #[arg(value_name = "FILE", required_unless_present = "confdir")]
    pub files: Vec<PathBuf>,
    /// confd configuration directory: its Go templates, and the conf.d files --write updates
    #[arg(long, value_name = "DIR")]
    pub confdir: Option<PathBuf>,
    /// Replace each template with its Jinja version (keeping FILE.orig) and set
    /// `syntax = "jinja"` in the conf.d files that use it
    #[arg(long)]
    pub write: bool,
    /// Key file (YAML/JSON or `etcdctl get --prefix -w json` output): render both versions and
    /// report identical / differs / not convertible per template
    #[arg(long, value_name = "KEYS")]
    pub data: Vec<PathBuf>,
}

/// `confd-rs register [KEY SPEC] [--ttl SECS] [--] [COMMAND ARGS…]`
#[derive(Debug, Clone, Args)]
pub struct RegisterArgs {
    /// The key to register (with --value); or build it from --app/--env/--ip/--port
    #[arg(long, requires = "value", conflicts_with_all = ["app", "environment"])]
    pub key: Option<String>,
    /// The value to register under --key
    #[arg(long, requires = "key")]
    pub value: Option<String>,
    /// App name: the key is /<app>_<env>/<ip>-<port> = <ip>:<port>
    #[arg(long, requires_all = ["environment", "ip", "port"])]
    pub app: Option<String>,
    /// Environment, as in search_PRE
    #[arg(long = "env", value_name = "ENV", requires = "app")]
    pub environment: Option<String>,
    /// Instance address, or `auto` for the host's primary non-loopback address
    #[arg(long, requires = "app")]
    pub ip: Option<String>,
    /// Instance port, or `auto` for a free port handed to COMMAND as $PORT
    #[arg(long, requires = "app")]
    pub port: Option<String>,
    /// Lease TTL in seconds: the key outlives a dead agent by at most this long
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(i64).range(1..))]
    pub ttl: i64,
    /// Also hand the port to COMMAND in this environment variable (besides PORT)
    #[arg(long, value_name = "NAME")]
    pub port_env: Option<String>,
    /// Register only while this URL answers 2xx (a path such as /healthz means the instance's own address)
    #[arg(long, value_name = "URL")]
    pub health_http: Option<String>,
    /// Register only while this shell command exits 0
    #[arg(long, value_name = "CMD", conflicts_with = "health_http")]
    pub health_cmd: Option<String>,
    /// Consecutive failed checks before the key is removed
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..))]
    pub health_fails: u32,
    /// Seconds between health checks
    #[arg(long, default_value_t = 1.0, value_name = "SECS")]
    pub health_interval: f64,
    /// Seconds a health check may take
    #[arg(long, default_value_t = 2.0, value_name = "SECS")]
    pub health_timeout: f64,
    /// On SIGTERM: seconds between removing the key and stopping COMMAND, for every nginx to reload
    #[arg(long, default_value_t = 0.0, value_name = "SECS")]
    pub drain: f64,
    /// Start COMMAND only once etcd answers (a signal still stops the wait at once). By default
    /// COMMAND starts at once and is registered when etcd becomes reachable
    #[arg(long, conflicts_with = "require_etcd")]
    pub wait_for_etcd: bool,
    /// Exit 3 without starting COMMAND when etcd is unreachable at start
    #[arg(long)]
    pub require_etcd: bool,
    /// The instance to run (its exit code becomes ours)
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "COMMAND"
    )]
    pub command: Vec<OsString>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// confd flags that confd-rs does not have, and what to use instead: refused by name rather
/// than as an unknown `-s`.
const CONFD_ONLY_FLAGS: &[(&str, &str)] = &[
    ("srv-domain", "list the etcd members with --node or `nodes`"),
    ("srv-record", "list the etcd members with --node or `nodes`"),
    (
        "auth-token",
        "confd-rs reads etcd only: use --username with --password-file",
    ),
    (
        "auth-type",
        "confd-rs reads etcd only: use --username with --password-file",
    ),
    ("app-id", "vault is not a backend of confd-rs"),
    ("user-id", "vault is not a backend of confd-rs"),
    ("role-id", "vault is not a backend of confd-rs"),
    ("secret-id", "vault is not a backend of confd-rs"),
    ("path", "vault is not a backend of confd-rs"),
    ("table", "dynamodb is not a backend of confd-rs"),
    ("separator", "redis is not a backend of confd-rs"),
    ("filter", "list the keys a resource reads in its `keys`"),
    (
        "secret-keyring",
        "encrypted values (crypt) are not supported",
    ),
    (
        "client-insecure",
        "TLS is always verified: give the CA with --client-ca-keys",
    ),
];

/// Parses the process arguments, accepting confd's single-dash long flags.
pub fn parse(args: impl IntoIterator<Item = OsString>) -> Result<Cli, clap::Error> {
    // clap adds --help and --version only when it builds the command; confd has -version too.
    let longs: Vec<String> = Cli::command()
        .get_arguments()
        .filter_map(|a| a.get_long().map(str::to_owned))
        .chain(["help".to_owned(), "version".to_owned()])
        .collect();
    let args = normalise(args, &longs);
    if let Some(msg) = confd_only_flag(&args) {
        return Err(Cli::command().error(clap::error::ErrorKind::UnknownArgument, msg));
    }
    Cli::try_parse_from(args)
}

/// The refusal of the first confd-only flag in `args` (before any subcommand or `--`).
fn confd_only_flag(args: &[OsString]) -> Option<String> {
    args.iter()
        .skip(1)
        .take_while(|a| *a != "--" && *a != "register")
        .filter_map(|a| a.to_str())
        .find_map(|a| {
            let name = a.trim_start_matches('-').split('=').next().unwrap_or("");
            let (_, instead) = CONFD_ONLY_FLAGS.iter().find(|(f, _)| *f == name)?;
            a.starts_with('-').then(|| {
                format!("`-{name}` is a confd flag that confd-rs does not support ({instead})")
            })
        })
}

/// `-name` / `-name=value` become `--name` / `--name=value` when `name` is one of our long flags;
/// everything after a bare `--` or the `register` subcommand (new, with no confd spelling to keep,
/// and followed by a command of its own) is left alone.
fn normalise(args: impl IntoIterator<Item = OsString>, longs: &[String]) -> Vec<OsString> {
    let mut out = Vec::new();
    let mut verbatim = false;
    for arg in args {
        if verbatim || arg == "--" || arg == "register" {
            verbatim = true;
            out.push(arg);
            continue;
        }
        let rewritten = arg.to_str().and_then(|s| {
            let name = s.strip_prefix('-').filter(|n| !n.starts_with('-'))?;
            let bare = name.split('=').next().unwrap_or(name);
            longs
                .iter()
                .any(|l| l == bare)
                .then(|| OsString::from(format!("-{s}")))
        });
        out.push(rewritten.unwrap_or(arg));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_strs(args: &[&str]) -> Result<Cli, clap::Error> {
        parse(args.iter().map(OsString::from))
    }

    #[test]
    fn confd_only_flags_are_refused_by_name_with_what_to_use() {
        for (args, needle) in [
            (
                &["confd-rs", "-srv-domain", "example.com"][..],
                "`-srv-domain` is a confd flag",
            ),
            (&["confd-rs", "--table=t"][..], "dynamodb"),
            (
                &["confd-rs", "-onetime", "-secret-keyring", "k"][..],
                "crypt",
            ),
        ] {
            let err = parse_strs(args).expect_err("refused").to_string();
            assert!(err.contains(needle), "{err}");
            assert!(err.contains("confd-rs does not support"), "{err}");
        }
        let after: Vec<OsString> = ["confd-rs", "register", "--app", "a", "--", "cmd", "-path"]
            .iter()
            .map(OsString::from)
            .collect();
        assert_eq!(
            confd_only_flag(&after),
            None,
            "the instance's own flags are its own"
        );
    }

    #[test]
    fn confd_single_dash_flags_are_accepted() {
        let cli = parse_strs(&[
            "confd-rs",
            "-onetime",
            "-confdir",
            "/etc/confd",
            "-node",
            "http://127.0.0.1:2379",
            "-node=http://127.0.0.1:2380",
            "-log-level",
            "debug",
            "-watch=false",
        ])
        .expect("parses");
        assert_eq!(cli.onetime, Some(true));
        assert_eq!(cli.confdir, Some(PathBuf::from("/etc/confd")));
        assert_eq!(
            cli.nodes,
            ["http://127.0.0.1:2379", "http://127.0.0.1:2380"]
        );
        assert_eq!(cli.log_level.as_deref(), Some("debug"));
        assert_eq!(cli.watch, Some(false));
    }

    #[test]
    fn double_dash_flags_and_unset_booleans() {
        let cli =
            parse_strs(&["confd-rs", "--noop", "--exit-code", "--prefix", "/x"]).expect("parses");
        assert_eq!(cli.noop, Some(true));
        assert!(cli.exit_code);
        assert_eq!(cli.onetime, None);
        assert_eq!(cli.prefix.as_deref(), Some("/x"));
    }

    #[test]
    fn confd_version_flag() {
        let err = parse_strs(&["confd-rs", "-version"]).expect_err("prints the version");
        assert_eq!(err.kind(), clap::error::ErrorKind::DisplayVersion);
    }

    #[test]
    fn unknown_single_dash_flag_is_an_error() {
        assert!(parse_strs(&["confd-rs", "-bogus"]).is_err());
    }

    #[test]
    fn register_takes_a_command_and_global_flags() {
        let cli = parse_strs(&[
            "confd-rs",
            "register",
            "--node",
            "http://127.0.0.1:2379",
            "--app",
            "search",
            "--env",
            "PRE",
            "--ip",
            "10.0.0.1",
            "--port",
            "auto",
            "--",
            "app",
            "-prefix",
            "--x",
        ])
        .expect("parses");
        assert_eq!(cli.nodes, ["http://127.0.0.1:2379"]);
        let Some(Command::Register(r)) = cli.command else {
            panic!("register")
        };
        assert_eq!(r.app.as_deref(), Some("search"));
        assert_eq!(r.command, ["app", "-prefix", "--x"]);
        assert!(
            parse_strs(&["confd-rs", "register", "--key", "/k"]).is_err(),
            "--key needs --value"
        );
        assert!(
            parse_strs(&["confd-rs", "register", "--app", "a", "--env", "E"]).is_err(),
            "needs ip and port"
        );
    }

    #[test]
    fn client_ca_keys_uses_confd_spelling() {
        let cli = parse_strs(&["confd-rs", "-client-ca-keys", "/ca.pem"]).expect("parses");
        assert_eq!(cli.client_cakeys, Some(PathBuf::from("/ca.pem")));
    }
}
