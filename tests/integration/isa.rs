//! Every kernel at every instruction-set level this CPU has (`GANZOO_ISA`'s levels),
//! against the same kernel at the baseline: the elementwise, norm and optimiser loops
//! and the transposes bit for bit (no level reorders their arithmetic), the GEMM-based
//! ops within rounding (each level's GEMM blocks and fuses its sums differently).
//!
//! The level is one setting for the whole process, so each test switching it runs in a
//! child process of its own: tests running beside it in this binary that compare two
//! runs bit for bit (resuming, for one) must not see it change under them.

use candle_core::{DType, Device, Tensor, Var};
use ganzoo::kernels::isa::{self, Isa};
use ganzoo::kernels::{self, ConvParams, ImageLayout, Transposes};

use crate::common::rerun_in_child;
use crate::kernels::{dcgan_layers, max_diff, random, Case, ODD};

/// Runs `body` in a child process that runs only the test `name` (see the module doc).
fn alone(name: &str, body: impl FnOnce()) {
    if std::env::var_os("GANZOO_ISA_TEST_CHILD").is_some() {
        body();
    } else {
        rerun_in_child(&format!("isa::{name}"), ("GANZOO_ISA_TEST_CHILD", "1"));
    }
}

/// `f`'s tensors at every level, each compared with the baseline's: equal when
/// `exact`, else within `rel` of the largest value. Returns each level and its largest
/// difference from the baseline.
fn at_every_level(what: &str, exact: bool, rel: f64, f: impl Fn() -> Vec<Tensor>) -> Vec<(Isa, f64)> {
    let reference = isa::with_isa(Isa::Scalar, &f);
    let mut levels = vec![(Isa::Scalar, 0.0)];
    for &level in &Isa::available()[1..] {
        let mut largest = 0.0f64;
        let got = isa::with_isa(level, &f);
        for (i, (a, b)) in got.iter().zip(&reference).enumerate() {
            let scale = b.abs().unwrap().flatten_all().unwrap().max(0).unwrap();
            let scale = scale.to_dtype(DType::F64).unwrap().to_scalar::<f64>().unwrap().max(1.0);
            let d = max_diff(a, b);
            largest = largest.max(d);
            if exact {
                assert_eq!(d, 0.0, "{what}, output {i}: {level} differs from scalar");
            } else {
                assert!(d <= rel * scale, "{what}, output {i}: {level} differs from scalar by {d:e} (scale {scale})");
            }
        }
        levels.push((level, largest));
    }
    levels
}

fn convolutions(c: &Case, dtype: DType) -> Vec<Tensor> {
    let x = random(&[c.n, c.cin, c.h, c.w], 1, dtype);
    let w = random(&[c.cout, c.cin, c.kh, c.kw], 2, dtype);
    let mut out = Vec::new();
    for layout in [ImageLayout::Nchw, ImageLayout::Nhwc] {
        let p = ConvParams { layout, ..c.params };
        let xl = if layout == ImageLayout::Nhwc { kernels::to_nhwc(&x).unwrap() } else { x.clone() };
        let y = kernels::conv2d(&xl, &w, p).unwrap();
        let dy = random(y.dims(), 3, dtype);
        out.push(kernels::conv_transpose2d_to(&dy, &w, p, (c.h, c.w)).unwrap());
        out.push(kernels::conv2d_weight_grad(&xl, &dy, p, (c.kh, c.kw)).unwrap());
        out.push(y);
    }
    out
}

#[test]
fn convolutions_agree_at_every_level() {
    alone("convolutions_agree_at_every_level", || {
        for c in ODD.iter().chain(&dcgan_layers()[..3]) {
            at_every_level(&format!("conv f32 {c:?}"), false, 1e-5, || convolutions(c, DType::F32));
        }
        for c in &ODD[..3] {
            at_every_level(&format!("conv f64 {c:?}"), false, 1e-13, || convolutions(c, DType::F64));
        }
    });
}

