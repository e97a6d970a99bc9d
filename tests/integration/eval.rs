//! Quality metrics against what they must give: closed forms, brute force, and real
//! versus collapsed or uniform samples.

use ganzoo::data::ToyDistribution;
use ganzoo::eval::transport::{w1_exact, w1_sliced, W1Method};
use ganzoo::eval::{frechet_distance, kernel_inception_distance, toy_metrics, EvalError, Gaussian};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;

fn normal(n: usize, dim: usize, shift: f32, seed: u64) -> Vec<f32> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..n * dim).map(|_| rng.sample::<f32, _>(StandardNormal) + shift).collect()
}

#[test]
fn exact_real_samples_cover_every_mode_at_the_gaussian_rate() {
    for (toy, modes) in [(ToyDistribution::EightGaussians, 8), (ToyDistribution::TwentyFiveGaussians, 25)] {
        let real = toy.sample(2000, &mut ChaCha8Rng::seed_from_u64(5));
        let r = toy_metrics(toy, &real, 1).unwrap();
        assert_eq!((r.modes, r.modes_covered, r.modes_covered_strict), (Some(modes), Some(modes), Some(modes)));
        // Within 3σ of the centre: 1 − e^{−9/2} = 0.98889 for a 2-D isotropic Gaussian.
        let hq = r.high_quality.unwrap();
        assert!((hq - (1.0 - (-4.5f64).exp())).abs() < 0.01, "{toy:?}: {hq}");
        assert!(r.kl_uniform.unwrap() < 0.02, "{r:?}");
        assert_eq!(r.w1_method, W1Method::ExactAssignment);
        assert!(r.w1 < 1.5 * r.w1_real_floor + 1e-3, "{r:?}");
    }
}

#[test]
fn a_collapsed_generator_covers_one_mode_and_uniform_noise_none() {
    let toy = ToyDistribution::EightGaussians;
    let centre = toy.mode_centres().unwrap()[3];
    let mut rng = ChaCha8Rng::seed_from_u64(2);
    let collapsed: Vec<f32> =
        (0..500).flat_map(|_| [centre[0] as f32 + rng.random_range(-0.01..0.01), centre[1] as f32]).collect();
    let r = toy_metrics(toy, &collapsed, 1).unwrap();
    assert_eq!((r.modes_covered, r.modes_covered_strict), (Some(1), Some(1)));
    assert!((r.kl_uniform.unwrap() - 8f64.ln()).abs() < 1e-12, "one mode: KL = ln 8");
    assert!(r.w1 > 5.0 * r.w1_real_floor, "{r:?}");
    let uniform: Vec<f32> = (0..1000).map(|_| rng.random_range(-2.0..2.0)).collect();
    let u = toy_metrics(toy, &uniform, 1).unwrap();
    assert!(u.high_quality.unwrap() < 0.01 && u.w1 > 3.0 * u.w1_real_floor, "{u:?}");
    let roll = toy_metrics(ToyDistribution::SwissRoll, &uniform, 1).unwrap();
    assert_eq!((roll.modes, roll.high_quality), (None, None));
    assert!(roll.w1 > 3.0 * roll.w1_real_floor, "{roll:?}");
}

#[test]
fn bad_samples_are_errors_not_nans() {
    let toy = ToyDistribution::EightGaussians;
    assert!(matches!(toy_metrics(toy, &[0.0, 1.0, 2.0], 0), Err(EvalError::Samples(_))));
    assert!(matches!(toy_metrics(toy, &[], 0), Err(EvalError::Samples(_))));
    let err = toy_metrics(toy, &[0.0, f32::NAN], 0).unwrap_err();
    assert!(matches!(err, EvalError::NonFinite { index: 1, .. }), "{err:?}");
    assert_eq!(err.to_string(), "a non-finite value in the samples at index 1");
    let few = normal(10, 16, 0.0, 1);
    let err = Gaussian::fit(&few, 16).unwrap_err();
    assert!(matches!(err, EvalError::TooFew { needed: 17, got: 10, .. }), "{err}");
}

