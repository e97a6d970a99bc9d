//! Image metrics in a network's features — a domain classifier's ([`crate::classifier`])
//! or pytorch-fid's InceptionV3 ([`crate::inception`]): the Fréchet distance to the real
//! test split (FID's formula), KID, precision / recall on k-nearest-neighbour manifolds
//! (Kynkäänniemi et al. 2019, k = 3), and with a classifier also the Inception-style score
//! `exp E_x KL(p(y|x) ‖ p(y))` (Salimans et al. 2016) from its softmax, the class histogram
//! of generated samples and the classes they cover.

use candle_core::{Tensor, D};
use serde::{Deserialize, Serialize};

use crate::classifier::{Classifier, FEATURES};
use crate::frechet::{frechet_distance, Gaussian};
use crate::inception::Inception;
use crate::kid::{kernel_inception_distance, Kid};
use crate::precision_recall::precision_recall;
use crate::{EvalError, Result};

/// Neighbours that set the radius of each point's ball in precision / recall.
pub const PR_K: usize = 3;
/// KID's subsets and their size (torch-fidelity's defaults).
pub const KID_SUBSETS: usize = 100;
pub const KID_SUBSET_SIZE: usize = 1000;
/// A class counts as covered with at least this share of the samples a uniform split gives it.
pub const COVERED_SHARE: f64 = 0.1;

/// The network image metrics are computed in.
pub enum FeatureExtractor {
    /// A domain classifier: 128-d features and class probabilities.
    Classifier(Box<Classifier>),
    /// pytorch-fid's InceptionV3: 2048-d pool features, comparable with published FIDs.
    Inception(Inception),
}

impl FeatureExtractor {
    /// `classifier:<dataset>` or `inception`, as reports name it.
    pub fn name(&self) -> String {
        match self {
            Self::Classifier(c) => format!("classifier:{}", c.card.dataset),
            Self::Inception(_) => "inception".to_string(),
        }
    }

    /// A name for the network and its weights (a hash of them): caches of real features
    /// are keyed by it.
    pub fn id(&self) -> Result<String> {
        match self {
            Self::Classifier(c) => {
                let card = serde_json::to_vec(&c.card).map_err(|e| EvalError::Numeric(e.to_string()))?;
                let hash = crate::feature_cache::fingerprint_tensors(&c.parameters(), &card)?;
                Ok(format!("classifier-{}-{hash}", c.card.dataset))
            }
            Self::Inception(net) => {
                Ok(format!("inception-{}", crate::feature_cache::fingerprint_tensors(&net.parameters(), b"")?))
            }
        }
    }

    pub fn dim(&self) -> usize {
        match self {
            Self::Classifier(_) => FEATURES,
            Self::Inception(_) => crate::inception::FEATURES,
        }
    }

    /// Classes of the classifier; none for Inception's features.
    pub fn classes(&self) -> Option<usize> {
        match self {
            Self::Classifier(c) => Some(c.card.classes),
            Self::Inception(_) => None,
        }
    }

    /// Images run at once: Inception's 299×299 activations are ~100× a classifier's.
    pub fn batch(&self) -> usize {
        match self {
            Self::Classifier(_) => 500,
            Self::Inception(_) => 16,
        }
    }

    /// What the network sees in `images` (`(n, C, H, W)` in [−1, 1], on any device: moved
    /// to the network's; out of range or non-finite values are errors).
    pub fn see(&self, images: &Tensor) -> Result<Seen> {
        match self {
            Self::Classifier(c) => see(c, images),
            Self::Inception(net) => {
                let features = net.features(images)?;
                Ok(Seen {
                    dim: self.dim(),
                    classes: 0,
                    features: to_vec(&features)?,
                    probs: Vec::new(),
                    reference: None,
                })
            }
        }
    }

    /// An empty set of what this network sees, to [`Seen::extend`].
    pub fn nothing_seen(&self) -> Seen {
        let classes = self.classes().unwrap_or(0);
        Seen { dim: self.dim(), classes, features: Vec::new(), probs: Vec::new(), reference: None }
    }
}

/// What a network sees in a set of images.
#[derive(Debug, Clone, PartialEq)]
pub struct Seen {
    /// Feature width.
    pub dim: usize,
    /// Classes of `probs` (0: no probabilities).
    pub classes: usize,
    /// `n × dim` features, row-major.
    pub features: Vec<f32>,
    /// `n × classes` class probabilities, row-major (empty without a classifier).
    pub probs: Vec<f32>,
    /// For real images' features ([`crate::feature_cache::real_features`]): which network
    /// saw which images.
    pub reference: Option<Reference>,
}

/// What a measurement's real side was: the feature network's weights
/// ([`FeatureExtractor::id`]) and the real images after any resizing
/// ([`crate::feature_cache::fingerprint_split`]). Two FIDs compare only where both match.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reference {
    pub network: String,
    pub real: String,
}

impl Seen {
    pub fn len(&self) -> usize {
        self.features.len() / self.dim.max(1)
    }

    pub fn is_empty(&self) -> bool {
        self.features.is_empty()
    }

    pub fn extend(&mut self, more: Seen) {
        self.features.extend(more.features);
        self.probs.extend(more.probs);
    }
}

