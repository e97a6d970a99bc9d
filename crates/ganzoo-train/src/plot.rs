//! A run's charts as PNG bytes (ganzoo-charts: axes, ticks, axis titles, legends, titles
//! naming the run): `curves.png` (losses; the Wasserstein estimate and penalty; D(x) and
//! D(G(z)); throughput), `quality.png` (the `--eval-every` metrics), and a toy's samples
//! over the critic's value surface with a colour bar.

use std::path::Path;

use candle_core::{Device, Tensor};
use ganzoo_charts::{render_png, Chart, Mark, PointSet, RGBColor, Series, Surface};
use ganzoo_eval::{EvalReport, ImageReport, ToyReport};
use ganzoo_models::Network;

use crate::metrics::Metrics;
use crate::run_dir::write_atomic;
use crate::Result;

/// Points of the value surface evaluated at once: the critic's hidden layers over a
/// whole grid at once would hold hundreds of MB.
pub const SURFACE_CHUNK: usize = 1024;
/// Cells per side of the value surface.
const SURFACE_SIDE: usize = 128;
/// Width of a chart panel, and its height.
const PANEL: (u32, u32) = (640, 400);

/// A figure's panels: charts, each titled `"{run} — {what}"`.
fn panels_png(charts: &[Chart]) -> Result<Vec<u8>> {
    let cols = charts.len().clamp(1, 2);
    let rows = charts.len().div_ceil(cols).max(1);
    let size = (PANEL.0 * cols as u32, PANEL.1 * rows as u32);
    render_png(size, (rows, cols), |areas| -> Result<()> {
        for (chart, area) in charts.iter().zip(areas) {
            chart.draw_on(area)?;
        }
        Ok(())
    })
}

/// `(iteration, value)` for every metrics line where `f` has a value.
fn points(history: &[Metrics], f: impl Fn(&Metrics) -> Option<f64>) -> Vec<(f64, f64)> {
    history.iter().filter_map(|m| f(m).map(|v| (m.iteration as f64, v))).collect()
}

/// Charts with at least one point in some series.
fn non_empty(charts: Vec<Chart>) -> Vec<Chart> {
    charts.into_iter().filter(|c| c.series.iter().any(|s| !s.points.is_empty())).collect()
}

const X: &str = "generator iteration";

/// The training curves of a run named `run`: one chart each for the losses, the
/// Wasserstein estimate and the penalty, D(x) and D(G(z)), and throughput (charts with
/// nothing to show are left out). `unit` names what the run consumes ("images", "points").
pub fn curves_charts(history: &[Metrics], run: &str, unit: &str) -> Vec<Chart> {
    let line = |label: &str, f: fn(&Metrics) -> Option<f64>| Series::new(label, points(history, f), Mark::Line);
    let title = |what: &str| format!("{run} — {what}");
    non_empty(vec![
        Chart::new(
            &title("losses"),
            X,
            "loss",
            vec![line("critic / discriminator", |m| Some(m.d_loss)), line("generator", |m| Some(m.g_loss))],
        ),
        Chart::new(
            &title("critic"),
            X,
            "value",
            vec![line("Wasserstein estimate", |m| m.wasserstein), line("gradient penalty", |m| m.penalty)],
        ),
        Chart::new(
            &title("discriminator outputs"),
            X,
            "mean probability",
            vec![line("D(x)", |m| m.d_real), line("D(G(z))", |m| m.d_fake)],
        ),
        Chart::new(&title("throughput"), X, &format!("real {unit} / s"), vec![line(unit, |m| Some(m.images_per_s))]),
    ])
}

/// The `--eval-every` measurements of a run named `run`: an image run's FID, precision
/// and recall (and classes covered, with a classifier); a toy run's W1 beside its
/// real-vs-real floor, modes covered and the high-quality share. Empty without any.
pub fn quality_charts(history: &[Metrics], run: &str) -> Vec<Chart> {
    let at = |f: &dyn Fn(&EvalReport) -> Option<f64>| points(history, |m| m.eval.as_ref().and_then(f));
    let image = |label: &str, mark: Mark, f: fn(&ImageReport) -> Option<f64>| {
        Series::new(label, at(&|e| if let EvalReport::Image(r) = e { f(r) } else { None }), mark)
    };
    let toy = |label: &str, mark: Mark, f: fn(&ToyReport) -> Option<f64>| {
        Series::new(label, at(&|e| if let EvalReport::Toy(r) = e { f(r) } else { None }), mark)
    };
    let title = |what: &str| format!("{run} — {what}");
    non_empty(vec![
        Chart::new(&title("FID"), X, "FID (lower is better)", vec![image("FID", Mark::Line, |r| Some(r.fid))]),
        Chart::new(
            &title("precision and recall"),
            X,
            "fraction",
            vec![
                image("precision", Mark::Line, |r| Some(r.precision)),
                image("recall", Mark::Line, |r| Some(r.recall)),
            ],
        ),
        Chart::new(
            &title("classes"),
            X,
            "classes covered",
            vec![image("classes covered", Mark::Line, |r| count(r.classes_covered))],
        ),
        Chart::new(
            &title("W1 to the data"),
            X,
            "W1 (lower is better)",
            vec![
                toy("W1", Mark::Line, |r| Some(r.w1)),
                toy("real vs real floor", Mark::Dashed, |r| Some(r.w1_real_floor)),
            ],
        ),
        Chart::new(
            &title("modes"),
            X,
            "modes",
            vec![
                toy("covered", Mark::Line, |r| count(r.modes_covered)),
                toy("covered, ≥ 20 high-quality samples", Mark::Line, |r| count(r.modes_covered_strict)),
                toy("modes", Mark::Dashed, |r| count(r.modes)),
            ],
        ),
        Chart::new(
            &title("high-quality share"),
            X,
            "fraction within 3σ of a mode",
            vec![toy("high quality", Mark::Line, |r| r.high_quality)],
        ),
    ])
}