#[test]
fn exact_w1_is_the_best_assignment_and_sliced_w1_its_projection() {
    // Brute force over all 720 permutations of 6 points.
    let (a, b) = (normal(6, 2, 0.0, 3), normal(6, 2, 0.5, 4));
    let dist =
        |i: usize, j: usize| ((a[2 * i] - b[2 * j]).powi(2) + (a[2 * i + 1] - b[2 * j + 1]).powi(2)).sqrt() as f64;
    let mut best = f64::MAX;
    let mut perm: Vec<usize> = (0..6).collect();
    permutations(&mut perm, 0, &mut |p| {
        best = best.min(p.iter().enumerate().map(|(i, &j)| dist(i, j)).sum::<f64>() / 6.0)
    });
    assert!((w1_exact(&a, &b, 2).unwrap() - best).abs() < 1e-6, "brute force in f32 distances");
    // A set and its translate by t: W1 = |t|; sliced, |t|·E|cos θ| = |t|·2/π in 2-D.
    let a = normal(300, 2, 0.0, 5);
    let b: Vec<f32> = a.chunks_exact(2).flat_map(|p| [p[0] + 3.0, p[1] + 4.0]).collect();
    assert!((w1_exact(&a, &b, 2).unwrap() - 5.0).abs() < 1e-5);
    let sliced = w1_sliced(&a, &b, 2, 7).unwrap();
    // 256 random directions: the standard error of the mean |cos| is about 0.1 here.
    assert!((sliced - 5.0 * 2.0 / std::f64::consts::PI).abs() < 0.3, "{sliced}");
    // In one dimension the slices are exact.
    let (x, y) = (normal(500, 1, 0.0, 8), normal(500, 1, 1.0, 9));
    assert!((w1_sliced(&x, &y, 1, 0).unwrap() - w1_exact(&x, &y, 1).unwrap()).abs() < 1e-9);
}

fn permutations(p: &mut Vec<usize>, k: usize, visit: &mut impl FnMut(&[usize])) {
    if k == p.len() {
        return visit(p);
    }
    for i in k..p.len() {
        p.swap(k, i);
        permutations(p, k + 1, visit);
        p.swap(k, i);
    }
}

fn gaussian(mean: Vec<f64>, diag: &[f64]) -> Gaussian {
    let d = diag.len();
    let cov = (0..d * d).map(|k| if k / d == k % d { diag[k / d] } else { 0.0 }).collect();
    Gaussian { mean, cov }
}

#[test]
fn frechet_distance_matches_closed_forms() {
    // pytorch-fid's own check: 2048-d, means 0 and 1, identity covariances => 2048.
    let d = 2048;
    let fid = frechet_distance(&gaussian(vec![0.0; d], &vec![1.0; d]), &gaussian(vec![1.0; d], &vec![1.0; d])).unwrap();
    assert!((fid - 2048.0).abs() < 1e-6, "{fid}");
    // Diagonal covariances: ‖μ₁−μ₂‖² + Σ (√a − √b)².
    let (a, b) = ([1.0, 4.0, 0.25, 9.0], [4.0, 1.0, 1.0, 9.0]);
    let expected =
        1.0 + 4.0 + (a.iter().zip(&b).map(|(x, y): (&f64, &f64)| (x.sqrt() - y.sqrt()).powi(2)).sum::<f64>());
    let got =
        frechet_distance(&gaussian(vec![0.0, 0.0, 0.0, 0.0], &a), &gaussian(vec![1.0, 2.0, 0.0, 0.0], &b)).unwrap();
    assert!((got - expected).abs() < 1e-10, "{got} vs {expected}");
    // Equal (full) covariances: only the means count; a set against itself: 0.
    let feats = normal(400, 8, 0.0, 11);
    let g = Gaussian::fit(&feats, 8).unwrap();
    let shifted = Gaussian { mean: g.mean.iter().map(|m| m + 0.5).collect(), cov: g.cov.clone() };
    assert!((frechet_distance(&g, &shifted).unwrap() - 8.0 * 0.25).abs() < 1e-9);
    assert!(frechet_distance(&g, &g).unwrap().abs() < 1e-9);
    // Fitting: unbiased covariance of a known set.
    let two = Gaussian::fit(&[0.0, 0.0, 2.0, 2.0, 4.0, -2.0], 2).unwrap();
    assert_eq!(two.mean, vec![2.0, 0.0]);
    assert_eq!(two.cov, vec![4.0, -2.0, -2.0, 4.0]);
}

