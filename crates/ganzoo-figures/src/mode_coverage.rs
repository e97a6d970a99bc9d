//! `mode-coverage`: modes covered and the high-quality share against generator
//! iterations for `gan`, `wgan` and `wgan-gp` on 8 and 25 Gaussians, each trained with
//! its toy preset at the same budget and measured with `--eval-every` (2,000 samples of
//! fixed noise), averaged over seeds; beside the GAN numbers VEEGAN (Srivastava et al.
//! 2017, table 1: 1 of 8 modes on its ring, 3.3 of 25 on its grid) and PacGAN (Lin et
//! al. 2018, table 2: 6.3 of 8, 17.3 of 25) publish. Runs are kept in
//! `OUT/mode-coverage-runs/` (each a normal run directory: `ganzoo eval` and `sample` work on it).

use std::path::{Path, PathBuf};

use candle_core::Device;
use ganzoo_data::ToyDistribution;
use ganzoo_eval::EvalReport;
use ganzoo_train::config::Preset;
use ganzoo_train::{DataSource, RunDir, Silent, TrainConfig, Trainer};

use ganzoo_charts::{Chart, Mark, Series};

use crate::files::{save_csv, save_png};
use crate::Result;

pub const TOYS: [ToyDistribution; 2] = [ToyDistribution::EightGaussians, ToyDistribution::TwentyFiveGaussians];
pub const PRESETS: [Preset; 3] = [Preset::Gan, Preset::Wgan, Preset::WganGp];
/// `(source, GAN modes on 8 Gaussians, on 25 Gaussians)`.
pub const PUBLISHED: [(&str, f64, f64); 2] = [("VEEGAN's GAN", 1.0, 3.3), ("PacGAN's GAN", 6.3, 17.3)];

/// The budget of the command's runs.
#[derive(Debug, Clone, Copy)]
pub struct Budget {
    pub iters: u64,
    pub eval_every: u64,
    pub seeds: u64,
}

/// The command's default: 1,000 generator iterations, measured every 100, three seeds.
pub const DEFAULT: Budget = Budget { iters: 1000, eval_every: 100, seeds: 3 };

/// One preset on one toy: per measured iteration, the seeds' mean modes covered and
/// high-quality share.
#[derive(Debug, Clone)]
pub struct Coverage {
    pub preset: Preset,
    pub toy: ToyDistribution,
    pub modes: usize,
    /// `(iteration, mean modes covered, mean high-quality share)`.
    pub points: Vec<(u64, f64, f64)>,
}

/// The run folder of `preset` on `toy` for seed `seed` under `runs`.
fn run_dir(runs: &Path, preset: Preset, toy: ToyDistribution, seed: u64) -> PathBuf {
    runs.join(format!("{}-{}-s{}", preset.name(), toy.name(), seed))
}

/// Every run folder `compute` creates, in its order.
pub fn run_dirs(budget: Budget, seed: u64, runs: &Path) -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    for toy in TOYS {
        for preset in PRESETS {
            dirs.extend((0..budget.seeds).map(|s| run_dir(runs, preset, toy, seed + s)));
        }
    }
    dirs
}

