//! The error type of `ganzoo-eval`.

/// Why a metric cannot be computed from what it was given.
#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    /// Samples of the wrong shape, range or count.
    #[error("bad samples: {0}")]
    Samples(String),
    /// A value that is NaN or infinite where a number is needed.
    #[error("a non-finite value in {what} at index {index}")]
    NonFinite { what: &'static str, index: usize },
    /// Fewer samples than a statistic needs.
    #[error("{what} needs at least {needed} samples, got {got}")]
    TooFew { what: &'static str, needed: usize, got: usize },
    /// A weights file that cannot be read or does not hold what it should.
    #[error("{}: {detail}", path.display())]
    File { path: std::path::PathBuf, detail: String },
    /// Weights (from any source) that do not fit the network.
    #[error("{0}")]
    Weights(String),
    /// The linear algebra did not converge.
    #[error("{0}")]
    Numeric(String),
}

pub type Result<T, E = EvalError> = std::result::Result<T, E>;

/// Checks that every value is finite, naming `what` otherwise.
pub fn check_finite(values: &[f32], what: &'static str) -> Result<()> {
    match values.iter().position(|v| !v.is_finite()) {
        Some(index) => Err(EvalError::NonFinite { what, index }),
        None => Ok(()),
    }
}
