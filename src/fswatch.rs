//! File edits as a debounced stream: inotify reports one save as several events (create, modify,
//! close, rename), so a burst of them becomes one edit once they have been quiet for `DEBOUNCE`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use notify::{EventKind, RecommendedWatcher, RecursiveMode, Watcher};
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver};

const DEBOUNCE: Duration = Duration::from_millis(150);

pub struct Edits {
    rx: UnboundedReceiver<()>,
    _watcher: Option<RecommendedWatcher>,
}

impl Edits {
    /// Watches `roots`: a directory with everything below it, a file through its directory (so
    /// an editor's save-by-rename is seen). Other files in those directories are ignored. A root
    /// that cannot be watched is logged.
    pub fn new(roots: &[PathBuf]) -> Edits {
        let (tx, rx) = unbounded_channel();
        let filter: Vec<PathBuf> = roots.to_vec();
        let watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
            let Ok(ev) = res else { return };
            let edit = matches!(
                ev.kind,
                EventKind::Create(_) | EventKind::Modify(_) | EventKind::Remove(_)
            );
            if edit
                && ev
                    .paths
                    .iter()
                    .any(|p| filter.iter().any(|root| p.starts_with(root)))
            {
                let _ = tx.send(());
            }
        });
        let mut watcher = watcher
            .map_err(|e| tracing::warn!("cannot watch files for edits: {e}"))
            .ok();
        for root in roots {
            let (path, mode) = watch_target(root);
            if let Some(Err(e)) = watcher.as_mut().map(|w| w.watch(path, mode)) {
                tracing::warn!(path = %root.display(), "cannot watch for edits: {e}");
            }
        }
        Edits {
            rx,
            _watcher: watcher,
        }
    }

    /// Waits for the next burst of edits to end; None when watching is impossible.
    pub async fn next(&mut self) -> Option<()> {
        self.rx.recv().await?;
        loop {
            match tokio::time::timeout(DEBOUNCE, self.rx.recv()).await {
                Ok(Some(())) => continue,
                Ok(None) => return None,
                Err(_) => return Some(()),
            }
        }
    }
}

fn watch_target(root: &Path) -> (&Path, RecursiveMode) {
    match root.parent() {
        Some(dir) if !root.is_dir() => (dir, RecursiveMode::NonRecursive),
        _ => (root, RecursiveMode::Recursive),
    }
}
