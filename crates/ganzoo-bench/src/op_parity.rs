//! Every op the models run where ganzoo's CPU kernels do not (on CUDA: each convolution,
//! batch norm, layer norm, the leaky ReLU and the optimiser steps as ganzoo's CUDA
//! kernels, or Candle's ops with `--kernels gemm`; the convolutions as `conv_as_gemm`
//! with `GANZOO_CUDA_CONV=gemm` too), value and
//! gradients, against the kernels on the CPU from the same host-drawn inputs: every
//! DCGAN-32 and DCGAN-64 convolution and transposed convolution, a convolution with its
//! leaky ReLU (the critics' first layer), batch norm (alone and
//! with its leaky ReLU, and updating its running statistics), the leaky ReLU and its input
//! gradient, layer norm and its input
//! gradient (the penalty differentiates both), and three Adam and RMSprop steps. Each
//! side computes `y` and the gradients of `Σ y·g` (`g` drawn on the host) with respect to
//! every input. With bf16 activations ([`conv_parity_in`]) the convolutions alone, their
//! operands and output bf16, against the same f32 kernels.
//! `bench --parity` runs it on the device; `tests/integration/cuda.rs` on a GPU where
//! one is visible, and on the CPU's CUDA path.

use std::collections::HashMap;

use candle_core::{DType, Device, Tensor, Var};
use candle_nn::VarBuilder;
use ganzoo_kernels::{ConvParams, ImageLayout};
use ganzoo_models::conv;
use ganzoo_models::norm::{BatchNorm2d, BnMode, LayerNorm};
use ganzoo_models::Activation;
use ganzoo_train::config::Optimizer;
use ganzoo_train::optim::OptimizerState;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;
use serde::{Deserialize, Serialize};

use crate::ops::{dcgan_layers, ConvKind, LayerShape};
use crate::throughput::Target;
use crate::Result;

/// The normalisations' ε (`ganzoo_models::norm`'s).
const EPS: f64 = 1e-5;
/// DCGAN's leaky-ReLU slope.
const SLOPE: f64 = 0.2;

/// Bound on [`OpParity::worst`] in f32: sums of up to 8,192 products, rounded in another
/// order, stay within a few 1e-6 of the largest value. TF32 products round to 10 bits.
pub fn tolerance(tf32: bool) -> f64 {
    if tf32 {
        1e-2
    } else {
        1e-4
    }
}

/// Bound on [`OpParity::worst`] of a convolution with bf16 operands and output (mixed
/// precision) against the CPU kernels' f32: each operand and the output rounded to 8
/// mantissa bits (2⁻⁹ relative) and the gradients' `g` to bf16 too, so a few 1e-3 of the
/// largest value (measured on the CPU: docs/performance.md, *Mixed precision (bf16)*).
pub const BF16_TOLERANCE: f64 = 2e-2;

/// One op on the candidate against the CPU kernels; one JSON line of `bench --parity`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OpParity {
    pub op: String,
    /// `max |a − b| / max |b|` of the output (`y`) and of each gradient (`dx`, …), `b`
    /// the CPU kernels'.
    pub errors: Vec<(String, f64)>,
}

impl OpParity {
    /// The largest error (infinite where a value is not finite).
    pub fn worst(&self) -> f64 {
        self.errors.iter().map(|e| if e.1.is_nan() { f64::INFINITY } else { e.1 }).fold(0.0, f64::max)
    }
}

/// Every op at `batch` samples on `target`'s device against the CPU kernels.
pub fn op_parity(target: Target, batch: usize) -> Result<Vec<OpParity>> {
    let device = target.device()?;
    let mut out = Vec::new();
    for layer in dcgan_layers(batch)? {
        out.push(convolution(&layer, &device)?);
    }
    out.push(conv_leaky_relu([batch, 3, 16, 16], &device)?);
    out.push(batch_norm([batch, 64, 8, 8], &device)?);
    out.push(batch_norm_running([batch, 64, 8, 8], &device)?);
    out.push(batch_norm_leaky_relu([batch, 64, 8, 8], &device)?);
    out.push(leaky_relu([batch, 64, 8, 8], &device)?);
    out.push(leaky_relu_input_grad([batch, 64, 8, 8], &device)?);
    out.push(layer_norm([batch, 16, 8, 8], &device)?);
    out.push(layer_norm_input_grad([batch, 16, 8, 8], &device)?);
    for kind in [Optimizer::Adam { lr: 2e-4, beta1: 0.5, beta2: 0.999 }, Optimizer::RmsPropTf { lr: 5e-5 }] {
        out.push(optimiser(kind, &device)?);
    }
    Ok(out)
}

