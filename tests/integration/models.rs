//! Models: PyTorch's parameter counts, output shapes, hand-computed layer values,
//! gradients reaching every parameter.

use candle_core::{DType, Device, Tensor};
use ganzoo::models::{summarize, DcganConfig, MlpConfig, Network, Norm, ParamStore};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;

fn build(f: impl Fn(candle_nn::VarBuilder) -> ganzoo::models::Result<Network>, prefix: &str) -> (Network, ParamStore) {
    let store = ParamStore::new(0);
    let net = f(store.builder(DType::F32, &Device::Cpu).pp(prefix)).unwrap();
    (net, store)
}

fn set(store: &ParamStore, name: &str, values: &[f32]) {
    let (_, var) = store.named().into_iter().find(|(n, _)| n == name).unwrap_or_else(|| panic!("no variable {name}"));
    var.set(&Tensor::from_slice(values, var.shape(), &Device::Cpu).unwrap()).unwrap();
}

#[test]
fn parameter_counts_equal_pytorch() {
    let cases = [(DcganConfig::rgb64(), 3_576_704, 2_765_568), (DcganConfig::cifar10(), 1_068_928, 663_296)];
    for (config, g, d) in cases {
        let (_, gs) = build(|vb| config.generator(vb), "gen");
        let (_, ds) = build(|vb| config.discriminator(vb), "disc");
        assert_eq!((gs.param_count(), ds.param_count()), (g, d), "{config:?}");
    }
    let (_, g) = build(|vb| MlpConfig::seed_generator(64, [1, 28, 28]).build(vb), "gen");
    let (_, d) = build(|vb| MlpConfig::seed_discriminator([1, 28, 28]).build(vb), "disc");
    assert_eq!((g.param_count(), d.param_count()), (283_920, 267_009));
}

#[test]
fn weights_have_scoped_names_and_dcgan_init() {
    let (_, store) = build(|vb| DcganConfig::cifar10().generator(vb), "gen");
    let names: Vec<String> = store.named().into_iter().map(|(n, _)| n).collect();
    for expected in
        ["gen.block1.conv.weight", "gen.block1.bn.weight", "gen.block1.bn.running_mean", "gen.out.conv.weight"]
    {
        assert!(names.contains(&expected.to_string()), "{expected} missing from {names:?}");
    }
    // Buffers are saved but not trained.
    assert!(store.trainable().iter().all(|(n, _)| !n.contains("running")));
    let w: Vec<f32> = store
        .named()
        .into_iter()
        .find(|(n, _)| n == "gen.block2.conv.weight")
        .unwrap()
        .1
        .flatten_all()
        .unwrap()
        .to_vec1()
        .unwrap();
    let mean = w.iter().sum::<f32>() / w.len() as f32;
    let std = (w.iter().map(|v| (v - mean).powi(2)).sum::<f32>() / w.len() as f32).sqrt();
    assert!(mean.abs() < 1e-3 && (std - 0.02).abs() < 1e-3, "N(0, 0.02): mean {mean} std {std}");
    let gamma: Vec<f32> =
        store.named().into_iter().find(|(n, _)| n == "gen.block1.bn.weight").unwrap().1.to_vec1().unwrap();
    assert!(gamma.iter().all(|g| (g - 1.0).abs() < 0.1) && gamma.iter().any(|g| *g != 1.0), "γ ~ N(1, 0.02)");
}

#[test]
fn same_seed_same_weights() {
    let a = ParamStore::new(5);
    let b = ParamStore::new(5);
    let c = ParamStore::new(6);
    for s in [&a, &b, &c] {
        DcganConfig::mnist().discriminator(s.builder(DType::F32, &Device::Cpu).pp("disc")).unwrap();
    }
    let first = |s: &ParamStore| s.named()[0].1.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    assert_eq!(first(&a), first(&b));
    assert_ne!(first(&a), first(&c));
}

