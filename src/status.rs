//! `confd-rs status`: the running daemon's `/status` view, as a table (or its JSON).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use crate::cli::{Cli, StatusArgs};
use crate::config::{self, ConfigError};
use crate::error::Error;
use crate::metrics::Status;

/// How long the daemon has to answer.
const TIMEOUT: Duration = Duration::from_secs(2);

pub fn main(cli: &Cli, args: &StatusArgs) -> Result<u8, Error> {
    let addr = match args.metrics_addr {
        Some(a) => a,
        None => config::settings(cli)?.metrics_addr().ok_or_else(|| {
            ConfigError::Flag(
                "no metrics address: pass --metrics-addr or set metrics_addr in confd.toml".into(),
            )
        })?,
    };
    let body = get(addr, "/status").map_err(Error::host("asking the daemon for /status"))?;
    if args.json {
        print!("{body}");
        return Ok(crate::error::OK);
    }
    let status: Status = serde_json::from_str(&body).map_err(|e| Error::Host {
        about: "reading the daemon's /status",
        source: std::io::Error::new(std::io::ErrorKind::InvalidData, e),
    })?;
    print!("{}", table(&status));
    Ok(crate::error::OK)
}

/// One HTTP/1.0 GET: the body of a 200 answer.
fn get(addr: SocketAddr, path: &str) -> std::io::Result<String> {
    let mut stream = TcpStream::connect_timeout(&addr, TIMEOUT)?;
    stream.set_read_timeout(Some(TIMEOUT))?;
    stream.set_write_timeout(Some(TIMEOUT))?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n")?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer)?;
    let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
    if !head.starts_with("HTTP/1.1 200") && !head.starts_with("HTTP/1.0 200") {
        let line = head.lines().next().unwrap_or("no answer");
        return Err(std::io::Error::other(format!("{addr}{path}: {line}")));
    }
    Ok(body.to_owned())
}

/// The status as aligned columns, one unit a line; a held or failing unit says why.
pub fn table(s: &Status) -> String {
    let mut rows = vec![[
        "UNIT".to_owned(),
        "RESULT".to_owned(),
        "LAST APPLY".to_owned(),
        "KEYS".to_owned(),
        "DROPPED".to_owned(),
        "REV".to_owned(),
        "DEST".to_owned(),
    ]];
    let mut notes = Vec::new();
    for u in &s.units {
        rows.push([
            u.unit.clone(),
            u.result.clone(),
            u.last_apply.clone(),
            u.keys_read.to_string(),
            u.dropped.to_string(),
            u.revision.to_string(),
            u.dest.clone(),
        ]);
        if let Some(why) = u.held.as_ref().or(u.last_error.as_ref()) {
            notes.push(format!("{}: {why}", u.unit));
        }
    }
    let widths: Vec<usize> = (0..7)
        .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = format!("store: {} (revision {})\n", s.store, s.revision);
    for r in &rows {
        let cells: Vec<String> = r
            .iter()
            .zip(&widths)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    for n in notes {
        out.push_str(&n.replace('\n', " "));
        out.push('\n');
    }
    for u in &s.upstreams {
        let held = u
            .nginx_version
            .map_or_else(|| "unknown".to_owned(), |v| v.to_string());
        out.push_str(&format!(
            "upstream {}: last change by {} at {}, file version {}, nginx holds {held}",
            u.name, u.path, u.last_change, u.version
        ));
        if let Some(e) = &u.last_error {
            out.push_str(&format!(" ({})", e.replace('\n', " ")));
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::UnitStatus;

    #[test]
    fn a_table_row_per_unit_and_the_reason_of_each_held_or_failing_one() {
        let s = Status {
            store: "connected".into(),
            revision: 42,
            units: vec![
                UnitStatus {
                    unit: "up.toml[/a_PRE]".into(),
                    dest: "/etc/nginx/conf.d/upstream-a_PRE.conf".into(),
                    last_apply: "2026-11-27T07:30:00Z".into(),
                    result: "held".into(),
                    held: Some("held by the shrink guard (/a_PRE/*: 10 -> 0 servers)".into()),
                    keys_read: 0,
                    revision: 42,
                    ..UnitStatus::default()
                },
                UnitStatus {
                    unit: "b.toml".into(),
                    result: "updated".into(),
                    keys_read: 10,
                    ..UnitStatus::default()
                },
            ],
            upstreams: vec![crate::metrics::UpstreamStatus {
                name: "a_PRE".into(),
                path: "dynamic".into(),
                last_change: "2026-11-27T07:31:00Z".into(),
                version: 41,
                endpoint: "/run/confd-rs/nginx/admin.sock".into(),
                nginx_version: Some(41),
                last_error: None,
            }],
        };
        let t = table(&s);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines[0], "store: connected (revision 42)");
        assert!(lines[1].starts_with("UNIT"), "{t}");
        assert!(lines[2].starts_with("up.toml[/a_PRE]  held"), "{t}");
        assert!(lines[3].starts_with("b.toml           updated"), "{t}");
        assert_eq!(
            lines[4],
            "up.toml[/a_PRE]: held by the shrink guard (/a_PRE/*: 10 -> 0 servers)"
        );
        assert_eq!(
            lines[5],
            "upstream a_PRE: last change by dynamic at 2026-11-27T07:31:00Z, file version 41, nginx holds 41"
        );
    }
}
