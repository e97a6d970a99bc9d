//! ganzoo's CUDA kernels (`crates/ganzoo-kernels/src/cuda/kernels.cu`) without a GPU:
//! compiled as host C++ (`emulate.h`, `emulate.cpp`: each block's threads as host
//! threads, `__syncthreads` a barrier) and run on the inputs the CPU kernels get here,
//! so their arithmetic is checked against the CPU's on every machine with a C++
//! compiler. Launch signatures are checked in `cuda_launches.rs`; what only a GPU shows
//! (launches, memory, Candle's storage) is in `cuda.rs`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use candle_core::{DType, Device, Tensor, Var};
use ganzoo_kernels::ImageLayout;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;

const EPS: f64 = 1e-5;

/// The emulator, built once per test run; `None` (with a message) without a C++ compiler,
/// which CI must have.
fn emulator() -> Option<&'static Path> {
    static BUILT: OnceLock<Option<(tempfile::TempDir, PathBuf)>> = OnceLock::new();
    let built = BUILT.get_or_init(|| {
        let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("crates/ganzoo-kernels/src/cuda");
        let dir = tempfile::tempdir().unwrap();
        let exe = dir.path().join("emulate");
        let status = Command::new("c++")
            .args(["-std=c++20", "-O1", "-ffp-contract=off", "-pthread", "-include", "emulate.h", "emulate.cpp", "-o"])
            .arg(&exe)
            .current_dir(&source)
            .status();
        match status {
            Ok(s) => {
                assert!(s.success(), "compiling the CUDA kernels' emulator failed ({s})");
                Some((dir, exe))
            }
            Err(e) => {
                assert!(std::env::var_os("CI").is_none(), "CI must have a C++ compiler (.ci/run installs g++)");
                eprintln!("skipped: no C++ compiler to emulate the CUDA kernels ({e})");
                None
            }
        }
    });
    built.as_ref().map(|(_, exe)| exe.as_path())
}

/// Writes `inputs` as `{name}.f32`, runs `kernel` with `args`, reads `outputs` back.
fn run(kernel: &str, args: &[String], inputs: &[(&str, &[f32])], outputs: &[&str]) -> Option<Vec<Vec<f32>>> {
    let exe = emulator()?;
    let dir = tempfile::tempdir().unwrap();
    for (name, values) in inputs {
        let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        std::fs::write(dir.path().join(format!("{name}.f32")), bytes).unwrap();
    }
    let out = Command::new(exe).arg(dir.path()).arg(kernel).args(args).output().unwrap();
    assert!(out.status.success(), "emulate {kernel}: {}", String::from_utf8_lossy(&out.stderr));
    let read = |name: &&str| {
        let bytes = std::fs::read(dir.path().join(format!("{name}.f32"))).unwrap();
        bytes.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect()
    };
    Some(outputs.iter().map(read).collect())
}

fn normal(rng: &mut ChaCha8Rng, n: usize) -> Vec<f32> {
    (0..n).map(|_| rng.sample(StandardNormal)).collect()
}

fn values(t: &Tensor) -> Vec<f32> {
    t.flatten_all().unwrap().to_vec1().unwrap()
}

/// `max |a − b| / max |b|`.
fn relative(a: &[f32], b: &[f32]) -> f64 {
    assert_eq!(a.len(), b.len());
    let diff = a.iter().zip(b).map(|(x, y)| (x - y).abs() as f64).fold(0.0, f64::max);
    let scale = b.iter().map(|y| y.abs() as f64).fold(0.0, f64::max);
    if diff == 0.0 {
        0.0
    } else {
        diff / scale
    }
}