#[test]
fn output_shapes_at_every_size_and_variant() {
    for size in [28, 32, 64] {
        for (channels, gn, cn) in
            [(1, Norm::Batch, Norm::Batch), (3, Norm::None, Norm::Layer), (2, Norm::Batch, Norm::None)]
        {
            let config = DcganConfig {
                image_size: size,
                channels,
                ngf: 8,
                ndf: 8,
                generator_norm: gn,
                critic_norm: cn,
                ..DcganConfig::default()
            };
            let (g, _) = build(|vb| config.generator(vb), "gen");
            let (d, _) = build(|vb| config.discriminator(vb), "disc");
            let z = Tensor::randn(0f32, 1.0, (2, 100), &Device::Cpu).unwrap();
            let x = g.forward_t(&z, true).unwrap();
            assert_eq!(x.dims(), &[2, channels, size, size]);
            let v: Vec<f32> = x.flatten_all().unwrap().to_vec1().unwrap();
            assert!(v.iter().all(|p| p.abs() <= 1.0), "Tanh output");
            assert_eq!(d.forward_t(&x, true).unwrap().dims(), &[2, 1]);
        }
    }
    let bad = DcganConfig { image_size: 48, ..DcganConfig::default() };
    assert!(bad.generator(ParamStore::new(0).builder(DType::F32, &Device::Cpu)).is_err());
    // A zero size is named, not printed as the whole config.
    let message = DcganConfig { ngf: 0, ..DcganConfig::default() }.validate().unwrap_err().to_string();
    assert!(message.ends_with("DCGAN ngf must be positive, got 0"), "{message}");
    let message = MlpConfig { hidden: vec![8, 0], ..MlpConfig::toy_generator() }
        .build(ParamStore::new(0).builder(DType::F32, &Device::Cpu))
        .err()
        .map(|e| e.to_string());
    assert!(
        message.as_deref().is_some_and(|m| m.contains("hidden [8, 0]") && !m.contains("activation")),
        "{message:?}"
    );
    let (toy_g, _) = build(|vb| MlpConfig::toy_generator().build(vb), "gen");
    assert_eq!(
        toy_g.forward_t(&Tensor::zeros((5, 2), DType::F32, &Device::Cpu).unwrap(), true).unwrap().dims(),
        &[5, 2]
    );
    let (wg, _) = build(|vb| MlpConfig::wgan_generator(100, [3, 32, 32]).build(vb), "gen");
    assert_eq!(
        wg.forward_t(&Tensor::zeros((1, 100), DType::F32, &Device::Cpu).unwrap(), true).unwrap().dims(),
        &[1, 3, 32, 32]
    );
}

#[test]
fn tiny_mlp_matches_hand_computation() {
    let config = MlpConfig {
        input: 2,
        hidden: vec![2],
        output: 1,
        activation: ganzoo::models::Activation::LeakyRelu(0.2),
        output_activation: None,
        output_shape: None,
        init: Default::default(),
    };
    let (net, store) = build(|vb| config.build(vb), "d");
    set(&store, "d.fc1.weight", &[1.0, -1.0, 2.0, 0.5]);
    set(&store, "d.fc1.bias", &[0.0, -1.0]);
    set(&store, "d.fc2.weight", &[1.0, -2.0]);
    set(&store, "d.fc2.bias", &[0.5]);
    let x = Tensor::from_slice(&[1.0f32, 2.0], (1, 2), &Device::Cpu).unwrap();
    // h = [1 − 2, 2 + 1 − 1] = [−1, 2]; LeakyReLU → [−0.2, 2]; y = −0.2 − 4 + 0.5.
    let y: Vec<f32> = net.forward_t(&x, true).unwrap().flatten_all().unwrap().to_vec1().unwrap();
    assert!((y[0] + 3.7).abs() < 1e-6, "{y:?}");
    // ∂y/∂x = W2 diag(lrelu') W1 = [1·1 + (−2)(2), 1·(−1)·0.2 + (−2)(0.5)] with slopes [0.2, 1].
    let (_, g) = net.input_gradient(&x).unwrap();
    let g: Vec<f32> = g.flatten_all().unwrap().to_vec1().unwrap();
    assert!((g[0] - (0.2 * 1.0 - 2.0 * 2.0)).abs() < 1e-6 && (g[1] - (-0.2 - 2.0 * 0.5)).abs() < 1e-6, "{g:?}");
}

