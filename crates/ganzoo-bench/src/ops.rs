//! Per-layer convolution benchmarks: every convolution shape of DCGAN-32 and
//! DCGAN-64 (ngf = ndf = 64, RGB, batch 64), forward and backward (input and
//! weight gradients through Candle's autodiff, seeded with ones), with each [`KernelBackend`]
//! (ganzoo's on channels-last images, as in its networks; Candle's on NCHW), in
//! GFLOP/s counted as 2 flops per multiply-add (a backward pass does twice the
//! forward's multiply-adds). On CUDA each run ends with the device synchronized, and
//! ganzoo's backend runs its convolutions as `GANZOO_CUDA_CONV` says (by default cuDNN
//! or its im2col / col2im kernels and cuBLAS by size: `ganzoo_kernels::conv`), or with
//! `GANZOO_CUDA_CONV=gemm` as Candle's im2col + GEMM
//! `conv2d` with ganzoo's gradients (`ganzoo_models::conv_as_gemm`).

use std::time::Instant;

use candle_core::{Device, Tensor, Var};
use ganzoo_kernels::{ConvGeometry, ConvParams, ImageLayout};
use ganzoo_models::conv;
use ganzoo_models::KernelBackend;
use serde::{Deserialize, Serialize};

use crate::Result;

/// Which of the pair a layer runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConvKind {
    /// A critic's `conv2d`.
    Conv,
    /// A generator's `conv_transpose2d`, the adjoint of the convolution described.
    Transpose,
}

/// One layer: its name and the forward convolution it is (or is the adjoint of).
#[derive(Debug, Clone)]
pub struct LayerShape {
    pub name: String,
    pub kind: ConvKind,
    pub geometry: ConvGeometry,
}

/// Every convolution of the DCGAN-32 and DCGAN-64 generators and critics at `batch`.
pub fn dcgan_layers(batch: usize) -> Result<Vec<LayerShape>> {
    let mut layers = Vec::new();
    for (side, stages) in [(32usize, 3usize), (64, 4)] {
        let (mut s, mut c) = (side, 3);
        for i in 0..stages {
            let out = 64 << i;
            let g = ConvGeometry::new([batch, c, s, s], [out, c, 4, 4], ConvParams::new(2, 1))?;
            layers.push(LayerShape {
                name: format!("dcgan{side}.D{} {c}→{out} {s}²", i + 1),
                kind: ConvKind::Conv,
                geometry: g,
            });
            let gen = format!("dcgan{side}.G{} {out}→{c} {}²", stages + 1 - i, s / 2);
            layers.push(LayerShape { name: gen, kind: ConvKind::Transpose, geometry: g });
            (s, c) = (s / 2, out);
        }
        let g = ConvGeometry::new([batch, c, 4, 4], [1, c, 4, 4], ConvParams::new(1, 0))?;
        layers.push(LayerShape {
            name: format!("dcgan{side}.D{} {c}→1 4²", stages + 1),
            kind: ConvKind::Conv,
            geometry: g,
        });
        let g = ConvGeometry::new([batch, c, 4, 4], [100, c, 4, 4], ConvParams::new(1, 0))?;
        layers
            .push(LayerShape { name: format!("dcgan{side}.G1 100→{c} 1²"), kind: ConvKind::Transpose, geometry: g });
    }
    Ok(layers)
}

impl LayerShape {
    /// Bytes timing the layer holds at most (checked against the memory limit first):
    /// the weight and its gradient, input and output with their gradients, the unfold
    /// forward and backward.
    pub fn bytes(&self) -> u128 {
        let g = &self.geometry;
        let image = |c: usize, h: usize, w: usize| (g.batch * c * h * w) as u128;
        let cols = (g.batch * g.cin * g.k_h * g.k_w * g.out_h * g.out_w) as u128;
        let weight = (g.cout * g.cin * g.k_h * g.k_w) as u128;
        4 * (2 * weight + 2 * image(g.cin, g.in_h, g.in_w) + 2 * image(g.cout, g.out_h, g.out_w) + 2 * cols)
    }
}

/// The layer as `torch_layers.py` reads it: the PyTorch module and input computing the
/// same convolution (a transposed layer's input has the forward's output side, and its
/// `output_padding` makes PyTorch's output side the forward's input side).
pub fn torch_spec(layer: &LayerShape) -> serde_json::Value {
    let (g, p) = (&layer.geometry, layer.geometry.params);
    let extra = |out, k, input: usize| input - p.transposed_side(out, k, 0).map_or(input, |side| side.min(input));
    let (kind, cin, cout, h, w, output_padding) = match layer.kind {
        ConvKind::Conv => ("conv", g.cin, g.cout, g.in_h, g.in_w, [0, 0]),
        ConvKind::Transpose => {
            let padding = [extra(g.out_h, g.k_h, g.in_h), extra(g.out_w, g.k_w, g.in_w)];
            ("transpose", g.cout, g.cin, g.out_h, g.out_w, padding)
        }
    };
    serde_json::json!({
        "name": layer.name, "kind": kind, "batch": g.batch, "cin": cin, "cout": cout, "h": h, "w": w,
        "kh": g.k_h, "kw": g.k_w, "stride": p.stride, "padding": p.padding, "dilation": p.dilation,
        "output_padding": output_padding,
    })
}

