//! ganzoo's convolution kernels against Candle's own convolutions (values and
//! gradients, odd shapes and the DCGAN layer shapes) and against central finite
//! differences in f64, including a gradient of a gradient taken by Candle's autodiff.

use candle_core::{DType, Device, IndexOp, Tensor, Var};
use ganzoo::kernels::{self, ConvParams, ImageLayout};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::common::rerun_in_child;

/// One convolution: input `(n, cin, h, w)`, kernel `(cout, cin, kh, kw)`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Case {
    pub n: usize,
    pub cin: usize,
    pub h: usize,
    pub w: usize,
    pub cout: usize,
    pub kh: usize,
    pub kw: usize,
    pub params: ConvParams,
}

#[allow(clippy::too_many_arguments)]
pub(crate) const fn case(
    n: usize,
    cin: usize,
    (h, w): (usize, usize),
    cout: usize,
    (kh, kw): (usize, usize),
    s: usize,
    p: usize,
    d: usize,
) -> Case {
    Case { n, cin, h, w, cout, kh, kw, params: ConvParams { dilation: d, ..ConvParams::new(s, p) } }
}

/// Odd shapes: stride 1, 2 and 3, padding 0 and 1, batch 1, non-square images and
/// kernels, dilation, 1×1 kernels and outputs.
pub(crate) const ODD: [Case; 8] = [
    case(1, 1, (5, 7), 1, (3, 3), 1, 0, 1),
    case(1, 3, (5, 7), 2, (3, 3), 2, 1, 1),
    case(2, 2, (6, 5), 3, (4, 4), 2, 1, 1),
    case(3, 2, (7, 4), 2, (1, 1), 1, 0, 1),
    case(2, 3, (9, 8), 2, (3, 2), 1, 1, 2),
    case(1, 2, (4, 4), 3, (4, 4), 1, 0, 1),
    case(2, 1, (8, 8), 2, (3, 3), 3, 0, 1),
    case(1, 2, (7, 6), 2, (2, 3), 2, 0, 1),
];

pub(crate) fn random(shape: &[usize], seed: u64, dtype: DType) -> Tensor {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let n = shape.iter().product();
    let v: Vec<f64> = (0..n).map(|_| rng.random_range(-1.0..1.0)).collect();
    Tensor::from_vec(v, shape, &Device::Cpu).unwrap().to_dtype(dtype).unwrap()
}

pub(crate) fn max_diff(a: &Tensor, b: &Tensor) -> f64 {
    assert_eq!(a.dims(), b.dims());
    let d = (a - b).unwrap().abs().unwrap().flatten_all().unwrap().max(0).unwrap();
    d.to_dtype(DType::F64).unwrap().to_scalar::<f64>().unwrap()
}

pub(crate) fn max_abs(a: &Tensor) -> f64 {
    a.abs().unwrap().flatten_all().unwrap().max(0).unwrap().to_dtype(DType::F64).unwrap().to_scalar::<f64>().unwrap()
}

impl Case {
    pub(crate) fn input(&self, dtype: DType) -> Tensor {
        random(&[self.n, self.cin, self.h, self.w], 1, dtype)
    }
    pub(crate) fn kernel(&self, dtype: DType) -> Tensor {
        random(&[self.cout, self.cin, self.kh, self.kw], 2, dtype)
    }
    pub(crate) fn candle_conv(&self, x: &Tensor, w: &Tensor) -> Tensor {
        let p = self.params;
        x.conv2d(w, p.padding, p.stride, p.dilation, 1).unwrap()
    }
    /// Output padding of the transposed convolution that gives back `(h, w)`, when one does.
    pub(crate) fn output_padding(&self) -> Option<usize> {
        let p = self.params;
        let (oh, ow) = (p.out_side(self.h, self.kh)?, p.out_side(self.w, self.kw)?);
        let ph = self.h - p.transposed_side(oh, self.kh, 0)?;
        let pw = self.w - p.transposed_side(ow, self.kw, 0)?;
        (ph == pw).then_some(ph)
    }
}

#[test]
fn conv2d_matches_candle_on_odd_shapes() {
    for c in ODD {
        let (x, w) = (c.input(DType::F64), c.kernel(DType::F64));
        let ours = kernels::conv2d(&x, &w, c.params).unwrap();
        let theirs = c.candle_conv(&x, &w);
        assert!(max_diff(&ours, &theirs) < 1e-12, "{c:?}");
        assert!(max_abs(&theirs) > 0.1, "{c:?}: degenerate case");
    }
}

#[test]
fn conv_transpose2d_matches_candle_on_odd_shapes() {
    for c in ODD.iter().filter(|c| c.params.dilation == 1) {
        // The transposed convolution maps the forward output shape back to the input shape.
        let y = random(c.candle_conv(&c.input(DType::F64), &c.kernel(DType::F64)).dims(), 3, DType::F64);
        let w = c.kernel(DType::F64);
        let p = c.params;
        for op in [0, 1].into_iter().filter(|&op| op < p.stride) {
            let ours = kernels::conv_transpose2d(&y, &w, p, op).unwrap();
            let theirs = y.conv_transpose2d(&w, p.padding, op, p.stride, 1).unwrap();
            assert!(max_diff(&ours, &theirs) < 1e-12, "{c:?}, output padding {op}");
        }
    }
}

/// Gradients of `Σ r ⊙ conv(x, W)` with respect to `x` and `W`, ours and Candle's.
fn compare_gradients(c: &Case, dtype: DType, tol: f64) {
    let x = Var::from_tensor(&c.input(dtype)).unwrap();
    let w = Var::from_tensor(&c.kernel(dtype)).unwrap();
    let ours = kernels::conv2d(&x, &w, c.params).unwrap();
    let r = random(ours.dims(), 4, dtype);
    let theirs = c.candle_conv(&x, &w);
    let g_ours = (&ours * &r).unwrap().sum_all().unwrap().backward().unwrap();
    let g_theirs = (&theirs * &r).unwrap().sum_all().unwrap().backward().unwrap();
    for (name, v) in [("input", &x), ("kernel", &w)] {
        let (a, b) = (g_ours.get(v).unwrap(), g_theirs.get(v).unwrap());
        let scale = max_abs(b).max(1.0);
        assert!(max_diff(a, b) < tol * scale, "{c:?}: {name} gradient differs by {}", max_diff(a, b));
    }
}

#[test]
fn conv2d_gradients_match_candle() {
    for c in ODD.iter().filter(|c| c.output_padding().is_some()) {
        compare_gradients(c, DType::F64, 1e-12);
    }
}

/// Every conv layer of DCGAN-32 and DCGAN-64 (ngf = ndf = 64, 3 channels) at batch
/// 2, in f32: the generator's transposed convolutions are the adjoints of these.
pub(crate) fn dcgan_layers() -> Vec<Case> {
    let mut v = Vec::new();
    for (side, levels) in [(32, 3), (64, 4)] {
        let (mut s, mut c) = (side, 3);
        for l in 0..levels {
            let out = 64 << l;
            v.push(case(2, c, (s, s), out, (4, 4), 2, 1, 1));
            (s, c) = (s / 2, out);
        }
        v.push(case(2, c, (4, 4), 1, (4, 4), 1, 0, 1));
        v.push(case(2, 100, (4, 4), c, (4, 4), 1, 0, 1)); // the generator's 1×1 → 4×4 projection, as its adjoint
    }
    v
}

#[test]
fn dcgan_layer_shapes_match_candle_in_f32() {
    for c in dcgan_layers() {
        let (x, w) = (c.input(DType::F32), c.kernel(DType::F32));
        let ours = kernels::conv2d(&x, &w, c.params).unwrap();
        let theirs = c.candle_conv(&x, &w);
        assert!(max_diff(&ours, &theirs) < 1e-4 * max_abs(&theirs).max(1.0), "{c:?}");
        let y = random(theirs.dims(), 5, DType::F32);
        let p = c.params;
        let ours = kernels::conv_transpose2d(&y, &w, p, 0).unwrap();
        let theirs = y.conv_transpose2d(&w, p.padding, 0, p.stride, 1).unwrap();
        assert!(max_diff(&ours, &theirs) < 1e-4 * max_abs(&theirs).max(1.0), "transposed {c:?}");
        compare_gradients(&c, DType::F32, 1e-4);
    }
}