#[test]
fn conv_and_transposed_conv_match_hand_computation() {
    use ganzoo::models::conv::{conv2d, conv_transpose2d};
    let x = Tensor::arange(1f32, 10.0, &Device::Cpu).unwrap().reshape((1, 1, 3, 3)).unwrap();
    let w = Tensor::from_slice(&[1f32, 2.0, 3.0, 4.0], (1, 1, 2, 2), &Device::Cpu).unwrap();
    let y: Vec<f32> = conv2d(&x, &w, 1, 0).unwrap().flatten_all().unwrap().to_vec1().unwrap();
    assert_eq!(y, vec![37.0, 47.0, 67.0, 77.0]);
    let one = Tensor::from_slice(&[2f32], (1, 1, 1, 1), &Device::Cpu).unwrap();
    let t: Vec<f32> = conv_transpose2d(&one, &w, 2, 0, 0).unwrap().flatten_all().unwrap().to_vec1().unwrap();
    assert_eq!(t, vec![2.0, 4.0, 6.0, 8.0]);
}

#[test]
fn norms_match_hand_computation() {
    use ganzoo::models::norm::{BatchNorm2d, LayerNorm};
    let store = ParamStore::new(0);
    let vb = store.builder(DType::F32, &Device::Cpu);
    let ln = LayerNorm::new(&[1, 2, 2], vb.pp("ln")).unwrap();
    let x = Tensor::from_slice(&[1f32, 2.0, 3.0, 4.0], (1, 1, 2, 2), &Device::Cpu).unwrap();
    let y: Vec<f32> = ln.forward(&x).unwrap().flatten_all().unwrap().to_vec1().unwrap();
    let s = (1.25f32 + 1e-5).sqrt();
    for (a, b) in y.iter().zip([-1.5 / s, -0.5 / s, 0.5 / s, 1.5 / s]) {
        assert!((a - b).abs() < 1e-6);
    }
    // Per-channel γ, β (tflib): normalised over (C, H, W) together, then scaled per channel.
    let lc = LayerNorm::per_channel([2, 1, 2], vb.pp("lc")).unwrap();
    set(&store, "lc.weight", &[2.0, -1.0]);
    set(&store, "lc.bias", &[0.5, 0.0]);
    let y: Vec<f32> = lc.forward(&x.reshape((1, 2, 1, 2)).unwrap()).unwrap().flatten_all().unwrap().to_vec1().unwrap();
    for (a, b) in y.iter().zip([-3.0 / s + 0.5, -1.0 / s + 0.5, -0.5 / s, -1.5 / s]) {
        assert!((a - b).abs() < 1e-6, "{y:?}");
    }
    assert_eq!(
        store.named().iter().filter(|(n, _)| n.starts_with("lc.")).map(|(_, v)| v.elem_count()).sum::<usize>(),
        4
    );
    let bn = BatchNorm2d::new(1, candle_nn::Init::Const(1.0), vb.pp("bn")).unwrap();
    let x = Tensor::from_slice(&[1f32, 3.0], (2, 1, 1, 1), &Device::Cpu).unwrap();
    let y: Vec<f32> = bn.forward_t(&x, true).unwrap().flatten_all().unwrap().to_vec1().unwrap();
    let s = (1.0f32 + 1e-5).sqrt();
    assert!((y[0] + 1.0 / s).abs() < 1e-6 && (y[1] - 1.0 / s).abs() < 1e-6);
    let running = |n: &str| store.named().into_iter().find(|(k, _)| k == n).unwrap().1.to_vec1::<f32>().unwrap()[0];
    // momentum 0.1; the running variance uses the unbiased batch variance (2).
    assert!((running("bn.running_mean") - 0.2).abs() < 1e-6 && (running("bn.running_var") - 1.1).abs() < 1e-6);
    let eval: Vec<f32> = bn.forward_t(&x, false).unwrap().flatten_all().unwrap().to_vec1().unwrap();
    assert!((eval[0] - (1.0 - 0.2) / (1.1f32 + 1e-5).sqrt()).abs() < 1e-5);
}

