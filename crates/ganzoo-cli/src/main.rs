//! `ganzoo`: the command-line tool. Parsing lives in [`cli`], each command in [`commands`].

mod allocator;
mod cli;
mod commands;
mod logfile;
mod output;
mod pool;
mod progress;

use clap::Parser;

fn main() -> std::process::ExitCode {
    allocator::keep_freed_memory();
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
