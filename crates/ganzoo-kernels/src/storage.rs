//! Helpers of the custom ops: Candle's CPU storage read as typed slices, and gradients
//! computed only for operands that are part of a graph.

use candle_core::{bail, CpuStorage, Layout, Result, Tensor};

use crate::gemm::Element;

/// The contiguous data behind `l`, or an error naming `op`.
pub fn slice<'a, T>(data: &'a [T], l: &Layout, op: &'static str) -> Result<&'a [T]> {
    match l.contiguous_offsets() {
        Some((start, end)) => Ok(&data[start..end]),
        None => Err(candle_core::Error::RequiresContiguous { op }),
    }
}

/// `(N, C, H·W)` of a 4-D layout.
pub fn nchw(l: &Layout, op: &str) -> Result<(usize, usize, usize)> {
    match l.dims() {
        &[n, c, h, w] => Ok((n, c, h * w)),
        dims => bail!("{op}: expected an (N, C, H, W) tensor, got shape {dims:?}"),
    }
}

/// Operands of one element type.
pub enum Typed<'a, const K: usize> {
    F32([&'a [f32]; K]),
    F64([&'a [f64]; K]),
}

/// The `K` operands as slices of one float type.
pub fn typed<'a, const K: usize>(op: &'static str, args: [(&'a CpuStorage, &Layout); K]) -> Result<Typed<'a, K>> {
    if let Ok(v) = collect(op, &args, |s| if let CpuStorage::F32(v) = s { Some(v.as_slice()) } else { None }) {
        return Ok(Typed::F32(v));
    }
    match collect(op, &args, |s| if let CpuStorage::F64(v) = s { Some(v.as_slice()) } else { None }) {
        Ok(v) => Ok(Typed::F64(v)),
        Err(e) => Err(e),
    }
}

fn collect<'a, T: Element, const K: usize>(
    op: &'static str,
    args: &[(&'a CpuStorage, &Layout); K],
    get: impl Fn(&'a CpuStorage) -> Option<&'a [T]>,
) -> Result<[&'a [T]; K]> {
    let mut out: [&[T]; K] = [&[]; K];
    for (i, (s, l)) in args.iter().enumerate() {
        let Some(v) = get(s) else { bail!("{op}: f32 or f64 operands of one dtype only, got {:?}", s_dtype(s)) };
        out[i] = slice(v, l, op)?;
    }
    Ok(out)
}

fn s_dtype(s: &CpuStorage) -> candle_core::DType {
    use candle_core::backend::BackendStorage;
    s.dtype()
}

/// The gradient of an operand, computed only when the operand is part of a graph
/// (a constant input, such as a batch of real images, needs none), and detached unless
/// Candle keeps gradients' graphs (`CANDLE_GRAD_DO_NOT_DETACH`, as Candle reads it).
/// Without that setting Candle detaches each gradient when it passes it on, so no
/// higher derivative ran through these graphs; but until then a graph held every tensor
/// its gradient came from: Candle's running sum held its zeros and the summand (three
/// copies of an activation's gradient at once), and a weight's gradient held its
/// layer's output gradient to the end of the backward pass (docs/performance.md,
/// *Memory*). ganzoo's penalty differentiates its own input-gradient graph
/// (`Network::input_gradient`), not these.
pub fn tracked(operand: &Tensor, grad: impl FnOnce() -> Result<Tensor>) -> Result<Option<Tensor>> {
    if !operand.track_op() {
        return Ok(None);
    }
    let grad = grad()?;
    Ok(Some(if gradients_keep_graphs() { grad } else { grad.detach() }))
}

/// Whether Candle keeps the graphs of the gradients it computes: `CANDLE_GRAD_DO_NOT_DETACH`
/// set, non-empty and not `0` (read once, as Candle reads it once per thread).
fn gradients_keep_graphs() -> bool {
    static KEEP: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *KEEP.get_or_init(|| std::env::var("CANDLE_GRAD_DO_NOT_DETACH").is_ok_and(|s| !s.is_empty() && s != "0"))
}