/// Which primitive a finite-difference check runs.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Primitive {
    Conv,
    Transpose,
    WeightGrad,
}

/// The primitive's two operands for `c`, and the function itself.
pub(crate) fn operands(p: Primitive, c: &Case) -> (Tensor, Tensor) {
    let x = c.input(DType::F64);
    let y_dims = c.candle_conv(&x, &c.kernel(DType::F64)).dims().to_vec();
    match p {
        Primitive::Conv => (x, c.kernel(DType::F64)),
        Primitive::Transpose => (random(&y_dims, 6, DType::F64), c.kernel(DType::F64)),
        Primitive::WeightGrad => (x, random(&y_dims, 6, DType::F64)),
    }
}

pub(crate) fn apply(p: Primitive, c: &Case, a: &Tensor, b: &Tensor) -> Tensor {
    match p {
        Primitive::Conv => kernels::conv2d(a, b, c.params),
        Primitive::Transpose => kernels::conv_transpose2d_to(a, b, c.params, (c.h, c.w)),
        Primitive::WeightGrad => kernels::conv2d_weight_grad(a, b, c.params, (c.kh, c.kw)),
    }
    .unwrap()
}

/// `f(a, b) = Σ r ⊙ op(a, b)²`: the square keeps the gradient dependent on both operands.
fn objective(p: Primitive, c: &Case, a: &Tensor, b: &Tensor, r: &Tensor) -> Tensor {
    (apply(p, c, a, b).sqr().unwrap() * r).unwrap().sum_all().unwrap()
}

/// Central finite differences of `f` at every element of `base`, against `analytic`
/// (the gradient of `f` at `base`), within `atol + rtol·|numeric|`.
pub(crate) fn assert_matches_finite_differences(
    what: &str,
    base: &Tensor,
    analytic: &Tensor,
    f: impl Fn(&Tensor) -> f64,
    h: f64,
    (atol, rtol): (f64, f64),
) {
    let analytic: Vec<f64> = analytic.flatten_all().unwrap().to_vec1().unwrap();
    let values: Vec<f64> = base.flatten_all().unwrap().to_vec1().unwrap();
    for i in 0..values.len() {
        let at = |d: f64| {
            let mut bumped = values.clone();
            bumped[i] += d;
            f(&Tensor::from_vec(bumped, base.shape(), &Device::Cpu).unwrap())
        };
        let numeric = (at(h) - at(-h)) / (2.0 * h);
        let ok = (numeric - analytic[i]).abs() < atol + rtol * numeric.abs();
        assert!(ok, "{what}[{i}]: analytic {} vs numeric {numeric}", analytic[i]);
    }
}

fn finite_difference_check(p: Primitive, c: &Case) {
    let (a, b) = operands(p, c);
    let r = random(apply(p, c, &a, &b).dims(), 7, DType::F64);
    let (va, vb) = (Var::from_tensor(&a).unwrap(), Var::from_tensor(&b).unwrap());
    let grads = objective(p, c, &va, &vb, &r).backward().unwrap();
    for (which, var) in [("first", &va), ("second", &vb)] {
        let f = |t: &Tensor| {
            let (a2, b2) = if which == "first" { (t, &b) } else { (&a, t) };
            objective(p, c, a2, b2, &r).to_scalar::<f64>().unwrap()
        };
        let what = format!("{p:?} {c:?}: {which}");
        assert_matches_finite_differences(&what, var, grads.get(var).unwrap(), f, 1e-5, (1e-7, 1e-6));
    }
}

#[test]
fn every_primitive_matches_finite_differences_in_f64() {
    for c in ODD.iter().filter(|c| c.output_padding().is_some()) {
        for p in [Primitive::Conv, Primitive::Transpose, Primitive::WeightGrad] {
            finite_difference_check(p, c);
        }
    }
}

/// `P(x, W) = ‖∂⟨f(x, W), r⟩/∂x‖² + ‖∂⟨f(x, W), r⟩/∂W‖²` with `f = ours` and both inner
/// gradients taken by Candle's `backward` (kept in the graph by
/// `CANDLE_GRAD_DO_NOT_DETACH`), then differentiated again, against finite
/// differences of the same quantity with `f = theirs`, on `(x, w)`.
pub(crate) fn double_backward_check(
    what: &str,
    (x, w): (&Tensor, &Tensor),
    ours: impl Fn(&Tensor, &Tensor) -> Tensor,
    theirs: impl Fn(&Tensor, &Tensor) -> Tensor,
) {
    let r = random(theirs(x, w).dims(), 8, DType::F64);
    let penalty = |x: &Tensor, w: &Tensor, f: &dyn Fn(&Tensor, &Tensor) -> Tensor| -> (Tensor, Var, Var) {
        let (vx, vw) = (Var::from_tensor(x).unwrap(), Var::from_tensor(w).unwrap());
        let g = (f(&vx, &vw) * &r).unwrap().sum_all().unwrap().backward().unwrap();
        let (gx, gw) = (g.get(&vx).unwrap(), g.get(&vw).unwrap());
        let p = (gx.sqr().unwrap().sum_all().unwrap() + gw.sqr().unwrap().sum_all().unwrap()).unwrap();
        (p, vx, vw)
    };
    let (p, vx, vw) = penalty(x, w, &ours);
    let grads = p.backward().unwrap();
    for (which, var) in [("input", &vx), ("kernel", &vw)] {
        let f = |t: &Tensor| {
            let (x2, w2) = if which == "input" { (t, w) } else { (x, t) };
            penalty(x2, w2, &theirs).0.to_scalar::<f64>().unwrap()
        };
        assert_matches_finite_differences(
            &format!("{what}: {which}"),
            var,
            grads.get(var).unwrap(),
            f,
            1e-5,
            (1e-7, 1e-6),
        );
    }
}

/// [`double_backward_check`] of ganzoo's `conv2d` on images in `layout` (NHWC: moved
/// there and back by Candle's own permutes) against Candle's.
fn kernels_double_backward_check(c: &Case, layout: ImageLayout) {
    let ours = |x: &Tensor, w: &Tensor| match layout {
        ImageLayout::Nchw => kernels::conv2d(x, w, c.params).unwrap(),
        ImageLayout::Nhwc => {
            let params = c.params.with_layout(ImageLayout::Nhwc);
            crate::channels_last::nchw(&kernels::conv2d(&crate::channels_last::nhwc(x), w, params).unwrap())
        }
    };
    let (x, w) = (c.input(DType::F64), c.kernel(DType::F64));
    double_backward_check(&format!("{c:?} {layout:?}"), (&x, &w), ours, |x, w| c.candle_conv(x, w));
}

#[test]
fn gradient_of_a_gradient_through_candle_autodiff_matches_finite_differences() {
    // Candle reads CANDLE_GRAD_DO_NOT_DETACH once per thread: without it, re-run this
    // test in a child process of the test binary with it set.
    if std::env::var_os("CANDLE_GRAD_DO_NOT_DETACH").is_none() {
        rerun_in_child(
            "kernels::gradient_of_a_gradient_through_candle_autodiff_matches_finite_differences",
            ("CANDLE_GRAD_DO_NOT_DETACH", "1"),
        );
        return;
    }
    for c in ODD.iter().filter(|c| c.output_padding().is_some()).take(4) {
        kernels_double_backward_check(c, ImageLayout::Nchw);
    }
    for c in ODD.iter().filter(|c| c.output_padding().is_some()).skip(1).take(2) {
        kernels_double_backward_check(c, ImageLayout::Nhwc);
    }
}

/// The same check with the three primitives through Winograd's transform
/// (`GANZOO_WINOGRAD=always`, so that a layer small enough for finite differences
/// takes it), on a 4×4-kernel, stride-2 layer and on 3 channels.
#[test]
fn gradient_of_a_gradient_through_winograd_matches_finite_differences() {
    if std::env::var_os("CANDLE_GRAD_DO_NOT_DETACH").is_none() {
        crate::common::rerun_in_child_with(
            "kernels::gradient_of_a_gradient_through_winograd_matches_finite_differences",
            &[("CANDLE_GRAD_DO_NOT_DETACH", "1"), ("GANZOO_WINOGRAD", "always")],
        );
        return;
    }
    for c in [case(1, 3, (4, 8), 2, (4, 4), 2, 1, 1), case(2, 2, (8, 4), 3, (4, 4), 2, 1, 1)] {
        let nhwc = c.params.with_layout(ImageLayout::Nhwc);
        let g = kernels::ConvGeometry::new([c.n, c.cin, c.h, c.w], [c.cout, c.cin, c.kh, c.kw], nhwc).unwrap();
        assert!(g.winograd(), "{c:?} should run through the transform");
        kernels_double_backward_check(&c, ImageLayout::Nhwc);
    }
}