/// Statistics, output and `[dx | dγ | dβ]` of the three batch-norm kernels against the
/// CPU op's moments, output and gradients of `Σ y·dy`; the running statistics the
/// statistics kernel updates against `moving_average` on the CPU from its rows, bit for bit.
fn batch_norm_matches_the_cpu(shape: [usize; 4], slope: Option<f64>) {
    let [n, c, h, w] = shape;
    let len = n * c * h * w;
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    // Off-centre inputs, as a convolution's outputs are: the variance's cancellation shows.
    let x: Vec<f32> = normal(&mut rng, len).iter().map(|v| 3.0 + 2.0 * v).collect();
    let (gamma, beta, dy) = (normal(&mut rng, c), normal(&mut rng, c), normal(&mut rng, len));
    let (running_mean, running_var) =
        (normal(&mut rng, c), normal(&mut rng, c).iter().map(|v| v * v).collect::<Vec<f32>>());
    let (keep, unbias) = (0.9, (n * h * w) as f64 / (n * h * w - 1) as f64);
    let args = [n, c, h * w].map(|v| v.to_string()).into_iter().chain([
        EPS.to_string(),
        slope.unwrap_or(0.0).to_string(),
        (slope.is_some() as i32).to_string(),
        format!("{keep:e}"),
        format!("{unbias:e}"),
    ]);
    let inputs = [
        ("x", &x[..]),
        ("gamma", &gamma[..]),
        ("beta", &beta[..]),
        ("dy", &dy[..]),
        ("running_mean", &running_mean[..]),
        ("running_var", &running_var[..]),
    ];
    let names = ["stats", "y", "grad", "running_mean", "running_var"];
    let Some(out) = run("batch_norm", &args.collect::<Vec<_>>(), &inputs, &names) else { return };
    let row = |r: usize| Tensor::from_slice(&out[0][r * c..(r + 1) * c], c, &Device::Cpu).unwrap();
    for (running, (r, scale), got) in [(&running_mean, (0, 1.0), &out[3]), (&running_var, (1, unbias), &out[4])] {
        let expected = Tensor::from_slice(running, c, &Device::Cpu).unwrap();
        ganzoo_kernels::moving_average(&expected, &row(r), keep, scale).unwrap();
        assert_eq!(got, &values(&expected), "running statistics row {r}");
        assert!(got != running, "row {r} moved");
    }

    let cpu = Device::Cpu;
    let var = |v: &[f32], dims: &[usize]| Var::from_tensor(&Tensor::from_slice(v, dims, &cpu).unwrap()).unwrap();
    let (xv, gv, bv) = (var(&x, &shape), var(&gamma, &[c]), var(&beta, &[c]));
    let (y, mean, variance) =
        ganzoo_kernels::batch_norm_with_moments(&xv, &gv, &bv, EPS, slope, ImageLayout::Nchw).unwrap();
    let upstream = Tensor::from_slice(&dy, &shape[..], &cpu).unwrap();
    let grads = (&y * &upstream).unwrap().sum_all().unwrap().backward().unwrap();
    let grad = |v: &Var| values(grads.get(v).unwrap());
    let expected_grad: Vec<f32> = [grad(&xv), grad(&gv), grad(&bv)].concat();

    let (stats, y_gpu, grad_gpu) = (&out[0], &out[1], &out[2]);
    let case = format!("{shape:?}, slope {slope:?}");
    assert!(relative(&stats[..c], &values(&mean)) <= 1e-6, "mean {case}");
    assert!(relative(&stats[c..2 * c], &values(&variance.to_dtype(DType::F32).unwrap())) <= 1e-6, "variance {case}");
    assert!(relative(y_gpu, &values(&y)) <= 1e-6, "y {case}: {}", relative(y_gpu, &values(&y)));
    for (name, range) in [("dx", 0..len), ("dγ", len..len + c), ("dβ", len + c..len + 2 * c)] {
        let e = relative(&grad_gpu[range.clone()], &expected_grad[range]);
        assert!(e <= 1e-6, "{name} {case}: {e}");
    }
}

#[test]
fn batch_norm_kernels_compute_the_cpu_ops() {
    // Fewer values per channel than a block has threads, then more (they stride).
    batch_norm_matches_the_cpu([3, 5, 3, 7], None);
    batch_norm_matches_the_cpu([4, 3, 20, 15], Some(0.2));
    batch_norm_matches_the_cpu([2, 4, 9, 9], Some(0.0));
}

#[test]
fn a_wrong_batch_norm_kernel_would_be_caught() {
    // The comparison itself: the emulator's output against a CPU batch norm with another ε.
    let [n, c, h, w] = [2, 3, 4, 4];
    let mut rng = ChaCha8Rng::seed_from_u64(9);
    let (x, gamma, beta) = (normal(&mut rng, n * c * h * w), normal(&mut rng, c), normal(&mut rng, c));
    let dy = normal(&mut rng, x.len());
    let args: Vec<String> =
        [n, c, h * w].iter().map(|v| v.to_string()).chain(["0.5".into(), "0".into(), "0".into()]).collect();
    let inputs = [("x", &x[..]), ("gamma", &gamma[..]), ("beta", &beta[..]), ("dy", &dy[..])];
    let Some(out) = run("batch_norm", &args, &inputs, &["y"]) else { return };
    let t = |v: &[f32], d: &[usize]| Tensor::from_slice(v, d, &Device::Cpu).unwrap();
    let y = ganzoo_kernels::batch_norm(&t(&x, &[n, c, h, w]), &t(&gamma, &[c]), &t(&beta, &[c]), EPS).unwrap();
    assert!(relative(&out[0], &values(&y)) > 1e-3);
}

