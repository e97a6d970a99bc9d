//! Multi-layer perceptrons: the seed's MLP GAN, the WGAN paper's "MLP G/D" and the
//! WGAN-GP toy networks.
//!
//! | preset | layers |
//! | --- | --- |
//! | [`MlpConfig::seed_generator`] | latent → 256 → 256 → 784, ReLU, Tanh out |
//! | [`MlpConfig::seed_discriminator`] | 784 → 256 → 256 → 1, LeakyReLU 0.2, logit out |
//! | [`MlpConfig::wgan_generator`], [`MlpConfig::wgan_critic`] | 4 hidden ReLU layers of 512 |
//! | [`MlpConfig::toy_generator`], [`MlpConfig::toy_critic`] | 2 → 512 → 512 → 512 → 2 (→ 1), ReLU |
//!
//! Image-shaped inputs are flattened first; image-shaped outputs are reshaped to `(C, H, W)`.

use candle_nn::VarBuilder;

use crate::linear::Linear;
use crate::network::{Activation, Layer, Network};
use crate::{ModelError, Result};

/// Sizes and activations of an MLP.
#[derive(Debug, Clone, PartialEq)]
pub struct MlpConfig {
    pub input: usize,
    pub hidden: Vec<usize>,
    pub output: usize,
    pub activation: Activation,
    /// Applied to the output (Tanh for image generators, none for logits).
    pub output_activation: Option<Activation>,
    /// Reshape each output sample to this shape, e.g. `[1, 28, 28]`.
    pub output_shape: Option<Vec<usize>>,
}

impl MlpConfig {
    /// The seed's generator: `latent → 256 → 256 → pixels`, ReLU, Tanh.
    pub fn seed_generator(latent: usize, image: [usize; 3]) -> Self {
        Self {
            input: latent,
            hidden: vec![256, 256],
            output: image.iter().product(),
            activation: Activation::Relu,
            output_activation: Some(Activation::Tanh),
            output_shape: Some(image.to_vec()),
        }
    }

    /// The seed's discriminator: `pixels → 256 → 256 → 1`, LeakyReLU 0.2.
    pub fn seed_discriminator(image: [usize; 3]) -> Self {
        Self::critic(image.iter().product(), vec![256, 256], Activation::LeakyRelu(0.2))
    }

    /// The WGAN paper's MLP generator: 4 ReLU layers of 512.
    pub fn wgan_generator(latent: usize, image: [usize; 3]) -> Self {
        Self { hidden: vec![512; 4], ..Self::seed_generator(latent, image) }
    }

    /// The WGAN paper's MLP critic: 4 ReLU layers of 512.
    pub fn wgan_critic(image: [usize; 3]) -> Self {
        Self::critic(image.iter().product(), vec![512; 4], Activation::Relu)
    }

    /// WGAN-GP's toy generator: 2-D noise → 3 ReLU layers of 512 → 2-D point.
    pub fn toy_generator() -> Self {
        Self {
            input: 2,
            hidden: vec![512; 3],
            output: 2,
            activation: Activation::Relu,
            output_activation: None,
            output_shape: None,
        }
    }

    /// WGAN-GP's toy critic: 2-D point → 3 ReLU layers of 512 → score.
    pub fn toy_critic() -> Self {
        Self::critic(2, vec![512; 3], Activation::Relu)
    }

    fn critic(input: usize, hidden: Vec<usize>, activation: Activation) -> Self {
        Self { input, hidden, output: 1, activation, output_activation: None, output_shape: None }
    }

    /// Builds the network; weights are `{prefix}.fc{i}.weight` / `.bias`.
    pub fn build(&self, vb: VarBuilder) -> Result<Network> {
        if self.input == 0 || self.output == 0 || self.hidden.contains(&0) {
            return Err(ModelError::Config(format!("MLP sizes must be positive: {self:?}")));
        }
        let mut net = Network::new();
        net.push(format!("{}.flatten", vb.prefix()), Layer::Reshape(vec![self.input]));
        let sizes: Vec<usize> =
            std::iter::once(self.input).chain(self.hidden.iter().copied()).chain([self.output]).collect();
        let last = sizes.len() - 2;
        for (i, pair) in sizes.windows(2).enumerate() {
            let vb = vb.pp(format!("fc{}", i + 1));
            net.push(vb.prefix(), Layer::Linear(Linear::new(pair[0], pair[1], vb.clone())?));
            let act = if i < last { Some(self.activation) } else { self.output_activation };
            if let Some(act) = act {
                net.push(format!("{}.act", vb.prefix()), Layer::Act(act));
            }
        }
        if let Some(shape) = &self.output_shape {
            net.push(format!("{}.unflatten", vb.prefix()), Layer::Reshape(shape.clone()));
        }
        Ok(net)
    }
}
