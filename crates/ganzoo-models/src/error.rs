//! The error type of `ganzoo-models`.

/// Errors raised while building or running a network.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("invalid model configuration: {0}")]
    Config(String),
    #[error("layer {layer} ({kind}) does not support {what}")]
    Unsupported { layer: String, kind: &'static str, what: &'static str },
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
}

pub type Result<T, E = ModelError> = std::result::Result<T, E>;