#[test]
fn bad_operands_are_errors_not_panics() {
    let p = ConvParams::new(1, 0);
    let x = random(&[1, 3, 8, 8], 0, DType::F32);
    let err = kernels::conv2d(&x, &random(&[4, 2, 3, 3], 0, DType::F32), p).unwrap_err().to_string();
    assert!(err.contains("input channels"), "{err}");
    let err = kernels::conv2d(&x, &random(&[4, 3, 9, 9], 0, DType::F32), p).unwrap_err().to_string();
    assert!(err.contains("does not fit"), "{err}");
    let err = kernels::conv2d(&x, &random(&[4, 3, 3, 3], 0, DType::F64), p).unwrap_err().to_string();
    assert!(err.contains("f32 or f64"), "{err}");
    let err = kernels::conv2d(&x.to_dtype(DType::BF16).unwrap(), &random(&[4, 3, 3, 3], 0, DType::BF16), p)
        .unwrap_err()
        .to_string();
    assert!(err.contains("f32 or f64"), "{err}");
    let err = kernels::conv2d(&x.flatten_from(2).unwrap(), &random(&[4, 3, 3, 3], 0, DType::F32), p).unwrap_err();
    assert!(err.to_string().contains("4-D"), "{err}");
    let err = kernels::conv_transpose2d_to(&x, &random(&[3, 2, 3, 3], 0, DType::F32), p, (9, 9)).unwrap_err();
    assert!(err.to_string().contains("does not map back"), "{err}");
    let y = random(&[1, 4, 5, 5], 0, DType::F32);
    let err = kernels::conv2d_weight_grad(&x, &y, p, (3, 3)).unwrap_err();
    assert!(err.to_string().contains("does not match"), "{err}");
}

#[test]
fn strided_views_are_made_contiguous() {
    let c = ODD[2];
    let x = c.input(DType::F64);
    let xt = x.transpose(2, 3).unwrap().contiguous().unwrap().transpose(2, 3).unwrap();
    assert!(!xt.is_contiguous());
    let w = c.kernel(DType::F64);
    assert!(max_diff(&kernels::conv2d(&xt, &w, c.params).unwrap(), &c.candle_conv(&x, &w)) < 1e-12);
}

/// Run on one thread, and on three: the kernels then split a batch of 5 either over
/// the threads (several blocks) or inside one block (a single block of 5). The
/// forward pass runs with its GEMM in either output layout.
#[test]
fn blocks_of_samples_give_the_same_result_as_one_block() {
    for threads in [1, 3] {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
        pool.install(compare_blocks);
    }
}

fn compare_blocks() {
    let c = case(5, 3, (6, 7), 4, (3, 3), 2, 1, 1);
    let g = kernels::ConvGeometry::new([5, 3, 6, 7], [4, 3, 3, 3], c.params).unwrap();
    let x: Vec<f64> = c.input(DType::F64).flatten_all().unwrap().to_vec1().unwrap();
    let w: Vec<f64> = c.kernel(DType::F64).flatten_all().unwrap().to_vec1().unwrap();
    let dy: Vec<f64> = random(&[g.output_len()], 9, DType::F64).to_vec1().unwrap();
    let whole = g.with_block(5);
    let close = |a: Vec<f64>, b: Vec<f64>| a.iter().zip(&b).all(|(a, b)| (a - b).abs() < 1e-12);
    for block in [1, 2, 3] {
        let part = g.with_block(block);
        for channels_last in [false, true] {
            let forward = kernels::forward(&part.with_output_channels_last(channels_last), &x, &w);
            assert!(close(forward, kernels::forward(&whole, &x, &w)), "forward, block {block}, {channels_last}");
        }
        assert!(close(kernels::adjoint(&part, &dy, &w), kernels::adjoint(&whole, &dy, &w)), "adjoint, block {block}");
        assert!(
            close(kernels::weight_grad(&part, &x, &dy), kernels::weight_grad(&whole, &x, &dy)),
            "weight gradient, block {block}"
        );
    }
    let reference = c.candle_conv(&c.input(DType::F64), &c.kernel(DType::F64));
    for channels_last in [false, true] {
        let y = kernels::forward(&whole.with_output_channels_last(channels_last), &x, &w);
        let y = Tensor::from_vec(y, (5, 4, g.out_h, g.out_w), &Device::Cpu).unwrap();
        assert!(max_diff(&y, &reference) < 1e-12, "output channels-last: {channels_last}");
    }
}

/// Batch norm written with Candle's tensor ops: `γ (x − μ)/√(σ² + ε) + β` per channel.
pub(crate) fn batch_norm_reference(x: &Tensor, gamma: &Tensor, beta: &Tensor) -> Tensor {
    let (_, c, _, _) = x.dims4().unwrap();
    let per_channel = |t: &Tensor| {
        t.transpose(0, 1).unwrap().flatten_from(1).unwrap().mean(1).unwrap().reshape((1, c, 1, 1)).unwrap()
    };
    let mean = per_channel(x);
    let centred = x.broadcast_sub(&mean).unwrap();
    let var = per_channel(&centred.sqr().unwrap());
    let xhat = centred.broadcast_div(&(var + 1e-5).unwrap().sqrt().unwrap()).unwrap();
    xhat.broadcast_mul(&gamma.reshape((1, c, 1, 1)).unwrap())
        .unwrap()
        .broadcast_add(&beta.reshape((1, c, 1, 1)).unwrap())
        .unwrap()
}

#[test]
fn batch_norm_matches_its_formula_and_its_gradients() {
    for dims in [[2usize, 3, 4, 5], [1, 2, 3, 3], [5, 4, 1, 1]] {
        let x = Var::from_tensor(&random(&dims, 11, DType::F64).affine(3.0, 0.5).unwrap()).unwrap();
        let gamma = Var::from_tensor(&random(&[dims[1]], 12, DType::F64)).unwrap();
        let beta = Var::from_tensor(&random(&[dims[1]], 13, DType::F64)).unwrap();
        let ours = kernels::batch_norm(&x, &gamma, &beta, 1e-5).unwrap();
        let theirs = batch_norm_reference(&x, &gamma, &beta);
        assert!(max_diff(&ours, &theirs) < 1e-10, "{dims:?}");
        let r = random(&dims, 14, DType::F64);
        let g_ours = (&ours * &r).unwrap().sum_all().unwrap().backward().unwrap();
        let g_theirs = (&theirs * &r).unwrap().sum_all().unwrap().backward().unwrap();
        for (name, v) in [("x", &x), ("gamma", &gamma), ("beta", &beta)] {
            let d = max_diff(g_ours.get(v).unwrap(), g_theirs.get(v).unwrap());
            assert!(d < 1e-9, "{dims:?}: {name} gradient differs by {d}");
        }
        let (mean, var) = kernels::channel_mean_var(&x).unwrap();
        let flat = x.transpose(0, 1).unwrap().flatten_from(1).unwrap();
        assert!(max_diff(&mean, &flat.mean(1).unwrap()) < 1e-12);
        let biased = flat.broadcast_sub(&flat.mean_keepdim(1).unwrap()).unwrap().sqr().unwrap().mean(1).unwrap();
        assert!(max_diff(&var, &biased) < 1e-12);
        // The same moments come back from the normalisation itself, which its backward reuses.
        let (y, kept_mean, kept_var) =
            kernels::batch_norm_with_moments(&x, &gamma, &beta, 1e-5, None, ImageLayout::Nchw).unwrap();
        assert!(
            max_diff(&y, &theirs) < 1e-10 && max_diff(&kept_mean, &mean) < 1e-12 && max_diff(&kept_var, &var) < 1e-12
        );
        let g_kept = (&y * &r).unwrap().sum_all().unwrap().backward().unwrap();
        assert!(
            max_diff(g_kept.get(&x).unwrap(), g_theirs.get(&x).unwrap()) < 1e-9,
            "{dims:?}: x gradient with kept moments"
        );
    }
}

