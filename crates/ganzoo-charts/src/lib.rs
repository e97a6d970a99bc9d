//! ganzoo's charts: plotters on an RGB buffer, text in an embedded DejaVu Sans subset
//! (so they draw the same on a headless machine with no fonts), encoded as PNG bytes.
//! The crate writes no files: callers put the bytes where they belong, whole.
//!
//! - [`Chart`]: lines, dashed lines or points, with axes, ticks, axis titles, a legend.
//! - [`histogram`] / [`draw_histogram`]: counts in equal bins.
//! - [`Surface`]: a scalar field on a square (a critic's value) as colour, with a
//!   colour bar, and point sets over it.
//! - [`render_png`]: a figure of panels, drawn and encoded.

mod chart;
mod font;
mod histogram;
mod png;
mod surface;

pub use chart::{tick, Chart, Mark, Series, COLOURS};
pub use font::register;
pub use histogram::{draw_histogram, histogram};
pub use plotters::style::RGBColor;
pub use png::{render_png, Panel};
pub use surface::{viridis, PointSet, Surface};

/// Why a chart could not be drawn.
#[derive(Debug, thiserror::Error)]
pub enum ChartError {
    #[error("drawing failed: {0}")]
    Draw(String),
    #[error("chart size {0}×{1} is out of range (1 to 8192 pixels a side)")]
    Size(u32, u32),
    #[error("PNG encoding failed: {0}")]
    Encode(String),
}

pub type Result<T, E = ChartError> = std::result::Result<T, E>;

pub(crate) fn draw_err<E: std::fmt::Debug>(e: E) -> ChartError {
    ChartError::Draw(format!("{e:?}"))
}
