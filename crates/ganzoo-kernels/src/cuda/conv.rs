//! The three convolution primitives on CUDA: through cuDNN ([`super::cudnn`], or its
//! graph API, `super::cudnn_graph`) or as
//! [`crate::conv_columns`] — the im2col and col2im kernels here (`gz_im2col`,
//! `gz_col2im`) around Candle's cuBLAS product —, as [`cuda_conv`] and, per geometry,
//! [`crate::cuda_conv::through_cudnn`] say; the columns also where cuDNN offers no
//! algorithm [`crate::cuda_conv::qualifying`] takes. With
//! [`CudaConv::Timed`], each primitive and geometry times the columns (both
//! [`Products`]), every such algorithm and every plan of the graph API once, and keeps
//! the fastest. bf16 operands (mixed precision, feature `cudnn`) go through the graph API
//! in bf16 ([`run_bf16`]).

use std::cell::RefCell;
use std::collections::HashMap;
use std::time::{Duration, Instant};

use candle_core::backend::{BackendDevice, BackendStorage};
use candle_core::cuda_backend::{CudaDevice, CudaStorage, DeviceId};
use candle_core::{CpuStorage, DType, Layout, Result};

use super::{elementwise, int, launch, view};
use crate::conv_columns::{self, ColumnLayout, Columns, Products};
use crate::cuda_conv::{
    bf16_through_graph, conv_tf32, cuda_conv, disagreement, fastest, through_cudnn, CudaConv, TIMED_AGREEMENT,
    TIMED_REPEATS,
};
use crate::geometry::ConvGeometry;

pub(super) type Operand<'a> = (&'a CudaStorage, &'a Layout);

/// The three primitives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) enum Primitive {
    Forward,
    Adjoint,
    WeightGrad,
}

impl Primitive {
    /// The values of its output on `g`: `y`'s, `dx`'s or `dw`'s.
    pub(super) fn output_len(self, g: &ConvGeometry) -> usize {
        match self {
            Primitive::Forward => g.batch * g.cout * g.out_plane(),
            Primitive::Adjoint => g.batch * g.cin * g.in_plane(),
            Primitive::WeightGrad => g.cout * g.patch(),
        }
    }
}

/// A geometry as a key: batch, channels in and out, input and kernel sides, stride,
/// padding, dilation.
pub(super) type Shape = [usize; 10];

pub(super) fn shape(g: &ConvGeometry) -> Shape {
    let p = &g.params;
    [g.batch, g.cin, g.cout, g.in_h, g.in_w, g.k_h, g.k_w, p.stride, p.padding, p.dilation]
}

/// `primitive` as the columns compute it.
fn columns(primitive: Primitive, products: Products, g: &ConvGeometry, a: Operand, b: Operand) -> Result<CudaStorage> {
    match primitive {
        Primitive::Forward => conv_columns::forward(g, a, b, products),
        Primitive::Adjoint => conv_columns::adjoint(g, a, b, products),
        Primitive::WeightGrad => conv_columns::weight_grad(g, a, b),
    }
}

/// What runs a primitive: the columns (a product per chunk of samples, or per sample),
/// the `n`th algorithm cuDNN qualifies or the `n`th plan of its graph API (deterministic
/// ones only, or with `any_order` all).
#[derive(Debug, Clone, Copy)]
enum Candidate {
    Columns(Products),
    Cudnn { any_order: bool, n: usize },
    Graph { any_order: bool, n: usize },
}

/// The columns' candidates [`CudaConv::Timed`] times for `primitive` on `g`, named: a
/// product per chunk, and for the forward and adjoint of images with several samples
/// also a product per sample (the weight gradient's are the same either way).
fn column_candidates(primitive: Primitive, g: &ConvGeometry) -> Vec<(String, Candidate)> {
    let mut out = vec![("columns".to_string(), Candidate::Columns(Products::PerChunk))];
    if primitive != Primitive::WeightGrad && !g.dense() && g.batch > 1 {
        out.push(("columns per sample".into(), Candidate::Columns(Products::PerSample)));
    }
    out
}

/// `c` runs `primitive`; the columns where cuDNN has no such algorithm or plan.
fn run_candidate(c: Candidate, primitive: Primitive, g: &ConvGeometry, a: Operand, b: Operand) -> Result<CudaStorage> {
    let out = match c {
        Candidate::Columns(products) => return columns(primitive, products, g, a, b),
        Candidate::Cudnn { any_order, n } => cudnn::run((primitive, any_order, n), g, a, b)?,
        Candidate::Graph { any_order, n } => cudnn_graph::run((primitive, any_order, n), g, a, b)?,
    };
    match out {
        Some(out) => Ok(out),
        None => columns(primitive, Products::PerChunk, g, a, b),
    }
}

