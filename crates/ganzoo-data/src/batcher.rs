//! Seeded mini-batches of an [`ImageDataset`].
//!
//! Epoch `e` visits the images in a permutation drawn from a ChaCha8 generator
//! seeded with the batcher's seed on stream `e`: the order of any epoch depends
//! only on `(seed, e)`, so a resumed run sees exactly the batches it would have
//! seen. Pixels `p ∈ {0..255}` become `p / 127.5 − 1 ∈ [−1, 1]`.
//!
//! On a GPU a data set of at most [`RESIDENT_BYTES`] is copied there once, and a batch
//! is cut there: its indices travel, not its images, and the conversion is a lookup in
//! the 256 values the host computes, so the batches are the host's bit for bit. Cutting
//! and converting on the host (and copying a batch a step) kept a GPU idle at the start
//! of every iteration; PyTorch's reference keeps its data on the GPU too.

use std::sync::{Arc, Mutex};

use candle_core::{DType, Device, Tensor};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::{DataError, ImageDataset, Result};

/// The most pixel bytes a [`Batcher`] copies to a GPU (a data set of more is batched on
/// the host): CIFAR-10 resized to 64×64 takes 614 MB, MNIST 47 MB.
pub const RESIDENT_BYTES: usize = 1 << 30;

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
    /// The data set on the device, where batches are cut there.
    resident: Option<Resident>,
    /// The last epoch's order, kept: drawing it shuffles the whole data set.
    order: Arc<Mutex<Option<KeptOrder>>>,
}

/// An epoch and the order it visits the images in.
type KeptOrder = (u64, Arc<[usize]>);

/// A data set held on the batcher's device.
#[derive(Debug, Clone)]
struct Resident {
    /// `(N, C·H·W)` `u8`.
    pixels: Tensor,
    /// `(N,)` `u32`.
    labels: Tensor,
    /// `(256,)` `f32`: `p / 127.5 − 1` for every byte `p`, computed on the host.
    values: Tensor,
}

impl Resident {
    fn new(data: &ImageDataset, device: &Device) -> candle_core::Result<Self> {
        let values: Vec<f32> = (0..=255u8).map(scaled).collect();
        Ok(Self {
            pixels: Tensor::from_slice(data.pixels(), (data.len(), data.shape().numel()), device)?,
            labels: Tensor::from_slice(data.labels(), data.len(), device)?,
            values: Tensor::from_vec(values, 256, device)?,
        })
    }

    /// Images `ids` as `(n, C, H, W)` `f32` and their labels, gathered on the device.
    fn gather(&self, ids: &[usize], shape: crate::ImageShape) -> candle_core::Result<(Tensor, Tensor)> {
        let index: Vec<u32> = ids.iter().map(|&i| i as u32).collect();
        let index = Tensor::from_vec(index, ids.len(), self.pixels.device())?;
        // Widened first: Candle's `index_select` reads an index of its type's largest
        // value (a `u8` 255) as padding, a zero.
        let bytes = self.pixels.index_select(&index, 0)?.flatten_all()?.to_dtype(DType::U32)?;
        let images = self.values.index_select(&bytes, 0)?;
        let images = images.reshape((ids.len(), shape.channels, shape.height, shape.width))?;
        Ok((images, self.labels.index_select(&index, 0)?))
    }
}

/// A pixel's value in a batch: `p / 127.5 − 1 ∈ [−1, 1]`.
pub(crate) fn scaled(p: u8) -> f32 {
    f32::from(p) / 127.5 - 1.0
}

/// Whether a data set of `bytes` pixels is kept on `device`: on a GPU, up to
/// [`RESIDENT_BYTES`] (Candle's CUDA `index_select` counts in 32 bits); never on the CPU,
/// where the host's gather is the batch.
fn resident_on(device: &Device, bytes: usize) -> bool {
    !device.is_cpu() && bytes <= RESIDENT_BYTES
}

impl Batcher {
    pub fn new(data: ImageDataset, config: BatcherConfig, device: Device) -> Result<Self> {
        let resident = resident_on(&device, data.pixels().len());
        Self::with_residence(data, config, device, resident)
    }

    /// As [`Batcher::new`], the data set kept on `device` if `resident` (else batched on
    /// the host) whatever the device: tests compare the two on the CPU. A data set that
    /// fails to copy to the device (out of memory) is batched on the host, with a warning.
    pub fn with_residence(data: ImageDataset, config: BatcherConfig, device: Device, resident: bool) -> Result<Self> {
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
        // The image index is a `u32` below its largest value, which reads as padding.
        let resident = if resident && data.len() < u32::MAX as usize {
            match Resident::new(&data, &device) {
                Ok(r) => Some(r),
                Err(e) => {
                    tracing::warn!(%e, bytes = data.pixels().len(), "the data set did not fit on {device:?}: batches are cut on the host");
                    None
                }
            }
        } else {
            None
        };
        Ok(Self { data, config, device, resident, order: Arc::default() })
    }

    /// Whether batches are cut on the device from a copy of the data set there.
    pub fn resident(&self) -> bool {
        self.resident.is_some()
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
        self.batch_from(&self.kept_order(epoch), index)
    }

    /// [`Batcher::order`], drawn once for consecutive batches of one epoch.
    fn kept_order(&self, epoch: u64) -> Arc<[usize]> {
        let mut kept = self.order.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        match &*kept {
            Some((e, order)) if *e == epoch => order.clone(),
            _ => {
                let order: Arc<[usize]> = self.order(epoch).into();
                *kept = Some((epoch, order.clone()));
                order
            }
        }
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
        let (images, labels) = match &self.resident {
            Some(resident) => resident.gather(ids, self.data.shape())?,
            None => self.data.gather(ids, &self.device)?,
        };
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
