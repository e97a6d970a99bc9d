//! Adam (Kingma & Ba 2015, algorithm 1) and RMSprop (Tieleman & Hinton 2012), as
//! PyTorch defines them, with their state exposed so checkpoints can save it.
//! (candle-nn has SGD and AdamW only, and keeps AdamW's moments private.)
//!
//! - Adam: `m ← β₁m + (1−β₁)g`, `v ← β₂v + (1−β₂)g²`,
//!   `θ ← θ − lr · (m/(1−β₁ᵗ)) / (√(v/(1−β₂ᵗ)) + ε)`.
//! - RMSprop: `v ← αv + (1−α)g²`, `θ ← θ − lr · g/(√v + ε)`, α = 0.99, `v₀ = 0`.
//! - RMSprop as TensorFlow 1 (`tf.train.RMSPropOptimizer`, its `rms` slot starting at
//!   ones): `v ← 0.9v + 0.1g²`, `θ ← θ − lr · g/√(v + 1e-10)`, `v₀ = 1`.

use std::collections::HashMap;

use candle_core::backprop::GradStore;
use candle_core::{Tensor, Var};

use crate::config::Optimizer;
use crate::{Result, TrainError};

const EPS: f64 = 1e-8;
const RMS_ALPHA: f64 = 0.99;
const TF_RMS_DECAY: f64 = 0.9;
const TF_RMS_EPS: f64 = 1e-10;

/// An optimiser over a fixed, named set of variables.
pub struct OptimizerState {
    kind: Optimizer,
    vars: Vec<(String, Var)>,
    /// First moments (Adam only).
    m: Vec<Tensor>,
    /// Second moments.
    v: Vec<Tensor>,
    step: u64,
    /// Multiplies the learning rate (see [`LrDecay`](crate::config::LrDecay)).
    lr_scale: f64,
}

impl OptimizerState {
    pub fn new(kind: Optimizer, vars: Vec<(String, Var)>) -> Result<Self> {
        let zeros = |vars: &[(String, Var)]| -> Result<Vec<Tensor>> {
            vars.iter().map(|(_, v)| Ok(v.as_tensor().zeros_like()?)).collect()
        };
        let m = if matches!(kind, Optimizer::Adam { .. }) { zeros(&vars)? } else { Vec::new() };
        let v = match kind {
            Optimizer::RmsPropTf { .. } => {
                vars.iter().map(|(_, v)| Ok(v.as_tensor().ones_like()?)).collect::<Result<_>>()?
            }
            _ => zeros(&vars)?,
        };
        Ok(Self { kind, vars, m, v, step: 0, lr_scale: 1.0 })
    }

    /// Scales the learning rate of the next steps by `scale` (a schedule's factor).
    pub fn set_lr_scale(&mut self, scale: f64) {
        self.lr_scale = scale;
    }

    pub fn steps_taken(&self) -> u64 {
        self.step
    }

    /// One update from `grads`; variables without a gradient are left alone. Where
    /// ganzoo's kernels run (the CPU; f32 on CUDA) the update is their fused in-place
    /// op (on CUDA one launch for all the variables: `optimiser_steps`); elsewhere Candle's tensor ops, on all variables at once where every one has a
    /// gradient (`flat_step`).
    pub fn step(&mut self, grads: &GradStore) -> Result<()> {
        self.step += 1;
        let gs: Vec<Option<Tensor>> = self.vars.iter().map(|(_, v)| grads.get(v).map(Tensor::detach)).collect();
        let fused: Vec<bool> = (self.vars.iter().zip(&gs))
            .map(|((_, v), g)| {
                g.as_ref().is_some_and(|g| {
                    ganzoo_models::backend::cuda_kernels_run(v.as_tensor(), &[g], ganzoo_kernels::ImageLayout::Nchw)
                })
            })
            .collect();
        let all: Option<Vec<Tensor>> = gs.iter().cloned().collect();
        if let Some(all) = all.filter(|a| a.len() > 1 && !fused.contains(&true)) {
            if self.vars.iter().all(|(_, v)| v.dtype() == all[0].dtype()) {
                return self.flat_step(&all);
            }
        }
        for (i, g) in gs.iter().enumerate() {
            if let Some(g) = g.as_ref().filter(|_| !fused[i]) {
                self.tensor_step(i, g)?;
            }
        }
        let slots: Vec<_> = (gs.iter().enumerate())
            .filter_map(|(i, g)| g.as_ref().filter(|_| fused[i]).map(|g| (i, g)))
            .map(|(i, g)| ganzoo_kernels::StepSlot {
                theta: self.vars[i].1.as_tensor(),
                grad: g,
                m: self.m.get(i),
                v: &self.v[i],
            })
            .collect();
        Ok(ganzoo_kernels::optimiser_steps(&slots, self.rule())?)
    }