/// The four layer-norm kernels against the CPU ops: the output, the affine gradients and
/// the input gradient of `Σ y·dy`, `Q(x, g)` and its gradient in `x` for `Σ Q·h`.
fn layer_norm_matches_the_cpu(b: usize, n: usize) {
    let mut rng = ChaCha8Rng::seed_from_u64(8);
    let x: Vec<f32> = normal(&mut rng, b * n).iter().map(|v| 2.0 + 3.0 * v).collect();
    let (gamma, beta) = (normal(&mut rng, n), normal(&mut rng, n));
    let (dy, g, h) = (normal(&mut rng, b * n), normal(&mut rng, b * n), normal(&mut rng, b * n));
    let args = [b.to_string(), n.to_string(), EPS.to_string()];
    let inputs =
        [("x", &x[..]), ("gamma", &gamma[..]), ("beta", &beta[..]), ("dy", &dy[..]), ("g", &g[..]), ("h", &h[..])];
    let Some(out) = run("layer_norm", &args, &inputs, &["y", "affine", "q", "second"]) else { return };

    let cpu = Device::Cpu;
    let var = |v: &[f32], dims: &[usize]| Var::from_tensor(&Tensor::from_slice(v, dims, &cpu).unwrap()).unwrap();
    let t = |v: &[f32]| Tensor::from_slice(v, (b, n), &cpu).unwrap();
    let (xv, gv, bv) = (var(&x, &[b, n]), var(&gamma, &[n]), var(&beta, &[n]));
    let y = ganzoo_kernels::layer_norm(&xv, &gv, &bv, EPS).unwrap();
    let grads = (&y * t(&dy)).unwrap().sum_all().unwrap().backward().unwrap();
    let affine = [values(grads.get(&gv).unwrap()), values(grads.get(&bv).unwrap())].concat();
    let gq = var(&g, &[b, n]);
    let q = ganzoo_kernels::layer_norm_input_grad(&xv, &gq, EPS).unwrap();
    let second = values((&q * t(&h)).unwrap().sum_all().unwrap().backward().unwrap().get(&xv).unwrap());

    for (name, gpu, cpu) in [
        ("y", &out[0], values(&y)),
        ("dγ | dβ", &out[1], affine),
        ("Q", &out[2], values(&q)),
        ("∂Q/∂x", &out[3], second),
    ] {
        let e = relative(gpu, &cpu);
        assert!(e <= 1e-6, "{name} ({b}, {n}): {e}");
    }
}

#[test]
fn layer_norm_kernels_compute_the_cpu_ops() {
    // Fewer values per sample than a block has threads, then more (they stride).
    layer_norm_matches_the_cpu(3, 100);
    layer_norm_matches_the_cpu(2, 1500);
}

#[test]
fn leaky_relu_kernel_is_the_cpu_ops_bit_for_bit() {
    let mut rng = ChaCha8Rng::seed_from_u64(6);
    let len = 1500;
    let (x, g) = (normal(&mut rng, len), normal(&mut rng, len));
    let cpu = |v: &[f32]| Tensor::from_slice(v, len, &Device::Cpu).unwrap();
    for slope in [0.2, 0.0] {
        let args = [len.to_string(), slope.to_string()];
        let Some(forward) = run("leaky_relu", &args, &[("x", &x), ("g", &x)], &["out"]) else { return };
        assert_eq!(forward[0], values(&ganzoo_kernels::leaky_relu(&cpu(&x), slope).unwrap()));
        let backward = run("leaky_relu", &args, &[("x", &x), ("g", &g)], &["out"]).unwrap();
        assert_eq!(backward[0], values(&ganzoo_kernels::leaky_relu_grad(&cpu(&x), &cpu(&g), slope).unwrap()));
    }
}

fn moving_average(d: &[f32], g: &[f32], (beta, scale): (f64, f64), square: bool) -> Option<Vec<f32>> {
    let args = [d.len().to_string(), beta.to_string(), format!("{scale:e}"), (square as i32).to_string()];
    Some(run("moving_average", &args, &[("d", d), ("g", g)], &["d"])?.remove(0))
}

