//! What a network will hold, from its configuration alone — nothing is allocated, so
//! a command can refuse sizes the machine cannot hold before it builds anything.
//! Counts are `u128`: any sizes a file or a flag can give multiply without overflow.

use crate::dcgan::{DcganConfig, Norm};
use crate::mlp::MlpConfig;

/// Trainable parameters and the values a forward pass keeps per sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Footprint {
    /// Trainable parameters (batch-norm running statistics excluded).
    pub params: u128,
    /// Values of every layer's output for one sample, the input included.
    pub activations: u128,
    /// The largest convolution unfolding (im2col) of one sample, in values.
    pub unfold: u128,
}

impl MlpConfig {
    /// Parameters and per-sample activations of [`MlpConfig::build`]'s network.
    pub fn footprint(&self) -> Footprint {
        let sizes: Vec<u128> = std::iter::once(self.input)
            .chain(self.hidden.iter().copied())
            .chain([self.output])
            .map(|s| s as u128)
            .collect();
        let params = sizes.windows(2).map(|w| w[0] * w[1] + w[1]).sum();
        // Each linear layer's output, and its activation's.
        let activations = sizes[0] + sizes[1..].iter().map(|s| 2 * s).sum::<u128>();
        Footprint { params, activations, unfold: 0 }
    }
}

impl DcganConfig {
    /// Parameters and per-sample activations of [`DcganConfig::generator`]'s network.
    pub fn generator_footprint(&self) -> Footprint {
        let (k0, mults) = self.plan();
        let mut f = Footprint { activations: self.nz as u128, ..Footprint::default() };
        let (mut cin, mut side) = (self.nz as u128, 1u128);
        for (i, &m) in mults.iter().enumerate() {
            let cout = (self.ngf * m) as u128;
            let k = if i == 0 { k0 } else { 4 } as u128;
            side = if i == 0 { k } else { side * 2 };
            f.params += cin * cout * k * k;
            let map = cout * side * side;
            let norm = u128::from(self.generator_norm == Norm::Batch);
            f.params += 2 * cout * norm;
            f.activations += map * (2 + norm);
            f.unfold = f.unfold.max(cin * k * k * (side / 2).max(1).pow(2));
            cin = cout;
        }
        let (c, s) = (self.channels as u128, self.image_size as u128);
        f.params += cin * c * 16;
        f.activations += 2 * c * s * s;
        f.unfold = f.unfold.max(c * 16 * s * s);
        f
    }

    /// Parameters and per-sample activations of [`DcganConfig::discriminator`]'s network.
    pub fn discriminator_footprint(&self) -> Footprint {
        let (k0, mults) = self.plan();
        let (mut cin, mut side) = (self.channels as u128, self.image_size as u128);
        let mut f = Footprint { activations: cin * side * side, ..Footprint::default() };
        for (i, &m) in mults.iter().rev().enumerate() {
            let cout = (self.ndf * m) as u128;
            side /= 2;
            f.params += cin * cout * 16;
            f.unfold = f.unfold.max(cin * 16 * side * side);
            let map = cout * side * side;
            let norm = match (i, self.critic_norm) {
                (0, _) | (_, Norm::None) => 0,
                (_, Norm::Batch) => 2 * cout,
                (_, Norm::Layer) => 2 * map,
                (_, Norm::LayerChannel) => 2 * cout,
            };
            f.params += norm;
            f.activations += map * (2 + u128::from(norm > 0));
            cin = cout;
        }
        let k0 = k0 as u128;
        f.params += cin * k0 * k0;
        f.activations += 2;
        f
    }
}