#[test]
fn every_layer_norm_critic_parameter_gets_a_gradient() {
    let config = DcganConfig { critic_norm: Norm::Layer, ndf: 8, ..DcganConfig::cifar10() };
    let (d, store) = build(|vb| config.discriminator(vb), "critic");
    let x = Tensor::randn(0f32, 1.0, (4, 3, 32, 32), &Device::Cpu).unwrap();
    let grads = d.forward_t(&x, true).unwrap().sum_all().unwrap().backward().unwrap();
    let trainable = store.trainable();
    assert!(trainable.iter().any(|(n, _)| n.contains(".ln.")));
    for (name, var) in trainable {
        let g = grads.get(&var).unwrap_or_else(|| panic!("{name} gets no gradient"));
        let norm = g.sqr().unwrap().sum_all().unwrap().to_scalar::<f32>().unwrap();
        assert!(norm > 0.0, "{name} has a zero gradient");
    }
}

#[test]
fn summary_lists_layers_with_shapes_and_counts() {
    let config = DcganConfig::rgb64();
    let (g, store) = build(|vb| config.generator(vb), "gen");
    let z = Tensor::zeros((1, 100), DType::F32, &Device::Cpu).unwrap();
    let rows = summarize(&g, &store, &z).unwrap();
    assert_eq!(rows.iter().map(|r| r.params).sum::<usize>(), 3_576_704);
    let first = rows.iter().find(|r| r.name == "gen.block1.conv").unwrap();
    assert_eq!((first.kind, first.output.as_slice(), first.params), ("ConvTranspose2d", &[1, 512, 4, 4][..], 819_200));
    assert_eq!(rows.last().unwrap().output, vec![1, 3, 64, 64]);
}

#[test]
fn frozen_network_gives_the_same_output_and_input_gradient_but_no_weight_gradients() {
    for norm in [Norm::Batch, Norm::Layer] {
        let config = DcganConfig { critic_norm: norm, ..DcganConfig::cifar10() };
        let (critic, store) = build(|vb| config.discriminator(vb), "critic");
        let x =
            candle_core::Var::from_tensor(&Tensor::randn(0f32, 1.0, (2, 3, 32, 32), &Device::Cpu).unwrap()).unwrap();
        let (live, frozen) = (critic.forward_t(&x, true).unwrap(), critic.frozen().forward_t(&x, true).unwrap());
        let diff = (&live - &frozen).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
        assert!(diff < 1e-6, "{norm:?}: outputs differ by {diff}");
        let (g_live, g_frozen) =
            (live.sum_all().unwrap().backward().unwrap(), frozen.sum_all().unwrap().backward().unwrap());
        let dx = (g_live.get(&x).unwrap() - g_frozen.get(&x).unwrap()).unwrap().abs().unwrap().max_all().unwrap();
        assert!(dx.to_scalar::<f32>().unwrap() < 1e-6, "{norm:?}: input gradients differ");
        for (name, var) in store.trainable() {
            assert!(g_live.get(&var).is_some(), "{name}: no gradient through the live network");
            assert!(g_frozen.get(&var).is_none(), "{name}: a gradient through the frozen network");
        }
    }
}

