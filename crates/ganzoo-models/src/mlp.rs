//! Multi-layer perceptrons: the seed's MLP GAN, the WGAN paper's "MLP G/D" and the
//! WGAN-GP toy networks.
//!
//! | preset | layers | source |
//! | --- | --- | --- |
//! | [`MlpConfig::seed_generator`] | latent → 256 → 256 → 784, LeakyReLU 0.2, Tanh out | the seed's MLP GAN |
//! | [`MlpConfig::seed_discriminator`] | 784 → 256 → 256 → 1, LeakyReLU 0.2, logit out | the seed's MLP GAN |
//! | [`MlpConfig::wgan_generator`], [`MlpConfig::wgan_critic`] | 3 hidden ReLU layers of 512, linear out | WassersteinGAN `models/mlp.py` (`MLP_G`, `MLP_D`) |
//! | [`MlpConfig::toy_generator`], [`MlpConfig::toy_critic`] | 2 → 512 → 512 → 512 → 2 (→ 1), ReLU; tflib init | improved_wgan_training `gan_toy.py` |
//! | [`MlpConfig::legacy_generator`], [`MlpConfig::legacy_wgan_generator`], [`MlpConfig::legacy_wgan_critic`], [`MlpConfig::legacy_toy`] | ganzoo ≤ 0.1's `arch = "mlp"`: ReLU G; 4 × 512 with Tanh for WGAN; PyTorch init | (kept to load old runs) |
//!
//! Image-shaped inputs are flattened first; image-shaped outputs are reshaped to `(C, H, W)`.

use candle_nn::VarBuilder;

use crate::linear::{Linear, LinearInit};
use crate::network::{Activation, Layer, Network};
use crate::{ModelError, Result};

/// The noise the toy generators take (gan_toy.py: 2-D).
pub const TOY_LATENT: usize = 2;

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
    /// Hidden layers' and output layer's initialisation.
    pub init: (LinearInit, LinearInit),
}

impl MlpConfig {
    /// The seed's generator: `latent → 256 → 256 → pixels`, LeakyReLU 0.2, Tanh.
    pub fn seed_generator(latent: usize, image: [usize; 3]) -> Self {
        Self { activation: Activation::LeakyRelu(0.2), ..Self::legacy_generator(latent, image) }
    }

    /// The seed's discriminator: `pixels → 256 → 256 → 1`, LeakyReLU 0.2.
    pub fn seed_discriminator(image: [usize; 3]) -> Self {
        Self::critic(image.iter().product(), vec![256, 256], Activation::LeakyRelu(0.2))
    }

    /// WassersteinGAN's `MLP_G`: `latent → 512 → 512 → 512 → pixels`, ReLU, no output
    /// activation (`models/mlp.py`, with `--ngf 512` as the paper's MLP experiments).
    pub fn wgan_generator(latent: usize, image: [usize; 3]) -> Self {
        Self { hidden: vec![512; 3], output_activation: None, ..Self::legacy_generator(latent, image) }
    }

    /// WassersteinGAN's `MLP_D`: `pixels → 512 → 512 → 512 → 1`, ReLU.
    pub fn wgan_critic(image: [usize; 3]) -> Self {
        Self::critic(image.iter().product(), vec![512; 3], Activation::Relu)
    }

    /// WGAN-GP's toy generator: 2-D noise → 3 ReLU layers of 512 → 2-D point, with
    /// tflib's initialisation (`ReLULayer`: He; output `Linear`: Glorot).
    pub fn toy_generator() -> Self {
        Self {
            input: TOY_LATENT,
            hidden: vec![512; 3],
            output: 2,
            activation: Activation::Relu,
            output_activation: None,
            output_shape: None,
            init: (LinearInit::He, LinearInit::Glorot),
        }
    }

    /// WGAN-GP's toy critic: 2-D point → 3 ReLU layers of 512 → score, tflib's initialisation.
    pub fn toy_critic() -> Self {
        Self { init: (LinearInit::He, LinearInit::Glorot), ..Self::critic(2, vec![512; 3], Activation::Relu) }
    }

    /// ganzoo ≤ 0.1's MLP generator (`arch = "mlp"` in old runs): `latent → 256 → 256 →
    /// pixels`, ReLU, Tanh, PyTorch's initialisation.
    pub fn legacy_generator(latent: usize, image: [usize; 3]) -> Self {
        Self {
            input: latent,
            hidden: vec![256, 256],
            output: image.iter().product(),
            activation: Activation::Relu,
            output_activation: Some(Activation::Tanh),
            output_shape: Some(image.to_vec()),
            init: (LinearInit::Torch, LinearInit::Torch),
        }
    }

    /// ganzoo ≤ 0.1's WGAN MLPs (`arch = "mlp"` with wgan/dcgan in old runs): 4 × 512 ReLU, Tanh out.
    pub fn legacy_wgan_generator(latent: usize, image: [usize; 3]) -> Self {
        Self { hidden: vec![512; 4], ..Self::legacy_generator(latent, image) }
    }

    /// ganzoo ≤ 0.1's WGAN MLP critic: 4 × 512 ReLU.
    pub fn legacy_wgan_critic(image: [usize; 3]) -> Self {
        Self::critic(image.iter().product(), vec![512; 4], Activation::Relu)
    }

    /// ganzoo ≤ 0.1's toy MLPs: PyTorch's initialisation.
    pub fn legacy_toy(generator: bool) -> Self {
        let torch = (LinearInit::Torch, LinearInit::Torch);
        if generator {
            Self { init: torch, ..Self::toy_generator() }
        } else {
            Self { init: torch, ..Self::toy_critic() }
        }
    }

    fn critic(input: usize, hidden: Vec<usize>, activation: Activation) -> Self {
        Self {
            input,
            hidden,
            output: 1,
            activation,
            output_activation: None,
            output_shape: None,
            init: (LinearInit::Torch, LinearInit::Torch),
        }
    }

    /// Builds the network; weights are `{prefix}.fc{i}.weight` / `.bias`.
    pub fn build(&self, vb: VarBuilder) -> Result<Network> {
        if self.input == 0 || self.output == 0 || self.hidden.contains(&0) {
            let (input, hidden, output) = (self.input, &self.hidden, self.output);
            let sizes = format!("input {input}, hidden {hidden:?}, output {output}");
            return Err(ModelError::Config(format!("MLP layer sizes must be positive, got {sizes}")));
        }
        let mut net = Network::new();
        net.push(format!("{}.flatten", vb.prefix()), Layer::Reshape(vec![self.input]));
        let sizes: Vec<usize> =
            std::iter::once(self.input).chain(self.hidden.iter().copied()).chain([self.output]).collect();
        let last = sizes.len() - 2;
        for (i, pair) in sizes.windows(2).enumerate() {
            let vb = vb.pp(format!("fc{}", i + 1));
            let init = if i < last { self.init.0 } else { self.init.1 };
            net.push(vb.prefix(), Layer::Linear(Linear::with_init(pair[0], pair[1], init, vb.clone())?));
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
