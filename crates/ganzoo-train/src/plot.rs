//! Small raster plots drawn straight into PNGs: loss curves, quality over time, and 2-D samples over
//! the critic's value surface. Colours, not text, tell series apart (see the README).

use std::path::Path;

use candle_core::{Device, Tensor};
use ganzoo_eval::EvalReport;
use ganzoo_models::Network;
use image::{Rgb, RgbImage};

use crate::metrics::Metrics;
use crate::{Result, TrainError};

const BLUE: Rgb<u8> = Rgb([31, 119, 180]);
const RED: Rgb<u8> = Rgb([214, 39, 40]);
const GREEN: Rgb<u8> = Rgb([44, 160, 44]);
const ORANGE: Rgb<u8> = Rgb([255, 127, 14]);
const GREY: Rgb<u8> = Rgb([200, 200, 200]);
/// Points of the value surface evaluated at once.
pub const SURFACE_CHUNK: usize = 1024;

/// `curves.png`: d_loss (blue), g_loss (red) and the Wasserstein estimate (green)
/// against iterations, on one axis; the grey line is zero.
pub fn curves(history: &[Metrics], path: &Path) -> Result<()> {
    draw(
        &[
            (history.iter().map(|m| (m.iteration as f64, m.d_loss)).collect(), BLUE),
            (history.iter().map(|m| (m.iteration as f64, m.g_loss)).collect(), RED),
            (history.iter().filter_map(|m| m.wasserstein.map(|v| (m.iteration as f64, v))).collect(), GREEN),
        ],
        path,
    )
}

/// `quality.png` (runs with `--eval-every`): against iterations, an image run's FID or a
/// toy run's W1 (blue), with the toy's real-vs-real W1 floor (green).
pub fn quality(history: &[Metrics], path: &Path) -> Result<()> {
    let at = |f: fn(&EvalReport) -> Option<f64>| -> Vec<(f64, f64)> {
        history.iter().filter_map(|m| m.eval.as_ref().and_then(f).map(|v| (m.iteration as f64, v))).collect()
    };
    let headline = |e: &EvalReport| match e {
        EvalReport::Image(r) => Some(r.fid),
        EvalReport::Toy(r) => Some(r.w1),
    };
    let floor = |e: &EvalReport| match e {
        EvalReport::Toy(r) => Some(r.w1_real_floor),
        EvalReport::Image(_) => None,
    };
    draw(&[(at(headline), BLUE), (at(floor), GREEN)], path)
}

type Series = (Vec<(f64, f64)>, Rgb<u8>);

/// Lines through each series' points on one axis that holds them all and zero (grey).
fn draw(series: &[Series], path: &Path) -> Result<()> {
    let (w, h, pad) = (800u32, 400u32, 20.0);
    let mut img = RgbImage::from_pixel(w, h, Rgb([255, 255, 255]));
    let all = series.iter().flat_map(|(s, _)| s.iter()).filter(|p| p.1.is_finite());
    let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, 0.0f64, 0.0f64);
    for &(x, y) in all {
        (x0, x1, y0, y1) = (x0.min(x), x1.max(x), y0.min(y), y1.max(y));
    }
    if x0 >= x1 {
        x1 = x0 + 1.0;
    }
    if y0 >= y1 {
        y1 = y0 + 1.0;
    }
    let to_px = |x: f64, y: f64| {
        let px = pad + (x - x0) / (x1 - x0) * (w as f64 - 2.0 * pad);
        let py = h as f64 - pad - (y - y0) / (y1 - y0) * (h as f64 - 2.0 * pad);
        (px, py)
    };
    let (za, zb) = (to_px(x0, 0.0), to_px(x1, 0.0));
    line(&mut img, za, zb, GREY);
    for (points, colour) in series {
        for pair in points.windows(2).filter(|p| p[0].1.is_finite() && p[1].1.is_finite()) {
            line(&mut img, to_px(pair[0].0, pair[0].1), to_px(pair[1].0, pair[1].1), *colour);
        }
    }
    save(&img, path)
}

/// Real points (green) and generated points (orange) over the critic's value
/// (dark = low, light = high; white without a critic), on a square around the points.
pub fn toy_surface(critic: Option<&Network>, device: &Device, real: &[f32], fake: &[f32], path: &Path) -> Result<()> {
    let side = 256usize;
    let radius =
        real.iter().chain(fake).map(|v| v.abs()).filter(|v| v.is_finite()).fold(0.5f32, f32::max).min(10.0) * 1.15;
    let coord = |i: usize| -radius + 2.0 * radius * (i as f32 + 0.5) / side as f32;
    let grid: Vec<f32> = (0..side * side).flat_map(|k| [coord(k % side), -coord(k / side)]).collect();
    let mut img = RgbImage::from_pixel(side as u32, side as u32, Rgb([255, 255, 255]));
    if let Some(critic) = critic {
        // In chunks: the critic's hidden layers over all 65,536 points at once would hold ~800 MB.
        let mut values: Vec<f32> = Vec::with_capacity(side * side);
        for chunk in grid.chunks(2 * SURFACE_CHUNK) {
            let points = Tensor::from_slice(chunk, (chunk.len() / 2, 2), device)?;
            values.extend(critic.forward_t(&points, false)?.flatten_all()?.to_vec1::<f32>()?);
        }
        let (lo, hi) = values.iter().fold((f32::MAX, f32::MIN), |(a, b), &v| (a.min(v), b.max(v)));
        for (k, v) in values.iter().enumerate() {
            let g = (40.0 + 180.0 * (v - lo) / (hi - lo).max(1e-12)) as u8;
            img.put_pixel((k % side) as u32, (k / side) as u32, Rgb([g, g, g]));
        }
    }
    let to_px = |x: f32, y: f32| {
        (((x + radius) / (2.0 * radius) * side as f32) as i64, ((radius - y) / (2.0 * radius) * side as f32) as i64)
    };
    for (points, colour) in [(real, GREEN), (fake, ORANGE)] {
        for p in points.chunks_exact(2) {
            let (x, y) = to_px(p[0], p[1]);
            for (dx, dy) in [(0, 0), (1, 0), (0, 1), (1, 1)] {
                if (0..side as i64).contains(&(x + dx)) && (0..side as i64).contains(&(y + dy)) {
                    img.put_pixel((x + dx) as u32, (y + dy) as u32, colour);
                }
            }
        }
    }
    save(&img, path)
}

fn line(img: &mut RgbImage, a: (f64, f64), b: (f64, f64), colour: Rgb<u8>) {
    let steps = ((b.0 - a.0).abs().max((b.1 - a.1).abs()).ceil() as usize).max(1);
    for i in 0..=steps {
        let t = i as f64 / steps as f64;
        let (x, y) = (a.0 + t * (b.0 - a.0), a.1 + t * (b.1 - a.1));
        if x >= 0.0 && y >= 0.0 && (x as u32) < img.width() && (y as u32) < img.height() {
            img.put_pixel(x as u32, y as u32, colour);
        }
    }
}

fn save(img: &RgbImage, path: &Path) -> Result<()> {
    img.save(path)
        .map_err(|e| TrainError::Checkpoint { path: path.to_path_buf(), detail: format!("cannot write image: {e}") })
}