/// A critic without batch norm gives each batch the same outputs whether it runs alone
/// or concatenated with another (the trainer relies on this to run the real and the
/// fake batch in one pass); with batch norm the outputs change, and the network says so.
#[test]
fn only_batch_norm_couples_the_samples_of_a_batch() {
    let (a, b) = (
        Tensor::randn(0f32, 1.0, (3, 3, 32, 32), &Device::Cpu).unwrap(),
        Tensor::randn(0.5f32, 2.0, (3, 3, 32, 32), &Device::Cpu).unwrap(),
    );
    let both = Tensor::cat(&[&a, &b], 0).unwrap();
    let max_diff =
        |x: &Tensor, y: &Tensor| (x - y).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
    for (norm, couples) in [(Norm::Layer, false), (Norm::None, false), (Norm::Batch, true)] {
        let config = DcganConfig { critic_norm: norm, ..DcganConfig::cifar10() };
        let (critic, _) = build(|vb| config.discriminator(vb), "critic");
        assert_eq!(critic.couples_samples(), couples, "{norm:?}");
        let joint = critic.forward_t(&both, true).unwrap();
        let alone = critic.forward_t(&a, true).unwrap();
        let diff = max_diff(&joint.narrow(0, 0, 3).unwrap(), &alone);
        assert_eq!(diff < 1e-5, !couples, "{norm:?}: joint and separate outputs differ by {diff}");
    }
    let mlp = MlpConfig::seed_discriminator([1, 28, 28]);
    let (d, _) = build(|vb| mlp.build(vb), "critic");
    assert!(!d.couples_samples());
}

/// Batch norm + (leaky) ReLU, and a convolution + leaky ReLU (the critic's first layer),
/// run as one fused op each in `forward_t`; `trace` runs every layer by itself. Same
/// outputs and the same gradients for the input and every weight.
#[test]
fn fused_layers_and_activations_match_the_layers_one_by_one() {
    let config = DcganConfig::cifar10();
    let (generator, g_store) = build(|vb| config.generator(vb), "gen");
    let (critic, c_store) = build(|vb| config.discriminator(vb), "critic");
    for (net, store, input) in [(&generator, &g_store, (4, config.nz, 1, 1)), (&critic, &c_store, (4, 3, 32, 32))] {
        let x = candle_core::Var::from_tensor(&Tensor::randn(0f32, 1.0, input, &Device::Cpu).unwrap()).unwrap();
        let fused = net.forward_t(&x, true).unwrap();
        let layered = net.trace(&x, true).unwrap().pop().unwrap();
        let max = |t: Tensor| t.abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
        assert_eq!(max((&fused - &layered).unwrap()), 0.0, "outputs of {input:?}");
        let r = Tensor::randn(0f32, 1.0, fused.shape(), &Device::Cpu).unwrap();
        let grads = |y: &Tensor| (y * &r).unwrap().sum_all().unwrap().backward().unwrap();
        let (g_fused, g_layered) = (grads(&fused), grads(&layered));
        let vars = store.trainable().into_iter().chain([("input".to_string(), x.clone())]);
        for (name, var) in vars {
            let d = max((g_fused.get(&var).unwrap() - g_layered.get(&var).unwrap()).unwrap());
            assert!(d <= 1e-6, "{name}: gradients differ by {d}");
        }
    }
}

