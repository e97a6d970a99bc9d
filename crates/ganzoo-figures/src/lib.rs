//! The papers' central figures, recomputed with ganzoo's own models, losses and
//! trainer: each a PNG chart (axes, labels, legend) and the CSV of its numbers.
//!
//! | figure | source |
//! | --- | --- |
//! | [`Figure::Distances`] | WGAN (Arjovsky et al. 2017) fig. 1 |
//! | [`Figure::CriticVsDiscriminator`] | WGAN fig. 2 |
//! | [`Figure::ClippedWeights`] | WGAN-GP (Gulrajani et al. 2017) fig. 1b right |
//! | [`Figure::GradientNorms`] | WGAN-GP fig. 1b left |
//! | [`Figure::GeneratorCosts`] | the seed's plot; Goodfellow 2016 fig. 16 |

pub mod clipped_weights;
pub mod critic_vs_discriminator;
pub mod critics;
pub mod distances;
pub mod error;
pub mod files;
pub mod generator_costs;
pub mod gradient_norms;
pub mod manifest;
pub mod mode_coverage;
pub mod value_surfaces;

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

pub use error::{FigureError, Result};
use ganzoo_train::lock::RunLock;
use ganzoo_train::{Observer, TrainError};

/// A figure `ganzoo figures` can make.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Figure {
    Distances,
    CriticVsDiscriminator,
    ValueSurfaces,
    ClippedWeights,
    GradientNorms,
    GeneratorCosts,
    ModeCoverage,
}

impl Figure {
    pub const ALL: [Figure; 7] = [
        Self::Distances,
        Self::CriticVsDiscriminator,
        Self::ValueSurfaces,
        Self::ClippedWeights,
        Self::GradientNorms,
        Self::GeneratorCosts,
        Self::ModeCoverage,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Self::Distances => "distances",
            Self::CriticVsDiscriminator => "critic-vs-discriminator",
            Self::ValueSurfaces => "value-surfaces",
            Self::ClippedWeights => "clipped-weights",
            Self::GradientNorms => "gradient-norms",
            Self::GeneratorCosts => "generator-costs",
            Self::ModeCoverage => "mode-coverage",
        }
    }
}

impl std::str::FromStr for Figure {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        Self::ALL.into_iter().find(|f| f.name() == s).ok_or_else(|| {
            let names: Vec<_> = Self::ALL.iter().map(|f| f.name()).collect();
            format!("unknown figure '{s}': expected one of {}", names.join(", "))
        })
    }
}

/// What a figure run does with its files, and mode-coverage's runs, where they exist.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Existing {
    /// Refuses them, before any figure is computed.
    Refuse,
    /// Replaces them (`--overwrite`); a run folder's run files only, its other files kept.
    Replace,
    /// Keeps a figure whose PNG and CSV both exist, and continues mode-coverage's runs
    /// (`--resume`): each from its newest checkpoint; those finished are only read.
    Resume,
}

/// What a figure run needs.
#[derive(Debug, Clone)]
pub struct Options {
    pub out: PathBuf,
    pub seed: u64,
    pub existing: Existing,
    /// Training budget of `mode-coverage`.
    pub budget: mode_coverage::Budget,
    /// Once set, `mode-coverage` stops after the current step of its run in progress,
    /// with a checkpoint ([`FigureError::Stopped`]).
    pub stop: Arc<AtomicBool>,
}

impl Options {
    /// Every option at its default: refuse existing files, the default budget, seed 0.
    pub fn new(out: PathBuf) -> Self {
        let (seed, existing, budget) = (0, Existing::Refuse, mode_coverage::DEFAULT);
        Self { out, seed, existing, budget, stop: Arc::new(AtomicBool::new(false)) }
    }
}

/// The files a figure wrote (or, under [`Existing::Resume`], kept) and a line saying what
/// it shows.
#[derive(Debug, Clone)]
pub struct Made {
    pub png: PathBuf,
    pub csv: PathBuf,
    pub summary: String,
    /// Both files existed and were kept ([`Existing::Resume`]); `summary` is empty.
    pub kept: bool,
}

/// Computes `figure` and writes `OUT/<name>.png` and `OUT/<name>.csv` (existing ones as
/// `options.existing` says), holding the folder's writer lock ([`LOCK_FILE`]) meanwhile.
/// `observer` hears of mode-coverage's runs.
pub fn make(figure: Figure, options: &Options, observer: &mut dyn Observer) -> Result<Made> {
    let (png, csv, _lock) = outputs(figure, options)?;
    if kept(figure, options) {
        return Ok(Made { png, csv, summary: String::new(), kept: true });
    }
    let summary = match figure {
        Figure::Distances => {
            let d = distances::compute(options.seed)?;
            distances::write(&d, &png, &csv)?;
            distances::summary(&d)
        }
        Figure::CriticVsDiscriminator => {
            let f = critic_vs_discriminator::compute(options.seed)?;
            critic_vs_discriminator::write(&f, &png, &csv)?;
            critic_vs_discriminator::summary(&f)
        }
        Figure::ValueSurfaces => {
            let f = value_surfaces::compute(options.seed, value_surfaces::STEPS)?;
            value_surfaces::write(&f, &png, &csv)?;
            value_surfaces::summary(&f)
        }
        Figure::ClippedWeights => {
            let f = clipped_weights::compute(options.seed, clipped_weights::STEPS)?;
            clipped_weights::write(&f, &png, &csv)?;
            clipped_weights::summary(&f)
        }
        Figure::GradientNorms => {
            let f = gradient_norms::compute(options.seed, gradient_norms::STEPS)?;
            gradient_norms::write(&f, &png, &csv)?;
            gradient_norms::summary(&f)
        }
        Figure::ModeCoverage => {
            let runs = options.out.join(RUNS);
            let stop = Arc::clone(&options.stop);
            let mut training = mode_coverage::Training { existing: options.existing, stop, observer };
            let f = mode_coverage::compute(options.budget, options.seed, &runs, &mut training)?;
            mode_coverage::write(&f, &png, &csv)?;
            mode_coverage::summary(&f)
        }
        Figure::GeneratorCosts => {
            let costs = generator_costs::compute()?;
            generator_costs::write(&costs, &png, &csv)?;
            generator_costs::summary()?
        }
    };
    manifest::record(figure, options)?;
    Ok(Made { png, csv, summary, kept: false })
}

