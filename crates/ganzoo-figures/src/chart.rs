//! Charts with axes, tick labels, axis titles and a legend (plotters on an RGB buffer,
//! text in the embedded DejaVu Sans subset), saved as PNG; and the numbers behind
//! them as CSV. Both files are written whole (temporary name, then rename).

use std::path::Path;
use std::sync::Once;

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::{register_font, FontStyle};

use crate::{FigureError, Result};

/// Colours of successive series (matplotlib's tab10).
pub const COLOURS: [RGBColor; 8] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
];

const FONT: &str = "sans-serif";

pub(crate) fn register() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let bytes: &'static [u8] = include_bytes!("../fonts/DejaVuSans-subset.ttf");
        // Only fails on a font ab_glyph cannot parse: the embedded one parses (tested).
        let _ = register_font(FONT, FontStyle::Normal, bytes);
    });
}

/// How a series is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mark {
    Line,
    Dashed,
    Points,
}

/// One labelled series of `(x, y)` points.
#[derive(Debug, Clone)]
pub struct Series {
    pub label: String,
    pub points: Vec<(f64, f64)>,
    pub mark: Mark,
}

impl Series {
    pub fn new(label: impl Into<String>, points: Vec<(f64, f64)>, mark: Mark) -> Self {
        Self { label: label.into(), points, mark }
    }
}

/// A line / scatter chart.
#[derive(Debug, Clone)]
pub struct Chart {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub series: Vec<Series>,
    /// Axis ranges; `None`: the data's, padded by 5 %.
    pub x_range: Option<(f64, f64)>,
    pub y_range: Option<(f64, f64)>,
}

impl Chart {
    pub fn new(title: &str, x_label: &str, y_label: &str, series: Vec<Series>) -> Self {
        let s = |t: &str| t.to_string();
        Self { title: s(title), x_label: s(x_label), y_label: s(y_label), series, x_range: None, y_range: None }
    }

    fn ranges(&self) -> ((f64, f64), (f64, f64)) {
        let finite = || self.series.iter().flat_map(|s| &s.points).filter(|p| p.0.is_finite() && p.1.is_finite());
        let span = |f: &dyn Fn(&(f64, f64)) -> f64| {
            let (lo, hi) = finite().map(f).fold((f64::MAX, f64::MIN), |(a, b), v| (a.min(v), b.max(v)));
            if lo > hi {
                (0.0, 1.0)
            } else {
                let pad = ((hi - lo) * 0.05).max(1e-9);
                (lo - pad, hi + pad)
            }
        };
        (self.x_range.unwrap_or_else(|| span(&|p| p.0)), self.y_range.unwrap_or_else(|| span(&|p| p.1)))
    }

    /// Draws the chart into `area`.
    pub fn draw_on(&self, area: &DrawingArea<BitMapBackend<'_>, Shift>) -> Result<()> {
        register();
        let ((x0, x1), (y0, y1)) = self.ranges();
        let mut chart = ChartBuilder::on(area)
            .caption(&self.title, (FONT, 18))
            .margin(12)
            .x_label_area_size(42)
            .y_label_area_size(64)
            .build_cartesian_2d(x0..x1, y0..y1)
            .map_err(draw_err)?;
        chart
            .configure_mesh()
            .x_desc(&self.x_label)
            .y_desc(&self.y_label)
            .label_style((FONT, 13))
            .axis_desc_style((FONT, 15))
            .light_line_style(RGBColor(235, 235, 235))
            .draw()
            .map_err(draw_err)?;
        for (i, s) in self.series.iter().enumerate() {
            let colour = COLOURS[i % COLOURS.len()];
            let pts: Vec<(f64, f64)> = s
                .points
                .iter()
                .copied()
                .filter(|p| p.0.is_finite() && p.1.is_finite() && p.1 >= y0 && p.1 <= y1)
                .collect();
            let drawn = match s.mark {
                Mark::Line => chart.draw_series(LineSeries::new(pts, colour.stroke_width(2))).map_err(draw_err)?,
                Mark::Dashed => {
                    chart.draw_series(DashedLineSeries::new(pts, 8, 6, colour.stroke_width(2))).map_err(draw_err)?
                }
                Mark::Points => {
                    chart.draw_series(pts.into_iter().map(|p| Circle::new(p, 4, colour.filled()))).map_err(draw_err)?
                }
            };
            let mark = s.mark;
            drawn.label(&s.label).legend(move |(x, y)| -> DynElement<'static, BitMapBackend<'_>, (i32, i32)> {
                match mark {
                    Mark::Points => Circle::new((x + 10, y), 4, colour.filled()).into_dyn(),
                    _ => PathElement::new(vec![(x, y), (x + 20, y)], colour.stroke_width(2)).into_dyn(),
                }
            });
        }
        chart
            .configure_series_labels()
            .label_font((FONT, 13))
            .background_style(WHITE.mix(0.85))
            .border_style(RGBColor(160, 160, 160))
            .position(SeriesLabelPosition::UpperRight)
            .draw()
            .map_err(draw_err)?;
        Ok(())
    }
}

