//! An in-memory labelled image set: the common form every image loader returns.
//!
//! Pixels stay `u8` in NCHW order (a quarter of the memory of `f32`); the
//! [`Batcher`](crate::Batcher) converts a batch to `f32` in [-1, 1] when it is used.

use candle_core::{Device, Tensor};

use crate::{DataError, Result};

/// Images and labels of one split, `u8` pixels in NCHW order.
#[derive(Debug, Clone)]
pub struct ImageDataset {
    pixels: Vec<u8>,
    labels: Vec<u32>,
    shape: ImageShape,
    class_names: Vec<String>,
}

/// Channels, height and width of every image of a data set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImageShape {
    pub channels: usize,
    pub height: usize,
    pub width: usize,
}

impl ImageShape {
    /// Number of `u8` values of one image.
    pub fn numel(&self) -> usize {
        self.channels * self.height * self.width
    }
}

impl std::fmt::Display for ImageShape {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}x{}x{}", self.channels, self.height, self.width)
    }
}

/// Summary numbers of a split, as `data info` prints them.
#[derive(Debug, Clone, PartialEq)]
pub struct DatasetStats {
    pub count: usize,
    pub shape: ImageShape,
    pub min: u8,
    pub max: u8,
    pub mean: f64,
    pub class_histogram: Vec<usize>,
}

impl ImageDataset {
    /// Builds a data set, checking that pixels, labels and shape agree.
    pub fn new(pixels: Vec<u8>, labels: Vec<u32>, shape: ImageShape, class_names: Vec<String>) -> Result<Self> {
        if shape.numel() == 0 {
            return Err(DataError::InvalidArgument(format!("empty image shape {shape}")));
        }
        if pixels.len() != labels.len() * shape.numel() {
            return Err(DataError::InvalidArgument(format!(
                "{} pixels do not make {} images of {shape}",
                pixels.len(),
                labels.len()
            )));
        }
        if let Some(bad) = labels.iter().find(|&&l| l as usize >= class_names.len().max(1)) {
            return Err(DataError::InvalidArgument(format!("label {bad} but only {} classes", class_names.len())));
        }
        Ok(Self { pixels, labels, shape, class_names })
    }

    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    pub fn shape(&self) -> ImageShape {
        self.shape
    }

    pub fn labels(&self) -> &[u32] {
        &self.labels
    }

    pub fn class_names(&self) -> &[String] {
        &self.class_names
    }

    /// The `u8` pixels of image `index`, CHW order.
    pub fn image(&self, index: usize) -> &[u8] {
        let n = self.shape.numel();
        &self.pixels[index * n..(index + 1) * n]
    }

    /// All pixels, NCHW order.
    pub fn pixels(&self) -> &[u8] {
        &self.pixels
    }

    /// Images `ids` as an `(n, C, H, W)` `f32` tensor in [−1, 1] (`p / 127.5 − 1`)
    /// and their labels as an `(n,)` `u32` tensor.
    pub fn gather(&self, ids: &[usize], device: &Device) -> Result<(Tensor, Tensor)> {
        let shape = self.shape;
        let mut pixels = Vec::with_capacity(ids.len() * shape.numel());
        let mut labels = Vec::with_capacity(ids.len());
        for &i in ids {
            self.check_index(i)?;
            pixels.extend(self.image(i).iter().copied().map(crate::batcher::scaled));
            labels.push(self.labels[i]);
        }
        let images = Tensor::from_vec(pixels, (ids.len(), shape.channels, shape.height, shape.width), device)?;
        Ok((images, Tensor::from_vec(labels, ids.len(), device)?))
    }

    fn check_index(&self, i: usize) -> Result<()> {
        if i >= self.len() {
            return Err(DataError::InvalidArgument(format!("image {i} of a data set of {}", self.len())));
        }
        Ok(())
    }

    /// Images `ids` (with their labels), in that order, as a new data set.
    pub fn subset(&self, ids: &[usize]) -> Result<Self> {
        let mut pixels = Vec::with_capacity(ids.len() * self.shape.numel());
        let mut labels = Vec::with_capacity(ids.len());
        for &i in ids {
            self.check_index(i)?;
            pixels.extend_from_slice(self.image(i));
            labels.push(self.labels[i]);
        }
        Self::new(pixels, labels, self.shape, self.class_names.clone())
    }