fn scaled_step(theta: &[f32], a: &[f32], b: &[f32], scalars: [f64; 4], eps_in_root: bool) -> Option<Vec<f32>> {
    let args: Vec<String> = std::iter::once(theta.len().to_string())
        .chain(scalars.iter().map(|s| format!("{s:e}")))
        .chain([(eps_in_root as i32).to_string()])
        .collect();
    Some(run("scaled_step", &args, &[("theta", theta), ("a", a), ("b", b)], &["theta"])?.remove(0))
}

#[test]
fn optimiser_kernels_are_the_cpu_steps_bit_for_bit() {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let len = 1300;
    let (theta, g, m) = (normal(&mut rng, len), normal(&mut rng, len), normal(&mut rng, len));
    let v: Vec<f32> = normal(&mut rng, len).iter().map(|x| x * x).collect();
    let cpu = |x: &[f32]| Tensor::from_slice(x, len, &Device::Cpu).unwrap();

    // Adam at step 3 (DCGAN's lr and β): the moving averages, then the scaled step, as
    // `adam_step` launches them.
    let (lr, betas, t) = (2e-4, (0.5, 0.999), 3);
    let Some(m1) = moving_average(&m, &g, (betas.0, 1.0), false) else { return };
    let v1 = moving_average(&v, &g, (betas.1, 1.0), true).unwrap();
    let (c1, c2) = (1.0 - f64::powi(betas.0, t), 1.0 - f64::powi(betas.1, t));
    let theta1 = scaled_step(&theta, &m1, &v1, [lr, 1.0 / c1, 1.0 / c2, 1e-8], false).unwrap();
    let (tc, mc, vc) = (cpu(&theta), cpu(&m), cpu(&v));
    ganzoo_kernels::adam_step(&tc, &cpu(&g), &mc, &vc, t as u64, lr, betas, 1e-8).unwrap();
    assert_eq!((theta1, m1, v1), (values(&tc), values(&mc), values(&vc)));

    // RMSprop as TensorFlow (ε inside the root) and as PyTorch.
    for (alpha, eps, in_root) in [(0.9, 1e-10, true), (0.99, 1e-8, false)] {
        let v1 = moving_average(&v, &g, (alpha, 1.0), true).unwrap();
        let theta1 = scaled_step(&theta, &g, &v1, [5e-5, 1.0, 1.0, eps], in_root).unwrap();
        let (tc, vc) = (cpu(&theta), cpu(&v));
        ganzoo_kernels::rmsprop_step(&tc, &cpu(&g), &vc, 5e-5, alpha, (eps, in_root)).unwrap();
        assert_eq!((theta1, v1), (values(&tc), values(&vc)), "α {alpha}");
    }

    // Batch norm's running variance: momentum 0.1, unbiased by n/(n − 1).
    let unbias = 1200.0 / 1199.0;
    let running = moving_average(&v, &m, (0.9, unbias), false).unwrap();
    let vc = cpu(&v);
    ganzoo_kernels::moving_average(&vc, &cpu(&m), 0.9, unbias).unwrap();
    assert_eq!(running, values(&vc));
}

#[test]
fn clamp_kernel_is_the_cpu_ops_bit_for_bit() {
    let mut rng = ChaCha8Rng::seed_from_u64(10);
    let mut v: Vec<f32> = normal(&mut rng, 1100).iter().map(|x| x * 0.02).collect();
    v[7] = f32::NAN;
    let args = [v.len().to_string(), "-0.01".into(), "0.01".into()];
    let Some(out) = run("clamp", &args, &[("v", &v)], &["v"]) else { return };
    let cpu = Tensor::from_slice(&v, v.len(), &Device::Cpu).unwrap();
    ganzoo_kernels::clamp_in_place(&cpu, -0.01, 0.01).unwrap();
    let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    assert_eq!(bits(&out[0]), bits(&values(&cpu)));
    assert!(out[0][7].is_nan() && out[0].iter().filter(|x| x.abs() == 0.01).count() > 100);
}