    /// The kernels' form of this step's update.
    fn rule(&self) -> ganzoo_kernels::StepRule {
        use ganzoo_kernels::StepRule;
        match self.kind.scaled(self.lr_scale) {
            Optimizer::Adam { lr, beta1, beta2 } => {
                StepRule::Adam { t: self.step, lr, betas: (beta1, beta2), eps: EPS }
            }
            Optimizer::RmsProp { lr } => StepRule::RmsProp { lr, alpha: RMS_ALPHA, eps: EPS, eps_in_root: false },
            Optimizer::RmsPropTf { lr } => {
                StepRule::RmsProp { lr, alpha: TF_RMS_DECAY, eps: TF_RMS_EPS, eps_in_root: true }
            }
        }
    }

    fn tensor_step(&mut self, i: usize, g: &Tensor) -> Result<()> {
        let (update, m, v) = self.update(g, self.m.get(i), &self.v[i])?;
        if let Some(m) = m {
            self.m[i] = m;
        }
        self.v[i] = v;
        let var = &self.vars[i].1;
        var.set(&(var.as_tensor().detach() - update)?)?;
        Ok(())
    }

    /// Every variable's update at once, on the concatenation of gradients and moments:
    /// element by element the same operations as [`Self::tensor_step`] (so the same
    /// bits), in a dozen kernels in all instead of a dozen per variable, which is what
    /// a GPU spends its optimiser step on. The moments stay as views of the concatenation.
    fn flat_step(&mut self, gs: &[Tensor]) -> Result<()> {
        let flat = |ts: &[Tensor]| -> Result<Tensor> {
            let parts = ts.iter().map(|t| t.flatten_all()).collect::<candle_core::Result<Vec<_>>>()?;
            Ok(Tensor::cat(&parts, 0)?)
        };
        let m = if self.m.is_empty() { None } else { Some(flat(&self.m)?) };
        let (update, m, v) = self.update(&flat(gs)?, m.as_ref(), &flat(&self.v)?)?;
        let mut offset = 0;
        for i in 0..self.vars.len() {
            let shape = self.vars[i].1.shape().clone();
            let n = shape.elem_count();
            let part = |t: &Tensor| t.narrow(0, offset, n)?.reshape(&shape);
            if let Some(m) = &m {
                self.m[i] = part(m)?;
            }
            self.v[i] = part(&v)?;
            let var = &self.vars[i].1;
            var.set(&(var.as_tensor().detach() - part(&update)?)?)?;
            offset += n;
        }
        Ok(())
    }

    /// The step's `lr`-scaled update for gradient `g` and moments `m` (Adam), `v`, and
    /// the new moments.
    fn update(&self, g: &Tensor, m: Option<&Tensor>, v: &Tensor) -> Result<(Tensor, Option<Tensor>, Tensor)> {
        Ok(match (self.kind.scaled(self.lr_scale), m) {
            (Optimizer::Adam { lr, beta1, beta2 }, Some(m)) => {
                let m = ((m * beta1)? + (g * (1.0 - beta1))?)?;
                let v = ((v * beta2)? + (g.sqr()? * (1.0 - beta2))?)?;
                let m_hat = (&m / (1.0 - beta1.powi(self.step as i32)))?;
                let v_hat = (&v / (1.0 - beta2.powi(self.step as i32)))?;
                (((m_hat / (v_hat.sqrt()? + EPS)?)? * lr)?, Some(m), v)
            }
            (Optimizer::Adam { .. }, None) => return Err(TrainError::Config("Adam without first moments".into())),
            (Optimizer::RmsProp { lr }, _) => {
                let v = ((v * RMS_ALPHA)? + (g.sqr()? * (1.0 - RMS_ALPHA))?)?;
                (((g / (v.sqrt()? + EPS)?)? * lr)?, None, v)
            }
            (Optimizer::RmsPropTf { lr }, _) => {
                let v = ((v * TF_RMS_DECAY)? + (g.sqr()? * (1.0 - TF_RMS_DECAY))?)?;
                (((g / (&v + TF_RMS_EPS)?.sqrt()?)? * lr)?, None, v)
            }
        })
    }

    /// The moments as named tensors (`{var}.m`, `{var}.v`), for a checkpoint.
    pub fn state_tensors(&self) -> HashMap<String, Tensor> {
        let mut out = HashMap::new();
        for (i, (name, _)) in self.vars.iter().enumerate() {
            if let Some(m) = self.m.get(i) {
                out.insert(format!("{name}.m"), m.clone());
            }
            out.insert(format!("{name}.v"), self.v[i].clone());
        }
        out
    }

    /// How many numbers [`Self::state_tensors`] holds.
    pub fn state_elements(&self) -> usize {
        self.m.iter().chain(&self.v).map(Tensor::elem_count).sum()
    }

