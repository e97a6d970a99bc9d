//! Resource bounds: the footprint a configuration implies equals what gets built, and
//! the memory estimate a run is refused by is an upper bound on what training really
//! holds, without being absurdly loose.

use candle_core::{DType, Device};
use ganzoo::data::{DatasetSpec, KnownDataset, ToyDistribution};
use ganzoo::models::{DcganConfig, MlpConfig, Norm, ParamStore};
use ganzoo::train::budget::{training_bytes, DataSize};
use ganzoo::train::{DataSource, Family, RunDir, Silent, TrainConfig, Trainer};

use crate::alloc::{global_peak, reset_global_peak};
use crate::common::{digits, rerun_in_child};

fn params(store: &ParamStore) -> u128 {
    store.trainable().iter().map(|(_, v)| v.elem_count() as u128).sum()
}

#[test]
fn footprints_count_the_parameters_that_are_built() {
    for (size, channels) in [(28, 1), (32, 3), (64, 3)] {
        for (gnorm, cnorm) in [(Norm::Batch, Norm::Batch), (Norm::None, Norm::Layer), (Norm::Batch, Norm::None)] {
            let c = DcganConfig {
                image_size: size,
                channels,
                ngf: 8,
                ndf: 12,
                nz: 10,
                generator_norm: gnorm,
                critic_norm: cnorm,
            };
            let (gs, ds) = (ParamStore::new(0), ParamStore::new(1));
            let g = c.generator(gs.builder(DType::F32, &Device::Cpu).pp("g")).unwrap();
            let d = c.discriminator(ds.builder(DType::F32, &Device::Cpu).pp("d")).unwrap();
            assert_eq!(c.generator_footprint().params, params(&gs), "{c:?}");
            assert_eq!(c.discriminator_footprint().params, params(&ds), "{c:?}");
            // Activations: every layer's output for one sample, from a traced forward pass.
            for (net, f, input) in [
                (&g, c.generator_footprint(), candle_core::Tensor::zeros((1, 10), DType::F32, &Device::Cpu).unwrap()),
                (
                    &d,
                    c.discriminator_footprint(),
                    candle_core::Tensor::zeros((1, channels, size, size), DType::F32, &Device::Cpu).unwrap(),
                ),
            ] {
                let traced: u128 = net.trace(&input, false).unwrap().iter().map(|t| t.elem_count() as u128).sum();
                let input = input.elem_count() as u128;
                // Reshapes are outputs too in a trace; the footprint counts values once.
                assert!(
                    traced + input >= f.activations && f.activations * 2 >= traced + input,
                    "{c:?}: {traced} vs {}",
                    f.activations
                );
            }
        }
    }
    for c in [MlpConfig::seed_generator(64, [1, 28, 28]), MlpConfig::wgan_critic([3, 32, 32]), MlpConfig::toy_critic()]
    {
        let s = ParamStore::new(0);
        c.build(s.builder(DType::F32, &Device::Cpu).pp("m")).unwrap();
        assert_eq!(c.footprint().params, params(&s), "{c:?}");
    }
}

#[test]
fn the_critic_schedules_closed_form_counts_its_steps() {
    for family in [Family::Wgan, Family::WganGp, Family::Dcgan] {
        let mut s = TrainConfig::preset(family, DataSource::Images(DatasetSpec::Known(KnownDataset::Mnist))).schedule;
        for every in [0, 7, 500] {
            if let Some(w) = s.warmup.as_mut() {
                w.every = every;
            }
            let mut sum = 0u128;
            for n in 0..1200u64 {
                assert_eq!(s.critic_steps_before(n), sum, "{family:?} every {every} at {n}");
                sum += s.critic_steps(n) as u128;
            }
        }
    }
}

/// Small versions of the zoo's cases, as `train` would run them.
fn cases() -> Vec<(TrainConfig, Option<ganzoo::data::ImageDataset>)> {
    let mnist = || DataSource::Images(DatasetSpec::Known(KnownDataset::Mnist));
    let mut out = Vec::new();
    for family in [Family::Gan, Family::Dcgan, Family::WganGp] {
        let mut c = TrainConfig::preset(family, mnist());
        (c.epochs, c.iters, c.batch_size, c.ngf, c.ndf) = (None, Some(2), 32, 32, 32);
        (c.log_every, c.sample_every, c.checkpoint_every) = (1, 2, 2);
        out.push((c, Some(digits(256, 3))));
    }
    let mut toy = TrainConfig::preset(Family::WganGp, DataSource::Toy(ToyDistribution::EightGaussians));
    (toy.iters, toy.sample_every, toy.checkpoint_every) = (Some(2), 2, 2);
    out.push((toy, None));
    out
}

/// Trains each case for two iterations (with a sample grid and a checkpoint) and
/// compares the most memory held at once with the estimate. Run alone in a child
/// process, so the process-wide peak is this test's.
#[test]
fn the_memory_estimate_bounds_what_training_holds() {
    if std::env::var_os("GANZOO_MEASURE_PEAK").is_none() {
        return rerun_in_child("bounds::the_memory_estimate_bounds_what_training_holds", ("GANZOO_MEASURE_PEAK", "1"));
    }
    for (config, data) in cases() {
        let size = data.as_ref().map(|d| {
            let s = d.shape();
            DataSize { count: d.len(), shape: [s.channels, s.height, s.width] }
        });
        let estimate = training_bytes(&config, size);
        let dir = tempfile::tempdir().unwrap();
        let base = reset_global_peak();
        let mut t =
            Trainer::new(config.clone(), data, RunDir::create(dir.path(), false).unwrap(), Device::Cpu).unwrap();
        t.run(&mut Silent).unwrap();
        let peak = (global_peak() - base) as u128;
        let what = format!("{} on {} at batch {}", config.family.name(), config.data, config.batch_size);
        eprintln!("{what}: held {peak}, estimated {estimate} ({:.2}x)", estimate as f64 / peak as f64);
        assert!(peak <= estimate, "{what}: held {peak} bytes, estimated {estimate}");
        assert!(estimate <= 12 * peak, "{what}: estimate {estimate} is more than 12x the {peak} held");
    }
}

#[test]
fn a_non_finite_stop_says_whether_a_checkpoint_is_kept() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = TrainConfig::preset(Family::WganGp, DataSource::Toy(ToyDistribution::EightGaussians));
    (c.iters, c.batch_size, c.checkpoint_every) = (Some(50), 16, 1000);
    for opt in [&mut c.optimizer_g, &mut c.optimizer_d] {
        *opt = ganzoo::train::Optimizer::Adam { lr: 1e38, beta1: 0.5, beta2: 0.9 };
    }
    let mut t = Trainer::new(c, None, RunDir::create(dir.path(), false).unwrap(), Device::Cpu).unwrap();
    let err = t.run(&mut Silent).unwrap_err().to_string();
    assert!(err.contains("no checkpoint had been written yet") && !err.contains("is kept"), "{err}");
}
