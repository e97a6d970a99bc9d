//! `ganzoo`: the command-line tool. Parsing lives in [`cli`], each command in [`commands`].

mod cli;
mod commands;
mod logfile;
mod output;
mod progress;

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = cli::Cli::parse();
    logfile::init();
    match commands::run(cli.command) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
