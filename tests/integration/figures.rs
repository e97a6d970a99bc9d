//! The papers' figures checked on their numbers (not their pixels): what each figure is
//! meant to show must hold in what ganzoo computes.

use ganzoo::figures::{clipped_weights, critic_vs_discriminator, distances, generator_costs, gradient_norms};
use ganzoo::losses::GeneratorCost;

#[test]
fn generator_costs_follow_their_formulas_and_the_minimax_cost_saturates() {
    let costs = generator_costs::compute().unwrap();
    for (i, &d) in costs.d.iter().enumerate().step_by(97) {
        assert!((costs.minimax[i] - 0.5 * (1.0 - d).ln()).abs() < 1e-9, "minimax at {d}");
        assert!((costs.non_saturating[i] + 0.5 * d.ln()).abs() < 1e-9, "non-saturating at {d}");
        assert!((costs.maximum_likelihood[i] + 0.5 * d / (1.0 - d)).abs() < 1e-9, "maximum likelihood at {d}");
    }
    // Where the generator is bad (D(G(z)) = 0.01): −½/(1 − D) for minimax and maximum
    // likelihood, −½/D for the non-saturating cost — a hundred times steeper.
    let slope = |c| generator_costs::slope(c, 0.01).unwrap();
    assert!((slope(GeneratorCost::Minimax) + 0.5 / 0.99).abs() < 1e-4);
    assert!((slope(GeneratorCost::NonSaturating) + 50.0).abs() < 1e-3);
    assert!((slope(GeneratorCost::MaximumLikelihood) + 0.5 / 0.99f64.powi(2)).abs() < 1e-4);
}

#[test]
fn a_trained_critic_measures_w_and_a_trained_discriminator_sees_only_log_2() {
    let d = distances::compute(0).unwrap();
    assert_eq!(d.estimated.len(), distances::THETAS.len());
    for &(theta, w, js) in &d.estimated {
        assert!((w - theta.abs()).abs() < 0.1, "θ = {theta}: critic W {w}");
        if theta == 0.0 {
            assert!(js.abs() < 0.05, "θ = 0: JS {js}");
        } else {
            assert!(js > 0.6 && js < std::f64::consts::LN_2 + 0.01, "θ = {theta}: JS {js}");
        }
    }
}

#[test]
fn the_discriminator_saturates_where_the_critic_keeps_its_slope() {
    let f = critic_vs_discriminator::compute(0).unwrap();
    let (dl, dr) = critic_vs_discriminator::end_slopes(&f.x, &f.discriminator);
    let (cl, cr) = critic_vs_discriminator::end_slopes(&f.x, &f.critic);
    assert!(dl < 1e-3 && dr < 1e-3, "discriminator slopes at the ends {dl} {dr}");
    assert!(cl > 0.1 && cr > 0.1, "critic slopes at the ends {cl} {cr}");
}

#[test]
fn clipping_piles_weights_at_plus_minus_c_and_the_penalty_does_not() {
    let f = clipped_weights::compute(0, 30).unwrap();
    let (clipped, penalised) =
        (clipped_weights::share_at_extremes(&f.clipped), clipped_weights::share_at_extremes(&f.penalised));
    assert!(f.clipped.iter().all(|w| w.abs() <= clipped_weights::CLIP + 1e-9));
    assert!(clipped > 0.5 && penalised < 0.01, "shares at the extremes: {clipped} vs {penalised}");
}

#[test]
fn clipped_deep_critics_explode_or_vanish_and_the_penalty_stays_flat() {
    let f = gradient_norms::compute(0, 30).unwrap();
    let decades: Vec<f64> = f.curves.iter().map(|c| gradient_norms::decades_across(&c.2)).collect();
    println!("decades from input to output: {decades:?}");
    assert_eq!(f.curves.iter().map(|c| c.2.len()).collect::<Vec<_>>(), [13; 4]);
    // c = 0.1 explodes towards the input; 0.01 and 0.001 vanish; the penalty's critic stays within a decade.
    assert!(decades[0] < -3.0 && decades[1] > 5.0 && decades[2] > 5.0, "{decades:?}");
    let gp = &f.curves[3].2;
    let (lo, hi) = gp.iter().fold((f64::MAX, f64::MIN), |(a, b), &v| (a.min(v), b.max(v)));
    assert!(hi - lo < 1.0, "penalty critic's gradient norms span {lo}..{hi} decades");
}

