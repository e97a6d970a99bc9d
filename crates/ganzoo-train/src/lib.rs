//! Training for ganzoo: one adversarial loop for GAN, DCGAN, WGAN and WGAN-GP.
//!
//! - [`TrainConfig`]: the typed configuration with the papers' presets.
//! - [`Trainer`]: the loop, parameterised by the configuration's recipe
//!   (objective, optimisers, critic schedule, constraint); metrics, samples,
//!   curves and atomic checkpoints go to a [`RunDir`]; `Trainer::resume` continues
//!   a run exactly.
//! - [`TrainedGenerator`]: a run's generator, for sampling and interpolation.

pub mod budget;
pub mod checkpoint;
pub mod compare;
pub mod config;
pub mod critic_step;
pub mod data_record;
pub mod device;
pub mod error;
pub mod evaluations;
pub mod html;
pub mod lock;
pub mod metrics;
pub mod networks;
pub mod objective;
pub mod optim;
pub mod plot;
pub mod record;
pub mod replay;
pub mod report;
pub mod run_dir;
pub mod sample;
pub mod stream;
pub mod trainer;

pub use config::{
    Arch, Constraint, CriticSchedule, DataSource, Family, Objective, Optimizer, Precision, TrainConfig, Tricks,
};
pub use error::{Result, TrainError};
pub use metrics::Metrics;
pub use run_dir::RunDir;
pub use sample::TrainedGenerator;
pub use trainer::{ImageEval, Observer, Outcome, Silent, Trainer};
