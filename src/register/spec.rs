//! What to register: a key and value from `--key/--value`, or the seed's layout from parts
//! (`/<app>_<ENV>/<ip>-<port>` = `<ip>:<port>`), with `auto` ip and port resolved here.

use std::net::{IpAddr, TcpListener};

use super::RegisterError;
use crate::cli::RegisterArgs;
use crate::keypath;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spec {
    pub key: String,
    pub value: String,
    /// The instance's address, when given by parts (health URLs and $PORT derive from it).
    pub addr: Option<(IpAddr, u16)>,
}

pub fn resolve(args: &RegisterArgs, prefix: &str) -> Result<Spec, RegisterError> {
    let usage = |m: String| RegisterError::Usage(m);
    if let (Some(key), Some(value)) = (&args.key, &args.value) {
        if key.trim().is_empty() || value.is_empty() {
            return Err(usage("--key and --value must not be empty".into()));
        }
        return Ok(Spec {
            key: keypath::join(prefix, key),
            value: value.clone(),
            addr: None,
        });
    }
    let (Some(app), Some(env), Some(ip), Some(port)) =
        (&args.app, &args.environment, &args.ip, &args.port)
    else {
        return Err(usage(
            "say what to register: --key K --value V, or --app --env --ip --port".into(),
        ));
    };
    for (flag, v) in [("--app", app), ("--env", env)] {
        if v.is_empty()
            || !v
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.'))
        {
            return Err(usage(format!(
                "{flag} {v:?}: expected letters, digits, '-' or '.'"
            )));
        }
    }
    let ip = match ip.as_str() {
        "auto" => primary_ip()?,
        s => s.parse().map_err(|_| {
            usage(format!(
                "--ip {s:?}: expected an IPv4/IPv6 address or `auto`"
            ))
        })?,
    };
    let port = match port.as_str() {
        "auto" => free_port()?,
        s => s
            .parse::<u16>()
            .ok()
            .filter(|p| *p > 0)
            .ok_or_else(|| usage(format!("--port {s:?}: expected a port 1-65535 or `auto`")))?,
    };
    let host = match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => format!("[{v6}]"),
    };
    Ok(Spec {
        key: keypath::join(prefix, &format!("{app}_{env}/{ip}-{port}")),
        value: format!("{host}:{port}"),
        addr: Some((ip, port)),
    })
}

/// A port nobody listens on now, for the instance to take.
fn free_port() -> Result<u16, RegisterError> {
    TcpListener::bind(("0.0.0.0", 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| RegisterError::Usage(format!("--port auto: no free port: {e}")))
}

/// The address of the interface the default route uses, else the first non-loopback IPv4 one.
fn primary_ip() -> Result<IpAddr, RegisterError> {
    let default_if = std::fs::read_to_string("/proc/net/route")
        .ok()
        .and_then(|t| {
            t.lines().skip(1).find_map(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                (f.get(1) == Some(&"00000000")).then(|| f[0].to_owned())
            })
        });
    let addrs = nix::ifaddrs::getifaddrs()
        .map_err(|e| RegisterError::Usage(format!("--ip auto: cannot list interfaces: {e}")))?;
    let mut candidates: Vec<(String, IpAddr)> = addrs
        .filter_map(|a| {
            let ip = IpAddr::V4(a.address?.as_sockaddr_in()?.ip());
            (!ip.is_loopback()).then_some((a.interface_name, ip))
        })
        .collect();
    candidates.sort_by_key(|(name, _)| Some(name) != default_if.as_ref());
    candidates.first().map(|(_, ip)| *ip).ok_or_else(|| {
        RegisterError::Usage("--ip auto: this host has no non-loopback IPv4 address".into())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{parse, Command};

    fn spec(args: &[&str]) -> Result<Spec, RegisterError> {
        let argv = ["confd-rs", "register"]
            .iter()
            .chain(args)
            .map(std::ffi::OsString::from);
        let cli = parse(argv).expect("parses");
        let Some(Command::Register(r)) = cli.command else {
            panic!("register")
        };
        resolve(&r, cli.prefix.as_deref().unwrap_or(""))
    }

    #[test]
    fn seed_layout_from_parts() {
        let s = spec(&[
            "--app",
            "search",
            "--env",
            "PRE",
            "--ip",
            "172.18.100.31",
            "--port",
            "86",
        ])
        .expect("valid");
        assert_eq!(s.key, "/search_PRE/172.18.100.31-86");
        assert_eq!(s.value, "172.18.100.31:86");
        let s = spec(&[
            "--prefix", "/prod", "--app", "a", "--env", "E", "--ip", "::1", "--port", "8",
        ])
        .expect("valid");
        assert_eq!(
            (s.key.as_str(), s.value.as_str()),
            ("/prod/a_E/::1-8", "[::1]:8")
        );
    }

    #[test]
    fn auto_port_is_free() {
        let s = spec(&[
            "--app",
            "a",
            "--env",
            "E",
            "--ip",
            "127.0.0.1",
            "--port",
            "auto",
        ])
        .expect("valid");
        let port = s.addr.expect("addr").1;
        assert!(TcpListener::bind(("127.0.0.1", port)).is_ok());
    }

    #[test]
    fn malformed_parts_are_usage_errors() {
        let base = ["--app", "a", "--env", "E"];
        for (extra, msg) in [
            (
                ["--ip", "1.2.3", "--port", "80"],
                "--ip \"1.2.3\": expected an IPv4/IPv6 address",
            ),
            (
                ["--ip", "1.2.3.4", "--port", "0"],
                "--port \"0\": expected a port 1-65535",
            ),
            (["--ip", "1.2.3.4", "--port", "x"], "--port \"x\""),
        ] {
            let args: Vec<&str> = base.iter().chain(extra.iter()).copied().collect();
            let err = spec(&args).unwrap_err().to_string();
            assert!(err.contains(msg), "{err}");
        }
        let err = spec(&[
            "--app", "a b", "--env", "E", "--ip", "1.2.3.4", "--port", "1",
        ])
        .unwrap_err();
        assert!(err.to_string().contains("--app \"a b\""), "{err}");
    }
}