/// `conv`'s candidate on `g` (not [`CudaConv::Timed`], whose reference is
/// [`CudaConv::Cudnn`]'s).
fn fixed_candidate(conv: CudaConv, g: &ConvGeometry) -> Candidate {
    match conv {
        _ if !through_cudnn(conv, g, conv_tf32()) => Candidate::Columns(Products::PerChunk),
        CudaConv::CudnnGraph | CudaConv::CudnnGraphAny => {
            Candidate::Graph { any_order: conv == CudaConv::CudnnGraphAny, n: 0 }
        }
        _ => Candidate::Cudnn { any_order: conv == CudaConv::CudnnAny, n: 0 },
    }
}

/// `primitive` as [`cuda_conv`] says (bf16 operands: [`run_bf16`]).
fn run(primitive: Primitive, g: &ConvGeometry, a: Operand, b: Operand) -> Result<CudaStorage> {
    if a.0.dtype() == DType::BF16 {
        return run_bf16(primitive, g, a, b);
    }
    let candidate = match cuda_conv() {
        CudaConv::Timed => timed(primitive, g, a, b)?,
        conv => fixed_candidate(conv, g),
    };
    run_candidate(candidate, primitive, g, a, b)
}

/// `primitive` on bf16 operands, as [`bf16_through_graph`] says: the graph API's first plan
/// in bf16 (f32 sums), or, on a dense geometry, under [`CudaConv::Columns`] or where the
/// graph API has no plan, the f32 primitive on the operands widened, rounded back to bf16.
fn run_bf16(primitive: Primitive, g: &ConvGeometry, a: Operand, b: Operand) -> Result<CudaStorage> {
    if let Some(any_order) = bf16_through_graph(cuda_conv(), g) {
        if let Some(out) = cudnn_graph::run((primitive, any_order, 0), g, a, b)? {
            return Ok(out);
        }
    }
    let widen =
        |(s, l): Operand| Ok::<_, candle_core::Error>((s.to_dtype(l, DType::F32)?, Layout::contiguous(l.shape())));
    let ((a32, la), (b32, lb)) = (widen(a)?, widen(b)?);
    let out = run(primitive, g, (&a32, &la), (&b32, &lb))?;
    out.to_dtype(&Layout::contiguous(primitive.output_len(g)), DType::BF16)
}

type TimedKey = (DeviceId, Shape, bool, Primitive, [i64; 3]);

thread_local! {
    /// [`CudaConv::Timed`]'s choices per device, geometry, TF32, primitive and the alignment
    /// cuDNN's graph API is told (its plans are kept per alignment).
    static TIMED: RefCell<HashMap<TimedKey, Candidate>> = RefCell::new(HashMap::new());
}

