//! Binary entry point: parses the command line, sets up logging, runs a subcommand and maps
//! its error to an exit code (64 for bad config or flags).

use std::process::ExitCode;

use augur::cli::{Cli, Command};
use clap::Parser;

fn main() -> ExitCode {
    // prometheus-adapter's command line (no subcommand, Go flag syntax, inherited flags).
    let mut prepared = match augur::cli::compat::prepare(std::env::args_os().collect()) {
        Ok(prepared) => prepared,
        Err(e) => {
            eprintln!("augur: {e}");
            return ExitCode::from(64);
        }
    };
    let cli = match Cli::try_parse_from(&prepared.args) {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(64)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    let filter = augur::cli::compat::log_filter(cli.log_level.as_deref(), &mut prepared);
    if let Err(e) = augur::telemetry::init_logging(&filter, cli.log_json) {
        eprintln!("augur: cannot set up logging: {e}");
        return ExitCode::from(64);
    }
    for warning in &prepared.warnings {
        tracing::warn!("{warning}");
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("augur: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async {
        match cli.command {
            Command::Serve(args) => match augur::app::serve(args).await {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("augur: {e}");
                    ExitCode::from(e.exit_code() as u8)
                }
            },
            Command::Check(args) => match augur::check::run(&args).await {
                Ok(report) => {
                    print!("{report}");
                    ExitCode::SUCCESS
                }
                Err(augur::check::CheckError::Config(e)) => {
                    eprintln!("{e}");
                    ExitCode::from(64)
                }
                Err(augur::check::CheckError::Rejected { report, problems }) => {
                    print!("{report}");
                    eprintln!("{problems}");
                    ExitCode::from(64)
                }
                Err(e) => {
                    eprintln!("augur: {e}");
                    ExitCode::FAILURE
                }
            },
            Command::Certs(args) => finish(augur::certs::run(&args)),
            Command::Train(args) => finish(augur::train::run(&args)),
            Command::Backtest(args) => finish(augur::backtest::run(&args).await),
        }
    })
}

/// Exit status of a subcommand that reports errors as `anyhow::Error` (with its causes).
fn finish(result: anyhow::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("augur: {e:#}");
            ExitCode::FAILURE
        }
    }
}