    /// Every image resized to `size × size` (bilinear), as a new data set.
    pub fn resized(&self, size: usize) -> Result<Self> {
        if size == 0 {
            return Err(DataError::InvalidArgument("image size must be positive".into()));
        }
        let ImageShape { channels, height, width } = self.shape;
        let mut pixels = Vec::with_capacity(self.len() * channels * size * size);
        for i in 0..self.len() {
            for plane in self.image(i).chunks_exact(height * width) {
                let img = image::GrayImage::from_raw(width as u32, height as u32, plane.to_vec())
                    .ok_or_else(|| DataError::InvalidArgument("image buffer has the wrong size".into()))?;
                let out =
                    image::imageops::resize(&img, size as u32, size as u32, image::imageops::FilterType::Triangle);
                pixels.extend(out.into_raw());
            }
        }
        let shape = ImageShape { channels, height: size, width: size };
        Self::new(pixels, self.labels.clone(), shape, self.class_names.clone())
    }

    /// Count, shape, pixel range, mean and class histogram.
    pub fn stats(&self) -> DatasetStats {
        let (mut min, mut max, mut sum) = (u8::MAX, u8::MIN, 0u64);
        for &p in &self.pixels {
            min = min.min(p);
            max = max.max(p);
            sum += u64::from(p);
        }
        let mut class_histogram = vec![0; self.class_names.len().max(1)];
        for &l in &self.labels {
            class_histogram[l as usize] += 1;
        }
        DatasetStats {
            count: self.len(),
            shape: self.shape,
            min: if self.pixels.is_empty() { 0 } else { min },
            max,
            mean: sum as f64 / self.pixels.len().max(1) as f64,
            class_histogram,
        }
    }

    /// A 64-bit fingerprint of the shape, pixels and labels, in order: not
    /// cryptographic, but any change to the images a run trained on (another copy of the
    /// data set, a subset, an edited folder) gives another value.
    pub fn digest(&self) -> u64 {
        // FNV-1a's offset and prime over 8-byte words, each step rotated so that a
        // change in a word's high bits reaches every bit of the result.
        let step = |h: u64, word: u64| (h ^ word).wrapping_mul(0x0000_0100_0000_01b3).rotate_left(23);
        let s = self.shape;
        let mut h =
            [s.channels, s.height, s.width, self.len()].iter().fold(0xcbf2_9ce4_8422_2325, |h, &d| step(h, d as u64));
        let mut words = self.pixels.chunks_exact(8);
        for w in &mut words {
            h = step(h, u64::from_le_bytes(w.try_into().unwrap_or_default()));
        }
        h = words.remainder().iter().fold(h, |h, &b| step(h, u64::from(b)));
        self.labels.iter().fold(h, |h, &l| step(h, u64::from(l)))
    }
}

/// The train and test splits of a data set; an image folder has only `train`.
#[derive(Debug, Clone)]
pub struct Splits {
    pub train: ImageDataset,
    pub test: Option<ImageDataset>,
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn dataset(pixels: Vec<u8>, labels: Vec<u32>, side: usize) -> ImageDataset {
        let shape = ImageShape { channels: 1, height: side, width: side };
        ImageDataset::new(pixels, labels, shape, vec!["a".into(), "b".into()]).unwrap()
    }

    /// Equal data sets agree; any one pixel (each byte of a word, and the tail), a
    /// label, the count or the shape changed gives another digest.
    #[test]
    fn digest_tells_any_change() {
        let pixels: Vec<u8> = (0..3 * 25).map(|i| (i * 7 % 256) as u8).collect();
        let labels = vec![0, 1, 0];
        let base = dataset(pixels.clone(), labels.clone(), 5);
        assert_eq!(base.digest(), dataset(pixels.clone(), labels.clone(), 5).digest());
        for i in 0..pixels.len() {
            let mut p = pixels.clone();
            p[i] ^= 0x80;
            assert_ne!(dataset(p, labels.clone(), 5).digest(), base.digest(), "pixel {i}");
        }
        assert_ne!(dataset(pixels.clone(), vec![0, 1, 1], 5).digest(), base.digest());
        assert_ne!(base.subset(&[0, 1]).unwrap().digest(), base.digest());
        assert_ne!(base.subset(&[1, 0, 2]).unwrap().digest(), base.digest(), "order");
        let flat = ImageShape { channels: 1, height: 1, width: 25 };
        let reshaped = ImageDataset::new(pixels, labels, flat, vec!["a".into(), "b".into()]).unwrap();
        assert_ne!(reshaped.digest(), base.digest());
    }
}
