//! `mode-coverage`: modes covered and the high-quality share against generator
//! iterations for `gan`, `wgan` and `wgan-gp` on 8 and 25 Gaussians, each trained with
//! its toy preset at the same budget and measured with `--eval-every` (2,000 samples of
//! fixed noise), averaged over seeds; beside the GAN numbers VEEGAN (Srivastava et al.
//! 2017, table 1: 1 of 8 modes on its ring, 3.3 of 25 on its grid) and PacGAN (Lin et
//! al. 2018, table 2: 6.3 of 8, 17.3 of 25) publish. Runs are kept in
//! `OUT/mode-coverage-runs/` (each a normal run directory: `ganzoo eval` and `sample` work on it);
//! under [`Existing::Resume`] they are continued from their checkpoints, and since every
//! random number comes from each run's seed, a figure made across stops is the one made
//! without.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use candle_core::Device;
use ganzoo_data::ToyDistribution;
use ganzoo_eval::EvalReport;
use ganzoo_train::config::Preset;
use ganzoo_train::run_dir::MARKER_FILE;
use ganzoo_train::{checkpoint, DataSource, Observer, Outcome, RunDir, TrainConfig, Trainer};

use ganzoo_charts::{Chart, Mark, Series};

use crate::files::{save_csv, save_png};
use crate::{Existing, FigureError, Result};

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

/// The most runs (seeds) per family and toy: 6,000 runs of about a minute each.
pub const MAX_SEEDS: u64 = 1000;

impl Budget {
    /// Refuses a budget the figure cannot be made with, before any run is planned.
    pub fn check(&self, seed: u64) -> Result<()> {
        let bad = |m: String| Err(FigureError::Compute(m));
        if self.iters == 0 || self.seeds == 0 || self.eval_every == 0 || !self.iters.is_multiple_of(self.eval_every) {
            return bad("--iters, --seeds and --eval-every must be positive, --iters a multiple of --eval-every".into());
        }
        if self.seeds > MAX_SEEDS {
            return bad(format!("--seeds {} is more than {MAX_SEEDS} runs per family and toy", self.seeds));
        }
        // Each run records its seed in its config.toml, whose integers are signed 64-bit.
        if seed.checked_add(self.seeds - 1).is_none_or(|last| last > ganzoo_train::config::MAX_STORED) {
            let max = ganzoo_train::config::MAX_STORED;
            return bad(format!("--seed {seed} with --seeds {}: the seeds would pass {max}", self.seeds));
        }
        Ok(())
    }
}

/// A measurement: `(generator iteration, modes covered, high-quality share)`.
pub type Point = (u64, f64, f64);

/// One preset on one toy: per measured iteration, the seeds' mean modes covered and
/// high-quality share.
#[derive(Debug, Clone)]
pub struct Coverage {
    pub preset: Preset,
    pub toy: ToyDistribution,
    pub modes: usize,
    /// The seeds' means.
    pub points: Vec<Point>,
}

/// One run of the figure: a preset on a toy with one seed, in its folder.
#[derive(Debug, Clone)]
pub struct PlannedRun {
    pub preset: Preset,
    pub toy: ToyDistribution,
    pub seed: u64,
    pub path: PathBuf,
    pub config: TrainConfig,
}

/// Every run `compute` trains, in its order (toy, preset, seed), each with the toy
/// preset's configuration at the budget. The budget must have passed [`Budget::check`].
pub fn plan(budget: Budget, seed: u64, runs: &Path) -> Vec<PlannedRun> {
    let mut planned = Vec::new();
    for toy in TOYS {
        for preset in PRESETS {
            for seed in (0..budget.seeds).map(|s| seed.saturating_add(s)) {
                let mut c = TrainConfig::from_preset(preset, DataSource::Toy(toy));
                (c.iters, c.seed, c.eval_every, c.log_every) =
                    (Some(budget.iters), seed, Some(budget.eval_every), budget.eval_every);
                (c.sample_every, c.checkpoint_every) = (budget.iters, budget.iters);
                let path = runs.join(format!("{}-{}-s{}", preset.name(), toy.name(), seed));
                planned.push(PlannedRun { preset, toy, seed, path, config: c });
            }
        }
    }
    planned
}

/// How `compute` treats the runs it finds, tells of its progress, and is stopped.
pub struct Training<'a> {
    pub existing: Existing,
    /// Once set (by a stop signal), the run in progress stops after its iteration with a
    /// checkpoint, and `compute` returns [`FigureError::Stopped`].
    pub stop: Arc<AtomicBool>,
    /// Told of each run as it starts, and given its log steps.
    pub observer: &'a mut dyn Observer,
}

pub fn compute(budget: Budget, seed: u64, runs: &Path, training: &mut Training<'_>) -> Result<Vec<Coverage>> {
    budget.check(seed)?;
    let planned = plan(budget, seed, runs);
    let mut out = Vec::new();
    for (g, group) in planned.chunks(budget.seeds as usize).enumerate() {
        let mut per_seed = Vec::new();
        let mut modes = 0;
        for (i, run) in group.iter().enumerate() {
            let k = g * group.len() + i + 1;
            training.observer.on_message(&format!(
                "mode-coverage: run {k} of {}: {}",
                planned.len(),
                run.path.display()
            ));
            train(run, training)?;
            let (m, points) = measurements(&run.path, budget.iters)?;
            modes = m;
            per_seed.push(points);
        }
        out.push(Coverage { preset: group[0].preset, toy: group[0].toy, modes, points: mean(group, &per_seed)? });
    }
    Ok(out)
}

