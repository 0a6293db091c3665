//! Logs go to stderr (supervisor and systemd capture it): human-readable, or JSON for shippers.

use std::io::IsTerminal;

use tracing_subscriber::filter::LevelFilter;

use crate::cli::LogFormat;

/// confd's levels (`debug`, `info`, `warning`, `error`, `panic`, `fatal`) map onto tracing's.
pub fn level(name: &str) -> Result<LevelFilter, String> {
    Ok(match name.to_ascii_lowercase().as_str() {
        "trace" => LevelFilter::TRACE,
        "debug" => LevelFilter::DEBUG,
        "info" => LevelFilter::INFO,
        "warn" | "warning" => LevelFilter::WARN,
        "error" | "panic" | "fatal" => LevelFilter::ERROR,
        other => {
            return Err(format!(
                "{other:?}: expected debug, info, warn, error (or confd's warning, panic, fatal)"
            ))
        }
    })
}

/// Below trace, the HTTP/2 and gRPC crates' own debug lines (a line per frame) stay out.
pub fn init(filter: LevelFilter, format: LogFormat) {
    let mut env = tracing_subscriber::EnvFilter::default().add_directive(filter.into());
    if filter < LevelFilter::TRACE {
        for quiet in ["h2", "hyper", "hyper_util", "tonic", "tower", "rustls"] {
            if let Ok(d) = format!("{quiet}=info").parse() {
                env = env.add_directive(d);
            }
        }
    }
    let builder = tracing_subscriber::fmt()
        .with_env_filter(env)
        .with_writer(std::io::stderr)
        .with_target(false);
    match format {
        LogFormat::Text => builder.with_ansi(std::io::stderr().is_terminal()).init(),
        LogFormat::Json => builder.json().flatten_event(true).init(),
    }
}
