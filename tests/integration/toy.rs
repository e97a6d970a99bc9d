//! Toy distributions: mode centres, spreads and shapes match their definitions.

use ganzoo::data::ToyDistribution;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

fn draw(toy: ToyDistribution, n: usize, seed: u64) -> Vec<[f64; 2]> {
    let pts = toy.sample(n, &mut ChaCha8Rng::seed_from_u64(seed));
    pts.chunks_exact(2).map(|p| [f64::from(p[0]), f64::from(p[1])]).collect()
}

/// Assigns each point to its nearest centre; checks counts and per-mode spread.
fn check_mixture(toy: ToyDistribution, n: usize) {
    let centres = toy.mode_centres().unwrap();
    let sigma = toy.mode_std().unwrap();
    let k = centres.len();
    let mut counts = vec![0usize; k];
    let mut sq = vec![0.0f64; k];
    for p in draw(toy, n, 7) {
        let d2 = |c: &[f64; 2]| (p[0] - c[0]).powi(2) + (p[1] - c[1]).powi(2);
        let (best, c) = centres.iter().enumerate().min_by(|a, b| d2(a.1).total_cmp(&d2(b.1))).unwrap();
        assert!(d2(c).sqrt() < 6.0 * sigma, "point {p:?} is {} from its centre", d2(c).sqrt());
        counts[best] += 1;
        sq[best] += d2(c);
    }
    let expect = n as f64 / k as f64;
    let tol = 5.0 * (expect * (1.0 - 1.0 / k as f64)).sqrt();
    for (i, &c) in counts.iter().enumerate() {
        assert!((c as f64 - expect).abs() < tol, "mode {i}: {c} points, expected {expect}±{tol}");
        // E‖p − c‖² = 2σ² for an isotropic Gaussian.
        let std = (sq[i] / (2.0 * c as f64)).sqrt();
        assert!((std / sigma - 1.0).abs() < 0.1, "mode {i}: std {std}, expected {sigma}");
    }
}

#[test]
fn eight_gaussians_match_the_reference_definition() {
    let c = ToyDistribution::EightGaussians.mode_centres().unwrap();
    assert!((c[0][0] - 2.0 / 1.414).abs() < 1e-12 && c[0][1].abs() < 1e-12);
    assert!((c[1][0] - 2.0f64.sqrt() / 1.414).abs() < 1e-12);
    check_mixture(ToyDistribution::EightGaussians, 16_000);
}

#[test]
fn twenty_five_gaussians_match_the_reference_definition() {
    let c = ToyDistribution::TwentyFiveGaussians.mode_centres().unwrap();
    assert_eq!(c.len(), 25);
    assert!((c[0][0] + 4.0 / 2.828).abs() < 1e-12 && (c[24][1] - 4.0 / 2.828).abs() < 1e-12);
    check_mixture(ToyDistribution::TwentyFiveGaussians, 25_000);
}

#[test]
fn swiss_roll_follows_t_cos_t_t_sin_t() {
    let pts = draw(ToyDistribution::SwissRoll, 20_000, 3);
    let (lo, hi) = (1.5 * std::f64::consts::PI, 4.5 * std::f64::consts::PI);
    let mut mean_r = 0.0;
    for p in &pts {
        // Undo the scaling; ‖(t cos t, t sin t)‖ = t ∈ [1.5π, 4.5π], noise σ = 0.25.
        let r = 7.5 * (p[0] * p[0] + p[1] * p[1]).sqrt();
        assert!(r > lo - 1.5 && r < hi + 1.5, "radius {r}");
        mean_r += r / pts.len() as f64;
    }
    // t is uniform on [1.5π, 4.5π]: mean 3π.
    assert!((mean_r - 3.0 * std::f64::consts::PI).abs() < 0.1, "mean radius {mean_r}");
    // Distance to the nearest point of the noise-free spiral is the noise's normal
    // component: E|N(0, 0.25²)| ≈ 0.2. A wrong curve is much farther away.
    let grid: Vec<(f64, f64)> =
        (0..=3000).map(|k| lo + (hi - lo) * k as f64 / 3000.0).map(|t| (t * t.cos(), t * t.sin())).collect();
    let sub = &pts[..2000];
    let mut resid = 0.0;
    for p in sub {
        let (x, y) = (7.5 * p[0], 7.5 * p[1]);
        let d = grid.iter().map(|(a, b)| (x - a).powi(2) + (y - b).powi(2)).fold(f64::INFINITY, f64::min).sqrt();
        resid += d / sub.len() as f64;
    }
    assert!(resid > 0.1 && resid < 0.3, "mean distance to the spiral {resid}");
}

#[test]
fn parallel_line_is_theta_by_uniform() {
    let pts = draw(ToyDistribution::ParallelLine { theta: 0.7 }, 10_000, 1);
    assert!(pts.iter().all(|p| (p[0] - 0.7).abs() < 1e-6 && (0.0..=1.0).contains(&p[1])));
    let mean = pts.iter().map(|p| p[1]).sum::<f64>() / pts.len() as f64;
    assert!((mean - 0.5).abs() < 0.02);
    assert_eq!("parallel-line:0.7".parse::<ToyDistribution>().unwrap(), ToyDistribution::ParallelLine { theta: 0.7 });
}

#[test]
fn gaussian1d_has_its_mean_and_std() {
    let toy = ToyDistribution::Gaussian1d { mean: 3.0, std: 0.5 };
    let xs = toy.sample(20_000, &mut ChaCha8Rng::seed_from_u64(2));
    let mean = xs.iter().map(|&x| f64::from(x)).sum::<f64>() / xs.len() as f64;
    let var = xs.iter().map(|&x| (f64::from(x) - mean).powi(2)).sum::<f64>() / xs.len() as f64;
    assert!((mean - 3.0).abs() < 0.02 && (var.sqrt() - 0.5).abs() < 0.02, "{mean} {var}");
}

#[test]
fn same_seed_same_points() {
    let a = draw(ToyDistribution::SwissRoll, 100, 5);
    assert_eq!(a, draw(ToyDistribution::SwissRoll, 100, 5));
    assert_ne!(a, draw(ToyDistribution::SwissRoll, 100, 6));
    assert!("9gaussians".parse::<ToyDistribution>().is_err());
}
