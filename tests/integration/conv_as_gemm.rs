//! Convolutions as Candle's conv2d with ganzoo's gradients (`ganzoo_models::conv_as_gemm`,
//! the CUDA path) against Candle's own convolutions: values and gradients on odd shapes
//! and the DCGAN layers, a gradient of a gradient against finite differences, bad operands.

use candle_core::{DType, Tensor, Var};
use ganzoo::models::conv_as_gemm;

use crate::common::rerun_in_child;
use crate::kernels::{self, case, double_backward_check, max_abs, max_diff, random, Case, ODD};

/// The odd shapes without dilation (models never dilate), and kernels that strides do
/// not divide, strides at and over the kernel, padding over the kernel.
fn cases() -> Vec<Case> {
    let extra = [
        case(2, 2, (7, 6), 3, (3, 3), 2, 0, 1),
        case(1, 2, (9, 9), 2, (5, 5), 2, 2, 1),
        case(2, 3, (8, 8), 2, (4, 4), 4, 0, 1),
        case(1, 2, (5, 6), 2, (2, 2), 3, 1, 1),
        case(1, 1, (5, 5), 2, (3, 3), 1, 3, 1),
    ];
    ODD.iter().copied().filter(|c| c.params.dilation == 1).chain(extra).collect()
}

fn conv(c: &Case, x: &Tensor, w: &Tensor) -> Tensor {
    conv_as_gemm::conv2d(x, w, c.params.stride, c.params.padding).unwrap()
}

fn transposed(c: &Case, y: &Tensor, w: &Tensor, op: usize) -> Tensor {
    conv_as_gemm::conv_transpose2d(y, w, c.params.stride, c.params.padding, op).unwrap()
}

fn candle_transposed(c: &Case, y: &Tensor, w: &Tensor, op: usize) -> Tensor {
    y.conv_transpose2d(w, c.params.padding, op, c.params.stride, 1).unwrap()
}

/// An input of the transposed convolution: the shape of `c`'s output.
fn output_like(c: &Case, dtype: DType, seed: u64) -> Tensor {
    random(c.candle_conv(&c.input(dtype), &c.kernel(dtype)).dims(), seed, dtype)
}

/// Output paddings Candle accepts for `c`'s transposed convolution.
fn output_paddings(c: &Case) -> impl Iterator<Item = usize> {
    0..c.params.stride.min(2)
}

#[test]
fn gemm_convolutions_match_candle_in_f64() {
    for c in cases() {
        let (x, w) = (c.input(DType::F64), c.kernel(DType::F64));
        let theirs = c.candle_conv(&x, &w);
        assert!(max_diff(&conv(&c, &x, &w), &theirs) < 1e-12, "{c:?}");
        assert!(max_abs(&theirs) > 0.1, "{c:?}: degenerate case");
        let y = output_like(&c, DType::F64, 3);
        for op in output_paddings(&c) {
            let theirs = candle_transposed(&c, &y, &w, op);
            assert!(max_diff(&transposed(&c, &y, &w, op), &theirs) < 1e-12, "transposed {c:?}, output padding {op}");
        }
    }
}

/// Gradients of `Σ r ⊙ f(a, w)` with respect to `a` and `w`, `f` ours and Candle's, within `tol`.
fn compare_gradients(
    what: &str,
    (a, w): (&Tensor, &Tensor),
    ours: &dyn Fn(&Tensor, &Tensor) -> Tensor,
    theirs: &dyn Fn(&Tensor, &Tensor) -> Tensor,
    tol: f64,
) {
    let (va, vw) = (Var::from_tensor(a).unwrap(), Var::from_tensor(w).unwrap());
    let grads = |f: &dyn Fn(&Tensor, &Tensor) -> Tensor| {
        let y = f(&va, &vw);
        let r = random(y.dims(), 4, y.dtype());
        (y * r).unwrap().sum_all().unwrap().backward().unwrap()
    };
    let (g_ours, g_theirs) = (grads(ours), grads(theirs));
    for (name, v) in [("input", &va), ("kernel", &vw)] {
        let (a, b) = (g_ours.get(v).unwrap(), g_theirs.get(v).unwrap());
        let d = max_diff(a, b);
        assert!(d < tol * max_abs(b).max(1.0), "{what}: {name} gradient differs by {d}");
    }
}

fn compare_both_gradients(c: &Case, dtype: DType, tol: f64) {
    let (x, w) = (c.input(dtype), c.kernel(dtype));
    // Candle's conv2d backward takes one output padding for both axes: compare where one fits.
    if c.output_padding().is_some() {
        compare_gradients(&format!("{c:?}"), (&x, &w), &|x, w| conv(c, x, w), &|x, w| c.candle_conv(x, w), tol);
    }
    let y = output_like(c, dtype, 5);
    for op in output_paddings(c) {
        let what = format!("transposed {c:?}, output padding {op}");
        let (ours, theirs) =
            (|y: &Tensor, w: &Tensor| transposed(c, y, w, op), |y: &Tensor, w: &Tensor| candle_transposed(c, y, w, op));
        compare_gradients(&what, (&y, &w), &ours, &theirs, tol);
    }
}

