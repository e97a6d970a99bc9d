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

    /// One update from `grads`; variables without a gradient are left alone. On the
    /// CPU the update is ganzoo's fused in-place kernel; elsewhere Candle's tensor ops.
    pub fn step(&mut self, grads: &GradStore) -> Result<()> {
        self.step += 1;
        for i in 0..self.vars.len() {
            let Some(g) = grads.get(&self.vars[i].1) else { continue };
            let g = g.detach();
            let var = self.vars[i].1.as_tensor();
            if ganzoo_models::backend::kernels_run(var, &[&g], ganzoo_kernels::ImageLayout::Nchw) {
                self.fused_step(i, &g)?;
            } else {
                self.tensor_step(i, &g)?;
            }
        }
        Ok(())
    }

    fn fused_step(&mut self, i: usize, g: &Tensor) -> Result<()> {
        let theta = self.vars[i].1.as_tensor();
        match self.kind.scaled(self.lr_scale) {
            Optimizer::Adam { lr, beta1, beta2 } => {
                ganzoo_kernels::adam_step(theta, g, &self.m[i], &self.v[i], self.step, lr, (beta1, beta2), EPS)?
            }
            Optimizer::RmsProp { lr } => {
                ganzoo_kernels::rmsprop_step(theta, g, &self.v[i], lr, RMS_ALPHA, (EPS, false))?
            }
            Optimizer::RmsPropTf { lr } => {
                ganzoo_kernels::rmsprop_step(theta, g, &self.v[i], lr, TF_RMS_DECAY, (TF_RMS_EPS, true))?
            }
        }
        Ok(())
    }

    fn tensor_step(&mut self, i: usize, g: &Tensor) -> Result<()> {
        let var = &self.vars[i].1;
        let theta = var.as_tensor().detach();
        let update = match self.kind.scaled(self.lr_scale) {
            Optimizer::Adam { lr, beta1, beta2 } => {
                self.m[i] = ((&self.m[i] * beta1)? + (g * (1.0 - beta1))?)?;
                self.v[i] = ((&self.v[i] * beta2)? + (g.sqr()? * (1.0 - beta2))?)?;
                let m_hat = (&self.m[i] / (1.0 - beta1.powi(self.step as i32)))?;
                let v_hat = (&self.v[i] / (1.0 - beta2.powi(self.step as i32)))?;
                ((m_hat / (v_hat.sqrt()? + EPS)?)? * lr)?
            }
            Optimizer::RmsProp { lr } => {
                self.v[i] = ((&self.v[i] * RMS_ALPHA)? + (g.sqr()? * (1.0 - RMS_ALPHA))?)?;
                ((g / (self.v[i].sqrt()? + EPS)?)? * lr)?
            }
            Optimizer::RmsPropTf { lr } => {
                self.v[i] = ((&self.v[i] * TF_RMS_DECAY)? + (g.sqr()? * (1.0 - TF_RMS_DECAY))?)?;
                ((g / (&self.v[i] + TF_RMS_EPS)?.sqrt()?)? * lr)?
            }
        };
        var.set(&(theta - update)?)?;
        Ok(())
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
        for i in 0..self.vars.len() {
            let name = &self.vars[i].0;
            if !self.m.is_empty() {
                self.m[i] = fetch(format!("{name}.m"), &self.m[i])?;
            }
            self.v[i] = fetch(format!("{name}.v"), &self.v[i])?;
        }
        self.step = step;
        Ok(())
    }
}