/// `gz_multi_step` and `gz_multi_clamp` (one launch for all of an optimiser's tensors, each
/// reached through the address table) on tensors of several sizes — empty, one value, and
/// spanning the emulator's blocks — against `optimiser_steps` / `clamp_all` on the CPU,
/// which are `adam_step`, `rmsprop_step`, `clamp_in_place` per tensor: bit for bit.
#[test]
fn multi_tensor_kernels_are_the_cpu_steps_bit_for_bit() {
    use ganzoo_kernels::{StepRule, StepSlot};
    let lens = [700, 0, 1, 257, 3, 1300];
    let total: usize = lens.iter().sum();
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    let (theta, g, m) = (normal(&mut rng, total), normal(&mut rng, total), normal(&mut rng, total));
    let v: Vec<f32> = normal(&mut rng, total).iter().map(|x| x * x).collect();
    let split = |x: &[f32]| -> Vec<Tensor> {
        let mut start = 0;
        (lens.iter())
            .map(|&n| {
                start += n;
                Tensor::from_slice(&x[start - n..start], n, &Device::Cpu).unwrap()
            })
            .collect()
    };
    let joined = |ts: &[Tensor]| ts.iter().flat_map(values).collect::<Vec<f32>>();
    let table_args = std::iter::once(lens.len().to_string()).chain(lens.iter().map(|n| n.to_string()));
    let rules = [
        StepRule::Adam { t: 3, lr: 2e-4, betas: (0.5, 0.999), eps: 1e-8 },
        StepRule::RmsProp { lr: 5e-5, alpha: 0.9, eps: 1e-10, eps_in_root: true },
        StepRule::RmsProp { lr: 5e-5, alpha: 0.99, eps: 1e-8, eps_in_root: false },
    ];
    for rule in rules {
        // The kernel's scalars as `cuda/multi_tensor.rs` derives them.
        let (adam, scalars, in_root) = match rule {
            StepRule::Adam { t, lr, betas: (b1, b2), eps } => {
                let (c1, c2) = (1.0 - f64::powi(b1, t as i32), 1.0 - f64::powi(b2, t as i32));
                (true, [lr, b1, b2, 1.0 / c1, 1.0 / c2, eps], false)
            }
            StepRule::RmsProp { lr, alpha, eps, eps_in_root } => (false, [lr, 0.0, alpha, 1.0, 1.0, eps], eps_in_root),
        };
        let args: Vec<String> = (table_args.clone())
            .chain(scalars.iter().map(|s| format!("{s:e}")))
            .chain([(in_root as i32).to_string(), (adam as i32).to_string()])
            .collect();
        let inputs = [("theta", &theta[..]), ("g", &g[..]), ("m", &m[..]), ("v", &v[..])];
        let Some(out) = run("multi_step", &args, &inputs, &["theta", "m", "v"]) else { return };
        let (ts, gs, ms, vs) = (split(&theta), split(&g), split(&m), split(&v));
        let slots: Vec<StepSlot> = (0..lens.len())
            .map(|k| StepSlot { theta: &ts[k], grad: &gs[k], m: adam.then(|| &ms[k]), v: &vs[k] })
            .collect();
        ganzoo_kernels::optimiser_steps(&slots, rule).unwrap();
        assert_eq!(out, [joined(&ts), joined(&ms), joined(&vs)], "{rule:?}");
        assert!(joined(&ts) != theta && (adam || joined(&ms) == m), "{rule:?}: θ moved, m only with Adam");
    }

    let mut w: Vec<f32> = normal(&mut rng, total).iter().map(|x| x * 0.02).collect();
    w[800] = f32::NAN;
    let args: Vec<String> = table_args.chain(["-0.01".into(), "0.01".into()]).collect();
    let out = run("multi_clamp", &args, &[("v", &w)], &["v"]).unwrap().remove(0);
    let ws = split(&w);
    ganzoo_kernels::clamp_all(&ws.iter().collect::<Vec<_>>(), -0.01, 0.01).unwrap();
    let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    assert_eq!(bits(&out), bits(&joined(&ws)));
    assert!(out[800].is_nan() && out.iter().filter(|x| x.abs() == 0.01).count() > 500);
}

