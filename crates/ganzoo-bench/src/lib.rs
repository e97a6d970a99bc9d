//! ganzoo's benchmarks, run in release builds by `cargo xtask bench`.
//!
//! - [`model`]: the zoo's benchmark models, each one [`ganzoo_train::TrainConfig`]
//!   shaped like its PyTorch reference (`../shared/bench/torchref/models.py`).
//! - [`throughput`]: full training iterations per second of one model in this
//!   process (warm-up, calibration, timed repeats, median) and its peak memory.
//! - [`ops`]: the convolutions of every DCGAN layer, forward and backward, with
//!   ganzoo's kernels and Candle's, in GFLOP/s.
//! - [`torch`], [`rounds`] and [`report`]: the PyTorch reference run beside ganzoo
//!   in the same session, in alternating rounds, and the table of the rounds' median
//!   ratio written into `docs/performance.md`.
//! - [`parity`]: a device's (or back end's) losses over the first steps against the
//!   CPU kernels' (`bench --parity`: CPU against CUDA on a GPU machine).
//! - [`norms`]: every DCGAN-32 batch norm + activation, forward and backward, in ms.
//! - [`op_parity`]: every op the models run off the CPU kernels (CUDA's convolutions and
//!   normalisations), value and gradients, against the kernels (`bench --parity` too).
//! - [`feature_parity`]: `eval`'s feature networks (classifier, InceptionV3) on a device
//!   against the CPU (`bench --parity` too).
//! - [`system`]: peak RSS, CPU model, waiting for a quiet machine.
//!
//! Speed is only ever reported as measured here, in this session: ratios against a
//! baseline timed in the same run are the figures that count.

pub mod feature_parity;
pub mod model;
pub mod norms;
pub mod op_parity;
pub mod ops;
pub mod parity;
pub mod report;
pub mod rounds;
pub mod system;
pub mod throughput;
pub mod torch;

pub use model::BenchModel;
pub use throughput::{Target, Throughput, TimingPlan};

/// What can go wrong while benchmarking.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error(transparent)]
    Train(#[from] ganzoo_train::TrainError),
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
    #[error("{0}")]
    Data(#[from] ganzoo_data::DataError),
    #[error("{what}: {source}")]
    Io { what: String, source: std::io::Error },
    #[error("{0}")]
    Worker(String),
}

pub type Result<T> = std::result::Result<T, BenchError>;