#[test]
fn kid_is_unbiased_between_equal_distributions_and_positive_between_different_ones() {
    let d = 16;
    let (a, b) = (normal(2000, d, 0.0, 21), normal(2000, d, 0.0, 22));
    let same = kernel_inception_distance(&a, &b, d, 50, 500, 1).unwrap();
    // Unbiased: the mean over subsets is within a few standard errors of 0.
    assert!(same.mean.abs() < 3.0 * same.std / (50f64).sqrt() + 1e-4, "{same:?}");
    let c = normal(2000, d, 0.5, 23);
    let far = kernel_inception_distance(&a, &c, d, 50, 500, 1).unwrap();
    assert!(far.mean > 20.0 * same.std.max(1e-6) && far.mean > 0.05, "{far:?} vs {same:?}");
    assert_eq!((far.subsets, far.subset_size), (50, 500));
    assert!(kernel_inception_distance(&a[..d], &b, d, 10, 100, 0).is_err(), "one row is too few");
}

#[test]
fn the_score_counts_confident_distinct_classes_and_precision_recall_see_overlap() {
    use ganzoo::eval::image::inception_score;
    let precision_recall = |real: &[f32], fake: &[f32], dim, k| {
        ganzoo::eval::precision_recall::precision_recall(real, fake, dim, k, &mut |_, _| {})
    };
    // One-hot predictions spread evenly over 10 classes: exp(ln 10) = 10; all alike: 1.
    let one_hot: Vec<f32> = (0..100).flat_map(|i| (0..10).map(move |k| if k == i % 10 { 1.0 } else { 0.0 })).collect();
    assert!((inception_score(&one_hot, 10) - 10.0).abs() < 1e-9);
    let same: Vec<f32> = (0..100).flat_map(|_| (0..10).map(|k| if k == 3 { 1.0 } else { 0.0 })).collect();
    assert!((inception_score(&same, 10) - 1.0).abs() < 1e-9);
    let a = normal(300, 8, 0.0, 31);
    let b = normal(300, 8, 0.0, 32);
    let (p, r) = precision_recall(&a, &b, 8, 3).unwrap();
    assert!(p > 0.8 && r > 0.8, "same distribution: {p} {r}");
    let far = normal(300, 8, 50.0, 33);
    assert_eq!(precision_recall(&a, &far, 8, 3).unwrap(), (0.0, 0.0));
    // A generator covering half the real support: high precision, recall about a half.
    let half: Vec<f32> = b.chunks_exact(8).filter(|p| p[0] > 0.0).flatten().copied().collect();
    let (p, r) = precision_recall(&a, &half, 8, 3).unwrap();
    assert!(p > 0.8 && r < 0.7, "half the support: precision {p}, recall {r}");
}

/// Precision and recall by their definition, pair by pair: squared distances as sums of
/// squared differences, each radius from all of a point's distances sorted.
fn precision_recall_by_definition(real: &[f32], fake: &[f32], dim: usize, k: usize) -> (f64, f64) {
    let d2 = |x: &[f32], y: &[f32]| x.iter().zip(y).map(|(a, b)| (f64::from(*a) - f64::from(*b)).powi(2)).sum::<f64>();
    let radii = |set: &[f32]| -> Vec<f64> {
        let rows: Vec<&[f32]> = set.chunks_exact(dim).collect();
        (0..rows.len())
            .map(|i| {
                let mut d: Vec<f64> = (0..rows.len()).filter(|&j| j != i).map(|j| d2(rows[i], rows[j])).collect();
                d.sort_by(f64::total_cmp);
                d[k - 1]
            })
            .collect()
    };
    let share_inside = |query: &[f32], support: &[f32], radii: &[f64]| {
        let support: Vec<&[f32]> = support.chunks_exact(dim).collect();
        let hits = query.chunks_exact(dim).filter(|q| support.iter().zip(radii).any(|(s, &r)| d2(q, s) <= r)).count();
        hits as f64 / (query.len() / dim) as f64
    };
    (share_inside(fake, real, &radii(real)), share_inside(real, fake, &radii(fake)))
}