#[test]
fn figure_files_are_written_and_never_replaced_without_overwrite() {
    use ganzoo::figures::{make, Existing, Figure, Options};
    use ganzoo::train::Silent;
    let dir = tempfile::tempdir().unwrap();
    let options = Options::new(dir.path().join("figs"));
    let made = make(Figure::GeneratorCosts, &options, &mut Silent).unwrap();
    let png = std::fs::read(&made.png).unwrap();
    assert_eq!(&png[1..4], b"PNG");
    let csv = std::fs::read_to_string(&made.csv).unwrap();
    assert!(csv.starts_with("d_g_z,minimax,non_saturating,maximum_likelihood\n") && csv.lines().count() == 1000);
    let e = make(Figure::GeneratorCosts, &options, &mut Silent).unwrap_err().to_string();
    assert!(e.contains("--overwrite") && e.contains("generator-costs.png"), "{e}");
    assert_eq!(std::fs::read(&made.png).unwrap(), png, "the first file is untouched");
    // Resuming keeps a whole figure made with the settings asked now; one made otherwise,
    // or with no record of how (figures.json), is refused, as is half a figure.
    let resume = Options { existing: Existing::Resume, ..options.clone() };
    assert!(make(Figure::GeneratorCosts, &resume, &mut Silent).unwrap().kept);
    let manifest = dir.path().join("figs/figures.json");
    let recorded = std::fs::read_to_string(&manifest).unwrap();
    assert!(recorded.contains("\"generator-costs\"") && recorded.contains("\"seed\": 0"), "{recorded}");
    let e = make(Figure::GeneratorCosts, &Options { seed: 1, ..resume.clone() }, &mut Silent).unwrap_err().to_string();
    assert!(e.contains("was made with --seed 0 (--seed 1 asked now)"), "{e}");
    std::fs::remove_file(&manifest).unwrap();
    let e = make(Figure::GeneratorCosts, &resume, &mut Silent).unwrap_err().to_string();
    assert!(e.contains("has no record in figures.json"), "{e}");
    std::fs::write(&manifest, "{\"mine\": true}").unwrap();
    let e = make(Figure::GeneratorCosts, &options, &mut Silent).unwrap_err().to_string();
    assert!(e.contains("figures.json: is not ganzoo's record"), "{e}");
    assert_eq!(std::fs::read_to_string(&manifest).unwrap(), "{\"mine\": true}", "a file of theirs is never replaced");
    std::fs::write(&manifest, recorded).unwrap();
    std::fs::remove_file(&made.csv).unwrap();
    let e = make(Figure::GeneratorCosts, &resume, &mut Silent).unwrap_err().to_string();
    assert!(e.contains("generator-costs.png: exists without") && e.contains("generator-costs.csv"), "{e}");
    assert_eq!(std::fs::read(&made.png).unwrap(), png);
    make(Figure::GeneratorCosts, &Options { existing: Existing::Replace, ..options }, &mut Silent).unwrap();
    assert!("nope".parse::<Figure>().unwrap_err().contains("distances"));
}

#[test]
fn one_process_at_a_time_makes_figures_in_a_folder() {
    use ganzoo::figures::{make, Existing, Figure, Options, LOCK_FILE};
    use ganzoo::train::{lock::RunLock, Silent};
    let dir = tempfile::tempdir().unwrap();
    let options = Options { existing: Existing::Replace, ..Options::new(dir.path().to_path_buf()) };
    // Another writer (a flock on its own descriptor, as another process's would be).
    let other = RunLock::acquire_named(dir.path(), LOCK_FILE).unwrap();
    let e = make(Figure::GeneratorCosts, &options, &mut Silent).unwrap_err().to_string();
    let pid = std::process::id();
    assert!(e.contains(&format!("in use by process {pid}: one command makes figures in a folder at a time")), "{e}");
    assert!(!dir.path().join("generator-costs.png").exists() && !dir.path().join("figures.json").exists());
    drop(other);
    assert!(!make(Figure::GeneratorCosts, &options, &mut Silent).unwrap().kept);
    assert!(dir.path().join("figures.json").exists());
    // A training run's folder is not a figures folder, --overwrite or not.
    let run = dir.path().join("run");
    ganzoo::train::RunDir::create(&run, false).unwrap();
    let e = make(Figure::GeneratorCosts, &Options { out: run.clone(), ..options }, &mut Silent).unwrap_err();
    assert!(e.to_string().contains("is a training run"), "{e}");
    assert!(!run.join("generator-costs.png").exists() && !run.join("figures.json").exists());
}