pub fn compute(budget: Budget, seed: u64, runs: &Path, overwrite: bool) -> Result<Vec<Coverage>> {
    let mut out = Vec::new();
    for toy in TOYS {
        for preset in PRESETS {
            let mut per_seed: Vec<Vec<(u64, f64, f64)>> = Vec::new();
            let mut modes = 0;
            for s in 0..budget.seeds {
                let mut c = TrainConfig::from_preset(preset, DataSource::Toy(toy));
                (c.iters, c.seed, c.eval_every, c.log_every) =
                    (Some(budget.iters), seed + s, Some(budget.eval_every), budget.eval_every);
                (c.sample_every, c.checkpoint_every) = (budget.iters, budget.iters);
                let run = RunDir::create(&run_dir(runs, preset, toy, seed + s), overwrite)?;
                let mut trainer = Trainer::new(c, None, run.clone(), Device::Cpu)?;
                trainer.run(&mut Silent)?;
                let reports: Vec<(u64, f64, f64)> = run
                    .read_metrics(budget.iters)?
                    .into_iter()
                    .filter_map(|m| match m.eval {
                        Some(EvalReport::Toy(r)) => {
                            modes = r.modes.unwrap_or(0);
                            Some((m.iteration, r.modes_covered.unwrap_or(0) as f64, r.high_quality.unwrap_or(0.0)))
                        }
                        _ => None,
                    })
                    .collect();
                per_seed.push(reports);
            }
            let n = per_seed.len().max(1) as f64;
            let points = (0..per_seed.first().map_or(0, Vec::len))
                .map(|i| {
                    let it = per_seed[0][i].0;
                    let (m, hq) = per_seed.iter().fold((0.0, 0.0), |(a, b), r| (a + r[i].1, b + r[i].2));
                    (it, m / n, hq / n)
                })
                .collect();
            out.push(Coverage { preset, toy, modes, points });
        }
    }
    Ok(out)
}

pub fn write(cov: &[Coverage], png: &Path, csv: &Path) -> Result<()> {
    let mut rows = Vec::new();
    for (k, c) in cov.iter().enumerate() {
        for &(it, m, hq) in &c.points {
            rows.push(vec![(k / PRESETS.len()) as f64, (k % PRESETS.len()) as f64, it as f64, m, hq]);
        }
    }
    save_csv(
        csv,
        &[
            "toy (0 8gaussians, 1 25gaussians)",
            "preset (0 gan, 1 wgan, 2 wgan-gp)",
            "iteration",
            "modes_covered",
            "high_quality",
        ],
        &rows,
    )?;
    let last = cov.iter().flat_map(|c| c.points.last()).map(|p| p.0).max().unwrap_or(1) as f64;
    let charts: Vec<Chart> = TOYS
        .iter()
        .enumerate()
        .flat_map(|(t, toy)| {
            let of_toy: Vec<&Coverage> = cov.iter().filter(|c| c.toy == *toy).collect();
            let modes = of_toy.first().map_or(0, |c| c.modes) as f64;
            let line = |c: &Coverage, f: fn(&(u64, f64, f64)) -> f64| {
                Series::new(c.preset.name(), c.points.iter().map(|p| (p.0 as f64, f(p))).collect(), Mark::Line)
            };
            let mut covered: Vec<Series> = of_toy.iter().map(|c| line(c, |p| p.1)).collect();
            for (name, eight, twenty_five) in PUBLISHED {
                let v = if t == 0 { eight } else { twenty_five };
                covered.push(Series::new(format!("{name} ({v})"), vec![(0.0, v), (last, v)], Mark::Dashed));
            }
            let mut a = Chart::new(
                &format!("{}: modes covered (mean of seeds)", toy.name()),
                "generator iteration",
                "modes",
                covered,
            );
            a.y_range = Some((0.0, modes + 0.5));
            let mut b = Chart::new(
                &format!("{}: high-quality share", toy.name()),
                "generator iteration",
                "share within 3σ of a mode",
                of_toy.iter().map(|c| line(c, |p| p.2)).collect(),
            );
            b.y_range = Some((0.0, 1.05));
            [a, b]
        })
        .collect();
    save_png(png, (1300, 900), (2, 2), |p| {
        for (chart, area) in charts.iter().zip(p) {
            chart.draw_on(area)?;
        }
        Ok(())
    })
}

pub fn summary(cov: &[Coverage]) -> String {
    let parts: Vec<String> = cov
        .iter()
        .filter_map(|c| {
            c.points
                .last()
                .map(|p| format!("{} {}: {:.1}/{} modes, HQ {:.2}", c.preset.name(), c.toy.name(), p.1, c.modes, p.2))
        })
        .collect();
    format!("at the last measurement — {}", parts.join("; "))
}
