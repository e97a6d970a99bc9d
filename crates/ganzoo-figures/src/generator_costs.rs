//! `generator-costs`: the three generator costs as functions of `D(G(z))` (the seed's
//! plot; Goodfellow 2016, NIPS tutorial fig. 16), computed by `ganzoo_losses` itself on
//! the logit `σ⁻¹(D)`: minimax `½ log(1 − D)`, non-saturating `−½ log D`, maximum
//! likelihood `−½ D/(1 − D)`. Where the generator is bad (`D → 0`) the minimax cost is
//! flat (slope −½): its gradient vanishes, the reason for the non-saturating cost.

use std::path::Path;

use candle_core::{Device, Tensor};
use ganzoo_losses::{generator_loss, GeneratorCost};

use ganzoo_charts::{Chart, Mark, Series};

use crate::files::{save_csv, save_png};
use crate::Result;

/// The three costs on a grid of `D(G(z))`.
#[derive(Debug, Clone)]
pub struct GeneratorCosts {
    pub d: Vec<f64>,
    pub minimax: Vec<f64>,
    pub non_saturating: Vec<f64>,
    pub maximum_likelihood: Vec<f64>,
}

pub const COSTS: [GeneratorCost; 3] =
    [GeneratorCost::Minimax, GeneratorCost::NonSaturating, GeneratorCost::MaximumLikelihood];

/// `cost` at `D(G(z)) = d`, through ganzoo's loss on the logit (f64).
pub fn cost_at(cost: GeneratorCost, d: f64) -> Result<f64> {
    let logit = Tensor::new(&[(d / (1.0 - d)).ln()], &Device::Cpu)?;
    Ok(generator_loss(cost, &logit)?.to_scalar::<f64>()?)
}

/// `dJ/dD` at `d` by central differences of [`cost_at`].
pub fn slope(cost: GeneratorCost, d: f64) -> Result<f64> {
    let h = 1e-6 * d.min(1.0 - d);
    Ok((cost_at(cost, d + h)? - cost_at(cost, d - h)?) / (2.0 * h))
}

pub fn compute() -> Result<GeneratorCosts> {
    let d: Vec<f64> = (1..1000).map(|i| i as f64 / 1000.0).collect();
    let curve = |c| d.iter().map(|&x| cost_at(c, x)).collect::<Result<Vec<_>>>();
    Ok(GeneratorCosts {
        minimax: curve(GeneratorCost::Minimax)?,
        non_saturating: curve(GeneratorCost::NonSaturating)?,
        maximum_likelihood: curve(GeneratorCost::MaximumLikelihood)?,
        d,
    })
}

pub fn write(costs: &GeneratorCosts, png: &Path, csv: &Path) -> Result<()> {
    let rows: Vec<Vec<f64>> = (0..costs.d.len())
        .map(|i| vec![costs.d[i], costs.minimax[i], costs.non_saturating[i], costs.maximum_likelihood[i]])
        .collect();
    save_csv(csv, &["d_g_z", "minimax", "non_saturating", "maximum_likelihood"], &rows)?;
    let line = |label: &str, ys: &[f64]| {
        Series::new(label, costs.d.iter().copied().zip(ys.iter().copied()).collect(), Mark::Line)
    };
    let mut chart = Chart::new(
        "Generator costs as functions of the discriminator's output",
        "D(G(z))",
        "J(G)",
        vec![
            line("minimax  ½ log(1 − D)", &costs.minimax),
            line("non-saturating  −½ log D", &costs.non_saturating),
            line("maximum likelihood  −½ D/(1 − D)", &costs.maximum_likelihood),
        ],
    );
    (chart.x_range, chart.y_range) = (Some((0.0, 1.0)), Some((-10.0, 4.0)));
    save_png(png, (900, 560), (1, 1), |p| Ok(chart.draw_on(&p[0])?))
}

/// One line for the command's output.
pub fn summary() -> Result<String> {
    Ok(format!(
        "slopes at D = 0.01: minimax {:.2}, non-saturating {:.1}, maximum likelihood {:.2}",
        slope(GeneratorCost::Minimax, 0.01)?,
        slope(GeneratorCost::NonSaturating, 0.01)?,
        slope(GeneratorCost::MaximumLikelihood, 0.01)?
    ))
}
