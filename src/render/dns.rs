//! confd's `lookupSRV`: one SRV query over UDP to the first nameserver in /etc/resolv.conf, with
//! the wire format from hickory-proto. Like confd, a failed lookup yields no records.

use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

use hickory_proto::op::Message;
use hickory_proto::op::Query;
use hickory_proto::rr::{Name, RData, RecordType};

const TIMEOUT: Duration = Duration::from_secs(2);

/// An SRV record as Go's `net.SRV` has it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Srv {
    pub target: String,
    pub port: u16,
    pub priority: u16,
    pub weight: u16,
}

/// `_service._proto.name` SRV records, sorted as confd sorts them (by target, port, priority,
/// weight, as one string).
pub fn lookup_srv(service: &str, proto: &str, name: &str) -> Vec<Srv> {
    let Some(server) = nameserver() else {
        return Vec::new();
    };
    let mut records = query(server, &format!("_{service}._{proto}.{name}"), TIMEOUT)
        .unwrap_or_else(|e| {
            tracing::debug!("lookupSRV {service} {proto} {name}: {e}");
            Vec::new()
        });
    records.sort_by_key(|s| format!("{}{}{}{}", s.target, s.port, s.priority, s.weight));
    records
}

fn nameserver() -> Option<SocketAddr> {
    let conf = std::fs::read_to_string("/etc/resolv.conf").ok()?;
    conf.lines().find_map(|l| {
        let ip = l.trim().strip_prefix("nameserver")?.trim().parse().ok()?;
        Some(SocketAddr::new(ip, 53))
    })
}

fn query(server: SocketAddr, name: &str, timeout: Duration) -> Result<Vec<Srv>, String> {
    let mut msg = Message::query();
    msg.metadata.recursion_desired = true;
    msg.add_query(Query::query(
        Name::from_ascii(name).map_err(|e| e.to_string())?,
        RecordType::SRV,
    ));
    let local: SocketAddr = if server.is_ipv4() {
        ([0, 0, 0, 0], 0).into()
    } else {
        ([0u16; 8], 0).into()
    };
    let socket = UdpSocket::bind(local).map_err(|e| e.to_string())?;
    socket
        .set_read_timeout(Some(timeout))
        .map_err(|e| e.to_string())?;
    socket
        .send_to(&msg.to_vec().map_err(|e| e.to_string())?, server)
        .map_err(|e| e.to_string())?;
    let mut buf = [0u8; 4096];
    loop {
        let (n, from) = socket.recv_from(&mut buf).map_err(|e| e.to_string())?;
        let Ok(resp) = Message::from_vec(&buf[..n]) else {
            continue;
        };
        if from != server || resp.metadata.id != msg.metadata.id {
            continue;
        }
        return Ok(resp
            .answers
            .iter()
            .filter_map(|r| match &r.data {
                RData::SRV(srv) => Some(Srv {
                    target: srv.target.to_string(),
                    port: srv.port,
                    priority: srv.priority,
                    weight: srv.weight,
                }),
                _ => None,
            })
            .collect());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::rr::rdata::SRV;
    use hickory_proto::rr::Record;

    /// A one-shot DNS server on loopback answering with two SRV records.
    fn fake_server() -> SocketAddr {
        let socket = UdpSocket::bind("127.0.0.1:0").expect("bind");
        let addr = socket.local_addr().expect("addr");
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            let (n, from) = socket.recv_from(&mut buf).expect("query");
            let query = Message::from_vec(&buf[..n]).expect("parse query");
            let mut resp = Message::response(query.metadata.id, query.metadata.op_code);
            let name = query.queries[0].name().clone();
            for (prio, port, target) in [(10, 8080, "b.example.com."), (5, 80, "a.example.com.")] {
                let target = Name::from_ascii(target).expect("name");
                resp.answers.push(Record::from_rdata(
                    name.clone(),
                    60,
                    RData::SRV(SRV::new(prio, 1, port, target)),
                ));
            }
            socket
                .send_to(&resp.to_vec().expect("encode"), from)
                .expect("answer");
        });
        addr
    }

    #[test]
    fn srv_records_are_read_from_the_answer() {
        let mut got = query(fake_server(), "_http._tcp.example.com", TIMEOUT).expect("answered");
        got.sort_by_key(|s| s.target.clone());
        assert_eq!(
            got,
            [
                Srv {
                    target: "a.example.com.".into(),
                    port: 80,
                    priority: 5,
                    weight: 1
                },
                Srv {
                    target: "b.example.com.".into(),
                    port: 8080,
                    priority: 10,
                    weight: 1
                },
            ]
        );
    }
}
