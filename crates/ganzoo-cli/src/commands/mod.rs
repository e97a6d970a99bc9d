//! One module per command group; [`run`] dispatches a parsed command.

mod bench;
mod classifier;
mod data;
mod eval;
mod figures;
mod models;
mod report;
mod sample;
mod train;

use std::process::ExitCode;

use ganzoo_train::budget::MemoryLimit;

use crate::cli::Command;

/// Runs a command under the memory limit `max_memory` (bytes; default: what the machine has free).
pub fn run(command: Command, max_memory: Option<u64>) -> anyhow::Result<ExitCode> {
    let limit = MemoryLimit::resolve(max_memory);
    let done = |r: anyhow::Result<()>| r.map(|()| ExitCode::SUCCESS);
    match command {
        Command::Data(cmd) => done(data::run(cmd, limit)),
        Command::Models(cmd) => done(models::run(cmd, limit)),
        Command::Train(args) => train::run(*args, limit),
        Command::Sample(args) => done(sample::run(args, limit)),
        Command::Eval(args) => done(eval::run(args, limit)),
        Command::Bench(args) => done(bench::run(args, limit)),
        Command::Figures(args) => figures::run(args),
        Command::Report(args) => done(report::run(args)),
    }
}

/// The first flag given of `flags` (`(given, flag)` pairs): for refusing a flag that
/// does not apply, by name, rather than ignoring it.
fn first_given<'a>(flags: &[(bool, &'a str)]) -> Option<&'a str> {
    flags.iter().find(|(given, _)| *given).map(|&(_, flag)| flag)
}
