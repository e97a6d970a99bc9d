//! GAN objectives as pure functions of logits or critic scores; each module's doc
//! gives the equation it implements.
//!
//! - [`cross_entropy`]: the discriminator's cross-entropy and the three generator costs.
//! - [`wasserstein`]: critic and generator losses, the W estimate, weight clipping.
//! - [`gradient_penalty`]: WGAN-GP's penalty with exact second-order gradients.
//! - [`penalty_check`]: that gradient against finite differences, on any device.
//! - [`divergences`]: closed forms for the WGAN paper's parallel-lines example.

pub mod cross_entropy;
pub mod divergences;
pub mod error;
pub mod gradient_penalty;
pub mod penalty_check;
pub mod wasserstein;

pub use cross_entropy::{discriminator_loss, generator_loss, GeneratorCost};
pub use divergences::ParallelLines;
pub use error::{LossError, Result};
pub use gradient_penalty::{GradientPenalty, PenaltyOutput};
