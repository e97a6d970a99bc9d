//! `cargo xtask …`: the project's task runner (the cargo-xtask pattern).
//!
//! It stays dependency-free so it compiles in seconds, and does no heavy work
//! itself: every command is handed to the `ganzoo` binary, built with
//! `--release` so numeric work never runs in a debug build.
//! `cargo xtask train dcgan` is `ganzoo train dcgan` from a release build.
//!
//! On Unix it replaces itself with `cargo run`, which replaces itself with `ganzoo`
//! (cargo execs what it runs there): the process a shell, `timeout` or a scheduler
//! started is `ganzoo` itself, so their SIGTERM reaches the training and its checkpoint,
//! rather than killing a wrapper and leaving the training running orphaned.

use std::process::{Command, ExitCode};

fn main() -> ExitCode {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    if args.is_empty() {
        args.push("--help".into());
    }
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut command = Command::new(cargo);
    command.args(["run", "--quiet", "--release", "--package", "ganzoo-cli", "--bin", "ganzoo", "--"]).args(&args);
    // What ganzoo prints as the command to run next (`continue with: cargo xtask train
    // --resume …`): a user of `cargo xtask` may have no `ganzoo` on the PATH.
    command.env("GANZOO_PROGRAM", "cargo xtask");
    run(command)
}

#[cfg(unix)]
fn run(mut command: Command) -> ExitCode {
    use std::os::unix::process::CommandExt;
    // `exec` returns only when it failed.
    let e = command.exec();
    eprintln!("xtask: cannot run cargo: {e}");
    ExitCode::FAILURE
}

#[cfg(not(unix))]
fn run(mut command: Command) -> ExitCode {
    match command.status() {
        Ok(s) if s.success() => ExitCode::SUCCESS,
        Ok(s) => ExitCode::from(s.code().and_then(|c| u8::try_from(c).ok()).unwrap_or(1)),
        Err(e) => {
            eprintln!("xtask: cannot run cargo: {e}");
            ExitCode::FAILURE
        }
    }
}
