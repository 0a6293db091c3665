//! The instance the agent runs: started with its port in the environment, signalled by the
//! agent, and its exit status passed on.

use std::ffi::OsString;
use std::io::ErrorKind;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use super::spec::Spec;
use super::RegisterError;

pub struct Child {
    inner: tokio::process::Child,
    pid: Option<Pid>,
}

/// Starts COMMAND with `PORT` (and `port_env`) set to the instance's port. It gets its own
/// process group, so a terminal's Ctrl-C reaches it only through the agent (after the key is
/// gone), and SIGTERM from the kernel if the agent itself dies.
pub fn spawn(
    command: &[OsString],
    spec: &Spec,
    port_env: Option<&str>,
) -> Result<Child, RegisterError> {
    let (program, args) = command
        .split_first()
        .ok_or_else(|| RegisterError::Usage("no command".into()))?;
    let mut cmd = tokio::process::Command::new(program);
    cmd.env_remove(crate::cli::PASSWORD_ENV);
    cmd.args(args).process_group(0);
    if let Some((_, port)) = spec.addr {
        cmd.env("PORT", port.to_string());
        if let Some(name) = port_env {
            cmd.env(name, port.to_string());
        }
    }
    // SAFETY: prctl is async-signal-safe and touches no memory of the parent.
    unsafe {
        cmd.pre_exec(|| {
            nix::sys::prctl::set_pdeathsig(Signal::SIGTERM).map_err(std::io::Error::from)
        });
    }
    let inner = cmd.spawn().map_err(|e| RegisterError::Spawn {
        cmd: program.to_string_lossy().into_owned(),
        code: if e.kind() == ErrorKind::NotFound {
            127
        } else {
            126
        },
        error: e.to_string(),
    })?;
    let pid = inner
        .id()
        .and_then(|p| i32::try_from(p).ok())
        .map(Pid::from_raw);
    tracing::info!(pid = pid.map_or(0, Pid::as_raw), cmd = %program.to_string_lossy(), "instance started");
    Ok(Child { inner, pid })
}

impl Child {
    pub fn signal(&self, sig: Signal) {
        if let Some(pid) = self.pid {
            let _ = kill(pid, sig);
        }
    }

    /// Waits for the instance: its exit code, or 128 + the signal that killed it.
    pub async fn wait(&mut self) -> u8 {
        use std::os::unix::process::ExitStatusExt;
        match self.inner.wait().await {
            Ok(status) => match (status.code(), status.signal()) {
                (Some(code), _) => u8::try_from(code).unwrap_or(1),
                (None, Some(sig)) => u8::try_from(128 + sig).unwrap_or(255),
                (None, None) => 1,
            },
            Err(e) => {
                tracing::error!("cannot wait for the instance: {e}");
                1
            }
        }
    }
}
