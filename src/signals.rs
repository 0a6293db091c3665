//! Signals as events: SIGTERM/SIGINT finish the apply in flight and exit; SIGHUP reconfigures.

use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::mpsc::Sender;

use crate::event::Event;

/// Installs the handlers now (so a signal is never lost to the default action once the daemon
/// runs) and returns the worker that forwards them.
pub fn worker(tx: Sender<Event>) -> std::io::Result<impl std::future::Future<Output = ()>> {
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let mut hup = signal(SignalKind::hangup())?;
    Ok(async move {
        loop {
            let ev = tokio::select! {
                _ = term.recv() => Event::Shutdown("SIGTERM"),
                _ = int.recv() => Event::Shutdown("SIGINT"),
                _ = hup.recv() => Event::Reconfigure("SIGHUP"),
            };
            if tx.send(ev).await.is_err() {
                return;
            }
        }
    })
}
