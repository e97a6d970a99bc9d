//! DCGAN (Radford et al. 2016) generators and discriminators for 28×28, 32×32 and
//! 64×64 images, as in pytorch/examples `dcgan`.
//!
//! Generator: project `z` to a `k₀×k₀` map (4×4, or 7×7 for 28×28) with a transposed
//! convolution, then stride-2 transposed convolutions (kernel 4, padding 1) halving the
//! channels and doubling the side; batch norm and ReLU after every layer but the last,
//! Tanh out. The discriminator mirrors it with strided convolutions, LeakyReLU 0.2, no
//! normalisation after the first layer, and a `k₀×k₀` convolution to one logit.
//! No biases, no pooling; conv weights N(0, 0.02), batch-norm γ N(1, 0.02), β 0.
//!
//! Variants: a generator without batch norm (WGAN, section 4.3), a critic with layer
//! norm (WGAN-GP, section 4) or without normalisation.

use candle_nn::{Init, VarBuilder};

use crate::conv::{Conv2d, ConvSpec, ConvTranspose2d};
use crate::network::{Activation, Layer, Network};
use crate::norm::{BatchNorm2d, LayerNorm};
use crate::{ModelError, Result};

const GAMMA_INIT: Init = Init::Randn { mean: 1.0, stdev: 0.02 };

/// Normalisation used inside a network.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Norm {
    Batch,
    /// Layer norm with `γ, β` per element of `(C, H, W)` (PyTorch's `nn.LayerNorm([C, H, W])`).
    Layer,
    /// Layer norm over `(C, H, W)` with `γ, β` per channel (tflib's `Layernorm(name, [1, 2, 3])`,
    /// as in improved_wgan_training `gan_64x64.py`'s critics).
    LayerChannel,
    None,
}

/// Architecture of a DCGAN pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DcganConfig {
    /// 28, 32 or 64.
    pub image_size: usize,
    pub channels: usize,
    /// Latent size.
    pub nz: usize,
    /// Generator width (channels of its last hidden layer).
    pub ngf: usize,
    /// Discriminator width (channels of its first layer).
    pub ndf: usize,
    /// `Batch` or `None`.
    pub generator_norm: Norm,
    pub critic_norm: Norm,
}

impl Default for DcganConfig {
    /// pytorch/examples defaults: 64×64 RGB, nz 100, ngf = ndf = 64, batch norm in both.
    fn default() -> Self {
        Self {
            image_size: 64,
            channels: 3,
            nz: 100,
            ngf: 64,
            ndf: 64,
            generator_norm: Norm::Batch,
            critic_norm: Norm::Batch,
        }
    }
}

impl DcganConfig {
    /// 28×28 grayscale (MNIST, Fashion-MNIST).
    pub fn mnist() -> Self {
        Self { image_size: 28, channels: 1, ..Self::default() }
    }

    /// 32×32 RGB (CIFAR-10).
    pub fn cifar10() -> Self {
        Self { image_size: 32, channels: 3, ..Self::default() }
    }

    /// 64×64 RGB (LSUN, CelebA in the paper).
    pub fn rgb64() -> Self {
        Self::default()
    }

    /// Checks sizes and variants.
    pub fn validate(&self) -> Result<()> {
        if ![28, 32, 64].contains(&self.image_size) {
            return Err(ModelError::Config(format!("DCGAN image size {} is not 28, 32 or 64", self.image_size)));
        }
        let sizes = [("channels", self.channels), ("nz", self.nz), ("ngf", self.ngf), ("ndf", self.ndf)];
        if let Some((name, _)) = sizes.iter().find(|(_, v)| *v == 0) {
            return Err(ModelError::Config(format!("DCGAN {name} must be positive, got 0")));
        }
        if matches!(self.generator_norm, Norm::Layer | Norm::LayerChannel) {
            return Err(ModelError::Config("the DCGAN generator takes batch norm or none".into()));
        }
        Ok(())
    }

