//! confd-rs: parse the command line, set up logging, dispatch, map the outcome to an exit code.

mod apply;
mod cli;
mod command;
mod config;
mod exit;
mod logging;
mod render;
mod run;
mod store;

use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = match cli::parse(std::env::args_os()) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    let outcome = config::load(&cli).and_then(|cfg| {
        logging::init(&cfg.log_level, cfg.log_format)?;
        run::main(cfg)
    });
    exit::code(outcome)
}