/// Every DCGAN-32 and DCGAN-64 convolution and transposed convolution at `batch` samples
/// with its operands and output in `dtype` (mixed precision: `conv.rs` on bf16 operands,
/// the gradients back in f32 through the casts), on `target`'s device against ganzoo's
/// kernels on the CPU in f32; bound [`BF16_TOLERANCE`].
pub fn conv_parity_in(dtype: DType, target: Target, batch: usize) -> Result<Vec<OpParity>> {
    let device = target.device()?;
    dcgan_layers(batch)?.iter().map(|layer| convolution_in(layer, &device, dtype)).collect()
}

/// A layer's convolution (or transposed convolution): `conv.rs` on `device` against
/// ganzoo's kernels on the CPU.
fn convolution(layer: &LayerShape, device: &Device) -> Result<OpParity> {
    convolution_in(layer, device, DType::F32)
}

/// [`convolution`] with the candidate's operands and output in `dtype`.
fn convolution_in(layer: &LayerShape, device: &Device, dtype: DType) -> Result<OpParity> {
    let g = &layer.geometry;
    let (s, p) = (g.params.stride, g.params.padding);
    let w = [g.cout, g.cin, g.k_h, g.k_w];
    let narrow = |v: &[Var], f: &dyn Fn(&Tensor, &Tensor) -> candle_core::Result<Tensor>| -> Result<Tensor> {
        Ok(f(&v[0].to_dtype(dtype)?, &v[1].to_dtype(dtype)?)?.to_dtype(DType::F32)?)
    };
    let name = if dtype == DType::F32 { layer.name.clone() } else { format!("{} ({dtype:?})", layer.name) };
    match layer.kind {
        ConvKind::Conv => compare(
            &name,
            &[("x", &[g.batch, g.cin, g.in_h, g.in_w]), ("w", &w)],
            |v| Ok(ganzoo_kernels::conv2d(&v[0], &v[1], ConvParams::new(s, p))?),
            |v| narrow(v, &|x, w| conv::conv2d(x, w, s, p)),
            device,
        ),
        ConvKind::Transpose => compare(
            &name,
            &[("x", &[g.batch, g.cout, g.out_h, g.out_w]), ("w", &w)],
            |v| Ok(ganzoo_kernels::conv_transpose2d(&v[0], &v[1], ConvParams::new(s, p), 0)?),
            |v| narrow(v, &|x, w| conv::conv_transpose2d(x, w, s, p, 0)),
            device,
        ),
    }
}

/// A critic's first layer: a bias-free 4×4, stride-2 convolution and the leaky ReLU after
/// it, as a network runs the pair (one fused op where ganzoo's kernels take the input).
fn conv_leaky_relu(x: [usize; 4], device: &Device) -> Result<OpParity> {
    let (params, w) = (ConvParams::new(2, 1), [16, x[1], 4, 4]);
    compare(
        &format!("conv + leaky ReLU {x:?}"),
        &[("x", &x), ("w", &w)],
        |v| Ok(ganzoo_kernels::conv2d_leaky_relu(&v[0], &v[1], params, SLOPE)?),
        |v| {
            let spec = conv::ConvSpec::dcgan(x[1], w[0], 4, 2, 1);
            let layer = on(&[("weight", &*v[1])], device, |vb| conv::Conv2d::new(spec, vb))?;
            let (x, layout) = (&v[0], ImageLayout::Nchw);
            Ok(match layer.forward_leaky_relu(x, SLOPE, layout) {
                Some(y) => y?,
                None => Activation::LeakyRelu(SLOPE).forward(&layer.forward_in(x, layout)?)?,
            })
        },
        device,
    )
}

/// A layer built on the given tensors (so its gradients reach them) by `build`.
fn on<T>(
    tensors: &[(&str, &Tensor)],
    device: &Device,
    build: impl FnOnce(VarBuilder) -> ganzoo_models::Result<T>,
) -> Result<T> {
    let map: HashMap<String, Tensor> = tensors.iter().map(|(n, t)| (n.to_string(), (*t).clone())).collect();
    build(VarBuilder::from_tensors(map, DType::F32, device))
        .map_err(|e| crate::BenchError::Worker(format!("op parity: {e}")))
}