#[test]
fn batch_norm_with_leaky_relu_matches_the_two_ops_and_their_gradients() {
    let dims = [3usize, 4, 3, 5];
    let x = Var::from_tensor(&random(&dims, 21, DType::F64).affine(2.0, 0.3).unwrap()).unwrap();
    let gamma = Var::from_tensor(&random(&[4], 22, DType::F64)).unwrap();
    let beta = Var::from_tensor(&random(&[4], 23, DType::F64)).unwrap();
    let r = random(&dims, 24, DType::F64);
    for slope in [0.2, 0.0] {
        let z = batch_norm_reference(&x, &gamma, &beta);
        let theirs = z.maximum(&(&z * slope).unwrap()).unwrap();
        let ours = kernels::batch_norm_leaky_relu(&x, &gamma, &beta, 1e-5, slope).unwrap();
        assert!(max_diff(&ours, &theirs) < 1e-10, "slope {slope}");
        let (kept, _, _) =
            kernels::batch_norm_with_moments(&x, &gamma, &beta, 1e-5, Some(slope), ImageLayout::Nchw).unwrap();
        assert!(max_diff(&kept, &theirs) < 1e-10, "slope {slope}, keeping the moments");
        // A square makes every gradient depend on the masked values.
        let grads = |y: &Tensor| (y.sqr().unwrap() * &r).unwrap().sum_all().unwrap().backward().unwrap();
        let (g_ours, g_theirs) = (grads(&ours), grads(&theirs));
        for (name, v) in [("x", &x), ("gamma", &gamma), ("beta", &beta)] {
            let d = max_diff(g_ours.get(v).unwrap(), g_theirs.get(v).unwrap());
            assert!(d < 1e-9, "slope {slope}: {name} gradient differs by {d}");
        }
    }
    assert!(kernels::batch_norm_leaky_relu(&x, &gamma, &beta, 1e-5, -0.5).is_err());
}

/// `conv2d_leaky_relu` against Candle's convolution then `max(y, a·y)`: values, and
/// the gradients of `Σ r ⊙ f²` for the input and kernel, on odd shapes, NCHW and NHWC,
/// slopes 0.2 and 0 (ReLU); slopes outside [0, 1] refused.
#[test]
fn conv_with_leaky_relu_matches_the_two_ops_and_their_gradients() {
    // Cases Candle's own convolution backward gets the shape of (as in the tests above).
    for (i, c) in ODD.iter().filter(|c| c.output_padding().is_some()).enumerate() {
        let x = Var::from_tensor(&c.input(DType::F64)).unwrap();
        let w = Var::from_tensor(&c.kernel(DType::F64)).unwrap();
        for (slope, layout) in [(0.2, ImageLayout::Nchw), (0.0, ImageLayout::Nchw), (0.2, ImageLayout::Nhwc)] {
            let z = c.candle_conv(&x, &w);
            let theirs = z.maximum(&(&z * slope).unwrap()).unwrap();
            let ours = match layout {
                ImageLayout::Nchw => kernels::conv2d_leaky_relu(&x, &w, c.params, slope).unwrap(),
                ImageLayout::Nhwc => {
                    let params = c.params.with_layout(ImageLayout::Nhwc);
                    let y = kernels::conv2d_leaky_relu(&crate::channels_last::nhwc(&x), &w, params, slope).unwrap();
                    crate::channels_last::nchw(&y)
                }
            };
            assert!(max_diff(&ours, &theirs) < 1e-10, "{c:?} slope {slope} {layout:?}");
            let r = random(theirs.dims(), 30 + i as u64, DType::F64);
            let grads = |y: &Tensor| (y.sqr().unwrap() * &r).unwrap().sum_all().unwrap().backward().unwrap();
            let (g_ours, g_theirs) = (grads(&ours), grads(&theirs));
            for (name, v) in [("x", &x), ("w", &w)] {
                let d = max_diff(g_ours.get(v).unwrap(), g_theirs.get(v).unwrap());
                assert!(d < 1e-9, "{c:?} slope {slope} {layout:?}: {name} gradient differs by {d}");
            }
        }
    }
    let (x, w) = (ODD[0].input(DType::F32), ODD[0].kernel(DType::F32));
    for slope in [-0.1, 1.5, f64::NAN] {
        assert!(kernels::conv2d_leaky_relu(&x, &w, ODD[0].params, slope).is_err(), "slope {slope}");
    }
}

/// [`double_backward_check`] of `conv2d_leaky_relu` against Candle's convolution then
/// `max(y, a·y)`: its backward (the mask, then the three primitives) differentiates again.
#[test]
fn conv_with_leaky_relu_differentiates_again() {
    if std::env::var_os("CANDLE_GRAD_DO_NOT_DETACH").is_none() {
        rerun_in_child("kernels::conv_with_leaky_relu_differentiates_again", ("CANDLE_GRAD_DO_NOT_DETACH", "1"));
        return;
    }
    for c in ODD.iter().filter(|c| c.output_padding().is_some()).take(3) {
        let ours = |x: &Tensor, w: &Tensor| kernels::conv2d_leaky_relu(x, w, c.params, 0.2).unwrap();
        let theirs = |x: &Tensor, w: &Tensor| {
            let z = c.candle_conv(x, w);
            z.maximum(&(&z * 0.2).unwrap()).unwrap()
        };
        double_backward_check(&format!("{c:?}"), (&c.input(DType::F64), &c.kernel(DType::F64)), ours, theirs);
    }
}

#[test]
fn batch_norm_gradient_matches_finite_differences() {
    let dims = [3usize, 2, 2, 3];
    let x = random(&dims, 15, DType::F64);
    let (gamma, beta) = (random(&[2], 16, DType::F64), random(&[2], 17, DType::F64));
    let r = random(&dims, 18, DType::F64);
    // A square makes the objective's gradient depend on the normalised values.
    let f = |x: &Tensor| {
        (kernels::batch_norm(x, &gamma, &beta, 1e-5).unwrap().sqr().unwrap() * &r).unwrap().sum_all().unwrap()
    };
    let v = Var::from_tensor(&x).unwrap();
    let analytic = f(&v).backward().unwrap().get(&v).unwrap().clone();
    let value = |t: &Tensor| f(t).to_scalar::<f64>().unwrap();
    assert_matches_finite_differences("x", &x, &analytic, value, 1e-6, (1e-6, 1e-5));
}

#[test]
fn leaky_relu_and_its_backward_are_differentiable() {
    let x = random(&[2, 3, 4, 4], 19, DType::F64);
    let ours = kernels::leaky_relu(&x, 0.2).unwrap();
    assert!(max_diff(&ours, &x.maximum(&(&x * 0.2).unwrap()).unwrap()) < 1e-15);
    // The backward's derivative in dy, through Candle's autodiff, against finite differences.
    let dy = Var::from_tensor(&random(x.dims(), 20, DType::F64)).unwrap();
    let r = random(x.dims(), 21, DType::F64);
    let f =
        |dy: &Tensor| (kernels::leaky_relu_grad(&x, dy, 0.2).unwrap().sqr().unwrap() * &r).unwrap().sum_all().unwrap();
    let analytic = f(&dy).backward().unwrap().get(&dy).unwrap().clone();
    let value = |t: &Tensor| f(t).to_scalar::<f64>().unwrap();
    assert_matches_finite_differences("dy", &dy, &analytic, value, 1e-6, (1e-7, 1e-6));
    // And the first derivative against Candle's own leaky ReLU.
    let xv = Var::from_tensor(&x).unwrap();
    let g1 = (kernels::leaky_relu(&xv, 0.2).unwrap() * &r).unwrap().sum_all().unwrap().backward().unwrap();
    let g2 =
        (xv.maximum(&(xv.as_tensor() * 0.2).unwrap()).unwrap() * &r).unwrap().sum_all().unwrap().backward().unwrap();
    assert!(max_diff(g1.get(&xv).unwrap(), g2.get(&xv).unwrap()) < 1e-15);
}

