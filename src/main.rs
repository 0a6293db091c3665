//! confd-rs: parse the command line, set up logging, dispatch, map the outcome to an exit code.

use std::process::ExitCode;

use confd_rs::cli::{self, Cli, LogFormat};
use confd_rs::error::Error;
use confd_rs::{check, config, convert, generate, logging, register, status};

fn main() -> ExitCode {
    let cli = match cli::parse(std::env::args_os()) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    let mut logging_up = false;
    let format = cli.log_format;
    let outcome = try_main(cli, &mut logging_up);
    match outcome {
        Ok(code) => ExitCode::from(code),
        Err(err) => {
            // One line: JSON through the logger when logs are JSON, plain text otherwise.
            if logging_up && format == LogFormat::Json {
                tracing::error!("{err}");
            } else {
                eprintln!("confd-rs: error: {err}");
            }
            ExitCode::from(err.exit_code())
        }
    }
}

fn try_main(cli: Cli, logging_up: &mut bool) -> Result<u8, Error> {
    match &cli.command {
        Some(cli::Command::Register(args)) => {
            let level = logging::level(cli.log_level.as_deref().unwrap_or("info"))
                .map_err(|e| config::ConfigError::Flag(format!("--log-level: {e}")))?;
            logging::init(level, cli.log_format);
            *logging_up = true;
            Ok(register::main(&cli, args)?)
        }
        Some(cli::Command::Convert(args)) => Ok(convert::main(args)?),
        Some(cli::Command::Status(args)) => status::main(&cli, args),
        Some(cli::Command::Check(args)) => check::main(&cli, args),
        Some(cli::Command::Generate(args)) => {
            generate::main(&args.what).map_err(Error::host("writing the generated files"))
        }
        None => {
            let settings = config::settings(&cli)?;
            logging::init(settings.log_level(), settings.log_format());
            *logging_up = true;
            confd_rs::run(cli, settings)
        }
    }
}
