//! `--onetime` and `--noop`: one snapshot, one pass. `--noop` stops after the plan, so it always
//! says what the real run would do.

use std::sync::Arc;

use crate::apply::Plan;
use crate::config::Settings;
use crate::error::{self, Error};
use crate::pipeline::{self, Prepared};
use crate::store::Store;

/// Connects while conf.d loads (confd.toml says where the store is), reads every resource's
/// keys at one revision while the templates are checked (the keys to read are in the conf.d
/// files), then processes them all. A failing resource does not stop the others; the exit code
/// is that of the first failure.
pub async fn run(settings: Settings) -> Result<u8, Error> {
    let backend = settings.backend().clone();
    let open = tokio::spawn(async move { Store::open(&backend).await });
    let cfg = tokio::task::spawn_blocking(move || settings.with_resources())
        .await
        .map_err(failed("loading conf.d"))??;
    cfg.log_warnings();
    let prefixes = cfg.prefixes();
    let read = tokio::spawn(async move {
        let mut store = open.await.map_err(failed("connecting to the store"))??;
        Ok::<_, Error>(store.snapshot(&prefixes).await?)
    });
    let p = tokio::task::spawn_blocking(move || crate::prepare(cfg))
        .await
        .map_err(failed("checking the templates"))?;
    let snap = read.await.map_err(failed("reading the store"))??;
    // A resource that cannot run (logged already) makes the exit code; the others still run.
    let mut code = p.unusable.first().map_or(error::OK, |u| u.exit_code());
    tracing::debug!(revision = snap.revision, keys = snap.len(), "snapshot");
    if p.cfg.noop {
        keep_first(&mut code, noop(&p, &snap));
        return Ok(code);
    }
    pipeline::recover(&p, &snap);
    let units = p.units(&snap);
    let (p, snap) = (Arc::new(p), Arc::new(snap));
    let reports = pipeline::run(p.clone(), units, snap.clone(), pipeline::never()).await;
    for report in &reports {
        if let Err(e) = &report.result {
            keep_first(&mut code, e.exit_code());
        }
    }
    if p.cfg.is_dynamic() {
        // nginx's balancers get what the files say (an endpoint that is down is logged: nginx
        // then serves the files' lists, so it does not fail the run).
        pipeline::resync(p.clone(), snap.clone()).await;
    }
    // The process exits next: freeing every key and template one by one would only delay it.
    std::mem::forget((p, snap));
    Ok(code)
}

/// The error for a task of the run that panicked or was cancelled, saying which.
fn failed(about: &'static str) -> impl FnOnce(tokio::task::JoinError) -> Error {
    move |e| Error::host(about)(std::io::Error::other(e))
}

/// Prints what would change, per resource; writes nothing, runs nothing.
fn noop(p: &Prepared, snap: &crate::store::Snapshot) -> u8 {
    let mut code = error::OK;
    let mut changed = false;
    for u in p.units(snap) {
        match pipeline::plan(p, &u, snap) {
            Ok((Plan::Write(w), _)) => {
                changed = true;
                let diff = w.diff();
                if p.cfg.color {
                    print!("{}", coloured(&diff));
                } else {
                    print!("{diff}");
                }
            }
            Ok((Plan::Unchanged, _)) => tracing::info!(resource = %u, "no change"),
            Err(e) => {
                tracing::error!(resource = %u, "{e}");
                keep_first(&mut code, e.exit_code());
            }
        }
    }
    if code == error::OK && changed && p.cfg.exit_code {
        error::CHANGES
    } else {
        code
    }
}

/// A unified diff with ANSI colours: headers bold, removals red, additions green, hunks cyan.
fn coloured(diff: &str) -> String {
    let mut out = String::with_capacity(diff.len() + diff.len() / 8);
    for line in diff.split_inclusive('\n') {
        let (body, nl) = match line.strip_suffix('\n') {
            Some(b) => (b, "\n"),
            None => (line, ""),
        };
        let code = if body.starts_with("+++") || body.starts_with("---") {
            "1"
        } else if body.starts_with('+') {
            "32"
        } else if body.starts_with('-') {
            "31"
        } else if body.starts_with("@@") {
            "36"
        } else {
            ""
        };
        if code.is_empty() {
            out.push_str(line);
        } else {
            out.push_str(&format!("\x1b[{code}m{body}\x1b[0m{nl}"));
        }
    }
    out
}

/// The exit code of a pass is that of its first failure.
fn keep_first(code: &mut u8, new: u8) {
    if *code == error::OK {
        *code = new;
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_coloured_diff_marks_each_kind_of_line() {
        let diff = "--- a\n+++ a (rendered)\n@@ -1 +1 @@\n-old\n+new\n same\n";
        assert_eq!(
            super::coloured(diff),
            "\x1b[1m--- a\x1b[0m\n\x1b[1m+++ a (rendered)\x1b[0m\n\x1b[36m@@ -1 +1 @@\x1b[0m\n\
             \x1b[31m-old\x1b[0m\n\x1b[32m+new\x1b[0m\n same\n"
        );
    }
}
