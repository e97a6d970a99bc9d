//! `cargo xtask …`: the project's task runner (the cargo-xtask pattern).
//!
//! It stays dependency-free so it compiles in seconds, and does no heavy work
//! itself: every command is handed to the `ganzoo` binary, built with
//! `--release` so numeric work never runs in a debug build.
//! `cargo xtask train dcgan` is `ganzoo train dcgan` from a release build.

use std::process::{Command, ExitCode};

fn main() -> ExitCode {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    if args.is_empty() {
        args.push("--help".into());
    }
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .args(["run", "--quiet", "--release", "--package", "ganzoo-cli", "--bin", "ganzoo", "--"])
        .args(&args)
        .status();
    match status {
        Ok(s) if s.success() => ExitCode::SUCCESS,
        Ok(s) => ExitCode::from(s.code().and_then(|c| u8::try_from(c).ok()).unwrap_or(1)),
        Err(e) => {
            eprintln!("xtask: cannot run cargo: {e}");
            ExitCode::FAILURE
        }
    }
}