/// A histogram: counts of `values` in `bins` equal bins over `range`.
pub fn histogram(values: &[f64], range: (f64, f64), bins: usize) -> Vec<(f64, f64, usize)> {
    let width = (range.1 - range.0) / bins as f64;
    let mut counts = vec![0usize; bins];
    for &v in values.iter().filter(|v| v.is_finite()) {
        let i = (((v - range.0) / width).floor().max(0.0) as usize).min(bins - 1);
        counts[i] += 1;
    }
    counts
        .into_iter()
        .enumerate()
        .map(|(i, c)| (range.0 + i as f64 * width, range.0 + (i + 1) as f64 * width, c))
        .collect()
}

/// Draws histogram bars `(from, to, count)` into `area`.
pub fn draw_histogram(
    area: &DrawingArea<BitMapBackend<'_>, Shift>,
    title: &str,
    x_label: &str,
    bars: &[(f64, f64, usize)],
    colour: RGBColor,
) -> Result<()> {
    register();
    let x0 = bars.first().map_or(0.0, |b| b.0);
    let x1 = bars.last().map_or(1.0, |b| b.1);
    let top = bars.iter().map(|b| b.2).max().unwrap_or(1).max(1) as f64 * 1.05;
    let mut chart = ChartBuilder::on(area)
        .caption(title, (FONT, 18))
        .margin(12)
        .x_label_area_size(42)
        .y_label_area_size(64)
        .build_cartesian_2d(x0..x1, 0.0..top)
        .map_err(draw_err)?;
    chart
        .configure_mesh()
        .x_desc(x_label)
        .y_desc("weights")
        .label_style((FONT, 13))
        .axis_desc_style((FONT, 15))
        .disable_x_mesh()
        .draw()
        .map_err(draw_err)?;
    chart
        .draw_series(bars.iter().map(|&(a, b, c)| Rectangle::new([(a, 0.0), (b, c as f64)], colour.filled())))
        .map_err(draw_err)?;
    Ok(())
}

/// A `w × h` PNG whose `rows × cols` panels `draw` fills, left to right, top to bottom.
pub fn save_png(
    path: &Path,
    (w, h): (u32, u32),
    (rows, cols): (usize, usize),
    draw: impl FnOnce(&[DrawingArea<BitMapBackend<'_>, Shift>]) -> Result<()>,
) -> Result<()> {
    let mut buf = vec![0u8; w as usize * h as usize * 3];
    {
        let root = BitMapBackend::with_buffer(&mut buf, (w, h)).into_drawing_area();
        root.fill(&WHITE).map_err(draw_err)?;
        let panels = root.split_evenly((rows, cols));
        draw(&panels)?;
        root.present().map_err(draw_err)?;
    }
    let image = image::RgbImage::from_raw(w, h, buf).ok_or_else(|| FigureError::Draw("image buffer size".into()))?;
    write_whole(path, |tmp| {
        image
            .save_with_format(tmp, image::ImageFormat::Png)
            .map_err(|e| FigureError::Io { path: path.to_path_buf(), detail: e.to_string() })
    })
}

/// Writes `header` and `rows` as CSV (numbers in full precision; `inf` for infinities).
pub fn save_csv(path: &Path, header: &[&str], rows: &[Vec<f64>]) -> Result<()> {
    let mut text = header.join(",") + "\n";
    for row in rows {
        text += &row.iter().map(|v| format!("{v}")).collect::<Vec<_>>().join(",");
        text.push('\n');
    }
    write_whole(path, |tmp| {
        std::fs::write(tmp, &text).map_err(|e| FigureError::Io { path: path.to_path_buf(), detail: e.to_string() })
    })
}

fn write_whole(path: &Path, write: impl FnOnce(&Path) -> Result<()>) -> Result<()> {
    ganzoo_eval::files::write_whole_with(path, write, |e| FigureError::Io {
        path: path.to_path_buf(),
        detail: e.to_string(),
    })
}

fn draw_err<E: std::fmt::Debug>(e: E) -> FigureError {
    FigureError::Draw(format!("{e:?}"))
}