/// [`CudaConv::Timed`]'s candidate for `primitive` on `g`, timed on `a` and `b` where the
/// geometry first runs; a candidate whose first run fails or whose first output is off
/// the reference's ([`CudaConv::Cudnn`]'s candidate) by more than [`TIMED_AGREEMENT`] is
/// left out (warned), and with none left the reference runs.
fn timed(primitive: Primitive, g: &ConvGeometry, a: Operand, b: Operand) -> Result<Candidate> {
    let align = cudnn_graph::operand_alignments(primitive, a, b)?;
    let key = (a.0.device.id(), shape(g), conv_tf32(), primitive, align);
    if let Some(c) = TIMED.with(|t| t.borrow().get(&key).copied()) {
        return Ok(c);
    }
    let algorithms = cudnn::algorithms(&a.0.device, g, (primitive, true))?;
    let engines = cudnn_graph::engines((primitive, true), g, a, b)?;
    let (names, candidates): (Vec<String>, Vec<Candidate>) = column_candidates(primitive, g)
        .into_iter()
        .chain(
            algorithms.iter().enumerate().map(|(n, (name, _))| (name.clone(), Candidate::Cudnn { any_order: true, n })),
        )
        .chain(engines.iter().enumerate().map(|(n, (name, _))| (name.clone(), Candidate::Graph { any_order: true, n })))
        .unzip();
    let reference = fixed_candidate(CudaConv::Cudnn, g);
    let want = host(&run_candidate(reference, primitive, g, a, b)?)?;
    let (mut times, mut timings) = (Vec::with_capacity(candidates.len()), Vec::with_capacity(candidates.len()));
    for (&c, name) in candidates.iter().zip(&names) {
        // The first run loads, plans and allocates; its output is checked, the rest timed.
        // A candidate that fails to run is left out too: the others and the reference remain.
        let first = run_candidate(c, primitive, g, a, b).and_then(|out| host(&out));
        let why = match first.map(|got| disagreement(&got, &want)) {
            Ok(off) if off <= TIMED_AGREEMENT => {
                let t = best_time(&a.0.device, || run_candidate(c, primitive, g, a, b).map(drop))?;
                timings.push(format!("{name}: {:.3} ms", t.as_secs_f64() * 1e3));
                times.push(Some(t));
                continue;
            }
            Ok(off) => format!("{off:.1e} off the reference's output"),
            Err(e) => format!("failed: {e}"),
        };
        tracing::warn!(?primitive, geometry = ?key.1, candidate = %name, %why, "timed convolution: left out");
        timings.push(format!("{name}: left out, {why}"));
        times.push(None);
    }
    let i = fastest(&times);
    let chosen_name = i.map_or("the reference (no candidate left)", |i| names[i].as_str());
    let (default, macs) = (default_name(g, &algorithms), g.macs());
    tracing::info!(?primitive, geometry = ?key.1, tf32 = key.2, macs, chosen = %chosen_name, %default, ?timings, "timed convolution");
    let chosen = i.map_or(reference, |i| candidates[i]);
    TIMED.with(|t| t.borrow_mut().insert(key, chosen));
    Ok(chosen)
}

/// What the default ([`CudaConv::Auto`]) runs on `g`, named as timing names it:
/// "columns", or the first deterministic one of cuDNN's `algorithms`.
fn default_name<'a>(g: &ConvGeometry, algorithms: &'a [(String, bool)]) -> &'a str {
    match fixed_candidate(CudaConv::Auto, g) {
        Candidate::Columns(_) => "columns",
        Candidate::Cudnn { .. } | Candidate::Graph { .. } => algorithms
            .iter()
            .find(|(_, deterministic)| *deterministic)
            .map_or("columns (cuDNN offers none)", |(name, _)| name.as_str()),
    }
}

/// The values of a primitive's f32 output, on the host.
fn host(out: &CudaStorage) -> Result<Vec<f32>> {
    match out.to_cpu_storage()? {
        CpuStorage::F32(values) => Ok(values),
        other => candle_core::bail!("ganzoo-convolution (cuda): a {:?} output where f32 was expected", other.dtype()),
    }
}

/// The best of [`TIMED_REPEATS`] runs of `f`, the device idle before and after each.
fn best_time(device: &CudaDevice, mut f: impl FnMut() -> Result<()>) -> Result<Duration> {
    let mut best = Duration::MAX;
    for _ in 0..TIMED_REPEATS {
        device.synchronize()?;
        let start = Instant::now();
        f()?;
        device.synchronize()?;
        best = best.min(start.elapsed());
    }
    Ok(best)
}

#[cfg(feature = "cudnn")]
use super::{cudnn, cudnn_graph};
/// Without cuDNN in the build ([`cuda_conv`] is then never cuDNN), no algorithm qualifies.
#[cfg(not(feature = "cudnn"))]
mod cudnn {
    use super::{ConvGeometry, CudaDevice, CudaStorage, Operand, Primitive, Result};
    pub(super) fn run(
        _: (Primitive, bool, usize),
        _: &ConvGeometry,
        _: Operand,
        _: Operand,
    ) -> Result<Option<CudaStorage>> {
        Ok(None)
    }
    pub(super) fn algorithms(_: &CudaDevice, _: &ConvGeometry, _: (Primitive, bool)) -> Result<Vec<(String, bool)>> {
        Ok(Vec::new())
    }
}
/// Nor any plan of its graph API.
#[cfg(not(feature = "cudnn"))]
mod cudnn_graph {
    pub(super) use super::cudnn::run;
    use super::{ConvGeometry, Operand, Primitive, Result};
    pub(super) fn operand_alignments(_: Primitive, _: Operand, _: Operand) -> Result<[i64; 3]> {
        Ok([0; 3])
    }
    pub(super) fn engines(
        _: (Primitive, bool),
        _: &ConvGeometry,
        _: Operand,
        _: Operand,
    ) -> Result<Vec<(String, bool)>> {
        Ok(Vec::new())
    }
}

