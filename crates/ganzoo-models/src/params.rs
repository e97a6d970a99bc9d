//! A seeded parameter store: every weight a builder asks for through a
//! [`VarBuilder`] is drawn from one ChaCha8 stream, so one seed fixes the
//! initialisation (Candle's own CPU generator cannot be seeded).
//!
//! Trainable parameters and buffers (batch-norm running statistics) live in the
//! same [`VarMap`] so a checkpoint holds both; [`ParamStore::trainable`] leaves the
//! buffers out, so optimisers and weight clipping never touch them.

use std::sync::Mutex;

use candle_core::{DType, Device, Shape, Tensor, Var};
use candle_nn::init::{Init, NormalOrUniform};
use candle_nn::var_builder::SimpleBackend;
use candle_nn::{VarBuilder, VarMap};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;

/// Suffixes of variables that are state, not parameters.
pub const BUFFER_SUFFIXES: [&str; 2] = ["running_mean", "running_var"];

/// Named variables of one network, initialised from a seed.
pub struct ParamStore {
    map: VarMap,
    rng: Mutex<ChaCha8Rng>,
}

impl ParamStore {
    pub fn new(seed: u64) -> Self {
        Self { map: VarMap::new(), rng: Mutex::new(ChaCha8Rng::seed_from_u64(seed)) }
    }

    /// A builder whose new variables come from this store's stream.
    pub fn builder(&self, dtype: DType, device: &Device) -> VarBuilder<'_> {
        VarBuilder::from_backend(Box::new(SeededBackend { store: self }), dtype, device.clone())
    }

    pub fn var_map(&self) -> &VarMap {
        &self.map
    }

    /// All variables, sorted by name.
    pub fn named(&self) -> Vec<(String, Var)> {
        let data = self.map.data().lock().unwrap_or_else(|e| e.into_inner());
        let mut all: Vec<(String, Var)> = data.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        all.sort_by(|a, b| a.0.cmp(&b.0));
        all
    }

    /// Trainable parameters (everything but batch-norm running statistics), sorted by name.
    pub fn trainable(&self) -> Vec<(String, Var)> {
        self.named().into_iter().filter(|(name, _)| !is_buffer(name)).collect()
    }

    /// Number of trainable scalars, as PyTorch counts `parameters()`.
    pub fn param_count(&self) -> usize {
        self.trainable().iter().map(|(_, v)| v.elem_count()).sum()
    }
}

/// True for a buffer (state that is saved but not trained).
pub fn is_buffer(name: &str) -> bool {
    BUFFER_SUFFIXES.iter().any(|s| name.ends_with(s))
}

struct SeededBackend<'a> {
    store: &'a ParamStore,
}

impl SimpleBackend for SeededBackend<'_> {
    fn get(&self, s: Shape, name: &str, h: Init, dtype: DType, dev: &Device) -> candle_core::Result<Tensor> {
        let mut data = self.store.map.data().lock().unwrap_or_else(|e| e.into_inner());
        if let Some(var) = data.get(name) {
            if var.shape() != &s {
                candle_core::bail!("variable {name} has shape {:?}, asked for {s:?}", var.shape());
            }
            return Ok(var.as_tensor().clone());
        }
        let values = {
            let mut rng = self.store.rng.lock().unwrap_or_else(|e| e.into_inner());
            sample_init(h, &s, &mut rng)
        };
        let var = Var::from_tensor(&Tensor::from_vec(values, s, dev)?.to_dtype(dtype)?)?;
        data.insert(name.to_string(), var.clone());
        Ok(var.as_tensor().clone())
    }

    fn get_unchecked(&self, name: &str, _: DType, _: &Device) -> candle_core::Result<Tensor> {
        let data = self.store.map.data().lock().unwrap_or_else(|e| e.into_inner());
        data.get(name)
            .map(|v| v.as_tensor().clone())
            .ok_or_else(|| candle_core::Error::CannotFindTensor { path: name.to_string() })
    }

    fn contains_tensor(&self, name: &str) -> bool {
        self.store.map.data().lock().map(|d| d.contains_key(name)).unwrap_or(false)
    }
}

/// Draws the values `init` prescribes for a variable of shape `s`.
fn sample_init(init: Init, s: &Shape, rng: &mut ChaCha8Rng) -> Vec<f64> {
    let n = s.elem_count();
    let normal = |rng: &mut ChaCha8Rng, mean: f64, std: f64| mean + std * rng.sample::<f64, _>(StandardNormal);
    match init {
        Init::Const(c) => vec![c; n],
        Init::Randn { mean, stdev } => (0..n).map(|_| normal(rng, mean, stdev)).collect(),
        Init::Uniform { lo, up } => (0..n).map(|_| rng.random_range(lo..up)).collect(),
        Init::Kaiming { dist, fan, non_linearity } => {
            let std = non_linearity.gain() / (fan.for_shape(s) as f64).sqrt();
            match dist {
                NormalOrUniform::Uniform => {
                    let bound = 3f64.sqrt() * std;
                    (0..n).map(|_| rng.random_range(-bound..bound)).collect()
                }
                NormalOrUniform::Normal => (0..n).map(|_| normal(rng, 0.0, std)).collect(),
            }
        }
    }
}
