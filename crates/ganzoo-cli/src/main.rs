//! `ganzoo`: the command-line tool. Parsing lives in [`cli`], each command in [`commands`].

mod cli;
mod commands;
mod logfile;
mod output;
mod pool;
mod progress;

use clap::Parser;

/// Training allocates and frees many tensor-sized buffers per step; mimalloc keeps
/// them mapped instead of returning them to the OS and faulting them in again.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    pool::limit_candle_spinning();
    let cli = cli::Cli::parse();
    logfile::init();
    match pool::run_in_pool(|| commands::run(cli.command)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