fn batch_norm(shape: [usize; 4], device: &Device) -> Result<OpParity> {
    let c = shape[1];
    compare(
        &format!("batch norm {shape:?}"),
        &[("x", &shape), ("gamma", &[c]), ("beta", &[c])],
        |v| Ok(ganzoo_kernels::batch_norm(&v[0], &v[1], &v[2], EPS)?),
        |v| {
            let (mean, var) = (Tensor::zeros(c, DType::F32, device)?, Tensor::ones(c, DType::F32, device)?);
            let named = [("weight", &*v[1]), ("bias", &*v[2]), ("running_mean", &mean), ("running_var", &var)];
            let bn = on(&named, device, |vb| BatchNorm2d::new(c, candle_nn::Init::Const(1.0), vb))?;
            Ok(bn.forward_mode(&v[0], BnMode::Train)?)
        },
        device,
    )
}

/// A training-mode batch norm that updates the layer's running statistics in place
/// (`batch_norm_updating`; on CUDA in the statistics kernel's launch): its output and the
/// running mean and variance after it, from the same host-drawn start on both sides.
fn batch_norm_running(shape: [usize; 4], device: &Device) -> Result<OpParity> {
    let c = shape[1];
    let mut rng = ChaCha8Rng::seed_from_u64(29);
    let mut normal = |n: usize| -> Vec<f32> { (0..n).map(|_| rng.sample(StandardNormal)).collect() };
    let (x, gamma, beta, mean) = (normal(shape.iter().product()), normal(c), normal(c), normal(c));
    let var: Vec<f32> = normal(c).iter().map(|v| v * v).collect();
    let run = |on: &Device| -> Result<Vec<Tensor>> {
        let t = |v: &[f32], dims: &[usize]| Tensor::from_slice(v, dims, on);
        let (mean, var) = (t(&mean, &[c])?, t(&var, &[c])?);
        let running = ganzoo_kernels::RunningStats { mean: &mean, var: &var, momentum: 0.1 };
        let (x, gamma, beta) = (t(&x, &shape)?, t(&gamma, &[c])?, t(&beta, &[c])?);
        let y = ganzoo_kernels::batch_norm_updating(&x, &gamma, &beta, EPS, (None, ImageLayout::Nchw), &running)?;
        Ok([y, mean, var].iter().map(|t| t.to_device(&Device::Cpu)).collect::<candle_core::Result<_>>()?)
    };
    let (ours, theirs) = (run(&Device::Cpu)?, run(device)?);
    let names = ["y", "running mean", "running var"];
    let errors = names.iter().zip(theirs.iter().zip(&ours)).map(|(n, (a, b))| Ok((n.to_string(), relative(a, b)?)));
    Ok(OpParity { op: format!("batch norm, running statistics {shape:?}"), errors: errors.collect::<Result<_>>()? })
}

/// A batch-norm layer and the leaky ReLU after it, as a network runs the pair (one fused
/// op where ganzoo's kernels take the input).
fn batch_norm_leaky_relu(shape: [usize; 4], device: &Device) -> Result<OpParity> {
    let c = shape[1];
    compare(
        &format!("batch norm + leaky ReLU {shape:?}"),
        &[("x", &shape), ("gamma", &[c]), ("beta", &[c])],
        |v| Ok(ganzoo_kernels::batch_norm_leaky_relu(&v[0], &v[1], &v[2], EPS, SLOPE)?),
        |v| {
            let (mean, var) = (Tensor::zeros(c, DType::F32, device)?, Tensor::ones(c, DType::F32, device)?);
            let named = [("weight", &*v[1]), ("bias", &*v[2]), ("running_mean", &mean), ("running_var", &var)];
            let bn = on(&named, device, |vb| BatchNorm2d::new(c, candle_nn::Init::Const(1.0), vb))?;
            let (x, layout) = (&v[0], ImageLayout::Nchw);
            Ok(match bn.forward_leaky_relu(x, BnMode::Train, SLOPE, layout) {
                Some(y) => y?,
                None => Activation::LeakyRelu(SLOPE).forward(&bn.forward_in(x, BnMode::Train, layout)?)?,
            })
        },
        device,
    )
}