#[test]
fn matrix_products_agree_at_every_level() {
    alone("matrix_products_agree_at_every_level", || {
        for dtype in [DType::F32, DType::F64] {
            let rel = if dtype == DType::F32 { 1e-5 } else { 1e-13 };
            let levels = at_every_level(&format!("products {dtype:?}"), false, rel, || {
                let (a, b) = (random(&[37, 129], 4, dtype), random(&[129, 65], 5, dtype));
                let bias = random(&[65], 6, dtype);
                let x = random(&[65, 129], 7, dtype);
                vec![
                    kernels::matrix_product(&a, &b, Transposes::NONE).unwrap(),
                    kernels::matrix_product(&b, &b, Transposes { a: true, b: false }).unwrap(),
                    kernels::linear(&a, &x, &bias).unwrap(),
                ]
            });
            // Each level's GEMM really ran: its fused, blocked sums round differently.
            for (level, d) in &levels[1..] {
                assert!(*d > 0.0, "{level} gave the scalar GEMM's results bit for bit ({dtype:?})");
            }
        }
    });
}

#[test]
fn norms_activations_and_transposes_are_identical_at_every_level() {
    alone("norms_activations_and_transposes_are_identical_at_every_level", || {
        let levels = at_every_level("elementwise", true, 0.0, || {
            let x = Var::from_tensor(&random(&[8, 16, 9, 7], 8, DType::F32)).unwrap();
            let (gamma, beta) = (random(&[16], 9, DType::F32), random(&[16], 10, DType::F32));
            let r = random(&[8, 16, 9, 7], 11, DType::F32);
            let bn = kernels::batch_norm(&x, &gamma, &beta, 1e-5).unwrap();
            let bn_grad = (&bn * &r).unwrap().sum_all().unwrap().backward().unwrap();
            let bn_relu = kernels::batch_norm_leaky_relu(&x, &gamma, &beta, 1e-5, 0.2).unwrap();
            let flat = x.flatten_from(1).unwrap();
            let (g2, b2) =
                (random(&[flat.dim(1).unwrap()], 12, DType::F32), random(&[flat.dim(1).unwrap()], 13, DType::F32));
            let ln = kernels::layer_norm(&flat, &g2, &b2, 1e-5).unwrap();
            let ln_in = kernels::layer_norm_input_grad(&flat, &r.flatten_from(1).unwrap(), 1e-5).unwrap();
            let t = kernels::tanh(&x).unwrap();
            vec![
                bn,
                bn_grad.get(&x).unwrap().clone(),
                bn_relu,
                ln,
                ln_in,
                kernels::leaky_relu(&x, 0.2).unwrap(),
                kernels::leaky_relu_grad(&x, &r, 0.2).unwrap(),
                kernels::tanh_grad(&t, &r).unwrap(),
                t,
                kernels::to_nhwc(&x).unwrap(),
                kernels::to_nchw(&r.permute((0, 2, 3, 1)).unwrap().contiguous().unwrap()).unwrap(),
            ]
        });
        assert_eq!(levels[0].0, Isa::Scalar);
    });
}

#[test]
fn optimiser_steps_are_identical_at_every_level() {
    alone("optimiser_steps_are_identical_at_every_level", || {
        at_every_level("optimisers", true, 0.0, || {
            let n = 40_000;
            let theta =
                Tensor::from_vec(random(&[n], 14, DType::F32).to_vec1::<f32>().unwrap(), n, &Device::Cpu).unwrap();
            let (m, v) = (theta.zeros_like().unwrap(), theta.ones_like().unwrap());
            let g = random(&[n], 15, DType::F32);
            kernels::adam_step(&theta, &g, &m, &v, 3, 1e-3, (0.5, 0.9), 1e-8).unwrap();
            let theta2 = theta.copy().unwrap();
            let v2 = v.copy().unwrap();
            kernels::rmsprop_step(&theta2, &g, &v2, 5e-5, 0.9, (1e-10, true)).unwrap();
            vec![theta, m, v, theta2, v2]
        });
    });
}

#[test]
fn ganzoo_isa_names_a_level_or_is_refused() {
    alone("ganzoo_isa_names_a_level_or_is_refused", || {
        // What `GANZOO_ISA` would choose in this process (unset in tests unless the user set it).
        match std::env::var("GANZOO_ISA") {
            Ok(s) if !s.is_empty() => {
                assert_eq!(isa::from_env().is_ok(), s.parse::<Isa>().is_ok_and(|i| i.supported()))
            }
            _ => assert_eq!(isa::from_env(), Ok(Isa::preferred())),
        }
        isa::with_isa(Isa::Scalar, || assert_eq!(isa::set(Isa::Avx512).is_ok(), Isa::Avx512.supported()));
    });
}
