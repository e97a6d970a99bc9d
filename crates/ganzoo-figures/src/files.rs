//! A figure's two files, each written whole (`ganzoo_data::partial`: `PATH.partial`,
//! then rename): the chart as PNG and the numbers behind it as CSV.

use std::path::Path;

use ganzoo_charts::Panel;

use crate::{FigureError, Result};

/// A `w × h` PNG whose `rows × cols` panels `draw` fills, left to right, top to bottom.
pub fn save_png(
    path: &Path,
    size: (u32, u32),
    grid: (usize, usize),
    draw: impl FnOnce(&[Panel<'_>]) -> Result<()>,
) -> Result<()> {
    let png = ganzoo_charts::render_png(size, grid, draw)?;
    write_whole(path, &png)
}

/// Writes `header` and `rows` as CSV (numbers in full precision; `inf` for infinities).
pub fn save_csv(path: &Path, header: &[&str], rows: &[Vec<f64>]) -> Result<()> {
    let mut text = header.join(",") + "\n";
    for row in rows {
        text += &row.iter().map(|v| format!("{v}")).collect::<Vec<_>>().join(",");
        text.push('\n');
    }
    write_whole(path, text.as_bytes())
}

/// Writes `text` whole.
pub fn save_text(path: &Path, text: &str) -> Result<()> {
    write_whole(path, text.as_bytes())
}

fn write_whole(path: &Path, bytes: &[u8]) -> Result<()> {
    ganzoo_data::partial::write_whole(path, bytes)
        .map_err(|e| FigureError::Io { path: path.to_path_buf(), detail: e.to_string() })
}