/// `y = W ⋆ x`: `x (N, C, H, W)`, `w (O, C, kh, kw)` → `(N, O, H', W')`.
pub(crate) fn forward(g: &ConvGeometry, x: Operand, w: Operand) -> Result<CudaStorage> {
    run(Primitive::Forward, g, x, w)
}

/// The adjoint of [`forward`]: `dy (N, O, H', W')`, `w (O, C, kh, kw)` → `(N, C, H, W)`.
pub(crate) fn adjoint(g: &ConvGeometry, dy: Operand, w: Operand) -> Result<CudaStorage> {
    run(Primitive::Adjoint, g, dy, w)
}

/// `∂⟨W ⋆ x, dy⟩/∂W`: `x (N, C, H, W)`, `dy (N, O, H', W')` → `(O, C, kh, kw)`.
pub(crate) fn weight_grad(g: &ConvGeometry, x: Operand, dy: Operand) -> Result<CudaStorage> {
    run(Primitive::WeightGrad, g, x, dy)
}

/// The geometry's sizes as the kernels' `int`s: `c, h, w, kh, kw, oh, ow, stride, pad, dilation`.
fn sizes(g: &ConvGeometry) -> Result<[i32; 10]> {
    let p = &g.params;
    let all = [g.cin, g.in_h, g.in_w, g.k_h, g.k_w, g.out_h, g.out_w, p.stride, p.padding, p.dilation];
    let mut out = [0; 10];
    for (o, v) in out.iter_mut().zip(all) {
        *o = int(v, "convolution size")?;
    }
    Ok(out)
}

impl Columns for CudaStorage {
    fn im2col(&self, l: &Layout, g: &ConvGeometry, layout: ColumnLayout) -> Result<Self> {
        let x = view(self, l, "ganzoo-im2col (cuda)")?;
        let len = g.batch * g.patch() * g.out_plane();
        let [c, h, w, kh, kw, oh, ow, stride, pad, dilation] = sizes(g)?;
        let device = &self.device;
        // SAFETY: the kernel writes all `len` values.
        let mut cols = unsafe { device.alloc::<f32>(len)? };
        let (config, layout) = (elementwise(len), layout.code());
        launch::gz_im2col(
            device, config, &x, &mut cols, &len, &c, &h, &w, &kh, &kw, &oh, &ow, &stride, &pad, &dilation, &layout,
        )?;
        Ok(CudaStorage::wrap_cuda_slice(cols, device.clone()))
    }

    fn col2im(&self, g: &ConvGeometry, layout: ColumnLayout) -> Result<Self> {
        let cols = view(self, &Layout::contiguous(g.batch * g.patch() * g.out_plane()), "ganzoo-col2im (cuda)")?;
        let len = g.batch * g.cin * g.in_plane();
        let [c, h, w, kh, kw, oh, ow, stride, pad, dilation] = sizes(g)?;
        let device = &self.device;
        // SAFETY: the kernel writes all `len` values.
        let mut x = unsafe { device.alloc::<f32>(len)? };
        let (config, layout) = (elementwise(len), layout.code());
        launch::gz_col2im(
            device, config, &cols, &mut x, &len, &c, &h, &w, &kh, &kw, &oh, &ow, &stride, &pad, &dilation, &layout,
        )?;
        Ok(CudaStorage::wrap_cuda_slice(x, device.clone()))
    }

    /// Candle's product, in TF32 where the convolutions may use it ([`conv_tf32`]) though
    /// Candle's switch for every product is off: the switch is set for this one product.
    /// (ganzoo drives a device from one thread; no other product runs meanwhile.)
    fn product(&self, rhs: &Self, bmnk: (usize, usize, usize, usize), lhs: &Layout, rhs_l: &Layout) -> Result<Self> {
        use candle_core::cuda::{gemm_reduced_precision_f32, set_gemm_reduced_precision_f32};
        if !conv_tf32() || gemm_reduced_precision_f32() {
            return self.matmul(rhs, bmnk, lhs, rhs_l);
        }
        set_gemm_reduced_precision_f32(true);
        let out = self.matmul(rhs, bmnk, lhs, rhs_l);
        set_gemm_reduced_precision_f32(false);
        out
    }
}
