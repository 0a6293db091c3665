//! What the daemon reacts to. Every source (store, signals, confdir edits) is a worker that sends
//! these into one channel, consumed by one loop: signals are just events.

use tokio::sync::mpsc::Sender;

use crate::store::Snapshot;

#[derive(Debug)]
pub enum Event {
    /// From the store source started as `epoch`; a replaced source's leftovers are stale.
    Store { epoch: u64, event: StoreEvent },
    /// Re-read confd.toml, conf.d and templates (SIGHUP or an edit in the confdir).
    Reconfigure(&'static str),
    /// Finish the apply in flight and exit (SIGTERM or SIGINT).
    Shutdown(&'static str),
}

#[derive(Debug)]
pub enum StoreEvent {
    /// A complete, consistent view of the watched keys (first read, resync, or a poll).
    Snapshot(Snapshot),
    /// Changes to watched keys, in revision order, up to and including `revision`.
    Changes { revision: i64, changes: Vec<Change> },
    /// The store stopped answering; the last good files stay as they are.
    Down(String),
    /// The store answers again (a Snapshot or Changes follow if anything moved).
    Up,
}

/// One key's new value, or its deletion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub key: String,
    pub value: Option<String>,
}

/// A store source's end of the channel: everything it sends carries its epoch.
#[derive(Clone)]
pub struct StoreTx {
    epoch: u64,
    tx: Sender<Event>,
}

/// The daemon is gone: the source should stop.
#[derive(Debug)]
pub struct Closed;

impl StoreTx {
    pub fn new(epoch: u64, tx: Sender<Event>) -> StoreTx {
        StoreTx { epoch, tx }
    }

    pub async fn send(&self, event: StoreEvent) -> Result<(), Closed> {
        self.tx
            .send(Event::Store {
                epoch: self.epoch,
                event,
            })
            .await
            .map_err(|_| Closed)
    }
}