/// The blocked, tiled, parallel computation gives the definition's numbers exactly
/// (small integer features: every distance exact, ties at the balls' edges included),
/// the same on 1 and 3 threads, and reports its pairs up to `(n + m)²`; bad input is an
/// error, not a NaN.
#[test]
fn precision_recall_match_their_definition_on_any_number_of_threads() {
    use ganzoo::eval::precision_recall::precision_recall;
    let dim = 3;
    // 2,300 generated points (5 blocks of 512 rows, two tiles of 2,048) and 700 real ones.
    let ints = |n: usize, seed: u64, shift: f32| -> Vec<f32> {
        normal(n, dim, shift, seed).iter().map(|v| (v * 3.0).round()).collect()
    };
    let (real, fake) = (ints(700, 41, 0.0), ints(2300, 42, 1.5));
    let expected = precision_recall_by_definition(&real, &fake, dim, 3);
    let between = |v: f64| (0.2..0.95).contains(&v);
    assert!(between(expected.0) && between(expected.1), "a test that can tell: {expected:?}");
    let on = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
        let mut reports = Vec::new();
        let got = pool.install(|| precision_recall(&real, &fake, dim, 3, &mut |d, t| reports.push((d, t)))).unwrap();
        (got, reports)
    };
    let ((one, reports), (three, _)) = (on(1), on(3));
    assert_eq!(one, expected);
    assert_eq!(three, one);
    let total = 3000u64 * 3000;
    assert!(reports.windows(2).all(|w| w[0].0 < w[1].0 && w[0].1 == total), "{reports:?}");
    assert_eq!(reports.last(), Some(&(total, total)));
    let mut nan = fake.clone();
    nan[7] = f32::NAN;
    assert!(precision_recall(&real, &nan, dim, 3, &mut |_, _| {}).is_err());
    assert!(precision_recall(&real, &fake[..3 * dim], dim, 3, &mut |_, _| {}).is_err(), "k + 1 points needed");
}

#[test]
fn a_gaussian_fit_is_the_same_on_any_number_of_threads() {
    // 300 features: three blocks of the covariance's columns.
    let x = normal(400, 300, 0.2, 53);
    let on = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
        pool.install(|| Gaussian::fit(&x, 300)).unwrap()
    };
    let one = on(1);
    assert_eq!(on(3), one);
    // Symmetric, and each entry the definition's sum.
    let (n, d) = (400, 300);
    for (i, j) in [(0, 0), (5, 170), (170, 5), (299, 128), (127, 299)] {
        let sum: f64 =
            (0..n).map(|r| (f64::from(x[r * d + i]) - one.mean[i]) * (f64::from(x[r * d + j]) - one.mean[j])).sum();
        let expected = sum / (n - 1) as f64;
        assert!((one.cov[i * d + j] - expected).abs() < 1e-12 * expected.abs().max(1.0), "Σ[{i},{j}]");
    }
}

#[test]
fn kid_is_the_same_on_any_number_of_threads() {
    let (a, b) = (normal(1500, 16, 0.0, 51), normal(1200, 16, 0.3, 52));
    let on = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
        pool.install(|| kernel_inception_distance(&a, &b, 16, 40, 300, 9)).unwrap()
    };
    let one = on(1);
    assert!(one.mean > 0.0, "{one:?}");
    assert_eq!(on(4), one);
}

