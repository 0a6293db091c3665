//! `confd-rs register`: the per-instance agent. It keeps `/<app>_<ENV>/<ip>-<port>` in etcd on a
//! lease exactly while the instance can serve: registered once healthy, kept alive, removed at
//! once on SIGTERM (then a drain, then the instance is stopped), and gone with the lease if the
//! agent dies.

mod child;
mod health;
mod lease;
mod spec;

use std::time::Duration;

use tokio::signal::unix::{signal, Signal, SignalKind};
use tokio::time::Instant;

use crate::cli::{Cli, RegisterArgs};
use crate::config;
use child::Child;
use health::Health;
use lease::Registration;

#[derive(Debug, thiserror::Error)]
pub enum RegisterError {
    /// Bad flags: exit 2.
    #[error("{0}")]
    Usage(String),
    /// COMMAND could not be started: exit 127 (not found) or 126, as a shell does.
    #[error("cannot start {cmd}: {error}")]
    Spawn {
        cmd: String,
        error: String,
        code: u8,
    },
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// etcd unreachable with --require-etcd (exit 3).
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error("{about}: {source}")]
    Host {
        about: &'static str,
        source: std::io::Error,
    },
}

/// Every flag is checked before anything is contacted or started.
pub fn main(cli: &Cli, args: &RegisterArgs) -> Result<u8, RegisterError> {
    let spec = spec::resolve(args, cli.prefix.as_deref().unwrap_or(""))?;
    let etcd = config::etcd_from_flags(cli)?;
    let health = Health::new(args, &spec)?;
    let drain = seconds("--drain", args.drain, Zero::Allowed)?;
    let host = |about| move |source| RegisterError::Host { about, source };
    let rt = crate::runtime().map_err(host("starting the async runtime"))?;
    rt.block_on(async {
        let mut signals = Signals::install().map_err(host("installing signal handlers"))?;
        let mut reg = Registration::new(&etcd, &spec, args.ttl);
        if args.require_etcd {
            reg.reach().await?;
        } else if args.wait_for_etcd {
            loop {
                tokio::select! {
                    biased;
                    sig = signals.recv() => if sig != Sig::Hup {
                        tracing::info!("{sig:?} while waiting for etcd: exiting");
                        return Ok(0);
                    },
                    () = reg.wait_until_reachable() => break,
                }
            }
        }
        let child = match args.command.is_empty() {
            true => None,
            false => Some(child::spawn(
                &args.command,
                &spec,
                args.port_env.as_deref(),
            )?),
        };
        let agent = Agent {
            reg,
            child,
            health,
            drain,
        };
        Ok(agent.run(&mut signals).await)
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Zero {
    Allowed,
    Refused,
}

/// A flag's number of seconds as a Duration: finite, not negative (nor zero where refused), and
/// small enough to be one (`1e300` is not).
pub fn seconds(flag: &str, v: f64, zero: Zero) -> Result<Duration, RegisterError> {
    let ok = v.is_finite() && v >= 0.0 && !(v == 0.0 && zero == Zero::Refused);
    ok.then(|| Duration::try_from_secs_f64(v).ok())
        .flatten()
        .ok_or_else(|| {
            let expected = match zero {
                Zero::Allowed => "a number of seconds, 0 or more",
                Zero::Refused => "a positive number of seconds",
            };
            RegisterError::Usage(format!("{flag} {v:?}: expected {expected}"))
        })
}

struct Agent {
    reg: Registration,
    child: Option<Child>,
    health: Health,
    drain: Duration,
}

impl Agent {
    async fn run(mut self, signals: &mut Signals) -> u8 {
        let mut next_lease = Instant::now();
        let mut next_probe = Instant::now();
        loop {
            tokio::select! {
                sig = signals.recv() => if let Some(code) = self.on_signal(sig, signals).await {
                    return code;
                },
                code = wait(&mut self.child) => {
                    tracing::info!(code, "instance exited");
                    self.reg.deregister().await;
                    return code;
                }
                _ = tokio::time::sleep_until(next_probe), if self.health.is_checked() => {
                    let healthy = tokio::select! {
                        biased;
                        sig = signals.recv() => Err(sig),
                        healthy = self.health.probe() => Ok(healthy),
                    };
                    let healthy = match healthy {
                        Ok(h) => h,
                        Err(sig) => match self.on_signal(sig, signals).await {
                            Some(code) => return code,
                            None => continue,
                        },
                    };
                    if !healthy && self.reg.is_registered() {
                        self.reg.deregister().await;
                    } else if healthy && !self.reg.is_registered() {
                        next_lease = Instant::now();
                    }
                    next_probe = Instant::now() + self.health.interval();
                }
                _ = tokio::time::sleep_until(next_lease) => {
                    if self.health.is_healthy() {
                        // etcd may be slow or down: a signal must not wait for it.
                        let interrupted = tokio::select! {
                            biased;
                            sig = signals.recv() => Some(sig),
                            () = self.reg.maintain() => None,
                        };
                        if let Some(sig) = interrupted {
                            match self.on_signal(sig, signals).await {
                                Some(code) => return code,
                                None => continue,
                            }
                        }
                    }
                    next_lease = Instant::now() + self.reg.next_tick();
                }
            }
        }
    }

    /// SIGHUP goes to the instance; SIGTERM/SIGINT stop, with the exit code to return.
    async fn on_signal(&mut self, sig: Sig, signals: &mut Signals) -> Option<u8> {
        match sig {
            Sig::Hup => {
                self.forward(nix::sys::signal::Signal::SIGHUP);
                None
            }
            stop => Some(self.stop(stop, signals).await),
        }
    }

    /// SIGTERM/SIGINT: the key goes first (nginx stops sending traffic), then the drain, then the
    /// instance gets the same signal and we return its exit code. A second signal ends the drain.
    async fn stop(&mut self, sig: Sig, signals: &mut Signals) -> u8 {
        let signal = if sig == Sig::Int {
            nix::sys::signal::Signal::SIGINT
        } else {
            nix::sys::signal::Signal::SIGTERM
        };
        tracing::info!("{signal}: deregistering");
        self.reg.deregister().await;
        let Some(child) = &mut self.child else {
            return 0;
        };
        if !self.drain.is_zero() {
            tracing::info!(drain = ?self.drain, "draining before stopping the instance");
            tokio::select! {
                _ = tokio::time::sleep(self.drain) => {}
                _ = signals.recv() => tracing::info!("second signal: drain cut short"),
                code = child.wait() => return code,
            }
        }
        child.signal(signal);
        child.wait().await
    }

    fn forward(&self, sig: nix::sys::signal::Signal) {
        if let Some(child) = &self.child {
            child.signal(sig);
        }
    }
}

async fn wait(child: &mut Option<Child>) -> u8 {
    match child {
        Some(c) => c.wait().await,
        None => std::future::pending().await,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sig {
    Term,
    Int,
    Hup,
}

struct Signals {
    term: Signal,
    int: Signal,
    hup: Signal,
}

impl Signals {
    fn install() -> std::io::Result<Signals> {
        Ok(Signals {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
            hup: signal(SignalKind::hangup())?,
        })
    }

    async fn recv(&mut self) -> Sig {
        tokio::select! {
            _ = self.term.recv() => Sig::Term,
            _ = self.int.recv() => Sig::Int,
            _ = self.hup.recv() => Sig::Hup,
        }
    }
}
