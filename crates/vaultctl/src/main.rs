//! `vaultctl`: vaultlink's command-line tool. Parses the command line, sets up logs
//! and the runtime, runs one command and turns a failure into one line and an exit code.

#![cfg_attr(test, allow(clippy::unwrap_used))]

mod bench;
mod cli;
mod config;
mod demo;
mod demo_proxy;
mod forward;
mod import;
mod migrate;
mod mock_serve;
mod ops;
mod output;

use std::process::ExitCode;

use clap::Parser;
use tracing_subscriber::EnvFilter;

use crate::cli::{Cli, Command, MockCommand};
use crate::output::{EXIT_FAILURE, Failure, print_json};

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logs(cli.verbose);
    let json = cli.command.json();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(EXIT_FAILURE);
        }
    };
    match runtime.block_on(run(cli.command)) {
        Ok(code) => ExitCode::from(code),
        Err(failure) => {
            if json {
                print_json(&failure.to_json());
            }
            eprintln!("error: {}", failure.message);
            ExitCode::from(failure.code)
        }
    }
}

/// Runs one command; `Ok` holds the exit code.
async fn run(command: Command) -> Result<u8, Failure> {
    match command {
        Command::Demo(args) => demo::demo(args).await.map(|()| 0),
        Command::Mock(MockCommand::Serve(args)) => mock_serve::serve(args).await.map(|()| 0),
        Command::Insert(args) => ops::insert(args).await.map(|()| 0),
        Command::Retrieve(args) => ops::retrieve(args).await,
        Command::Delete(args) => ops::delete(args).await.map(|()| 0),
        Command::Erase(args) => ops::erase(args).await.map(|()| 0),
        Command::Check(args) => ops::check(args).await.map(|()| 0),
        Command::Forward(args) => forward::forward(args).await.map(|()| 0),
        Command::Import(args) => import::import(args).await,
        Command::Migrate(args) => migrate::migrate(args).await,
        Command::Bench(args) => bench::bench(args).await,
    }
}

/// Logs go to stderr. `RUST_LOG` wins; otherwise errors only (a failure is reported
/// once, as vaultctl's own line; the demo provokes failures on purpose), `-v` debug
/// and `-vv` trace for vaultlink's crates. vaultlink logs safe fields only (aliases,
/// vault id, status, attempt), never card data or secrets.
fn init_logs(verbose: u8) {
    let default = match verbose {
        0 => "error",
        1 => "warn,vaultctl=debug,vault_vgs=debug,vault_auth=debug,vgs_mock=debug",
        _ => "info,vaultctl=trace,vault_vgs=trace,vault_auth=trace,vgs_mock=trace",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}
