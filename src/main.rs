//! confd-rs: parse the command line, set up logging, dispatch, map the outcome to an exit code.

mod apply;
mod cli;
mod command;
mod config;
mod daemon;
mod event;
mod exit;
mod fswatch;
mod logging;
mod metrics;
mod register;
mod render;
mod run;
mod signals;
mod store;

use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = match cli::parse(std::env::args_os()) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    let outcome = match &cli.command {
        Some(cli::Command::Register(args)) => {
            logging::init(cli.log_level.as_deref().unwrap_or("info"), cli.log_format)
                .map_err(anyhow::Error::from)
                .and_then(|()| register::main(&cli, args))
        }
        None => config::load(&cli).and_then(|cfg| {
            logging::init(&cfg.log_level, cfg.log_format)?;
            cfg.log_warnings();
            run::main(cli, cfg)
        }),
    };
    exit::code(outcome)
}