#[test]
fn tanh_and_its_backward_match_candle_and_finite_differences() {
    // tanh(0) = 0, tanh(ln 3) = 0.8 by hand; then Candle's tanh on random values.
    let hand = Tensor::new(&[0f64, 3f64.ln()], &Device::Cpu).unwrap();
    let got = kernels::tanh(&hand).unwrap().to_vec1::<f64>().unwrap();
    assert!(got[0] == 0.0 && (got[1] - 0.8).abs() < 1e-15, "{got:?}");
    let x = (random(&[2, 3, 5, 7], 40, DType::F64) * 3.0).unwrap();
    assert!(max_diff(&kernels::tanh(&x).unwrap(), &x.tanh().unwrap()) < 1e-15);
    // The first derivative against Candle's, in f32 and f64. The f32 kernel's tanh
    // (its own, vectorised) may differ from libm's by one rounding, which moves
    // `r (1 − y²)` by up to `2 |r| · 6e-8`.
    let r = random(x.dims(), 41, DType::F64);
    for (dtype, tol) in [(DType::F32, 1e-6), (DType::F64, 1e-7)] {
        let xv = Var::from_tensor(&x.to_dtype(dtype).unwrap()).unwrap();
        let r = r.to_dtype(dtype).unwrap();
        let ours = (kernels::tanh(&xv).unwrap() * &r).unwrap().sum_all().unwrap().backward().unwrap();
        let candle = (xv.tanh().unwrap() * &r).unwrap().sum_all().unwrap().backward().unwrap();
        assert!(max_diff(ours.get(&xv).unwrap(), candle.get(&xv).unwrap()) < tol, "{dtype:?}");
    }
    let x32 = x.to_dtype(DType::F32).unwrap();
    assert!(max_diff(&kernels::tanh(&x32).unwrap(), &x32.tanh().unwrap()) < 1.2e-7, "f32 forward");
    // The backward dy·(1 − y²) differentiated in both operands, against finite differences.
    let y = Var::from_tensor(&kernels::tanh(&x).unwrap()).unwrap();
    let dy = Var::from_tensor(&random(x.dims(), 42, DType::F64)).unwrap();
    let f =
        |y: &Tensor, dy: &Tensor| (kernels::tanh_grad(y, dy).unwrap().sqr().unwrap() * &r).unwrap().sum_all().unwrap();
    let grads = f(&y, &dy).backward().unwrap();
    let value = |y: &Tensor, dy: &Tensor| f(y, dy).to_scalar::<f64>().unwrap();
    let tol = (1e-7, 1e-6);
    assert_matches_finite_differences("y", &y, grads.get(&y).unwrap(), |t| value(t, &dy), 1e-6, tol);
    assert_matches_finite_differences("dy", &dy, grads.get(&dy).unwrap(), |t| value(&y, t), 1e-6, tol);
    assert!(kernels::tanh_grad(&y, &random(&[3], 0, DType::F64)).is_err());
}

#[test]
fn linear_matches_hand_computed_values_and_finite_differences() {
    // y = x Wᵀ + b by hand: x = [[1, 2]], W = [[1, 0], [3, -1], [0.5, 2]], b = [0.5, -1, 2].
    let x = Tensor::new(&[[1f64, 2.0]], &Device::Cpu).unwrap();
    let w = Tensor::new(&[[1f64, 0.0], [3.0, -1.0], [0.5, 2.0]], &Device::Cpu).unwrap();
    let b = Tensor::new(&[0.5f64, -1.0, 2.0], &Device::Cpu).unwrap();
    let y: Vec<Vec<f64>> = kernels::linear(&x, &w, &b).unwrap().to_vec2().unwrap();
    assert_eq!(y, vec![vec![1.5, 0.0, 6.5]]);
    // Gradients of Σ r ⊙ y² in each operand against finite differences, batch 3, 4 → 5.
    let (x, w, b) = (random(&[3, 4], 22, DType::F64), random(&[5, 4], 23, DType::F64), random(&[5], 24, DType::F64));
    let r = random(&[3, 5], 25, DType::F64);
    let f = |x: &Tensor, w: &Tensor, b: &Tensor| {
        (kernels::linear(x, w, b).unwrap().sqr().unwrap() * &r).unwrap().sum_all().unwrap()
    };
    let (vx, vw, vb) = (Var::from_tensor(&x).unwrap(), Var::from_tensor(&w).unwrap(), Var::from_tensor(&b).unwrap());
    let grads = f(&vx, &vw, &vb).backward().unwrap();
    let value = |x: &Tensor, w: &Tensor, b: &Tensor| f(x, w, b).to_scalar::<f64>().unwrap();
    let tol = (1e-7, 1e-6);
    assert_matches_finite_differences("x", &vx, grads.get(&vx).unwrap(), |t| value(t, &w, &b), 1e-6, tol);
    assert_matches_finite_differences("W", &vw, grads.get(&vw).unwrap(), |t| value(&x, t, &b), 1e-6, tol);
    assert_matches_finite_differences("b", &vb, grads.get(&vb).unwrap(), |t| value(&x, &w, t), 1e-6, tol);
    // A constant input (real data) gets no gradient; f32 agrees with Candle's matmul + add.
    let grads = f(&x, &vw, &vb).backward().unwrap();
    assert!(grads.get(&x).is_none() && grads.get(&vw).is_some());
    let (x32, w32, b32) =
        (x.to_dtype(DType::F32).unwrap(), w.to_dtype(DType::F32).unwrap(), b.to_dtype(DType::F32).unwrap());
    let candle = x32.matmul(&w32.t().unwrap()).unwrap().broadcast_add(&b32).unwrap();
    assert!(max_diff(&kernels::linear(&x32, &w32, &b32).unwrap(), &candle) < 1e-6);
    // Shapes that do not fit are errors.
    let err = kernels::linear(&x, &random(&[5, 3], 0, DType::F64), &b).unwrap_err().to_string();
    assert!(err.contains("do not fit"), "{err}");
    assert!(kernels::linear(&random(&[3], 0, DType::F64), &w, &b).is_err());
}

#[test]
fn matrix_products_match_hand_values_candle_and_finite_differences() {
    use kernels::Transposes;
    // [[1, 2], [3, 4]] · [[5, 6], [7, 8]] = [[19, 22], [43, 50]]; Aᵀ·B = [[26, 30], [38, 44]].
    let a = Tensor::new(&[[1f64, 2.0], [3.0, 4.0]], &Device::Cpu).unwrap();
    let b = Tensor::new(&[[5f64, 6.0], [7.0, 8.0]], &Device::Cpu).unwrap();
    let ab: Vec<Vec<f64>> = kernels::matrix_product(&a, &b, Transposes::NONE).unwrap().to_vec2().unwrap();
    assert_eq!(ab, vec![vec![19.0, 22.0], vec![43.0, 50.0]]);
    let atb: Vec<Vec<f64>> = kernels::matrix_product(&a, &b, Transposes::A).unwrap().to_vec2().unwrap();
    assert_eq!(atb, vec![vec![26.0, 30.0], vec![38.0, 44.0]]);
    // Every transpose case on a 3×4 · 4×5 product: values against Candle's matmul of
    // materialised transposes, gradients of Σ r ⊙ C² against finite differences.
    let r = random(&[3, 5], 30, DType::F64);
    for t in [Transposes::NONE, Transposes::A, Transposes::B, Transposes::BOTH] {
        let a = random(if t.a { &[4, 3] } else { &[3, 4] }, 31, DType::F64);
        let b = random(if t.b { &[5, 4] } else { &[4, 5] }, 32, DType::F64);
        let seen = |m: &Tensor, tr: bool| if tr { m.t().unwrap().contiguous().unwrap() } else { m.clone() };
        let candle = seen(&a, t.a).matmul(&seen(&b, t.b)).unwrap();
        assert!(max_diff(&kernels::matrix_product(&a, &b, t).unwrap(), &candle) < 1e-12, "{t:?}");
        let f = |a: &Tensor, b: &Tensor| {
            (kernels::matrix_product(a, b, t).unwrap().sqr().unwrap() * &r).unwrap().sum_all().unwrap()
        };
        let (va, vb) = (Var::from_tensor(&a).unwrap(), Var::from_tensor(&b).unwrap());
        let grads = f(&va, &vb).backward().unwrap();
        let value = |a: &Tensor, b: &Tensor| f(a, b).to_scalar::<f64>().unwrap();
        let what = format!("{t:?}");
        assert_matches_finite_differences(&what, &va, grads.get(&va).unwrap(), |x| value(x, &b), 1e-6, (1e-7, 1e-6));
        assert_matches_finite_differences(&what, &vb, grads.get(&vb).unwrap(), |x| value(&a, x), 1e-6, (1e-7, 1e-6));
    }
    let err = kernels::matrix_product(&a, &random(&[3, 2], 0, DType::F64), Transposes::NONE).unwrap_err();
    assert!(err.to_string().contains("do not fit"), "{err}");
    // The column sum: [[1, 2], [3, 4]] → [4, 6].
    assert_eq!(kernels::column_sum(&a).unwrap().to_vec1::<f64>().unwrap(), vec![4.0, 6.0]);
}