/// Refuses, before any figure is computed, every file and run folder the figures would
/// write that `options.existing` does not allow, or that is a folder where a file goes,
/// so that `figures all` does not stop at the sixth figure over a file it could have
/// named first: under [`Existing::Refuse`] any that exists; under [`Existing::Resume`]
/// half a figure (one of its two files) and a run folder that cannot be continued
/// ([`mode_coverage::check_resumable`]).
pub fn check_outputs(figures: &[Figure], options: &Options) -> Result<()> {
    if std::fs::metadata(&options.out).is_ok_and(|m| !m.is_dir()) {
        return Err(FigureError::Io { path: options.out.clone(), detail: "is a file: --out names a folder".into() });
    }
    if ganzoo_train::run_dir::is_run(&options.out) {
        let detail = "is a training run: figures would mix with its files; --out names a folder of their own".into();
        return Err(FigureError::Refused { path: options.out.clone(), detail });
    }
    manifest::check(options)?;
    for &figure in figures {
        let (png, csv) = paths(figure, &options.out);
        for file in [&png, &csv] {
            if std::fs::metadata(file).is_ok_and(|m| m.is_dir()) {
                return Err(FigureError::Io {
                    path: file.clone(),
                    detail: "is a folder where the figure's file goes".into(),
                });
            }
            if options.existing == Existing::Refuse && exists(file) {
                return Err(FigureError::Exists(file.clone()));
            }
        }
        if options.existing == Existing::Resume && exists(&png) != exists(&csv) {
            let (there, missing) = if exists(&png) { (png, csv) } else { (csv, png) };
            let detail = format!(
                "exists without {}: a figure is kept only whole; remove it, or pass --overwrite",
                missing.display()
            );
            return Err(FigureError::Refused { path: there, detail });
        }
        if kept(figure, options) {
            manifest::check_kept(figure, options)?;
        } else if figure == Figure::ModeCoverage {
            options.budget.check(options.seed)?;
            for run in mode_coverage::plan(options.budget, options.seed, &options.out.join(RUNS)) {
                match options.existing {
                    Existing::Refuse if exists(&run.path) => return Err(FigureError::Exists(run.path)),
                    Existing::Resume => mode_coverage::check_resumable(&run)?,
                    _ => {}
                }
            }
        }
    }
    Ok(())
}

/// Whether `figure` is kept as it is: [`Existing::Resume`] and both its files exist (made
/// with the settings asked now: [`check_outputs`] refuses it otherwise).
fn kept(figure: Figure, options: &Options) -> bool {
    let (png, csv) = paths(figure, &options.out);
    options.existing == Existing::Resume && exists(&png) && exists(&csv)
}

/// Whether anything, even a dangling link, is at `path`.
fn exists(path: &Path) -> bool {
    std::fs::symlink_metadata(path).is_ok()
}

/// Where `mode-coverage` keeps its runs, under `--out`.
const RUNS: &str = "mode-coverage-runs";

/// `DIR/<name>.png` and `DIR/<name>.csv`.
fn paths(figure: Figure, dir: &Path) -> (PathBuf, PathBuf) {
    (dir.join(format!("{}.png", figure.name())), dir.join(format!("{}.csv", figure.name())))
}

/// The writer lock file in a figures folder (kept there, like a run's `.lock`).
pub const LOCK_FILE: &str = ".ganzoo-figures.lock";

/// Takes the folder's writer lock (a folder not there yet is created once `figure`'s
/// outputs are checked), then checks them under it: a second process making figures into
/// the same folder is refused while this one makes one (its files, runs and
/// `figures.json` record), naming its pid.
fn outputs(figure: Figure, options: &Options) -> Result<(PathBuf, PathBuf, RunLock)> {
    let dir = &options.out;
    if !dir.is_dir() {
        check_outputs(&[figure], options)?;
        std::fs::create_dir_all(dir).map_err(|e| FigureError::Io { path: dir.clone(), detail: e.to_string() })?;
    }
    let lock = RunLock::acquire_named(dir, LOCK_FILE).map_err(|e| match e {
        TrainError::InUse { pid, .. } => FigureError::Refused {
            path: dir.clone(),
            detail: format!(
                "in use by {}: one command makes figures in a folder at a time",
                pid.map_or("another process".into(), |p| format!("process {p}"))
            ),
        },
        e => e.into(),
    })?;
    check_outputs(&[figure], options)?;
    let (png, csv) = paths(figure, dir);
    Ok((png, csv, lock))
}
