//! What the daemon reacts to. Every source (store, signals, confdir edits) is a worker that sends
//! these into one channel, consumed by one loop: signals are just events.

use crate::store::Snapshot;

#[derive(Debug)]
pub enum Event {
    /// A complete, consistent view of the watched keys (first read, resync, or a poll).
    Snapshot(Snapshot),
    /// Changes to watched keys, in revision order, up to and including `revision`.
    Changes { revision: i64, changes: Vec<Change> },
    /// The store stopped answering; the last good files stay as they are.
    StoreDown(String),
    /// The store answers again (a Snapshot or Changes follow if anything moved).
    StoreUp,
    /// Re-read confd.toml, conf.d and templates (SIGHUP or an edit in the confdir).
    Reconfigure(&'static str),
    /// Finish the apply in flight and exit (SIGTERM or SIGINT).
    Shutdown(&'static str),
}

/// One key's new value, or its deletion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub key: String,
    pub value: Option<String>,
}