/// Outputs and gradients (of `Σ r ⊙ f(x)²` for the input and every weight) of small
/// DCGAN-32 networks in f64 — the generator, a batch-norm critic and a layer-norm
/// critic, whose input gradient (the penalty's path) is kept too — keyed by name.
fn dcgan_results() -> std::collections::HashMap<String, Tensor> {
    let config = DcganConfig { nz: 8, ngf: 4, ndf: 4, ..DcganConfig::cifar10() };
    let nets: [(&str, DcganConfig, &[usize]); 3] = [
        ("gen", config, &[3, 8, 1, 1]),
        ("bn-critic", DcganConfig { critic_norm: Norm::Batch, ..config }, &[3, 3, 32, 32]),
        ("ln-critic", DcganConfig { critic_norm: Norm::Layer, ..config }, &[3, 3, 32, 32]),
    ];
    let mut out = std::collections::HashMap::new();
    for (seed, (tag, config, input)) in nets.into_iter().enumerate() {
        let store = ParamStore::new(seed as u64);
        let vb = store.builder(DType::F64, &Device::Cpu).pp(tag);
        let net = if tag == "gen" { config.generator(vb) } else { config.discriminator(vb) }.unwrap();
        let x = candle_core::Var::from_tensor(&crate::kernels::random(input, 40 + seed as u64, DType::F64)).unwrap();
        let y = net.forward_t(&x, true).unwrap();
        let r = crate::kernels::random(y.dims(), 50 + seed as u64, DType::F64);
        let grads = (y.sqr().unwrap() * &r).unwrap().sum_all().unwrap().backward().unwrap();
        out.insert(format!("{tag}/output"), y);
        out.insert(format!("{tag}/input-grad"), grads.get(&x).unwrap().clone());
        for (name, var) in store.trainable() {
            out.insert(format!("{tag}/{name}"), grads.get(&var).unwrap().clone());
        }
        if tag == "ln-critic" {
            out.insert(format!("{tag}/penalty-path"), net.input_gradient(&x).unwrap().1);
        }
    }
    out
}

/// Inside a network ganzoo's kernels keep images channels-last (NHWC) and Candle's
/// ops NCHW: the same values and gradients either way. The reference runs in a
/// child process with `GANZOO_KERNELS=candle` and reads this process's results.
#[test]
fn dcgan_networks_give_candles_values_and_gradients_with_ganzoos_kernels() {
    let test = "models::dcgan_networks_give_candles_values_and_gradients_with_ganzoos_kernels";
    let ours = dcgan_results();
    let Some(path) = std::env::var_os("GANZOO_TEST_REFERENCE") else {
        assert_eq!(ganzoo::models::kernel_backend(), ganzoo::models::KernelBackend::Ganzoo);
        let path = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("dcgan-{}.st", std::process::id()));
        candle_core::safetensors::save(&ours, &path).unwrap();
        let path_text = path.to_string_lossy().into_owned();
        crate::common::rerun_in_child_with(
            test,
            &[("GANZOO_KERNELS", "candle"), ("GANZOO_TEST_REFERENCE", &path_text)],
        );
        std::fs::remove_file(&path).unwrap();
        return;
    };
    assert_eq!(ganzoo::models::kernel_backend(), ganzoo::models::KernelBackend::Candle);
    let theirs = candle_core::safetensors::load(path, &Device::Cpu).unwrap();
    assert_eq!(ours.len(), theirs.len());
    for (name, t) in &theirs {
        let o = &ours[name];
        let d = crate::kernels::max_diff(o, t);
        let scale = t.abs().unwrap().max_all().unwrap().to_scalar::<f64>().unwrap().max(1e-300);
        assert!(d <= 1e-9 * scale, "{name}: differs by {d} (largest value {scale})");
    }
}

#[test]
fn toy_mlps_take_tflibs_initialisation_and_spread_their_first_outputs() {
    // improved_wgan_training tflib: He-uniform U(±√(6/in)) hidden, Glorot-uniform
    // U(±√(6/(in+out))) output, zero biases.
    let (gen, store) = build(|vb| MlpConfig::toy_generator().build(vb), "g");
    for (name, v) in store.named() {
        let values: Vec<f32> = v.flatten_all().unwrap().to_vec1().unwrap();
        let bound = match name.as_str() {
            "g.fc1.weight" => (6.0f32 / 2.0).sqrt(),
            "g.fc2.weight" | "g.fc3.weight" => (6.0f32 / 512.0).sqrt(),
            "g.fc4.weight" => (6.0f32 / 514.0).sqrt(),
            _ => {
                assert!(values.iter().all(|&b| b == 0.0), "{name} is not zero");
                continue;
            }
        };
        let max = values.iter().fold(0f32, |m, v| m.max(v.abs()));
        assert!(max <= bound && max > 0.95 * bound, "{name}: max {max}, bound {bound}");
    }
    // The generator's first outputs spread like the data (PyTorch's default init: ~0.05).
    let z = Tensor::randn(0f32, 1.0, (2000, 2), &Device::Cpu).unwrap();
    let out = gen.forward_t(&z, true).unwrap();
    let std: f32 = out.var_keepdim(0).unwrap().sqrt().unwrap().mean_all().unwrap().to_scalar().unwrap();
    assert!(std > 0.5 && std < 5.0, "output std {std}");
    let (legacy, _) = build(|vb| MlpConfig::legacy_toy(true).build(vb), "g");
    let old: f32 = legacy
        .forward_t(&z, true)
        .unwrap()
        .var_keepdim(0)
        .unwrap()
        .sqrt()
        .unwrap()
        .mean_all()
        .unwrap()
        .to_scalar()
        .unwrap();
    assert!(old < 0.2, "PyTorch-initialised toy generator spread {old}");
}

