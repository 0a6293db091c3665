//! Reload-free membership changes (`dynamic = SOCKET` in a conf.d resource): the upstream file
//! is still rendered and installed on every change, carrying its etcd revision in each
//! upstream's balancer directive; when only server lists of upstreams nginx already has
//! changed, the new sets go to the Lua balancer (`lua/confd_rs.lua`) over its admin socket
//! instead of a reload. nginx uses a set only while it is at least as new as the file it loaded,
//! so a delivery that fails (then the reload path runs, with the file already in place) or a
//! restarted nginx (its dict is empty) serves the file's list: the file is always the truth.
//!
//! `layout` reads files and decides the route, `client` speaks to the endpoint; the pipeline
//! calls [`deliver`] and [`resync`]; the daemon runs [`watch_nginx`] as an event source.

pub mod client;
pub mod layout;

use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::sync::mpsc::Sender;

pub use client::EndpointError;
pub use layout::{route, Layout, Route, Set};

use crate::event::Event;

/// Sends `sets` to the balancer at `socket`: all of them, or the first error.
pub async fn deliver(socket: &Path, sets: &[Set]) -> Result<(), EndpointError> {
    let mut endpoint = client::Endpoint::connect(socket).await?;
    for set in sets {
        endpoint.send(set, false).await?;
    }
    Ok(())
}

/// Compares what nginx holds at `socket` with `sets` (read from the installed files) and sends
/// each set that differs, replacing what nginx has: the files are the truth. Returns how many
/// were sent.
pub async fn resync(socket: &Path, sets: &[Set]) -> Result<usize, EndpointError> {
    let mut endpoint = client::Endpoint::connect(socket).await?;
    let held = endpoint.held().await?;
    let mut sent = 0;
    for set in sets {
        let same = held
            .get(&set.name)
            .is_some_and(|h| h.version == set.version && h.same_servers(set));
        if !same {
            endpoint.send(set, true).await?;
            sent += 1;
        }
    }
    Ok(sent)
}

/// How often nginx's sets are compared with the files even when nothing seems to have happened
/// (an operator's reload that changed the dict's size, a lost dict).
pub const RESYNC_PERIOD: Duration = Duration::from_secs(30);

/// How often the nginx master's pid file is read, to notice a restart.
const PID_CHECK: Duration = Duration::from_secs(1);

/// An event source: asks for a resync when the master a pid file names changes (nginx restarted,
/// its dict empty) and every [`RESYNC_PERIOD`].
pub async fn watch_nginx(pidfiles: Vec<PathBuf>, tx: Sender<Event>) {
    let read = || -> Vec<Option<String>> {
        pidfiles
            .iter()
            .map(|p| std::fs::read_to_string(p).ok().map(|s| s.trim().to_owned()))
            .collect()
    };
    let mut masters = read();
    let mut last = tokio::time::Instant::now();
    let mut tick = tokio::time::interval(PID_CHECK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let now = read();
        let why = if now != masters && now.iter().all(Option::is_some) {
            "the nginx master changed"
        } else if last.elapsed() >= RESYNC_PERIOD {
            "periodic"
        } else {
            continue;
        };
        masters = now;
        last = tokio::time::Instant::now();
        if tx.send(Event::Resync(why)).await.is_err() {
            return;
        }
    }
}
