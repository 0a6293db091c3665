//! Whether a server really took a reload: its master process (named by a pid file) starts a new
//! generation of workers. nginx does exactly that after a reload it accepts, and keeps its old
//! workers when it refuses the new configuration at run time (a port it cannot bind, say),
//! while `nginx -s reload` has already exited 0.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How long a reload has to show its new workers.
pub const CONFIRM_TIMEOUT: Duration = Duration::from_secs(10);

const POLL: Duration = Duration::from_millis(10);

/// The master's pid and its children, before a reload.
#[derive(Debug)]
pub struct Before {
    pidfile: PathBuf,
    master: Option<i32>,
    children: BTreeSet<i32>,
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum Unconfirmed {
    #[error("{pidfile}: no running master process ({why})")]
    NoMaster { pidfile: String, why: String },
    #[error("the master process (pid {pid}, from {pidfile}) started no new workers within {secs} s: it refused the new configuration")]
    NoNewWorkers {
        pid: i32,
        pidfile: String,
        secs: u64,
    },
}

/// What to compare the master with after the reload.
pub fn before(pidfile: &Path) -> Before {
    let master = master(pidfile).ok();
    Before {
        pidfile: pidfile.to_owned(),
        children: master.map(children).unwrap_or_default(),
        master,
    }
}

impl Before {
    /// Waits up to `timeout` for the master (or a new master) to have a child it did not have
    /// before.
    pub fn confirm(&self, timeout: Duration) -> Result<(), Unconfirmed> {
        let shown = self.pidfile.display().to_string();
        let start = Instant::now();
        loop {
            let now = master(&self.pidfile);
            match now {
                Ok(pid) if Some(pid) != self.master => return Ok(()),
                Ok(pid) if children(pid).difference(&self.children).next().is_some() => {
                    return Ok(())
                }
                Ok(pid) if start.elapsed() >= timeout => {
                    return Err(Unconfirmed::NoNewWorkers {
                        pid,
                        pidfile: shown,
                        secs: timeout.as_secs(),
                    })
                }
                Err(why) if start.elapsed() >= timeout => {
                    return Err(Unconfirmed::NoMaster {
                        pidfile: shown,
                        why,
                    })
                }
                _ => std::thread::sleep(POLL),
            }
        }
    }
}

/// The live process a pid file names.
fn master(pidfile: &Path) -> Result<i32, String> {
    let text = std::fs::read_to_string(pidfile).map_err(|e| e.to_string())?;
    let pid: i32 = text
        .trim()
        .parse()
        .map_err(|_| format!("{:?} is not a pid", text.trim()))?;
    if Path::new(&format!("/proc/{pid}")).exists() {
        Ok(pid)
    } else {
        Err(format!("pid {pid} is not running"))
    }
}

/// The pids whose parent is `pid`.
fn children(pid: i32) -> BTreeSet<i32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return BTreeSet::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|child| parent(*child) == Some(pid))
        .collect()
}

/// The parent of `pid`, from /proc/PID/stat ("pid (comm) state ppid …"; comm may hold spaces
/// and parentheses, so the fields are read after the last ')').
fn parent(pid: i32) -> Option<i32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(1)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_child_of_the_pidfile_process_confirms_and_none_times_out() {
        let dir = tempfile::tempdir().expect("tempdir");
        let pidfile = dir.path().join("x.pid");
        std::fs::write(&pidfile, format!("{}\n", std::process::id())).expect("pidfile");
        let b = before(&pidfile);
        assert!(matches!(
            b.confirm(Duration::from_millis(50)),
            Err(Unconfirmed::NoNewWorkers { .. })
        ));
        let mut child = std::process::Command::new("sleep")
            .arg("5")
            .spawn()
            .expect("sleep");
        assert!(b.confirm(Duration::from_secs(5)).is_ok());
        let _ = child.kill();
        let _ = child.wait();

        std::fs::write(&pidfile, "999999999\n").expect("pidfile");
        assert!(matches!(
            before(&pidfile).confirm(Duration::from_millis(20)),
            Err(Unconfirmed::NoMaster { .. })
        ));
    }
}