/// `gz_im2col` and `gz_col2im` through the convolutions they serve, in each of their
/// three layouts: the kernel times the `(N, P, L)` columns is the CPU kernels' `conv2d`,
/// the `(N, L, P)` and `(P, N, L)` columns are those entries reordered, and `Wᵀ·dy`
/// folded from any layout is the CPU's transposed convolution.
fn columns_match_the_cpu(x_dims: [usize; 4], w_dims: [usize; 4], params: ganzoo_kernels::ConvParams) {
    let ([n, c, h, w], [o, _, kh, kw]) = (x_dims, w_dims);
    let out_side = |i: usize, k: usize| (i + 2 * params.padding - params.dilation * (k - 1) - 1) / params.stride + 1;
    let (oh, ow) = (out_side(h, kh), out_side(w, kw));
    let (p, l) = (c * kh * kw, oh * ow);
    // Where sample s's entry for patch row q and pixel px lies in each layout.
    let index = |s: usize, q: usize, px: usize| [(s * p + q) * l + px, (s * l + px) * p + q, (q * n + s) * l + px];
    let every = || (0..n).flat_map(|s| (0..p).flat_map(move |q| (0..l).map(move |px| (s, q, px))));
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    let (x, kernel, dy) = (normal(&mut rng, n * c * h * w), normal(&mut rng, o * p), normal(&mut rng, n * o * l));
    // Wᵀ·dy per sample (P, L), in f64, in each layout.
    let mut folded_in = vec![vec![0f32; n * p * l]; 3];
    for (s, q, px) in every() {
        let sum: f64 = (0..o).map(|k| kernel[k * p + q] as f64 * dy[(s * o + k) * l + px] as f64).sum();
        for (layout, at) in index(s, q, px).into_iter().enumerate() {
            folded_in[layout][at] = sum as f32;
        }
    }
    let sizes = [n, c, h, w, kh, kw, oh, ow, params.stride, params.padding, params.dilation];
    let args: Vec<String> = sizes.iter().map(|v| v.to_string()).collect();
    let inputs = [("x", &x[..]), ("c0", &folded_in[0][..]), ("c1", &folded_in[1][..]), ("c2", &folded_in[2][..])];
    let outputs = ["cols0", "cols1", "cols2", "folded0", "folded1", "folded2"];
    let Some(out) = run("columns", &args, &inputs, &outputs) else { return };
    let (cols, folded) = (&out[0], &out[3..]);

    for layout in 1..3 {
        let reordered: Vec<f32> = every().map(|(s, q, px)| out[layout][index(s, q, px)[layout]]).collect();
        assert_eq!(&reordered, cols, "layout {layout}'s columns against (N, P, L)'s");
    }
    let mut y = vec![0f32; n * o * l];
    for (s, k, px) in (0..n).flat_map(|s| (0..o).flat_map(move |k| (0..l).map(move |px| (s, k, px)))) {
        let sum: f64 = (0..p).map(|q| kernel[k * p + q] as f64 * cols[(s * p + q) * l + px] as f64).sum();
        y[(s * o + k) * l + px] = sum as f32;
    }
    let cpu = |v: &[f32], dims: &[usize]| Tensor::from_slice(v, dims, &Device::Cpu).unwrap();
    let (xt, wt, dyt) = (cpu(&x, &x_dims), cpu(&kernel, &w_dims), cpu(&dy, &[n, o, oh, ow]));
    let case = format!("{x_dims:?} {w_dims:?} {params:?}");
    let e = relative(&y, &values(&ganzoo_kernels::conv2d(&xt, &wt, params).unwrap()));
    assert!(e <= 1e-5, "W·im2col(x) against conv2d, {case}: {e}");
    let want = values(&ganzoo_kernels::conv_transpose2d_to(&dyt, &wt, params, (h, w)).unwrap());
    for (layout, folded) in folded.iter().enumerate() {
        let e = relative(folded, &want);
        assert!(e <= 1e-5, "col2im(Wᵀ·dy) from layout {layout} against conv_transpose2d, {case}: {e}");
    }
    assert!(folded[1..].iter().all(|f| f == &folded[0]), "one sum order whatever the layout");
}

#[test]
fn column_kernels_unfold_and_fold_as_the_cpu_convolutions() {
    use ganzoo_kernels::ConvParams;
    // DCGAN's stride-2 4×4 layers, a 1×1 input spread over the kernel (the generator's
    // first layer's adjoint), odd sizes with dilation, and more values than the grid's threads.
    columns_match_the_cpu([2, 3, 8, 8], [4, 3, 4, 4], ConvParams::new(2, 1));
    columns_match_the_cpu([3, 5, 4, 4], [2, 5, 4, 4], ConvParams::new(1, 0));
    columns_match_the_cpu([2, 2, 9, 7], [3, 2, 3, 2], ConvParams { dilation: 2, ..ConvParams::new(3, 2) });
    columns_match_the_cpu([4, 8, 16, 16], [6, 8, 4, 4], ConvParams::new(2, 1));
}
