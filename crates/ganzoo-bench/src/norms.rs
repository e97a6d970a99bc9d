//! Per-layer batch-norm benchmarks: each batch norm of DCGAN-32 (ngf = ndf = 64, batch
//! 64 unless told) with the activation after it, forward (batch statistics, running
//! ones updated) and backward (gradients of the input, γ and β seeded with ones), as
//! the networks run them: ganzoo's fused kernel (on the CPU on channels-last images, on
//! CUDA its CUDA kernels on NCHW) or Candle's ops on NCHW. Milliseconds only: the work is
//! memory traffic, not multiply-adds.

use candle_core::{DType, Device, Tensor};
use candle_nn::{Init, VarBuilder, VarMap};
use ganzoo_kernels::ImageLayout;
use ganzoo_models::norm::{BatchNorm2d, BnMode};
use ganzoo_models::KernelBackend;

use crate::ops::{forward_backward_ms, OpTiming};
use crate::Result;

/// One batch norm and the activation after it: `(N, C, H, W)`, negative slope (ReLU 0).
#[derive(Debug, Clone)]
pub struct NormShape {
    pub name: String,
    pub shape: [usize; 4],
    pub slope: f64,
}

/// DCGAN-32's batch norms: the generator's after G1–G3 (ReLU), the critic's after D2, D3
/// (leaky ReLU 0.2).
pub fn dcgan_norms(batch: usize) -> Vec<NormShape> {
    let norm = |name: &str, c: usize, side: usize, slope: f64| NormShape {
        name: format!("dcgan32.{name} BN {c} {side}²"),
        shape: [batch, c, side, side],
        slope,
    };
    vec![
        norm("G1", 256, 4, 0.0),
        norm("G2", 128, 8, 0.0),
        norm("G3", 64, 16, 0.0),
        norm("D2", 128, 8, 0.2),
        norm("D3", 256, 4, 0.2),
    ]
}

impl NormShape {
    /// The layer as `torch_layers.py` reads it (`nn.BatchNorm2d` then the activation).
    pub fn torch_spec(&self) -> serde_json::Value {
        let [batch, c, h, w] = self.shape;
        serde_json::json!({"name": self.name, "kind": "batchnorm", "batch": batch, "cin": c, "h": h, "w": w,
            "slope": self.slope})
    }

    /// Bytes timing it holds at most: input, output and their gradients, and as many
    /// intermediates again (Candle's ops keep each step's output for the backward pass).
    pub fn bytes(&self) -> u128 {
        16 * 4 * self.shape.iter().product::<usize>() as u128
    }
}

/// Times one batch norm + activation, forward and backward, with `backend` on `device`.
pub fn time_norm(layer: &NormShape, backend: KernelBackend, budget_s: f64, device: &Device) -> Result<[OpTiming; 2]> {
    ganzoo_models::set_kernel_backend(backend);
    let [n, c, h, w] = layer.shape;
    let kernels = backend == KernelBackend::Ganzoo && device.is_cpu();
    let (layout, dims) = if kernels { (ImageLayout::Nhwc, [n, h, w, c]) } else { (ImageLayout::Nchw, [n, c, h, w]) };
    let vars = VarMap::new();
    let bn =
        BatchNorm2d::new(c, Init::Randn { mean: 1.0, stdev: 0.02 }, VarBuilder::from_varmap(&vars, DType::F32, device))
            .map_err(|e| crate::BenchError::Worker(format!("batch norm: {e}")))?;
    let x = candle_core::Var::from_tensor(&Tensor::randn(0f32, 1.0, dims.as_slice(), device)?)?;
    let slope = layer.slope;
    let (forward, backward) = forward_backward_ms(budget_s, device, || {
        Ok(match bn.forward_leaky_relu(&x, BnMode::Train, slope, layout) {
            Some(fused) => fused?,
            None => {
                let y = bn.forward_in(&x, BnMode::Train, layout)?;
                if slope == 0.0 {
                    y.relu()?
                } else {
                    y.maximum(&(&y * slope)?)?
                }
            }
        })
    })?;
    let timing = |pass: &str, ms: f64| OpTiming {
        op: "batch_norm".into(),
        layer: layer.name.clone(),
        pass: pass.into(),
        backend: backend.name().into(),
        isa: if device.is_cpu() { ganzoo_kernels::isa::active().name().into() } else { "cuda".into() },
        ms,
        gflops: 0.0,
    };
    Ok([timing("forward", forward), timing("backward", backward)])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_backends_time_every_norm_forward_and_backward() {
        for layer in dcgan_norms(2) {
            for backend in [KernelBackend::Ganzoo, KernelBackend::Candle] {
                let [f, b] = time_norm(&layer, backend, 0.0, &Device::Cpu).unwrap();
                assert!(f.ms > 0.0 && b.ms > 0.0 && (f.pass.as_str(), b.pass.as_str()) == ("forward", "backward"));
                assert_eq!((f.backend.as_str(), f.gflops), (backend.name(), 0.0));
            }
        }
        assert_eq!(dcgan_norms(64)[2].torch_spec()["cin"], 64);
    }
}
