//! The error type of `ganzoo-figures`.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum FigureError {
    #[error(transparent)]
    Chart(#[from] ganzoo_charts::ChartError),
    #[error("{}: {detail}", path.display())]
    Io { path: PathBuf, detail: String },
    #[error("{} exists: pass --overwrite to replace it, or another --out", .0.display())]
    Exists(PathBuf),
    #[error("{}: {detail}", path.display())]
    Refused { path: PathBuf, detail: String },
    /// A stop signal ended the run in progress after its iteration, with a checkpoint.
    #[error("stopped at iteration {iteration} of {} (checkpoint saved)", run.display())]
    Stopped { run: PathBuf, iteration: u64 },
    #[error("{0}")]
    Compute(String),
}

pub type Result<T, E = FigureError> = std::result::Result<T, E>;

impl From<candle_core::Error> for FigureError {
    fn from(e: candle_core::Error) -> Self {
        Self::Compute(e.to_string())
    }
}

impl From<ganzoo_models::ModelError> for FigureError {
    fn from(e: ganzoo_models::ModelError) -> Self {
        Self::Compute(e.to_string())
    }
}

impl From<ganzoo_losses::LossError> for FigureError {
    fn from(e: ganzoo_losses::LossError) -> Self {
        Self::Compute(e.to_string())
    }
}

impl From<ganzoo_train::TrainError> for FigureError {
    fn from(e: ganzoo_train::TrainError) -> Self {
        Self::Compute(e.to_string())
    }
}
