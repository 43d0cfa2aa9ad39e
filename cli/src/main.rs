//! `strata`: the one binary of a Strata cluster.
//!
//! This crate only parses flags and wires libraries together; every decision lives in the
//! `master`, `agent` and `framework-sdk` crates.

mod agent;
mod dev;
mod duration;
mod flags;
mod logging;
mod master;
mod ops;
mod run;

use clap::Parser;

use crate::flags::{Cli, Command};

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    // The command executor's stderr is the task's stderr file in the sandbox: keep it for the
    // task's own output unless asked otherwise.
    let log_level = match cli.command {
        Command::Executor if std::env::var_os("STRATA_LOG_LEVEL").is_none() => "warn",
        _ => cli.log_level.as_str(),
    };
    if let Err(err) = logging::init(cli.log_format, log_level) {
        // Logging is not up, so stderr is the only place left to say why.
        #[allow(clippy::print_stderr)]
        {
            eprintln!("error: {err:#}");
        }
        return std::process::ExitCode::from(2);
    }
    // Daemons report failure in their log stream (which may be JSON for a collector); a command
    // a person typed answers that person in plain words.
    let client = matches!(
        cli.command,
        Command::Get(_) | Command::Logs(_) | Command::Framework(_) | Command::Run(_)
    ) || matches!(&cli.command, Command::Agent(agent) if agent.action.is_some());
    match run(cli.command) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) if client => {
            #[allow(clippy::print_stderr)]
            {
                eprintln!("error: {err:#}");
            }
            std::process::ExitCode::FAILURE
        }
        Err(err) => {
            tracing::error!(error = format!("{err:#}"), "strata failed");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Version => {
            tracing::info!(
                version = env!("CARGO_PKG_VERSION"),
                protocol_version = strata_protocol::PROTOCOL_VERSION,
                "strata version"
            );
            Ok(())
        }
        Command::Master(flags) => master::run(flags),
        Command::Agent(command) => match command.action {
            None => agent::run(command.flags),
            Some(action) => ops::agent(action),
        },
        Command::Get(flags) => ops::get(flags),
        Command::Logs(flags) => ops::logs(flags),
        Command::Framework(command) => ops::framework(command),
        Command::Dev(flags) => dev::run(flags),
        Command::Run(flags) => std::process::exit(run::run(flags)?),
        Command::Executor => std::process::exit(executor()?),
        Command::Reaper(flags) => {
            // The agent that started it waits for "ready" on stdout; logs go to stderr.
            let mut stdout = std::io::stdout();
            strata_agent::reaper::serve(&flags.socket, Some(&mut stdout))?;
            Ok(())
        }
    }
}

/// Runs the command executor an agent started, and returns its exit code.
fn executor() -> anyhow::Result<i32> {
    use anyhow::Context as _;
    use strata_framework_sdk::executor::{ExecutorConfig, run_command_executor};

    let config = ExecutorConfig::from_env()?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the executor's runtime")?;
    Ok(runtime.block_on(run_command_executor(config))?)
}
