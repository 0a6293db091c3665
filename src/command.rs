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

/// Runs `cmd`; its combined output is returned on failure (for the log), discarded on success.
pub async fn run(cmd: &str, timeout: Duration) -> Result<(), CommandError> {
    let child = Command::new("/bin/sh")
        .arg("-c")
        .arg(cmd)
        .env_remove(crate::cli::PASSWORD_ENV)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true)
        .spawn()
        .map_err(|error| CommandError::Spawn {
            cmd: cmd.to_owned(),
            error: error.to_string(),
        })?;
    let pid = child.id();
    let output = match tokio::time::timeout(timeout, child.wait_with_output()).await {
        Ok(out) => out.map_err(|error| CommandError::Spawn {
            cmd: cmd.to_owned(),
            error: error.to_string(),
        })?,
        Err(_) => {
            if let Some(pid) = pid.and_then(|p| i32::try_from(p).ok()) {
                let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
            }
            return Err(CommandError::TimedOut {
                cmd: cmd.to_owned(),
                secs: timeout.as_secs(),
            });
        }
    };
    if output.status.success() {
        return Ok(());
    }
    let mut text = String::from_utf8_lossy(&output.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&output.stderr));
    Err(CommandError::Failed {
        cmd: cmd.to_owned(),
        status: output.status.to_string(),
        output: text.split_whitespace().collect::<Vec<_>>().join(" "),
    })
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
    fn a_hung_command_is_killed_at_the_timeout() {
        let err = rt()
            .block_on(run("sleep 30", Duration::from_millis(200)))
            .unwrap_err();
        assert!(matches!(err, CommandError::TimedOut { .. }), "{err}");
    }
}