#[test]
fn a_classifier_learns_the_digits_and_its_features_score_real_against_noise() {
    use candle_core::{Device, Tensor};
    use ganzoo::eval::classifier::{Classifier, ClassifierCard};
    use ganzoo::eval::image::{image_metrics, see};
    let card = ClassifierCard {
        dataset: "digits".into(),
        channels: 1,
        image_size: 28,
        width: 8,
        classes: 10,
        seed: 3,
        epochs: 0,
        test_accuracy: None,
        command: "test".into(),
    };
    let mut c = Classifier::new(card, &Device::Cpu).unwrap();
    let test = crate::common::digits(300, 12);
    let accuracy = c.fit(crate::common::digits(1280, 11), &test, 3, |_, _| {}).unwrap();
    assert!(accuracy > 0.9, "the bars' 10 angles are easy: {accuracy}");
    // Saved in f16 and loaded back: the same predictions, features within 1e-3 (relative).
    let dir = tempfile::tempdir().unwrap();
    c.save(&dir.path().join("c")).unwrap();
    let back = Classifier::load_files(&dir.path().join("c"), &Device::Cpu).unwrap();
    assert_eq!(back.card.test_accuracy, Some(accuracy));
    let ids: Vec<usize> = (0..300).collect();
    let (images, _) = test.gather(&ids, &Device::Cpu).unwrap();
    let (x, y) = (see(&c, &images).unwrap(), see(&back, &images).unwrap());
    let scale = x.features.iter().fold(0f32, |m, v| m.max(v.abs()));
    let worst = x.features.iter().zip(&y.features).fold(0f32, |m, (a, b)| m.max((a - b).abs()));
    assert!(worst <= 1e-3 * scale.max(1.0), "{worst} of {scale}");
    // Real against real is close, noise far; the score of real data nears the class count.
    let other = crate::common::digits(300, 13);
    let (o, _) = other.gather(&ids, &Device::Cpu).unwrap();
    let real = see(&c, &o).unwrap();
    let same = image_metrics("digits", &x, &real, 0).unwrap();
    let noise = Tensor::rand(-1f32, 1.0, (300, 1, 28, 28), &Device::Cpu).unwrap();
    let fake = image_metrics("digits", &see(&c, &noise).unwrap(), &real, 0).unwrap();
    assert!(fake.fid > 10.0 * same.fid, "noise {} vs real {}", fake.fid, same.fid);
    assert!(fake.kid.mean > 10.0 * same.kid.mean.abs().max(1e-9), "{:?} vs {:?}", fake.kid, same.kid);
    assert!(same.inception_score.unwrap() > 8.0 && same.classes_covered == Some(10), "{same:?}");
    assert!(same.precision > 0.8 && same.recall > 0.8 && fake.precision < 0.2, "{same:?} {fake:?}");
    // Images out of range or of another shape are errors.
    assert!(see(&c, &(noise.clone() * 3.0).unwrap()).is_err());
    assert!(see(&c, &Tensor::zeros((2, 3, 28, 28), candle_core::DType::F32, &Device::Cpu).unwrap()).is_err());
}

#[test]
fn the_shipped_classifiers_load_and_state_their_accuracy() {
    use ganzoo::eval::classifier::{shipped, Classifier};
    for (dataset, floor) in [("mnist", 0.985), ("fashion-mnist", 0.91), ("cifar10", 0.63)] {
        let (weights, card) = shipped(dataset).unwrap();
        let c = Classifier::load(weights, card, &candle_core::Device::Cpu).unwrap();
        assert_eq!(c.card.dataset, dataset);
        assert!(c.card.test_accuracy.unwrap() >= floor, "{:?}", c.card);
        assert!(c.card.command.starts_with(&format!("ganzoo train classifier --dataset {dataset} --seed")));
    }
    assert!(shipped("folder:pictures").is_none());
}

#[test]
#[ignore = "reads real data (../shared/data, dataset-fashion-mnist): run with --include-ignored"]
fn the_shipped_classifiers_score_what_their_cards_say_on_the_real_test_sets() {
    use ganzoo::data::KnownDataset;
    use ganzoo::eval::classifier::{shipped, Classifier};
    for (dataset, dir) in [
        (KnownDataset::Mnist, crate::common::shared_data().join("mnist")),
        (KnownDataset::FashionMnist, std::path::PathBuf::from("/usr/share/datasets/fashion-mnist")),
        (KnownDataset::Cifar10, crate::common::shared_data().join("cifar-10-batches-bin")),
    ] {
        let (weights, card) = shipped(&dataset.to_string()).unwrap();
        let c = Classifier::load(weights, card, &candle_core::Device::Cpu).unwrap();
        let test = dataset.load_from(&dir).unwrap().test.unwrap();
        let accuracy = c.accuracy(&test).unwrap();
        assert!((accuracy - c.card.test_accuracy.unwrap()).abs() < 1e-9, "{dataset}: {accuracy} vs {:?}", c.card);
    }
}

fn metrics_lines(run: &std::path::Path) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(run.join("metrics.jsonl")).unwrap();
    text.lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

