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
    #[error(
        "non-finite {what} ({value}) at iteration {iteration}; training stopped, the last good checkpoint is kept"
    )]
    NonFinite { iteration: u64, what: &'static str, value: f64 },
    #[error(transparent)]
    Data(#[from] ganzoo_data::DataError),
    #[error(transparent)]
    Model(#[from] ganzoo_models::ModelError),
    #[error(transparent)]
    Loss(#[from] ganzoo_losses::LossError),
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
}

pub type Result<T, E = TrainError> = std::result::Result<T, E>;

pub(crate) fn io_err(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> TrainError {
    let path = path.into();
    move |source| TrainError::Io { path, source }
}
