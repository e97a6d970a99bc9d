//! The WGAN-GP penalty: its gradient with respect to every critic weight (a
//! second-order derivative) against central finite differences in f64, through the
//! same `GradientPenalty::penalty` the trainer calls.

use candle_core::{DType, Device, Tensor};
use ganzoo::losses::penalty_check::{finite_differences, mixed_precision, BF16_TOLERANCE};
use ganzoo::losses::GradientPenalty;
use ganzoo::models::{kernel_backend, Activation, DcganConfig, KernelBackend, MlpConfig, Network, Norm, ParamStore};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;

use crate::common::rerun_in_child;

/// `N(mean, 1)` values from a fixed seed. (Candle's `randn` draws from an unseeded
/// generator: with it, now and then a bumped weight moved a pre-activation across a
/// ReLU kink, where the penalty — a function of the ReLU masks — jumps, and the
/// central difference across the jump failed the check in one run out of many.)
fn normal(shape: &[usize], mean: f64, seed: u64) -> Tensor {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let v: Vec<f64> = (0..shape.iter().product()).map(|_| mean + rng.sample::<f64, _>(StandardNormal)).collect();
    Tensor::from_vec(v, shape, &Device::Cpu).unwrap()
}

/// Gives every parameter a random value of scale `scale`, so no term is trivially small.
fn randomize(store: &ParamStore, scale: f64) {
    for (i, (_, var)) in store.trainable().into_iter().enumerate() {
        let v = (normal(var.dims(), 0.0, 100 + i as u64) * scale).unwrap();
        var.set(&v).unwrap();
    }
}

/// `ganzoo_losses::penalty_check` (what `bench --parity` runs on a GPU) on the CPU.
fn check_against_finite_differences(critic: &Network, store: &ParamStore, real: &Tensor, fake: &Tensor) {
    let r = finite_differences(critic, store, real, fake).unwrap();
    assert!(r.missing.is_empty(), "no penalty gradient (detached or partial): {:?}", r.missing);
    assert!(r.worst < 1.0, "{}: {:.2} × the tolerance", r.worst_at, r.worst);
    assert!(r.checked > 50, "checked {} weights", r.checked);
}

/// The MLP critic 3 → 6 → 5 → 1 the checks use.
fn small_mlp(activation: Activation) -> MlpConfig {
    MlpConfig {
        input: 3,
        hidden: vec![6, 5],
        output: 1,
        activation,
        output_activation: None,
        output_shape: None,
        init: Default::default(),
    }
}

#[test]
fn mlp_critic_penalty_gradient_matches_finite_differences() {
    // Leaky ReLU (the seed's critic) and ReLU (the WGAN-GP toy critic).
    for (seed, activation) in [(0, Activation::LeakyRelu(0.2)), (5, Activation::Relu)] {
        let store = ParamStore::new(seed);
        let critic = small_mlp(activation).build(store.builder(DType::F64, &Device::Cpu).pp("critic")).unwrap();
        randomize(&store, 0.7);
        let (real, fake) = (normal(&[4, 3], 0.0, 1), normal(&[4, 3], 0.5, 2));
        check_against_finite_differences(&critic, &store, &real, &fake);
    }
}

#[test]
fn conv_layer_norm_critic_penalty_gradient_matches_finite_differences() {
    conv_critic_penalty_matches_finite_differences(Norm::Layer);
}

#[test]
fn per_channel_layer_norm_critic_penalty_gradient_matches_finite_differences() {
    conv_critic_penalty_matches_finite_differences(Norm::LayerChannel);
}

fn conv_critic_penalty_matches_finite_differences(norm: Norm) {
    let store = ParamStore::new(1);
    let config = DcganConfig { image_size: 28, channels: 1, ndf: 2, critic_norm: norm, ..DcganConfig::default() };
    let critic = config.discriminator(store.builder(DType::F64, &Device::Cpu).pp("critic")).unwrap();
    assert!(critic.layers().iter().any(|(n, _)| n.ends_with(".ln")));
    // ganzoo's kernels unless a child process below asked for Candle's convolutions.
    let expected = match std::env::var("GANZOO_KERNELS") {
        Ok(v) => v.parse::<KernelBackend>().unwrap(),
        _ => KernelBackend::Ganzoo,
    };
    assert_eq!(kernel_backend(), expected);
    randomize(&store, 0.3);
    let (real, fake) = (normal(&[2, 1, 28, 28], 0.0, 3), normal(&[2, 1, 28, 28], 0.0, 4));
    check_against_finite_differences(&critic, &store, &real, &fake);
}

