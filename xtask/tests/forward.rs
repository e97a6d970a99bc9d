//! `cargo xtask` as a process: what it runs, and that a signal sent to it reaches that.

#![cfg(unix)]
#![allow(clippy::unwrap_used)]

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// A stand-in for cargo that records its pid and arguments, then waits for SIGTERM and
/// records that it got it.
fn fake_cargo(dir: &Path) -> PathBuf {
    let script = dir.join("cargo");
    let body = format!(
        "#!/bin/sh\necho \"$GANZOO_PROGRAM\" > {d}/program\necho \"$$ $*\" > {d}/started\ntrap 'echo term > {d}/got-term; exit 143' TERM\n\
         while :; do sleep 0.05; done\n",
        d = dir.display()
    );
    std::fs::write(&script, body).unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    script
}

fn wait_for(path: &Path) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(text) = std::fs::read_to_string(path) {
            if text.ends_with('\n') {
                return text;
            }
        }
        assert!(Instant::now() < deadline, "{} never appeared", path.display());
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Kills the stand-in whatever the test's outcome, so a failure leaves nothing running
/// (an orphan would hold the test runner's output open).
struct Reap(String);

impl Drop for Reap {
    fn drop(&mut self) {
        let _ = Command::new("kill").args(["-KILL", &self.0]).status();
    }
}

#[test]
fn sigterm_to_xtask_reaches_the_command_it_runs() {
    let dir = std::env::temp_dir().join(format!("ganzoo-xtask-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let cargo = fake_cargo(&dir);
    let mut child = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(["train", "dcgan", "--iters", "5"])
        .env("CARGO", &cargo)
        .spawn()
        .unwrap();
    let started = wait_for(&dir.join("started"));
    let (pid, args) = started.trim_end().split_once(' ').unwrap();
    let _reap = Reap(pid.to_owned());
    assert_eq!(wait_for(&dir.join("program")), "cargo xtask\n");
    assert_eq!(args, "run --quiet --release --package ganzoo-cli --bin ganzoo -- train dcgan --iters 5");
    // The pid a shell or `timeout` holds is the command's own, not a wrapper's.
    assert_eq!(pid, child.id().to_string());

    let sent = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(sent.success());
    let status = child.wait().unwrap();
    assert_eq!(wait_for(&dir.join("got-term")), "term\n");
    assert_eq!(status.code(), Some(143));
    std::fs::remove_dir_all(&dir).unwrap();
}