fn leaky_relu(shape: [usize; 4], device: &Device) -> Result<OpParity> {
    compare(
        &format!("leaky ReLU {shape:?}"),
        &[("x", &shape)],
        |v| Ok(ganzoo_kernels::leaky_relu(&v[0], SLOPE)?),
        |v| Ok(Activation::LeakyRelu(SLOPE).forward(&v[0])?),
        device,
    )
}

/// The leaky ReLU's input gradient `∂(Σ y·dy)/∂x`, differentiated again (as the penalty does).
fn leaky_relu_input_grad(shape: [usize; 4], device: &Device) -> Result<OpParity> {
    compare(
        &format!("leaky ReLU input gradient {shape:?}"),
        &[("x", &shape), ("dy", &shape)],
        |v| Ok(ganzoo_kernels::leaky_relu_grad(&v[0], &v[1], SLOPE)?),
        |v| {
            let act = Activation::LeakyRelu(SLOPE);
            Ok(act.input_grad(&v[1], &v[0], &act.forward(&v[0].detach())?)?)
        },
        device,
    )
}

/// Three steps of `kind` on three variables — a `(64, 128, 4, 4)` kernel, one of 257
/// values and one of a single value, so that on CUDA the one launch for all of them
/// (`gz_multi_step`) reaches each through its address table — from the same start and
/// gradients: the variables and the moments after them (each concatenated over the
/// variables), on `device` against the same optimiser's on the CPU (ganzoo's fused
/// kernels, unless `GANZOO_KERNELS` says otherwise).
fn optimiser(kind: Optimizer, device: &Device) -> Result<OpParity> {
    let mut rng = ChaCha8Rng::seed_from_u64(23);
    let mut normal = |n: usize| -> Vec<f32> { (0..n).map(|_| rng.sample(StandardNormal)).collect() };
    let shapes: [&[usize]; 3] = [&[64, 128, 4, 4], &[257], &[1]];
    let starts: Vec<Vec<f32>> = shapes.iter().map(|s| normal(s.iter().product())).collect();
    let grads: Vec<Vec<Vec<f32>>> =
        (0..3).map(|_| shapes.iter().map(|s| normal(s.iter().product())).collect()).collect();
    let run = |on: &Device| -> Result<Vec<Tensor>> {
        let vars = (starts.iter().zip(shapes))
            .map(|(x, shape)| Ok(Var::from_tensor(&Tensor::from_slice(x, shape, on)?)?))
            .collect::<Result<Vec<_>>>()?;
        let named = vars.iter().enumerate().map(|(i, v)| (format!("w{i}"), v.clone())).collect();
        let mut state = OptimizerState::new(kind, named)?;
        for step in &grads {
            let mut loss = Tensor::zeros((), DType::F32, on)?;
            for ((var, g), shape) in vars.iter().zip(step).zip(shapes) {
                loss = (loss + (var.as_tensor() * Tensor::from_slice(g, shape, on)?)?.sum_all()?)?;
            }
            state.step(&loss.backward()?)?;
        }
        let moments = state.state_tensors();
        let joined = |ts: Vec<Tensor>| -> Result<Tensor> {
            let flat =
                ts.iter().map(|t| t.flatten_all()?.to_device(&Device::Cpu)).collect::<candle_core::Result<Vec<_>>>()?;
            Ok(Tensor::cat(&flat, 0)?)
        };
        let mut out = vec![joined(vars.iter().map(|v| v.as_tensor().clone()).collect())?];
        for key in ["m", "v"] {
            let parts: Option<Vec<Tensor>> =
                (0..vars.len()).map(|i| moments.get(&format!("w{i}.{key}")).cloned()).collect();
            if let Some(parts) = parts {
                out.push(joined(parts)?);
            }
        }
        Ok(out)
    };
    let shape = shapes.map(|s| s.iter().product::<usize>());
    let (ours, theirs) = (run(&Device::Cpu)?, run(device)?);
    let (name, names): (_, &[&str]) = match kind {
        Optimizer::Adam { .. } => ("Adam", &["θ", "m", "v"]),
        Optimizer::RmsProp { .. } => ("RMSprop", &["θ", "v"]),
        Optimizer::RmsPropTf { .. } => ("RMSprop (TF)", &["θ", "v"]),
    };
    let errors = names.iter().zip(theirs.iter().zip(&ours)).map(|(n, (a, b))| Ok((n.to_string(), relative(a, b)?)));
    Ok(OpParity { op: format!("{name}, 3 steps on {shape:?} values"), errors: errors.collect::<Result<_>>()? })
}

