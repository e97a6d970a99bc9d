//! The error type of `ganzoo-train`.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error("invalid configuration: {0}")]
    Config(String),
    #[error("{path}: {detail}")]
    Checkpoint { path: PathBuf, detail: String },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("non-finite {what} ({value}) at iteration {iteration}; training stopped, {}", kept_checkpoint(.checkpoint))]
    NonFinite { iteration: u64, what: &'static str, value: f64, checkpoint: Option<PathBuf> },
    /// A checkpoint that does not fit on its disk; nothing of it was written.
    #[error("{path}: a checkpoint needs about {} but its file system has {} free; training stopped, {}: free some space, then resume", ganzoo_data::room::gib(*.needed), gib(*.free), kept_checkpoint(.checkpoint))]
    NoRoom { path: PathBuf, needed: u128, free: u64, checkpoint: Option<PathBuf> },
    /// A run directory that a command will not write into, and why.
    #[error("{path}: {detail}")]
    Refused { path: PathBuf, detail: String },
    /// Another process is writing the run.
    #[error("{path} is in use by {}: one process writes a run at a time", holder(.pid))]
    InUse { path: PathBuf, pid: Option<u32> },
    /// The command needs more memory than it may use.
    #[error("{what} needs about {} but {}; {hint}", gib(*.needed), limit_text(*.limit, .limit_source))]
    TooLarge { what: String, needed: u64, limit: u64, limit_source: &'static str, hint: String },
    #[error(transparent)]
    Data(#[from] ganzoo_data::DataError),
    #[error(transparent)]
    Model(#[from] ganzoo_models::ModelError),
    #[error(transparent)]
    Loss(#[from] ganzoo_losses::LossError),
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
    #[error(transparent)]
    Chart(#[from] ganzoo_charts::ChartError),
    #[error(transparent)]
    Events(#[from] ganzoo_tensorboard::EventError),
}

fn kept_checkpoint(c: &Option<PathBuf>) -> String {
    match c {
        Some(dir) => format!("the last good checkpoint ({}) is kept", dir.display()),
        None => "no checkpoint had been written yet".into(),
    }
}

fn holder(pid: &Option<u32>) -> String {
    pid.map_or_else(|| "another process".into(), |p| format!("pid {p}"))
}

/// Bytes as `1.5 GiB`.
pub fn gib(bytes: u64) -> String {
    ganzoo_data::room::gib(u128::from(bytes))
}

fn limit_text(limit: u64, source: &str) -> String {
    format!("{source} allows {}", gib(limit))
}

pub type Result<T, E = TrainError> = std::result::Result<T, E>;

pub(crate) fn io_err(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> TrainError {
    let path = path.into();
    move |source| TrainError::Io { path, source }
}