    /// Restores moments saved by [`state_tensors`](Self::state_tensors) and the step count.
    pub fn load_state(&mut self, tensors: &HashMap<String, Tensor>, step: u64, origin: &std::path::Path) -> Result<()> {
        let fetch = |key: String, like: &Tensor| -> Result<Tensor> {
            let t = tensors.get(&key).ok_or_else(|| TrainError::Checkpoint {
                path: origin.to_path_buf(),
                detail: format!("optimizer state has no {key}: the checkpoint is of another architecture or optimizer"),
            })?;
            if t.dims() != like.dims() {
                return Err(TrainError::Checkpoint {
                    path: origin.to_path_buf(),
                    detail: format!("{key} has shape {:?}, expected {:?}", t.dims(), like.dims()),
                });
            }
            Ok(t.to_dtype(like.dtype())?.to_device(like.device())?)
        };
        // Everything read first: a refused file leaves the optimiser as it was.
        let (mut m, mut v) = (Vec::with_capacity(self.m.len()), Vec::with_capacity(self.v.len()));
        for (i, (name, _)) in self.vars.iter().enumerate() {
            if let Some(like) = self.m.get(i) {
                m.push(fetch(format!("{name}.m"), like)?);
            }
            v.push(fetch(format!("{name}.v"), &self.v[i])?);
        }
        (self.m, self.v, self.step) = (m, v, step);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use candle_core::{DType, Device};

    use super::*;

    fn values(t: &Tensor) -> Vec<u32> {
        t.flatten_all().unwrap().to_vec1::<f32>().unwrap().into_iter().map(f32::to_bits).collect()
    }

    fn vars(seed: f64) -> Vec<(String, Var)> {
        let shapes: [&[usize]; 3] = [&[4, 3, 2, 2], &[7], &[5, 2]];
        (shapes.iter().enumerate())
            .map(|(i, s)| {
                let n: usize = s.iter().product();
                let v: Vec<f32> = (0..n).map(|j| ((j as f64 * 0.37 + i as f64 + seed).sin()) as f32).collect();
                (format!("w{i}"), Var::from_tensor(&Tensor::from_vec(v, *s, &Device::Cpu).unwrap()).unwrap())
            })
            .collect()
    }

    #[test]
    fn the_flat_step_gives_the_per_variable_steps_bits_and_checkpoints_alike() {
        let kinds = [
            Optimizer::Adam { lr: 2e-4, beta1: 0.5, beta2: 0.999 },
            Optimizer::RmsProp { lr: 5e-5 },
            Optimizer::RmsPropTf { lr: 1e-3 },
        ];
        for kind in kinds {
            let (mut each, mut flat) =
                (OptimizerState::new(kind, vars(0.0)).unwrap(), OptimizerState::new(kind, vars(0.0)).unwrap());
            for step in 1..=3 {
                let gs: Vec<Tensor> =
                    vars(step as f64).iter().map(|(_, v)| v.as_tensor().affine(0.1, 0.0).unwrap()).collect();
                each.step += 1;
                for (i, g) in gs.iter().enumerate() {
                    each.tensor_step(i, g).unwrap();
                }
                flat.step += 1;
                flat.flat_step(&gs).unwrap();
            }
            for i in 0..3 {
                let what = format!("{kind:?} variable {i}");
                assert_eq!(values(each.vars[i].1.as_tensor()), values(flat.vars[i].1.as_tensor()), "{what}");
                assert_eq!(values(&each.v[i]), values(&flat.v[i]), "{what}: v");
                assert_eq!(each.m.get(i).map(values), flat.m.get(i).map(values), "{what}: m");
            }
            // The moments, views of one concatenation, save and load as the variables' own.
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("optimizer.safetensors");
            candle_core::safetensors::save(&flat.state_tensors(), &path).unwrap();
            let loaded = candle_core::safetensors::load(&path, &Device::Cpu).unwrap();
            for (name, t) in each.state_tensors() {
                assert_eq!(values(&loaded[&name].to_dtype(DType::F32).unwrap()), values(&t), "{kind:?} {name}");
                assert_eq!(loaded[&name].dims(), t.dims());
            }
        }
    }

    #[test]
    fn a_refused_state_leaves_the_optimiser_as_it_was() {
        let mut opt = OptimizerState::new(Optimizer::Adam { lr: 2e-4, beta1: 0.5, beta2: 0.999 }, vars(0.0)).unwrap();
        let gs: Vec<Tensor> = vars(1.0).iter().map(|(_, v)| v.as_tensor().clone()).collect();
        opt.step += 1;
        opt.flat_step(&gs).unwrap();
        let moments = |o: &OptimizerState| (o.m.iter().chain(&o.v).map(values).collect::<Vec<_>>(), o.step);
        let before = moments(&opt);
        // Every moment zeroed, the last variable's `v` misshapen: refused as a whole.
        let mut state: HashMap<String, Tensor> =
            opt.state_tensors().into_iter().map(|(n, t)| (n, t.zeros_like().unwrap())).collect();
        let last = format!("{}.v", opt.vars[2].0);
        state.insert(last.clone(), Tensor::zeros(3, DType::F32, &Device::Cpu).unwrap());
        let err = opt.load_state(&state, 9, std::path::Path::new("opt.safetensors")).unwrap_err().to_string();
        assert!(err.contains(&format!("{last} has shape [3]")), "{err}");
        assert!(moments(&opt) == before, "a refused state changed the optimiser");
    }
}
