//! One module per command group; [`run`] dispatches a parsed command.

mod data;
mod models;

use crate::cli::Command;

pub fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Data(cmd) => data::run(cmd),
        Command::Models(cmd) => models::run(cmd),
    }
}