#[test]
fn eval_every_puts_toy_metrics_into_the_metrics_lines() {
    use ganzoo::train::{DataSource, Family, RunDir, Silent, TrainConfig, Trainer};
    let dir = tempfile::tempdir().unwrap();
    let mut c = TrainConfig::preset(Family::WganGp, DataSource::Toy(ToyDistribution::EightGaussians));
    (c.iters, c.batch_size, c.log_every, c.sample_every, c.checkpoint_every) = (Some(4), 32, 1, 100, 100);
    c.eval_every = Some(2);
    let mut t =
        Trainer::new(c.clone(), None, RunDir::create(dir.path(), false).unwrap(), candle_core::Device::Cpu).unwrap();
    t.run(&mut Silent).unwrap();
    let lines = metrics_lines(dir.path());
    let measured: Vec<u64> =
        lines.iter().filter(|l| l["eval"].is_object()).map(|l| l["iteration"].as_u64().unwrap()).collect();
    assert_eq!(measured, [2, 4]);
    assert_eq!(lines[1]["eval"]["samples"].as_u64(), Some(2000));
    assert_eq!(lines[1]["eval"]["modes"].as_u64(), Some(8));
    // The same run measured again gives the same numbers (fixed noise and real draws).
    let again = ganzoo::train::TrainedGenerator::load(dir.path(), &candle_core::Device::Cpu).unwrap();
    assert_eq!(again.config.eval_every, Some(2));
    // Measuring does not change the run: the same generator bits without it.
    let plain_dir = tempfile::tempdir().unwrap();
    let plain = TrainConfig { eval_every: None, ..c.clone() };
    let mut t =
        Trainer::new(plain, None, RunDir::create(plain_dir.path(), false).unwrap(), candle_core::Device::Cpu).unwrap();
    t.run(&mut Silent).unwrap();
    let generator =
        |run: &std::path::Path| std::fs::read(run.join("checkpoints/step-00000004/generator.safetensors")).unwrap();
    assert!(generator(dir.path()) == generator(plain_dir.path()), "--eval-every changed the training");
    let mut bad = TrainConfig::preset(Family::WganGp, c.data.clone());
    (bad.log_every, bad.eval_every) = (2, Some(3));
    assert!(bad.validate().unwrap_err().to_string().contains("multiple of --log-every"));
}

#[test]
fn eval_every_puts_image_metrics_into_the_metrics_lines() {
    use candle_core::Device;
    use ganzoo::data::{DatasetSpec, KnownDataset};
    use ganzoo::eval::classifier::{shipped, Classifier};
    use ganzoo::eval::feature_cache::real_features;
    use ganzoo::eval::image::FeatureExtractor;
    use ganzoo::train::{DataSource, Family, ImageEval, RunDir, Silent, TrainConfig, Trainer};
    let data = || crate::common::digits(200, 4);
    let mut c = TrainConfig::preset(Family::Gan, DataSource::Images(DatasetSpec::Known(KnownDataset::Mnist)));
    (c.epochs, c.iters, c.batch_size, c.log_every, c.sample_every, c.checkpoint_every) =
        (None, Some(2), 16, 1, 100, 100);
    c.eval_every = Some(2);
    let dir = tempfile::tempdir().unwrap();
    let trainer = || Trainer::new(c.clone(), Some(data()), RunDir::create(dir.path(), true).unwrap(), Device::Cpu);
    // Without a feature network an image run cannot be measured: said at the start.
    let e = trainer().unwrap().run(&mut Silent).unwrap_err().to_string();
    assert!(e.contains("with_image_eval"), "{e}");
    let (weights, card) = shipped("mnist").unwrap();
    let net = FeatureExtractor::Classifier(Box::new(Classifier::load(weights, card, &Device::Cpu).unwrap()));
    let real = real_features(&net, &data(), &[], |_, _| {}).unwrap();
    let mut t = trainer().unwrap().with_image_eval(ImageEval { net, real });
    t.run(&mut Silent).unwrap();
    let lines = metrics_lines(dir.path());
    let eval = &lines[1]["eval"];
    assert!(lines[0].get("eval").is_none());
    assert_eq!((eval["samples"].as_u64(), eval["real_samples"].as_u64()), (Some(2000), Some(200)));
    assert_eq!(eval["class_histogram"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap()).sum::<u64>(), 2000);
    assert!(eval["fid"].as_f64().unwrap() > 0.0 && dir.path().join("quality.png").is_file(), "{eval}");
    // The line reads back into the typed report.
    let m: ganzoo::train::Metrics = serde_json::from_value(lines[1].clone()).unwrap();
    assert!(matches!(m.eval, Some(ganzoo::eval::EvalReport::Image(_))));
    // It says what it was measured against: the network's weights and the real images.
    let fingerprint = ganzoo::eval::feature_cache::fingerprint_split(&data());
    assert_eq!(eval["reference"]["real"].as_str(), Some(fingerprint.as_str()), "{eval}");
    assert!(eval["reference"]["network"].as_str().unwrap().starts_with("classifier-mnist-"), "{eval}");
}
