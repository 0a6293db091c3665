//! Logs go to stderr (supervisor and systemd capture it): human-readable, or JSON for shippers.

use std::io::IsTerminal;

use tracing_subscriber::filter::LevelFilter;

use crate::cli::LogFormat;
use crate::config::ConfigError;

/// confd's levels (`debug`, `info`, `warning`, `error`, `panic`, `fatal`) map onto tracing's.
pub fn init(level: &str, format: LogFormat) -> Result<(), ConfigError> {
    let filter = match level.to_ascii_lowercase().as_str() {
        "trace" => LevelFilter::TRACE,
        "debug" => LevelFilter::DEBUG,
        "info" => LevelFilter::INFO,
        "warn" | "warning" => LevelFilter::WARN,
        "error" | "panic" | "fatal" => LevelFilter::ERROR,
        other => {
            return Err(ConfigError::Flag(format!(
                "log-level {other:?}: expected debug, info, warn, error (or confd's warning, panic, fatal)"
            )))
        }
    };
    let builder = tracing_subscriber::fmt()
        .with_max_level(filter)
        .with_writer(std::io::stderr)
        .with_target(false);
    match format {
        LogFormat::Text => builder.with_ansi(std::io::stderr().is_terminal()).init(),
        LogFormat::Json => builder.json().flatten_event(true).init(),
    }
    Ok(())
}