#[test]
fn gemm_gradients_match_candle_in_f64() {
    for c in cases() {
        compare_both_gradients(&c, DType::F64, 1e-12);
    }
}

#[test]
fn gemm_matches_candle_on_the_dcgan_layers_in_f32() {
    for c in kernels::dcgan_layers() {
        let (x, w) = (c.input(DType::F32), c.kernel(DType::F32));
        let theirs = c.candle_conv(&x, &w);
        assert!(max_diff(&conv(&c, &x, &w), &theirs) < 1e-4 * max_abs(&theirs).max(1.0), "{c:?}");
        let y = output_like(&c, DType::F32, 5);
        let theirs = candle_transposed(&c, &y, &w, 0);
        assert!(max_diff(&transposed(&c, &y, &w, 0), &theirs) < 1e-4 * max_abs(&theirs).max(1.0), "transposed {c:?}");
        compare_both_gradients(&c, DType::F32, 1e-4);
    }
}

#[test]
fn gemm_gradient_of_a_gradient_matches_finite_differences() {
    // Candle reads CANDLE_GRAD_DO_NOT_DETACH once per thread: without it, re-run this
    // test in a child process of the test binary with it set.
    if std::env::var_os("CANDLE_GRAD_DO_NOT_DETACH").is_none() {
        rerun_in_child(
            "conv_as_gemm::gemm_gradient_of_a_gradient_matches_finite_differences",
            ("CANDLE_GRAD_DO_NOT_DETACH", "1"),
        );
        return;
    }
    for c in cases().iter().filter(|c| c.output_padding().is_some()).take(4) {
        let (x, w) = (c.input(DType::F64), c.kernel(DType::F64));
        double_backward_check(&format!("{c:?}"), (&x, &w), |x, w| conv(c, x, w), |x, w| c.candle_conv(x, w));
        let y = output_like(c, DType::F64, 6);
        let op = c.output_padding().unwrap_or(0);
        let what = format!("transposed {c:?}");
        double_backward_check(&what, (&y, &w), |y, w| transposed(c, y, w, op), |y, w| candle_transposed(c, y, w, op));
    }
}

#[test]
fn gemm_refuses_operands_that_do_not_fit() {
    let x = random(&[1, 2, 5, 5], 1, DType::F32);
    let fits = random(&[3, 2, 3, 3], 2, DType::F32);
    assert!(conv_as_gemm::conv2d(&x, &fits, 1, 0).is_ok());
    for (w, stride, padding) in [
        (random(&[3, 1, 3, 3], 2, DType::F32), 1, 0),
        (fits.clone(), 0, 0),
        (random(&[3, 2, 7, 7], 2, DType::F32), 1, 0),
    ] {
        assert!(conv_as_gemm::conv2d(&x, &w, stride, padding).is_err(), "{:?} stride {stride}", w.dims());
    }
    let t = random(&[2, 2, 3, 3], 2, DType::F32);
    assert!(conv_as_gemm::conv_transpose2d(&x, &t, 0, 0, 0).is_err());
    assert!(conv_as_gemm::conv_transpose2d(&x, &random(&[3, 2, 3, 3], 2, DType::F32), 1, 0, 0).is_err());
    assert!(conv_as_gemm::conv_transpose2d(&random(&[1, 2, 1, 1], 1, DType::F32), &t, 1, 2, 0).is_err());
    assert!(conv_as_gemm::conv2d(&random(&[2, 5], 1, DType::F32), &fits, 1, 0).is_err());
    let empty = Tensor::zeros((3, 2, 0, 3), DType::F32, &candle_core::Device::Cpu).unwrap();
    assert!(conv_as_gemm::conv2d(&x, &empty, 1, 0).is_err());
    assert!(conv_as_gemm::conv_transpose2d(&x, &empty.transpose(0, 1).unwrap(), 1, 0, 0).is_err());
}

/// Without `CANDLE_GRAD_DO_NOT_DETACH`, the weight's gradient carries no graph (it would
/// hold the output gradient to the end of the backward pass), and a constant input (a
/// batch of images) gets no gradient at all.
#[test]
fn gemm_gradients_carry_no_graph_by_default() {
    if std::env::var_os("CANDLE_GRAD_DO_NOT_DETACH").is_some() {
        return;
    }
    let images = random(&[2, 3, 8, 8], 50, DType::F32);
    let w = Var::from_tensor(&random(&[4, 3, 4, 4], 51, DType::F32)).unwrap();
    let y = conv_as_gemm::conv2d(&images, &w, 2, 1).unwrap();
    let grads = (y * random(&[2, 4, 4, 4], 52, DType::F32)).unwrap().sum_all().unwrap().backward().unwrap();
    assert!(!grads.get(&w).unwrap().track_op(), "the weight's gradient carries a graph");
    assert!(grads.get(&images).is_none(), "the images got a gradient");
}
