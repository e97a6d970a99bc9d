//! Line and scatter charts with axes, tick labels, axis titles and a legend.

use plotters::coord::{CoordTranslate, Shift};
use plotters::prelude::*;

use crate::font::{register, FONT};
use crate::{draw_err, Result};

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
            } else if hi - lo <= 1e-9 * hi.abs().max(1.0) {
                // One value (a constant series): a window around it, not a zero-width axis.
                let pad = (hi.abs() * 0.1).max(1.0);
                (lo - pad, hi + pad)
            } else {
                let pad = (hi - lo) * 0.05;
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
            .x_label_formatter(&|v| tick(*v, x1 - x0))
            .y_label_formatter(&|v| tick(*v, y1 - y0))
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
        draw_legend(&mut chart)
    }
}

/// The legend of a chart's labelled series, top right on a translucent box.
pub(crate) fn draw_legend<'a, CT: CoordTranslate>(chart: &mut ChartContext<'a, BitMapBackend<'a>, CT>) -> Result<()> {
    chart
        .configure_series_labels()
        .label_font((FONT, 13))
        .background_style(WHITE.mix(0.85))
        .border_style(RGBColor(160, 160, 160))
        .position(SeriesLabelPosition::UpperRight)
        .draw()
        .map_err(draw_err)
}

/// A tick label with as many decimals as an axis spanning `span` needs to tell its
/// ticks apart (`1500`, `0.25`, `0.0031`), and no `-0`.
pub fn tick(v: f64, span: f64) -> String {
    // About ten ticks: steps near span / 10 need this many decimals.
    let decimals =
        if span > 0.0 && span.is_finite() { (1.0 - span.log10().floor()).clamp(0.0, 8.0) as usize } else { 2 };
    let text = format!("{v:.decimals$}");
    match text.strip_prefix('-') {
        Some(rest) if rest.chars().all(|c| c == '0' || c == '.') => rest.to_string(),
        _ => text,
    }
}
