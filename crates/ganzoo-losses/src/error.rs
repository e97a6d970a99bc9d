//! The error type of `ganzoo-losses`.

#[derive(Debug, thiserror::Error)]
pub enum LossError {
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    #[error(transparent)]
    Model(#[from] ganzoo_models::ModelError),
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
}

pub type Result<T, E = LossError> = std::result::Result<T, E>;