#[test]
fn the_wgan_mlps_follow_wassersteingans_mlp_py() {
    // MLP_G: Linear(nz, 512) ReLU ×3 then Linear(512, C·H·W), no Tanh; MLP_D likewise to 1.
    let (gen, store) = build(|vb| MlpConfig::wgan_generator(100, [1, 28, 28]).build(vb), "g");
    let count: usize = store.named().iter().map(|(_, v)| v.elem_count()).sum();
    assert_eq!(count, 100 * 512 + 512 + 2 * (512 * 512 + 512) + 512 * 784 + 784);
    assert!(!gen.layers().iter().any(|(n, _)| n.contains("act") && n.contains("fc4")), "no output activation");
    let (_, critic) = build(|vb| MlpConfig::wgan_critic([1, 28, 28]).build(vb), "c");
    let count: usize = critic.named().iter().map(|(_, v)| v.elem_count()).sum();
    assert_eq!(count, 784 * 512 + 512 + 2 * (512 * 512 + 512) + 512 + 1);
    // The seed's generator: LeakyReLU 0.2 hidden layers.
    let seed = MlpConfig::seed_generator(64, [1, 28, 28]);
    assert_eq!(seed.activation, ganzoo::models::Activation::LeakyRelu(0.2));
}

/// `(cosine, ‖a − b‖/‖b‖)` of two tensors' values.
fn closeness(a: &Tensor, b: &Tensor) -> (f64, f64) {
    let v = |t: &Tensor| -> Vec<f64> { t.to_dtype(DType::F64).unwrap().flatten_all().unwrap().to_vec1().unwrap() };
    let (a, b) = (v(a), v(b));
    let dot: f64 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
    let (na, nb) = (a.iter().map(|x| x * x).sum::<f64>().sqrt(), b.iter().map(|x| x * x).sum::<f64>().sqrt());
    let diff = a.iter().zip(&b).map(|(x, y)| (x - y) * (x - y)).sum::<f64>().sqrt();
    (dot / (na * nb), diff / nb)
}

