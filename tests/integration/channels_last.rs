//! The kernels on channels-last (NHWC) images against the same kernels on NCHW
//! images, moved between the layouts by Candle's own permutes: the three convolution
//! primitives (values and gradients, odd shapes and the DCGAN layers), batch norm,
//! and the differentiable layout changes themselves. (The finite-difference checks
//! of the NCHW kernels, and the double-backward check in both layouts, are in
//! `kernels`.)

use candle_core::{DType, Tensor, Var};
use ganzoo::kernels::{self, ImageLayout};

use crate::kernels::{apply, batch_norm_reference, dcgan_layers, max_diff, operands, random, Case, Primitive, ODD};

/// An NCHW tensor as NHWC, by Candle's permute.
pub(crate) fn nhwc(t: &Tensor) -> Tensor {
    t.permute((0, 2, 3, 1)).unwrap().contiguous().unwrap()
}

/// An NHWC tensor as NCHW, by Candle's permute.
pub(crate) fn nchw(t: &Tensor) -> Tensor {
    t.permute((0, 3, 1, 2)).unwrap().contiguous().unwrap()
}

/// `p` on NHWC images: operands moved there, an image result moved back.
fn apply_nhwc(p: Primitive, c: &Case, a: &Tensor, b: &Tensor) -> Tensor {
    let c = Case { params: c.params.with_layout(ImageLayout::Nhwc), ..*c };
    match p {
        Primitive::Conv | Primitive::Transpose => nchw(&apply(p, &c, &nhwc(a), b)),
        Primitive::WeightGrad => apply(p, &c, &nhwc(a), &nhwc(b)),
    }
}

/// Values and both operands' gradients of `Σ r ⊙ p(a, b)²` in the two layouts.
fn compare_layouts(p: Primitive, c: &Case, dtype: DType, tol: f64) {
    let (a, b) = operands(p, c);
    let (a, b) = (a.to_dtype(dtype).unwrap(), b.to_dtype(dtype).unwrap());
    let want = apply(p, c, &a, &b);
    let got = apply_nhwc(p, c, &a, &b);
    let scale = |t: &Tensor| max_diff(t, &t.zeros_like().unwrap()).max(1.0);
    assert!(max_diff(&got, &want) < tol * scale(&want), "{p:?} {c:?}: values differ by {}", max_diff(&got, &want));
    let r = random(want.dims(), 31, dtype);
    let grads = |nhwc: bool| {
        let (va, vb) = (Var::from_tensor(&a).unwrap(), Var::from_tensor(&b).unwrap());
        let y = if nhwc { apply_nhwc(p, c, &va, &vb) } else { apply(p, c, &va, &vb) };
        let g = (y.sqr().unwrap() * &r).unwrap().sum_all().unwrap().backward().unwrap();
        [g.get(&va).unwrap().clone(), g.get(&vb).unwrap().clone()]
    };
    let (ours, theirs) = (grads(true), grads(false));
    for (name, (o, t)) in ["first", "second"].iter().zip(ours.iter().zip(&theirs)) {
        let d = max_diff(o, t);
        assert!(d < tol * scale(t), "{p:?} {c:?}: {name} operand's gradient differs by {d}");
    }
}

const PRIMITIVES: [Primitive; 3] = [Primitive::Conv, Primitive::Transpose, Primitive::WeightGrad];

#[test]
fn nhwc_primitives_match_the_nchw_ones_on_odd_shapes() {
    for c in ODD.iter().filter(|c| c.output_padding().is_some()) {
        for p in PRIMITIVES {
            compare_layouts(p, c, DType::F64, 1e-12);
        }
    }
}

#[test]
fn nhwc_primitives_match_the_nchw_ones_on_the_dcgan_layers_in_f32() {
    for c in dcgan_layers() {
        for p in PRIMITIVES {
            compare_layouts(p, &c, DType::F32, 1e-5);
        }
    }
}

#[test]
fn layout_changes_are_the_permutes_and_each_others_gradients() {
    for dims in [[2usize, 3, 4, 5], [1, 8, 9, 16], [3, 1, 2, 2]] {
        let x = Var::from_tensor(&random(&dims, 32, DType::F64)).unwrap();
        let y = kernels::to_nhwc(&x).unwrap();
        assert_eq!(max_diff(&y, &nhwc(&x)), 0.0, "{dims:?}");
        assert_eq!(max_diff(&kernels::to_nchw(&y).unwrap(), &x), 0.0, "{dims:?}: round trip");
        let f32_round_trip = kernels::to_nchw(&kernels::to_nhwc(&x.to_dtype(DType::F32).unwrap()).unwrap()).unwrap();
        assert_eq!(max_diff(&f32_round_trip, &x.to_dtype(DType::F32).unwrap()), 0.0, "{dims:?}: f32");
        // ∂⟨r, to_nhwc(x)⟩/∂x = to_nchw(r), and again through to_nchw's own gradient.
        let r = random(y.dims(), 33, DType::F64);
        let g = (&y * &r).unwrap().sum_all().unwrap().backward().unwrap();
        assert_eq!(max_diff(g.get(&x).unwrap(), &nchw(&r)), 0.0, "{dims:?}: gradient");
        let v = Var::from_tensor(&nhwc(&x)).unwrap();
        let r2 = random(&dims, 34, DType::F64);
        let g = (kernels::to_nchw(&v).unwrap() * &r2).unwrap().sum_all().unwrap().backward().unwrap();
        assert_eq!(max_diff(g.get(&v).unwrap(), &nhwc(&r2)), 0.0, "{dims:?}: to_nchw's gradient");
    }
    assert!(kernels::to_nhwc(&random(&[2, 3, 4], 0, DType::F64)).is_err());
}

#[test]
fn nhwc_batch_norm_matches_the_nchw_one_and_its_gradients() {
    for dims in [[2usize, 3, 4, 5], [5, 4, 1, 1], [64, 70, 2, 2]] {
        let c = dims[1];
        let x = Var::from_tensor(&random(&dims, 35, DType::F64).affine(3.0, 0.5).unwrap()).unwrap();
        let gamma = Var::from_tensor(&random(&[c], 36, DType::F64)).unwrap();
        let beta = Var::from_tensor(&random(&[c], 37, DType::F64)).unwrap();
        let r = random(&dims, 38, DType::F64);
        for slope in [None, Some(0.2)] {
            let z = batch_norm_reference(&x, &gamma, &beta);
            let want = match slope {
                Some(a) => z.maximum(&(&z * a).unwrap()).unwrap(),
                None => z,
            };
            let (y, mean, var) =
                kernels::batch_norm_with_moments(&nhwc(&x), &gamma, &beta, 1e-5, slope, ImageLayout::Nhwc).unwrap();
            let y = nchw(&y);
            assert!(max_diff(&y, &want) < 1e-10, "{dims:?} {slope:?}");
            let (m, v) = kernels::channel_mean_var(&x).unwrap();
            assert!(max_diff(&mean, &m) < 1e-12 && max_diff(&var, &v) < 1e-12, "{dims:?}: moments");
            let grads = |y: &Tensor| (y.sqr().unwrap() * &r).unwrap().sum_all().unwrap().backward().unwrap();
            let (ours, theirs) = (grads(&y), grads(&want));
            for (name, t) in [("x", &x), ("gamma", &gamma), ("beta", &beta)] {
                let d = max_diff(ours.get(t).unwrap(), theirs.get(t).unwrap());
                assert!(d < 1e-9, "{dims:?} {slope:?}: {name} gradient differs by {d}");
            }
        }
    }
}
