//! check_cmd / reload_cmd: `/bin/sh -c`, as confd runs them, bounded by a timeout. A command that
//! outlives it is killed with its whole process group.

use std::process::Stdio;
use std::time::Duration;

use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use tokio::process::Command;

#[derive(Debug, Clone, thiserror::Error)]
pub enum CommandError {
    #[error("`{cmd}` could not be started: {error}")]
    Spawn { cmd: String, error: String },
    #[error("`{cmd}` {status}: {output}")]
    Failed {
        cmd: String,
        status: String,
        output: String,
    },
    #[error("`{cmd}` did not finish within {secs}s and was killed")]
    TimedOut { cmd: String, secs: u64 },
}

/// Output kept for the log, at most.
const OUTPUT_CAP: usize = 16 * 1024;
/// After the command exits, how long its output may take to drain. A background child that
/// inherited the pipes (`nginx -s reload` does not, a hand-written reload script may) would keep
/// them open for its whole life.
const OUTPUT_GRACE: Duration = Duration::from_millis(100);

/// Runs `cmd`; its combined output is returned on failure (for the log), discarded on success.
/// Done when the command exits, whatever its children do; at the timeout its whole process
/// group is killed.
pub async fn run(cmd: &str, timeout: Duration) -> Result<(), CommandError> {
    let spawn_error = |error: std::io::Error| CommandError::Spawn {
        cmd: cmd.to_owned(),
        error: error.to_string(),
    };
    let mut child = Command::new("/bin/sh")
        .arg("-c")
        .arg(cmd)
        .env_remove(crate::cli::PASSWORD_ENV)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true)
        .spawn()
        .map_err(spawn_error)?;
    let output = Output::default();
    let readers = [
        output.drain(child.stdout.take()),
        output.drain(child.stderr.take()),
    ];
    let status = match tokio::time::timeout(timeout, child.wait()).await {
        Ok(status) => status.map_err(spawn_error)?,
        Err(_) => {
            if let Some(pid) = child.id().and_then(|p| i32::try_from(p).ok()) {
                let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
            }
            return Err(CommandError::TimedOut {
                cmd: cmd.to_owned(),
                secs: timeout.as_secs(),
            });
        }
    };
    for reader in readers {
        if tokio::time::timeout(OUTPUT_GRACE, reader).await.is_err() {
            tracing::debug!(
                cmd,
                "a child of the command still holds its output; not waiting for it"
            );
        }
    }
    if status.success() {
        return Ok(());
    }
    Err(CommandError::Failed {
        cmd: cmd.to_owned(),
        status: status.to_string(),
        output: output.text(),
    })
}

/// Both output streams, collected up to OUTPUT_CAP.
#[derive(Clone, Default)]
struct Output(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl Output {
    /// Reads `pipe` into the buffer until it closes; the reader is dropped (not awaited to the
    /// end) when a background child keeps the pipe open.
    fn drain(
        &self,
        pipe: Option<impl tokio::io::AsyncRead + Unpin + Send + 'static>,
    ) -> tokio::task::JoinHandle<()> {
        let buf = self.0.clone();
        tokio::spawn(async move {
            let Some(mut pipe) = pipe else { return };
            let mut chunk = [0u8; 4096];
            while let Ok(n @ 1..) = tokio::io::AsyncReadExt::read(&mut pipe, &mut chunk).await {
                if let Ok(mut b) = buf.lock() {
                    let room = OUTPUT_CAP.saturating_sub(b.len());
                    b.extend_from_slice(&chunk[..n.min(room)]);
                }
            }
        })
    }

    fn text(&self) -> String {
        let bytes = self.0.lock().map(|b| b.clone()).unwrap_or_default();
        String::from_utf8_lossy(&bytes)
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rt() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
    }

    #[test]
    fn failure_carries_status_and_output() {
        let err = rt()
            .block_on(run("echo oops >&2; exit 3", Duration::from_secs(5)))
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "`echo oops >&2; exit 3` exit status: 3: oops"
        );
    }

    #[test]
    fn success_is_ok() {
        rt().block_on(run("true", Duration::from_secs(5)))
            .expect("true succeeds");
    }

    #[test]
    fn a_background_child_holding_the_output_does_not_hold_the_command() {
        // With the 3 s timeout, waiting for the child's pipe would be a TimedOut error.
        rt().block_on(run("sleep 30 & echo started", Duration::from_secs(3)))
            .expect("done when sh exits");
        let err = rt()
            .block_on(run(
                "sleep 30 & echo started; exit 4",
                Duration::from_secs(3),
            ))
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "`sleep 30 & echo started; exit 4` exit status: 4: started"
        );
    }

    #[test]
    fn a_hung_command_is_killed_at_the_timeout() {
        let err = rt()
            .block_on(run("sleep 30", Duration::from_millis(200)))
            .unwrap_err();
        assert!(matches!(err, CommandError::TimedOut { .. }), "{err}");
    }
}