/// Layer norm over `(C, H, W)` with `γ, β` per element.
fn layer_norm(shape: [usize; 4], device: &Device) -> Result<OpParity> {
    let sample = [shape[1], shape[2], shape[3]];
    compare(
        &format!("layer norm {shape:?}"),
        &[("x", &shape), ("gamma", &sample), ("beta", &sample)],
        |v| Ok(ganzoo_kernels::layer_norm(&v[0], &v[1], &v[2], EPS)?),
        |v| {
            let ln = on(&[("weight", &*v[1]), ("bias", &*v[2])], device, |vb| LayerNorm::new(&sample, vb))?;
            Ok(ln.forward(&v[0])?)
        },
        device,
    )
}

/// Layer norm's input gradient `∂(Σ y·dy)/∂x`, differentiated again (as the penalty does).
fn layer_norm_input_grad(shape: [usize; 4], device: &Device) -> Result<OpParity> {
    let sample = [shape[1], shape[2], shape[3]];
    compare(
        &format!("layer norm input gradient {shape:?}"),
        &[("x", &shape), ("dy", &shape), ("gamma", &sample)],
        |v| Ok(ganzoo_kernels::layer_norm_input_grad(&v[0], &v[1].broadcast_mul(&v[2])?, EPS)?),
        |v| {
            let beta = v[2].zeros_like()?;
            let ln = on(&[("weight", &*v[2]), ("bias", &beta)], device, |vb| LayerNorm::new(&sample, vb))?;
            Ok(ln.input_grad(&v[1], &v[0], ImageLayout::Nchw)?)
        },
        device,
    )
}

/// `reference` on the CPU and `candidate` on `device`, each on variables holding the
/// same standard-normal inputs of the given names and shapes: the output and the
/// gradient of `Σ y·g` for each input, compared.
fn compare(
    op: &str,
    inputs: &[(&str, &[usize])],
    reference: impl Fn(&[Var]) -> Result<Tensor>,
    candidate: impl Fn(&[Var]) -> Result<Tensor>,
    device: &Device,
) -> Result<OpParity> {
    let mut rng = ChaCha8Rng::seed_from_u64(17);
    let mut normal = |shape: &[usize]| -> Result<Tensor> {
        let v: Vec<f32> = (0..shape.iter().product()).map(|_| rng.sample(StandardNormal)).collect();
        Ok(Tensor::from_vec(v, shape, &Device::Cpu)?)
    };
    let host: Vec<Tensor> = inputs.iter().map(|(_, shape)| normal(shape)).collect::<Result<_>>()?;
    let vars_on = |on: &Device| -> Result<Vec<Var>> {
        Ok(host.iter().map(|t| Var::from_tensor(&t.to_device(on)?)).collect::<candle_core::Result<_>>()?)
    };
    // The upstream gradient takes the output's shape, from a first CPU pass.
    let g = normal(reference(&vars_on(&Device::Cpu)?)?.dims())?;
    let side = |f: &dyn Fn(&[Var]) -> Result<Tensor>, on: &Device| -> Result<Vec<Tensor>> {
        let vars = vars_on(on)?;
        let y = f(&vars)?;
        let grads = (&y * &g.to_device(on)?)?.sum_all()?.backward()?;
        let mut out = vec![y.to_device(&Device::Cpu)?];
        for v in &vars {
            let grad = grads.get(v).map_or_else(|| v.zeros_like(), |t| Ok(t.clone()))?;
            out.push(grad.to_device(&Device::Cpu)?);
        }
        Ok(out)
    };
    let (ours, theirs) = (side(&reference, &Device::Cpu)?, side(&candidate, device)?);
    let names = std::iter::once("y".to_string()).chain(inputs.iter().map(|(n, _)| format!("d{n}")));
    let errors =
        names.zip(theirs.iter().zip(&ours)).map(|(n, (a, b))| Ok((n, relative(a, b)?))).collect::<Result<_>>()?;
    Ok(OpParity { op: op.into(), errors })
}