#[test]
fn bf16_activations_track_f32_and_train_the_f32_weights() {
    // The same DCGAN pair (batch norm in both) twice from one seed: all f32, and with
    // bf16 activations on the f32 weights. Batch norm's backward removes most of the
    // output gradient (its mean and its projection on x̂), so the generator's weight
    // gradients keep bf16's rounding of what is removed, so the bounds are loose
    // (measured: docs/performance.md, *Mixed precision (bf16)*); a wrong op is O(1) off.
    let config = DcganConfig { ngf: 8, ndf: 8, ..DcganConfig::cifar10() };
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let z: Vec<f32> = (0..400).map(|_| rng.sample(StandardNormal)).collect();
    let z = Tensor::from_vec(z, (4, 100, 1, 1), &Device::Cpu).unwrap();
    let run = |activations: Option<DType>| {
        let (gen, gs) = build(|vb| config.generator(vb), "gen");
        let (disc, ds) = build(|vb| config.discriminator(vb), "disc");
        let (gen, disc) = (gen.with_activations(activations), disc.with_activations(activations));
        let images = gen.forward_t(&z, true).unwrap();
        let logits = disc.forward_t(&images, true).unwrap();
        assert_eq!((images.dtype(), logits.dtype()), (DType::F32, DType::F32), "outputs in the input's dtype");
        let grads = logits.sum_all().unwrap().backward().unwrap();
        let mut weights = Vec::new();
        for (name, var) in gs.trainable().into_iter().chain(ds.trainable()) {
            let g = grads.get(&var).unwrap_or_else(|| panic!("{name}: no gradient"));
            assert_eq!(g.dtype(), DType::F32, "{name}: gradient in the weights' dtype");
            weights.push((name, g.clone()));
        }
        let running = ds.named().into_iter().find(|(n, _)| n.ends_with("running_var")).unwrap().1;
        (images, logits, weights, running.as_tensor().clone())
    };
    let (images, logits, grads, running) = run(None);
    let (images16, logits16, grads16, running16) = run(Some(DType::BF16));
    let (cos, rel) = closeness(&images16, &images);
    assert!(cos > 0.999 && rel < 0.03, "images: cosine {cos}, relative error {rel}");
    let (cos, rel) = closeness(&logits16, &logits);
    assert!(cos > 0.999 && rel < 0.05, "logits: cosine {cos}, relative error {rel}");
    assert_eq!(running16.dtype(), DType::F32);
    let (cos, rel) = closeness(&running16, &running);
    assert!(cos > 0.9999 && rel < 0.01, "running variance: cosine {cos}, relative error {rel}");
    for ((name, g16), (_, g)) in grads16.iter().zip(&grads) {
        let (cos, rel) = closeness(g16, g);
        assert!(cos > 0.98 && rel < 0.25, "{name}: cosine {cos}, relative error {rel}");
    }
}

/// With bf16 activations, batch norm and the (leaky) ReLU after it run as one kernel op
/// in the f32 master precision, rounded to bf16 once: the f32 op's output on the same
/// input, rounded; its gradient reaches the bf16 input, in bf16.
#[test]
fn bf16_batch_norm_and_its_activation_run_fused_in_f32() {
    use ganzoo::kernels::ImageLayout;
    use ganzoo::models::norm::{BatchNorm2d, BnMode};
    let store = ParamStore::new(0);
    let bn =
        BatchNorm2d::new(3, candle_nn::Init::Const(1.5), store.builder(DType::F32, &Device::Cpu).pp("bn")).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let x: Vec<f32> = (0..2 * 3 * 4 * 4).map(|_| rng.sample(StandardNormal)).collect();
    let x = Tensor::from_vec(x, (2, 3, 4, 4), &Device::Cpu).unwrap().to_dtype(DType::BF16).unwrap();
    let x = candle_core::Var::from_tensor(&x).unwrap();
    for slope in [0.0, 0.2] {
        let fused = bn
            .forward_leaky_relu(x.as_tensor(), BnMode::Train, slope, ImageLayout::Nchw)
            .expect("fused in f32")
            .unwrap();
        assert_eq!(fused.dtype(), DType::BF16);
        let f32_op = bn.forward_leaky_relu(&x.to_dtype(DType::F32).unwrap(), BnMode::Train, slope, ImageLayout::Nchw);
        let want = f32_op.unwrap().unwrap().to_dtype(DType::BF16).unwrap();
        let bits = |t: &Tensor| t.to_dtype(DType::F32).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
        assert_eq!(bits(&fused), bits(&want), "slope {slope}");
        let grads = (fused.to_dtype(DType::F32).unwrap() * 2.0).unwrap().sum_all().unwrap().backward().unwrap();
        let dx = grads.get(&x).expect("a gradient for the bf16 input");
        assert_eq!(dx.dtype(), DType::BF16);
        assert!(bits(dx).iter().any(|&v| v != 0.0), "slope {slope}");
    }
}
