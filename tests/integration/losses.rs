//! Losses against their formulas, including extreme logits; clipping bounds.

use candle_core::{DType, Device, Tensor};
use ganzoo::losses::cross_entropy::{
    discriminator_fake_term, discriminator_loss_with_targets, discriminator_real_term, softplus,
};
use ganzoo::losses::wasserstein::{
    clip_weights, critic_fake_term, critic_loss, critic_real_term, wasserstein_estimate,
};
use ganzoo::losses::{discriminator_loss, generator_loss, wasserstein, GeneratorCost, ParallelLines};
use ganzoo::models::{DcganConfig, ParamStore};

fn t(v: &[f64]) -> Tensor {
    Tensor::from_slice(v, v.len(), &Device::Cpu).unwrap()
}

fn scalar(x: Tensor) -> f64 {
    x.to_scalar::<f64>().unwrap()
}

fn sigmoid(l: f64) -> f64 {
    1.0 / (1.0 + (-l).exp())
}

#[test]
fn cross_entropy_matches_its_formula() {
    let (real, fake) = ([0.3, -1.2, 2.0], [-0.5, 0.7]);
    let expect = -0.5 * real.iter().map(|&l| sigmoid(l).ln()).sum::<f64>() / 3.0
        - 0.5 * fake.iter().map(|&l| (1.0 - sigmoid(l)).ln()).sum::<f64>() / 2.0;
    assert!((scalar(discriminator_loss(&t(&real), &t(&fake)).unwrap()) - expect).abs() < 1e-12);
    let fake = [-0.5, 0.7, 1.5];
    let mean = |f: &dyn Fn(f64) -> f64| fake.iter().map(|&l| f(l)).sum::<f64>() / 3.0;
    let cases = [
        (GeneratorCost::Minimax, 0.5 * mean(&|l| (1.0 - sigmoid(l)).ln())),
        (GeneratorCost::NonSaturating, -0.5 * mean(&|l| sigmoid(l).ln())),
        (GeneratorCost::MaximumLikelihood, -0.5 * mean(&|l| sigmoid(l) / (1.0 - sigmoid(l)))),
    ];
    for (cost, expect) in cases {
        assert!((scalar(generator_loss(cost, &t(&fake)).unwrap()) - expect).abs() < 1e-12, "{cost:?}");
    }
    // Soft targets: t = 1 is the plain loss.
    let ones = t(&[1.0, 1.0, 1.0]);
    let real = t(&[0.3, -1.2, 2.0]);
    let a = scalar(discriminator_loss_with_targets(&real, &ones, &t(&[-0.5])).unwrap());
    assert!((a - scalar(discriminator_loss(&real, &t(&[-0.5])).unwrap())).abs() < 1e-12);
    let t9 = t(&[0.9, 0.9, 0.9]);
    let soft = scalar(discriminator_loss_with_targets(&real, &t9, &t(&[-0.5])).unwrap());
    let expect = -0.5
        * [0.3f64, -1.2, 2.0].iter().map(|&l| 0.9 * sigmoid(l).ln() + 0.1 * (1.0 - sigmoid(l)).ln()).sum::<f64>()
        / 3.0
        - 0.5 * (1.0 - sigmoid(-0.5)).ln();
    assert!((soft - expect).abs() < 1e-12);
    // The terms the trainer back-propagates one at a time are the two halves.
    let real_half = scalar(discriminator_real_term(&real, &t9).unwrap());
    assert!((real_half - (expect + 0.5 * (1.0 - sigmoid(-0.5)).ln())).abs() < 1e-12);
    let fake_half = scalar(discriminator_fake_term(&t(&[-0.5, 0.7])).unwrap());
    assert!((fake_half + 0.5 * ((1.0 - sigmoid(-0.5)).ln() + (1.0 - sigmoid(0.7)).ln()) / 2.0).abs() < 1e-12);
    assert!(discriminator_real_term(&real, &t(&[0.9, 0.9])).is_err());
}