/// `max |a − b| / max |b|` (0 when both are 0; infinite where `a` has a value that is
/// not finite or another length).
pub(crate) fn relative(a: &Tensor, b: &Tensor) -> Result<f64> {
    let values = |t: &Tensor| -> Result<Vec<f64>> { Ok(t.to_dtype(DType::F64)?.flatten_all()?.to_vec1()?) };
    let (a, b) = (values(a)?, values(b)?);
    if a.len() != b.len() || a.iter().any(|v| !v.is_finite()) {
        return Ok(f64::INFINITY);
    }
    let diff = a.iter().zip(&b).map(|(x, y)| (x - y).abs()).fold(0.0, f64::max);
    let scale = b.iter().map(|y| y.abs()).fold(0.0, f64::max);
    Ok(if diff == 0.0 { 0.0 } else { diff / scale })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wrong_candidate_is_caught_and_a_right_one_passes() {
        let x: &[usize] = &[2, 3, 8, 8];
        let w: &[usize] = &[4, 3, 4, 4];
        let kernels = |v: &[Var]| Ok(ganzoo_kernels::conv2d(&v[0], &v[1], ConvParams::new(2, 1))?);
        let same =
            compare("conv", &[("x", x), ("w", w)], kernels, |v| Ok(conv::conv2d(&v[0], &v[1], 2, 1)?), &Device::Cpu)
                .unwrap();
        assert!(same.worst() <= tolerance(false), "{same:?}");
        // One percent off (value and gradients); then the image shifted by a column.
        let scaled = |v: &[Var]| Ok((conv::conv2d(&v[0], &v[1], 2, 1)? * 1.01)?);
        let off = compare("conv", &[("x", x), ("w", w)], kernels, scaled, &Device::Cpu).unwrap();
        assert!(off.errors.iter().all(|(_, e)| (e - 0.01).abs() < 1e-5), "{off:?}");
        let shifted = |v: &[Var]| Ok(conv::conv2d(&v[0].pad_with_zeros(3, 1, 0)?.narrow(3, 0, 8)?, &v[1], 2, 1)?);
        let off = compare("conv", &[("x", x), ("w", w)], kernels, shifted, &Device::Cpu).unwrap();
        assert!(off.worst() > 0.1, "{off:?}");
    }

    /// bf16 operands on the CPU (widened to f32 there, as cuBLAS sums bf16 products in
    /// f32): every DCGAN layer off the f32 kernels by bf16's rounding — visibly, so the
    /// casts are not skipped — and within the bound the GPU is held to.
    #[test]
    fn bf16_convolutions_stay_within_their_bound_of_the_f32_kernels() {
        let ops = conv_parity_in(DType::BF16, Target::default(), 2).unwrap();
        assert_eq!(ops.len(), dcgan_layers(2).unwrap().len());
        for op in &ops {
            assert!(op.op.ends_with("(BF16)"), "{op:?}");
            assert!(op.worst() <= BF16_TOLERANCE, "{op:?}");
            assert!(op.errors.iter().all(|(_, e)| *e > 1e-4), "{op:?}");
        }
        let worst = ops.iter().map(OpParity::worst).fold(0.0, f64::max);
        eprintln!("bf16 convolutions on the CPU: worst {worst:.2e} of the largest value");
    }

    #[test]
    fn relative_error_is_against_the_references_largest_value() {
        let t = |v: &[f32]| Tensor::from_slice(v, v.len(), &Device::Cpu).unwrap();
        assert_eq!(relative(&t(&[1.0, -4.0]), &t(&[1.0, -4.0])).unwrap(), 0.0);
        assert_eq!(relative(&t(&[1.5, -4.0]), &t(&[1.0, -4.0])).unwrap(), 0.125);
        assert_eq!(relative(&t(&[1.0]), &t(&[1.0, 2.0])).unwrap(), f64::INFINITY);
        assert_eq!(relative(&t(&[f32::NAN, 0.0]), &t(&[1.0, 0.0])).unwrap(), f64::INFINITY);
        assert_eq!(relative(&t(&[0.0, f32::INFINITY]), &t(&[1.0, 0.0])).unwrap(), f64::INFINITY);
    }
}