    /// Side of the first generator map and of the last discriminator kernel, and the
    /// channel multipliers of the generator's hidden layers.
    pub(crate) fn plan(&self) -> (usize, &'static [usize]) {
        match self.image_size {
            28 => (7, &[2, 1]),
            32 => (4, &[4, 2, 1]),
            _ => (4, &[8, 4, 2, 1]),
        }
    }

    /// The generator, `(B, nz) → (B, C, S, S)` in [−1, 1]; weights under `vb` (e.g. `gen.block1.conv.weight`).
    pub fn generator(&self, vb: VarBuilder) -> Result<Network> {
        self.validate()?;
        let (k0, mults) = self.plan();
        let mut net = Network::new();
        net.push(format!("{}.project", vb.prefix()), Layer::Reshape(vec![self.nz, 1, 1]));
        let mut cin = self.nz;
        for (i, &m) in mults.iter().enumerate() {
            let vb = vb.pp(format!("block{}", i + 1));
            let (k, stride, pad) = if i == 0 { (k0, 1, 0) } else { (4, 2, 1) };
            let conv = ConvTranspose2d::new(ConvSpec::dcgan(cin, self.ngf * m, k, stride, pad), vb.pp("conv"))?;
            net.push(format!("{}.conv", vb.prefix()), Layer::ConvTranspose(conv));
            if self.generator_norm == Norm::Batch {
                net.push(
                    format!("{}.bn", vb.prefix()),
                    Layer::BatchNorm(BatchNorm2d::new(self.ngf * m, GAMMA_INIT, vb.pp("bn"))?),
                );
            }
            net.push(format!("{}.relu", vb.prefix()), Layer::Act(Activation::Relu));
            cin = self.ngf * m;
        }
        let vb = vb.pp("out");
        let conv = ConvTranspose2d::new(ConvSpec::dcgan(cin, self.channels, 4, 2, 1), vb.pp("conv"))?;
        net.push(format!("{}.conv", vb.prefix()), Layer::ConvTranspose(conv));
        net.push(format!("{}.tanh", vb.prefix()), Layer::Act(Activation::Tanh));
        Ok(net)
    }

    /// The discriminator (or critic), `(B, C, S, S) → (B, 1)` logits or scores.
    pub fn discriminator(&self, vb: VarBuilder) -> Result<Network> {
        self.validate()?;
        let (k0, mults) = self.plan();
        let mut net = Network::new();
        let (mut cin, mut side) = (self.channels, self.image_size);
        for (i, &m) in mults.iter().rev().enumerate() {
            let vb = vb.pp(format!("block{}", i + 1));
            let cout = self.ndf * m;
            let conv = Conv2d::new(ConvSpec::dcgan(cin, cout, 4, 2, 1), vb.pp("conv"))?;
            net.push(format!("{}.conv", vb.prefix()), Layer::Conv(conv));
            side /= 2;
            match (i, self.critic_norm) {
                (0, _) | (_, Norm::None) => {}
                (_, Norm::Batch) => net.push(
                    format!("{}.bn", vb.prefix()),
                    Layer::BatchNorm(BatchNorm2d::new(cout, GAMMA_INIT, vb.pp("bn"))?),
                ),
                (_, Norm::Layer) => net.push(
                    format!("{}.ln", vb.prefix()),
                    Layer::LayerNorm(LayerNorm::new(&[cout, side, side], vb.pp("ln"))?),
                ),
                (_, Norm::LayerChannel) => net.push(
                    format!("{}.ln", vb.prefix()),
                    Layer::LayerNorm(LayerNorm::per_channel([cout, side, side], vb.pp("ln"))?),
                ),
            }
            net.push(format!("{}.lrelu", vb.prefix()), Layer::Act(Activation::LeakyRelu(0.2)));
            cin = cout;
        }
        let vb = vb.pp("out");
        net.push(
            format!("{}.conv", vb.prefix()),
            Layer::Conv(Conv2d::new(ConvSpec::dcgan(cin, 1, k0, 1, 0), vb.pp("conv"))?),
        );
        net.push(format!("{}.flatten", vb.prefix()), Layer::Reshape(vec![1]));
        Ok(net)
    }
}