/// An image run's FID.
pub fn fid(e: &EvalReport) -> Option<f64> {
    if let EvalReport::Image(r) = e {
        Some(r.fid)
    } else {
        None
    }
}

/// A toy run's W1 to the data.
pub fn w1(e: &EvalReport) -> Option<f64> {
    if let EvalReport::Toy(r) = e {
        Some(r.w1)
    } else {
        None
    }
}

/// A toy run's modes covered.
pub fn modes_covered(e: &EvalReport) -> Option<f64> {
    if let EvalReport::Toy(r) = e {
        count(r.modes_covered)
    } else {
        None
    }
}

/// A count as a chart value.
fn count(c: Option<usize>) -> Option<f64> {
    c.map(|c| c as f64)
}

/// `curves.png`'s bytes.
pub fn curves_png(history: &[Metrics], run: &str, unit: &str) -> Result<Vec<u8>> {
    panels_png(&curves_charts(history, run, unit))
}

/// Writes `curves.png` and, with measurements, `quality.png` into the run directory
/// `dir` (each atomically), titled with the run's name.
pub fn write_charts(dir: &Path, history: &[Metrics], unit: &str) -> Result<()> {
    let name = crate::report::run_name(dir);
    write_atomic(&dir.join("curves.png"), &curves_png(history, &name, unit)?)?;
    if let Some(png) = quality_png(history, &name)? {
        write_atomic(&dir.join("quality.png"), &png)?;
    }
    Ok(())
}

/// `quality.png`'s bytes; `None` when the run has no measurements.
pub fn quality_png(history: &[Metrics], run: &str) -> Result<Option<Vec<u8>>> {
    let charts = quality_charts(history, run);
    if charts.is_empty() {
        return Ok(None);
    }
    panels_png(&charts).map(Some)
}

const REAL: RGBColor = RGBColor(255, 127, 14);
const GENERATED: RGBColor = RGBColor(255, 255, 255);

/// Real points (orange) and generated points (white) over the critic's value, with a
/// colour bar (no surface without a critic), on a square around the points, titled
/// `title`. The critic sees the grid in chunks of [`SURFACE_CHUNK`] points.
pub fn toy_surface_png(
    critic: Option<&Network>,
    device: &Device,
    real: &[f32],
    fake: &[f32],
    title: &str,
) -> Result<Vec<u8>> {
    let radius = f64::from(
        real.iter().chain(fake).map(|v| v.abs()).filter(|v| v.is_finite()).fold(0.5f32, f32::max).min(10.0) * 1.15,
    );
    let mut values: Vec<f64> = Vec::new();
    if let Some(critic) = critic {
        let side = SURFACE_SIDE;
        let coord = |i: usize| Surface::cell_centre(radius, side, i) as f32;
        let grid: Vec<f32> = (0..side * side).flat_map(|k| [coord(k % side), -coord(k / side)]).collect();
        values.reserve(side * side);
        for chunk in grid.chunks(2 * SURFACE_CHUNK) {
            let points = Tensor::from_slice(chunk, (chunk.len() / 2, 2), device)?;
            values
                .extend(critic.forward_t(&points, false)?.flatten_all()?.to_vec1::<f32>()?.into_iter().map(f64::from));
        }
    }
    let pairs = |p: &[f32]| p.chunks_exact(2).map(|q| (f64::from(q[0]), f64::from(q[1]))).collect::<Vec<_>>();
    // Generated points on top, half transparent: where they sit on the real ones (a
    // trained generator) both show.
    let mut sets = Vec::new();
    if !real.is_empty() {
        sets.push(PointSet { label: "real".into(), points: pairs(real), colour: REAL });
    }
    sets.push(PointSet { label: "generated".into(), points: pairs(fake), colour: GENERATED });
    let surface = Surface {
        title: title.to_string(),
        radius,
        values,
        side: SURFACE_SIDE,
        value_label: "critic value".into(),
        points: sets,
    };
    render_png((760, 640), (1, 1), |areas| -> Result<()> { Ok(surface.draw_on(&areas[0])?) })
}