/// Trains `run` to its length: a new run, or under [`Existing::Resume`] the one in its
/// folder continued.
fn train(run: &PlannedRun, training: &mut Training<'_>) -> Result<()> {
    let resumable = training.existing == Existing::Resume && run.path.join(MARKER_FILE).is_file();
    if resumable && finished(run)? {
        return Ok(());
    }
    let trainer = match resumable {
        true => continue_run(run)?,
        false => {
            let dir = RunDir::create(&run.path, training.existing == Existing::Replace)?;
            Trainer::new(run.config.clone(), None, dir, Device::Cpu)?
        }
    };
    let mut trainer = trainer.with_stop_flag(Arc::clone(&training.stop));
    match trainer.run(training.observer)? {
        Outcome::Finished => Ok(()),
        Outcome::Interrupted => Err(FigureError::Stopped { run: run.path.clone(), iteration: trainer.iteration() }),
    }
}

/// Whether the run found in `run`'s folder has trained its whole length (its preferred
/// checkpoint is at the last iteration): its measurements are then only read, and nothing
/// in it is written.
fn finished(run: &PlannedRun) -> Result<bool> {
    check_resumable(run)?;
    let Some(newest) = checkpoint::candidates(&run.path)?.into_iter().next() else {
        return Ok(false);
    };
    Ok(checkpoint::read_state(&newest).is_ok_and(|s| Some(s.iteration) == run.config.iters))
}

/// A run found under `--resume` and not [`finished`] (which checked it): continued from its newest
/// checkpoint, or, stopped before its first
/// checkpoint (killed: a stop signal writes one), trained again from the start with its
/// run files replaced — the same seed makes the same run.
fn continue_run(run: &PlannedRun) -> Result<Trainer> {
    if checkpoint::candidates(&run.path)?.is_empty() {
        tracing::info!(run = %run.path.display(), "no checkpoint: trained again from the start");
        return Ok(Trainer::new(run.config.clone(), None, RunDir::create(&run.path, true)?, Device::Cpu)?);
    }
    let (dir, _) = RunDir::open_for_writing(&run.path)?;
    Ok(Trainer::resume(dir, run.config.clone(), None, Device::Cpu)?)
}

/// Refuses, under `--resume`, a folder where `run` goes that holds anything but an empty
/// folder or a run of the figure's own settings: not a ganzoo run, another seed,
/// recipe or measurement spacing, or a longer length than the budget's (never shortened).
pub fn check_resumable(run: &PlannedRun) -> Result<()> {
    let path = &run.path;
    let refuse = |detail: String| Err(FigureError::Refused { path: path.clone(), detail });
    let mut entries = match std::fs::read_dir(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return refuse(e.to_string()),
        Ok(entries) => entries,
    };
    if entries.next().is_none() {
        return Ok(());
    }
    if !path.join(MARKER_FILE).is_file() {
        return refuse(
            "is not a ganzoo run and not empty: nothing there is replaced; move it, or choose another --out".into(),
        );
    }
    let (_, trained) = RunDir::open(path)?;
    let mut changed: Vec<String> = run
        .config
        .changed_since(&trained)?
        .iter()
        .map(|c| format!("`{}` {} (asked {})", c.key, c.then, c.now))
        .collect();
    if trained.eval_every != run.config.eval_every {
        changed.push(format!("`eval_every` {:?} (asked {:?})", trained.eval_every, run.config.eval_every));
    }
    if !changed.is_empty() {
        return refuse(format!(
            "was trained with other settings ({}): resume with the --eval-every it was made with, or pass --overwrite to train it again",
            changed.join(", ")
        ));
    }
    match (trained.iters, run.config.iters) {
        (Some(then), Some(now)) if then > now => {
            refuse(format!("was started for {then} iterations: a run is never shortened; pass --iters {then} or more"))
        }
        _ => Ok(()),
    }
}

/// The toy's number of modes and the run's measurements up to `iters`: `(iteration,
/// modes covered, high-quality share)`.
fn measurements(run: &Path, iters: u64) -> Result<(usize, Vec<Point>)> {
    let (dir, _) = RunDir::open(run)?;
    let mut modes = 0;
    let points = dir
        .read_metrics(iters)?
        .into_iter()
        .filter_map(|m| match m.eval {
            Some(EvalReport::Toy(r)) => {
                modes = r.modes.unwrap_or(0);
                Some((m.iteration, r.modes_covered.unwrap_or(0) as f64, r.high_quality.unwrap_or(0.0)))
            }
            _ => None,
        })
        .collect();
    Ok((modes, points))
}

/// The seeds' mean at each measured iteration; every seed's run must have been measured
/// at the same iterations.
fn mean(group: &[PlannedRun], per_seed: &[Vec<Point>]) -> Result<Vec<Point>> {
    let at = |r: &[Point]| r.iter().map(|p| p.0).collect::<Vec<_>>();
    let first = per_seed.first().map(|r| at(r)).unwrap_or_default();
    if let Some((run, _)) = group.iter().zip(per_seed).find(|(_, r)| at(r) != first) {
        return Err(FigureError::Refused {
            path: run.path.clone(),
            detail: format!("was measured at other iterations than {}", group[0].path.display()),
        });
    }
    let n = per_seed.len().max(1) as f64;
    Ok((0..first.len())
        .map(|i| {
            let (m, hq) = per_seed.iter().fold((0.0, 0.0), |(a, b), r| (a + r[i].1, b + r[i].2));
            (first[i], m / n, hq / n)
        })
        .collect())
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
            let line = |c: &Coverage, f: fn(&Point) -> f64| {
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
