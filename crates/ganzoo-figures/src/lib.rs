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
    let (png, csv) = outputs(figure, &options.out, options.overwrite)?;
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
            let runs = options.out.join("mode-coverage-runs");
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

fn outputs(figure: Figure, dir: &Path, overwrite: bool) -> Result<(PathBuf, PathBuf)> {
    std::fs::create_dir_all(dir).map_err(|e| FigureError::Io { path: dir.to_path_buf(), detail: e.to_string() })?;
    let (png, csv) = (dir.join(format!("{}.png", figure.name())), dir.join(format!("{}.csv", figure.name())));
    for file in [&png, &csv] {
        if !overwrite && std::fs::symlink_metadata(file).is_ok() {
            return Err(FigureError::Exists(file.clone()));
        }
    }
    Ok((png, csv))
}
