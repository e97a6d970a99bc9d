//! One module per command group; [`run`] dispatches a parsed command.

mod bench;
mod data;
mod models;
mod sample;
mod train;

use crate::cli::Command;

pub fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Data(cmd) => data::run(cmd),
        Command::Models(cmd) => models::run(cmd),
        Command::Train(args) => train::run(*args),
        Command::Sample(args) => sample::run(args),
        Command::Bench(args) => bench::run(args),
    }
}
