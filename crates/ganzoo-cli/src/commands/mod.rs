//! One module per command group; [`run`] dispatches a parsed command.

mod data;

use crate::cli::Command;

pub fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Data(cmd) => data::run(cmd),
    }
}