#[test]
fn losses_stay_finite_and_exact_at_extreme_logits() {
    for dtype in [DType::F32, DType::F64] {
        let big = t(&[100.0, -100.0]).to_dtype(dtype).unwrap();
        let sp: Vec<f64> = softplus(&big).unwrap().to_dtype(DType::F64).unwrap().to_vec1().unwrap();
        assert!((sp[0] - 100.0).abs() < 1e-4 && sp[1] >= 0.0 && sp[1] < 1e-40, "{sp:?}");
        // D certain and right: loss 0; D certain and wrong: loss 100.
        let right =
            discriminator_loss(&t(&[100.0]).to_dtype(dtype).unwrap(), &t(&[-100.0]).to_dtype(dtype).unwrap()).unwrap();
        let wrong =
            discriminator_loss(&t(&[-100.0]).to_dtype(dtype).unwrap(), &t(&[100.0]).to_dtype(dtype).unwrap()).unwrap();
        let (right, wrong) = (
            right.to_dtype(DType::F64).unwrap().to_scalar::<f64>().unwrap(),
            wrong.to_dtype(DType::F64).unwrap().to_scalar::<f64>().unwrap(),
        );
        assert!(right.abs() < 1e-6 && (wrong - 100.0).abs() < 1e-3, "{right} {wrong}");
        let ns = generator_loss(GeneratorCost::NonSaturating, &t(&[-100.0]).to_dtype(dtype).unwrap()).unwrap();
        let ns = ns.to_dtype(DType::F64).unwrap().to_scalar::<f64>().unwrap();
        assert!((ns - 50.0).abs() < 1e-3);
        // Gradients are finite too.
        let l = candle_core::Var::from_tensor(&big).unwrap();
        let loss = discriminator_loss(l.as_tensor(), l.as_tensor()).unwrap();
        let g: Vec<f64> = loss.backward().unwrap().get(&l).unwrap().to_dtype(DType::F64).unwrap().to_vec1().unwrap();
        assert!(g.iter().all(|v| v.is_finite()), "{g:?}");
        // Every generator cost, value and gradient, at ±100 (the maximum-likelihood cost
        // continues e^l along its tangent above l = 50: e^50 (1 + 50) at 100, slope e^50).
        for cost in [GeneratorCost::Minimax, GeneratorCost::NonSaturating, GeneratorCost::MaximumLikelihood] {
            let l = candle_core::Var::from_tensor(&big).unwrap();
            let loss = generator_loss(cost, l.as_tensor()).unwrap();
            let value = loss.to_dtype(DType::F64).unwrap().to_scalar::<f64>().unwrap();
            let g: Vec<f64> =
                loss.backward().unwrap().get(&l).unwrap().to_dtype(DType::F64).unwrap().to_vec1().unwrap();
            assert!(value.is_finite() && g.iter().all(|v| v.is_finite()), "{cost:?}: {value} {g:?}");
            if cost == GeneratorCost::MaximumLikelihood {
                let e50 = 50f64.exp();
                assert!((value / (-0.25 * (51.0 * e50 + (-100f64).exp())) - 1.0).abs() < 1e-5, "{value}");
                assert!((g[0] / (-0.25 * e50) - 1.0).abs() < 1e-5, "{g:?}");
            }
        }
    }
}

#[test]
fn wasserstein_losses_match_their_formulas() {
    let (real, fake) = (t(&[1.0, 2.0, 4.0]), t(&[0.5, -1.5]));
    assert!((scalar(critic_loss(&real, &fake).unwrap()) - (-0.5 - 7.0 / 3.0)).abs() < 1e-12);
    assert!((scalar(wasserstein::generator_loss(&fake).unwrap()) - 0.5).abs() < 1e-12);
    assert!((wasserstein_estimate(&real, &fake).unwrap() - (7.0 / 3.0 + 0.5)).abs() < 1e-12);
    assert!((scalar(critic_real_term(&real).unwrap()) + 7.0 / 3.0).abs() < 1e-12);
    assert!((scalar(critic_fake_term(&fake).unwrap()) + 0.5).abs() < 1e-12);
}

#[test]
fn clipping_bounds_every_critic_weight_and_nothing_else() {
    let store = ParamStore::new(1);
    let critic = DcganConfig { ndf: 8, ..DcganConfig::mnist() }
        .discriminator(store.builder(DType::F32, &Device::Cpu).pp("critic"))
        .unwrap();
    // Spread the weights and give the running statistics values outside [−c, c].
    for (name, var) in store.named() {
        let v = (Tensor::randn(0f32, 1.0, var.shape(), &Device::Cpu).unwrap() * 3.0).unwrap();
        var.set(&if name.contains("running") { (v.abs().unwrap() + 5.0).unwrap() } else { v }).unwrap();
    }
    let before: Vec<(String, Vec<f32>)> =
        store.named().into_iter().map(|(n, v)| (n, v.flatten_all().unwrap().to_vec1().unwrap())).collect();
    let trainable = store.trainable();
    clip_weights(trainable.iter().map(|(_, v)| v), 0.01).unwrap();
    for ((name, old), (_, var)) in before.iter().zip(store.named()) {
        let new: Vec<f32> = var.flatten_all().unwrap().to_vec1().unwrap();
        if name.contains("running") {
            assert_eq!(&new, old, "{name} is a statistic, not a weight");
        } else {
            assert!(new.iter().all(|v| v.abs() <= 0.01), "{name} not clipped");
            for (a, b) in old.iter().zip(&new) {
                assert_eq!(*b, a.clamp(-0.01, 0.01));
            }
        }
    }
    assert!(clip_weights(trainable.iter().map(|(_, v)| v), -1.0).is_err());
    drop(critic);
}

#[test]
fn parallel_lines_closed_forms() {
    let p = ParallelLines::at(-0.3);
    assert_eq!((p.wasserstein, p.jensen_shannon, p.total_variation), (0.3, std::f64::consts::LN_2, 1.0));
    assert!(p.kullback_leibler.is_infinite());
    let z = ParallelLines::at(0.0);
    assert_eq!((z.wasserstein, z.jensen_shannon, z.kullback_leibler, z.total_variation), (0.0, 0.0, 0.0, 0.0));
}