/// `P(x, W, b) = ‖∂f/∂x‖² + ‖∂f/∂W‖² + ‖∂f/∂b‖²` for `f = Σ r ⊙ linear(x, W, b)²`, the
/// inner gradients taken by Candle's `backward` through the linear layer's backward
/// ops, then differentiated again, against finite differences of the same quantity
/// built from Candle's matmul.
#[test]
fn linear_backward_is_differentiable_again() {
    if std::env::var_os("CANDLE_GRAD_DO_NOT_DETACH").is_none() {
        rerun_in_child("kernels::linear_backward_is_differentiable_again", ("CANDLE_GRAD_DO_NOT_DETACH", "1"));
        return;
    }
    let (x, w, b) = (random(&[3, 4], 33, DType::F64), random(&[5, 4], 34, DType::F64), random(&[5], 35, DType::F64));
    let r = random(&[3, 5], 36, DType::F64);
    let penalty = |x: &Tensor, w: &Tensor, b: &Tensor, ours: bool| -> (Tensor, [Var; 3]) {
        let vars = [x, w, b].map(|t| Var::from_tensor(t).unwrap());
        let [vx, vw, vb] = &vars;
        let y = if ours {
            kernels::linear(vx, vw, vb).unwrap()
        } else {
            vx.matmul(&vw.t().unwrap()).unwrap().broadcast_add(vb).unwrap()
        };
        let g = (y.sqr().unwrap() * &r).unwrap().sum_all().unwrap().backward().unwrap();
        let sq = |v: &Var| g.get(v).unwrap().sqr().unwrap().sum_all().unwrap();
        let p = (sq(vx) + sq(vw)).unwrap().add(&sq(vb)).unwrap();
        (p, vars)
    };
    let (p, vars) = penalty(&x, &w, &b, true);
    let grads = p.backward().unwrap();
    let value = |x: &Tensor, w: &Tensor, b: &Tensor| penalty(x, w, b, false).0.to_scalar::<f64>().unwrap();
    let tol = (1e-7, 1e-6);
    assert_matches_finite_differences("x", &vars[0], grads.get(&vars[0]).unwrap(), |t| value(t, &w, &b), 1e-5, tol);
    assert_matches_finite_differences("W", &vars[1], grads.get(&vars[1]).unwrap(), |t| value(&x, t, &b), 1e-5, tol);
    assert_matches_finite_differences("b", &vars[2], grads.get(&vars[2]).unwrap(), |t| value(&x, &w, t), 1e-5, tol);
}

/// Layer norm of `x (B, …)` from Candle's generic ops: the formula, as reference.
fn layer_norm_reference(x: &Tensor, gamma: &Tensor, beta: &Tensor) -> Tensor {
    let flat = x.flatten_from(1).unwrap();
    let centred = flat.broadcast_sub(&flat.mean_keepdim(1).unwrap()).unwrap();
    let sigma = (centred.sqr().unwrap().mean_keepdim(1).unwrap() + 1e-5).unwrap().sqrt().unwrap();
    let xhat = centred.broadcast_div(&sigma).unwrap();
    let y = xhat.broadcast_mul(&gamma.flatten_all().unwrap()).unwrap().broadcast_add(&beta.flatten_all().unwrap());
    y.unwrap().reshape(x.shape()).unwrap()
}

#[test]
fn layer_norm_matches_its_formula_and_finite_differences() {
    // By hand: one sample [1, 2, 3, 6], μ = 3, var = 3.5; γ = 2, β = 1 everywhere.
    let x = Tensor::new(&[[1f64, 2.0, 3.0, 6.0]], &Device::Cpu).unwrap();
    let (gamma, beta) = ((x.ones_like().unwrap() * 2.0).unwrap(), x.ones_like().unwrap());
    let y: Vec<f64> = kernels::layer_norm(&x, &gamma.i(0).unwrap(), &beta.i(0).unwrap(), 1e-5)
        .unwrap()
        .i(0)
        .unwrap()
        .to_vec1()
        .unwrap();
    let sigma = (3.5f64 + 1e-5).sqrt();
    for (got, v) in y.iter().zip([1.0, 2.0, 3.0, 6.0]) {
        assert!((got - (2.0 * (v - 3.0) / sigma + 1.0)).abs() < 1e-12, "{y:?}");
    }
    // (B, C, H, W) with per-element γ, β: values and every gradient against FD.
    let (x, gamma, beta) =
        (random(&[3, 2, 3, 2], 26, DType::F64), random(&[2, 3, 2], 27, DType::F64), random(&[2, 3, 2], 28, DType::F64));
    assert!(
        max_diff(&kernels::layer_norm(&x, &gamma, &beta, 1e-5).unwrap(), &layer_norm_reference(&x, &gamma, &beta))
            < 1e-12
    );
    let r = random(x.dims(), 29, DType::F64);
    let f = |x: &Tensor, g: &Tensor, b: &Tensor| {
        (kernels::layer_norm(x, g, b, 1e-5).unwrap().sqr().unwrap() * &r).unwrap().sum_all().unwrap()
    };
    let (vx, vg, vb) =
        (Var::from_tensor(&x).unwrap(), Var::from_tensor(&gamma).unwrap(), Var::from_tensor(&beta).unwrap());
    let grads = f(&vx, &vg, &vb).backward().unwrap();
    let value = |x: &Tensor, g: &Tensor, b: &Tensor| f(x, g, b).to_scalar::<f64>().unwrap();
    let tol = (1e-7, 1e-6);
    assert_matches_finite_differences("x", &vx, grads.get(&vx).unwrap(), |t| value(t, &gamma, &beta), 1e-6, tol);
    assert_matches_finite_differences("γ", &vg, grads.get(&vg).unwrap(), |t| value(&x, t, &beta), 1e-6, tol);
    assert_matches_finite_differences("β", &vb, grads.get(&vb).unwrap(), |t| value(&x, &gamma, t), 1e-6, tol);
    // A γ that does not fit the sample is an error.
    assert!(kernels::layer_norm(&x, &random(&[5], 0, DType::F64), &beta, 1e-5).is_err());
}

#[test]
fn layer_norm_input_gradient_is_differentiable_again() {
    let (x, g) = (random(&[2, 3, 2, 2], 30, DType::F64), random(&[2, 3, 2, 2], 31, DType::F64));
    // Q(x, g) is the gradient of ⟨g, x̂(x)⟩ in x, taken here by Candle's autodiff of the formula.
    let vx = Var::from_tensor(&x).unwrap();
    let (ones, zeros) = (
        Tensor::ones((3, 2, 2), DType::F64, &Device::Cpu).unwrap(),
        Tensor::zeros((3, 2, 2), DType::F64, &Device::Cpu).unwrap(),
    );
    let inner = (layer_norm_reference(&vx, &ones, &zeros) * &g).unwrap().sum_all().unwrap().backward().unwrap();
    assert!(max_diff(&kernels::layer_norm_input_grad(&x, &g, 1e-5).unwrap(), inner.get(&vx).unwrap()) < 1e-12);
    // Gradients of Σ r ⊙ Q(x, g)² in x and in g against finite differences.
    let r = random(x.dims(), 32, DType::F64);
    let f = |x: &Tensor, g: &Tensor| {
        (kernels::layer_norm_input_grad(x, g, 1e-5).unwrap().sqr().unwrap() * &r).unwrap().sum_all().unwrap()
    };
    let vg = Var::from_tensor(&g).unwrap();
    let grads = f(&vx, &vg).backward().unwrap();
    let value = |x: &Tensor, g: &Tensor| f(x, g).to_scalar::<f64>().unwrap();
    assert_matches_finite_differences("x", &vx, grads.get(&vx).unwrap(), |t| value(t, &g), 1e-6, (1e-7, 1e-6));
    assert_matches_finite_differences("g", &vg, grads.get(&vg).unwrap(), |t| value(&x, t), 1e-6, (1e-7, 1e-6));
}