#[test]
fn mode_coverage_runs_each_preset_on_each_toy_and_keeps_the_runs() {
    use ganzoo::figures::mode_coverage::{compute, Budget, Training, PRESETS, PUBLISHED, TOYS};
    use ganzoo::figures::{Existing, FigureError};
    use ganzoo::train::Silent;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    let dir = tempfile::tempdir().unwrap();
    let budget = Budget { iters: 10, eval_every: 10, seeds: 1 };
    let stop = Arc::new(AtomicBool::new(false));
    let coverage = |budget: Budget, runs: &std::path::Path, existing| {
        compute(budget, 3, runs, &mut Training { existing, stop: Arc::clone(&stop), observer: &mut Silent })
    };
    let cov = coverage(budget, dir.path(), Existing::Refuse).unwrap();
    assert_eq!(cov.len(), TOYS.len() * PRESETS.len());
    for c in &cov {
        assert_eq!(c.modes, if c.toy == TOYS[0] { 8 } else { 25 });
        assert_eq!(c.points.iter().map(|p| p.0).collect::<Vec<_>>(), [10]);
        assert!(c.points.iter().all(|p| p.1 >= 0.0 && p.1 <= c.modes as f64 && (0.0..=1.0).contains(&p.2)), "{c:?}");
        let run = dir.path().join(format!("{}-{}-s3", c.preset.name(), c.toy.name()));
        assert!(run.join("metrics.jsonl").is_file() && run.join(".ganzoo-run").is_file());
    }
    assert_eq!(PUBLISHED, [("VEEGAN's GAN", 1.0, 3.3), ("PacGAN's GAN", 6.3, 17.3)]);
    // The runs are not overwritten without being asked to.
    assert!(coverage(budget, dir.path(), Existing::Refuse).is_err());
    // Resumed, finished runs are only read: nothing in them changes.
    let before = crate::run_dir::snapshot(dir.path());
    let again = coverage(budget, dir.path(), Existing::Resume).unwrap();
    assert_eq!(format!("{again:?}"), format!("{cov:?}"));
    assert!(crate::run_dir::snapshot(dir.path()) == before, "a finished run was written");
    // A stop ends the run in progress with a checkpoint; resuming (that run from its
    // checkpoint, one killed before its first trained again) gives the same figure as
    // training without a stop.
    let other = dir.path().join("stopped");
    stop.store(true, Ordering::SeqCst);
    match coverage(budget, &other, Existing::Refuse) {
        Err(FigureError::Stopped { run, iteration: 0 }) => assert!(run.join("checkpoints/latest").is_file()),
        e => panic!("expected a stop at iteration 0, got {e:?}"),
    }
    stop.store(false, Ordering::SeqCst);
    // The second run as a kill before its first checkpoint leaves it: begun, no checkpoint.
    let second = &ganzoo::figures::mode_coverage::plan(budget, 3, &other)[1];
    let begun = ganzoo::train::RunDir::create(&second.path, false).unwrap();
    drop(ganzoo::train::Trainer::new(second.config.clone(), None, begun, candle_core::Device::Cpu).unwrap());
    assert!(second.path.join("config.toml").is_file() && !second.path.join("checkpoints").exists());
    let resumed = coverage(budget, &other, Existing::Resume).unwrap();
    assert_eq!(format!("{resumed:?}"), format!("{cov:?}"));
    // Runs of another measurement spacing are not continued as this one's.
    let spaced = Budget { iters: 10, eval_every: 5, seeds: 1 };
    let e = coverage(spaced, dir.path(), Existing::Resume).unwrap_err().to_string();
    assert!(e.contains("was trained with other settings") && e.contains("`log_every` 10 (asked 5)"), "{e}");
}

#[test]
fn the_penalised_critic_peaks_on_the_modes_and_the_clipped_one_does_not() {
    use ganzoo::data::ToyDistribution;
    use ganzoo::figures::value_surfaces::{compute_on, mode_contrast, N, STEPS};
    let surfaces = compute_on(&[ToyDistribution::EightGaussians], 0, STEPS).unwrap();
    assert_eq!(surfaces.len(), 2);
    assert!(surfaces.iter().all(|s| s.values.len() == N * N && s.values.iter().all(|v| v.is_finite())));
    let (clipped, penalised) = (mode_contrast(&surfaces[0]).unwrap(), mode_contrast(&surfaces[1]).unwrap());
    // Measured with seed 0: clipping −0.033, penalty +0.050 of each surface's range.
    assert!(penalised > 0.02 && clipped < 0.0, "contrast at the modes: clipping {clipped}, penalty {penalised}");
}
