//! Signals for the daemon: SIGTERM/SIGINT set the stop request (urgent: a watch channel the loop
//! and the pass in flight both see); SIGHUP is a Reconfigure event.

use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::mpsc::Sender;
use tokio::sync::watch;

use crate::event::Event;

/// Installs the handlers now (so a signal is never lost to the default action once the daemon
/// runs) and returns the worker that forwards them. The worker holds `stop` for as long as the
/// process runs.
pub fn worker(
    stop: watch::Sender<bool>,
    tx: Sender<Event>,
) -> std::io::Result<impl std::future::Future<Output = ()>> {
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let mut hup = signal(SignalKind::hangup())?;
    Ok(async move {
        loop {
            let why = tokio::select! {
                _ = term.recv() => "SIGTERM",
                _ = int.recv() => "SIGINT",
                _ = hup.recv() => {
                    if tx.send(Event::Reconfigure("SIGHUP")).await.is_err() {
                        return;
                    }
                    continue;
                }
            };
            tracing::info!("{why}: finishing the unit in flight, then exiting");
            stop.send_replace(true);
        }
    })
}