/// One JSON line of the per-op benchmark.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OpTiming {
    pub op: String,
    pub layer: String,
    pub pass: String,
    pub backend: String,
    /// The instruction set ganzoo's kernels ran at (Candle's matmul picks its own;
    /// for PyTorch, the CPU capability it reported).
    pub isa: String,
    pub ms: f64,
    pub gflops: f64,
}

impl OpTiming {
    /// The same layer and pass timed by another backend: `ms` milliseconds at the same
    /// flop count.
    pub fn other(&self, backend: &str, isa: &str, ms: f64) -> Self {
        let gflops = self.gflops * self.ms / ms;
        Self { backend: backend.into(), isa: isa.into(), ms, gflops, ..self.clone() }
    }
}

/// Median milliseconds of `f` over at least 3 runs and about `budget_s` seconds.
fn median_ms(budget_s: f64, mut f: impl FnMut() -> Result<()>) -> Result<f64> {
    f()?; // warm-up
    let (start, mut times) = (Instant::now(), Vec::new());
    while times.len() < 3 || (start.elapsed().as_secs_f64() < budget_s && times.len() < 50) {
        let t = Instant::now();
        f()?;
        times.push(t.elapsed().as_secs_f64() * 1e3);
    }
    times.sort_by(f64::total_cmp);
    Ok(times[times.len() / 2])
}

/// Median milliseconds of `run` (the device synchronised after it) and of the backward
/// pass of its output. Candle seeds a non-scalar backward with ones: the pass is then
/// the op's own gradients (plus Candle's gradient bookkeeping).
pub(crate) fn forward_backward_ms(
    budget_s: f64,
    device: &Device,
    run: impl Fn() -> Result<Tensor>,
) -> Result<(f64, f64)> {
    let forward = median_ms(budget_s, || {
        drop(run()?);
        Ok(device.synchronize()?)
    })?;
    let y = run()?;
    let backward = median_ms(budget_s, || {
        drop(y.backward()?);
        Ok(device.synchronize()?)
    })?;
    Ok((forward, backward))
}

/// Times one layer's forward and backward with `backend` on `device`.
pub fn time_layer(layer: &LayerShape, backend: KernelBackend, budget_s: f64, device: &Device) -> Result<[OpTiming; 2]> {
    ganzoo_models::set_kernel_backend(backend);
    let g = &layer.geometry;
    let p = g.params;
    let random = |shape: &[usize]| Tensor::randn(0f32, 1.0, shape, device);
    let w = Var::from_tensor(&random(&[g.cout, g.cin, g.k_h, g.k_w])?)?;
    // ganzoo's kernels on channels-last images, as its networks run them; Candle's
    // ops know NCHW only.
    let kernels = backend == KernelBackend::Ganzoo && device.is_cpu();
    let layout = if kernels { ImageLayout::Nhwc } else { ImageLayout::Nchw };
    let image = |c: usize, h: usize, w: usize| match layout {
        ImageLayout::Nhwc => random(&[g.batch, h, w, c]),
        ImageLayout::Nchw => random(&[g.batch, c, h, w]),
    };
    let (x, op) = match layer.kind {
        ConvKind::Conv => (Var::from_tensor(&image(g.cin, g.in_h, g.in_w)?)?, "conv2d"),
        ConvKind::Transpose => (Var::from_tensor(&image(g.cout, g.out_h, g.out_w)?)?, "conv_transpose2d"),
    };
    let (forward, backward) = forward_backward_ms(budget_s, device, || {
        Ok(match layer.kind {
            ConvKind::Conv => conv::conv2d_in(&x, &w, p.stride, p.padding, layout)?,
            ConvKind::Transpose => conv::conv_transpose2d_in(&x, &w, (p.stride, p.padding, 0), layout)?,
        })
    })?;
    let flops = 2.0 * g.macs() as f64;
    let timing = |pass: &str, ms: f64, factor: f64| OpTiming {
        op: op.into(),
        layer: layer.name.clone(),
        pass: pass.into(),
        backend: backend.name().into(),
        isa: if device.is_cpu() { ganzoo_kernels::isa::active().name().into() } else { "cuda".into() },
        ms,
        gflops: factor * flops / (ms * 1e6),
    };
    Ok([timing("forward", forward, 1.0), timing("backward", backward, 2.0)])
}
