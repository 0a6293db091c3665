//! What may stand after nginx's `server` directive: a value from etcd is validated here so it can
//! never inject directives (`nginx -t` accepts a balanced injection).

use std::net::{Ipv4Addr, Ipv6Addr};

/// The host of a valid `host:port`: an address literal, or a DNS name (which nginx resolves
/// when it loads the config).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Host<'a> {
    Address,
    Name(&'a str),
}

/// `IPv4:port`, `[IPv6]:port` or `dns.name:port`, port 1–65535: what its host is, or `None`
/// when `s` is not one.
pub fn host_port(s: &str) -> Option<Host<'_>> {
    let (host, port) = match s.strip_prefix('[') {
        Some(rest) => match rest.split_once("]:") {
            Some((v6, port)) if v6.parse::<Ipv6Addr>().is_ok() => (None, port),
            _ => return None,
        },
        None => {
            let (host, port) = s.rsplit_once(':')?;
            (Some(host), port)
        }
    };
    let port_ok = !port.is_empty()
        && port.len() <= 5
        && port.bytes().all(|b| b.is_ascii_digit())
        && port.parse::<u32>().is_ok_and(|p| (1..=65535).contains(&p));
    if !port_ok {
        return None;
    }
    match host {
        None => Some(Host::Address),
        Some(h) if h.bytes().all(|b| b.is_ascii_digit() || b == b'.') => {
            h.parse::<Ipv4Addr>().is_ok().then_some(Host::Address)
        }
        Some(h) => (h.len() <= 253 && h.split('.').all(is_dns_label)).then_some(Host::Name(h)),
    }
}

/// The first character of `s` that could end or open an nginx directive (`;`), block (`{` `}`),
/// comment (`#`, or a line break ending one) or string (`"` `'` `\\`) if printed into nginx
/// config as it is.
pub fn nginx_breaker(s: &str) -> Option<char> {
    s.chars()
        .find(|c| matches!(c, ';' | '{' | '}' | '#' | '"' | '\'' | '\\') || c.is_control())
}

fn is_dns_label(l: &str) -> bool {
    (1..=63).contains(&l.len())
        && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && !l.starts_with('-')
        && !l.ends_with('-')
}

/// A name nginx takes as an `upstream` name without quoting.
pub fn is_nginx_name(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_host_names_are_looked_up() {
        assert_eq!(
            host_port("app-1.svc.local:80"),
            Some(Host::Name("app-1.svc.local"))
        );
        assert_eq!(host_port("172.18.100.31:86"), Some(Host::Address));
        assert_eq!(host_port("[::1]:8080"), Some(Host::Address));
    }

    #[test]
    fn accepts_what_nginx_server_takes() {
        for ok in [
            "172.18.100.31:86",
            "[::1]:8080",
            "[2001:db8::1]:443",
            "app-1.svc.local:65535",
            "localhost:1",
        ] {
            assert!(host_port(ok).is_some(), "{ok}");
        }
    }

    #[test]
    fn rejects_anything_else() {
        for bad in [
            "172.18.100.31",
            "172.18.100.31:0",
            "172.18.100.31:65536",
            "172.18.100.31:+80",
            "999.1.1.1:80",
            "::1:80",
            "[::1]80",
            "[zz::1]:80",
            "-bad.host:80",
            "host_name:80",
            "127.0.0.1:1; } server { listen 127.0.0.1:38090; location / { return 200 pwned; } } upstream x { server 127.0.0.1:2",
            "127.0.0.1:80 backup",
            "",
        ] {
            assert_eq!(host_port(bad), None, "{bad}");
        }
    }

    #[test]
    fn upstream_names() {
        assert!(is_nginx_name("search_PRE"));
        assert!(!is_nginx_name("a b"));
        assert!(!is_nginx_name("x{"));
        assert!(!is_nginx_name(""));
    }
}