#[test]
fn fused_optimiser_steps_follow_the_pytorch_formulas() {
    let n = 40_000; // more than one parallel chunk
    let theta0: Vec<f64> = random(&[n], 22, DType::F64).to_vec1().unwrap();
    let grads: Vec<Vec<f64>> = (0..3).map(|s| random(&[n], 30 + s, DType::F64).to_vec1().unwrap()).collect();
    let (lr, b1, b2, eps) = (1e-2, 0.5, 0.9, 1e-8);
    let theta = Tensor::from_vec(theta0.clone(), n, &Device::Cpu).unwrap();
    let (m, v) = (theta.zeros_like().unwrap(), theta.zeros_like().unwrap());
    let (mut t_ref, mut m_ref, mut v_ref) = (theta0.clone(), vec![0.0; n], vec![0.0; n]);
    for (step, g) in grads.iter().enumerate() {
        let t = step as i32 + 1;
        let gt = Tensor::from_vec(g.clone(), n, &Device::Cpu).unwrap();
        kernels::adam_step(&theta, &gt, &m, &v, t as u64, lr, (b1, b2), eps).unwrap();
        for i in 0..n {
            m_ref[i] = b1 * m_ref[i] + (1.0 - b1) * g[i];
            v_ref[i] = b2 * v_ref[i] + (1.0 - b2) * g[i] * g[i];
            let (mh, vh) = (m_ref[i] / (1.0 - b1.powi(t)), v_ref[i] / (1.0 - b2.powi(t)));
            t_ref[i] -= lr * mh / (vh.sqrt() + eps);
        }
    }
    let got: Vec<f64> = theta.to_vec1().unwrap();
    assert!(got.iter().zip(&t_ref).all(|(a, b)| (a - b).abs() < 1e-12));
    assert!(got.iter().zip(&theta0).all(|(a, b)| a != b), "every parameter moved");

    // PyTorch's RMSprop (v₀ = 0, ε outside the root) and TensorFlow 1's (v₀ = 1, ε inside).
    for (alpha, eps, in_root, v0) in [(0.99, eps, false, 0.0), (0.9, 1e-10, true, 1.0)] {
        let theta = Tensor::from_vec(theta0.clone(), n, &Device::Cpu).unwrap();
        let v = Tensor::from_vec(vec![v0; n], n, &Device::Cpu).unwrap();
        let (mut t_ref, mut v_ref) = (theta0.clone(), vec![v0; n]);
        for g in &grads {
            let gt = Tensor::from_vec(g.clone(), n, &Device::Cpu).unwrap();
            kernels::rmsprop_step(&theta, &gt, &v, lr, alpha, (eps, in_root)).unwrap();
            for i in 0..n {
                v_ref[i] = alpha * v_ref[i] + (1.0 - alpha) * g[i] * g[i];
                let root = if in_root { (v_ref[i] + eps).sqrt() } else { v_ref[i].sqrt() + eps };
                t_ref[i] -= lr * g[i] / root;
            }
        }
        let got: Vec<f64> = theta.to_vec1().unwrap();
        assert!(got.iter().zip(&t_ref).all(|(a, b)| (a - b).abs() < 1e-12), "in root: {in_root}");
        let wrong = Tensor::zeros(n + 1, DType::F64, &Device::Cpu).unwrap();
        assert!(kernels::rmsprop_step(&theta, &wrong, &v, lr, alpha, (eps, in_root)).is_err());
    }
}

/// `optimiser_steps` and `clamp_all` refuse what their per-tensor steps refuse, and Adam
/// without first moments (the CUDA path checks the same; `cuda_emulated.rs` its values).
#[test]
fn all_at_once_steps_refuse_bad_operands() {
    use kernels::{StepRule, StepSlot};
    let theta = Tensor::zeros(5, DType::F32, &Device::Cpu).unwrap();
    let (g, wrong) = (theta.ones_like().unwrap(), Tensor::ones(6, DType::F32, &Device::Cpu).unwrap());
    let adam = StepRule::Adam { t: 1, lr: 1e-3, betas: (0.5, 0.9), eps: 1e-8 };
    let slot = StepSlot { theta: &theta, grad: &g, m: None, v: &theta.zeros_like().unwrap() };
    let err = kernels::optimiser_steps(&[slot], adam).unwrap_err().to_string();
    assert!(err.contains("first moments"), "{err}");
    let rms = StepRule::RmsProp { lr: 1e-3, alpha: 0.9, eps: 1e-8, eps_in_root: false };
    assert!(kernels::optimiser_steps(&[StepSlot { grad: &wrong, ..slot }], rms).is_err());
    assert!(kernels::optimiser_steps(&[], adam).is_ok());
    kernels::optimiser_steps(&[slot], rms).unwrap();
    assert!(theta.to_vec1::<f32>().unwrap().iter().all(|&x| x < 0.0), "RMSprop moved θ against g");
    assert!(kernels::clamp_all(&[&theta], 1.0, -1.0).is_err());
    assert!(kernels::clamp_all(&[&theta], f64::NAN, 1.0).is_err());
}

/// Without `CANDLE_GRAD_DO_NOT_DETACH` (Candle's default), the gradients ganzoo's ops
/// hand Candle carry no graph: a weight's would hold its layer's output gradient, and an
/// activation's Candle's zeros and summand, until the backward pass ends or reaches them
/// (docs/performance.md, *Memory*). With it, the tests above differentiate them again.
#[test]
fn gradients_carry_no_graph_by_default() {
    if std::env::var_os("CANDLE_GRAD_DO_NOT_DETACH").is_some() {
        return;
    }
    let var = |dims: &[usize], seed| Var::from_tensor(&random(dims, seed, DType::F32)).unwrap();
    let (x, w1, w2) = (var(&[2, 3, 6, 6], 40), var(&[4, 3, 3, 3], 41), var(&[4, 2, 4, 4], 42));
    let (w3, b3) = (var(&[5, 2 * 12 * 12], 43), var(&[5], 44));
    let (gamma, beta) = (var(&[5], 45), var(&[5], 46));
    let h = kernels::conv2d(&x, &w1, ConvParams::new(1, 1)).unwrap();
    let h = kernels::conv_transpose2d(&h, &w2, ConvParams::new(2, 1), 0).unwrap();
    let h = kernels::linear(&h.flatten_from(1).unwrap(), &w3, &b3).unwrap();
    let y = kernels::layer_norm(&h, &gamma, &beta, 1e-5).unwrap();
    let grads = (y * random(&[2, 5], 47, DType::F32)).unwrap().sum_all().unwrap().backward().unwrap();
    for (name, v) in [("x", &x), ("w1", &w1), ("w2", &w2), ("w3", &w3), ("b3", &b3), ("gamma", &gamma)] {
        let g = grads.get(v).unwrap_or_else(|| panic!("no gradient for {name}"));
        assert!(!g.track_op(), "the gradient of {name} carries a graph");
    }
}

