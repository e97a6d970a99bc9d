//! Seeded mini-batches of an [`ImageDataset`].
//!
//! Epoch `e` visits the images in a permutation drawn from a ChaCha8 generator
//! seeded with the batcher's seed on stream `e`: the order of any epoch depends
//! only on `(seed, e)`, so a resumed run sees exactly the batches it would have
//! seen. Pixels `p ∈ {0..255}` become `p / 127.5 − 1 ∈ [−1, 1]`.

use candle_core::{Device, Tensor};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::{DataError, ImageDataset, Result};

/// Batch size, last-batch policy and shuffling seed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatcherConfig {
    pub batch_size: usize,
    /// Drop a final batch smaller than `batch_size`.
    pub drop_last: bool,
    pub seed: u64,
}

impl Default for BatcherConfig {
    fn default() -> Self {
        Self { batch_size: 64, drop_last: true, seed: 0 }
    }
}

/// One mini-batch: images `(B, C, H, W)` `f32` in [−1, 1] and labels `(B,)` `u32`.
#[derive(Debug, Clone)]
pub struct Batch {
    pub images: Tensor,
    pub labels: Tensor,
}

/// Cuts a data set into shuffled batches on a device.
#[derive(Debug, Clone)]
pub struct Batcher {
    data: ImageDataset,
    config: BatcherConfig,
    device: Device,
}

impl Batcher {
    pub fn new(data: ImageDataset, config: BatcherConfig, device: Device) -> Result<Self> {
        if config.batch_size == 0 {
            return Err(DataError::InvalidArgument("batch size must be at least 1".into()));
        }
        if config.drop_last && data.len() < config.batch_size {
            return Err(DataError::InvalidArgument(format!(
                "batch size {} is larger than the data set ({} images) and the last batch is dropped",
                config.batch_size,
                data.len()
            )));
        }
        Ok(Self { data, config, device })
    }

    pub fn data(&self) -> &ImageDataset {
        &self.data
    }

    pub fn config(&self) -> BatcherConfig {
        self.config
    }

    /// Number of batches in each epoch.
    pub fn batches_per_epoch(&self) -> usize {
        let (n, b) = (self.data.len(), self.config.batch_size);
        if self.config.drop_last {
            n / b
        } else {
            n.div_ceil(b)
        }
    }

    /// The order in which epoch `epoch` visits the images.
    pub fn order(&self, epoch: u64) -> Vec<usize> {
        epoch_order(self.data.len(), self.config.seed, epoch)
    }

    /// Batch `index` of epoch `epoch`.
    pub fn batch(&self, epoch: u64, index: usize) -> Result<Batch> {
        self.batch_from(&self.order(epoch), index)
    }

    /// All batches of epoch `epoch`, in order.
    pub fn epoch(&self, epoch: u64) -> impl Iterator<Item = Result<Batch>> + '_ {
        let order = self.order(epoch);
        (0..self.batches_per_epoch()).map(move |i| self.batch_from(&order, i))
    }

    fn batch_from(&self, order: &[usize], index: usize) -> Result<Batch> {
        let b = self.config.batch_size;
        if index >= self.batches_per_epoch() {
            return Err(DataError::InvalidArgument(format!(
                "batch {index} is past the end of the epoch ({} batches)",
                self.batches_per_epoch()
            )));
        }
        let ids = &order[index * b..((index + 1) * b).min(order.len())];
        let (images, labels) = self.data.gather(ids, &self.device)?;
        Ok(Batch { images, labels })
    }
}

/// The permutation of `0..len` that epoch `epoch` of a batcher seeded with `seed` visits.
pub fn epoch_order(len: usize, seed: u64, epoch: u64) -> Vec<usize> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(epoch);
    let mut order: Vec<usize> = (0..len).collect();
    order.shuffle(&mut rng);
    order
}
