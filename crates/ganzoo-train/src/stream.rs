//! The endless stream of real batches a run draws from: shuffled epochs of an image
//! set (position = epoch and batch index), or fresh toy samples from the run's RNG.

use candle_core::{Device, Tensor};
use ganzoo_data::{Batcher, ToyDistribution};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::Result;

/// Where the stream is: the next batch to read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamPosition {
    pub epoch: u64,
    pub batch: usize,
}

pub enum DataStream {
    Images { batcher: Batcher, position: StreamPosition },
    Toy { toy: ToyDistribution, batch_size: usize, device: Device, position: StreamPosition },
}

impl DataStream {
    /// The next real batch; toys draw from `rng`.
    pub fn next_batch(&mut self, rng: &mut ChaCha8Rng) -> Result<Tensor> {
        match self {
            Self::Images { batcher, position } => {
                if position.batch >= batcher.batches_per_epoch() {
                    position.epoch += 1;
                    position.batch = 0;
                }
                let batch = batcher.batch(position.epoch, position.batch)?;
                position.batch += 1;
                Ok(batch.images)
            }
            Self::Toy { toy, batch_size, device, position } => {
                position.batch += 1;
                let points = toy.sample(*batch_size, rng);
                Ok(Tensor::from_vec(points, (*batch_size, 2), device)?)
            }
        }
    }

    pub fn position(&self) -> StreamPosition {
        match self {
            Self::Images { position, .. } | Self::Toy { position, .. } => *position,
        }
    }

    pub fn set_position(&mut self, p: StreamPosition) {
        match self {
            Self::Images { position, .. } | Self::Toy { position, .. } => *position = p,
        }
    }

    /// Where the stream stands after `drawn` batches from the start (one per critic
    /// step): an image set moves to its next epoch only when that epoch's first batch is
    /// read, so a finished epoch `e` stands at `(e, batches per epoch)`.
    pub fn position_after(&self, drawn: u64) -> Option<StreamPosition> {
        match self {
            Self::Images { batcher, .. } if drawn > 0 => {
                let per_epoch = u64::try_from(batcher.batches_per_epoch()).ok()?;
                let batch = usize::try_from((drawn - 1) % per_epoch + 1).ok()?;
                Some(StreamPosition { epoch: (drawn - 1) / per_epoch, batch })
            }
            Self::Images { .. } => Some(StreamPosition::default()),
            Self::Toy { .. } => Some(StreamPosition { epoch: 0, batch: usize::try_from(drawn).ok()? }),
        }
    }

    /// Completed passes over the data, as a fraction (0 for toys).
    pub fn epochs_done(&self) -> f64 {
        match self {
            Self::Images { batcher, position } => {
                position.epoch as f64 + position.batch as f64 / batcher.batches_per_epoch() as f64
            }
            Self::Toy { .. } => 0.0,
        }
    }

    pub fn batches_per_epoch(&self) -> Option<usize> {
        match self {
            Self::Images { batcher, .. } => Some(batcher.batches_per_epoch()),
            Self::Toy { .. } => None,
        }
    }
}
