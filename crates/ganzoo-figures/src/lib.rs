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
pub mod mode_coverage;
pub mod value_surfaces;

use std::path::{Path, PathBuf};

pub use error::{FigureError, Result};

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

/// What a figure run needs.
#[derive(Debug, Clone)]
pub struct Options {
    pub out: PathBuf,
    pub seed: u64,
    pub overwrite: bool,
    /// Training budget of `mode-coverage`.
    pub budget: mode_coverage::Budget,
}

/// The files a figure wrote and a line saying what it shows.
#[derive(Debug, Clone)]
pub struct Made {
    pub png: PathBuf,
    pub csv: PathBuf,
    pub summary: String,
}

/// Computes `figure` and writes `OUT/<name>.png` and `OUT/<name>.csv` (existing ones
/// only with `overwrite`).
pub fn make(figure: Figure, options: &Options) -> Result<Made> {
    let (png, csv) = outputs(figure, options)?;
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
            let f = mode_coverage::compute(options.budget, options.seed, &runs, options.overwrite)?;
            mode_coverage::write(&f, &png, &csv)?;
            mode_coverage::summary(&f)
        }
        Figure::GeneratorCosts => {
            let costs = generator_costs::compute()?;
            generator_costs::write(&costs, &png, &csv)?;
            generator_costs::summary()?
        }
    };
    Ok(Made { png, csv, summary })
}

/// Refuses, before any figure is computed, every file and run folder the figures would
/// write that exists (unless `overwrite`) or that is a folder where a file goes, so that
/// `figures all` does not stop at the sixth figure over a file it could have named first.
pub fn check_outputs(figures: &[Figure], options: &Options) -> Result<()> {
    if std::fs::metadata(&options.out).is_ok_and(|m| !m.is_dir()) {
        return Err(FigureError::Io { path: options.out.clone(), detail: "is a file: --out names a folder".into() });
    }
    for &figure in figures {
        let (png, csv) = paths(figure, &options.out);
        for file in [png, csv] {
            if std::fs::metadata(&file).is_ok_and(|m| m.is_dir()) {
                return Err(FigureError::Io { path: file, detail: "is a folder where the figure's file goes".into() });
            }
            refuse_existing(file, options.overwrite)?;
        }
        if figure == Figure::ModeCoverage {
            for run in mode_coverage::run_dirs(options.budget, options.seed, &options.out.join(RUNS)) {
                refuse_existing(run, options.overwrite)?;
            }
        }
    }
    Ok(())
}

fn refuse_existing(path: PathBuf, overwrite: bool) -> Result<()> {
    match std::fs::symlink_metadata(&path) {
        Ok(_) if !overwrite => Err(FigureError::Exists(path)),
        _ => Ok(()),
    }
}

/// Where `mode-coverage` keeps its runs, under `--out`.
const RUNS: &str = "mode-coverage-runs";

/// `DIR/<name>.png` and `DIR/<name>.csv`.
fn paths(figure: Figure, dir: &Path) -> (PathBuf, PathBuf) {
    (dir.join(format!("{}.png", figure.name())), dir.join(format!("{}.csv", figure.name())))
}

fn outputs(figure: Figure, options: &Options) -> Result<(PathBuf, PathBuf)> {
    check_outputs(&[figure], options)?;
    let dir = &options.out;
    std::fs::create_dir_all(dir).map_err(|e| FigureError::Io { path: dir.to_path_buf(), detail: e.to_string() })?;
    Ok(paths(figure, dir))
}