#[test]
fn penalty_uses_one_eps_per_sample_and_per_sample_norms() {
    // A linear critic f(x) = w·x has ∇f = w for every sample: the norm is ‖w‖ over all
    // of a sample's dimensions, whatever ε is.
    let store = ParamStore::new(2);
    let config = MlpConfig {
        input: 4,
        hidden: vec![],
        output: 1,
        activation: Activation::Relu,
        output_activation: None,
        output_shape: None,
        init: Default::default(),
    };
    let critic = config.build(store.builder(DType::F64, &Device::Cpu).pp("c")).unwrap();
    let (_, w) = store.named().into_iter().find(|(n, _)| n == "c.fc1.weight").unwrap();
    w.set(&Tensor::from_slice(&[1.0f64, 2.0, 2.0, 4.0], (1, 4), &Device::Cpu).unwrap()).unwrap();
    let (real, fake) = (normal(&[3, 1, 2, 2], 0.0, 5), normal(&[3, 1, 2, 2], 0.0, 6));
    let gp = GradientPenalty::default();
    let eps = gp.sample_eps(&real, &mut ChaCha8Rng::seed_from_u64(0)).unwrap();
    assert_eq!(eps.dims(), &[3, 1, 1, 1]);
    let e: Vec<f64> = eps.flatten_all().unwrap().to_vec1().unwrap();
    assert!(e.iter().all(|v| (0.0..1.0).contains(v)) && e[0] != e[1]);
    let out = gp.penalty(&critic, &real, &fake, &eps).unwrap();
    let norms: Vec<f64> = out.grad_norms.to_vec1().unwrap();
    assert!(norms.iter().all(|n| (n - 5.0).abs() < 1e-9), "{norms:?}");
    assert!((out.penalty.to_scalar::<f64>().unwrap() - 10.0 * 16.0).abs() < 1e-6);
    assert!(gp.penalty(&critic, &real, &fake, &eps.narrow(0, 0, 2).unwrap()).is_err());
}

#[test]
fn batch_norm_critic_is_refused_not_silently_wrong() {
    let store = ParamStore::new(0);
    let critic = DcganConfig { ndf: 4, ..DcganConfig::cifar10() }
        .discriminator(store.builder(DType::F32, &Device::Cpu))
        .unwrap();
    let x = Tensor::zeros((2, 3, 32, 32), DType::F32, &Device::Cpu).unwrap();
    let gp = GradientPenalty::default();
    let eps = gp.sample_eps(&x, &mut ChaCha8Rng::seed_from_u64(0)).unwrap();
    let err = gp.penalty(&critic, &x, &x, &eps).unwrap_err().to_string();
    assert!(err.contains("BatchNorm2d") && err.contains("layer norm"), "{err}");
}

#[test]
fn penalty_is_exact_whatever_candle_grad_do_not_detach_says() {
    // Candle reads CANDLE_GRAD_DO_NOT_DETACH once per thread; run the finite-difference
    // checks again in a child process of this test binary with it set.
    if std::env::var_os("CANDLE_GRAD_DO_NOT_DETACH").is_some() {
        return;
    }
    for test in [
        "penalty::mlp_critic_penalty_gradient_matches_finite_differences",
        "penalty::conv_layer_norm_critic_penalty_gradient_matches_finite_differences",
    ] {
        rerun_in_child(test, ("CANDLE_GRAD_DO_NOT_DETACH", "1"));
    }
}

#[test]
fn penalty_gradient_is_the_same_with_candle_convolutions() {
    // Both checks again in a child process with Candle's ops instead of ganzoo's kernels,
    // then with every convolution as Candle's conv2d with ganzoo's gradients (the CUDA path).
    if std::env::var_os("GANZOO_KERNELS").is_some() {
        return;
    }
    for backend in ["candle", "gemm"] {
        for test in [
            "penalty::mlp_critic_penalty_gradient_matches_finite_differences",
            "penalty::conv_layer_norm_critic_penalty_gradient_matches_finite_differences",
            "penalty::bf16_activations_keep_the_penalty_gradient_within_tolerance",
        ] {
            rerun_in_child(test, ("GANZOO_KERNELS", backend));
        }
    }
}

/// The two critics above with bf16 activations (f64 weights): the penalty's weight
/// gradient against central differences of the exact penalty (measured: docs/performance.md,
/// *Mixed precision (bf16)*), and the same comparison with f32 and f64 activations, which
/// must come out far closer.
#[test]
fn bf16_activations_keep_the_penalty_gradient_within_tolerance() {
    let store = ParamStore::new(0);
    let critic =
        small_mlp(Activation::LeakyRelu(0.2)).build(store.builder(DType::F64, &Device::Cpu).pp("critic")).unwrap();
    randomize(&store, 0.7);
    let (real, fake) = (normal(&[4, 3], 0.0, 1), normal(&[4, 3], 0.5, 2));
    check_mixed_precision("mlp", &critic, &store, &real, &fake);
    let conv = DcganConfig { image_size: 28, channels: 1, ndf: 2, critic_norm: Norm::Layer, ..DcganConfig::default() };
    let store = ParamStore::new(1);
    let critic = conv.discriminator(store.builder(DType::F64, &Device::Cpu).pp("critic")).unwrap();
    randomize(&store, 0.3);
    let (real, fake) = (normal(&[2, 1, 28, 28], 0.0, 3), normal(&[2, 1, 28, 28], 0.0, 4));
    check_mixed_precision("conv + layer norm", &critic, &store, &real, &fake);
}

fn check_mixed_precision(what: &str, critic: &Network, store: &ParamStore, real: &Tensor, fake: &Tensor) {
    let run = |dtype| mixed_precision(critic, dtype, store, real, fake).unwrap();
    let (bf16, f32, f64) = (run(DType::BF16), run(DType::F32), run(DType::F64));
    assert!(bf16.within(BF16_TOLERANCE), "{what}: {bf16:?}");
    assert!(bf16.checked > 50 && bf16.cosine > 0.99, "{what}: {bf16:?}");
    assert!(f64.relative_error < 1e-6 && f32.relative_error < 1e-3, "{what}: f64 {f64:?}, f32 {f32:?}");
    assert!(bf16.relative_error > f32.relative_error, "{what}: bf16 {bf16:?} no coarser than f32 {f32:?}");
}
