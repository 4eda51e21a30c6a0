//! `allocdb`: the AllocDB binary.
//!
//! Subcommands (interfaces.md §1): `serve` runs a node; the client subcommands (`resource
//! create`, `reserve`, `activate`, `release`, `revoke`, `reclaim`, `get`, `status`) talk to one
//! over the binary protocol (`client.rs`); `bench` measures (`bench.rs`, crate `allocdb-bench`). This file only wires: argument parsing (`cli.rs`,
//! `parse.rs`), logging (`logging.rs`) and the mapping of failures to exit codes (`exit.rs`,
//! where the codes are listed).

mod allocator;
mod bench;
mod cli;
mod client;
mod exit;
mod logging;
mod parse;

use std::process::ExitCode;

use clap::Parser;

#[global_allocator]
static ALLOCATOR: allocator::ProcessAllocator = allocator::ProcessAllocator;

fn main() -> ExitCode {
    let arguments = cli::Cli::parse();
    match arguments.command {
        cli::Command::Serve(serve) => run_serve(&serve),
        cli::Command::Bench(command) => bench::run(command),
        cli::Command::Client(command) => client::run(command),
    }
}

fn run_serve(arguments: &cli::ServeArgs) -> ExitCode {
    let config = match arguments.effective_config() {
        Ok(config) => config,
        Err(error) => return exit::report(&exit::Failure::Config(error)),
    };
    if arguments.print_config {
        print!("{}", config.to_toml());
        return ExitCode::SUCCESS;
    }
    logging::init(arguments.log_format);
    match allocdb_server::serve(config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => exit::report(&exit::Failure::Serve(error)),
    }
}