/// The metrics of generated images against real ones.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImageReport {
    pub samples: usize,
    pub real_samples: usize,
    /// The network the features come from ([`FeatureExtractor::name`]).
    pub features: String,
    pub fid: f64,
    pub kid: Kid,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub inception_score: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub class_histogram: Option<Vec<usize>>,
    /// Classes holding at least [`COVERED_SHARE`] of a uniform share of the samples.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub classes_covered: Option<usize>,
    pub precision: f64,
    pub recall: f64,
    /// The side the real test images were resized to (bilinear, as training resizes
    /// them) to match the samples' size; absent when they were compared as stored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub real_resized_to: Option<usize>,
    /// The split the real images come from: `test`, or `train` for an image folder,
    /// which has no other (absent in reports written before it was recorded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub real_split: Option<String>,
    /// The real side's network and images (absent in reports written before it was
    /// recorded, and where the real features came from elsewhere).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<Reference>,
}

fn to_vec(t: &Tensor) -> Result<Vec<f32>> {
    t.flatten_all().and_then(|t| t.to_vec1::<f32>()).map_err(|e| EvalError::Numeric(e.to_string()))
}

/// Runs `images` (`(n, C, H, W)` in [−1, 1]) through the classifier. Values outside
/// [−1, 1] (beyond rounding) or non-finite are errors.
pub fn see(classifier: &Classifier, images: &Tensor) -> Result<Seen> {
    let flat = to_vec(images)?;
    crate::error::check_finite(&flat, "the images")?;
    if let Some(i) = flat.iter().position(|v| v.abs() > 1.0 + 1e-3) {
        return Err(EvalError::Samples(format!("image values must lie in [-1, 1]; value {} at index {i}", flat[i])));
    }
    let (logits, features) = classifier.logits_and_features(images)?;
    let probs = candle_nn::ops::softmax(&logits, D::Minus1).map_err(|e| EvalError::Numeric(e.to_string()))?;
    let (features, probs) = (to_vec(&features)?, to_vec(&probs)?);
    Ok(Seen { dim: FEATURES, classes: classifier.card.classes, features, probs, reference: None })
}

/// Bytes [`image_metrics`] works in beyond the two sets' features, for `n` samples and `m`
/// real images of `dim` features on the current rayon pool: its stages' working sets
/// added up (a Gaussian's fit and the Fréchet distance's `dim × dim` matrices; KID's
/// subsets; precision and recall), since an allocator that keeps freed memory, as
/// `ganzoo`'s does, may not give one thread's to another.
pub fn metrics_working_bytes(n: usize, m: usize, dim: usize) -> u128 {
    let threads = rayon::current_num_threads();
    let (rows, d) = (n.max(m) as u128, dim as u128);
    let fid = 8 * (rows * d + 8 * d * d);
    let kid = crate::kid::working_bytes(n, m, dim, KID_SUBSETS, KID_SUBSET_SIZE, threads);
    fid + kid + crate::precision_recall::working_bytes(n, m, dim, PR_K, threads)
}

/// Every metric of `fake` against `real` (both seen by the network named `features`).
pub fn image_metrics(features: &str, fake: &Seen, real: &Seen, seed: u64) -> Result<ImageReport> {
    image_metrics_with(features, fake, real, seed, &mut |_, _| {})
}

/// [`image_metrics`], calling `progress(done, total)` with the pairs of feature vectors
/// precision and recall have compared (the part that grows with the square of the counts:
/// `(n + m)²` pairs for `n` samples and `m` real images).
pub fn image_metrics_with(
    features: &str,
    fake: &Seen,
    real: &Seen,
    seed: u64,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<ImageReport> {
    let dim = fake.dim;
    if real.dim != dim || real.classes != fake.classes {
        return Err(EvalError::Samples(format!(
            "real and generated features differ in shape ({} vs {} wide)",
            real.dim, fake.dim
        )));
    }
    let fid = frechet_distance(&Gaussian::fit(&fake.features, dim)?, &Gaussian::fit(&real.features, dim)?)?;
    let kid = kernel_inception_distance(&fake.features, &real.features, dim, KID_SUBSETS, KID_SUBSET_SIZE, seed)?;
    let (precision, recall) = precision_recall(&real.features, &fake.features, dim, PR_K, progress)?;
    let classes = (fake.classes > 0).then_some(fake.classes);
    let class_histogram = classes.map(|classes| {
        let mut histogram = vec![0; classes];
        for p in fake.probs.chunks_exact(classes) {
            let best = p.iter().enumerate().fold(0, |b, (k, &v)| if v > p[b] { k } else { b });
            histogram[best] += 1;
        }
        histogram
    });
    let classes_covered = class_histogram.as_ref().map(|h| {
        let floor = COVERED_SHARE * fake.len() as f64 / h.len() as f64;
        h.iter().filter(|&&c| c as f64 >= floor && c > 0).count()
    });
    Ok(ImageReport {
        samples: fake.len(),
        real_samples: real.len(),
        features: features.to_string(),
        fid,
        kid,
        inception_score: classes.map(|c| inception_score(&fake.probs, c)),
        class_histogram,
        classes_covered,
        precision,
        recall,
        real_resized_to: None,
        real_split: None,
        reference: real.reference.clone(),
    })
}

/// `exp(mean_x Σ_y p(y|x) (ln p(y|x) − ln p(y)))`, `p(y)` the mean of `p(y|x)`.
pub fn inception_score(probs: &[f32], classes: usize) -> f64 {
    let n = probs.len() / classes;
    let mut marginal = vec![0.0f64; classes];
    for p in probs.chunks_exact(classes) {
        marginal.iter_mut().zip(p).for_each(|(m, &v)| *m += f64::from(v) / n as f64);
    }
    let kl: f64 = probs
        .chunks_exact(classes)
        .map(|p| {
            p.iter()
                .zip(&marginal)
                .filter(|(&v, _)| v > 0.0)
                .map(|(&v, &q)| f64::from(v) * (f64::from(v).ln() - q.ln()))
                .sum::<f64>()
        })
        .sum();
    (kl / n as f64).exp()
}