/// `conv2d_bias_leaky_relu` against Candle's convolution, the bias, then `max(z, a·z)`:
/// values, and the gradients of `Σ r ⊙ f²` for the input, kernel and bias, on odd shapes,
/// NCHW and NHWC, slopes 0.2 and 0 (ReLU); a bias of the wrong length and slopes outside
/// [0, 1] refused.
#[test]
fn conv_with_bias_and_leaky_relu_matches_the_three_ops_and_their_gradients() {
    for (i, c) in ODD.iter().filter(|c| c.output_padding().is_some()).enumerate() {
        let x = Var::from_tensor(&c.input(DType::F64)).unwrap();
        let w = Var::from_tensor(&c.kernel(DType::F64)).unwrap();
        let b = Var::from_tensor(&random(&[c.cout], 40 + i as u64, DType::F64)).unwrap();
        for (slope, layout) in [(0.2, ImageLayout::Nchw), (0.0, ImageLayout::Nchw), (0.0, ImageLayout::Nhwc)] {
            let z = c.candle_conv(&x, &w).broadcast_add(&b.reshape((1, c.cout, 1, 1)).unwrap()).unwrap();
            let theirs = z.maximum(&(&z * slope).unwrap()).unwrap();
            let ours = match layout {
                ImageLayout::Nchw => kernels::conv2d_bias_leaky_relu(&x, &w, &b, c.params, slope).unwrap(),
                ImageLayout::Nhwc => {
                    let params = c.params.with_layout(ImageLayout::Nhwc);
                    let x = crate::channels_last::nhwc(&x);
                    crate::channels_last::nchw(&kernels::conv2d_bias_leaky_relu(&x, &w, &b, params, slope).unwrap())
                }
            };
            assert!(max_diff(&ours, &theirs) < 1e-10, "{c:?} slope {slope} {layout:?}");
            let r = random(theirs.dims(), 30 + i as u64, DType::F64);
            let grads = |y: &Tensor| (y.sqr().unwrap() * &r).unwrap().sum_all().unwrap().backward().unwrap();
            let (g_ours, g_theirs) = (grads(&ours), grads(&theirs));
            for (name, v) in [("x", &x), ("w", &w), ("b", &b)] {
                let d = max_diff(g_ours.get(v).unwrap(), g_theirs.get(v).unwrap());
                assert!(d < 1e-9, "{c:?} slope {slope} {layout:?}: {name} gradient differs by {d}");
            }
        }
    }
    let (x, w, c) = (ODD[1].input(DType::F32), ODD[1].kernel(DType::F32), ODD[1].cout);
    for len in [c - 1, c + 1] {
        let e = kernels::conv2d_bias_leaky_relu(
            &x,
            &w,
            &Tensor::zeros(len, DType::F32, &Device::Cpu).unwrap(),
            ODD[1].params,
            0.0,
        );
        assert!(e.unwrap_err().to_string().contains("bias"), "bias of {len}");
    }
    let b = Tensor::zeros(c, DType::F32, &Device::Cpu).unwrap();
    for slope in [-0.1, 1.5, f64::NAN] {
        assert!(kernels::conv2d_bias_leaky_relu(&x, &w, &b, ODD[1].params, slope).is_err(), "slope {slope}");
    }
}

/// [`double_backward_check`] of `conv2d_bias_leaky_relu` (a fixed bias) against Candle's
/// convolution, the bias and `max(z, a·z)`: its backward differentiates again.
#[test]
fn conv_with_bias_and_leaky_relu_differentiates_again() {
    if std::env::var_os("CANDLE_GRAD_DO_NOT_DETACH").is_none() {
        rerun_in_child(
            "kernels::conv_with_bias_and_leaky_relu_differentiates_again",
            ("CANDLE_GRAD_DO_NOT_DETACH", "1"),
        );
        return;
    }
    for c in ODD.iter().filter(|c| c.output_padding().is_some()).take(3) {
        let b = random(&[c.cout], 50, DType::F64);
        let ours = |x: &Tensor, w: &Tensor| kernels::conv2d_bias_leaky_relu(x, w, &b, c.params, 0.2).unwrap();
        let theirs = |x: &Tensor, w: &Tensor| {
            let z = c.candle_conv(x, w).broadcast_add(&b.reshape((1, c.cout, 1, 1)).unwrap()).unwrap();
            z.maximum(&(&z * 0.2).unwrap()).unwrap()
        };
        double_backward_check(&format!("{c:?}"), (&c.input(DType::F64), &c.kernel(DType::F64)), ours, theirs);
    }
}

/// `pool2d` by its definition, pixel by pixel: the window's pixels inside the image,
/// their max or their sum over their count.
fn pool_reference(x: &Tensor, p: kernels::Pool2d) -> Tensor {
    let (n, h, w, c) = x.dims4().unwrap();
    let v = x.to_dtype(DType::F64).unwrap().flatten_all().unwrap().to_vec1::<f64>().unwrap();
    let (oh, ow) = ((h + 2 * p.padding - p.kernel) / p.stride + 1, (w + 2 * p.padding - p.kernel) / p.stride + 1);
    let mut out = Vec::new();
    for (b, oy, ox, ch) in (0..n)
        .flat_map(|b| (0..oh).flat_map(move |oy| (0..ow).flat_map(move |ox| (0..c).map(move |ch| (b, oy, ox, ch)))))
    {
        let mut inside = Vec::new();
        for ky in 0..p.kernel {
            for kx in 0..p.kernel {
                let (y, x) = (
                    (oy * p.stride + ky) as isize - p.padding as isize,
                    (ox * p.stride + kx) as isize - p.padding as isize,
                );
                if (0..h as isize).contains(&y) && (0..w as isize).contains(&x) {
                    inside.push(v[((b * h + y as usize) * w + x as usize) * c + ch]);
                }
            }
        }
        out.push(match p.kind {
            kernels::PoolKind::Max => inside.iter().copied().fold(f64::NEG_INFINITY, f64::max),
            kernels::PoolKind::Mean => inside.iter().sum::<f64>() / inside.len() as f64,
        });
    }
    Tensor::from_vec(out, (n, oh, ow, c), &Device::Cpu).unwrap()
}

/// `pool2d` on a 3×3 image by hand (a mean over the pixels inside the image only, so 3 at
/// a corner, not 12/9), then against [`pool_reference`] for max and mean, strides 1 to 3,
/// padding 0 to 2, odd sizes, f32 and f64.
#[test]
fn pooling_matches_its_definition() {
    use kernels::{Pool2d, PoolKind};
    let pool = |kind, kernel, stride, padding| Pool2d { kind, kernel, stride, padding };
    let x = Tensor::arange(1f64, 10.0, &Device::Cpu).unwrap().reshape((1, 3, 3, 1)).unwrap();
    let values = |p| kernels::pool2d(&x, p).unwrap().flatten_all().unwrap().to_vec1::<f64>().unwrap();
    assert_eq!(values(pool(PoolKind::Mean, 3, 1, 1)), [3.0, 3.5, 4.0, 4.5, 5.0, 5.5, 6.0, 6.5, 7.0]);
    assert_eq!(values(pool(PoolKind::Max, 3, 1, 1)), [5.0, 6.0, 6.0, 8.0, 9.0, 9.0, 8.0, 9.0, 9.0]);
    assert_eq!(values(pool(PoolKind::Max, 3, 2, 0)), [9.0]);
    assert_eq!(values(pool(PoolKind::Mean, 2, 1, 0)), [3.0, 4.0, 6.0, 7.0]);
    for (i, &(kernel, stride, padding)) in
        [(3, 1, 1), (3, 2, 0), (3, 2, 1), (2, 2, 0), (3, 3, 2), (1, 1, 0)].iter().enumerate()
    {
        for kind in [PoolKind::Max, PoolKind::Mean] {
            let p = pool(kind, kernel, stride, padding);
            let x = random(&[2, 7, 6, 19], 60 + i as u64, DType::F64);
            let d = max_diff(&kernels::pool2d(&x, p).unwrap(), &pool_reference(&x, p));
            assert!(d < 1e-14, "{p:?}: f64 differs by {d}");
            let x32 = x.to_dtype(DType::F32).unwrap();
            let d =
                max_diff(&kernels::pool2d(&x32, p).unwrap().to_dtype(DType::F64).unwrap(), &pool_reference(&x32, p));
            assert!(d < 1e-6, "{p:?}: f32 differs by {d}");
        }
    }
}

/// A NaN in a max's window is its max (as in PyTorch); shapes the window does not fit,
/// padding as wide as the window, a zero stride and a tensor that is not an image are errors.
#[test]
fn pooling_propagates_nan_and_refuses_bad_shapes() {
    use kernels::{Pool2d, PoolKind};
    let mut v = vec![0f32; 16];
    v[5] = f32::NAN;
    let x = Tensor::from_vec(v, (1, 4, 4, 1), &Device::Cpu).unwrap();
    let max = Pool2d { kind: PoolKind::Max, kernel: 3, stride: 1, padding: 0 };
    let y = kernels::pool2d(&x, max).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
    assert!(y.iter().all(|v| v.is_nan()), "{y:?}");
    for bad in [
        Pool2d { kernel: 5, ..max },
        Pool2d { padding: 3, ..max },
        Pool2d { stride: 0, ..max },
        Pool2d { kernel: 0, ..max },
        Pool2d { kernel: usize::MAX, padding: usize::MAX - 1, ..max },
    ] {
        let e = kernels::pool2d(&x, bad).unwrap_err().to_string();
        assert!(e.contains("pool2d"), "{bad:?}: {e}");
    }
    assert!(kernels::pool2d(&x.flatten_to(1).unwrap(), max).is_err(), "a 3-D tensor");
    assert!(kernels::pool2d(&x.to_dtype(DType::U8).unwrap(), max).is_err(), "u8");
}
