//! Logging: warnings to stderr, and once a run directory exists, everything at
//! `info` and above to its `train.log` as well.

use std::fs::File;
use std::io::{IsTerminal, Write};
use std::path::Path;
use std::sync::Mutex;

use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

static RUN_LOG: Mutex<Option<File>> = Mutex::new(None);

/// Sends the run's log lines to `path` from now on.
pub fn log_to(path: &Path) -> anyhow::Result<()> {
    let file = std::fs::OpenOptions::new().create(true).append(true).open(path)?;
    *RUN_LOG.lock().unwrap_or_else(|e| e.into_inner()) = Some(file);
    Ok(())
}

struct RunLog;

impl Write for RunLog {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match RUN_LOG.lock().unwrap_or_else(|e| e.into_inner()).as_mut() {
            Some(f) => f.write(buf),
            None => Ok(buf.len()),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match RUN_LOG.lock().unwrap_or_else(|e| e.into_inner()).as_mut() {
            Some(f) => f.flush(),
            None => Ok(()),
        }
    }
}

struct RunLogWriter;

impl<'a> MakeWriter<'a> for RunLogWriter {
    type Writer = RunLog;
    fn make_writer(&'a self) -> RunLog {
        RunLog
    }
}

/// Stderr gets `RUST_LOG` (default `warn`), coloured only on a terminal (and not with
/// `NO_COLOR` set): escape codes in a log file or CI log are noise; the run log gets `info`.
pub fn init() {
    let stderr_filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn"));
    let colour = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let stderr =
        tracing_subscriber::fmt::layer().with_ansi(colour).with_writer(std::io::stderr).with_filter(stderr_filter);
    let file =
        tracing_subscriber::fmt::layer().with_ansi(false).with_writer(RunLogWriter).with_filter(LevelFilter::INFO);
    let _ = tracing_subscriber::registry().with(stderr).with(file).try_init();
}
